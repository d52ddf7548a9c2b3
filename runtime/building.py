"""Adjoint rules of numpy's array-building, polynomial and conversion functions.

``np.append``, ``np.insert``, ``np.delete``, ``np.block``, ``np.resize``, ``np.compress`` and
``np.extract`` put elements of their operands somewhere in their output: their adjoints run
the same function on *tags* (each element's flat position, made on ``g``'s device) and
scatter-add ``g`` back through them (:func:`_route`), so every spelling of the options
(indices, axes, shapes, masks) is the primitive's own. The polynomial functions are linear
in their coefficients (``np.polyder``, ``np.polymul``) or powers of ``x`` (``np.polyval``,
``np.vander``). Indices, counts, degrees and masks are options or ``None``-adjoint operands.
Conventions as in ``rules.py``.
"""

from __future__ import annotations

import numbers

import numpy as np

from .backend import array_module, scatter_add, size
from .creation import _elements, _positions
from .helpers import unbroadcast
from .helpers import float_like as _like
from .options import FLOAT_DTYPE, OneOf
from .registry import adjoint

# ----- elements put somewhere else -----   (g scatter-added back through tagged elements)


@adjoint(np.append)
def append_adjoint(g, arr, values, axis=None):
    return _route(g, np.append, {"arr": arr, "values": values}, axis=axis)


@adjoint(np.insert)
def insert_adjoint(g, arr, values, obj=None, axis=None):
    return _route(g, np.insert, {"arr": arr, "values": values}, obj=obj, axis=axis)


@adjoint(np.delete)
def delete_adjoint(g, arr, obj=None, axis=None):
    return _route(g, np.delete, {"arr": arr}, obj=obj, axis=axis)


@adjoint(np.resize)
def resize_adjoint(g, a, new_shape=None):
    return _route(g, np.resize, {"a": a}, new_shape=new_shape)


# The condition is numpy's first operand and a constant (a mask): no adjoint.
@adjoint(np.compress)
def compress_adjoint(g, condition, a, axis=None):
    return None, _route(g, np.compress, {"a": a}, condition=condition, axis=axis)


@adjoint(np.extract)
def extract_adjoint(g, condition, arr):
    return None, _route(g, np.extract, {"arr": arr}, condition=condition)


# ``arrays`` is one operand, nested lists of arrays: nested tuples of adjoints.
@adjoint(np.block)
def block_adjoint(g, arrays):
    leaves = _leaves(arrays)
    grads = _route(g, _block_of_leaves, dict(enumerate(leaves)), arrays=arrays)
    return _rebuild(arrays, iter(grads if len(leaves) > 1 else (grads,)), tuple)


def _block_of_leaves(arrays, **leaves):
    """``np.block`` of ``arrays`` with its leaves replaced by ``leaves`` (in order)."""
    return np.block(_rebuild(arrays, iter(leaves.values())))


def _leaves(nested):
    if isinstance(nested, list):
        return [leaf for item in nested for leaf in _leaves(item)]
    return [nested]


def _rebuild(nested, items, kind=list):
    if isinstance(nested, list):
        return kind(_rebuild(item, items, kind) for item in nested)
    return next(items)


def _route(g, build, named, **options):
    """The adjoints of the operands ``named`` (by ``build``'s parameter names) of ``build``, a
    function that copies elements of its operands into its result: ``build`` of each operand's
    tags (the flat positions of its elements, one numbering for all) and ``options``, then
    ``g`` scatter-added by tag. One adjoint per operand, bare for one; each in its operand's
    shape and float dtype."""
    operands = list(named.values())
    xp = array_module(g)
    sizes = [size(x) for x in operands]
    starts = np.cumsum([0] + sizes).tolist()
    tags = [xp.reshape(xp.arange(start, start + size), np.shape(x))
            for start, size, x in zip(starts, sizes, operands)]
    flat = np.zeros_like(g, shape=(starts[-1],))
    scatter_add(flat, build(**dict(zip(map(str, named), tags)), **options), g)
    grads = tuple(_like(xp.reshape(flat[start:start + size], np.shape(x)), x)
                  for start, size, x in zip(starts, sizes, operands))
    return grads[0] if len(grads) == 1 else grads


# ----- moved axes and single elements -----


@adjoint(np.diagflat)
def diagflat_adjoint(g, v, k=0):
    return np.reshape(np.diagonal(g, k), np.shape(v))


@adjoint(np.rollaxis)
def rollaxis_adjoint(g, a, axis=None, start=0):
    n = np.ndim(a)
    axis, start = axis % n, start + n if start < 0 else start
    axes = [i for i in range(n) if i != axis]  # numpy's order of the axes: axis moved before
    axes.insert(start - 1 if axis < start else start, axis)  # the one at start
    return np.transpose(g, np.argsort(axes).tolist())


@adjoint(np.matrix_transpose)
def matrix_transpose_adjoint(g, x):
    return np.swapaxes(g, -1, -2)


@adjoint(np.unstack, sequence=True)
def unstack_adjoint(g, x, axis=0):
    pieces = np.unstack(x, axis=axis)
    return np.stack([np.zeros_like(p) if d is None else d for p, d in zip(pieces, g)], axis=axis)


# ----- conversions -----   (the values pass through: g, in the operand's float dtype)


@adjoint(np.asanyarray, allowed={"dtype": FLOAT_DTYPE})
def asanyarray_adjoint(g, a, dtype=None, order=None, device=None, copy=None, like=None):
    return _cast_back(_elements(g, a), a)


@adjoint(np.ascontiguousarray, allowed={"dtype": FLOAT_DTYPE})
def ascontiguousarray_adjoint(g, a, dtype=None, like=None):
    return _cast_back(_elements(g, a), a)


@adjoint(np.asfortranarray, allowed={"dtype": FLOAT_DTYPE})
def asfortranarray_adjoint(g, a, dtype=None, like=None):
    return _cast_back(_elements(g, a), a)


@adjoint(np.astype, allowed={"dtype": FLOAT_DTYPE})
def astype_adjoint(g, x, dtype=None, copy=True, device=None):
    return _like(g, x) if hasattr(g, "dtype") else g


# A real array is returned as it is; a complex one is not differentiated here.
@adjoint(np.real_if_close)
def real_if_close_adjoint(g, a, tol=100):
    if np.iscomplexobj(a):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError("srcdiff cannot differentiate np.real_if_close of a complex array: "
                           "take np.real(...) of it instead")
    return g


def _cast_back(d, a):
    if isinstance(d, tuple):
        return tuple(_cast_back(di, ai) for di, ai in zip(d, a))
    return _like(d, a) if hasattr(d, "dtype") else d


# ----- evenly spaced on a log scale -----   (sample i: base ** (start + t_i (stop - start)))


def _number(value) -> bool:
    """a number"""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@adjoint(np.logspace, allowed={"dtype": FLOAT_DTYPE, "base": OneOf(_number, advice=(
    "an array base is not differentiated here: write base ** np.linspace(start, stop, num)"))})
def logspace_adjoint(g, ans, start, stop, num=50, endpoint=True, base=10.0, dtype=None,
                     axis=0):
    t = _positions(g, num, axis, num - 1 if endpoint else num)
    dy = g * ans * np.log(base)
    return (_like(unbroadcast(np.sum(dy * (1.0 - t), axis=axis), start), start),
            _like(unbroadcast(np.sum(dy * t, axis=axis), stop), stop))


# sample i: start * (stop / start) ** t_i
@adjoint(np.geomspace, allowed={"dtype": FLOAT_DTYPE})
def geomspace_adjoint(g, ans, start, stop, num=50, endpoint=True, dtype=None, axis=0):
    t = _positions(g, num, axis, num - 1 if endpoint else num)
    return (_like(unbroadcast(np.sum(g * ans * (1.0 - t), axis=axis) / start, start), start),
            _like(unbroadcast(np.sum(g * ans * t, axis=axis) / stop, stop), stop))


# ----- polynomials -----   (coefficients highest power first, as numpy's poly functions)


@adjoint(np.polyval)
def polyval_adjoint(g, p, x):
    n = len(p)
    slope, value = 0.0, 0.0  # Horner's rule for p'(x) beside p(x)
    for i in range(n):
        slope, value = slope * x + value, value * x + p[i]
    dx = _like(unbroadcast(g * slope, x), x)
    if isinstance(p, (list, tuple)):
        return tuple(unbroadcast(g * x ** (n - 1 - i), c) for i, c in enumerate(p)), dx
    # g x ** (n - 1 - i) for coefficient i along the last axis, summed to p's shape there
    xp = array_module(p, x, g)
    powers = xp.arange(n - 1, -1, -1)
    terms = _last(g) * _last(x) ** powers
    return _like(np.moveaxis(unbroadcast(terms, np.moveaxis(p, 0, -1)), -1, 0), p), dx


def _last(v):
    """``v`` with a last axis of one (a number as it is)."""
    return np.expand_dims(v, -1) if np.ndim(v) else v


# x ** p_j in column j: p_j = j (increasing) or N - 1 - j; column j - 1 (or j + 1) is x ** (p_j - 1)
@adjoint(np.vander)
def vander_adjoint(g, ans, x, N=None, increasing=False):
    n = np.shape(ans)[-1]
    powers = array_module(g).arange(1, n, dtype=g.dtype)
    if increasing:
        return _like(np.sum(g[:, 1:] * powers * ans[:, :-1], axis=-1), x)
    return _like(np.sum(g[:, :-1] * powers[::-1] * ans[:, 1:], axis=-1), x)


# numpy pads the shorter coefficients with leading zeros: each gets the end of g
@adjoint(np.polyadd)
def polyadd_adjoint(g, a1, a2):
    return _tail(g, a1), _tail(g, a2)


@adjoint(np.polysub)
def polysub_adjoint(g, a1, a2):
    return _tail(g, a1), -_tail(g, a2)


def _tail(g, a):
    return _like(np.reshape(g[np.shape(g)[0] - max(int(np.size(a)), 1):], np.shape(a)), a)


# the product is np.convolve(a1, a2): each adjoint correlates g with the other operand. numpy
# drops leading zero coefficients of the product: those entries have no adjoint (zeros of g)
@adjoint(np.polymul)
def polymul_adjoint(g, a1, a2):
    n = int(np.size(a1)) + int(np.size(a2)) - 1
    g = np.pad(g, (n - np.shape(g)[0], 0))
    return (_like(np.correlate(g, np.ravel(a2), "valid"), a1),
            _like(np.correlate(g, np.ravel(a1), "valid"), a2))


# coefficient i of p (of n) times (n - 1 - i)(n - 2 - i)...: the last m have no place
@adjoint(np.polyder)
def polyder_adjoint(g, p, m=1):
    n = np.shape(p)[0]
    i = array_module(g).arange(np.shape(g)[0], dtype=g.dtype)
    factor = 1
    for t in range(m):
        factor = factor * (n - 1 - t - i)
    return _like(np.pad(g * factor, (0, n - np.shape(g)[0])), p)


# coefficient i of p (of n) divided by (n - i)(n + 1 - i)...; the m constants come last
@adjoint(np.polyint)
def polyint_adjoint(g, p, m=1, k=None):
    n = np.shape(p)[0]
    i = array_module(g).arange(n, dtype=g.dtype)
    factor = 1.0
    for t in range(m):
        factor = factor / (n + t - i)
    return _like(g[:n] * factor, p)


# least squares through numpy's scaled Vandermonde matrix a = w v / scale (QR: a = q r):
# c = pinv(a) (w y) / scale, so dy = w q r^-T (g / scale). x and w are options (not differentiated)
@adjoint(np.polyfit, allowed={"full": OneOf(False, advice="call np.polyfit for the "
                                                     "coefficients alone"),
                              "cov": OneOf(False, advice="call np.polyfit for the "
                                                    "coefficients alone")})
def polyfit_adjoint(g, y, x=None, deg=None, rcond=None, full=False, w=None, cov=False):
    a = np.vander(x, deg + 1)
    if w is not None:
        a = a * w[:, None]
    scale = np.sqrt(np.sum(a * a, axis=0))
    q, r = np.linalg.qr(a / scale)
    h = (g.T / scale).T
    dy = q @ np.linalg.solve(r.T, h)
    return _like(dy if w is None else (dy.T * w).T, y)


# ----- special functions -----


# I0' = I1: numpy's own Chebyshev series of i0 (Cephes), differentiated term by term
@adjoint(np.i0)
def numpy_i0_adjoint(g, x):  # (scipy.special.i0's rule is i0_adjoint)
    from numpy.lib import _function_base_impl as base

    z = np.abs(x)
    near = z <= 8.0
    y = np.where(near, z / 2.0 - 2.0, 32.0 / np.where(near, 8.0, z) - 2.0)
    c_a, dc_a = _chebyshev(y, base._i0A)
    c_b, dc_b = _chebyshev(y, base._i0B)
    far = np.where(near, 8.0, z)
    slope = np.where(near, np.exp(z) * (c_a + 0.5 * dc_a),
                     np.exp(far) / np.sqrt(far) * (c_b - 32.0 / far ** 2 * dc_b - c_b / (2 * far)))
    return g * np.sign(x) * slope


def _chebyshev(y, coefficients):
    """numpy's ``_chbevl(y, coefficients)`` and its derivative in ``y`` (Clenshaw's sums)."""
    b0, b1, b2 = coefficients[0], 0.0, 0.0
    d0, d1, d2 = 0.0, 0.0, 0.0
    for c in coefficients[1:]:
        b2, b1 = b1, b0
        d2, d1 = d1, d0
        b0 = y * b1 - b2 + c
        d0 = b1 + y * d1 - d2
    return 0.5 * (b0 - b2), 0.5 * (d0 - d2)


# ----- differences -----   (np.gradient along one axis, spacing a number: linear in f)


@adjoint(np.gradient, allowed={"edge_order": OneOf(1, 2)})
def gradient_adjoint(g, ans, f, *varargs, axis=None, edge_order=1):
    n_axes = np.ndim(f) if axis is None else np.size(axis)
    if n_axes != 1 or len(varargs) > 1 or any(np.ndim(h) for h in varargs):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError("srcdiff differentiates np.gradient along one axis with a number "
                           "spacing: call np.gradient(f, h, axis=k) once per axis")
    h = varargs[0] if varargs else 1.0
    axis = 0 if axis is None else int(np.reshape(axis, -1)[0]) if np.ndim(axis) else axis
    c = np.moveaxis(g, axis, 0) / h
    df = np.zeros_like(c)
    df[2:] += 0.5 * c[1:-1]
    df[:-2] -= 0.5 * c[1:-1]
    if edge_order == 1:
        df[1] += c[0]
        df[0] -= c[0]
        df[-1] += c[-1]
        df[-2] -= c[-1]
    else:
        for j, w in enumerate((-1.5, 2.0, -0.5)):
            df[j] += w * c[0]
            df[-1 - j] -= w * c[-1]
    df = _like(np.moveaxis(df, 0, axis), f)
    dh = tuple(-np.sum(g * ans) / h for h in varargs)
    return (df, *dh) if varargs else df


# ----- chosen by conditions -----   (the first true condition's choice, else default)


@adjoint(np.select)
def select_adjoint(g, condlist, choicelist, default):
    taken = False
    grads = []
    for condition, choice in zip(condlist, choicelist):
        grads.append(_picked(g, np.logical_and(condition, np.logical_not(taken)), choice))
        taken = np.logical_or(taken, condition)
    return None, tuple(grads), _picked(g, np.logical_not(taken), default)


def _picked(g, where, x):
    d = unbroadcast(np.where(where, g, 0.0), x)
    return _like(d, x) if hasattr(d, "dtype") else d


__all__ = [name for name in dir() if name.endswith("_adjoint") and not name.startswith("_")]
