"""The numba twins of index writes, masks and integer-array keys, joins, np.clip, np.prod,
np.squeeze and np.einsum (runtime/numba_arrays.py, numba_einsum.py) against their numpy
originals: each twin, called inside a numba function, gives the original's value (1e-12
relative; float32 stays float32), shape and dtype, on vectors, matrices, broadcast operands
and numbers.

numba compiles each twin in about a second the first time (then from its disk cache): the
default run checks a few, SRCDIFF_SLOW=1 all of them."""

import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import srcdiff  # noqa: E402
from srcdiff import runtime as rt  # noqa: E402
from srcdiff.runtime import numba_twins as rt_jit  # noqa: E402

slow = pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long: set SRCDIFF_SLOW=1")

rng = np.random.default_rng(11)
M, V = rng.normal(size=(4, 3)), rng.normal(size=4)
T = rng.normal(size=(2, 3, 4))
MASK, ROWS, TAKE = M > 0, np.array([True, False, True, True]), np.array([0, 2, 2, -1])


@numba.njit(cache=True)
def setitem_plain(x, v):
    return rt.setitem(x, (slice(1, None), 0), v), rt.setitem(x, 2, 0.0)


@numba.njit(cache=True)
def setitem_keyed(x, mask, rows, take, v):
    return rt.setitem(x, mask, 0.0), rt.setitem(x, rows, 1.5), rt.setitem(x, take, v)


@numba.njit(cache=True)
def index(x, mask, rows, take):
    return rt_jit.index(x, mask), rt_jit.index(x, rows), rt_jit.index(x, take)


@numba.njit(cache=True)
def getitem_adjoints(x, mask, rows, take):
    a = rt.getitem_adjoint(np.arange(np.count_nonzero(mask)) * 1.0, x, key=mask)
    b = rt.getitem_adjoint(np.ones((np.count_nonzero(rows), x.shape[1])), x, key=rows)
    c = rt.getitem_adjoint(np.ones((take.shape[0], x.shape[1])) * 2.0, x, key=take)
    d = rt.add_at(np.ones_like(x), 3.0, x, key=take)
    e = rt.getitem_adjoint(np.ones(x.shape[0] - 1), x, key=(slice(1, None), 2))
    return a, b, c, d, e


def getitem_adjoints_original(x, mask, rows, take):
    return (rt.getitem_adjoint(np.arange(np.count_nonzero(mask)) * 1.0, x, key=mask),
            rt.getitem_adjoint(np.ones((np.count_nonzero(rows), x.shape[1])), x, key=rows),
            rt.getitem_adjoint(np.ones((take.shape[0], x.shape[1])) * 2.0, x, key=take),
            rt.add_at(np.ones_like(x), 3.0, x, key=take),
            rt.getitem_adjoint(np.ones(x.shape[0] - 1), x, key=(slice(1, None), 2)))


@numba.njit(cache=True)
def clip_both(g, a, lo, hi):
    return rt.clip_adjoint(g, a, lo, hi)


@numba.njit(cache=True)
def clip_parts(g, a, lo, hi):
    return rt.clip_adjoint_a(g, a, lo, hi), rt.clip_adjoint_min(g, a, lo, hi), \
        rt.clip_adjoint_max(g, a, lo, hi)


def clip_parts_original(g, a, lo, hi):
    return rt.clip_adjoint_a(g, a, lo, hi), rt.clip_adjoint_min(g, a, lo, hi), \
        rt.clip_adjoint_max(g, a, lo, hi)


@numba.njit(cache=True)
def clip_one_side(g, a, lo):
    below = rt.clip_adjoint(g, a, lo, None)
    above = rt.clip_adjoint(g, a, None, lo)
    return below[0], below[1], above[0], above[2]


def clip_one_side_original(g, a, lo):
    below, above = rt.clip_adjoint(g, a, lo, None), rt.clip_adjoint(g, a, None, lo)
    return below[0], below[1], above[0], above[2]


@numba.njit(cache=True)
def prod_adjoint(g, x):
    return rt.prod_adjoint(g, x)


@numba.njit(cache=True)
def prod_adjoint_rows(g, x):
    return rt.prod_adjoint(g, x, axis=1, keepdims=True), rt.prod_adjoint(g[:, 0], x, axis=-1)


@numba.njit(cache=True)
def reductions(x):
    return (rt_jit.reduce_prod(x, 0, False), rt_jit.reduce_var(x, 1, True),
            rt_jit.reduce_std(x, -1, False), rt_jit.reduce_prod(x, None, True))


@numba.njit(cache=True)
def joins(g6, g_stack, a, b):
    return (rt.concatenate_adjoint(g6, (a, b), axis=0), rt.stack_adjoint(g_stack, (a, a), axis=-1))


def joins_original(g6, g_stack, a, b):
    return (rt.concatenate_adjoint(g6, [a, b], axis=0), rt.stack_adjoint(g_stack, (a, a), axis=-1))


@numba.njit(cache=True)
def squeeze(x):
    return rt_jit.squeeze(x, 1)


@numba.njit(cache=True)
def stop_gradient(x):
    return srcdiff.stop_gradient(x) * 2.0


@numba.njit(cache=True)
def einsums(a, b, v, t):
    return (rt_jit.einsum("ij,jk->ik", a, b), rt_jit.einsum("ij,ij->", a, a),
            rt_jit.einsum("ij,j", a, v[:3]), rt_jit.einsum("bij,jk->bik", t, b.T),
            rt_jit.einsum("ii->i", b @ a), rt_jit.einsum("i,j->ij", v, v))


def einsums_original(a, b, v, t):
    return (np.einsum("ij,jk->ik", a, b), np.einsum("ij,ij->", a, a), np.einsum("ij,j", a, v[:3]),
            np.einsum("bij,jk->bik", t, b.T), np.einsum("ii->i", b @ a), np.einsum("i,j->ij", v, v))


@numba.njit(cache=True)
def einsum_adjoints(a, b, v, t, g2, g3):
    return (rt_jit.einsum_adjoint("ij,jk->ik", g2, a, b), rt_jit.einsum_adjoint("ij,ij->", 1.5, a, a),
            rt_jit.einsum_adjoint("bij,jk->bik", g3, t, b.T), rt_jit.einsum_adjoint("ii->i", v[:3], b @ a),
            rt_jit.einsum_adjoint("ij,j", v, a, v[:3]))


def einsum_adjoints_original(a, b, v, t, g2, g3):
    return (rt.einsum_adjoint(g2, a, b, subscripts="ij,jk->ik"),
            rt.einsum_adjoint(1.5, a, a, subscripts="ij,ij->"),
            rt.einsum_adjoint(g3, t, b.T, subscripts="bij,jk->bik"),
            rt.einsum_adjoint(v[:3], b @ a, subscripts="ii->i"),
            rt.einsum_adjoint(v, a, v[:3], subscripts="ij,j"))


@numba.njit(cache=True)
def batched(a3, b3, m):
    return rt_jit.matmul(a3, b3), rt_jit.matmul(a3, m), rt_jit.matmul(m.T, b3)


@numba.njit(cache=True)
def batched_adjoints(a3, b3, m, g, g_m, g_t):
    return (rt.matmul_adjoint_x1(g, a3, b3), rt.matmul_adjoint_x2(g, a3, b3),
            rt.matmul_adjoint_x1(g_m, a3, m), rt.matmul_adjoint_x2(g_m, a3, m),
            rt.matmul_adjoint_x1(g_t, m.T, b3), rt.matmul_adjoint_x2(g_t, m.T, b3),
            rt.matmul_adjoint_x1(g, a3[:1], b3), rt.matmul_adjoint_x2(g, a3, b3[:1]))


def batched_adjoints_original(a3, b3, m, g, g_m, g_t):
    return (rt.matmul_adjoint_x1(g, a3, b3), rt.matmul_adjoint_x2(g, a3, b3),
            rt.matmul_adjoint_x1(g_m, a3, m), rt.matmul_adjoint_x2(g_m, a3, m),
            rt.matmul_adjoint_x1(g_t, m.T, b3), rt.matmul_adjoint_x2(g_t, m.T, b3),
            rt.matmul_adjoint_x1(g, a3[:1], b3), rt.matmul_adjoint_x2(g, a3, b3[:1]))


@numba.njit(cache=True)
def summed_terms(gs, vs, us, w1, w2):
    """A loop's terms of matrices (an LSTM's h @ Wh, h a batch): each term's product, summed."""
    x1_terms, x2_terms = [(gs[0], vs[0])], [(gs[0], us[0])]
    for k in range(1, gs.shape[0]):
        x1_terms.append((gs[k], vs[k]))
        x2_terms.append((gs[k], us[k]))
    return (rt.matmul_adjoint_x1_sum(x1_terms, w1), rt.dot_adjoint_b_sum(x2_terms, w2))


def summed_terms_original(gs, vs, us, w1, w2):
    return (rt.matmul_adjoint_x1_sum(list(zip(gs, vs)), w1),
            rt.dot_adjoint_b_sum(list(zip(gs, us)), w2))


@numba.njit(cache=True)
def rows_products(m, xa, xb, xs2):
    return rt.dot_rows(m.T, xa), rt.rows_dot(xb, m), rt.dot_rows(m.T, xs2), rt.rows_dot(xs2, m)


@numba.njit(cache=True)
def transpose_axes(g, t):
    return rt.transpose_adjoint(g, t, axes=(0, 2, 1)), rt.transpose_adjoint(g.transpose((1, 2, 0)), t, axes=(2, 0, 1))


@numba.njit(cache=True)
def reductions_3d(t):
    return (rt_jit.reduce_max(t, -1, True), rt_jit.reduce_sum(t, 0, False),
            rt.max_adjoint(np.ones((2, 3, 1)), rt_jit.reduce_max(t, -1, True), t, axis=-1, keepdims=True))


B = rng.normal(size=(3, 4))
ZEROS = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [1.5, -2.0, 0.5], [2.0, 1.0, -1.0]])
CASES = [  # (twin, original, arguments, in the default run)
    (setitem_plain, lambda x, v: (rt.setitem(x, (slice(1, None), 0), v), rt.setitem(x, 2, 0.0)),
     (M, V[:3]), False),
    (setitem_keyed, lambda x, m, r, t, v: (rt.setitem(x, m, 0.0), rt.setitem(x, r, 1.5),
                                           rt.setitem(x, t, v)), (M, MASK, ROWS, TAKE, M), True),
    (index, lambda x, m, r, t: (x[m], x[r], x[t]), (M, MASK, ROWS, TAKE), False),
    (getitem_adjoints, getitem_adjoints_original, (M, MASK, ROWS, TAKE), True),
    (clip_both, rt.clip_adjoint, (M, M, -0.5, 0.5), False),
    (clip_both, rt.clip_adjoint, (M, M, V[:3] - 0.5, 0.5), False),  # a broadcast bound
    (clip_both, rt.clip_adjoint, (2.0, 0.7, -0.5, 0.5), False),     # numbers
    (clip_both, rt.clip_adjoint, (2.0, -0.7, -0.5, 0.5), False),
    (clip_both, rt.clip_adjoint, (M.astype(np.float32), M.astype(np.float32), -0.5, 0.5), False),
    (clip_one_side, clip_one_side_original, (M, M, 0.1), False),
    (clip_parts, clip_parts_original, (M, M, -0.5, 0.5), False),  # one function per operand
    (clip_parts, clip_parts_original, (M, M, M * 0.5, 0.5), False),
    (clip_parts, clip_parts_original, (M, M, V[:3] - 0.5, 0.5), False),  # a broadcast bound
    (clip_parts, clip_parts_original, (2.0, -0.7, -0.5, 0.5), False),   # numbers
    (prod_adjoint, rt.prod_adjoint, (1.5, M), False),
    (prod_adjoint, rt.prod_adjoint, (1.5, ZEROS), False),  # one zero, several zeros in a row
    (prod_adjoint_rows, lambda g, x: (rt.prod_adjoint(g, x, axis=1, keepdims=True),
                                      rt.prod_adjoint(g[:, 0], x, axis=-1)), (V[:, None], ZEROS), False),
    (reductions, lambda x: (np.prod(x, 0), np.var(x, 1, keepdims=True), np.std(x, -1),
                            np.prod(x, keepdims=True)), (M,), False),
    (joins, joins_original, (rng.normal(size=(6, 3)), rng.normal(size=(4, 3, 2)), M, M[:2]), False),
    (squeeze, lambda x: np.squeeze(x, axis=1), (M[:, None, :],), False),
    (stop_gradient, lambda x: x * 2.0, (V,), False),
    (einsums, einsums_original, (M, B, V, T), False),
    (batched, lambda a, b, m: (a @ b, a @ m, m.T @ b), (T, rng.normal(size=(2, 4, 5)), B.T), False),
    (batched_adjoints, batched_adjoints_original,
     (T, rng.normal(size=(2, 4, 5)), B.T, rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 3)),
      rng.normal(size=(2, 3, 5))), True),
    (batched, lambda a, b, m: (a @ b, a @ m, m.T @ b),
     (T.astype(np.float32), rng.normal(size=(2, 4, 5)).astype(np.float32), B.T.astype(np.float32)), False),
    (summed_terms, summed_terms_original,
     (rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 2, 5)),
      rng.normal(size=(2, 5)), rng.normal(size=(5, 4))), False),
    (rows_products, lambda m, xa, xb, x2: (rt.dot_rows(m.T, xa), rt.rows_dot(xb, m),
                                           rt.dot_rows(m.T, x2), rt.rows_dot(x2, m)),
     (B, rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 5, 3)), rng.normal(size=(5, 3))), False),
    (transpose_axes, lambda g, t: (rt.transpose_adjoint(g, t, axes=(0, 2, 1)),
                                   rt.transpose_adjoint(g.transpose((1, 2, 0)), t, axes=(2, 0, 1))),
     (rng.normal(size=(2, 4, 3)), T), False),
    (reductions_3d, lambda t: (np.max(t, -1, keepdims=True), np.sum(t, 0),
                               rt.max_adjoint(np.ones((2, 3, 1)), np.max(t, -1, keepdims=True), t,
                                              axis=-1, keepdims=True)), (T,), False),
    (einsum_adjoints, einsum_adjoints_original,
     (M, B, V, T, rng.normal(size=(4, 4)), rng.normal(size=(2, 3, 3))), True),
]


@pytest.mark.parametrize("twin, original, args", [
    pytest.param(t, o, a, id=f"{t.py_func.__name__}-{i}", marks=() if default else slow)
    for i, (t, o, a, default) in enumerate(CASES)])
def test_twin_matches_its_original(twin, original, args):
    want = original(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    got = twin(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    assert_same(got, want)


def assert_same(got, want):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for a, b in zip(got, want):
            assert_same(a, b)
        return
    if want is None:
        assert got is None
        return
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))
    if isinstance(want, np.ndarray) and want.ndim:
        assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@slow
def test_a_mask_of_the_wrong_kind_is_a_typing_error_not_a_crash():
    with pytest.raises(numba.core.errors.TypingError, match="boolean mask"):
        getitem_adjoints(M, MASK[:, :2, None], ROWS, TAKE)
