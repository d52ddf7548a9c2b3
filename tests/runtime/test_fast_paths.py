"""The runtime's fast paths give what the general paths give: values, shapes and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import helpers, rules, unbroadcast
from srcdiff.testing import check_grad, check_vjp

from tests.helpers import make_function


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


@pytest.mark.parametrize("gshape, shape", [
    ((128, 10), (128, 1)), ((128, 10), (10,)), ((128, 10), (1, 10)), ((2, 3, 4), (4,)),
    ((2, 3, 4), (3, 4)), ((2, 3, 4), (2, 1, 1)), ((2, 3, 4), (1, 1)), ((2, 3, 4), (1, 3, 1)),
    ((2, 3, 4), (2, 1, 4)), ((5,), (1,)), ((1, 1), (1,)), ((0, 3), (3,)), ((3, 0), (3, 1)),
    ((4, 3), ()),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_unbroadcast_of_numpy_arrays_is_the_sum_over_the_broadcast_axes(gshape, shape, dtype,
                                                                        layout):
    # np.add.reduce over the broadcast axes against a sum by np.add.at, for every layout
    rng = np.random.default_rng(2)
    g = rng.standard_normal(gshape).astype(dtype)
    if layout == "F":
        g = np.asfortranarray(g)
    elif layout == "strided":
        g = np.repeat(g, 2, axis=-1)[..., ::2] if g.ndim else g
    x = np.ones(shape, dtype)
    got = unbroadcast(g, x)
    assert got.shape == shape and got.dtype == dtype  # a numpy scalar for shape ()
    want = np.zeros(shape, np.float64)
    grid = np.broadcast_to(np.arange(want.size).reshape(shape), gshape)
    np.add.at(want.reshape(-1), grid.reshape(-1), g.astype(np.float64).reshape(-1))
    tol = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 1e-2}[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * gshape[0])
    if shape:
        got[...] = 0.0  # a fresh array: writable, g unchanged
        assert g.size == 0 or np.any(g != 0)


def test_unbroadcast_keeps_inf_and_nan():
    g = np.array([[1.0, np.inf], [np.nan, 2.0], [3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(unbroadcast(g, np.ones((3, 1), np.float32)),
                                  [[np.inf], [np.nan], [7.0]])
    np.testing.assert_array_equal(unbroadcast(g, np.ones(2, np.float32)), [np.nan, np.inf])


def _extremum_adjoint_by_counting(g, ans, x, axis, keepdims):
    hits = x == (ans if keepdims or axis is None else np.expand_dims(ans, axis))
    g = g if keepdims or axis is None else np.expand_dims(g, axis)
    return g * hits / np.sum(hits, axis=axis, keepdims=True)


@pytest.mark.parametrize("rows", [
    [[1.0, 3.0, 2.0], [2.0, 0.0, 1.0]],          # no ties: nothing to divide
    [[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]],          # a tie
    [[1.0, np.nan, 2.0], [2.0, 0.0, 1.0]],       # a NaN row: no hit there, NaN adjoints
    [[1.0, np.nan, 2.0], [2.0, 2.0, 1.0]],       # a NaN row and a tie: as many hits as rows
    [[-0.0, 0.0, -1.0], [np.inf, 1.0, np.inf]],  # signed zeros and infinities tie
])
@pytest.mark.parametrize("axis, keepdims", [(1, False), (1, True), (0, True), (None, False)])
@pytest.mark.parametrize("rule, reduce", [(rules.max_adjoint, np.max), (rules.min_adjoint, np.min)])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 / 0: NaN rows
def test_extremum_adjoints_split_among_hits(rows, axis, keepdims, rule, reduce):
    x = np.array(rows, np.float32)
    ans = reduce(x, axis=axis, keepdims=keepdims)
    g = np.arange(1.0, 1.0 + np.size(ans), dtype=np.float32).reshape(np.shape(ans))
    got = rule(g, ans, x, axis=axis, keepdims=keepdims)
    with np.errstate(invalid="ignore"):
        want = _extremum_adjoint_by_counting(g, ans, x, axis, keepdims)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape, axis", [((4, 5), 1), ((4, 5), 0), ((3, 4, 2), (0, 2)),
                                         ((6,), None), ((6,), 0)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_gradients_through_max_and_min_along_axes(shape, axis, keepdims):
    def f(x, w):
        top = np.max(x * w, axis=axis, keepdims=keepdims)
        bottom = np.min(x, axis=axis, keepdims=keepdims)
        return np.sum(np.tanh(top) * bottom)

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(shape), rng.standard_normal(shape[-1])
    check_grad(f, (x, w), srcdiff.grad(f, wrt=(0, 1))(x, w))


@pytest.mark.parametrize("bshape, cshape", [((5,), (4, 1)), ((1, 5), (1, 1)), ((4, 1), (5,)),
                                            ((), ()), ((4, 5), (1, 5))])
def test_gradients_of_broadcast_operands(bshape, cshape):
    def f(W, b, c, s, x):
        h = np.tanh(x @ W + b)
        return np.sum(h * c) * s + np.max(h - c, axis=1, keepdims=True).sum()

    rng = np.random.default_rng(4)
    W, x = rng.standard_normal((3, 5)), rng.standard_normal((4, 3))
    b, c = rng.standard_normal(bshape), rng.standard_normal(cshape)
    args = (W, b if bshape else float(b), c, 1.5, x)
    check_grad(f, args, srcdiff.grad(f, wrt=(0, 1, 2, 3))(*args), argnums=(0, 1, 2, 3))


@pytest.mark.parametrize("g, value", [
    (np.array([1.0, -2.0, np.nan]), np.array([0.0, 4.0, 0.0])),      # no zero adjoint: value
    (np.array([0.0, -2.0, -0.0]), np.array([0.0, 4.0, 0.0])),        # zeros: 1 there
    (np.array([[1.0], [2.0]], np.float32), np.array([0.0, 3.0], np.float32)),  # broadcasting
    (np.array([0.0, 1.0]), np.array([0, 2])),                        # integers: made float
])
def test_guard_is_value_with_ones_where_the_adjoint_is_zero(g, value):
    got = helpers.guard(value, g)
    want = np.where(g == 0, 1.0, value)
    assert np.result_type(got) == want.dtype
    with np.errstate(divide="ignore", invalid="ignore"):  # what a rule computes with it
        np.testing.assert_array_equal(g / got, g / want)
    np.testing.assert_array_equal(np.broadcast_to(got, want.shape), want)


@pytest.mark.parametrize("g", [np.array([0.0, -2.0, 3.0]), np.array([[0.0], [1.5]], np.float32),
                               np.array([np.inf, 0.0, -0.0])])
@pytest.mark.parametrize("value", [np.float64(4.0), np.float32(0.5), np.int64(3), np.float64(np.inf),
                                   np.float64(0.0), np.float64(np.nan), np.float32(-2.0)])
def test_a_guarded_numpy_number_divides_as_the_guarded_array(g, value):
    """np.sqrt(q.shape[-1]) is a numpy number: a nonzero one is kept as it is (no array the
    adjoint's size), which divides g as the guarded array does: 0 where g is 0, in the
    same dtype; zero and NaN take the array."""
    got = helpers.guard(value, g)
    want = np.where(g == 0, 1.0, value)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.testing.assert_array_equal(g / got, g / want)
        assert (g / got).dtype == (g / want).dtype
    if value == 0 or value != value:  # an array: 1 where g is 0
        np.testing.assert_array_equal(np.broadcast_to(got, want.shape), want)


@pytest.mark.parametrize("value, g, kept", [
    (4.0, np.array([0.0, -2.0, 3.0]), True),               # well inside float64: itself
    (np.float64(1e-20), np.array([0.0, 1.0]), True),
    (1e300, np.array([0.0, 1.0]), False),                  # its square overflows: the array
    (-2.0, np.array([0.0, 1.0]), False),                   # a root of it is NaN: the array
    (4.0, np.array([0.0, 1.0], np.float16), False),        # 4 ** 10 overflows float16
    (2.0, np.array([0.0, 1.0], np.float16), True),
    (np.float32(100.0), np.array([0.0, 1.0], np.float32), True),
    (1e5, np.array([0.0, 1.0], np.float32), False),
])
def test_a_number_well_inside_the_adjoints_range_is_kept_without_a_pass(value, g, kept):
    """No array the adjoint's size for a number whose root, logarithm and powers up to the
    10th are finite in the adjoint's precision: g times any of them is 0 where g is 0."""
    got = helpers.guard(value, g)
    assert (got is value) is kept
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for f in (np.sqrt, np.log, lambda v: v ** -10.0, lambda v: v ** 10.0, lambda v: 1.0 / v):
            masked = (g * f(got if kept else np.where(g == 0, 1.0, value)))[g == 0]
            np.testing.assert_array_equal(masked, 0.0)


def test_a_masked_number_under_a_power_keeps_a_zero_gradient():
    def f(x, m):
        return np.sum(np.where(m, x ** 3.0 * np.ones(3), 0.0))

    m = np.array([True, False, True])
    g = srcdiff.grad(f)(2.0, m)
    assert g == pytest.approx(2 * 3 * 4.0)


_N = rules._SMALL + 1  # in place only above this many elements: below, a new array is cheaper


@pytest.mark.parametrize("acc, g, in_place", [
    (np.ones(_N), np.full(_N, 2.0), True),
    (np.ones(_N, np.float32), np.full(_N, 2.0, np.float32), True),
    (np.ones(_N, np.float32), 2.0, True),                         # a weak Python number
    (np.ones((2, _N)), 2, True),
    (np.ones(3), np.full(3, 2.0), False),                         # small: a fresh array
    (np.ones(_N, np.float32), np.full(_N, 2.0), False),           # float64 promotes float32
    (np.ones(_N, np.float32), np.float64(2.0), False),            # so does a float64 scalar
    (np.ones((2, _N)), np.full(_N, 2.0), False),                  # broadcast: numpy's sum
    (np.ones(_N), np.full((2, _N), 2.0), False),                  # a larger result
    (np.ones(_N, np.int64), np.full(_N, 2.0), False),             # not a float accumulator
    (np.broadcast_to(1.0, (_N,)), np.full(_N, 2.0), False),       # a read-only view
    (1.0, np.full(3, 2.0), False),                                # a number
])
def test_add_into_is_the_sum_in_place_only_where_that_is_the_same_array(acc, g, in_place):
    want = acc + g
    got = rules.add_into(acc, g)
    assert (got is acc) == in_place
    assert np.shape(got) == np.shape(want) and np.result_type(got) == np.result_type(want)
    np.testing.assert_array_equal(got, want)


# ----- np.where and np.maximum/np.minimum: mask products on numpy, with their fallbacks -----


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where_adjoint_is_the_masked_gradient_and_zero_where_g_is_infinite(dtype):
    from srcdiff.runtime import rules

    rng = np.random.default_rng(0)
    g = rng.normal(size=(5, 4)).astype(dtype)
    c = rng.normal(size=(5, 4)) > 0
    for taken, expected in ((rules.where_adjoint_x(g, c), np.where(c, g, 0.0)),
                            (rules.where_adjoint_y(g, c), np.where(c, 0.0, g))):
        assert taken.dtype == expected.dtype
        np.testing.assert_array_equal(taken, expected)
    g[~c] = np.inf  # an infinite adjoint in the branch not taken: 0 there, not NaN
    np.testing.assert_array_equal(rules.where_adjoint_x(g, c), np.where(c, g, 0.0))
    g[c] = -np.inf
    np.testing.assert_array_equal(rules.where_adjoint_y(g, c), np.where(c, 0.0, g))
    np.testing.assert_array_equal(rules.where_adjoint_x(g, c[0]), np.where(c[0], g, 0.0))


def test_where_of_a_sqrt_keeps_its_finite_gradient():
    """sqrt(where(x > 0, x, 0)) at x <= 0: sqrt' is infinite at 0, the branch not taken."""
    fn = make_function("def f(x):\n    return np.sum(np.sqrt(np.where(x > 0, x, 0.0)))\n")
    x = np.array([-1.0, 0.0, 0.25, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = srcdiff.grad(fn)(x)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 1.0, 0.25])


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_adjoint_splits_ties_and_is_the_mask_product_without_them(op):
    from srcdiff.runtime import rules

    rule = getattr(rules, f"{op}_adjoint")
    rng = np.random.default_rng(1)
    x, y, g = rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)
    pick = x > y if op == "maximum" else x < y
    dx, dy = rule(g, x, y)
    np.testing.assert_array_equal(dx, g * pick)
    np.testing.assert_array_equal(dy, g * ~pick)
    y[2] = x[2]  # a tie: half each
    dx, dy = rule(g, x, y)
    assert dx[2] == dy[2] == 0.5 * g[2]
    fn = make_function(f"def f(x):\n    return np.sum(np.{op}(0.0, x) ** 2 + np.{op}(x, 0.0))\n")
    for point in (rng.normal(size=5), np.array([0.0, 1.0, -1.0])):
        check_grad(fn, (point,), (srcdiff.grad(fn)(point),))
