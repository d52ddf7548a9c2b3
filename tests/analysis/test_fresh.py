"""analysis/fresh.py: which gradients a gradient-only derivative returns as new arrays of
their argument's shape, so that the written-out call checks only their type and dtype; and
that every other gradient still gets every check (the caller owns what it gets)."""

import numpy as np
import pytest

import srcdiff
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad

PATTERN = (("n0",), (), ("n1", "n0"), ("n1",))


def lsq(w, b, X, y):
    return np.mean((X @ w + b - y) ** 2)


def product(x, y):  # d/dx is 1.0 * y: a new array (not y itself)
    return np.sum(x * y)


def total(x, y):  # d/dx of a whole sum: a runtime rule's array, not proved new
    return np.sum(x) + np.sum(np.sin(y))


def transposed(W, x):  # dW is a transpose of a product: a view, not a new array
    return np.sum(np.sin(x @ W.T))


def broadcast(x, y):  # y (n,) broadcast against x (m, n): y's adjoint is a new sum
    return np.sum(np.sin(x + y))


@pytest.mark.parametrize("with_value", [False, True])
def test_a_least_squares_gradients_are_new_arrays(with_value):
    d = compile_derivative(lsq, ("w", "b"), gradient=True, with_value=with_value, dims=PATTERN)
    assert d.gradient_only and d.fresh == (True, True)
    general = compile_derivative(lsq, ("w", "b"), gradient=True, with_value=with_value)
    assert general.fresh == (False, False)  # no pattern: no shapes proved


def test_what_is_not_proved_new():
    assert compile_derivative(product, ("x", "y"), gradient=True,
                              dims=(("n0",), ("n0",))).fresh == (True, True)
    made = compile_derivative(total, ("x", "y"), gradient=True, dims=(("n0",), ("n0",)))
    assert "dx = rt.sum_adjoint(" in made.source and made.fresh == (False, True)
    made = compile_derivative(broadcast, ("x", "y"), gradient=True, dims=(("n0", "n1"), ("n1",)))
    assert "dx = d_t1\n" in made.source and "dy = d_t1.sum(axis=0)" in made.source
    assert made.fresh == (False, True)  # an alias of an adjoint; a new sum of y's shape


@pytest.mark.parametrize("fn, args", [
    (lsq, (np.ones(3), 0.5, np.arange(12.0).reshape(4, 3) / 7, np.ones(4))),
    (product, (np.linspace(0, 1, 5), np.linspace(1, 2, 5))),
    (total, (np.linspace(0, 1, 5), np.linspace(1, 2, 5))),
    (transposed, (np.arange(6.0).reshape(2, 3) / 5, np.linspace(0, 1, 12).reshape(4, 3))),
    (broadcast, (np.linspace(0, 1, 12).reshape(4, 3), np.linspace(0, 1, 3))),
], ids=["lsq", "product", "total", "transposed", "broadcast"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_call_hands_back_fresh_arrays_of_the_arguments_dtype(fn, args, dtype):
    args = tuple(a.astype(dtype) if isinstance(a, np.ndarray) else a for a in args)
    grad = srcdiff.grad(fn, wrt=(0, 1))
    for _ in range(3):  # the first call (general path), then the written-out one
        grads = grad(*args)
        for g, a in zip(grads, args):
            if isinstance(a, np.ndarray):
                assert type(g) is np.ndarray and g.dtype == a.dtype and g.shape == a.shape
                assert g.base is None and g.flags.writeable
                assert all(g is not other for other in args)
            else:
                assert type(g) is type(a)
    if dtype == np.float64:
        check_grad(fn, args, grads, argnums=(0, 1))


def test_the_float64_variant_proves_the_dtype_too():
    """For float64 arguments the new arrays are float64: the call checks nothing of them; a
    number's gradient (b) is not an array, and other dtypes run the variant with the checks."""
    from srcdiff.analysis.dtypes import FLOAT64

    d = compile_derivative(lsq, ("w", "b"), gradient=True, dims=PATTERN, float64=True)
    assert d.fresh == (FLOAT64, True)
    assert compile_derivative(lsq, ("w", "b"), gradient=True, dims=PATTERN).fresh == (True, True)
    rng = np.random.default_rng(3)
    args = (rng.normal(size=3), 0.2, rng.normal(size=(7, 3)), rng.normal(size=7))
    grad = srcdiff.grad(lsq, wrt=("w", "b"))
    first = grad(*args)
    check_grad(lsq, args, first, argnums=(0, 1))
    first[0][:] = 0.0  # the caller's own: the next call is not changed by it
    again = grad(*args)
    check_grad(lsq, args, again, argnums=(0, 1))
    assert again[0] is not first[0] and again[0].dtype == np.float64
