"""The rules of runtime/statistics.py over a case table: against finite differences (float64),
float32 in / float32 out, and on the duck array (no host conversion), with the harness of
tests/runtime/rule_table.py. ``np.cov``/``np.corrcoef`` of two arrays and ``np.trapezoid``
with sample points (a variadic operand, which the table's cases do not hold) and ties have
tests of their own below."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.errors import SrcdiffError
from srcdiff.runtime import rule_for, statistics
from srcdiff.testing import check_vjp
from tests.duckarray import HOST_SYNCS, DuckArray, wrap
from tests.runtime.rule_table import (F, case, check_case_by_finite_differences, check_float32,
                                      check_on_duck_arrays, float32_cases, rules_without_a_case,
                                      scalar_output_cases)

XP = np.array([-1.5, -0.4, 0.3, 0.9, 2.0])  # interp's sample points (increasing)

ORDER_STATISTICS = [
    ((5,), {}), ((6,), {}), ((4, 5), {"axis": 0}), ((4, 5), {"axis": -1, "keepdims": True}),
    ((3, 4), {"keepdims": True}), ((2, 3, 4), {"axis": (0, 2)}), ((2, 4, 3), {"axis": 1}),
    ((), {}), (F, {}),
]

CASES = [
    # ----- order statistics -----
    *(case(fn, s, **o) for fn in (np.median, np.nanmedian) for s, o in ORDER_STATISTICS),
    *(case(fn, s, q=q, **o) for fn, q in ((np.quantile, 0.3), (np.nanquantile, 0.75),
                                          (np.percentile, 30.0), (np.nanpercentile, 62.5))
      for s, o in ORDER_STATISTICS),
    case(np.quantile, (7,), q=[0.1, 0.5, 0.9]),
    case(np.quantile, (4, 5), q=np.array([[0.2], [0.65]]), axis=1),
    case(np.percentile, (3, 6), q=(10.0, 90.0), axis=0, keepdims=True),
    case(np.nanquantile, (6, 3), q=[0.25, 1.0], axis=0),
    *(case(np.quantile, (4, 6), q=0.35, axis=1, method=m) for m in statistics._ELEMENT),
    case(np.quantile, (5,), q=0.3, method="midpoint"),
    *(case(np.quantile, (4, 6), q=q, axis=1, method=m) for m in statistics._CONTINUOUS
      for q in (0.02, 0.35, 0.97)),  # beyond the first and last positions too
    case(np.percentile, (7,), q=[5.0, 50.0, 99.0], method="hazen"),
    case(np.percentile, (2, 3, 4), q=40.0, axis=(0, 2), method="median_unbiased", keepdims=True),
    case(np.nanpercentile, (2, 5), q=[40.0, 80.0], axis=-1, method="nearest"),
    case(np.quantile, (6,), q=0.0),
    case(np.quantile, (6,), q=1.0),
    # ----- signals -----
    *(case(fn, sa, sv, mode=mode) for fn in (np.convolve, np.correlate)
      for mode in ("full", "same", "valid")
      for sa, sv in (((5,), (3,)), ((3,), (5,)), ((4,), (4,)), ((2,), (5,)), ((6,), (1,)),
                     )),
    case(np.convolve, (), (3,)),  # a number is one sample (np.correlate takes none)
    case(np.convolve, (4,), (), mode="same"),
    case(np.convolve, (5,), (2,)),
    case(np.correlate, (5,), (2,)),
    case(np.interp, (7,), XP, (5,)),
    case(np.interp, (2, 3), XP, (5,), left=0.5, right=-2.0),
    case(np.interp, (), XP, (5,)),
    case(np.interp, F, XP, (5,), right=3.0),
    # ----- sample statistics -----
    case(np.cov, (3, 6)),
    case(np.cov, (6, 3), rowvar=False),
    case(np.cov, (2, 5), bias=True),
    case(np.cov, (3, 5), ddof=2),
    case(np.cov, (5,)),  # one variable: a number out
    case(np.cov, (1, 5)),
    case(np.cov, (5, 2), rowvar=False, ddof=0),
    case(np.corrcoef, (3, 6)),
    case(np.corrcoef, (7, 2), rowvar=False),
    case(np.corrcoef, (4,)),  # one variable: 1.0
    case(np.trapezoid, (5,)),
    case(np.trapezoid, (2, 5), dx=0.3),
    case(np.trapezoid, (4, 3), axis=0),
    case(np.trapezoid, (2, 3, 4), dx=2.0, axis=1),
    case(np.trapezoid, (1,)),
    case(np.ediff1d, (5,)),
    case(np.ediff1d, (2, 3)),
    case(np.ediff1d, (4,), to_begin=[1.0, 2.0], to_end=3.0),
    case(np.ediff1d, (), to_end=[0.0]),
    case(np.ediff1d, F, to_begin=1.0),
]


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    check_case_by_finite_differences(case)


@pytest.mark.parametrize("case", float32_cases(CASES))
def test_float32_in_float32_out(case):
    check_float32(case)


def test_every_rule_of_statistics_is_in_a_table():
    assert not rules_without_a_case(CASES, (statistics,))


@pytest.mark.parametrize("case", CASES)
def test_every_rule_on_duck_arrays(case):
    check_on_duck_arrays(case)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("case", scalar_output_cases(CASES))
def test_a_number_cotangent_on_duck_arrays(case, g):
    check_on_duck_arrays(case, cotangent=g)


# ----- np.cov and np.corrcoef of two arrays, np.trapezoid with sample points -----
# (a second operand that is variadic in the rule: the rule is called as the compiler calls it)

# (function, operand shapes, options)
TWO_OPERANDS = [
    (np.cov, ((3, 5), (5,)), {}),
    (np.cov, ((2, 5), (3, 5)), {"bias": True}),
    (np.cov, ((5,), (5,)), {"ddof": 0}),
    (np.cov, ((5, 2), (5, 3)), {"rowvar": False}),
    (np.cov, ((5, 2), (5,)), {"rowvar": False}),
    (np.corrcoef, ((5,), (5,)), {}),
    (np.corrcoef, ((2, 6), (6,)), {}),
    (np.corrcoef, ((6, 2), (6, 2)), {"rowvar": False}),
    (np.trapezoid, ((5,), (5,)), {}),
    (np.trapezoid, ((2, 5), (5,)), {}),
    (np.trapezoid, ((2, 5), (2, 5)), {}),
    (np.trapezoid, ((4, 3), (4,)), {"axis": 0}),
    (np.trapezoid, ((2, 4, 3), (2, 4, 3)), {"axis": -2}),
    (np.trapezoid, ((5,), (2, 5)), {}),  # x broadcasts against y
]

TWO_CASES = [pytest.param(fn, shapes, options, id=f"np.{fn.__name__}-{shapes}-{options}"
                          .replace(" ", "")) for fn, shapes, options in TWO_OPERANDS]


def _two_setup(fn, shapes, options, dtype=np.float64):
    rng = np.random.default_rng(1)
    args = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if fn is np.trapezoid:  # increasing sample points
        args[1] = np.cumsum(rng.uniform(0.2, 1.0, shapes[1]), axis=-1).astype(dtype)
    ans = fn(*args, **options)
    return args, ans, rng.standard_normal(np.shape(ans)).astype(ans.dtype)


@pytest.mark.parametrize("fn, shapes, options", TWO_CASES)
def test_two_operand_rule_matches_finite_differences(fn, shapes, options):
    args, ans, g = _two_setup(fn, shapes, options)
    rule = rule_for(fn)
    grads = rule.call(g, *([ans] if rule.takes_ans else []), *args, **options)
    check_vjp(lambda *xs: fn(*xs, **options), args, grads, cotangent=g)


@pytest.mark.parametrize("fn, shapes, options", TWO_CASES)
def test_two_operand_rule_float32_and_duck_arrays(fn, shapes, options):
    rule = rule_for(fn)
    args, ans, g = _two_setup(fn, shapes, options)
    want = rule.call(g, *([ans] if rule.takes_ans else []), *args, **options)
    args32, ans32, g32 = _two_setup(fn, shapes, options, np.float32)
    got32 = rule.call(g32, *([ans32] if rule.takes_ans else []), *args32, **options)
    for d32, d, x in zip(got32, want, args32):
        assert d32.dtype == np.float32 and d32.shape == x.shape
        np.testing.assert_allclose(d32, d, rtol=2e-3, atol=2e-4)
    duck = [wrap(a) for a in args]
    HOST_SYNCS.reset()
    got = rule.call(wrap(g), *([fn(*duck, **options)] if rule.takes_ans else []), *duck,
                    **options)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for d, w in zip(got, want):
        assert type(d) is DuckArray
        np.testing.assert_allclose(d.get(), w, rtol=1e-12, atol=1e-14)


# ----- ties: g split evenly among equal elements (as np.max does) -----
# Where two elements tie, central differences give each half of g, which the oracle checks.
# Where more tie, central differences do not split evenly (the one-sided slopes differ): the
# oracle checks the sum of the tied elements' gradients, the slope of moving them together.

TIES = [
    (np.median, np.array([1.0, 2.0, 2.0, 3.0]), {}),
    (np.median, np.array([1.0, 2.0, 2.0]), {}),
    (np.median, np.array([[2.0, 2.0, 4.0, 5.0], [1.0, 3.0, 0.0, 3.0]]), {"axis": 1}),
    (np.nanmedian, np.array([np.nan, 1.0, 2.0, 2.0]), {}),
    (np.quantile, np.array([0.0, 1.0, 1.0, 2.0]), {"q": 0.3}),
    (np.quantile, np.array([0.0, 1.0, 1.0, 4.0, 2.0]), {"q": 0.6, "method": "lower"}),
    (np.percentile, np.array([3.0, 1.0, 3.0, 0.0]), {"q": 90.0, "method": "midpoint"}),
]
MANY_TIES = [
    (np.median, np.array([2.0, 2.0, 2.0, 5.0]), {}, 2.0),
    (np.quantile, np.array([0.0, 1.0, 1.0, 1.0, 2.0]), {"q": 0.3}, 1.0),
    (np.nanquantile, np.array([1.0, np.nan, 1.0, 1.0, 0.0]), {"q": 0.8, "method": "higher"}, 1.0),
]


def _adjoint(fn, a, options, g):
    rule = rule_for(fn)
    return rule.call(g, *([fn(a, **options)] if rule.takes_ans else []), a, **options)


@pytest.mark.parametrize("fn, a, options", TIES,
                         ids=[f"np.{f.__name__}-{a.tolist()}-{o}".replace(" ", "")
                              for f, a, o in TIES])
def test_two_tied_elements_get_half_each(fn, a, options):
    g = np.random.default_rng(2).standard_normal(np.shape(fn(a, **options)))
    check_vjp(lambda x: fn(x, **options), (a,), (_adjoint(fn, a, options, g),), cotangent=g)


@pytest.mark.parametrize("fn, a, options, tied", MANY_TIES,
                         ids=[f"np.{f.__name__}-{a.tolist()}-{o}".replace(" ", "")
                              for f, a, o, _ in MANY_TIES])
def test_many_tied_elements_share_evenly(fn, a, options, tied):
    da = _adjoint(fn, a, options, 1.0)
    mask = a == tied
    assert np.all(da[mask] == da[mask][0]) and np.all(da[~mask] == 0.0)
    check_vjp(lambda t: fn(a + t * mask, **options), (0.0,), (np.sum(da[mask]),))


# ----- options without a rule: refused when the rule runs (a value the compiler could not
# read), before it computes -----

@pytest.mark.parametrize("fn, args, options, match", [
    (np.quantile, (np.ones(3), np.ones(3)), {"q": 0.5, "method": "averaged_inverted_cdf"},
     "method='averaged_inverted_cdf'"),
    (np.nanpercentile, (1.0, np.ones(3)), {"q": 5.0, "method": "weibull"}, "method='weibull'"),
    (np.interp, (np.ones(2), np.ones(2), np.arange(3.0), np.ones(3)), {"period": 2.0},
     "period=2.0"),
    (np.cov, (np.ones(3), np.ones(3)), {"aweights": np.ones(3)}, "aweights="),
    (np.convolve, (np.ones(3), np.ones(3), np.ones(2)), {"mode": "middle"}, "mode='middle'"),
], ids=["quantile-averaged_inverted_cdf", "nanpercentile-weibull", "interp-period", "cov-aweights",
        "convolve-mode"])
def test_options_without_a_rule_are_refused(fn, args, options, match):
    rule = rule_for(fn)
    g, *operands = args
    ans = [np.ones(1)] if rule.takes_ans else []
    with pytest.raises(SrcdiffError, match=match):
        rule.call(g, *ans, *operands, **options)


def test_interp_of_one_sample_point_is_refused():
    with pytest.raises(SrcdiffError, match="two or more sample points"):
        rule_for(np.interp).call(np.ones(3), np.ones(3), np.ones(1), np.ones(1))
