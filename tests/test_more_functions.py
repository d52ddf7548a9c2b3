"""End to end: the ufuncs, ``math`` functions, reductions and scans of runtime/elementwise.py,
reductions.py and scalar_math.py through grad, value_and_grad and vjp, on several shapes
(broadcast operands, 0-d arrays, Python floats), float32, and on the duck array."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .duckarray import HOST_SYNCS, DuckArray, wrap
from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_array_output, draw, shape_cases)
from .helpers import make_function

UNARY_SHAPES = [(F,), ((),), ((3,),), ((2, 3),)]
BINARY_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (3,)), (F, (3,)), ((2, 3), F), (F, F)]
REDUCED_SHAPES = [((2, 3, 4),), ((3, 4),)]

# name: (source, domain of the arguments, their shapes: one tuple per case); one number out
FUNCTIONS = {
    "hypot_arctan2": ("""
        def f(x, y):
            return np.sum(np.hypot(x, y) * np.arctan2(x, y))
        """, None, BINARY_SHAPES),
    "logaddexp": ("""
        def f(x, y):
            return np.sum(np.logaddexp(x, y) - 2.0 * np.logaddexp2(y, x))
        """, None, BINARY_SHAPES),
    "fmax_fmin": ("""
        def f(x, y):
            return np.sum(np.fmax(x, y) * 3.0 + np.fmin(x, y) ** 2)
        """, None, BINARY_SHAPES),
    "fmod_copysign_float_power": ("""
        def f(x, y):
            return np.sum(np.fmod(x, y) + np.copysign(x, y - 1.0) * np.float_power(y, x))
        """, (0.5, 2.0), BINARY_SHAPES),
    "heaviside_ldexp_nextafter": ("""
        def f(x, y):
            return np.sum(np.heaviside(x - 1.0, y) * x + np.ldexp(x * y, 2) + np.nextafter(x, y))
        """, (0.5, 2.0), BINARY_SHAPES),
    "unary": ("""
        def f(x):
            s = np.arcsinh(x) + np.exp2(x) + np.cbrt(x) + np.sinc(x)
            return np.sum(s * np.deg2rad(x) + np.rad2deg(x) * np.fabs(x))
        """, None, UNARY_SHAPES),
    "unary_positive": ("""
        def f(x):
            s = np.log2(x) * np.log10(x) + np.reciprocal(x)
            return np.sum(s + np.arccosh(x + 1.0) + np.arctanh(x / 4.0) + np.nan_to_num(x))
        """, (0.5, 2.0), UNARY_SHAPES),
    "unary_identity": ("""
        def f(x):
            return np.sum(np.positive(x) * np.conjugate(x) + np.radians(x) - np.degrees(x))
        """, None, UNARY_SHAPES),
    "methods": ("""
        def f(x):
            s = x.cumsum(-1) * x.conj() + x.cumprod(axis=-1) * x.conjugate()
            return np.sum(s) + x.cumsum()[-1]
        """, (0.5, 1.5), [((4,),), ((2, 3),)]),
    "nan_reductions": ("""
        def f(x):
            top = np.nanmax(x, axis=(0, -1))
            low = np.nanmin(x, axis=-1, keepdims=True)
            return np.nansum(x * x) + np.sum(np.nanmean(np.sin(x), axis=0) * 2.0) \\
                + np.sum(top * top) + np.sum(low * x)
        """, None, REDUCED_SHAPES),
    "nan_moments": ("""
        def f(x):
            s = np.sum(np.nanvar(x, axis=0)) + np.sum(np.nanstd(x, axis=(0, -1), ddof=1))
            s = s + np.sum(np.nanprod(x, axis=-1)) + np.sum(np.nancumsum(x, axis=1) * x)
            return s + np.sum(np.nancumprod(x, axis=0))
        """, (0.5, 1.5), REDUCED_SHAPES),
    "cumulative": ("""
        def f(x):
            c = np.cumulative_sum(x, axis=-1, include_initial=True)
            return np.sum(c * c) + np.sum(np.cumulative_prod(x, axis=0))
        """, (0.5, 1.5), REDUCED_SHAPES),
    "ptp": ("""
        def f(x):
            spread = np.ptp(x, axis=-1, keepdims=True)
            return np.sum(np.ptp(x, axis=1) ** 2) + np.ptp(x) + np.sum(spread * x)
        """, None, REDUCED_SHAPES),
    "scans": ("""
        def f(x):
            return np.sum(np.cumsum(x, axis=-1) ** 2) + np.sum(np.cumprod(x, axis=0) * x)
        """, (0.5, 1.5), REDUCED_SHAPES + [((5,),)]),
    "scan_methods": ("""
        def f(x):
            return np.sum(x.cumprod(1) * x.cumsum(axis=0))
        """, (0.5, 1.5), REDUCED_SHAPES),
    "average": ("""
        W = np.linspace(0.5, 1.5, 8).reshape(2, 4)

        def f(x):
            return np.sum(np.average(x, axis=(0, 2), weights=W) ** 2) + np.average(x) \\
                + np.sum(np.average(x ** 2, axis=1, keepdims=True) * x)
        """, None, REDUCED_SHAPES[:1]),
    "diff": ("""
        def f(x):
            d = np.diff(x, axis=1)
            return np.sum(d * d) + np.sum(np.diff(x, n=2, prepend=0.0, append=1.0) ** 3)
        """, None, REDUCED_SHAPES),
    "math": ("""
        def f(a, b):
            s = math.erf(a) * math.erfc(b) + math.gamma(b) + math.lgamma(a + 2.0)
            s = s + math.atan2(a, b) * math.hypot(a, b) + math.pow(b, a) + math.fmod(a, b)
            s = s + math.remainder(a, b) + math.log2(b) * math.log10(b) + math.asinh(a)
            s = s + math.acosh(b + 1.0) + math.atanh(a / 3.0) + math.copysign(a, b)
            s = s + math.ldexp(a, 3) + math.degrees(a) * math.radians(b) + math.nextafter(a, b)
            s = s + math.fsum([a, b, a * b]) + math.prod([a, b, 2.0])
            return s + math.dist([a, b], [b, 0.5])
        """, (0.5, 2.0), ((F, F),)),
}


CASES = shape_cases((name, all_shapes) for name, (_, _, all_shapes) in FUNCTIONS.items())


def _setup(name, shapes, seed=0):
    source, dom, _ = FUNCTIONS[name]
    return make_function(source, "f"), draw(shapes, seed, dom)


@pytest.mark.parametrize("name, shapes", CASES)
def test_grad_matches_finite_differences(name, shapes):
    check_grad_by_finite_differences(*_setup(name, shapes))


@pytest.mark.parametrize("name, shapes", CASES)
def test_value_and_grad(name, shapes):
    check_value_and_grad(*_setup(name, shapes, seed=1))


@pytest.mark.parametrize("name, shapes", CASES)
def test_float32_in_float32_out(name, shapes):
    check_float32_gradients(*_setup(name, shapes))


# ----- vjp of array outputs -----

ARRAY_OUTPUTS = {
    "scans": "def f(x, y):\n    return np.cumsum(x * y, axis=0) - np.cumprod(x, axis=-1) * y\n",
    "nan_reductions": ("def f(x, y):\n"
                       "    top = np.nanmax(x, axis=0)\n"
                       "    return top * y + np.nansum(x, axis=-1, keepdims=True)\n"),
    "diff_average": ("def f(x, y):\n"
                     "    return np.diff(x, axis=0) * np.average(x * y, axis=0)\n"),
    "binary": "def f(x, y):\n    return np.hypot(x, y) + np.fmax(x, y) * np.logaddexp(x, y)\n",
}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
@pytest.mark.parametrize("yshape", [(4,), (3, 4), ()], ids=str)
def test_vjp_of_array_outputs(name, yshape):
    rng = np.random.default_rng(2)
    args = rng.uniform(0.5, 1.5, (3, 4)), rng.uniform(0.5, 1.5, yshape)
    check_vjp_of_array_output(make_function(ARRAY_OUTPUTS[name], "f"), args, rng,
                              on_duck_arrays=False)


# ----- on the duck array: the generated code never goes to the host -----


# math reads host numbers; average's weights are a host constant there (see the test below)
DUCK_CASES = [c for c in CASES if c.values[0] not in ("math", "average") and F not in c.values[1]]


@pytest.mark.parametrize("name, shapes", DUCK_CASES)
def test_gradients_on_duck_arrays(name, shapes):
    check_gradients_on_duck_arrays(*_setup(name, shapes))


def test_average_with_weights_passed_in_on_duck_arrays():
    fn = make_function("""
        def f(x, w):
            return np.sum(np.average(x, axis=(0, 2), weights=w) ** 2)
        """, "f")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 4)), rng.uniform(0.5, 1.5, (2, 4))
    want = srcdiff.grad(fn)(x, w)
    check_grad(fn, (x, w), (want,), argnums=(0,))
    HOST_SYNCS.reset()
    got = srcdiff.grad(fn)(wrap(x), wrap(w))
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(got) is DuckArray
    np.testing.assert_allclose(got.get(), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("call, shapes", [
    ("np.average(x, weights=w)", ((3,), (3,))),
    ("np.average(x, None, w)", ((3,), (3,))),
    ("np.sum(np.average(x, axis=1, weights=w) ** 2)", ((2, 3), (3,))),
    ("np.sum(np.average(x, axis=(0, 2), weights=np.exp(w), keepdims=True) * x)", ((2, 3, 4), (2, 4))),
])
def test_weights_that_need_a_gradient_are_differentiated(call, shapes):
    """Fuzz finding O13: np.average's weights were refused as an option."""
    fn = make_function(f"""
        def f(x, w):
            return {call}
        """, "f")
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(shapes[0]), rng.uniform(0.5, 1.5, shapes[1])
    check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w))


@pytest.mark.parametrize("expr", ["np.log2(x)", "np.log10(x)", "np.cbrt(x)", "np.reciprocal(x)",
                                  "np.arccosh(x + 1.0)", "np.arctanh(x - 1.0)",
                                  "np.arctan2(x, x)"])
def test_a_masked_branch_gets_a_zero_gradient_not_nan(expr):
    fn = make_function(f"""
        def f(x):
            return np.sum(np.where(x > 0, {expr}, 0.0))
        """, "f")
    x = np.array([-1.0, 0.0, 0.5])
    with np.errstate(all="ignore"):
        got = srcdiff.grad(fn)(x)
    np.testing.assert_array_equal(got[:2], 0.0)
    assert np.isfinite(got[2])
