"""The fuzz-ci programs depend on the test and the generator only, not on what else is imported.

Hypothesis (6.131 on) mixes "local constants" into its draws: the numbers and strings in the
source of every module in ``sys.modules`` that is neither the standard library, nor
site-packages, nor a test file (``providers._get_local_constants``). With ``derandomize=True``
the fuzz-ci programs were therefore a function of which such modules happened to be imported
before tests/test_fuzz.py ran (examples/linear_regression.py, imported by
tests/test_examples.py as ``srcdiff_example_linear_regression``, or srcdiff's own modules) and
of the literals in them: ``pytest tests/test_fuzz.py`` and ``pytest tests/test_examples.py
tests/test_fuzz.py`` ran different programs, and editing a number in srcdiff changed the CI
programs. :func:`no_local_constants` gives Hypothesis an empty pool while the fuzzer draws.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def no_local_constants():
    """Within: Hypothesis draws no constants from the source of imported modules (its own
    built-in constants stay), so the programs a derandomized run draws are the same whatever
    has been imported. Hypothesis has no setting for this; the pool is private, so a
    Hypothesis without it is left as it is (tests/test_fuzz.py checks the outcome)."""
    try:
        from hypothesis.internal.conjecture import providers
        get, cache, empty = (providers._get_local_constants, providers.CONSTANTS_CACHE,
                             providers.Constants())
    except (ImportError, AttributeError):
        yield
        return
    providers._get_local_constants = lambda: empty
    cache.cache.clear()  # (type, constraints) -> the permitted constants, local ones included
    try:
        yield
    finally:
        providers._get_local_constants = get
        cache.cache.clear()
