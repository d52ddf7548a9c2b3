"""Masked expressions give finite gradients where the primal is finite (rt.guard)."""

import warnings

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function

MASKED = {
    "sqrt": ("np.where(x > 0, np.sqrt(x), 0.0)", lambda x: np.where(x > 0, 0.5 / np.sqrt(np.abs(x) + (x <= 0)), 0.0)),
    "log": ("np.where(x > 0, np.log(x), 0.0)", lambda x: np.where(x > 0, 1.0 / np.where(x > 0, x, 1.0), 0.0)),
    "log1p": ("np.where(x > -1, np.log1p(x), 0.0)", lambda x: np.where(x > -1, 1.0 / np.where(x > -1, 1.0 + x, 1.0), 0.0)),
    "divide": ("np.where(x != 0, 1.0 / x, 0.0)", lambda x: np.where(x != 0, -1.0 / np.where(x != 0, x, 1.0) ** 2, 0.0)),
    "arcsin": ("np.where(np.abs(x) < 1, np.arcsin(x), 0.0)", lambda x: np.where(np.abs(x) < 1, 1.0 / np.sqrt(np.where(np.abs(x) < 1, 1 - x * x, 1.0)), 0.0)),
    "power": ("np.where(x > 0, x ** 0.5, 0.0)", lambda x: np.where(x > 0, 0.5 / np.sqrt(np.where(x > 0, x, 1.0)), 0.0)),
}


@pytest.mark.parametrize("name", sorted(MASKED))
def test_masked_expression_has_a_finite_gradient(name):
    expression, expected = MASKED[name]
    fn = make_function(f"def f(x):\n    return np.sum({expression})\n")
    x = np.array([-2.0, -1.0, 0.0, 0.25, 0.5, 1.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the primal itself evaluates sqrt(-2) etc.
        grad = srcdiff.grad(fn)(x)
    assert np.all(np.isfinite(grad)), grad
    np.testing.assert_allclose(grad, expected(x))


def test_genuinely_infinite_derivative_still_shows():
    fn = make_function("def f(x):\n    return np.sum(np.sqrt(x))\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grad = srcdiff.grad(fn)(np.array([0.0, 4.0]))
    assert grad[0] == np.inf and grad[1] == 0.25


def test_guards_do_not_change_ordinary_gradients():
    fn = make_function("def f(x, y):\n    return np.sum(np.sqrt(x) / y + np.log(x) * x ** 1.5)\n")
    x, y = np.array([0.5, 2.0, 3.0]), np.array([1.5, -2.0, 0.7])
    check_grad(fn, (x, y), srcdiff.grad(fn, wrt=(0, 1))(x, y))


# a number x of each kind, each masked expression (Python's own 1.0 / 0.0 raises and
# (-2.0) ** 0.5 is complex: those two are numpy's only for numpy numbers)
_NUMBERS = [pytest.param(name, kind, id=f"{name}-{label}") for name in sorted(MASKED)
            for label, kind in [("float", float), ("float64", np.float64), ("float32", np.float32),
                                ("0-d", np.array)]
            if not (kind is float and name in ("divide", "power"))]


@pytest.mark.parametrize("name, kind", _NUMBERS)
def test_a_masked_number_has_a_finite_gradient(name, kind):
    """The same with x one number: the local derivative is a number, NaN or inf where the
    branch is not taken (np.sqrt(-1.0)), and the guard makes the zero adjoint 0, not NaN
    (a Python float and an np.float64 gave NaN, and so did a guarded 1 - x * x < 0 for
    np.arcsin, a number whose root the rule takes)."""
    expression, expected = MASKED[name]
    fn = make_function(f"def f(x):\n    return {expression} * 2.0\n")
    for value in (-2.0, -1.0, 0.0, 0.25, 4.0):
        x = kind(value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grad = srcdiff.grad(fn)(x)
        tol = 1e-6 if np.result_type(x) == np.float32 else 1e-12
        np.testing.assert_allclose(grad, 2.0 * expected(np.array([value]))[0], rtol=tol)


@pytest.mark.parametrize("x", [-2.0, 0.5, np.float32(-3.0)])
def test_a_masked_number_under_an_array_mask(x):
    """x a number, the mask an array: the adjoint reaching the guard is an array with
    zeros, the guarded value a number; where no branch is taken the gradient is 0."""
    fn = make_function("def f(x, y):\n    return np.sum(np.where(y > 0, np.arcsin(x), 0.0) * y)\n")
    for y in (np.array([-1.0, -2.0, 0.0]), np.array([-1.0, 2.0, 0.5])):
        y = y.astype(np.result_type(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dx = srcdiff.grad(fn)(x, y)
        if abs(x) >= 1 or not np.any(y > 0):
            want = 0.0 if not np.any(y > 0) else np.nan  # a taken branch at |x| > 1: NaN
            np.testing.assert_equal(float(dx), want)
        else:
            check_grad(fn, (float(x), y.astype(float)), (dx,), argnums=(0,))
