"""The rowdots stage: a pullback's np.sum(a * b, axis=-1, keepdims=True) of two operands of
one known shape as rt.row_dots(a, b), one batched matmul, in the variant for a pattern of
argument shapes; and rt.row_dots itself."""

import numpy as np
import pytest

import srcdiff
from srcdiff import runtime as rt
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad


def softmax_weighted(s, v):
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(np.sin(p * v))


def softmax_methods(s, v):  # the same math with methods and no shift
    e = np.exp(s)
    p = e / e.sum(-1, keepdims=True)
    return np.sum(np.sin(p * v))


def row_products(a, b):  # the user's own row sums: the forward pass keeps numpy's
    r = np.sum(a * b, axis=-1, keepdims=True)
    return np.sum(np.tanh(r) * a)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4), (3, 1), (1, 6)])
@pytest.mark.parametrize("fn", [softmax_weighted, softmax_methods, row_products],
                         ids=lambda f: f.__name__)
def test_gradients_match_finite_differences(fn, shape):
    rng = np.random.default_rng(len(shape))
    args = (rng.normal(size=shape), rng.normal(size=shape))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, args, grad(*args), argnums=(0, 1))
    assert ("rt.row_dots(" in grad.source) == (fn is not row_products)
    forward = grad.source.split("# backward")[0]
    assert "rt.row_dots(" not in forward


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    s, v = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    ds, dv = srcdiff.grad(softmax_weighted, wrt=(0, 1))(s, v)
    assert ds.dtype == dv.dtype == np.float32
    high = srcdiff.grad(softmax_weighted, wrt=(0, 1))(s.astype(np.float64), v.astype(np.float64))
    np.testing.assert_allclose(ds, high[0], rtol=1e-4, atol=1e-6)


def other_sums(a, b, c):
    p = np.exp(a)
    return (np.sum(np.sum(p * b, axis=0, keepdims=True) * a)   # another axis
            + np.sum(np.sum(p * c, axis=-1, keepdims=True) * a)  # c broadcast: (n,) against (m, n)
            + np.sum(np.sum(p * b, axis=-1) * a[:, 0]))          # no keepdims


def test_other_sums_are_kept_and_right():
    rng = np.random.default_rng(6)
    args = (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=4))
    grad = srcdiff.grad(other_sums, wrt=(0, 1, 2))
    check_grad(other_sums, args, grad(*args), argnums=(0, 1, 2))
    assert "rt.row_dots(" not in grad.source


def test_without_a_shape_pattern_nothing_changes():
    general = compile_derivative(softmax_weighted, ("s", "v"), gradient=True).source
    assert "rt.row_dots(" not in general and "np.sum(" in general


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 7), (2, 0), (4, 1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_dots_are_the_row_sums_of_the_product(shape, dtype):
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=shape).astype(dtype), rng.normal(size=shape).astype(dtype)
    found = rt.row_dots(a, b)
    expected = np.sum(a * b, axis=-1, keepdims=True)
    assert found.shape == expected.shape and found.dtype == expected.dtype
    np.testing.assert_allclose(found, expected, rtol=1e-5 if dtype == np.float32 else 1e-13,
                               atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("a, b", [
    (np.arange(6).reshape(2, 3), np.arange(6).reshape(2, 3)),          # integers
    (np.ones((2, 3)), np.ones(3)),                                      # broadcast
    (np.ones((2, 3), np.float32), np.ones((2, 3))),                     # two dtypes
    ([[1.0, 2.0]], np.ones((1, 2))),                                    # a list
], ids=["integers", "broadcast", "dtypes", "list"])
def test_row_dots_of_other_operands_sum_as_written(a, b):
    expected = np.sum(np.multiply(a, b), axis=-1, keepdims=True)
    found = rt.row_dots(a, b)
    assert found.dtype == expected.dtype
    np.testing.assert_array_equal(found, expected)
