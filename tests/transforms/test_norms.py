"""The norms stage: ``np.linalg.norm(r) ** 2`` becomes ``rt.squared_norm(r)``, the same value
with the adjoint ``2 * g * r``; every spelling against finite differences (vectors, a matrix,
broadcasting into the norm, a number), the exact value, forward mode and second order through
it, ``grad`` computing no norm at all, and the lines that stay as written."""

import numpy as np
import pytest

from numpy import linalg as la

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import code


def least_squares(w, X, y):
    return np.linalg.norm(X @ w - y) ** 2 / len(y)


def halved_dot(w, X, y):
    r = np.dot(X, w) - y
    return 0.5 * np.linalg.norm(r) ** 2.0


def named_norm(w, X, y):
    n = np.linalg.norm(X.dot(w) - y)
    loss = n ** 2
    return loss + np.sum(w * w)


def aliased(w, X, y):
    return la.norm(np.tanh(X @ w) - y) ** 2


def in_a_loop(w, X, y):
    total = 0.0
    for k in range(3):
        total = total + np.linalg.norm(X @ (w * (k + 1)) - y) ** 2
    return total


def broadcast_in(w, X, y):
    """A matrix: numpy's norm without ord flattens it (the Frobenius norm)."""
    return np.linalg.norm(X * w - y[:, None]) ** 2


SPELLINGS = [least_squares, halved_dot, named_norm, aliased, in_a_loop, broadcast_in]


def _args(rng, n=6, d=3):
    return rng.normal(size=d), rng.normal(size=(n, d)), rng.normal(size=n)


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_every_spelling_matches_finite_differences(fn):
    rng = np.random.default_rng(3)
    for w, X, y in (_args(rng), _args(rng, n=1, d=1), _args(rng, n=9, d=4)):
        grad = srcdiff.grad(fn, wrt="w")
        for _ in range(2):  # the general variant, then the one for this pattern of shapes
            check_grad(fn, (w, X, y), (grad(w, X, y),), argnums=(0,))
        value, (dw,) = srcdiff.value_and_grad(fn, wrt=("w",))(w, X, y)
        assert value == fn(w, X, y)  # the same operations: the same value, to the bit
        check_grad(fn, (w, X, y), (dw,), argnums=(0,))
        out, pullback = srcdiff.vjp(fn, w, X, y)
        assert out == value
        np.testing.assert_allclose(pullback(1.0)[0], dw, rtol=1e-12)
    assert "rt.squared_norm(" in srcdiff.value_and_grad(fn, wrt="w").source
    assert "norm(" not in code(grad.source)  # grad: the value is not computed at all


def test_a_number_and_float32():
    def f(x):
        return np.linalg.norm(x * 3.0) ** 2

    assert srcdiff.grad(f)(1.5) == pytest.approx(2 * 9.0 * 1.5)
    x = np.linspace(-1.0, 2.0, 5).astype(np.float32)
    g = srcdiff.grad(f)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 18.0 * x, rtol=1e-6)


def test_a_zero_vector_has_a_zero_gradient():
    """norm(r) ** 2 as written would divide by the norm, 0 here; 2 * r does not."""
    w, X, y = np.zeros(3), np.ones((4, 3)), np.zeros(4)
    np.testing.assert_array_equal(srcdiff.grad(least_squares, wrt="w")(w, X, y), np.zeros(3))


def test_forward_mode_and_second_order():
    rng = np.random.default_rng(5)
    w, X, y = _args(rng)
    v = rng.normal(size=3)
    for fn in (least_squares, broadcast_in):  # a vector's norm, a matrix's
        value, tangent = srcdiff.jvp(fn, (w, X, y), (v, None, None))
        assert value == fn(w, X, y)
        np.testing.assert_allclose(tangent, srcdiff.grad(fn, wrt="w")(w, X, y) @ v, rtol=1e-10)
    hv = srcdiff.hvp(least_squares, w, v, X, y)
    np.testing.assert_allclose(hv, 2.0 * X.T @ (X @ v) / len(y), rtol=1e-10)


def spectral(w, X, y):
    """ord=2 of a matrix is its largest singular value, not the root of a sum of squares."""
    return np.linalg.norm(X * w, 2) ** 2


def along_an_axis(w, X, y):
    return np.sum(np.linalg.norm(X * w, axis=0) ** 2)


def read_again(w, X, y):
    n = np.linalg.norm(X @ w - y)
    return n ** 2 + n


def cubed(w, X, y):
    return np.linalg.norm(X @ w - y) ** 3


@pytest.mark.parametrize("fn", [spectral, along_an_axis, read_again, cubed],
                         ids=lambda f: f.__name__)
def test_other_norms_and_powers_stay_as_written(fn):
    rng = np.random.default_rng(9)
    w, X, y = _args(rng)
    grad = srcdiff.grad(fn, wrt="w")
    for _ in range(2):
        check_grad(fn, (w, X, y), (grad(w, X, y),), argnums=(0,))
    assert "squared_norm" not in grad.source and "np.linalg.norm(" in grad.source
