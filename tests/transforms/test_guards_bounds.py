"""guards: lower bounds through reductions (means, sums, var, std, norms of nonnegative
values), squares in every spelling and positive literal factors, and a softmax's axes
compared modulo the number of dimensions under a shape pattern."""

import textwrap

import numpy as np
import pytest

import srcdiff
from srcdiff import pipeline
from srcdiff.testing import check_grad, check_jvp

from ..end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                          check_value_and_grad, check_vjp_of_a_number, draw, shape_cases)
from ..helpers import make_function
from .test_guards import pullback_line




PROVEN = {  # forward lines binding v -> why v >= 1e-6 (guards.POSITIVE)
    "rms": ("_t1 = x * x\n_t2 = np.mean(_t1, axis=-1, keepdims=True)\n_t3 = _t2 + 1e-6\n"
            "v = np.sqrt(_t3)"),                                   # sqrt(>= 1e-6) >= 1e-3
    "layer_norm": ("mu = np.mean(x, axis=-1, keepdims=True)\n_t1 = x - mu\n_t2 = _t1 ** 2\n"
                   "var = np.mean(_t2, axis=-1, keepdims=True)\n_t4 = var + 1e-5\n"
                   "v = np.sqrt(_t4)"),                            # an even power of anything
    "var": "_t1 = np.var(x, axis=-1, keepdims=True)\n_t2 = _t1 + 1e-5\nv = np.sqrt(_t2)",
    "var_ddof_method": "_t1 = x.var(ddof=1)\nv = _t1 + 0.5",
    "std": "_t1 = np.std(x, axis=0)\nv = _t1 + 1e-3",
    "sum_of_squares": "_t1 = x ** 2\n_t2 = np.sum(_t1)\n_t3 = _t2 + 1e-6\nv = np.sqrt(_t3)",
    "norm": "_t1 = np.linalg.norm(x, axis=-1, keepdims=True)\nv = _t1 + 1e-3",
    "square": "_t1 = np.square(x)\n_t2 = _t1.mean()\nv = _t2 + 1.0",
    "abs_squared": "_t1 = np.abs(x)\n_t2 = _t1 ** 2\nv = _t2 + 1.0",
    "float_power": "_t1 = x ** 2.0\nv = 1.0 + _t1",
    "abs_sum_method": "_t1 = np.abs(x)\n_t2 = _t1.sum(axis=1)\nv = _t2 + 0.5",
    "scaled": "_t1 = x * x\n_t2 = np.sum(_t1)\n_t3 = _t2 / 4.0\n_t4 = 0.5 * _t3\nv = _t4 + 1e-3",
    "mean_of_shifted": "_t1 = x * x\n_t2 = _t1 - 1.0\n_t3 = np.mean(_t2)\nv = _t3 + 2.0",
    "sqrt_of_power": "_t1 = x * x\n_t2 = _t1 + 1e-2\nv = _t2 ** 0.5",  # a power of a bound >= 0
}


@pytest.mark.parametrize("name", sorted(PROVEN))
def test_a_nonnegative_reduction_plus_a_positive_literal_is_positive(name):
    assert pullback_line(PROVEN[name]) == "dx = d / v"


KEPT = {  # forward lines binding v -> why v may be zero (or NaN from numbers)
    "sum": "v = np.sum(x)",                                 # x / np.sum(x)
    "mean_minus_one": "_t1 = np.mean(w)\nv = _t1 - 1.0",    # x / (np.mean(y) - 1.0)
    "mean": "_t1 = np.mean(x)\nv = _t1 + 1.0",              # a mean of anything
    "sum_of_squares": "_t1 = x * x\nv = np.sum(_t1)",       # 0 where x is 0
    "norm": "_t1 = np.linalg.norm(x)\nv = _t1 + 1e-8",      # float16 rounds 1e-8 to 0
    "sqrt_of_sum": "_t1 = x * x\n_t2 = np.sum(_t1)\nv = np.sqrt(_t2)",
    "sum_of_shifted": "_t1 = x * x\n_t2 = _t1 - 1.0\n_t3 = np.sum(_t2)\nv = _t3 + 2.0",
    "empty_sum": "_t1 = x * x\n_t2 = _t1 + 1.0\nv = np.sum(_t2, axis=0)",  # 0 if no rows
    "var_tiny_eps": "_t1 = np.var(x)\nv = _t1 + 1e-8",
    "sqrt_tiny_eps": "_t1 = x ** 2\n_t2 = np.sum(_t1)\n_t3 = _t2 + 1e-8\nv = np.sqrt(_t3)",
    "sum_where": "_t1 = x * x\n_t2 = np.sum(_t1, where=w > 0)\nv = _t2 + 1.0",  # unknown call
    "odd_power": "_t1 = x ** 3\nv = _t1 + 1.0",
    "negative_factor": "_t1 = x * x\n_t2 = -2.0 * _t1\nv = _t2 + 3.0",
    "zero_factor": "_t1 = np.exp(x)\n_t2 = 0.0 * _t1\nv = _t2 + 1.0",
    "negative_power": "_t1 = x * x\n_t2 = _t1 + 1.0\nv = _t2 ** -1",  # 1 / inf == 0
    "divided_by_a_value": "_t1 = x * x\n_t2 = _t1 + 1.0\n_t3 = w * w\n_t4 = _t3 + 1.0\n"
                          "v = _t2 / _t4",                 # inf / inf
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_a_reduction_that_may_be_zero_keeps_its_guard(name):
    assert pullback_line(KEPT[name]) == "dx = d / rt.guard(v, d)"


# ----- end to end: the norms' gradients without their guards -----

NORMS = {  # name -> (source, guards left)
    "rms_norm": ("""
        def f(x, w):
            return np.sum(np.tanh(w * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6)))
        """, 0),
    "layer_norm": ("""
        def f(x, w):
            mu = np.mean(x, axis=-1, keepdims=True)
            var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
            return np.sum(np.tanh(w * (x - mu) / np.sqrt(var + 1e-5)))
        """, 0),
    "layer_norm_var": ("""
        def f(x, w):
            mu = np.mean(x, axis=-1, keepdims=True)
            return np.sum(np.tanh(w * (x - mu) / np.sqrt(np.var(x, axis=-1, keepdims=True) + 1e-5)))
        """, 0),
    "layer_norm_std": ("""
        def f(x, w):
            z = (x - x.mean(axis=-1, keepdims=True)) / (x.std(axis=-1, keepdims=True) + 1e-3)
            return np.sum(np.tanh(w * z))
        """, 0),
    "l2_normalize": ("""
        def f(x, w):
            return np.sum(np.tanh(w * x / np.sqrt(np.sum(x**2) + 1e-6)))
        """, 0),
    "l2_normalize_tiny_eps": ("""
        def f(x, w):
            return np.sum(np.tanh(w * x / np.sqrt(np.sum(x**2) + 1e-8)))
        """, 3),  # float16 rounds 1e-8 to 0: all kept
    "squares": ("""
        def f(x, w):
            return np.sum(w / (np.square(x).mean() + np.abs(x) ** 2 + x ** 2.0 + 0.5))
        """, 1),  # x ** 2.0's rule guards its base x ** (2.0 - 1): no divisor
}
NORM_CASES = shape_cases([(name, [((3, 4), (4,)), ((2, 3, 5), (5,)), ((4,), F)])
                          for name in sorted(NORMS)])


def _norm(name):
    source, guards_left = NORMS[name]
    return make_function(textwrap.dedent(source), "f"), guards_left


@pytest.mark.parametrize("name, shapes", NORM_CASES)
def test_norms_against_finite_differences(name, shapes):
    fn, guards_left = _norm(name)
    args = draw(shapes, seed=3)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_vjp_of_a_number(fn, args)
    check_float32_gradients(fn, args)
    assert srcdiff.grad(fn, wrt=(0, 1)).source.count("rt.guard(") == guards_left


@pytest.mark.parametrize("name", sorted(set(NORMS) - {"layer_norm_std"}))  # std'(0): none
def test_norms_of_zeros_have_finite_gradients(name):
    """A zero row: the divisor is eps-sized, not zero, so the gradient stays finite."""
    fn, _ = _norm(name)
    x = np.zeros((2, 4))
    x[1] = [0.5, -1.0, 2.0, 0.25]
    w = np.linspace(0.5, 1.5, 4)
    for g in srcdiff.grad(fn, wrt=(0, 1))(x, w):
        assert np.isfinite(g).all()
    check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("eps, guarded", [("1e-8", True), ("1e-6", False)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_masked_norm_of_zeros_has_a_zero_gradient_in_every_float(eps, guarded, dtype):
    """float16 rounds 1e-8 to 0: that divisor keeps its guard, and where nothing flows back
    (masked) the gradient stays 0, not 0/0; 1e-6 survives float16, its guards go."""
    fn = make_function(f"def f(x):\n"
                       f"    l2 = np.sqrt(np.sum(x ** 2) + {eps})\n"
                       f"    return np.sum(np.where(x > 1.0, x / l2, 0.0))\n")
    assert ("rt.guard(l2, " in srcdiff.grad(fn).source) is guarded
    g = srcdiff.grad(fn)(np.zeros(3, dtype))
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, 0.0)
    x = np.array([0.5, 2.0, 3.0])
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


def test_an_unproven_zero_divisor_keeps_its_guard_and_a_zero_adjoint():
    """A sum of squares with no eps may be 0: guarded, the masked zero row's gradient stays 0."""
    fn = make_function(textwrap.dedent("""
        def f(x):
            s = np.sum(x * x, axis=-1, keepdims=True)
            return np.sum(np.where(s > 0, x / s, 0.0))
        """), "f")
    assert "rt.guard(s, " in srcdiff.grad(fn).source
    x = np.array([[0.0, 0.0, 0.0], [0.5, -1.0, 2.0]])
    g = srcdiff.grad(fn)(x)
    np.testing.assert_array_equal(g[0], 0.0)
    check_grad(fn, (x[1:],), (srcdiff.grad(fn)(x[1:]),))


# ----- a softmax's axes modulo the number of dimensions (under a shape pattern) -----

SOFTMAX_AXES = {  # name -> (max's axis, sum's axis, proven under a 3-d pattern)
    "last": ("axis=-1", "2", True),
    "first": ("axis=0", "axis=-3", True),
    "tuple": ("axis=(1, 2)", "axis=(-1, -2)", True),
    "other": ("axis=-1", "1", False),
    "other_tuple": ("axis=(0, 2)", "axis=(-1, -2)", False),
}


@pytest.mark.parametrize("name", sorted(SOFTMAX_AXES))
def test_a_softmax_sums_along_its_max_axis_modulo_ndim(name, monkeypatch):
    # on the lines as written (the softmax stage makes one rt.softmax of most of these)
    monkeypatch.setattr(pipeline, "PIPELINE", tuple(s for s in pipeline.PIPELINE if s[0] != "softmax"))
    max_axis, sum_axis, proven = SOFTMAX_AXES[name]
    fn = make_function(f"def f(s):\n"
                       f"    e = np.exp(s - np.max(s, {max_axis}, keepdims=True))\n"
                       f"    return np.sum(np.tanh(e / e.sum({sum_axis}, keepdims=True)))\n")
    grad = srcdiff.grad(fn)
    assert "rt.guard(" in grad.source  # the general derivative: no ndim, text only
    s = np.random.default_rng(4).normal(size=(2, 3, 4)) * 3.0
    check_grad(fn, (s,), (grad(s),))  # compiled for the pattern of s's shape
    assert ("rt.guard(" not in grad.source) is proven
    check_value_and_grad(fn, (s,))
    check_vjp_of_a_number(fn, (s,))
    check_float32_gradients(fn, (s,))


@pytest.mark.parametrize("name", ["rms_norm", "layer_norm_var", "l2_normalize"])
def test_norms_in_forward_mode(name):
    """The pass runs on tangent code too: jvp against finite differences."""
    fn, _ = _norm(name)
    rng = np.random.default_rng(5)
    x, w, v = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((3, 4))
    out, tangent = srcdiff.jvp(fn, (x, w), (v, None))
    assert out == pytest.approx(fn(x, w))
    check_jvp(lambda x: fn(x, w), (x,), (v,), tangent)


MASKED_NORMS = {  # a zero adjoint where x <= 1: the guards' case, had they been kept
    "rms_norm": "w * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6)",
    "layer_norm": ("w * (x - x.mean(axis=-1, keepdims=True)) / "
                   "np.sqrt(np.mean((x - x.mean(axis=-1, keepdims=True)) ** 2, axis=-1, "
                   "keepdims=True) + 1e-5)"),
    "layer_norm_var": ("w * (x - np.mean(x, axis=-1, keepdims=True)) / "
                       "np.sqrt(np.var(x, axis=-1, keepdims=True) + 1e-5)"),
}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(MASKED_NORMS))
def test_masked_norms_of_zero_rows_without_guards_in_every_float(name, dtype):
    """No guard left: eps 1e-5 or 1e-6 survives float16, so the divisor and its square are
    never 0, and a zero row whose adjoint is 0 keeps a zero gradient."""
    fn = make_function(f"def f(x, w):\n"
                       f"    return np.sum(np.where(x > 1.0, {MASKED_NORMS[name]}, 0.0))\n")
    assert "rt.guard(" not in srcdiff.grad(fn, wrt=(0, 1)).source
    x = np.zeros((2, 4), dtype)
    x[1] = [0.5, -1.0, 2.0, 0.25]
    w = np.linspace(0.5, 1.5, 4).astype(dtype)
    dx, dw = srcdiff.grad(fn, wrt=(0, 1))(x, w)
    assert dx.dtype == dtype and dw.dtype == dtype
    np.testing.assert_array_equal(dx[0], 0.0)
    assert np.isfinite(dx).all() and np.isfinite(dw).all()
    x64 = np.array([[0.5, 2.0, 3.0, -1.0], [1.5, -1.0, 2.0, 0.25]])
    w64 = w.astype(np.float64)
    check_grad(fn, (x64, w64), srcdiff.grad(fn, wrt=(0, 1))(x64, w64))
