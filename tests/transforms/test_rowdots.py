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


# ----- a whole array's sum of a product: a number's adjoint, rt.dot_all -----


def scaled_kernel(s, k):  # ds = (dK * k).sum(): a number times an array
    return np.sum(np.sin(s * np.exp(k)))


def summed_product(a, b):  # the user's np.sum(a * b) in the forward pass stays numpy's
    return np.sum(a * b) * np.sum(np.cos(a))


def adjoint_of_a_sum(a, b):  # np.sum(a * b)'s adjoint of a number c: (g * b).sum()
    c = np.sum(a)
    return np.sum(np.tanh(c * b) * a)


@pytest.mark.parametrize("shape", [(4, 5), (6,), (2, 3, 4), (1, 1)])
@pytest.mark.parametrize("fn", [scaled_kernel, summed_product, adjoint_of_a_sum],
                         ids=lambda f: f.__name__)
def test_whole_sums_of_products_match_finite_differences(fn, shape):
    rng = np.random.default_rng(len(shape) + 11)
    first = rng.normal() if fn is scaled_kernel else rng.normal(size=shape)
    args = (first, rng.normal(size=shape))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    got = grad(*args)
    check_grad(fn, args, got, argnums=(0, 1))
    forward, backward = grad.source.split("# backward")
    assert "rt.dot_all(" not in forward
    if fn is not summed_product:
        assert "rt.dot_all(" in backward and ".sum()" not in backward.replace("rt.dot_all", "")
    low = srcdiff.grad(fn, wrt=(0, 1))(*(np.float32(a) if np.ndim(a) == 0 else
                                         a.astype(np.float32) for a in args))
    for g, want in zip(low, got):  # float32 sums as written
        assert np.result_type(g) == np.float32
        np.testing.assert_allclose(g, want, rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 7), (2, 0)])
def test_dot_all_is_the_sum_of_the_product(shape):
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    found = rt.dot_all(a, b)
    assert type(found) is np.float64
    np.testing.assert_allclose(found, (a * b).sum(), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("a, b", [
    (np.ones((3, 4), np.float32), np.ones((3, 4), np.float32)),        # float32: pairwise sum
    (np.ones((4, 3)).T, np.ones((3, 4))),                               # not C-ordered
    (np.ones((2, 3)), np.ones(3)),                                      # broadcast
    (np.arange(6).reshape(2, 3), np.ones((2, 3))),                      # integers
    (2.0, np.ones(3)),                                                  # a number
], ids=["float32", "strided", "broadcast", "integers", "number"])
def test_dot_all_of_other_operands_sums_as_written(a, b):
    expected = (np.multiply(a, b)).sum()
    found = rt.dot_all(a, b)
    assert type(found) is type(expected)
    np.testing.assert_array_equal(found, expected)
