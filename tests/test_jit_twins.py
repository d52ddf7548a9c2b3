"""The numba twins of the runtime (runtime/numba_twins.py) against their numpy originals:
each twin, called inside a numba function, gives the original's value (1e-12 relative),
shape and dtype, on vectors, matrices, broadcast operands and numbers."""

import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from srcdiff import runtime as rt  # noqa: E402
from srcdiff.runtime import numba_twins  # noqa: E402,F401  registers the twins


@numba.njit(cache=True)
def unbroadcast(g, x):
    return rt.unbroadcast(g, x)


@numba.njit(cache=True)
def outer_shape(a, b):
    return rt.outer_shape(a, b)


@numba.njit(cache=True)
def count(x):
    return rt.count(x)


@numba.njit(cache=True)
def guard(v, g):
    return rt.guard(v, g)


@numba.njit(cache=True)
def sum_adjoint(g, x):
    return rt.sum_adjoint(g, x)


@numba.njit(cache=True)
def sum_adjoint_rows(g, x):
    return rt.sum_adjoint(g, x, axis=1, keepdims=True)


@numba.njit(cache=True)
def mean_adjoint(g, ans, x):
    return rt.mean_adjoint(g, ans, x)


@numba.njit(cache=True)
def mean_adjoint_columns(g, ans, x):
    return rt.mean_adjoint(g, ans, x, axis=0)


@numba.njit(cache=True)
def max_adjoint_rows(g, ans, x):
    return rt.max_adjoint(g, ans, x, axis=1, keepdims=True)


@numba.njit(cache=True)
def min_adjoint(g, ans, x):
    return rt.min_adjoint(g, ans, x)


@numba.njit(cache=True)
def matmul_adjoint_x1(g, a, b):
    return rt.matmul_adjoint_x1(g, a, b)


@numba.njit(cache=True)
def matmul_adjoint_x2(g, a, b):
    return rt.matmul_adjoint_x2(g, a, b)


@numba.njit(cache=True)
def getitem_adjoint_row(g, x):
    return rt.getitem_adjoint(g, x, key=1)


@numba.njit(cache=True)
def add_at_block(acc, g, x):
    return rt.add_at(acc, g, x, key=(slice(1, 3), 0))


@numba.njit(cache=True)
def reduce_max_rows(x):
    return numba_twins.reduce_max(x, 1, True)


@numba.njit(cache=True)
def reduce_sum_columns(x):
    return numba_twins.reduce_sum(x, 0, False)


@numba.njit(cache=True)
def where_adjoint_x(g, c):
    return rt.where_adjoint_x(g, c)


@numba.njit(cache=True)
def where_adjoint_y(g, c):
    return rt.where_adjoint_y(g, c)


@numba.njit(cache=True)
def where_positive(c, x, y):
    return rt.where_positive(c, x, y)


@numba.njit(cache=True)
def softmaxes(x):
    return rt.softmax(x, axis=-1), rt.softmax(x, axis=0, shifted=False), rt.softmax(x, axis=None), \
        rt.log_softmax(x, axis=1), rt.log_softmax(x, axis=0, shifted=False), rt.log_softmax(x, axis=None)


@numba.njit(cache=True)
def larger_adjoint(g, chosen, ties):
    return rt.larger_adjoint(g, chosen, ties)


@numba.njit(cache=True)
def dot_adjoint_a(g, a, b):
    return rt.dot_adjoint_a(g, a, b)


@numba.njit(cache=True)
def dot_adjoint_b(g, a, b):
    return rt.dot_adjoint_b(g, a, b)


@numba.njit(cache=True)
def inner_outer(g, s, a, b):
    return (rt.inner_adjoint_a(s, a, b), rt.inner_adjoint_b(s, a, b),
            rt.outer_adjoint_a(g, a, b), rt.outer_adjoint_b(g, a, b))


@numba.njit(cache=True)
def transpose_adjoint(g, a):
    return rt.transpose_adjoint(g, a)


@numba.njit(cache=True)
def trace_adjoint(g, a):
    return rt.trace_adjoint(g, a)


@numba.njit(cache=True)
def var_std(g, x, columns):
    return (rt.var_adjoint(g, np.var(x), x), rt.std_adjoint(g, np.std(x), x),
            rt.var_adjoint(np.ones(x.shape[1]), columns, x, axis=0),
            rt.std_adjoint(np.ones(x.shape[1]), np.sqrt(columns), x, axis=0))


@numba.njit(cache=True)
def inner(a, b):
    return numba_twins.inner(a, b)


@numba.njit(cache=True)
def reshape(g, x):
    return rt.reshape(g, x.shape)


def _original(name):
    return {"reduce_max_rows": lambda x: np.max(x, axis=1, keepdims=True),
            "reduce_sum_columns": lambda x: np.sum(x, axis=0)}.get(name)


rng = np.random.default_rng(7)
M, V, C, R = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(4, 1)), rng.normal(size=(1, 3))
W, U = rng.normal(size=(3, 5)), rng.normal(size=5)
TIES = np.array([[1.0, 1.0, 0.5], [2.0, -1.0, 2.0], [0.0, 3.0, 1.0], [1.0, 1.0, 1.0]])

CASES = [  # (twin, original, arguments)
    (unbroadcast, rt.unbroadcast, (M, V)), (unbroadcast, rt.unbroadcast, (M, C)),
    (unbroadcast, rt.unbroadcast, (M, R)), (unbroadcast, rt.unbroadcast, (M, M)),
    (unbroadcast, rt.unbroadcast, (M, 0.5)), (unbroadcast, rt.unbroadcast, (0.25, 0.5)),
    (unbroadcast, rt.unbroadcast, (rng.normal(size=(2, 4, 3)), C)),
    (count, rt.count, (M,)), (count, rt.count, (2.0,)),
    (guard, rt.guard, (np.abs(M), (M > 0) * 1.0)), (guard, rt.guard, (2.0, 1.0)), (guard, rt.guard, (2.0, 0.0)),
    (sum_adjoint, rt.sum_adjoint, (1.0, M)), (sum_adjoint, rt.sum_adjoint, (2.5, V)),
    (sum_adjoint_rows, lambda g, x: rt.sum_adjoint(g, x, axis=1, keepdims=True), (C, M)),
    (mean_adjoint, rt.mean_adjoint, (1.0, M.mean(), M)),
    (mean_adjoint_columns, lambda g, a, x: rt.mean_adjoint(g, a, x, axis=0), (V, M.mean(0), M)),
    (max_adjoint_rows, lambda g, a, x: rt.max_adjoint(g, a, x, axis=1, keepdims=True),
     (C, M.max(1, keepdims=True), M)),
    (max_adjoint_rows, lambda g, a, x: rt.max_adjoint(g, a, x, axis=1, keepdims=True),
     (C, TIES.max(1, keepdims=True), TIES)),
    (min_adjoint, rt.min_adjoint, (1.5, TIES.min(), TIES)),
    (matmul_adjoint_x1, rt.matmul_adjoint_x1, (rng.normal(size=(4, 5)), M, W)),
    (matmul_adjoint_x2, rt.matmul_adjoint_x2, (rng.normal(size=(4, 5)), M, W)),
    (matmul_adjoint_x1, rt.matmul_adjoint_x1, (rng.normal(size=3), W, U)),
    (matmul_adjoint_x2, rt.matmul_adjoint_x2, (rng.normal(size=3), W, U)),
    (matmul_adjoint_x2, rt.matmul_adjoint_x2, (U, V, W)),
    (matmul_adjoint_x1, rt.matmul_adjoint_x1, (2.0, V, V.copy())),
    (getitem_adjoint_row, lambda g, x: rt.getitem_adjoint(g, x, key=1), (V, M)),
    (add_at_block, lambda a, g, x: rt.add_at(a, g, x, key=(slice(1, 3), 0)), (np.ones((4, 3)), V[:2], M)),
    (where_adjoint_x, rt.where_adjoint_x, (M, M > 0)), (where_adjoint_y, rt.where_adjoint_y, (M, M > 0)),
    (where_adjoint_x, rt.where_adjoint_x, (M.astype(np.float32), M > 0)),
    (where_positive, rt.where_positive, (M > 0, M, 0.0)),
    (softmaxes, lambda x: (rt.softmax(x, axis=-1), rt.softmax(x, axis=0, shifted=False),
                           rt.softmax(x, axis=None), rt.log_softmax(x, axis=1),
                           rt.log_softmax(x, axis=0, shifted=False), rt.log_softmax(x, axis=None)),
     (M,)),
    (larger_adjoint, rt.larger_adjoint, (M, M > 0, M == 0)),
    (larger_adjoint, rt.larger_adjoint, (M, M > 0, TIES == 1.0)),
    (larger_adjoint, rt.larger_adjoint, (2.0, True, False)),
    (larger_adjoint, rt.larger_adjoint, (M.astype(np.float32), M > 0, TIES == 1.0)),
    (dot_adjoint_a, rt.dot_adjoint_a, (rng.normal(size=(4, 5)), M, W)),
    (dot_adjoint_b, rt.dot_adjoint_b, (rng.normal(size=(4, 5)), M, W)),
    (dot_adjoint_a, rt.dot_adjoint_a, (2.0, V, V.copy())), (dot_adjoint_b, rt.dot_adjoint_b, (M, 0.5, M)),
    (inner_outer, lambda g, s, a, b: (rt.inner_adjoint_a(s, a, b), rt.inner_adjoint_b(s, a, b),
                                      rt.outer_adjoint_a(g, a, b), rt.outer_adjoint_b(g, a, b)),
     (rng.normal(size=(3, 3)), 1.5, V, V + 1.0)),
    (transpose_adjoint, rt.transpose_adjoint, (W.T.copy(), W)),
    (trace_adjoint, rt.trace_adjoint, (1.5, M)), (trace_adjoint, rt.trace_adjoint, (2.0, W)),
    (var_std, lambda g, x, c: (rt.var_adjoint(g, np.var(x), x), rt.std_adjoint(g, np.std(x), x),
                               rt.var_adjoint(np.ones(x.shape[1]), c, x, axis=0),
                               rt.std_adjoint(np.ones(x.shape[1]), np.sqrt(c), x, axis=0)),
     (1.5, M, M.var(axis=0))),
    (reshape, lambda g, x: rt.reshape(g, x.shape), (M.ravel(), M)),
    (inner, np.inner, (V, V + 1.0)),
    (outer_shape, rt.outer_shape, (M, V)), (outer_shape, rt.outer_shape, (V, 2.0)),
    (outer_shape, rt.outer_shape, (1.5, M)),
    (reshape, lambda g, x: rt.reshape(g, x.shape), (M.T, M.T.copy().reshape(3, 4))),
    (reduce_max_rows, _original("reduce_max_rows"), (M,)),
    (reduce_sum_columns, _original("reduce_sum_columns"), (M,)),
]


# numba compiles each twin in about a second the first time (then from its disk cache): the
# default run checks the twins every generated derivative calls, SRCDIFF_SLOW=1 all of them
slow = pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long: set SRCDIFF_SLOW=1")
DEFAULT = {unbroadcast, sum_adjoint, matmul_adjoint_x2}


@pytest.mark.parametrize("twin, original, args", [
    pytest.param(*c, id=f"{c[0].py_func.__name__}-{i}", marks=() if c[0] in DEFAULT else slow)
    for i, c in enumerate(CASES)])
def test_twin_matches_its_original(twin, original, args):
    want = original(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    got = twin(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    for got, want in zip(got, want) if isinstance(want, tuple) else ((got, want),):
        assert np.shape(got) == np.shape(want)
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@slow
def test_guard_of_an_array_by_a_zero_number_is_ones_of_its_shape():
    """numba needs one type: where the original gives the number 1.0 for a whole array
    (its adjoint is the number 0), the twin gives ones of the array's shape, the same value
    wherever it is used (divided by, broadcast)."""
    np.testing.assert_array_equal(guard(V, 0.0), np.broadcast_to(rt.guard(V, 0.0), V.shape))
    np.testing.assert_array_equal(guard(V, 1.0), rt.guard(V, 1.0))


@slow
def test_float32_matmul_adjoint_takes_mixed_precision():
    """A numba float64 constant makes a float32 program's adjoint float64: the twin
    multiplies in the common dtype, as numpy would."""
    g, a, b = rng.normal(size=(4, 5)), M.astype(np.float32), W.astype(np.float32)
    np.testing.assert_allclose(matmul_adjoint_x2(g, a, b), rt.matmul_adjoint_x2(g, a, b), rtol=1e-12)


@numba.njit(cache=True)
def numpy_loops(x):
    return numba_twins.tanh(x), numba_twins.exp(-x), numba_twins.sin(x), numba_twins.log1p(x * x)


@slow
@pytest.mark.parametrize("x", [rng.normal(size=3), rng.normal(size=5000),
                               np.asfortranarray(rng.normal(size=(60, 50)))],
                         ids=["small (numba's)", "large (numpy's loop)", "large, Fortran order"])
def test_transcendental_functions_are_numpys_own(x):
    """Small arrays: numba's functions (libm); large ones: numpy's loops, bit for bit."""
    for got, want in zip(numpy_loops(x), (np.tanh(x), np.exp(-x), np.sin(x), np.log1p(x * x))):
        assert got.shape == want.shape and got.dtype == want.dtype
        if x.size >= numba_twins._NUMPY_FROM:
            np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, want, rtol=1e-14)


@slow
def test_twins_made_by_one_factory_keep_separate_cache_indexes():
    """numba keeps one cache index per function name and line, not safe against two processes
    saving at once: np.tanh's and np.sin's loops (one factory) each have their own index, or a
    race gives one the other's machine code (it did: np.tanh computed np.sin)."""
    numpy_loops(rng.normal(size=3))
    cache = os.path.join(os.path.dirname(numba_twins.__file__), "__pycache__")
    names = [n for n in os.listdir(cache) if n.endswith(".nbi") and "_numpy_loop" in n]
    assert any(n.startswith("numba_twins.tanh.") for n in names)
    assert any(n.startswith("numba_twins.sin.") for n in names)


@numba.njit(cache=True)
def compiled_matmul(a, b):
    return numba_twins.matmul(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shapes", [((4, 5), (5, 3)), ((0, 5), (5, 3)), ((4, 0), (0, 3)),
                                    ((1, 5), (5, 1))], ids=str)
def test_matrix_products_are_numpys_bit_for_bit(shapes, dtype):
    """Two matrices, C- or F-contiguous (a transpose): numpy's own BLAS (numba_blas.py) where
    numpy's library is found, numba's product otherwise; numpy's values (bit for bit where
    numpy calls gemm too), empty operands included."""
    (m, k), (_, n) = shapes
    a, b = rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(k, n)).astype(dtype)
    for left in (a, np.asfortranarray(a)):
        for right in (b, np.asfortranarray(b)):
            got, want = compiled_matmul(left, right), left @ right
            assert got.dtype == want.dtype and got.shape == want.shape
            if numba_twins.numba_blas.GEMM and min(m, n) > 1:  # (numpy's (1, k) @ (k, 1): a dot)
                assert np.array_equal(got, want)
            np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 1), (1, 3, 4), (2, 1, 4), (1, 1, 4), (2, 1, 1), (3, 4),
                                   (3, 1), (1, 4), (4,), (1,), (), (1, 1, 1)], ids=str)
def test_sums_of_a_3d_adjoint_to_its_operands_shape(shape):
    """The three-loop sum of a (2, 3, 4) adjoint back to an operand that numpy broadcast."""
    g = rng.normal(size=(2, 3, 4))
    x = rng.normal(size=shape) if shape else 0.5
    got, want = unbroadcast(g, x), rt.unbroadcast(g, x)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("value", [2.0, 0.0, np.nan, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_guard_of_a_number_by_an_array_adjoint(value, dtype):
    """A number guarded by an array adjoint with zeros: the number, 1 where the adjoint is 0,
    in the adjoint's shape and dtype; g / guard as numpy's."""
    g = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 4.0]], dtype)
    got, want = guard(value, g), rt.guard(value, g)
    assert got.shape == g.shape and got.dtype == dtype
    np.testing.assert_array_equal(got, np.where(g == 0, 1.0, value))
    with np.errstate(divide="ignore", invalid="ignore"):  # value 0: g / 0 is inf, as numpy's
        np.testing.assert_array_equal(g / got, g / want)
