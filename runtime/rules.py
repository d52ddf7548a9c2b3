"""Adjoint rules: one runnable function per array primitive.

Conventions (see ``registry.py``): ``g`` is the adjoint of the output, ``ans``
the primal output; one adjoint is returned per operand (parameters without a
default), ``None`` meaning zero. Rules whose body is a single ``return`` are
inlined by the compiler into the generated source, so keep them to one
readable expression where the mathematics allows it; such a body names only
its parameters, ``np.<function>`` and the helpers imported below. Rules only
call numpy functions that dispatch on their arguments (ufuncs, ``*_like``), so
the same rule runs on CuPy arrays without touching host memory; what numpy
cannot dispatch (``eye``, a scatter-add) goes through ``array_module(x)``. A
rule never makes an array from a bare Python number (``np.ravel(2.0)`` is a
host array): scalars stay scalars. Nor from a number ``g`` (grad's seed is the
Python float ``1.0``, a numpy output's seed a numpy scalar): a number broadcasts
as it is, so it is never reshaped (``np.reshape(1.0, (1, 1))`` is a host array
too) but multiplied in, or spread with ``np.full_like(x, g)`` in x's library.
tests/test_duck_array.py runs every rule on an array type that refuses host
conversion, with an array ``g`` and, where the output is one number, a number.
"""

from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from .backend import array_module, is_dask, reshape, scatter_add, split
from .helpers import append, blank, count, guard, setitem, expand_reduced, inverse_permutation, log_softmax, sigmoid, softmax, squared_norm, unbroadcast, where_positive, zeros_like
from .options import OneOf
from .registry import adjoint
from .tape import Terms
from . import shaping

# ----- binary arithmetic -----


@adjoint(np.add, operator.add, broadcasting=True)
def add_adjoint(g, x, y):
    return g, g


@adjoint(np.subtract, operator.sub, broadcasting=True)
def subtract_adjoint(g, x, y):
    return g, -g


@adjoint(np.multiply, operator.mul, broadcasting=True)
def multiply_adjoint(g, x, y):
    return g * y, g * x


@adjoint(np.true_divide, operator.truediv, broadcasting=True)
def divide_adjoint(g, x, y):
    return g / guard(y, g), -g * x / guard(y * y, g)


@adjoint(np.power, operator.pow, broadcasting=True)
def power_adjoint(g, ans, x, y):
    return g * y * guard(x, g) ** (y - 1), g * ans * np.log(np.where(x > 0, x, np.ones_like(ans)))


@adjoint(np.remainder, operator.mod, broadcasting=True)
def remainder_adjoint(g, x, y):
    return g, -g * np.floor(x / y)


# Ties split the gradient evenly (0.5 each, what central differences give): products with
# the comparison masks, in g's dtype, ~2x faster than np.heaviside on 10**6 elements; a NaN
# operand gets 0, not NaN. Where numpy finds no tie the mask product alone is the adjoint
# (np.maximum(0, a) then costs what a * (a > 0) costs); other arrays (CuPy) never branch on
# their values, which would wait for the device.
@adjoint(np.maximum, broadcasting=True)
def maximum_adjoint(g, x, y):
    return larger_adjoint(g, x > y, x == y), larger_adjoint(g, y > x, x == y)


@adjoint(np.minimum, broadcasting=True)
def minimum_adjoint(g, x, y):
    return larger_adjoint(g, x < y, x == y), larger_adjoint(g, y < x, x == y)


def larger_adjoint(g, chosen, ties):
    """``g`` where an operand of ``np.maximum``/``np.minimum`` was chosen (the mask
    ``chosen``), half of ``g`` at ``ties``."""
    if type(ties) is np.ndarray and not ties.any():
        return g * chosen
    return g * chosen + (0.5 * g) * ties


# ----- selection -----


@adjoint(np.where, where_positive, broadcasting=True)  # where_positive(c, x, 0): np.where's
def where_adjoint(g, condition, x, y):
    return None, where_adjoint_x(g, condition), where_adjoint_y(g, condition)


# np.where(c, g, 0.0) is what each branch gets (0, not NaN, where g is infinite and the
# branch was not taken). On numpy, np.where branches per element: ~4x slower than the mask
# product g * c on random masks. Where g is finite (np.isfinite: no warning, unlike a sum
# of infinities) the product is that array; other arrays (CuPy) are never branched on,
# which would wait for the device.
def where_adjoint_x(g, condition):
    """``g`` where ``condition`` holds, 0 elsewhere."""
    return _branch(g, condition, True)


def where_adjoint_y(g, condition):
    """``g`` where ``condition`` does not hold, 0 elsewhere."""
    return _branch(g, condition, False)


def _branch(g, condition, taken: bool):
    """The adjoint of the branch of ``np.where`` that ``condition`` takes (``taken``) or not."""
    if type(g) is np.ndarray and type(condition) is np.ndarray and condition.dtype == bool and \
            np.isfinite(g).all():
        return g * condition if taken else g * ~condition
    return np.where(condition, g, 0.0) if taken else np.where(condition, 0.0, g)


# Inclusive bounds: at a == a_min the gradient goes to ``a``; either bound may be None (a
# one-sided clip). numpy clips to a_min, then to a_max: where a_min > a_max, a_max wins.
# One function per operand, so a derivative computes only the adjoints it needs (a Huber
# loss's np.clip(r, -d, d) with respect to r alone), each a mask product (see _branch).
@adjoint(np.clip, broadcasting=True)
def clip_adjoint(g, a, a_min, a_max):
    return clip_adjoint_a(g, a, a_min, a_max), clip_adjoint_min(g, a, a_min, a_max), \
        clip_adjoint_max(g, a, a_min, a_max)


# (each mask written out of comparisons: second order differentiates these functions too)
def clip_adjoint_a(g, a, a_min, a_max):
    """``g`` where ``np.clip`` passed ``a`` through, 0 where a bound took its place."""
    if a_min is None:
        return _branch(g, a > a_max, False)
    if a_max is None:
        return _branch(g, a < a_min, False)
    return _branch(g, (a < a_min) & (a_min <= a_max) | (np.maximum(a, a_min) > a_max), False)


def clip_adjoint_min(g, a, a_min, a_max):
    """``g`` where ``a_min`` took ``a``'s place; None for no lower bound."""
    if a_min is None:
        return None
    if a_max is None:
        return _branch(g, a < a_min, True)
    return _branch(g, (a < a_min) & (a_min <= a_max), True)


def clip_adjoint_max(g, a, a_min, a_max):
    """``g`` where ``a_max`` took ``a``'s place; None for no upper bound."""
    if a_max is None:
        return None
    if a_min is None:
        return _branch(g, a > a_max, True)
    return _branch(g, np.maximum(a, a_min) > a_max, True)


# ----- unary elementwise -----   (g: adjoint of the output, ans: the primal output)


@adjoint(np.negative, operator.neg)
def negative_adjoint(g, x):
    return -g


@adjoint(np.exp, math.exp)
def exp_adjoint(g, ans, x):
    return g * ans


@adjoint(np.expm1, math.expm1)
def expm1_adjoint(g, ans, x):
    return g * (ans + 1.0)


@adjoint(np.log, math.log)
def log_adjoint(g, x):
    return g / guard(x, g)


@adjoint(np.log1p, math.log1p)
def log1p_adjoint(g, x):
    return g / guard(1.0 + x, g)


@adjoint(np.sqrt, math.sqrt)
def sqrt_adjoint(g, ans, x):
    return g / (2.0 * guard(ans, g))


@adjoint(np.square)
def square_adjoint(g, x):
    return 2.0 * g * x


@adjoint(np.absolute, builtins.abs, math.fabs)
def abs_adjoint(g, x):
    return g * np.sign(x)


@adjoint(np.sin, math.sin)
def sin_adjoint(g, x):
    return g * np.cos(x)


@adjoint(np.cos, math.cos)
def cos_adjoint(g, x):
    return -g * np.sin(x)


@adjoint(np.tan, math.tan)
def tan_adjoint(g, ans, x):
    return g * (1.0 + ans * ans)


@adjoint(np.sinh, math.sinh)
def sinh_adjoint(g, x):
    return g * np.cosh(x)


@adjoint(np.cosh, math.cosh)
def cosh_adjoint(g, x):
    return g * np.sinh(x)


@adjoint(np.tanh, math.tanh)
def tanh_adjoint(g, ans, x):
    return g * (1.0 - ans * ans)


@adjoint(np.arcsin, math.asin)
def arcsin_adjoint(g, x):
    return g / np.sqrt(guard(1.0 - x * x, g))


@adjoint(np.arccos, math.acos)
def arccos_adjoint(g, x):
    return -g / np.sqrt(guard(1.0 - x * x, g))


@adjoint(np.arctan, math.atan)
def arctan_adjoint(g, x):
    return g / (1.0 + x * x)


# ----- reductions -----   (expand_reduced puts the reduced axes back as size 1)


@adjoint(sigmoid)  # the sigmoid stage's 1.0 / (1.0 + np.exp(-x))
def sigmoid_adjoint(g, ans, x):
    return g * ans * (1.0 - ans)


@adjoint(squared_norm)  # the norms stage's np.linalg.norm(x) ** 2: the sum of x's squares
def squared_norm_adjoint(g, x):
    return 2.0 * g * x


@adjoint(softmax)  # the canonical stage's e / sum(e) of e = exp(x - max(x)), along one axis
def softmax_axis_adjoint(g, ans, x, axis=-1, shifted=True):
    return ans * (g - np.sum(g * ans, axis=axis, keepdims=True))


@adjoint(log_softmax)  # the softmax stage's z - log(sum(exp(z))) of z = x - max(x)
def log_softmax_axis_adjoint(g, ans, x, axis=-1, shifted=True):
    return g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)


@adjoint(np.sum)
def sum_adjoint(g, x, axis=None, keepdims=False):
    return _spread(g, x, axis, keepdims)


@adjoint(np.mean)
def mean_adjoint(g, ans, x, axis=None, keepdims=False):
    if axis is None and type(x) is np.ndarray:  # the mean of all of x: one number, spread
        return _spread(g / max(x.size, 1), x, None, keepdims)
    count = (x.size if hasattr(x, "size") else np.size(x)) // max(
        ans.size if hasattr(ans, "size") else np.size(ans), 1)
    return _spread(g / count, x, axis, keepdims)  # divide the small array, then spread


_SMALL = 1 << 14  # up to this many elements a fresh array is cheaper than np.broadcast_to's
                  # Python overhead (~4 us); above it a broadcast view saves memory traffic


def _spread(g, x, axis, keepdims):
    """``g``, the adjoint of a reduction of ``x`` over ``axis``, broadcast back to ``x``."""
    if type(x) is np.ndarray and x.size <= _SMALL:  # filled in with the dtype broadcast_to
        if axis is None and (type(g) is float or isinstance(g, np.floating)):  # would give
            out = np.empty(x.shape, g.dtype if type(g) is not float else x.dtype
                           if x.dtype.kind == "f" else np.float64)
            out.fill(g)
            return out
        if type(g) is np.ndarray:
            if axis is not None and not keepdims:
                g = expand_reduced(g, x.shape, axis, keepdims)
            out = np.empty(x.shape, g.dtype)
            out[...] = g  # a ValueError where g does not broadcast, as from broadcast_to
            return out
    if (type(g) is float or isinstance(g, (int, np.generic))) and hasattr(x, "dtype"):
        # one number (grad's seed 1.0, a numpy scalar), the same everywhere: of x's precision
        # (a numpy scalar's own), and made in x's library (np.broadcast_to(g, ...) would make
        # a host array for a CuPy x)
        dtype = g.dtype if isinstance(g, np.inexact) else x.dtype if x.dtype.kind == "f" \
            else np.dtype(np.float64)
        if type(x) is np.ndarray:
            return np.broadcast_to(dtype.type(g), x.shape)
        return np.full_like(x, g, dtype=dtype)
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    if axis is not None and not keepdims:
        g = expand_reduced(g, shape, axis, keepdims)
    return np.broadcast_to(g, shape)


def spread_number(g, x):
    """What every entry of ``sum_adjoint(g, x)`` holds (the adjoint of a sum of all of ``x``),
    as one number of that array's dtype: ``a + spread_number(g, x)`` is ``a +
    sum_adjoint(g, x)`` for ``a`` of the shape of ``x``'s entries, without the array. ``g`` is
    a number or a 0-d array; ``x`` an array, or a list of arrays (``np.sum(hs)``: ragged
    entries raise as ``np.sum`` would). Never more than a 0-d array.

    >>> spread_number(1.0, np.ones(3, np.float32))
    np.float32(1.0)
    """
    number = type(g) is float or isinstance(g, (int, np.generic))
    if type(x) is list or type(x) is tuple:
        blank(np.array, x)  # np.sum(hs) makes this array: its errors
        return np.asarray(g)[()] if number else g  # np.broadcast_to(g, shape): g's dtype
    if not number:
        return g  # a 0-d array: spread with its own dtype
    dtype = g.dtype if isinstance(g, np.inexact) else x.dtype if x.dtype.kind == "f" \
        else np.dtype(np.float64)
    if type(x) is np.ndarray:
        return dtype.type(g)
    return array_module(x).full((), g, dtype=dtype)  # x's library (CuPy): a 0-d array


# The gradient goes to the elements equal to the extremum, split evenly among ties.
@adjoint(np.max, np.amax)
def max_adjoint(g, ans, x, axis=None, keepdims=False):
    return _to_extremum(g, ans, x, axis, keepdims)


@adjoint(np.min, np.amin)
def min_adjoint(g, ans, x, axis=None, keepdims=False):
    return _to_extremum(g, ans, x, axis, keepdims)


def _to_extremum(g, ans, x, axis, keepdims):
    """``g`` to the elements of ``x`` equal to the extremum ``ans`` along ``axis``, split evenly
    among ties (:func:`_split`)."""
    shape = x.shape if type(x) is np.ndarray else np.shape(x)
    hits = x == expand_reduced(ans, shape, axis, keepdims)
    if type(hits) is np.ndarray and hits.size >= _PLACED and _trailing(axis, len(shape)):
        placed = _placed(g, hits, ans)
        if placed is not None:
            return placed
    share = expand_reduced(g, shape, axis, keepdims) * hits
    return _split(share, hits, ans, axis)


# From this many elements, and 16 or more per extremum, writing g at the hits costs less than
# the broadcast product g * hits (axis -1 of 64 x 512: ~43 us instead of ~58; of 1024 x 32:
# ~49 instead of ~77; of 8 x 32 x 32 about the same, of 4096 x 10 more: there the product)
_PLACED = 1 << 14


def _trailing(axis, ndim) -> bool:
    """Whether ``axis`` is None or the last axes: the hits of the extrema, one each, then come
    in the order of the extrema (C order)."""
    if axis is None:
        return True
    axes = (axis,) if type(axis) is int else tuple(axis) if type(axis) is tuple else None
    return axes is not None and ndim > 0 and \
        sorted(a % ndim for a in axes) == list(range(ndim - len(axes), ndim))


def _placed(g, hits, ans):
    """``g * hits`` made by writing ``g`` at the hits, one per extremum (no tie, no NaN), with
    ``g`` finite (``inf * False`` is NaN) and of the extrema's shape or one number; None
    otherwise. A scatter of one number per extremum, not a pass of a broadcast product."""
    n = ans.size if type(ans) is np.ndarray or isinstance(ans, np.generic) else np.size(ans)
    if hits.size < 16 * n:
        return None
    if type(g) is np.ndarray:  # (a finite sum: every element finite)
        if g.shape != np.shape(ans) and g.size != 1 or g.dtype.kind != "f" or \
                not math.isfinite(g.sum()):
            return None
    elif not (type(g) is float or isinstance(g, np.floating)) or not math.isfinite(g):
        return None
    if np.count_nonzero(hits) != n or np.count_nonzero(ans != ans):
        return None  # a tie or a NaN
    out = np.zeros(hits.shape, np.result_type(g, hits))
    out.reshape(-1)[np.flatnonzero(hits)] = g.reshape(-1) if type(g) is np.ndarray else g
    return out


def _split(share, hits, ans, axis):
    """``share`` divided by how many elements hit the extremum ``ans`` along ``axis``.

    For two tied elements that is what central differences give (the mean of the one-sided
    slopes); for three or more it is one subgradient among many, which central differences of
    a single element need not match (only the sum over the tied elements is g)."""
    if type(hits) is np.ndarray:
        # Each extremum not NaN is hit at least once, so as many hits as extrema means one
        # each: no ties, nothing to divide (~3 us instead of ~10 for a 128 x 10 array).
        if np.count_nonzero(hits) == np.size(ans) and not np.count_nonzero(ans != ans):
            return share
        # the method: np.sum's dispatch costs more than a small sum
        return share / hits.sum(axis=axis, keepdims=True, dtype=share.dtype)
    return share / np.sum(hits, axis=axis, keepdims=True, dtype=share.dtype)


# d prod / d x_i is the product of the others: zero when another element is zero,
# so the zeros are counted and left out of the product instead of divided by.
@adjoint(np.prod)
def prod_adjoint(g, x, axis=None, keepdims=False):
    is_zero = x == 0
    nonzero = np.where(is_zero, 1.0, x)
    others = np.prod(nonzero, axis=axis, keepdims=True) / nonzero
    others_have_zero = np.sum(is_zero, axis=axis, keepdims=True) - is_zero > 0
    return expand_reduced(g, np.shape(x), axis, keepdims) * np.where(others_have_zero, 0.0, others)


@adjoint(np.var)
def var_adjoint(g, ans, x, axis=None, ddof=0, keepdims=False):
    return (2.0 * expand_reduced(g, np.shape(x), axis, keepdims)
            * (x - np.mean(x, axis=axis, keepdims=True)) / (count(x) // count(ans) - ddof))


@adjoint(np.std)
def std_adjoint(g, ans, x, axis=None, ddof=0, keepdims=False):
    return (expand_reduced(g / ans, np.shape(x), axis, keepdims)
            * (x - np.mean(x, axis=axis, keepdims=True)) / (count(x) // count(ans) - ddof))


# ----- shape -----   (options numpy requires get a placeholder default here)


# order='A' (and ravel's 'K') follow the memory layout of the array, which the rule does not
_ORDER = OneOf("C", "F", advice="write order='C' or order='F'")


@adjoint(np.reshape, allowed={"order": _ORDER})
def reshape_adjoint(g, a, shape=None, order="C"):
    return reshape(g, np.shape(a), order=order)


@adjoint(np.ravel, allowed={"order": _ORDER})
def ravel_adjoint(g, a, order="C"):
    return reshape(g, np.shape(a), order=order)


@adjoint(np.squeeze)
def squeeze_adjoint(g, a, axis=None):
    return np.reshape(g, np.shape(a))


@adjoint(np.expand_dims)
def expand_dims_adjoint(g, a, axis=None):
    return np.reshape(g, np.shape(a))


@adjoint(np.transpose)
def transpose_adjoint(g, a, axes=None):
    return np.transpose(g, None if axes is None else inverse_permutation(axes, np.ndim(g)))


@adjoint(np.swapaxes)
def swapaxes_adjoint(g, a, axis1=0, axis2=1):
    return np.swapaxes(g, axis1, axis2)


@adjoint(np.broadcast_to)
def broadcast_to_adjoint(g, array, shape=None):
    return unbroadcast(g, array)


# x.copy(), np.copy(x): the way out of a view or an in-place write; the adjoint passes through.
@adjoint(np.copy)
def copy_adjoint(g, a, order="K"):
    return g


# ``arrays`` is one operand, a sequence: its adjoint is a tuple, one entry per array.
@adjoint(np.concatenate)
def concatenate_adjoint(g, arrays, axis=0):
    if axis is not None and type(g) is np.ndarray:  # pieces of the arrays' shapes already:
        return tuple(split(g, [a.shape[axis] if type(a) is np.ndarray else np.shape(a)[axis]
                               for a in arrays], axis=axis))  # no reshape (~1 µs each)
    sizes = [math.prod(np.shape(a)) if axis is None else np.shape(a)[axis] for a in arrays]
    pieces = split(g, sizes, axis=0 if axis is None else axis)
    return tuple(np.reshape(piece, np.shape(a)) for piece, a in zip(pieces, arrays))


@adjoint(np.stack)
def stack_adjoint(g, arrays, axis=0):
    slices = np.moveaxis(g, axis, 0)  # slices[i] is the adjoint of arrays[i]
    return tuple(slices)


# ----- linear algebra -----


# Two-operand rules are one ``return`` of per-operand functions, so generated code calls
# only the one it needs: ``dw = rt.matmul_adjoint_x2(d_t1, x, w)``.
@adjoint(np.matmul, operator.matmul)
def matmul_adjoint(g, x1, x2):
    return matmul_adjoint_x1(g, x1, x2), matmul_adjoint_x2(g, x1, x2)


def matmul_adjoint_x1(g, x1, x2):
    """The adjoint of ``x1 @ x2`` with respect to ``x1`` (batch axes summed back)."""
    try:
        n1, n2 = x1.ndim, x2.ndim
    except AttributeError:  # a Python number
        n1, n2 = np.ndim(x1), np.ndim(x2)
    if n1 == 2 and n2 == 2:  # (.T: the same view as np.swapaxes, ~1 µs less)
        return g @ x2.T
    if n1 == 2 and n2 == 1:  # matrix @ vector: the outer product of g and x2
        return g[:, None] * x2
    if n1 == 1 and n2 == 2:  # vector @ matrix
        return x2 @ g
    if n1 == 1 and n2 == 1:  # the inner product: g is a number
        return g * x2
    b = np.expand_dims(x2, -1) if np.ndim(x2) == 1 else x2
    g = np.expand_dims(g, -1) if np.ndim(x2) == 1 else g
    g = np.expand_dims(g, -2) if np.ndim(x1) == 1 else g
    da = g @ np.swapaxes(b, -1, -2)
    return unbroadcast(da[..., 0, :] if np.ndim(x1) == 1 else da, x1)


def matmul_adjoint_x2(g, x1, x2):
    """The adjoint of ``x1 @ x2`` with respect to ``x2`` (batch axes summed back)."""
    try:
        n1, n2 = x1.ndim, x2.ndim
    except AttributeError:  # a Python number
        n1, n2 = np.ndim(x1), np.ndim(x2)
    if n1 == 2 and n2 == 2:
        return x1.T @ g
    if n1 == 2 and n2 == 1:  # matrix @ vector
        return g @ x1
    if n1 == 1 and n2 == 2:  # vector @ matrix: the outer product of x1 and g
        return x1[:, None] * g
    if n1 == 1 and n2 == 1:  # the inner product: g is a number
        return g * x1
    a = np.expand_dims(x1, -2) if np.ndim(x1) == 1 else x1
    g = np.expand_dims(g, -1) if np.ndim(x2) == 1 else g
    g = np.expand_dims(g, -2) if np.ndim(x1) == 1 else g
    db = np.swapaxes(a, -1, -2) @ g
    return unbroadcast(db[..., 0] if np.ndim(x2) == 1 else db, x2)


# A loop's accumulations dW = dW + matmul_adjoint_x1(g, W, h), summed after the loop (the
# batch pass): ``terms`` holds one (g, h) pair per iteration; or, with ``rows`` (the rows
# pass: every h was a row of ``rows``, the loop walking them in order), one g per iteration,
# the h's ``rows``'s rows, last first.
def matmul_adjoint_x1_sum(terms, x1, rows=None):
    """The sum of ``matmul_adjoint_x1(g, x1, x2)`` over ``(g, x2)`` in ``terms``: for vectors
    ``g`` and ``x2`` and a matrix ``x1``, one matmul of the stacked terms."""
    return _summed(terms, x1, *_SUM_PARTS[matmul_adjoint_x1_sum](x1), rows)


def matmul_adjoint_x2_sum(terms, x2, rows=None):
    """The sum of ``matmul_adjoint_x2(g, x1, x2)`` over ``(g, x1)`` in ``terms``: for vectors
    ``g`` and ``x1`` and a matrix ``x2``, one matmul of the stacked terms."""
    return _summed(terms, x2, *_SUM_PARTS[matmul_adjoint_x2_sum](x2), rows)


def dot_adjoint_a_sum(terms, a, rows=None):
    """The sum of ``dot_adjoint_a(g, a, b)`` over ``(g, b)`` in ``terms`` (a loop's
    ``np.dot(W, h)``): as ``matmul_adjoint_x1_sum`` where ``np.dot`` is ``@``."""
    return _summed(terms, a, *_SUM_PARTS[dot_adjoint_a_sum](a), rows)


def dot_adjoint_b_sum(terms, b, rows=None):
    """The sum of ``dot_adjoint_b(g, a, b)`` over ``(g, a)`` in ``terms``."""
    return _summed(terms, b, *_SUM_PARTS[dot_adjoint_b_sum](b), rows)


def _left_rows(gs, vs):
    return gs.T @ vs


def _right_rows(gs, vs):
    return vs.T @ gs


# each sum -> (its product of the stacked terms, its rule for one term, given the matrix)
_SUM_PARTS = {
    matmul_adjoint_x1_sum: lambda x1: (_left_rows, lambda g, v: matmul_adjoint_x1(g, x1, v)),
    matmul_adjoint_x2_sum: lambda x2: (_right_rows, lambda g, v: matmul_adjoint_x2(g, v, x2)),
    dot_adjoint_a_sum: lambda a: (_left_rows, lambda g, v: dot_adjoint_a(g, a, v)),
    dot_adjoint_b_sum: lambda b: (_right_rows, lambda g, v: dot_adjoint_b(g, v, b)),
}


def matmul_adjoint_sums(terms, *sums):
    """Several of a loop's sums above that share their adjoints (``dU`` and ``dW`` of ``np.tanh(W
    @ h + U @ x_t)``, both of ``g``): ``terms`` holds one ``(g, v1, v2, ...)`` per iteration,
    ``sums`` one ``(rule, matrix)`` per ``v`` (or ``(rule, matrix, rows)``, whose ``v``'s are
    ``rows``'s rows, last first, and not in the terms: a term is ``g`` alone where every sum
    has its rows); each result is ``rule([(g, vk), ...], matrix)``, the ``g``'s stacked once
    for all (the batch pass writes it, under a pattern)."""
    if not terms:
        return tuple(np.zeros_like(s[1]) for s in sums)
    if all(len(s) == 3 for s in sums):  # every v a row: the terms are the g's alone
        columns = (terms,)
    else:
        columns = tuple(zip(*terms))
    shared, k, out = _joined(terms), 0, []
    for rule, matrix, *rows in sums:
        if rows:
            vs = _Walked(rows[0], len(terms))
        else:
            k += 1
            vs = columns[k]
        out.append(_summed_columns(columns[0], vs, matrix, *_SUM_PARTS[rule](matrix), shared))
    return tuple(out)


def terms_sum(terms, like, axis=None):
    """What a tape loop's ``d = rt.zeros_like(like)`` and, each step, ``d = d +
    rt.unbroadcast(g, like)`` (``axis`` None) or ``d = d + g.sum(axis=axis)`` add up to, for
    the ``g``'s a matmul sum keeps as its ``terms`` (the ``g`` of each term, which the batch
    pass proved is the step's ``g``): a bias's adjoint, ``db``, next to ``dW``'s. Where a
    ``Terms`` holds them as the rows of one array, one reduction of it (an LSTM's ten
    ``dz.sum(axis=0)`` and additions: ~60 -> ~12 µs); otherwise the steps' in their order.
    Zeros of ``like`` for no term, as the loop left them.

    >>> terms_sum([np.ones((2, 3)), np.ones((2, 3))], np.zeros(3))
    array([4., 4., 4.])
    """
    gs = [term[0] if type(term) is tuple else term for term in terms]
    if not gs:
        return zeros_like(like)
    joined = terms.joined() if type(terms) is Terms else None
    if joined is not None:
        if axis is None:
            if np.ndim(like) < gs[0].ndim:  # like spans no more than each g's trailing axes
                total = unbroadcast(joined.reshape(-1, *joined.shape[2:]), like)
            else:
                total = unbroadcast(joined.sum(axis=0), like)
        elif axis == 0 or axis == -gs[0].ndim:
            total = joined.reshape(-1, *joined.shape[2:]).sum(axis=0)
        else:
            total = joined.sum(axis=(0, axis + 1 if axis >= 0 else axis))
    else:
        part = (lambda g: unbroadcast(g, like)) if axis is None else (lambda g: g.sum(axis=axis))
        total = part(gs[0])
        for g in gs[1:]:
            total = add_into(total, part(g))
    if type(total) is np.ndarray and type(like) is np.ndarray and total.shape == like.shape and \
            total.dtype == np.result_type(like.dtype, total.dtype):
        return total
    return zeros_like(like) + total  # as the loop's first addition to its zeros


class _Walked:
    """A loop's array whose rows, last first, are a sum's ``v``'s (the rows pass): stacked
    already, in the loop's order."""

    __slots__ = ("array",)

    def __init__(self, array, n):
        if len(array) != n:  # the rows pass proves it: the loop walked every row
            raise ValueError(f"srcdiff: {n} terms for the {len(array)} rows of a loop's array")
        self.array = array

    def terms(self) -> list:
        return [self.array[i] for i in range(len(self.array) - 1, -1, -1)]




def _summed(terms, matrix, stacked, each, rows=None):
    """The sum over ``(g, v)`` in ``terms`` of ``each(g, v)``, an adjoint with ``matrix``'s
    shape: ``stacked(gs, vs)`` of the terms as the rows of two matrices where they are
    vectors, or a batch of rows each (``h @ W``, see ``_batch_rows``), else one term at a
    time, added in place into the first; zeros of ``matrix``'s shape for no term."""
    if not terms:
        return np.zeros_like(matrix)
    if rows is not None:  # the g's alone, the v's rows's rows (the rows pass)
        return _summed_columns(terms, _Walked(rows, len(terms)), matrix, stacked, each,
                               _joined(terms))
    gs, vs = zip(*terms)
    return _summed_columns(gs, vs, matrix, stacked, each, _joined(terms))


def _joined(terms) -> dict:
    """``_summed_columns``'s ``shared``, with the ``g``'s stacked already where ``terms`` (a
    ``Terms``) holds them as the rows of one array: vectors as ``_rows`` stacks them, a
    batch's rows as ``_batch_rows`` joins them."""
    joined = terms.joined() if type(terms) is Terms else None  # (not a Terms any more: None)
    if joined is None:
        return {}
    if joined.ndim == 2:
        return {"forward": joined}
    if joined.ndim == 3:
        return {"batch": joined.reshape(-1, joined.shape[-1])}
    return {}


_NUMPY = {np.ndarray}  # the set of types of numpy's own arrays alone (no subclass)


def _stacked_vectors(gs, shared):
    """The ``gs`` in the loop's order (the terms', reversed) as the rows of one matrix, where
    they are numpy vectors of one length, else None; stacked once for every sum of the same
    ``gs`` (``shared["forward"]``, which a ``Terms``' joined rows may hold already). For
    numpy's arrays ``np.array`` stacks them in C (``np.stack`` and a per-vector ``.ndim``
    cost ~1 µs a vector), and the result's ``ndim`` says whether their lengths agree."""
    if shared is not None and "forward" in shared:
        return shared["forward"]
    g = None
    if set(map(type, gs)) == _NUMPY and gs[0].ndim == 1:
        try:
            g = np.array(gs[::-1])
        except ValueError:  # vectors of several lengths
            pass
        if g is not None and g.ndim != 2:
            g = None
    if shared is not None:
        shared["forward"] = g
    return g


def _summed_columns(gs, vs, matrix, stacked, each, shared=None):
    """``_summed`` of the terms ``zip(gs, vs)`` (at least one); ``shared``: a dict that keeps
    the ``gs`` stacked for the next sum of the same ``gs``."""
    rows = _rows(matrix, gs, vs, shared)
    if rows is None and stacked is _right_rows:
        rows = _batch_rows(matrix, gs, vs, shared)
    if rows is not None:
        return stacked(*rows)
    vs = vs.terms() if type(vs) is _Walked else vs
    total = each(gs[0], vs[0])
    for g, v in zip(gs[1:], vs[1:]):
        total = add_into(total, each(g, v))  # each() makes a new array: ours to change
    return total


def _rows(matrix, gs, vs, shared=None):
    """``gs`` and ``vs`` as the rows of two matrices where ``matrix`` is 2-D and every term a
    vector; None otherwise. For numpy's arrays ``np.array`` stacks them (in C: ``np.stack``
    and a per-vector ``.ndim`` cost ~1 us per vector), and the result's ``ndim`` says whether
    they were vectors of one length; other libraries get ``np.stack``, which dispatches to
    the vectors' own library. ``vs`` a ``_Walked`` array: its rows as they are, the ``gs``
    stacked in its order (the terms' reversed)."""
    if type(vs) is _Walked:
        v = vs.array
        if not (type(matrix) is np.ndarray and type(v) is np.ndarray and matrix.ndim == 2 and
                v.ndim == 2):
            return None
        g = _stacked_vectors(gs, shared)
        return None if g is None else (g, v)
    if type(matrix) is np.ndarray and set(map(type, gs)) == set(map(type, vs)) == _NUMPY:
        if matrix.ndim != 2 or gs[0].ndim != 1 or vs[0].ndim != 1:  # (np.array would copy a
            return None                                            # step's matrices in vain)
        g = _stacked_vectors(gs, shared)
        try:  # in the loop's order (the terms', reversed): as a _Walked array's rows are
            v = np.array(vs[::-1])
        except ValueError:  # vectors of several lengths, or arrays of several ndims
            return None
        if g is None or v.ndim != 2:
            return None
        return g, v
    if np.ndim(matrix) == 2 and all(np.ndim(a) == 1 for a in (*gs, *vs)):
        return np.stack(gs), np.stack(vs)
    return None


def _batch_rows(matrix, gs, vs, shared=None):
    """For a loop's ``h @ W`` of a batch (each step's ``g`` of shape (B, N) and ``h`` (B, M),
    ``W`` (M, N)): the steps' rows in the loop's order as two matrices (T·B, N) and (T·B, M),
    whose product ``Vᵀ G`` is the sum of the steps' ``hᵀ g`` in one matmul (an LSTM's ten
    steps of (16, 64)ᵀ @ (16, 256): ~420 -> ~210 µs; ``vs`` a ``_Walked`` array of shape
    (T, B, M): its memory as it is, ~160 -> ~100 µs); None where the terms are not such
    numpy arrays of one shape and dtype each. ``shared``: as ``_rows``'s, the ``gs`` joined
    once for every sum of them."""
    if type(matrix) is not np.ndarray or matrix.ndim != 2:
        return None
    first = gs[0]
    if type(first) is not np.ndarray or first.ndim != 2 or any(
            type(g) is not np.ndarray or g.shape != first.shape or g.dtype != first.dtype
            for g in gs):
        return None
    if type(vs) is _Walked:
        v = vs.array
        if type(v) is not np.ndarray or v.ndim != 3 or v.shape[1] != first.shape[0] or \
                not v.flags.c_contiguous:
            return None
        v = v.reshape(-1, v.shape[-1])
    else:
        head = vs[0]
        if type(head) is not np.ndarray or head.ndim != 2 or head.shape[0] != first.shape[0] or \
                any(type(h) is not np.ndarray or h.shape != head.shape or h.dtype != head.dtype
                    for h in vs):
            return None
        v = np.concatenate(vs[::-1])
    g = None if shared is None else shared.get("batch")  # the next sum of the same gs: joined
    if g is None:
        g = np.concatenate(gs[::-1])
        if shared is not None:
            shared["batch"] = g
    return g, v


# Two vectors' product is one number g: its adjoints are g * b and g * a, not a tensordot
# that contracts no axis (cupy.tensordot refuses that for a 0-d g, and a number g outright).
@adjoint(np.dot)
def dot_adjoint(g, a, b):
    return dot_adjoint_a(g, a, b), dot_adjoint_b(g, a, b)


def dot_adjoint_a(g, a, b):
    """The adjoint of ``np.dot(a, b)`` with respect to ``a``."""
    try:
        na, nb = a.ndim, b.ndim
    except AttributeError:  # a Python number
        na, nb = np.ndim(a), np.ndim(b)
    if 0 < na <= 2 and 0 < nb <= 2:  # np.dot is a @ b here: the matmul rule, no tensordot
        return matmul_adjoint_x1(g, a, b)
    if na == 0 or nb == 0:
        return unbroadcast(g * b, a)
    k = max(nb - 2, 0)  # the axis of b summed against the last axis of a
    b_rest = [i for i in range(nb) if i != k]
    return np.tensordot(g, b, axes=(list(range(na - 1, np.ndim(g))), b_rest))


def dot_adjoint_b(g, a, b):
    """The adjoint of ``np.dot(a, b)`` with respect to ``b``."""
    try:
        na, nb = a.ndim, b.ndim
    except AttributeError:  # a Python number
        na, nb = np.ndim(a), np.ndim(b)
    if 0 < na <= 2 and 0 < nb <= 2:  # np.dot is a @ b here: the matmul rule (a fresh array)
        return matmul_adjoint_x2(g, a, b)
    if na == 0 or nb == 0:
        return unbroadcast(g * a, b)
    k = max(nb - 2, 0)
    db = np.tensordot(a, g, axes=(list(range(na - 1)), list(range(na - 1))))
    return np.moveaxis(db, 0, k)


@adjoint(np.inner)
def inner_adjoint(g, a, b):
    return inner_adjoint_a(g, a, b), inner_adjoint_b(g, a, b)


def inner_adjoint_a(g, a, b):
    """The adjoint of ``np.inner(a, b)`` with respect to ``a``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        return unbroadcast(g * b, a)
    if na == 1 and nb == 1:  # the inner product: g is one number
        return g * b
    return np.tensordot(g, b, axes=(list(range(na - 1, np.ndim(g))), list(range(nb - 1))))


def inner_adjoint_b(g, a, b):
    """The adjoint of ``np.inner(a, b)`` with respect to ``b``."""
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:
        return unbroadcast(g * a, b)
    if na == 1 and nb == 1:  # the inner product: g is one number
        return g * a
    return np.tensordot(g, a, axes=(list(range(na - 1)), list(range(na - 1))))


@adjoint(np.outer)
def outer_adjoint(g, a, b):
    return outer_adjoint_a(g, a, b), outer_adjoint_b(g, a, b)


# A scalar operand stays a scalar: np.ravel(2.0) would be a host array, which a GPU ``g``
# cannot be multiplied with.
def outer_adjoint_a(g, a, b):
    """The adjoint of ``np.outer(a, b)`` with respect to ``a``."""
    da = g[:, 0] * b if np.ndim(b) == 0 else g @ np.ravel(b)
    return np.reshape(da, np.shape(a))


def outer_adjoint_b(g, a, b):
    """The adjoint of ``np.outer(a, b)`` with respect to ``b``."""
    db = g[0, :] * a if np.ndim(a) == 0 else np.ravel(a) @ g
    return np.reshape(db, np.shape(b))


@adjoint(np.trace)
def trace_adjoint(g, a, offset=0, axis1=0, axis2=1):
    shape = np.shape(a)
    axis1, axis2 = axis1 % len(shape), axis2 % len(shape)
    diagonal = array_module(a).eye(shape[axis1], shape[axis2], k=offset, dtype=bool)
    if axis1 > axis2:
        diagonal = diagonal.T
    lo, hi = sorted((axis1, axis2))
    diagonal = np.reshape(diagonal, [n if i in (lo, hi) else 1 for i, n in enumerate(shape)])
    if isinstance(g, (float, int, np.generic)):  # one number (grad's seed): it broadcasts as it
        return g * diagonal                       # is (np.expand_dims would make a host array)
    return np.expand_dims(g, (lo, hi)) * diagonal


# ----- indexing -----


# xs.append(value), made functional: the list's adjoint splits into the head and the last.
@adjoint(append)
def append_adjoint(g, xs, value):
    return g[:-1], g[-1]


# out[key] = value, made functional: the overwritten elements get no adjoint from here on.
@adjoint(setitem)
def setitem_adjoint(g, x, value, key=()):
    return setitem(g, key, 0.0), unbroadcast(g[key], value)


# ``key`` is an option, not an operand: it is an index, never differentiated. Generated code
# spells it with ``rt.at[...]``: ``dx = rt.getitem_adjoint(d_t1, x, key=rt.at[1:3, 0])``.
# Integer-array keys may repeat an index, whose adjoints must accumulate: a scatter-add in
# x's own library (np.add.at, cupyx.scatter_add). Other keys (ints, slices, masks) pick
# each element at most once, so a plain assignment does, faster.
@adjoint(operator.getitem)
def getitem_adjoint(g, x, key=()):
    if isinstance(x, (tuple, list, dict)):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(
            f"srcdiff cannot differentiate indexing into a {type(x).__name__} of arrays here; "
            "unpack the values where they are made ('a, b = helper(x)') instead")
    # a complex adjoint of a real x (a complex value srcdiff did not see) stays complex, for
    # the API to refuse, rather than losing its imaginary part in dx[key] = g
    dx = np.zeros_like(x, dtype=getattr(g, "dtype", complex)) if np.iscomplexobj(g) and \
        not np.iscomplexobj(x) else np.zeros_like(x)
    if _has_integer_array(key) or is_dask(dx):  # Dask: only the keys it can assign to
        scatter_add(dx, key, g)
    else:
        dx[key] = g
    return dx


_REAL_NUMBERS = {float, int, np.float64, np.float32, np.float16, np.longdouble}


def add_at(acc, g, x, key=()):
    """``acc + getitem_adjoint(g, x, key)``, computed in place as ``acc[key] += g``: for an
    adjoint ``acc`` that no other name refers to (the ``accumulate`` pass proves that before it
    writes a call), without making a zero array the size of ``x``.

    >>> add_at(np.zeros(3), 2.0, np.ones(3), key=1)
    array([0., 2., 0.])
    """
    if type(acc) is np.ndarray and type(key) is int and type(g) in _REAL_NUMBERS and \
            acc.dtype.kind == "f":  # an element's (a loop's x[i]): the checks below cost ~3 µs
        acc[key] += g
        return acc
    if isinstance(x, (tuple, list, dict)) or np.iscomplexobj(g) and not np.iscomplexobj(acc):
        return acc + getitem_adjoint(g, x, key)  # an error, or a complex sum (as above)
    if _has_integer_array(key) or is_dask(acc):
        scatter_add(acc, key, g)
    else:
        acc[key] += g
    return acc


def slices_adjoint(x, *pieces):
    """The adjoint of ``x`` from the adjoints of several of its slices: for ``pieces``
    ``(g0, key0), (g1, key1), ...``, ``getitem_adjoint(g0, x, key0)`` with each other ``g``
    added at its key (``add_at``). Where the keys are slices of one axis of a numpy ``x``
    (every other axis whole) that tile it, each ``g`` a float array of its slice's exact shape
    and of ``x``'s dtype, that is the ``g``'s joined along the axis in the keys' order: one
    ``np.concatenate``, not a zero array and an addition per slice (an LSTM's four gates).
    The same numbers (an adjoint's -0.0 stays -0.0, where its addition into zeros gave +0.0).

    >>> slices_adjoint(np.zeros((1, 4)), (np.ones((1, 1)), np.s_[:, 3:]), (2 * np.ones((1, 3)), np.s_[:, :3]))
    array([[2., 2., 2., 1.]])
    """
    joined = _tiled(x, pieces)
    if joined is not None:
        return joined
    g, key = pieces[0]
    acc = getitem_adjoint(g, x, key)
    for g, key in pieces[1:]:
        acc = add_at(acc, g, x, key)
    return acc


def slices_joined(x, axis, *pieces, into=None):
    """``slices_adjoint(x, *pieces)`` where the compiler proved (the ``tiles`` stage, under a
    pattern of shapes) that the keys cut ``x``'s axis ``axis`` into adjacent spans covering it,
    in the order given, each ``g`` of its slice's shape: the ``g``'s joined along that axis
    where they are numpy arrays of ``x``'s float dtype (what ``slices_adjoint`` checks when
    it runs, without its tests of the keys), else ``slices_adjoint``'s chain. ``into``: the
    ``rt.Terms`` the result is appended to next, as its ``g``: joined straight into the row
    it gives (``Terms.next_row``), not into a new array that the append copies there.

    >>> slices_joined(np.zeros((1, 4)), 1, (2 * np.ones((1, 3)), np.s_[:, :3]), (np.ones((1, 1)), np.s_[:, 3:]))
    array([[2., 2., 2., 1.]])
    """
    if type(x) is np.ndarray and x.dtype.kind == "f":
        gs = [piece[0] for piece in pieces]
        if _arrays_of(gs, x.dtype):
            row = None if into is None else into.next_row(x.shape, x.dtype)
            return np.concatenate(gs, axis=axis, out=row)
    return slices_adjoint(x, *pieces)


def _arrays_of(gs, dtype) -> bool:
    """Whether every one of ``gs`` is a numpy array of ``dtype`` (a loop, not all() of a
    generator: ~1 µs less, each step of a loop)."""
    for g in gs:
        if type(g) is not np.ndarray or g.dtype != dtype:
            return False
    return True


def split_joined(g, ary, indices_or_sections=None, axis=0, into=None):
    """``split_adjoint(g, ary, indices_or_sections, axis=axis)`` whose result is appended to
    the ``rt.Terms`` ``into`` next, as its ``g`` (the ``tiles`` stage writes it, as it writes
    ``slices_joined(..., into=)``): where the pieces are numpy arrays of one dtype, joined
    straight into the row the terms give for it (``Terms.next_row``)."""
    if type(g[0]) is np.ndarray and _arrays_of(g, g[0].dtype):
        row = into.next_row(np.shape(ary), g[0].dtype)
        if row is not None:
            return np.concatenate(g, axis=axis, out=row)
    return shaping.split_adjoint(g, ary, indices_or_sections, axis=axis)


_WHOLE = slice(None)


def _tiled(x, pieces):
    """``slices_adjoint``'s concatenation where it holds, else None."""
    if type(x) is not np.ndarray or x.dtype.kind != "f":
        return None
    shape, dtype, axis, spans = x.shape, x.dtype, -1, []
    for g, key in pieces:
        if type(key) is not tuple:
            key = (key,)
        if type(g) is not np.ndarray or g.dtype != dtype or len(key) > len(shape):
            return None
        at = -1
        for i, k in enumerate(key):
            if type(k) is not slice:
                return None
            if k != _WHOLE:
                if at >= 0:
                    return None
                at = i
        if at < 0 or axis >= 0 and at != axis:
            return None
        axis = at
        start, stop, step = key[at].indices(shape[at])
        if step != 1 or stop < start:
            return None
        g_shape = g.shape
        if len(g_shape) != len(shape) or g_shape[at] != stop - start:
            return None  # (the other axes: the joined array's shape below)
        spans.append((start, stop, g))
    spans.sort(key=_first)
    end = 0
    for start, stop, _ in spans:
        if start != end:
            return None
        end = stop
    if end != shape[axis]:
        return None
    try:
        joined = np.concatenate([span[2] for span in spans], axis=axis)
    except ValueError:  # another length along another axis (a broadcast adjoint)
        return None
    return joined if joined.shape == shape else None


def _first(span):
    return span[0]


def add_into(acc, g):
    """``acc + g``, computed in place as ``acc += g`` where that is the same array: a float
    numpy ``acc`` of more than ``_SMALL`` elements (below, making a fresh array costs less
    than checking) and a number or an array of its shape and dtype. For an adjoint ``acc``
    that no other name refers to (the ``accumulate`` pass proves that before it writes a
    call); otherwise (a broadcast ``g``, a dtype that would promote ``acc``, another array
    library) ``acc + g``, as written.

    >>> add_into(np.zeros(2), np.ones(2))
    array([1., 1.])
    """
    if type(acc) is np.ndarray and acc.size > _SMALL and acc.dtype.kind in "fc" and \
            acc.flags.writeable and (type(g) is float or type(g) is int or type(g) is np.ndarray
                                     and g.dtype == acc.dtype and g.shape == acc.shape):
        acc += g
        return acc
    return acc + g  # small arrays: a fresh one costs less than the checks (~0.5 us for 3)


def _has_integer_array(key) -> bool:
    for k in key if isinstance(key, tuple) else (key,):
        if isinstance(k, list):
            return True
        dtype = getattr(k, "dtype", None)
        if dtype is not None and dtype.kind in "iu":
            return True
    return False


# grad of sum(x1 @ x2) (or of its mean): the product's adjoint is one number c everywhere,
# so its product with x2's transpose is x2's rows dotted with c's, repeated down x1's rows
# (and x1's with it, x1's columns): one matrix-vector product instead of an array of c's,
# a matmul with it and the forward product (attention's sum(p @ v) at (8, 32, 16): ~20 ->
# ~5 us for p's adjoint, ~7 -> ~5 for v's). The seed stage writes these, under a shape
# pattern (numpy arguments), for a spread seed over a product ``a @ b``.
def matmul_adjoint_x1_spread(c, x1, x2):
    """``matmul_adjoint_x1(g, x1, x2)`` for ``g`` the number ``c`` in every element of
    ``x1 @ x2``."""
    if _stacked_alike(x1, x2):  # g @ x2.T has c·(x2's row sums) in every row: one matvec
        rows = x2 @ np.full(x2.shape[-1], c, _spread_dtype(c, x1, x2))
        out = np.empty(x1.shape, rows.dtype)
        out[...] = rows[..., None, :]
        return out
    return matmul_adjoint_x1(_product_full(c, x1, x2), x1, x2)


def matmul_adjoint_x2_spread(c, x1, x2):
    """``matmul_adjoint_x2(g, x1, x2)`` for ``g`` the number ``c`` in every element of
    ``x1 @ x2``."""
    if _stacked_alike(x1, x2):  # x1.T @ g has c·(x1's column sums) in every column
        columns = np.full(x1.shape[-2], c, _spread_dtype(c, x1, x2)) @ x1
        out = np.empty(x2.shape, columns.dtype)
        out[...] = columns[..., :, None]
        return out
    return matmul_adjoint_x2(_product_full(c, x1, x2), x1, x2)


def _stacked_alike(x1, x2) -> bool:
    """Float numpy matrices (or stacks of them with the same batch axes): the shapes above."""
    return type(x1) is np.ndarray and type(x2) is np.ndarray and x1.ndim >= 2 and \
        x2.ndim >= 2 and x1.shape[:-2] == x2.shape[:-2] and x1.dtype.kind == "f" and \
        x2.dtype.kind == "f"


def _spread_dtype(c, x1, x2):
    """The dtype ``rt.sum_adjoint(c, x1 @ x2)`` gives its array of ``c``'s."""
    if isinstance(c, np.inexact):
        return c.dtype
    product = np.result_type(x1.dtype, x2.dtype)
    return product if product.kind == "f" else np.dtype(np.float64)


def _product_full(c, x1, x2):
    """The array of ``c``'s ``rt.sum_adjoint(c, x1 @ x2)`` makes, without the product."""
    a, b = np.shape(x1), np.shape(x2)
    left = (1,) + a if len(a) == 1 else a
    right = b + (1,) if len(b) == 1 else b
    shape = np.broadcast_shapes(left[:-2], right[:-2]) + (left[-2],) * (len(a) > 1) + \
        (right[-1],) * (len(b) > 1)
    return sum_adjoint(c, np.broadcast_to(np.empty((), np.result_type(x1, x2)), shape)) \
        if type(x1) is np.ndarray and type(x2) is np.ndarray else \
        np.full_like(x1, c, shape=shape, dtype=_spread_dtype(c, x1, x2))


__all__ = [name for name in dir() if name.endswith("_adjoint") or "_adjoint_" in name]

