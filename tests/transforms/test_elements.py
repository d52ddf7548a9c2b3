"""Loops over a vector's elements: the loss is proved one number (an element ``x[i]`` under
the pattern, a number parameter), so ``grad`` folds its seed; and in the float64 variant
the elements stage writes each element's adjoint in place, ``dx[i] += g``, where
``accumulate`` wrote ``rt.add_at``. Every spelling against finite differences, in the
general variant, the float64 one and float32; what keeps ``rt.add_at``."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import code


def variance_loop(x, mu):
    total = 0.0
    for i in range(len(x)):
        total += (x[i] - mu) ** 2
    return total / len(x)


def variance_generator(x, mu):
    return sum((xi - mu) ** 2 for xi in x) / len(x)


def weighted(x, mu):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + x[i] * np.tanh(x[i] * mu) - x[-1] * mu
    return total


def rows(x, mu):
    """Rows of a matrix: each row's adjoint is added at its row."""
    total = 0.0
    for i in range(x.shape[0]):
        total = total + np.sum(np.sin(x[i, :] * mu))
    return total


def grid(x, mu):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            total = total + x[i, j] ** 3 * mu
    return total


SPELLINGS = [variance_loop, variance_generator, weighted, rows, grid]
MATRICES = (rows, grid)
# written in place: each element's adjoint a float64 value the dtype facts prove (a nested
# loop's, grid, is not proved, its inner target bound twice: the checked call stays)
IN_PLACE = (variance_loop, variance_generator, weighted, rows)


def _arguments(fn, rng, n):
    x = rng.normal(size=(n, 3) if fn in MATRICES else n)
    return x, float(rng.normal())


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_every_spelling_matches_finite_differences(fn):
    rng = np.random.default_rng(6)
    for n in (1, 5):
        x, mu = _arguments(fn, rng, n)
        grad = srcdiff.grad(fn, wrt=("x", "mu"))
        for _ in range(2):  # the general variant, then the float64 one for this pattern
            check_grad(fn, (x, mu), grad(x, mu), argnums=(0, 1))
        value, grads = srcdiff.value_and_grad(fn, wrt=("x", "mu"))(x, mu)
        assert value == pytest.approx(fn(x, mu), rel=1e-14)
        check_grad(fn, (x, mu), grads, argnums=(0, 1))
    source = code(grad.source)
    if fn in IN_PLACE:
        assert "_grad(" in source and "d_out" not in source  # a number: the seed folded
        assert "rt.add_at(" not in source and "dx[" in source and "] += " in source
    else:
        assert "rt.add_at(dx, " in source


@pytest.mark.parametrize("fn", [variance_loop, rows], ids=lambda f: f.__name__)
def test_float32_keeps_the_checked_call(fn):
    """Another dtype: rt.add_at, which checks what it is given, and float32 gradients."""
    x, mu = _arguments(fn, np.random.default_rng(8), 4)
    x32 = x.astype(np.float32)
    grad = srcdiff.grad(fn, wrt="x")
    for _ in range(2):
        got = grad(x32, mu)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, grad(x, mu), rtol=1e-4, atol=1e-5)
    grad(x32, mu)
    assert "rt.add_at(" in grad.source


def shifted(x, mu):
    """i + 1: an int too, an element of x."""
    total = 0.0
    for i in range(len(x) - 1):
        total = total + x[i + 1] * x[i] * mu
    return total


def mirrored(x, mu):
    """k: len(x) - 1 - i, an int."""
    total = 0.0
    for i in range(len(x)):
        k = len(x) - 1 - i
        total = total + x[k] * x[i] * mu
    return total


def signs(x, mu):
    """k = int(...): an int, but not one the stages read (a call of int): x[k] is not known
    one element, so the loss is not known one number, and the checked calls stay."""
    total = 0.0
    for i in range(len(x)):
        k = int(x[i] > 0.0)
        total = total + x[k] * x[i] * mu
    return total


@pytest.mark.parametrize("fn, in_place", [(shifted, ("dx[_t1] += ", "dx[i] += ")),
                                          (mirrored, ("dx[k] += ", "dx[i] += ")),
                                          (signs, None)], ids=["shifted", "mirrored", "signs"])
def test_keys(fn, in_place):
    x, mu = np.linspace(-1.0, 1.0, 4), 0.7  # (no element at signs' kink, 0)
    grad = srcdiff.grad(fn, wrt=("x", "mu"))
    for _ in range(2):
        check_grad(fn, (x, mu), grad(x, mu), argnums=(0, 1))
    source = code(grad.source)
    if in_place:
        assert all(line in source for line in in_place) and "add_at" not in source
    else:
        assert "rt.add_at(dx, " in source and "] += " not in source
