"""Make real functions from source strings (srcdiff reads source, so they must live in files)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import tempfile
import textwrap
from pathlib import Path

from srcdiff.context import Context
from srcdiff.pipeline import PIPELINE, parameters
from srcdiff.source import get_source

_DIR = Path(tempfile.mkdtemp(prefix="srcdiff-tests-"))
_counter = itertools.count()

HEADER = "import math\nimport numpy as np\nimport srcdiff\n\n"


def make_function(source: str, name: str | None = None):
    """Write ``source`` (after the standard imports) to a module file and return its function."""
    source = HEADER + textwrap.dedent(source)
    path = _DIR / f"generated_{next(_counter)}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    if name is None:
        name = next(line.split()[1].split("(")[0] for line in source.splitlines()
                    if line.startswith("def "))
    return getattr(module, name)


def run_until(fn, stage: str, wrt=None) -> str:
    """The function's source after the pipeline stage ``stage``."""
    ctx = Context(source=get_source(fn), params=parameters(fn),
                  wrt=tuple(wrt or parameters(fn)[:1]))
    module = ctx.source.module
    for label, rewrite in PIPELINE:
        module = rewrite(module, ctx)
        if label == stage:
            return module.code
    raise KeyError(stage)


def code_lines(text: str) -> list[str]:
    """Non-blank lines, stripped of trailing space, for before/after comparisons."""
    return [line.rstrip() for line in textwrap.dedent(text).strip("\n").splitlines() if line.strip()]


def rewrite_generated(rewrite, source: str) -> list[str]:
    """A late pass (one that reads generated code) on a hand-written generated module, as
    code lines; the context is that of a one-argument function ``f(x)``."""
    import libcst as cst

    fn = make_function("def f(x):\n    return x\n")
    ctx = Context(source=get_source(fn), params=("x",), wrt=("x",))
    return code_lines(rewrite(cst.parse_module(source), ctx).code)


def vjp_source(fn, wrt=(0,)) -> str:
    """The generated source of ``fn``'s vjp form (a forward function returning its value and
    its pullback), which ``srcdiff.vjp`` runs; ``grad`` and ``value_and_grad`` of a provable
    scalar run the pullback in line instead (seed.py, fuse.py)."""
    from srcdiff.api import derivative

    names = parameters(fn)
    return derivative(fn, tuple(names[i] for i in wrt)).source


def code(source: str) -> str:
    """Generated ``source`` without its comments (which quote the user's lines)."""
    return "\n".join(line.split("#")[0] for line in source.splitlines())
