"""End to end: the functions of runtime/statistics.py (order statistics, signals, interpolation,
covariance, integration) through grad, value_and_grad and vjp, on several shapes (odd and even
lengths, axes, keepdims, Python floats and 0-d arrays where numpy takes them), float32, and on
the duck array; what srcdiff refuses, at the user's line."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff

from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_a_number, check_vjp_of_array_output, draw, shape_cases)
from .helpers import make_function

# name: (source, the arguments' shapes: one tuple per case); one number out
FUNCTIONS = {
    "median": ("""
        def f(x):
            m = np.median(x)
            return m * np.sum(np.median(x * x, axis=-1, keepdims=True) * x) + np.sin(m)
        """, [((5,),), ((6,),), ((3, 4),), ((2, 3, 5),)]),
    "median_of_a_number": ("""
        def f(x):
            return np.median(x) ** 2 + np.nanmedian(3.0 * x)
        """, [(F,), ((),)]),
    "quantiles": ("""
        def f(x):
            q = np.quantile(x, [0.1, 0.5, 0.8], axis=0)
            p = np.percentile(x, 35.0, axis=(0, -1), keepdims=True)
            return np.sum(q ** 3) + np.sum(p * x) + np.quantile(x, 0.9) ** 2
        """, [((4, 5),), ((5, 3, 2),)]),
    "methods": ("""
        def f(x):
            return np.sum(np.quantile(x, 0.3, axis=-1, method="lower") ** 3) \\
                + np.sum(np.percentile(x, 70.0, axis=0, method="midpoint") ** 2) \\
                + np.sum(np.quantile(x, [0.2, 0.6], method="nearest") * 2.0) \\
                + np.sum(np.percentile(x, [3.0, 60.0], axis=-1, method="hazen") ** 3) \\
                + np.quantile(x, 0.45, method="weibull")
        """, [((4, 5),), ((6, 3),)]),
    "nan_statistics": ("""
        def f(x):
            y = np.where(x > 0.8, np.nan, x)
            return np.sum(np.nanmedian(y, axis=0) ** 2) + np.nanquantile(y, 0.4) \\
                + np.sum(np.nanpercentile(y, [25.0, 80.0], axis=-1) ** 3)
        """, [((5, 4),), ((6, 7),)]),
    "convolve": ("""
        def f(a, v):
            return np.sum(np.convolve(a, v) ** 2) + np.sum(np.sin(np.convolve(a, v, "same"))) \\
                + np.sum(np.convolve(v, a * a, mode="valid") ** 3)
        """, [((5,), (3,)), ((3,), (4,)), ((4,), (4,)), ((), (3,)), (F, (2,))]),
    "correlate": ("""
        def f(a, v):
            return np.sum(np.correlate(a, v) ** 2) + np.sum(np.correlate(a, v, "full") * a[0]) \\
                + np.sum(np.correlate(v, a, mode="same") ** 3)
        """, [((5,), (3,)), ((3,), (5,)), ((4,), (4,)), ((6,), (1,))]),
    "interp": ("""
        def f(x, fp):
            xp = np.array([-1.5, -0.5, 0.25, 1.0, 2.0])
            y = np.interp(x, xp, fp)
            return np.sum(y ** 2) + np.sum(np.interp(2.0 * x, xp, fp * fp, left=0.5, right=-1.0))
        """, [((7,), (5,)), ((2, 3), (5,)), ((), (5,)), (F, (5,))]),
    "constant_lists": ("""
        def f(y):
            return np.sum(np.convolve(y, [1.0, -2.0, 1.0], "same") ** 2) \\
                + np.sum(np.correlate([0.5, 1.0], y[:3] * y[-1], "full") ** 3) \\
                + np.trapezoid(y ** 2, [0.0, 0.5, 1.5, 2.0]) + np.median([1.0, 2.0, 4.0]) * y[0]
        """, [((4,),)]),
    "displays_of_numbers": ("""
        def f(a, b, c):
            return np.median([a, b, 2.0 * c]) + np.quantile([a, b, c], 0.3) \\
                + np.sum(np.convolve([a, b], [c, 1.0]) ** 2) + np.trapezoid([a, b, c]) \\
                + np.interp(a, [b, c + 3.0], [1.0, 2.0]) + np.sum(np.ediff1d([a, b, c]) ** 2) \\
                + np.cov([a, b, c, a * a]) + np.interp(a, [0.0, 1.0], [b, c])
        """, [(F, F, F), ((), (), ())]),
    "interp_lists": ("""
        def f(x, fp):
            return np.sum(np.interp(x, [0, 1, 2.5], fp) ** 2) + np.sum(np.interp(x, [0.0, 1.0], [1, 3]) * x)
        """, [((6,), (3,)), ((), (3,))]),
    "interp_knots": ("""
        def f(x, steps, fp):
            xp = np.cumsum(np.exp(steps)) - 2.0
            return np.sum(np.sin(np.interp(x, xp, fp)))
        """, [((6,), (4,), (4,)), ((2, 3), (5,), (5,))]),
    "cov": ("""
        def f(x, y):
            c = np.cov(x, y)
            return np.sum(c ** 2) + np.sum(np.cov(x, rowvar=False, bias=True) * 3.0) \\
                + np.sum(np.cov(x, ddof=0) ** 3)
        """, [((3, 6), (6,)), ((2, 5), (3, 5))]),
    "corrcoef": ("""
        def f(x, y):
            r = np.corrcoef(x, y)
            return np.sum(r[0] * r[-1]) + np.sum(np.corrcoef(x.T, rowvar=False) ** 3)
        """, [((3, 6), (6,)), ((2, 5), (2, 5))]),
    "trapezoid": ("""
        def f(y, steps):
            x = np.cumsum(np.exp(steps), axis=-1)
            return np.trapezoid(np.sum(y ** 2, axis=0), x) + np.sum(np.trapezoid(y, dx=0.5, axis=0)) \\
                + np.sum(np.trapezoid(np.sin(y), x) ** 2)
        """, [((3, 5), (5,)), ((2, 4), (4,))]),
    "ediff1d": ("""
        def f(x):
            return np.sum(np.ediff1d(x) ** 3) + np.sum(np.ediff1d(x * x, to_begin=1.0, to_end=[2.0, 3.0]) ** 2)
        """, [((5,),), ((2, 3),), ((),)]),
}


CASES = shape_cases((name, all_shapes) for name, (_, all_shapes) in FUNCTIONS.items())


def _setup(name, shapes, seed=0):
    return make_function(FUNCTIONS[name][0], "f"), draw(shapes, seed)


@pytest.mark.parametrize("name, shapes", CASES)
def test_grad_matches_finite_differences(name, shapes):
    check_grad_by_finite_differences(*_setup(name, shapes))


@pytest.mark.parametrize("name, shapes", CASES)
def test_value_and_grad(name, shapes):
    check_value_and_grad(*_setup(name, shapes, seed=1))


@pytest.mark.parametrize("name, shapes", CASES)
def test_vjp(name, shapes):
    check_vjp_of_a_number(*_setup(name, shapes, seed=2))


@pytest.mark.parametrize("name, shapes", CASES)
def test_float32_in_float32_out(name, shapes):
    check_float32_gradients(*_setup(name, shapes))


# (interp's program mixes a host array xp with the arguments, which a device refuses; np.median
# of a list of device numbers fails in numpy itself)
HOST_MIXES = ("interp", "displays_of_numbers")
DUCK_CASES = [c for c in CASES if F not in c.values[1] and c.values[0] not in HOST_MIXES]


@pytest.mark.parametrize("name, shapes", DUCK_CASES)
def test_gradients_on_duck_arrays(name, shapes):
    check_gradients_on_duck_arrays(*_setup(name, shapes))


# ----- vjp of array outputs -----

ARRAY_OUTPUTS = {
    "median_quantile": ("def f(x, y):\n    return np.median(x * y, axis=0) + "
                        "np.quantile(x, [0.3, 0.7], axis=-1)[1]\n"),
    "convolve": "def f(x, y):\n    return np.convolve(x[0], y[1], 'same') * np.correlate(x[1], y[2], 'same')\n",
    "interp": "def f(x, y):\n    return np.interp(x, np.cumsum(np.exp(y[0])) - 2.0, y[1] * 1.5)\n",
    "cov": "def f(x, y):\n    return np.cov(x, y) + np.corrcoef(x * y, rowvar=False).sum()\n",
    "trapezoid": "def f(x, y):\n    return np.trapezoid(x * y, axis=0)[:3] + np.ediff1d(x[0])\n",
}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
def test_vjp_of_array_outputs(name):
    rng = np.random.default_rng(2)
    args = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    check_vjp_of_array_output(make_function(ARRAY_OUTPUTS[name], "f"), args, rng)


# ----- what srcdiff refuses, where the call is -----


@pytest.mark.parametrize("call, match", [
    ("np.quantile(x, x[0] * 0.1 + 0.5)", "q="),  # a q that needs a gradient
    ("np.quantile(x, 0.5, method='averaged_inverted_cdf')",
     "np.quantile with method='averaged_inverted_cdf'"),
    ("np.nanpercentile(x, 50.0, method='weibull')", "np.nanpercentile with method='weibull'"),
    ("np.median(x, overwrite_input=True)", "overwrite_input="),
    ("np.percentile(x, 50.0, weights=np.ones(6), method='inverted_cdf')", "weights="),
    ("np.cov(x, fweights=[1, 2, 1, 1, 2, 1])", "fweights="),
    ("np.interp(x, np.arange(6.0), x, period=3.0)", "period=3.0"),
    ("np.trapezoid(x, dx=x[0])", "dx="),  # a spacing that needs a gradient
    ("np.ediff1d(x, to_end=x[:2])", "to_end="),
    ("np.convolve(x, x, mode=2)", "mode=2"),
])
def test_a_form_without_a_rule_is_refused_when_compiling(call, match):
    fn = make_function(f"def f(x):\n    return np.sum({call})\n")
    with pytest.raises(srcdiff.NotDifferentiableError, match=match) as info:
        srcdiff.grad(fn).source  # compiles, runs nothing
    assert info.value.lineno == fn.__code__.co_firstlineno + 1
    assert info.value.text.strip() == f"return np.sum({call})"


def test_weights_known_only_when_running_are_refused_before_computing():
    """A weights= value the compiler cannot read (a call) is checked by the rule when it runs."""
    fn = make_function("def f(x):\n    return np.sum(np.cov(x, aweights=np.ones(6)))\n")
    with pytest.raises(srcdiff.SrcdiffError, match="np.cov with aweights="):
        srcdiff.grad(fn)(np.ones((3, 6)))


# ----- the generated source reads as the user's code -----


def test_generated_source_names_the_rules():
    fn = make_function("""
        def f(x, fp):
            m = np.median(x, axis=0)
            y = np.interp(m, np.array([-1.0, 0.0, 1.0]), fp)
            return np.sum(y ** 2)
        """, "f")
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "# adjoint of: y = np.interp(m, np.array([-1.0, 0.0, 1.0]), fp)" in source
    assert "rt.interp_adjoint(dy, m, " in source and "rt.median_adjoint(dm, x, axis=0)" in source
