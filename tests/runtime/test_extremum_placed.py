"""max/min adjoints along trailing axes of 16384 elements or more (16 or more per extremum)
write g at the one hit of each extremum instead of multiplying g by the hit mask: the same numbers as g * hits / count(hits), for ties, NaN,
non-finite adjoints, numbers and every dtype; through grad against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import rules
from srcdiff.testing import check_grad

from tests.duckarray import HOST_SYNCS, DuckArray, wrap


def _by_counting(g, ans, x, axis, keepdims):
    """The definition: g spread to the hits of the extremum, split evenly among them, in the
    dtype of g * hits."""
    expand = (lambda v: v) if keepdims or axis is None else (lambda v: np.expand_dims(v, axis))
    hits = x == expand(ans)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = expand(g) * hits
        return (share / np.sum(hits, axis=axis, keepdims=True)).astype(share.dtype)


def _rows(shape, ties, nan, rng):
    x = rng.standard_normal(shape)
    if ties:
        x[..., 1] = x.max(axis=-1) if x.ndim else x  # a tie in every last-axis slice
    if nan:
        x.reshape(-1)[3] = np.nan
    return x


@pytest.mark.parametrize("shape, axis, keepdims", [
    ((16, 32, 32), -1, True), ((16, 32, 32), 2, False), ((128, 128), None, False),
    ((128, 128), None, True), ((4, 64, 64), (1, 2), True), ((4, 64, 64), (2, 1), False),
    ((128, 128), 0, True),                                # not trailing: the mask product
    ((2048, 10), -1, True),                               # short rows: the mask product
    ((4, 5), -1, True), ((4, 5), None, False), ((6,), 0, False),  # small: the mask product
])
@pytest.mark.parametrize("ties, nan", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("rule, reduce", [(rules.max_adjoint, np.max), (rules.min_adjoint, np.min)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 / 0: NaN rows
def test_the_numbers_of_the_definition(shape, axis, keepdims, ties, nan, rule, reduce, dtype):
    rng = np.random.default_rng(5)
    x = _rows(shape, ties, nan, rng).astype(dtype)
    with np.errstate(invalid="ignore"):
        ans = reduce(x, axis=axis, keepdims=keepdims)
    g = rng.standard_normal(np.shape(ans)).astype(dtype)
    got = rule(g, ans, x, axis=axis, keepdims=keepdims)
    assert got.shape == x.shape and got.dtype == dtype
    np.testing.assert_array_equal(got, _by_counting(g, ans, x, axis, keepdims))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0
def test_a_non_finite_adjoint_reaches_its_slice_as_the_product_does(bad):
    x = np.random.default_rng(6).standard_normal((3, 8192))
    ans = np.max(x, axis=-1, keepdims=True)
    g = np.array([[1.0], [bad], [2.0]])
    got = rules.max_adjoint(g, ans, x, axis=-1, keepdims=True)
    np.testing.assert_array_equal(got, _by_counting(g, ans, x, -1, True))  # inf * False: NaN
    assert np.isnan(got[1]).sum() >= 3


@pytest.mark.parametrize("g", [1.0, np.float32(2.5), np.float64(-3.0), np.array(0.5),
                               np.array([[0.5]])])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numbers_and_size_one_adjoints_of_a_whole_reduction(g, dtype):
    x = np.random.default_rng(7).standard_normal((128, 160)).astype(dtype)
    keepdims = np.ndim(g) == 2
    ans = np.max(x, keepdims=keepdims)
    got = rules.max_adjoint(g, ans, x, axis=None, keepdims=keepdims)
    want = _by_counting(g, ans, x, None, keepdims)
    assert got.shape == x.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_integer_arrays_and_zero_dimensional_ones():
    x = np.array([[3, 1, 2], [0, 5, 5]])
    ans = np.max(x, axis=1)
    got = rules.max_adjoint(np.array([1.0, 2.0]), ans, x, axis=1)
    np.testing.assert_array_equal(got, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    x0 = np.array(2.0)
    np.testing.assert_array_equal(rules.min_adjoint(1.5, np.min(x0), x0), 1.5)


def test_the_result_is_a_new_array_and_duck_arrays_keep_the_general_path():
    x = np.random.default_rng(8).standard_normal((256, 96))
    ans, g = np.max(x, axis=1, keepdims=True), np.ones((256, 1))
    got = rules.max_adjoint(g, ans, x, axis=1, keepdims=True)
    got += 1.0  # writable, owns its memory
    assert got.base is None or got.base.base is None
    HOST_SYNCS.reset()
    duck = rules.max_adjoint(wrap(g), wrap(ans), wrap(x), axis=1, keepdims=True)
    assert type(duck) is DuckArray and HOST_SYNCS.count == 0
    np.testing.assert_array_equal(duck.get(), got - 1.0)


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (3, 1)])
def test_softmax_gradients_through_the_max(shape):
    def f(x, w):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return np.sum(e / np.sum(e, axis=-1, keepdims=True) * w) + np.sum(np.min(x * w, axis=-1))

    rng = np.random.default_rng(9)
    x, w = rng.standard_normal(shape), rng.standard_normal(shape[-1])
    check_grad(f, (x, w), srcdiff.grad(f, wrt=(0, 1))(x, w))
    value, grads = srcdiff.value_and_grad(f, wrt=(0, 1))(x, w)
    check_grad(f, (x, w), grads)
    out, pullback = srcdiff.vjp(f, x, w)
    check_grad(f, (x, w), pullback(1.0))


def test_without_ties_along_the_last_axes_no_mask_product_is_made(monkeypatch):
    def product_path(*args):
        raise AssertionError("the mask product was made")

    monkeypatch.setattr(rules, "_split", product_path)
    x = np.random.default_rng(10).standard_normal((16, 32, 32))
    for axis, keepdims in ((-1, True), (2, False), ((1, 2), True), (None, False)):
        ans = np.max(x, axis=axis, keepdims=keepdims)
        g = np.full(np.shape(ans), 2.0)
        got = rules.max_adjoint(g, ans, x, axis=axis, keepdims=keepdims)
        assert got.sum() == 2.0 * np.size(ans)
