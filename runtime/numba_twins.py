"""numba twins of the runtime functions that generated derivatives call (``srcdiff.jit``).

Each twin is a ``numba.extending.overload`` of the numpy original in ``helpers.py`` or
``rules.py``: inside a function compiled by numba, ``rt.unbroadcast(g, x)`` resolves to the
twin, chosen by the numba types of its arguments (a number or an array, how many axes, a
literal axis). Outside numba nothing changes. A twin computes what its original computes
(tests/test_jit_twins.py compares them); where it cannot (an axis that is not a literal
number, arrays of three or more axes for a matmul), it raises a typing error that
``srcdiff.compiled`` reports at the user's line.

Importing this module needs numba (the ``srcdiff[jit]`` extra).

>>> import numba, numpy as np
>>> from srcdiff import runtime as rt
>>> numba.njit(lambda g, x: rt.unbroadcast(g, x))(np.ones((4, 3)), np.ones(3))  # doctest: +SKIP
array([4., 4., 4.])
"""

from __future__ import annotations

import functools

import numpy as np
from numba import types
from numba.core.errors import TypingError
from numba.extending import overload, register_jitable

from . import backend, helpers, nondiff, numba_blas, rules

__all__ = ["TWINS"]

slice = slice  # noqa: A001, PLW0127  the builtin, as rt_jit.slice: the kernels' keys (a user's
#                variable named slice shadows the builtin in a kernel, not this module's)

TWINS: set[str] = set()  # the names (rt.<name>) that have a twin


def _twin(original, cache: bool = True):
    """Register the decorated overload generator as the twin of ``original`` (``cache``:
    False for a generator that writes its implementation's source, which numba cannot cache
    on its own; the kernel that calls it is cached all the same).

    Each implementation's name is prefixed with ``original``'s: numba keeps one cache index
    per function name and line, and its index is not safe against two processes saving at
    once (each picks data file 1, the last writer wins), so implementations made by one
    factory for different originals (np.tanh's and np.sin's loops) must not share one: two
    processes compiling both gave np.tanh the machine code of np.sin."""

    def register(generator):
        TWINS.add(original.__name__)

        @functools.wraps(generator)
        def named(*args, **kwargs):
            try:
                impl = generator(*args, **kwargs)
            except (AttributeError, TypeError) as exc:  # a type it does not take (an Optional:
                # a value that may be None): numba's typing error, reported at the user's line
                raise TypingError(f"the compiled {original.__name__} does not take "
                                  f"({', '.join(map(str, args))}): {exc}") from None
            if callable(impl) and not impl.__qualname__.startswith(original.__name__ + "."):
                impl.__qualname__ = f"{original.__name__}.{impl.__qualname__}"
            return impl

        return overload(original, jit_options={"cache": cache})(named)

    return register


def _is_number(t) -> bool:
    return isinstance(t, (types.Float, types.Integer, types.Boolean))


def _is_none(t) -> bool:
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


def _literal(t, what: str):
    """The value of a literal argument (an axis, keepdims), or a typing error saying why."""
    if _is_none(t):
        return None
    if isinstance(t, types.Literal):
        return t.literal_value
    raise TypingError(f"{what} must be a constant written in the source, not {t}")


def _dtype(g, x):
    """The numpy dtype of an adjoint spread from ``g`` over ``x`` (g's own, or x's precision)."""
    if isinstance(g, types.Array):
        return g.dtype
    if isinstance(g, types.Float) and g.bitwidth == 32:
        return g
    if isinstance(x, types.Array) and isinstance(x.dtype, types.Float):
        return x.dtype
    return types.float64


# ----- broadcasting, counting, guards -----


@_twin(helpers.unbroadcast)
def _unbroadcast(g, x):
    if _is_number(x):
        if _is_number(g):
            return lambda g, x: g
        return lambda g, x: np.sum(g)
    if not isinstance(x, types.Array):
        return None
    if _is_number(g):  # a number adjoint of an array operand: spread (rare; x was broadcast)
        return lambda g, x: np.full(x.shape, g)
    extra = g.ndim - x.ndim
    if extra < 0:
        raise TypingError(f"unbroadcast: the adjoint has {g.ndim} axes, its operand {x.ndim}")

    def impl(g, x):
        if extra == 0 and g.shape == x.shape:
            return np.asarray(g)
        return _sum_to(g, x.shape)

    if extra:
        return lambda g, x: _sum_to(g, x.shape)
    return impl


def _sum_to(g, shape):
    """``g`` summed over its leading axes and the axes where ``shape`` has 1 (plain numba)."""


@_twin(_sum_to)
def _sum_to_twin(g, shape):
    nd = g.ndim
    ns = len(shape)
    if (nd, ns) == (2, 1):  # a row broadcast down a matrix (a bias): numba's own column sums
        def rows(g, shape):
            if shape[0] == g.shape[1]:  # row by row, as numpy sums axis 0 (the same order)
                out = np.zeros(g.shape[1], g.dtype)
                for i in range(g.shape[0]):
                    out += g[i]
                return out
            return np.full(1, np.sum(g))
        return rows
    if (nd, ns) == (2, 2):
        def matrix(g, shape):
            if shape[0] == 1 and shape[1] == g.shape[1]:
                return np.expand_dims(np.sum(g, axis=0), 0)
            if shape[1] == 1 and shape[0] == g.shape[0]:
                return np.expand_dims(np.sum(g, axis=1), 1)
            return np.full((1, 1), np.sum(g))
        return matrix

    if nd == 3:  # three nested loops, no index arithmetic per element (attention: 15x faster)
        padded = {3: lambda s: s, 2: lambda s: (1, s[0], s[1]), 1: lambda s: (1, 1, s[0]),
                  0: lambda s: (1, 1, 1)}[ns]
        padded = register_jitable(padded)

        def cube(g, shape):
            out = np.zeros(shape, g.dtype)
            full = padded(shape)
            o = out.reshape(full)
            keep0, keep1, keep2 = full[0] != 1, full[1] != 1, full[2] != 1
            for i in range(g.shape[0]):
                oi = i if keep0 else 0
                for j in range(g.shape[1]):
                    oj = j if keep1 else 0
                    for k in range(g.shape[2]):
                        o[oi, oj, k if keep2 else 0] += g[i, j, k]
            return out
        return cube

    def impl(g, shape):
        out = np.zeros(shape, g.dtype)
        flat_out = out.reshape(-1)
        gc = np.ascontiguousarray(g).reshape(-1)
        for k in range(gc.size):
            rem, idx, mult = k, 0, 1
            for ax in range(nd - 1, -1, -1):
                n = g.shape[ax]
                i = rem % n
                rem //= n
                xa = ax - (nd - ns)
                if xa >= 0:
                    if shape[xa] != 1:
                        idx += i * mult
                    mult *= shape[xa]
            flat_out[idx] += gc[k]
        return out

    return impl


@_twin(helpers.count)
def _count(x):
    if _is_number(x):
        return lambda x: 1
    if x.dtype == types.float32:  # a float32 count: 1 / count stays float32, as numpy's
        return lambda x: np.float32(max(x.size, 1))
    return lambda x: max(x.size, 1)


@_twin(helpers.unpacked)
def _unpacked(v, n):
    def impl(v, n):  # (numba raises with a constant message: the count is in the traceback)
        if len(v) != n:
            raise ValueError("the number of values to unpack is not the number of names")
    return impl


@_twin(nondiff.outer_shape)
def _outer_shape(a, b):
    ones = (1,) * (b.ndim if isinstance(b, types.Array) else 0)  # a constant of the types
    if _is_number(a):
        return lambda a, b: ones
    return lambda a, b: a.shape + ones


@_twin(helpers.blank_like)
def _blank_like(x):
    return lambda x: x  # (a compiled loop keeps no Python objects: the array itself)


@_twin(helpers.guard)
def _guard(value, g):
    if _is_number(g):
        if _is_number(value):
            return lambda value, g: value if g != 0 else 1.0
        return lambda value, g: value if g != 0 else np.ones_like(value)
    if _is_number(value):  # np.sqrt(d): the number, 1 where g is 0, in g's shape and dtype (a
        # Python number is weak: float32 stays float32); one loop, not np.where (8 x 32 x 32:
        # 30 -> ~4 us)
        def number(value, g):
            out = np.full(g.shape, value, g.dtype)
            flat, gs = out.reshape(-1), np.ascontiguousarray(g).reshape(-1)
            for i in range(gs.size):
                if gs[i] == 0:
                    flat[i] = 1
            return out
        return number
    return lambda value, g: np.where(g == 0, 1.0, value).astype(value.dtype)


@_twin(helpers.zeros_like)
def _zeros_like(x):
    if _is_number(x):
        return lambda x: 0.0
    return lambda x: np.zeros_like(x)


@_twin(rules.add_into)
def _add_into(acc, g):
    return lambda acc, g: acc + g


# ----- reductions -----


def _expanded(g, x, axis, keepdims):
    """``g`` (a reduction of ``x``'s adjoint) with a 1 where ``axis`` was reduced (plain numba)."""


@_twin(_expanded)
def _expanded_twin(g, x, axis, keepdims):
    if _is_number(g) or _literal(keepdims, "keepdims") or _is_none(axis):
        return lambda g, x, axis, keepdims: g
    a = _literal(axis, "axis") % x.ndim
    return lambda g, x, axis, keepdims: np.expand_dims(g, a)


def _spread(g, x, axis, keepdims):
    """``g`` broadcast back to ``x``'s shape, as a fresh array (plain numba)."""


@_twin(_spread)
def _spread_twin(g, x, axis, keepdims):
    if _is_number(x):
        return lambda g, x, axis, keepdims: g
    dtype = _dtype(g, x)

    def impl(g, x, axis, keepdims):
        out = np.empty(x.shape, dtype)
        out[...] = _expanded(g, x, axis, keepdims)
        return out

    return impl


@_twin(rules.sum_adjoint)
def _sum_adjoint(g, x, axis=None, keepdims=False):
    def impl(g, x, axis=None, keepdims=False):
        return _spread(g, x, axis, keepdims)

    return impl


@_twin(rules.mean_adjoint)
def _mean_adjoint(g, ans, x, axis=None, keepdims=False):
    if _is_number(x):
        return lambda g, ans, x, axis=None, keepdims=False: g
    number = np.float32 if _dtype(g, x) == types.float32 else np.float64  # g's precision
    if _is_none(axis):
        return lambda g, ans, x, axis=None, keepdims=False: _spread(
            g / number(max(x.size, 1)), x, axis, keepdims)

    def impl(g, ans, x, axis=None, keepdims=False):
        return _spread(g / number(x.size // max(np.asarray(ans).size, 1)), x, axis, keepdims)

    return impl


def _mean_kept(x, axis):
    """``np.mean(x, axis=axis, keepdims=True)`` (a number for no axis) (plain numba)."""


@_twin(_mean_kept)
def _mean_kept_twin(x, axis):
    if _is_none(axis):
        return lambda x, axis: np.mean(x)
    a = _literal(axis, "axis") % x.ndim
    return lambda x, axis: np.expand_dims(reduce_mean(x, a, False), a)


def _spread_count(x, ans, ddof):
    """How many numbers each result of a reduction of ``x`` to ``ans`` averages, less
    ``ddof`` (plain numba)."""


@_twin(_spread_count)
def _spread_count_twin(x, ans, ddof):
    return lambda x, ans, ddof: x.size // max(np.asarray(ans).size, 1) - ddof


@_twin(rules.var_adjoint)
def _var_adjoint(g, ans, x, axis=None, ddof=0, keepdims=False):
    if not isinstance(x, types.Array):
        raise TypingError("the compiled np.var adjoint takes an array")

    def impl(g, ans, x, axis=None, ddof=0, keepdims=False):
        return (2.0 * _expanded(g, x, axis, keepdims) * (x - _mean_kept(x, axis))
                / _spread_count(x, ans, ddof))

    return impl


@_twin(rules.std_adjoint)
def _std_adjoint(g, ans, x, axis=None, ddof=0, keepdims=False):
    if not isinstance(x, types.Array):
        raise TypingError("the compiled np.std adjoint takes an array")

    def impl(g, ans, x, axis=None, ddof=0, keepdims=False):
        return (_expanded(g / ans, x, axis, keepdims) * (x - _mean_kept(x, axis))
                / _spread_count(x, ans, ddof))

    return impl


def _extremum_adjoint(g, ans, x, axis=None, keepdims=False):
    if _is_number(x):
        return lambda g, ans, x, axis=None, keepdims=False: g

    def impl(g, ans, x, axis=None, keepdims=False):
        hits = x == _expanded(ans, x, axis, keepdims)
        share = _expanded(g, x, axis, keepdims) * hits
        n_ans = np.asarray(ans).size
        if np.count_nonzero(hits) == n_ans and not np.any(np.isnan(np.asarray(ans))):
            return share
        return share / _hit_counts(hits, axis, share)

    return impl


def _hit_counts(hits, axis, like):
    """How many elements hit the extremum along ``axis`` (kept as an axis), in ``like``'s
    dtype (plain numba)."""


@_twin(_hit_counts)
def _hit_counts_twin(hits, axis, like):
    if _is_none(axis):
        return lambda hits, axis, like: np.full(1, np.count_nonzero(hits), like.dtype)
    a = _literal(axis, "axis") % hits.ndim
    return lambda hits, axis, like: np.expand_dims(hits.sum(axis=a), a).astype(like.dtype)


_twin(rules.max_adjoint)(_extremum_adjoint)
_twin(rules.min_adjoint)(_extremum_adjoint)


# ----- matmul -----


def _ndims(*arrays) -> tuple:
    return tuple(a.ndim if isinstance(a, types.Array) else 0 for a in arrays)


def matmul(a, b):
    """``a @ b`` in numba: both operands in their common dtype (numba's matmul takes one, and
    a numba float64 constant makes a float32 program's adjoints float64) and contiguous
    (numba calls BLAS for those only); kernel.py writes every ``@`` as this."""
    return a @ b


@_twin(matmul)
def _matmul_twin(a, b):
    # numba's matmul calls BLAS for C- and F-contiguous operands (a transpose, x.T, is a flag
    # to BLAS, as in numpy); any other layout (a strided slice) is made contiguous first
    if max(_ndims(a, b)) == 3:
        return _batched(a, b)
    if a.dtype == b.dtype:
        if a.layout in "CF" and b.layout in "CF":
            gemm = numba_blas.GEMM.get(a.dtype) if _ndims(a, b) == (2, 2) else None
            if gemm is not None:  # two matrices: numpy's own BLAS (numba_blas.py)
                return numba_blas.product(gemm, a, b)
            return lambda a, b: a @ b
        return lambda a, b: np.ascontiguousarray(a) @ np.ascontiguousarray(b)
    dtype = np.result_type(np.dtype(str(a.dtype)), np.dtype(str(b.dtype)))
    return lambda a, b: np.ascontiguousarray(a.astype(dtype)) @ np.ascontiguousarray(b.astype(dtype))


def _contiguous(a, dtype):
    """``a`` C-contiguous in ``dtype`` (a copy only where it is not) (plain numba)."""


@_twin(_contiguous)
def _contiguous_twin(a, dtype):
    if a.dtype == dtype.dtype:
        return lambda a, dtype: np.ascontiguousarray(a)
    return lambda a, dtype: np.ascontiguousarray(a.astype(dtype))


def _batched(a, b):
    """numba's matmul for a stack of matrices (3-d, numpy's batched matmul): one BLAS call
    per matrix, or one for all where the other operand is a single matrix."""
    n = _ndims(a, b)
    dtype = np.result_type(np.dtype(str(a.dtype)), np.dtype(str(b.dtype)))
    kind = getattr(types, str(dtype))
    if n == (3, 2):
        def stack_by_matrix(a, b):
            x, y = _contiguous(a, kind), _contiguous(b, kind)
            return (x.reshape((-1, x.shape[2])) @ y).reshape((x.shape[0], x.shape[1], y.shape[1]))
        return stack_by_matrix
    if n == (2, 3):
        def matrix_by_stack(a, b):
            x, y = _contiguous(a, kind), _contiguous(b, kind)
            out = np.empty((y.shape[0], x.shape[0], y.shape[2]), dtype)
            for i in range(y.shape[0]):
                out[i] = x @ y[i]
            return out
        return matrix_by_stack
    if n != (3, 3):
        raise TypingError(f"the compiled matmul takes stacks of matrices, not {n} axes")

    def stacks(a, b):
        x, y = _contiguous(a, kind), _contiguous(b, kind)
        count = max(x.shape[0], y.shape[0])
        if x.shape[0] not in (1, count) or y.shape[0] not in (1, count):
            raise ValueError("matmul: the stacks' sizes do not broadcast")
        out = np.empty((count, x.shape[1], y.shape[2]), dtype)
        for i in range(count):
            out[i] = x[i if x.shape[0] > 1 else 0] @ y[i if y.shape[0] > 1 else 0]
        return out
    return stacks


def _swapped(x):
    """``np.swapaxes(x, -1, -2)`` of a stack of matrices (plain numba)."""


@_twin(_swapped)
def _swapped_twin(x):
    return lambda x: np.transpose(x, (0, 2, 1))


def _batched_adjoint(first: bool, n):
    """The adjoint of a batched ``x1 @ x2`` for ``x1`` (``first``) or ``x2``: ``g`` times the
    other operand's transpose, the stack axis summed back where an operand had none."""
    if n == (3, 3):
        if first:
            return lambda g, x1, x2: helpers.unbroadcast(matmul(g, _swapped(x2)), x1)
        return lambda g, x1, x2: helpers.unbroadcast(matmul(_swapped(x1), g), x2)
    if n == (3, 2):
        if first:
            return lambda g, x1, x2: matmul(g, x2.T)

        def onto_matrix(g, x1, x2):
            x, d = np.ascontiguousarray(x1), np.ascontiguousarray(g)
            return matmul(x.reshape((-1, x.shape[2])).T, d.reshape((-1, d.shape[2])))
        return onto_matrix
    if n == (2, 3):
        if first:
            return lambda g, x1, x2: np.sum(matmul(g, _swapped(x2)), axis=0)
        return lambda g, x1, x2: matmul(x1.T, g)
    raise TypingError(f"the compiled matmul adjoint takes vectors, matrices and stacks of "
                      f"matrices, not {n} axes")


@_twin(rules.matmul_adjoint_x1)
def _matmul_adjoint_x1(g, x1, x2):
    n = _ndims(x1, x2)
    if max(n) == 3:
        return _batched_adjoint(True, n)
    if n == (2, 2):
        return lambda g, x1, x2: matmul(g, x2.T)
    if n == (2, 1):
        return lambda g, x1, x2: np.outer(g, x2)
    if n == (1, 2):
        return lambda g, x1, x2: matmul(x2, g)
    if n == (1, 1):
        return lambda g, x1, x2: g * x2
    raise TypingError(f"the compiled matmul adjoint takes vectors and matrices, not {n} axes")


@_twin(rules.matmul_adjoint_x2)
def _matmul_adjoint_x2(g, x1, x2):
    n = _ndims(x1, x2)
    if max(n) == 3:
        return _batched_adjoint(False, n)
    if n == (2, 2):
        return lambda g, x1, x2: matmul(x1.T, g)
    if n == (2, 1):
        return lambda g, x1, x2: matmul(g, x1)
    if n == (1, 2):
        return lambda g, x1, x2: np.outer(x1, g)
    if n == (1, 1):
        return lambda g, x1, x2: g * x1
    raise TypingError(f"the compiled matmul adjoint takes vectors and matrices, not {n} axes")


def _stacked_terms(terms, matrix):
    """The ``(g, v)`` vector pairs of ``terms`` as the rows of two matrices (plain numba)."""


@_twin(_stacked_terms)
def _stacked_terms_twin(terms, matrix):
    def impl(terms, matrix):
        n = len(terms)
        g0, v0 = terms[0]
        gs = np.empty((n, g0.shape[0]), g0.dtype)
        vs = np.empty((n, v0.shape[0]), v0.dtype)
        for i in range(n):
            g, v = terms[i]
            gs[i] = g
            vs[i] = v
        return gs, vs

    return impl


def _vector_terms(terms, matrix) -> bool:
    """Whether ``terms`` are (vector, vector) pairs (stacked into two matrices), else
    (matrix, matrix) pairs (one matmul each, summed); a typing error otherwise."""
    if not (isinstance(matrix, types.Array) and matrix.ndim == 2 and isinstance(terms, types.List)
            and isinstance(terms.dtype, types.BaseTuple) and len(terms.dtype) == 2
            and all(isinstance(t, types.Array) for t in terms.dtype)):
        raise TypingError("the compiled loop matmul sum takes (vector, vector) or (matrix, "
                          "matrix) terms and a matrix")
    dims = tuple(t.ndim for t in terms.dtype)
    if dims not in ((1, 1), (2, 2)):
        raise TypingError(f"the compiled loop matmul sum takes terms of (1, 1) or (2, 2) axes, "
                          f"not {dims}")
    return dims == (1, 1)


def _summed_twin(first: bool):
    """The twin of a loop's summed matmul (or np.dot) adjoint for the left operand
    (``first``: the sum of the outer products ``g v^T``, ``gs.T @ vs`` stacked; ``g @ v.T``
    per matrix term) or the right one (``vs.T @ gs``; ``v.T @ g`` per matrix term)."""

    def generator(terms, matrix):
        if _vector_terms(terms, matrix):
            def stacked(terms, matrix):
                if len(terms) == 0:
                    return np.zeros_like(matrix)
                gs, vs = _stacked_terms(terms, matrix)
                return matmul(gs.T, vs) if first else matmul(vs.T, gs)
            return stacked

        def each(terms, matrix):
            total = np.zeros_like(matrix)
            for k in range(len(terms)):
                g, v = terms[k]
                total += matmul(g, v.T) if first else matmul(v.T, g)
            return total

        return each

    return generator


_twin(rules.matmul_adjoint_x1_sum)(_summed_twin(True))
_twin(rules.matmul_adjoint_x2_sum)(_summed_twin(False))
_twin(rules.dot_adjoint_a_sum)(_summed_twin(True))
_twin(rules.dot_adjoint_b_sum)(_summed_twin(False))


@_twin(helpers.matmul_rows)
def _matmul_rows(a, xs):
    n = _ndims(a, xs)
    if n == (2, 2):
        return lambda a, xs: matmul(xs, np.ascontiguousarray(a.T))
    if n == (1, 2):
        return lambda a, xs: matmul(xs, a)
    if n == (2, 3):  # a matrix times each matrix of a stack
        return lambda a, xs: matmul(a, xs)
    raise TypingError(f"the compiled matmul_rows takes a vector or matrix and rows, not {n} axes")


@_twin(helpers.rows_matmul)
def _rows_matmul(xs, b):
    n = _ndims(xs, b)
    if n in ((2, 2), (2, 1), (3, 2)):
        return lambda xs, b: matmul(xs, b)
    raise TypingError(f"the compiled rows_matmul takes rows and a vector or matrix, not {n} axes")


@_twin(helpers.dot_rows)
def _dot_rows(a, xs):
    if _ndims(a, xs) not in ((2, 2), (1, 2), (2, 3)):
        raise TypingError(f"the compiled dot_rows takes a vector or matrix and rows, not "
                          f"{_ndims(a, xs)} axes")
    return lambda a, xs: helpers.matmul_rows(a, xs)


@_twin(helpers.rows_dot)
def _rows_dot(xs, b):
    if _ndims(xs, b) not in ((2, 2), (2, 1), (3, 2)):
        raise TypingError(f"the compiled rows_dot takes rows and a vector or matrix, not "
                          f"{_ndims(xs, b)} axes")
    return lambda xs, b: helpers.rows_matmul(xs, b)


# ----- selections, products, transposes -----


def _zero(g):
    """0 in ``g``'s precision (a float64 0.0 would make a float32 adjoint float64)."""
    dtype = g.dtype if isinstance(g, types.Array) else g
    return np.float32(0.0) if dtype == types.float32 else 0.0


@_twin(rules.where_adjoint_x)
def _where_adjoint_x(g, condition):
    zero = _zero(g)
    return lambda g, condition: np.where(condition, g, zero)


@_twin(helpers.where_positive)
def _where_positive(condition, x, y):
    # compiled, np.where is a plain loop: no per-element branch to avoid
    return lambda condition, x, y: np.where(condition, x, y)


@_twin(helpers.sigmoid)
def _sigmoid(x):
    # the same operations as the lines the sigmoid stage replaced, compiled
    return lambda x: 1.0 / (1.0 + np.exp(-x))


@_twin(helpers.squared_norm)
def _squared_norm(x):
    # the same operations as the lines the norms stage replaced, compiled
    return lambda x: np.linalg.norm(x) ** 2


@_twin(helpers.softmax)
def _softmax(x, axis=-1, shifted=True):
    return _normalised(axis, shifted, _exp_over_total, _exp_over_sums)


@_twin(helpers.log_softmax)
def _log_softmax(x, axis=-1, shifted=True):
    return _normalised(axis, shifted, _minus_log_total, _minus_log_sums)


def _normalised(axis, shifted, whole, along):
    """The implementation of ``rt.softmax``/``rt.log_softmax``: ``whole(z)`` (over all axes)
    or ``along(z, axis)`` of ``z``, the input less its maximum where ``shifted``."""
    shift = shifted if isinstance(shifted, bool) else _literal(shifted, "shifted")  # a default
    shift = True if shift is None else shift
    if _is_none(axis):
        if shift:
            return lambda x, axis=-1, shifted=True: whole(x - np.max(x))
        return lambda x, axis=-1, shifted=True: whole(x)
    a = _literal(axis, "axis")
    if shift:
        return lambda x, axis=-1, shifted=True: along(x - reduce_max(x, a, True), a)
    return lambda x, axis=-1, shifted=True: along(x, a)


@register_jitable
def _exp_over_total(z):
    e = np.exp(z)
    return e / np.sum(e)


@register_jitable
def _minus_log_total(z):
    return z - np.log(np.sum(np.exp(z)))


def _exp_over_sums(z, axis):
    """``np.exp(z) / np.sum(np.exp(z), axis=axis, keepdims=True)`` (plain numba)."""


def _minus_log_sums(z, axis):
    """``z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))`` (plain numba)."""


@_twin(_exp_over_sums)
def _exp_over_sums_twin(z, axis):
    a = _literal(axis, "axis")

    def impl(z, axis):
        e = np.exp(z)
        return e / reduce_sum(e, a, True)

    return impl


@_twin(_minus_log_sums)
def _minus_log_sums_twin(z, axis):
    a = _literal(axis, "axis")
    return lambda z, axis: z - np.log(reduce_sum(np.exp(z), a, True))


@_twin(rules.where_adjoint_y)
def _where_adjoint_y(g, condition):
    zero = _zero(g)
    return lambda g, condition: np.where(condition, zero, g)


@_twin(rules.larger_adjoint)
def _larger_adjoint(g, chosen, ties):
    dtype = g.dtype if isinstance(g, types.Array) else g
    half = np.float32(0.5) if dtype == types.float32 else 0.5  # float32 stays float32
    if isinstance(ties, types.Array):
        def impl(g, chosen, ties):
            if not ties.any():  # no tie: g * 0 is never added (an infinite g stays NaN-free)
                return g * chosen
            return g * chosen + (half * g) * ties
        return impl
    return lambda g, chosen, ties: g * chosen + (half * g) * ties


def _dot_adjoint(swap: bool):
    """The twin of ``dot_adjoint_a`` (``swap`` False) or ``dot_adjoint_b``: numbers,
    vectors and matrices."""

    def generator(g, a, b):
        n = _ndims(a, b)
        if 0 in n:
            if swap:
                return lambda g, a, b: helpers.unbroadcast(g * a, b)
            return lambda g, a, b: helpers.unbroadcast(g * b, a)
        if n == (1, 1):
            return (lambda g, a, b: g * a) if swap else (lambda g, a, b: g * b)
        if max(n) <= 2:
            if swap:
                return lambda g, a, b: rules.matmul_adjoint_x2(g, a, b)
            return lambda g, a, b: rules.matmul_adjoint_x1(g, a, b)
        raise TypingError(f"the compiled np.dot adjoint takes at most 2 axes, not {n}")

    return generator


_twin(rules.dot_adjoint_a)(_dot_adjoint(False))
_twin(rules.dot_adjoint_b)(_dot_adjoint(True))


@_twin(rules.inner_adjoint_a)
def _inner_adjoint_a(g, a, b):
    if _ndims(a, b) != (1, 1):
        raise TypingError("the compiled np.inner adjoint takes two vectors")
    return lambda g, a, b: g * b


@_twin(rules.inner_adjoint_b)
def _inner_adjoint_b(g, a, b):
    if _ndims(a, b) != (1, 1):
        raise TypingError("the compiled np.inner adjoint takes two vectors")
    return lambda g, a, b: g * a


@_twin(rules.outer_adjoint_a)
def _outer_adjoint_a(g, a, b):
    if _ndims(a, b) != (1, 1):
        raise TypingError("the compiled np.outer adjoint takes two vectors")
    return lambda g, a, b: matmul(g, b)


@_twin(rules.outer_adjoint_b)
def _outer_adjoint_b(g, a, b):
    if _ndims(a, b) != (1, 1):
        raise TypingError("the compiled np.outer adjoint takes two vectors")
    return lambda g, a, b: matmul(a, g)


@_twin(rules.transpose_adjoint)
def _transpose_adjoint(g, a, axes=None):
    if _is_none(axes):
        return lambda g, a, axes=None: np.transpose(g)
    given = [getattr(t, "literal_value", None) for t in getattr(axes, "types", ())]
    if None in given or not given:
        raise TypingError("the compiled transpose adjoint takes axes written in the source "
                          "(x.transpose(0, 2, 1))")
    inverse = tuple(int(i) for i in np.argsort([v % len(given) for v in given]))
    return lambda g, a, axes=None: np.transpose(g, inverse)


@_twin(rules.trace_adjoint)
def _trace_adjoint(g, a, offset=0, axis1=0, axis2=1):
    options = [t.value if isinstance(t, types.Omitted) else t for t in (offset, axis1, axis2)]
    if not (isinstance(a, types.Array) and a.ndim == 2) or options != [0, 0, 1]:
        raise TypingError("the compiled np.trace adjoint takes a matrix and no options")
    dtype = g.dtype if isinstance(g, types.Array) else g

    def impl(g, a, offset=0, axis1=0, axis2=1):
        out = np.zeros(a.shape, dtype)
        for i in range(min(a.shape[0], a.shape[1])):
            out[i, i] = g
        return out

    return impl


@_twin(backend.reshape)
def _reshape(x, shape, order="C"):
    given = order.value if isinstance(order, types.Omitted) else getattr(order, "literal_value", order)
    if given != "C":
        raise TypingError("the compiled reshape takes order='C' only")
    return lambda x, shape, order="C": np.ascontiguousarray(x).reshape(shape)


def inner(a, b):
    """``np.inner(a, b)``, which numba lacks: for vectors, their dot product (kernel.py
    writes np.inner as this)."""
    return np.inner(a, b)


@_twin(inner)
def _inner(a, b):
    if _ndims(a, b) != (1, 1):
        raise TypingError("the compiled np.inner takes two vectors")
    return lambda a, b: np.dot(a, b)


# ----- numpy reductions over one axis, with keepdims (kernel.py writes np.max(x, axis=1,
# keepdims=True) as rt_jit.reduce_max(x, 1, True): numba's own take no axis or keepdims) -----


def reduce_sum(x, axis, keepdims):
    """``np.sum(x, axis=axis, keepdims=keepdims)``."""
    return np.sum(x, axis=axis, keepdims=keepdims)


def reduce_mean(x, axis, keepdims):
    """``np.mean(x, axis=axis, keepdims=keepdims)``."""
    return np.mean(x, axis=axis, keepdims=keepdims)


def reduce_max(x, axis, keepdims):
    """``np.max(x, axis=axis, keepdims=keepdims)``."""
    return np.max(x, axis=axis, keepdims=keepdims)


def reduce_min(x, axis, keepdims):
    """``np.min(x, axis=axis, keepdims=keepdims)``."""
    return np.min(x, axis=axis, keepdims=keepdims)


def reduce_prod(x, axis, keepdims):
    """``np.prod(x, axis=axis, keepdims=keepdims)``."""
    return np.prod(x, axis=axis, keepdims=keepdims)


def reduce_var(x, axis, keepdims):
    """``np.var(x, axis=axis, keepdims=keepdims)``."""
    return np.var(x, axis=axis, keepdims=keepdims)


def reduce_std(x, axis, keepdims):
    """``np.std(x, axis=axis, keepdims=keepdims)``."""
    return np.std(x, axis=axis, keepdims=keepdims)


REDUCTIONS = {np.sum: reduce_sum, np.mean: reduce_mean, np.max: reduce_max, np.amax: reduce_max,
              np.min: reduce_min, np.amin: reduce_min,
              np.prod: reduce_prod, np.var: reduce_var, np.std: reduce_std}
METHODS = {f.__name__: r for f, r in REDUCTIONS.items()}  # x.sum(axis=0), x.std(axis=1)


def _one_axis(x, axis, keepdims, whole, along):
    """The overload of a reduction: ``whole(x)`` for no axis; ``along(x, a)`` over axis
    ``a`` of a 1-d or 2-d array, with the axis kept for ``keepdims``."""
    keep = _literal(keepdims, "keepdims")
    if _is_none(axis):
        if keep:
            ones = (1,) * x.ndim
            return lambda x, axis, keepdims: np.full(ones, whole(x))
        return lambda x, axis, keepdims: whole(x)
    if not isinstance(x, types.Array):
        raise TypingError("the compiled reductions over an axis take arrays")
    a = _literal(axis, "axis") % x.ndim
    if x.ndim > 2:  # over the first or the last axis: the matrix of the others, reduced
        if a == x.ndim - 1:
            if keep:
                return lambda x, axis, keepdims: np.expand_dims(along(np.ascontiguousarray(
                    x).reshape((-1, x.shape[-1])), 1).reshape(x.shape[:-1]), a)
            return lambda x, axis, keepdims: along(np.ascontiguousarray(x).reshape(
                (-1, x.shape[-1])), 1).reshape(x.shape[:-1])
        if a == 0:
            if keep:
                return lambda x, axis, keepdims: np.expand_dims(along(np.ascontiguousarray(
                    x).reshape((x.shape[0], -1)), 0).reshape(x.shape[1:]), 0)
            return lambda x, axis, keepdims: along(np.ascontiguousarray(x).reshape(
                (x.shape[0], -1)), 0).reshape(x.shape[1:])
        raise TypingError("the compiled reductions of 3 or more axes go over the first or "
                          "the last axis")
    if x.ndim == 1:
        if keep:
            return lambda x, axis, keepdims: np.full(1, whole(x))
        return lambda x, axis, keepdims: whole(x)
    if keep:
        return lambda x, axis, keepdims: np.expand_dims(along(x, a), a)
    return lambda x, axis, keepdims: along(x, a)


def _rows_reduced(reducer):
    """``reducer`` applied to every row (axis 1) or column (axis 0) of a matrix (plain numba)."""
    import numba

    def along(x, a):
        n = x.shape[1 - a]
        out = np.empty(n, x.dtype)
        for i in range(n):
            out[i] = reducer(x[i] if a == 1 else x[:, i])
        return out

    along.__qualname__ = f"{reducer.py_func.__name__}_along"  # one cache index each (_twin)
    return numba.njit(cache=True)(along)


def _make_reduction(stub, whole, name):
    import numba

    whole.__name__ = whole.__qualname__ = f"{name}_whole"
    whole = numba.njit(cache=True)(whole)
    along = _rows_reduced(whole)

    @_twin(stub)
    def generator(x, axis, keepdims):
        return _one_axis(x, axis, keepdims, whole, along)

    generator.__name__ = f"_{name}_twin"
    return generator


def _mean(x):
    return np.sum(x) / x.size


_make_reduction(reduce_sum, lambda x: np.sum(x), "reduce_sum")
_make_reduction(reduce_mean, _mean, "reduce_mean")
_make_reduction(reduce_max, lambda x: np.max(x), "reduce_max")
_make_reduction(reduce_min, lambda x: np.min(x), "reduce_min")
_make_reduction(reduce_prod, lambda x: np.prod(x), "reduce_prod")
_make_reduction(reduce_var, lambda x: np.var(x), "reduce_var")
_make_reduction(reduce_std, lambda x: np.std(x), "reduce_std")


# ----- results: a gradient never shares memory with an argument -----


def own(g, args):
    """``g``, or a copy of it where it shares memory with one of the arrays in ``args``
    (d/dx of ``np.sum(x * y)`` is ``y`` itself; a gradient is never the caller's memory)."""
    for a in args:
        if isinstance(a, np.ndarray) and isinstance(g, np.ndarray) and np.may_share_memory(g, a):
            return g.copy()
    return g


def _bounds(a):
    """The first and one-past-last byte address an array may touch (plain numba)."""


@_twin(_bounds)
def _bounds_twin(a):
    def impl(a):
        lo = hi = a.ctypes.data
        for n, s in zip(a.shape, a.strides):
            if n == 0:
                return lo, lo
            if s < 0:
                lo += (n - 1) * s
            else:
                hi += (n - 1) * s
        return lo, hi + a.itemsize

    return impl


def _overlaps(lo, hi, a):
    """Whether array ``a`` may touch bytes in ``[lo, hi)``; False for a number (plain numba)."""


@_twin(_overlaps)
def _overlaps_twin(lo, hi, a):
    if not isinstance(a, types.Array):
        return lambda lo, hi, a: False

    def impl(lo, hi, a):
        a_lo, a_hi = _bounds(a)
        return lo < a_hi and a_lo < hi

    return impl


@_twin(own)
def _own(g, args):
    if not isinstance(g, types.Array):
        return lambda g, args: g
    from numba import literal_unroll

    def impl(g, args):
        lo, hi = _bounds(g)
        shared = False
        for a in literal_unroll(args):
            shared = shared or _overlaps(lo, hi, a)
        return g.copy() if shared else g

    return impl


# ----- transcendental functions of large arrays: numpy's own (SIMD) loops -----
# numba calls libm once per element (np.tanh: ~40 ns each); numpy's vectorised loops are ~10x
# faster on large arrays. kernel.py writes np.tanh(a) in an array kernel as rt_jit.tanh(a):
# numba's own for numbers and small arrays, numpy's (through numba.objmode, ~1 us) from
# _NUMPY_FROM elements on. The same functions (numpy's), so the same results as the numpy path.

SIMD = ("exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "sinh",
        "cosh", "tanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "cbrt")
_NUMPY_FROM = 512


def _numpy_loop(name: str):
    ufunc = getattr(np, name)

    def stub(x):
        return ufunc(x)

    stub.__name__ = stub.__qualname__ = name
    stub.__doc__ = f"``np.{name}(x)``, by numpy's own loop for a large array (plain numba)."

    @_twin(stub)
    def generator(x):
        import numba

        if not isinstance(x, types.Array):
            return lambda x: ufunc(x)
        result = types.Array(x.dtype, x.ndim, "C")

        def impl(x):
            if x.size < _NUMPY_FROM:
                return np.ascontiguousarray(ufunc(x))
            with numba.objmode(out=result):
                out = np.ascontiguousarray(ufunc(x))
            return out

        return impl

    return stub


for _name in SIMD:
    globals()[_name] = _numpy_loop(_name)


from .numba_arrays import index, squeeze  # noqa: E402  index writes, masks, joins, clip, prod
from .numba_einsum import einsum, einsum_adjoint  # noqa: E402
from .numba_vecmath import trig_far, vcos, vexp, vsin, vtanh  # noqa: E402,F401  one-loop kernels



def _source_digest() -> str:
    """A hash of the twins' source (runtime/numba_*.py) as this process imported it: part of
    every kernel file's name (compiled/loader.py), since numba's cache of a kernel keeps the
    twins it inlined. Read at import, not later: a file changed while a process runs must not
    name kernels compiled with the twins the process still holds."""
    import glob
    import hashlib
    import os

    digest = hashlib.sha1(numba_blas.LIBRARY.encode())  # kernels call its gemm by name
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "numba_*.py"))):
        with open(path, "rb") as fh:
            digest.update(fh.read())
    return digest.hexdigest()


SOURCE_DIGEST = _source_digest()
