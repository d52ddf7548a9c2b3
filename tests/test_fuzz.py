"""Differential fuzzing: random programs (tests/fuzz/programs.py), differentiated by srcdiff and
held to the finite-difference oracle.

CI runs the ``fuzz-ci`` profile: 200 programs, the same on every run, a failure reported at
once with its program (``SRCDIFF_FUZZ=shrink`` reruns them and shrinks the failure to a
minimal program). The soak runs 10 000 programs: ``SRCDIFF_FUZZ=soak pytest
tests/test_fuzz.py`` or ``pytest tests/test_fuzz.py --hypothesis-profile=soak``;
``python -m tests.fuzz.programs --n 10000`` counts outcomes instead of stopping at the first
failure. Known bugs the generator avoids or tolerates meanwhile: ``programs.TOLERATED``, each
with a regression test in ``tests/fuzz/test_regressions.py``.
"""

from hypothesis import assume, given, settings

from .fuzz.programs import check_program, profile_name, programs


@settings(settings.get_profile(profile_name()))
@given(programs())
def test_random_programs_match_finite_differences(prog):
    result = check_program(prog)
    assume(result.kind != "reject")
    assert result.passed, f"{result.kind} ({result.where}): {result.detail}"
