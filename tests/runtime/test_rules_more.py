"""The rules of runtime/elementwise.py, reductions.py and scalar_math.py over a case table:
against finite differences (float64), float32 in / float32 out, and on the duck array (no
host conversion), with the machinery of tests/runtime/test_rules.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srcdiff.runtime import (RULES, creation, elementwise, reductions, rule_for, rules,
                             scalar_math, shaping)
from srcdiff.testing import check_vjp
from tests.duckarray import HOST_SYNCS, DuckArray, on_device, wrap
from tests.runtime import test_rules as base
from tests.runtime.test_rules import F, POS, UNIT, Case, Const, Seq, U, case

# finite differences of a NaN element step from NaN to NaN (its gradient is 0 either way)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

NAN = np.nan
UNARY_SHAPES, BINARY_SHAPES = base.UNARY_SHAPES, base.BINARY_SHAPES
REDUCTION_OPTIONS = base.REDUCTION_OPTIONS

UNARY = [(np.arcsinh, None), (np.arccosh, (1.2, 3.0)), (np.arctanh, UNIT), (np.exp2, None),
         (np.log2, POS), (np.log10, POS), (np.cbrt, POS), (np.cbrt, (-2.0, -0.5)),
         (np.reciprocal, POS), (np.reciprocal, (-2.0, -0.5)), (np.fabs, None),
         (np.deg2rad, None), (np.radians, None), (np.rad2deg, None), (np.degrees, None),
         (np.positive, None), (np.conjugate, None), (np.sinc, None), (np.nan_to_num, None)]
MATH = [(math.asinh, None), (math.acosh, (1.2, 3.0)), (math.atanh, UNIT), (math.log2, POS),
        (math.log10, POS), (math.radians, None), (math.degrees, None), (math.erf, None),
        (math.erfc, None), (math.gamma, (0.5, 3.0)), (math.gamma, (-1.7, -1.3)),
        (math.gamma, (12.0, 14.0)), (math.lgamma, (0.1, 0.4)), (math.lgamma, (2.0, 30.0)),
        *[(getattr(math, name), None) for name in ("exp2", "cbrt") if hasattr(math, name)]]
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



def _weights(*shape):
    return np.linspace(0.5, 1.5, math.prod(shape)).reshape(shape)


def _named(param, label):
    """A case with a label of its own (an array option would spell out its values)."""
    return pytest.param(*param.values, id=label)


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
    case(np.average, (3, 4)),
    case(np.average, (3, 4), axis=(0, 1)),
    case(np.average, (2, 3, 4), axis=-1, keepdims=True),
    _named(case(np.average, (3, 4), weights=_weights(3, 4)), "np.average-(3,4)-weights(3,4)"),
    _named(case(np.average, (3, 4), weights=_weights(3, 4), axis=0, keepdims=True),
           "np.average-(3,4)-weights(3,4)-axis=0,keepdims=True"),
    _named(case(np.average, (3, 4), weights=_weights(4), axis=1),
           "np.average-(3,4)-weights(4)-axis=1"),
    _named(case(np.average, (3, 4), weights=_weights(3), axis=-2),
           "np.average-(3,4)-weights(3)-axis=-2"),
    _named(case(np.average, (2, 3, 4), weights=_weights(2, 4), axis=(0, 2)),
           "np.average-(2,3,4)-weights(2,4)-axis=(0,2)"),
    _named(case(np.average, (2, 3, 4), weights=_weights(4, 2), axis=(-1, 0), keepdims=True),
           "np.average-(2,3,4)-weights(4,2)-axis=(-1,0),keepdims=True"),
    _named(case(np.average, (3,), weights=_weights(3)), "np.average-(3,)-weights(3)"),
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
    _named(case(np.diff, (2, 4), n=2, append=np.ones((2, 2))), "np.diff-(2,4)-n=2,append(2,2)"),
    _named(case(np.diff, (2, 4), prepend=np.zeros((2, 3)), append=0.0),
           "np.diff-(2,4)-prepend(2,3),append=0.0"),
]


# ----- the table's primitives, called as the rules see them -----


_primal = base._primal


def _setup(case, dtype=None):
    rng = np.random.default_rng(0)
    args = [base._draw(spec, rng, case.dom) for spec in case.operands]
    if dtype is not None:
        args = [base._cast(a, spec, dtype) for a, spec in zip(args, case.operands)]
    ans = _primal(case.fn)(*args, **case.options)
    return args, ans, base._cotangent(ans, rng)


# ----- against the oracle -----


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    args, ans, g = _setup(case)
    flat = base._flatten(case, args, base._run_rule(case, args, g, ans))
    for arg, grad, active in flat:
        if not active:
            assert grad is None, "an operand that is a constant has no adjoint"
    argnums = [i for i, (_, _, active) in enumerate(flat) if active]
    check_vjp(lambda *xs: _primal(case.fn)(*base._unflatten(case, xs), **case.options),
              [a for a, _, _ in flat], [flat[i][1] for i in argnums], cotangent=g, argnums=argnums)


@pytest.mark.parametrize("case", [c for c in CASES
                                  if any(map(base._has_array, c.values[0].operands))])
def test_float32_in_float32_out(case):
    args, ans, g = _setup(case, np.float32)
    args64, ans64, g64 = _setup(case)
    flat = base._flatten(case, args, base._run_rule(case, args, g, ans))
    flat64 = base._flatten(case, args64, base._run_rule(case, args64, g64, ans64))
    for (arg, grad, active), (_, grad64, _) in zip(flat, flat64):
        if not active or grad is None:
            continue
        assert np.shape(grad) == np.shape(arg)
        if isinstance(arg, np.ndarray) and arg.dtype == np.float32:
            assert grad.dtype == np.float32, f"float32 operand got a {grad.dtype} adjoint"
        np.testing.assert_allclose(grad, grad64, rtol=2e-4, atol=2e-5)


def test_every_rule_of_these_modules_is_in_the_table():
    covered = {c.values[0].fn for c in CASES}
    modules = {m.__name__ for m in (elementwise, reductions, scalar_math)}
    missing = [base._name(fn) for fn, rule in RULES.items()
               if rule.raw.__module__ in modules and fn not in covered]
    assert not missing, f"rules without a test case: {missing}"


def test_rule_names_are_unique_in_the_runtime():  # generated code calls rt.<name>
    names = [m.__all__ for m in (rules, creation, shaping, elementwise, reductions, scalar_math)]
    assert sum(map(len, names)) == len(set().union(*names))


# ----- on the duck array: no host conversion, numpy's values -----


def _duck_option(key, value):
    return wrap(value) if isinstance(value, np.ndarray) else value  # prepend=, append= arrays


def _on_duck(case, args, g=None):
    """The rule of ``case`` with ``args`` on the duck array; ``g`` None: the table's cotangent,
    on the duck array where the primitive's output is one."""
    duck_args = [_duck(a) for a in args]
    options = {k: _duck_option(k, v) for k, v in case.options.items()}
    duck_case = Case(case.fn, case.operands, options, case.dom)
    duck_ans = on_device(_primal(case.fn), case.fn)(*duck_args, **options)
    if g is None:
        g = _setup(case)[2]
        g = wrap(np.asarray(g)) if type(duck_ans) is DuckArray else g
    HOST_SYNCS.reset()
    got = base._run_rule(duck_case, duck_args, g, duck_ans)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    return base._flatten(duck_case, duck_args, got)


def _duck(value):
    return [_duck(v) for v in value] if isinstance(value, list) else wrap(value)


DUCK_CASES = [c for c in CASES if not any(  # math reads host numbers: nothing to put on a device
    c.values[0].fn is getattr(math, n, None) for n in dir(math))]


@pytest.mark.parametrize("case", DUCK_CASES)
def test_every_rule_on_duck_arrays(case):
    args, ans, g = _setup(case)
    want = base._flatten(case, args, base._run_rule(case, args, g, ans))
    got = _on_duck(case, args)
    for (arg, grad, active), (_, expected, _) in zip(got, want):
        if not active or expected is None:
            assert grad is None or not active
            continue
        if type(arg) is DuckArray:
            assert type(grad) is DuckArray, f"a {type(grad).__name__} adjoint for a DuckArray"
            assert grad.shape == arg.shape
        values = grad.get() if type(grad) is DuckArray else grad
        np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-14)


NUMBER_G_CASES = [c for c in DUCK_CASES if np.ndim(_setup(c.values[0])[1]) == 0]


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("case", NUMBER_G_CASES)
def test_a_number_cotangent_on_duck_arrays(case, g):
    """grad's seed is a number: a rule reached with one on device operands makes nothing on
    the host and gives numpy's values (themselves checked against finite differences)."""
    args, ans, _ = _setup(case)
    want = base._flatten(case, args, base._run_rule(case, args, g, ans))
    active = [i for i, (_, _, a) in enumerate(want) if a]
    check_vjp(lambda *xs: _primal(case.fn)(*base._unflatten(case, xs), **case.options),
              [a for a, _, _ in want], [want[i][1] for i in active], cotangent=g, argnums=active)
    for (arg, grad, active), (_, expected, _) in zip(_on_duck(case, args, g), want):
        if not active or expected is None:
            continue
        if type(arg) is DuckArray:
            assert type(grad) is not np.ndarray, "a host numpy array for a DuckArray operand"
        values = grad.get() if type(grad) is DuckArray else grad
        np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-14)


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
