"""A regular install (``pip install .``, the README's first command) ships every package of the
source tree: pyproject.toml lists them by hand, and a package missing there exists in an
editable install and the test run but not for users (srcdiff.tools was, for a while)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "srcdiff").rglob("__init__.py")}
    found.add("srcdiff.runtime")  # runtime/ is installed as srcdiff.runtime (package-dir)
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    runtime = {p.stem for p in (ROOT / "runtime").glob("*.py")}
    assert "tangents" in runtime and (ROOT / "runtime" / "__init__.py").exists()
