"""The rules of runtime/elementwise.py, reductions.py and scalar_math.py over a case table:
against finite differences (float64), float32 in / float32 out, and on the duck array (no
host conversion), with the harness of tests/runtime/rule_table.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srcdiff.runtime import (creation, elementwise, reductions, rule_for, rules, scalar_math,
                             shaping)
from tests.runtime.rule_table import (BINARY_SHAPES, F, POS, REDUCTION_OPTIONS, UNARY_SHAPES,
                                      UNIT, Const, Seq, U, case, check_case_by_finite_differences,
                                      check_float32, check_on_duck_arrays, float32_cases, named,
                                      rules_without_a_case, scalar_output_cases)

# finite differences of a NaN element step from NaN to NaN (its gradient is 0 either way)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

NAN = np.nan

UNARY = [(np.arcsinh, None), (np.arccosh, (1.2, 3.0)), (np.arctanh, UNIT), (np.exp2, None),
         (np.log2, POS), (np.log10, POS), (np.cbrt, POS), (np.cbrt, (-2.0, -0.5)),
         (np.reciprocal, POS), (np.reciprocal, (-2.0, -0.5)), (np.fabs, None),
         (np.deg2rad, None), (np.radians, None), (np.rad2deg, None), (np.degrees, None),
         (np.positive, None), (np.conjugate, None), (np.sinc, None), (np.nan_to_num, None)]
MATH = [(math.asinh, None), (math.acosh, (1.2, 3.0)), (math.atanh, UNIT), (math.log2, POS),
        (math.log10, POS), (math.radians, None), (math.degrees, None), (math.erf, None),
        (math.erfc, None), (math.gamma, (0.5, 3.0)), (math.gamma, (-1.7, -1.3)),
        (math.gamma, (12.0, 14.0)), (math.lgamma, (0.1, 0.4)), (math.lgamma, (2.0, 30.0)),
        *[(getattr(math, name), None) for name in ("exp2", "cbrt") if hasattr(math, name)],
        (float, None)]  # float(x) of a number: the number itself
MATH_BINARY = [(math.atan2, None), (math.hypot, None), (math.pow, POS), (math.fmod, POS),
               (math.copysign, None), (math.remainder, POS), (math.nextafter, None)]
BINARY = [(np.hypot, None), (np.arctan2, None), (np.logaddexp, None), (np.logaddexp2, None),
          (np.fmax, None), (np.fmin, None), (np.fmod, POS), (np.copysign, None),
          (np.float_power, POS), (np.nextafter, None)]

NANS = np.array([[1.0, NAN, 2.0], [NAN, 0.5, NAN], [0.5, 3.0, NAN]])
NAN_ROW = np.array([[1.0, NAN, 2.0], [NAN, NAN, NAN]])
TIES = np.array([[3.0, 1.0, 3.0, NAN], [1.0, 1.0, 2.0, 2.0]])
ZEROS = np.array([[1.5, 0.0, 2.0, 0.5], [0.0, 0.0, 3.0, 1.2], [0.5, 1.5, 2.5, 0.8],
                  [0.7, 1.3, 0.0, 2.0]])


CASES = [
    # ----- elementwise.py -----
    *(case(fn, s, dom=d) for fn, d in UNARY for s in UNARY_SHAPES),
    *(case(fn, *ss, dom=d) for fn, d in BINARY for ss in BINARY_SHAPES),
    case(np.hypot, np.array([0.0, 3.0, 0.0]), np.array([0.0, 4.0, -2.0])),  # 0 at the origin
    case(np.fmax, np.array([NAN, 1.0, 2.0, NAN]), np.array([0.5, NAN, 2.0, -1.0])),  # NaN, tie
    case(np.fmin, np.array([NAN, 1.0, 2.0, NAN]), np.array([0.5, NAN, 2.0, -1.0])),
    case(np.heaviside, Const(np.array([0.0, 1.5, -2.0])), (3,)),
    case(np.heaviside, (2, 3), F),
    case(np.heaviside, Const(np.array([[0.0], [1.0]])), (3,)),
    case(np.ldexp, (2, 3), Const(np.array([1, 2, -1]))),
    case(np.ldexp, F, Const(3)),
    case(np.sinc, np.array([0.0, 0.5, -1.5])),
    case(np.nan_to_num, np.array([1.0, NAN, -0.5])),
    case(np.nan_to_num, np.array([1.0, NAN, np.inf, -np.inf, -0.5]), nan=1.0, posinf=2.0,
         neginf=-3.0),
    case(np.vecdot, (3,), (3,)),
    case(np.vecdot, (2, 3), (3,)),
    case(np.vecdot, (4, 1, 3), (2, 3)),
    case(np.matvec, (2, 3), (3,)),
    case(np.matvec, (4, 2, 3), (3,)),
    case(np.matvec, (2, 3), (4, 3)),
    case(np.vecmat, (3,), (3, 2)),
    case(np.vecmat, (4, 3), (3, 2)),
    case(np.vecmat, (3,), (4, 3, 2)),
    # ----- scalar_math.py and the math twins of ufuncs -----
    *(case(fn, F, dom=d) for fn, d in MATH),
    *(case(fn, F, F, dom=d) for fn, d in MATH_BINARY),
    case(math.ldexp, F, Const(-2)),
    case(math.fsum, Seq(F, F, F)),
    case(math.prod, Seq(F, F, F)),
    case(math.prod, Seq(F, F), start=2.5),
    case(math.dist, Seq(F, F, F), Seq(F, F, F)),
    # ----- reductions.py: NaN-skipping, ptp -----
    *(case(fn, s, dom=(0.5, 1.5), **opts) for fn in (np.nansum, np.nanmean, np.nanmax, np.nanmin,
                                                     np.ptp) for s, opts in REDUCTION_OPTIONS),
    *(case(fn, NANS, **opts) for fn in (np.nansum, np.nanmean, np.nanmax, np.nanmin)
      for opts in ({}, {"axis": 0}, {"axis": -1, "keepdims": True})),
    *(case(fn, s, dom=(0.5, 1.5), **opts) for fn in (np.nanprod, np.nanvar, np.nanstd)
      for s, opts in REDUCTION_OPTIONS[:7]),
    *(case(fn, NANS, **opts) for fn in (np.nanprod, np.nanvar, np.nanstd)
      for opts in ({}, {"axis": 0}, {"axis": -1, "keepdims": True})),
    case(np.nanvar, NANS, ddof=1),
    case(np.nanstd, NANS[:, :2], axis=0, ddof=1),
    case(np.nanstd, (2, 3, 4), axis=(0, 2), ddof=1, keepdims=True),
    case(np.nanprod, np.array([[0.0, NAN, 2.0], [0.0, 0.0, 3.0]]), axis=1),
    case(np.nansum, NAN_ROW, axis=1),  # an all-NaN row sums to 0
    case(np.nanmax, TIES, axis=1),
    case(np.nanmin, -TIES, axis=-1, keepdims=True),
    case(np.ptp, TIES[1:], axis=1),
    # ----- weighted mean -----
    case(np.average, (3, 4), Const(None)),
    case(np.average, (3, 4), Const(None), axis=(0, 1)),
    case(np.average, (2, 3, 4), Const(None), axis=-1, keepdims=True),
    case(np.average, (3, 4), U((3, 4), 0.5, 1.5)),  # weights: the second operand
    case(np.average, (3, 4), U((3, 4), 0.5, 1.5), axis=0, keepdims=True),
    case(np.average, (3, 4), U((4,), 0.5, 1.5), axis=1),
    case(np.average, (3, 4), U((3,), 0.5, 1.5), axis=-2),
    case(np.average, (2, 3, 4), U((2, 4), 0.5, 1.5), axis=(0, 2)),
    case(np.average, (2, 3, 4), U((4, 2), 0.5, 1.5), axis=(-1, 0), keepdims=True),
    case(np.average, (3,), U((3,), 0.5, 1.5)),
    # ----- scans -----
    *(case(fn, s, dom=(0.5, 1.5), **opts) for fn in (np.cumsum, np.cumprod) for s, opts in [
        ((5,), {}), ((2, 3), {}), ((2, 3), {"axis": 0}), ((2, 3), {"axis": -1}),
        ((2, 3, 4), {"axis": 1}), ((), {}), (F, {})]),
    case(np.cumprod, ZEROS, axis=1),  # no zero, one, two, and a zero last
    case(np.cumprod, ZEROS, axis=0),
    case(np.cumprod, ZEROS),
    case(np.cumprod, np.array([0.0, 2.0, 3.0])),
    case(np.nancumsum, NANS, axis=0),
    case(np.nancumsum, NANS),
    case(np.nancumprod, np.array([[1.5, NAN, 0.0, 2.0], [NAN, 0.5, 1.2, 0.8]]), axis=-1),
    case(np.nancumprod, NANS),
    case(np.cumulative_sum, (4,)),
    case(np.cumulative_sum, (2, 3), axis=-1, include_initial=True),
    case(np.cumulative_prod, (4,), dom=(0.5, 1.5), include_initial=True),
    case(np.cumulative_prod, ZEROS, axis=0),
    # ----- differences -----
    case(np.diff, (5,)),
    case(np.diff, (3, 4), axis=0),
    case(np.diff, (3, 5), n=2),
    case(np.diff, (2, 5, 3), n=3, axis=1),
    case(np.diff, (4,), n=0),
    case(np.diff, (3, 4), axis=-2, prepend=1.5),
    named(case(np.diff, (2, 4), n=2, append=np.ones((2, 2))), "np.diff-(2,4)-n=2,append(2,2)"),
    named(case(np.diff, (2, 4), prepend=np.zeros((2, 3)), append=0.0),
           "np.diff-(2,4)-prepend(2,3),append=0.0"),
]


# ----- against the oracle -----


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    check_case_by_finite_differences(case)


@pytest.mark.parametrize("case", float32_cases(CASES))
def test_float32_in_float32_out(case):
    check_float32(case)


def test_every_rule_of_these_modules_is_in_the_table():
    missing = rules_without_a_case(CASES, (elementwise, reductions, scalar_math))
    assert not missing, f"rules without a test case: {missing}"


def test_rule_names_are_unique_in_the_runtime():  # generated code calls rt.<name>
    names = [m.__all__ for m in (rules, creation, shaping, elementwise, reductions, scalar_math)]
    assert sum(map(len, names)) == len(set().union(*names))


# ----- on the duck array: no host conversion, numpy's values -----


DUCK_CASES = [c for c in CASES if not any(  # math reads host numbers: nothing to put on a device
    c.values[0].fn is getattr(math, n, None) for n in dir(math))]


@pytest.mark.parametrize("case", DUCK_CASES)
def test_every_rule_on_duck_arrays(case):
    check_on_duck_arrays(case)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("case", scalar_output_cases(DUCK_CASES))
def test_a_number_cotangent_on_duck_arrays(case, g):
    """grad's seed is a number: a rule reached with one on device operands makes nothing on
    the host and gives numpy's values (themselves checked against finite differences)."""
    check_on_duck_arrays(case, cotangent=g)


# ----- what the table cannot show -----


def test_extremum_ties_split_evenly_and_nan_gets_nothing():
    x = np.array([[3.0, NAN, 3.0, 3.0], [1.0, 1.0, 2.0, 2.0]])
    got = rule_for(np.nanmax).call(np.array([6.0, 1.0]), np.nanmax(x, axis=1), x, axis=1)
    np.testing.assert_allclose(got, [[2.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(rule_for(np.ptp).call(1.0, x[1:]), [[-0.5, -0.5, 0.5, 0.5]])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fn", [np.nanmean, np.nanmax, np.nanmin])
def test_an_all_nan_slice_gets_a_zero_gradient(fn):
    rule = rule_for(fn)
    ans = [fn(NAN_ROW, axis=1)] if rule.takes_ans else []
    got = rule.call(np.ones(2), *ans, NAN_ROW, axis=1)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got[1], 0.0)


def test_cumprod_gradient_with_zeros_is_exact():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    # sum(cumprod(x)) = 2 + 0 + ...: d/dx0 = 1, d/dx1 = 2 + 2*3 = 8, d/dx2 = d/dx3 = d/dx4 = 0
    np.testing.assert_array_equal(rule_for(np.cumprod).call(np.ones(5), np.cumprod(x), x),
                                  [1.0, 8.0, 0.0, 0.0, 0.0])


def test_guarded_rules_keep_a_zero_adjoint_zero():
    zero = np.zeros(2)
    for fn, x in [(np.log2, zero), (np.log10, zero), (np.reciprocal, zero), (np.cbrt, zero),
                  (np.arccosh, np.ones(2)), (np.arctanh, np.ones(2))]:
        rule = rule_for(fn)
        ans = fn(x) if rule.takes_ans else None
        with np.errstate(all="ignore"):
            got = rule.call(zero, *([ans] if rule.takes_ans else []), x)
        np.testing.assert_array_equal(got, 0.0, err_msg=fn.__name__)
    for d in rule_for(np.arctan2).call(zero, zero, zero):
        np.testing.assert_array_equal(d, 0.0)


def test_math_digamma_matches_lgamma_differences():
    for x in (0.05, 0.7, 1.0, 3.3, 9.9, 40.0, -0.5, -2.3):
        h = 1e-6 * max(1.0, abs(x))
        want = (math.lgamma(x + h) - math.lgamma(x - h)) / (2 * h)
        assert scalar_math._digamma(x) == pytest.approx(want, rel=1e-7, abs=1e-7)
    assert scalar_math._digamma(1.0) == pytest.approx(-0.5772156649015329, rel=1e-14)
