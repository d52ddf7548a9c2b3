"""The runtime's fast paths give what the general paths give: values, shapes and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.runtime import rules, unbroadcast
from srcdiff.testing import check_vjp


@pytest.mark.parametrize("g, x, want", [
    (2.0, 3.0, 2.0), (2.0, np.float64(3.0), 2.0), (np.float32(2.0), 3.0, 2.0),
    (np.array(2.0), 3.0, 2.0), (2.0, np.array(3.0), 2.0),
])
def test_unbroadcast_of_numbers(g, x, want):
    got = unbroadcast(g, x)
    assert np.shape(got) == np.shape(x) and got == want


def test_unbroadcast_still_sums_when_shapes_differ():
    np.testing.assert_allclose(unbroadcast(np.ones((4, 3)), np.ones((1, 3))), [[4.0, 4.0, 4.0]])
    np.testing.assert_allclose(unbroadcast(np.ones(3), 0.5), 3.0)


@pytest.mark.parametrize("g, dtype, want", [
    (1.0, np.float32, np.float32),        # a Python float is weak (NEP 50): x's precision
    (1.0, np.float64, np.float64),
    (np.float32(1.0), np.float32, np.float32),
    (np.float64(1.0), np.float32, np.float64),
    (np.float32(1.0), np.float64, np.float32),
])
def test_sum_and_mean_adjoints_of_a_number_keep_the_general_dtype(g, dtype, want):
    x = np.ones((4, 3), dtype)
    for got, scale in ((rules.sum_adjoint(g, x), 1.0),
                       (rules.mean_adjoint(g, np.mean(x), x), 1.0 / 12)):
        general = np.broadcast_to(np.asarray(g, want) * scale if scale != 1.0 else g, x.shape)
        assert got.shape == x.shape and got.dtype == want
        np.testing.assert_allclose(got, general)
        got[0, 0] = 5.0  # a fresh array: writable, nothing shared


def test_mean_adjoint_of_a_python_float_argument_and_keepdims():
    assert rules.mean_adjoint(2.0, 1.5, 1.5) == 2.0
    x = np.ones((2, 3))
    got = rules.mean_adjoint(np.ones((1, 1)), np.mean(x, keepdims=True), x, keepdims=True)
    np.testing.assert_allclose(got, np.full((2, 3), 1.0 / 6))


@pytest.mark.parametrize("s1, s2", [((2, 3), (3,)), ((3,), (3, 4)), ((3,), (3,)),
                                    ((2, 3), (3, 4))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_adjoints_of_vectors(s1, s2, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)
    g = rng.standard_normal(np.shape(a @ b)).astype(dtype)
    d1, d2 = rules.matmul_adjoint_x1(g, a, b), rules.matmul_adjoint_x2(g, a, b)
    assert np.shape(d1) == s1 and np.shape(d2) == s2
    assert d1.dtype == d2.dtype == dtype
    # against the batched general path: the same adjoints with a leading batch axis of 1
    np.testing.assert_allclose(d1, rules.matmul_adjoint_x1(g[None], a[None], b)[0], rtol=1e-5)
    if np.ndim(b) > 1:
        np.testing.assert_allclose(d2, rules.matmul_adjoint_x2(g[None], a, b[None])[0], rtol=1e-5)
    if dtype == np.float64:
        check_vjp(np.matmul, (a, b), (d1, d2), cotangent=g)


@pytest.mark.parametrize("shape, axis, keepdims", [
    ((4, 3), 1, False), ((4, 3), 0, True), ((2, 3, 4), (0, 2), False), ((4, 3), None, True),
    ((4, 3), -1, True),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sum_adjoint_over_axes_is_the_broadcast_of_g(shape, axis, keepdims, dtype):
    x = np.ones(shape, dtype)
    g = np.random.default_rng(1).standard_normal(np.sum(x, axis=axis, keepdims=keepdims).shape
                                                  ).astype(dtype)
    got = rules.sum_adjoint(g, x, axis=axis, keepdims=keepdims)
    want = np.broadcast_to(g if keepdims else np.expand_dims(g, axis), shape)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(got, want)


def test_large_spreads_stay_broadcast_views():
    x = np.ones((200, 200))
    got = rules.sum_adjoint(np.ones(200), x, axis=0)
    assert got.shape == x.shape and got.base is not None  # a view, no 40 000 writes
    np.testing.assert_array_equal(got, 1.0)


def test_max_adjoint_splits_ties_along_an_axis():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], np.float32)
    got = rules.max_adjoint(np.array([1.0, 2.0], np.float32), np.max(x, axis=1), x, axis=1)
    np.testing.assert_array_equal(got, [[0.0, 0.5, 0.5], [2.0, 0.0, 0.0]])
    assert got.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unbroadcast_to_a_python_float_sums_everything(dtype):
    g = np.arange(6, dtype=dtype).reshape(2, 3)
    got = unbroadcast(g, 0.5)
    assert np.shape(got) == () and got == 15.0 and got.dtype == dtype
    assert unbroadcast(np.array(2.0, dtype), 0.5) == 2.0
