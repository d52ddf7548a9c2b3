"""Differential fuzzing: random programs (tests/fuzz/programs.py), differentiated by srcdiff and
held to the finite-difference oracle.

CI runs the ``fuzz-ci`` profile: 200 programs, the same on every run, a failure reported at
once with its program (``SRCDIFF_FUZZ=shrink`` reruns them and shrinks the failure to a
minimal program). The soak runs 10 000 programs: ``SRCDIFF_FUZZ=soak pytest
tests/test_fuzz.py`` or ``pytest tests/test_fuzz.py --hypothesis-profile=soak``;
``python -m tests.fuzz.programs --n 10000`` counts outcomes instead of stopping at the first
failure. Known bugs the generator avoids or tolerates meanwhile: ``programs.TOLERATED``, each
with a regression test in ``tests/fuzz/test_regressions.py``.

The programs are drawn with Hypothesis's pool of constants from imported modules emptied
(``tests/fuzz/determinism.py``): without that, which 200 programs CI ran depended on what the
tests before this file had imported.
"""

import importlib.util
import os
import shutil
import sys
import tempfile

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .fuzz.determinism import no_local_constants
from .fuzz.programs import check_program, profile_name, programs


@pytest.fixture(autouse=True, scope="module")
def _draws_independent_of_imports():
    with no_local_constants():
        yield


@settings(settings.get_profile(profile_name()))
@given(programs())
def test_random_programs_match_finite_differences(prog):
    result = check_program(prog)
    assume(result.kind != "reject")
    assert result.passed, f"{result.kind} ({result.where}): {result.detail}"


def test_programs_do_not_depend_on_imported_modules():
    """The fuzz-ci programs (and any derandomized draw) are the same after a module full of
    numbers has been imported, as tests/test_examples.py imports examples/linear_regression.py:
    with Hypothesis's local-constant pool, ``tests/test_examples.py tests/test_fuzz.py`` drew
    other programs than ``tests/test_fuzz.py`` alone (at 1c64720 one of them failed: finding
    O14). The programs draw few numbers the pool can give (their seed), so 1000 integers in
    the same range are drawn too: with the pool, some come from the module."""
    drawn = []

    @settings(settings.get_profile("fuzz-ci"), max_examples=100)
    @given(programs())
    def draw_programs(prog):
        drawn.append((prog.seed, prog.source))

    @settings(settings.get_profile("fuzz-ci"), max_examples=20)
    @given(st.lists(st.integers(0, 2 ** 16), min_size=50, max_size=50))
    def draw_integers(values):
        drawn.append(tuple(values))

    def draw():
        drawn.clear()
        draw_programs()
        draw_integers()
        return list(drawn)

    alone = draw()
    folder = tempfile.mkdtemp(prefix="srcdiff-constants-")
    name = "srcdiff_constants_probe"
    try:
        path = os.path.join(folder, f"{name}.py")
        with open(path, "w") as fh:
            fh.write(f"NUMBERS = {tuple(range(101, 60000, 997))}\n"
                     "SCALES = (0.25, -1.5, 2.75)\nNAMES = ('w', 'b', 'params')\n")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        after_import = draw()
    finally:
        sys.modules.pop(name, None)
        shutil.rmtree(folder, ignore_errors=True)
    assert after_import == alone


def test_broadcasting_programs_match_finite_differences():
    """tests/fuzz/broadcasting.py: 12 programs, each called with 4 patterns of shapes (the
    soak: ``python -m tests.fuzz.broadcasting --n 1000``)."""
    from .fuzz.broadcasting import run

    failures = []
    stats = run(12, 5, show=failures.append)
    assert not failures, failures[0]
    assert stats["ok"] >= 20, stats  # most draws are valid shapes
