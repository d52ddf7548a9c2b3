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
