"""The helpers that rules and generated code share."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.runtime import add, at, expand_reduced, helpers, unbroadcast, zeros_like


@pytest.mark.parametrize("gshape, x", [
    ((4, 3), np.ones(3)), ((3, 4), np.ones((3, 1))), ((3, 4), np.ones((1, 4))), ((2, 3), 2.0),
    ((2, 3), np.array(2.0)), ((2, 3, 4), np.ones((1, 1))), ((2, 3, 4), np.ones((3, 1))),
    ((1, 3), np.ones(3)), ((2, 3), [[1.0, 2.0, 3.0]]),
])
def test_unbroadcast_sums_to_the_shape_of_x(gshape, x):
    g = np.random.default_rng(0).standard_normal(gshape)
    got = unbroadcast(g, x)
    assert np.shape(got) == np.shape(x)
    # <unbroadcast(g, x), v> == <g, broadcast(v)> for every v of x's shape: check with v = ones.
    np.testing.assert_allclose(np.sum(got), np.sum(g))
    np.testing.assert_allclose(unbroadcast(g, x), _unbroadcast_by_loop(g, np.shape(x)))


def _unbroadcast_by_loop(g, shape):
    out = np.zeros(shape)
    grid = np.broadcast_to(np.arange(out.size).reshape(shape), g.shape)
    np.add.at(out.reshape(-1), grid.reshape(-1), g.reshape(-1))
    return out


def test_unbroadcast_keeps_dtype_and_returns_g_when_shapes_match():
    g = np.ones((4, 3), np.float32)
    assert unbroadcast(g, np.ones((4, 3))) is g
    assert unbroadcast(g, np.ones(3, np.float32)).dtype == np.float32


@pytest.mark.parametrize("shape, axis, keepdims", [
    ((2, 3), None, False), ((2, 3), None, True), ((2, 3), 0, False), ((2, 3), -1, False),
    ((2, 3, 4), (0, 2), False), ((2, 3, 4), (-1, 1), True), ((2, 3), np.int64(1), False),
    ((2, 3), (), False), ((), None, False), ((3,), 0, True),
    ((), 0, False), ((), -1, False),   # numpy reduces a number along axis 0 or -1 (an int)
])
def test_expand_reduced_broadcasts_against_the_input(shape, axis, keepdims):
    x = np.random.default_rng(0).standard_normal(shape)
    got = expand_reduced(np.sum(x, axis=axis, keepdims=keepdims), shape, axis, keepdims)
    np.testing.assert_allclose(got, np.sum(x, axis=axis, keepdims=True))
    if isinstance(got, np.ndarray):
        assert np.ndim(got) == len(shape)
    else:  # the sum of everything is a numpy scalar: a number, kept as it is
        assert isinstance(got, np.generic) and (axis is None or shape == ())


@pytest.mark.parametrize("g", [1.0, 2, np.float64(0.5), np.float32(0.5)])
@pytest.mark.parametrize("shape, axis", [((), None), ((2, 3), None), ((3,), 0), ((2, 3), (0, 1))])
def test_expand_reduced_keeps_a_number(g, shape, axis):
    # a number broadcasts against any shape as it is; np.reshape would make it a host
    # (numpy) array, which a device (CuPy) array cannot be combined with
    got = expand_reduced(g, shape, axis, False)
    assert got is g


def test_zeros_like():
    assert zeros_like(3.0) == 0.0 and isinstance(zeros_like(3.0), float)
    assert zeros_like(3) == 0.0
    z = zeros_like(np.ones((2, 3), np.float32))
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.any()


def test_add_treats_none_as_zero():
    x = np.ones(2)
    assert add(None, None) is None
    assert add(x, None) is x and add(None, x) is x
    np.testing.assert_array_equal(add(x, x), [2.0, 2.0])


def test_at_spells_an_indexing_key():
    assert at[1:3, 0] == (slice(1, 3), 0)
    assert at[...] is Ellipsis
    assert repr(at) == "at"
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(x[at[::2, 1]], x[::2, 1])


# ----- a loop's products with the rows of an array, at once (the batch pass) -----


@pytest.mark.parametrize("a_shape, xs_shape", [
    ((4, 3), (5, 3)),        # matrix @ vector rows
    ((3,), (5, 3)),          # vector @ vector rows: numbers
    ((4, 3), (5, 3, 2)),     # matrix @ matrix rows
    ((3,), (5, 3, 2)),       # vector @ matrix rows
    ((2, 4, 3), (5, 3)),     # a with a batch axis: one product per row
    ((4, 3), (0, 3)),        # no row
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matmul_rows_are_the_products_with_each_row(a_shape, xs_shape, dtype):
    rng = np.random.default_rng(0)
    a, xs = (rng.standard_normal(s).astype(dtype) for s in (a_shape, xs_shape))
    got = helpers.matmul_rows(a, xs)
    assert len(got) == len(xs)
    for t in range(len(xs)):
        want = a @ xs[t]
        assert np.shape(got[t]) == np.shape(want) and got[t].dtype == want.dtype
        np.testing.assert_allclose(got[t], want, rtol=1e-5 if dtype == np.float32 else 1e-13)
    b = np.swapaxes(a, -1, -2) if a.ndim > 1 else a           # the same products, transposed
    ys = np.swapaxes(xs, -1, -2) if xs.ndim > 2 else xs
    got = helpers.rows_matmul(ys, b)
    for t in range(len(ys)):
        want = ys[t] @ b
        assert np.shape(got[t]) == np.shape(want) and got[t].dtype == want.dtype
        np.testing.assert_allclose(got[t], want, rtol=1e-5 if dtype == np.float32 else 1e-13)


def test_matmul_rows_of_a_nested_list():
    a, xs = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(helpers.matmul_rows(a, xs)[1], a @ xs[1])


def test_matmul_rows_of_numbers_fail_as_the_loop_would():
    with pytest.raises(ValueError):
        helpers.matmul_rows(np.ones((2, 3)), np.ones(4))
    assert helpers.matmul_rows(np.ones((2, 3)), np.ones((0, 5))) == []  # no row: no product


def test_matmul_rows_stay_in_the_arrays_library():
    from tests.duckarray import DuckArray, wrap

    rng = np.random.default_rng(1)
    a, xs = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    for got, want in ((helpers.matmul_rows(wrap(a), wrap(xs)), helpers.matmul_rows(a, xs)),
                      (helpers.rows_matmul(wrap(xs), wrap(a.T)), helpers.rows_matmul(xs, a.T))):
        assert type(got) is DuckArray
        np.testing.assert_allclose(got.get(), want)


def test_tree_zeros_of_a_list_of_arrays_matches_the_general_walk():
    """The list-of-arrays fast path gives what the leaf-by-leaf walk gives: zeros of each
    float array's shape and dtype, None for integer arrays; a tuple stays a tuple."""
    from srcdiff.runtime import trees

    items = [np.ones((2, 3)), np.ones(4, dtype=np.float32), np.arange(3), np.ones(())]
    for x in (items, tuple(items)):
        fast = trees.tree_zeros(x)
        general = trees.tree_map(lambda leaf: trees.tree_zeros(leaf) if trees.is_float(leaf)
                                 else None, [*x, {"pad": 0.0}])[:-1]
        assert type(fast) is type(x) and len(fast) == len(general)
        for a, b in zip(fast, general):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.shape == b.shape and a.dtype == b.dtype and not a.any()
