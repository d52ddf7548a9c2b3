"""Adjoint rules of the functions that move, copy, pick and split elements.

Every one of them puts elements of its input somewhere in its output (``np.flip``,
``np.tile``, ``np.take``, ``np.sort``), so its adjoint sends ``g`` back the same way:
the inverse permutation, a sum over the copies, a scatter-add of the picks. Indices,
counts, shifts, widths and axes are options (no adjoint); an index operand that numpy
places first (``np.choose``'s ``a``) gets ``None``. Functions that return a list of
arrays (``np.split``) take one adjoint per piece, ``None`` meaning zero. Conventions as
in ``rules.py``: rules only call numpy functions that dispatch on their arguments, and
index arrays are made with ``array_module`` (on the device, for a device ``g``).
"""

from __future__ import annotations


import numpy as np

from .backend import array_module, scatter_add, size, split
from .helpers import unbroadcast
from .helpers import float_like as _like
from .options import FLOAT_DTYPE, OneOf
from .registry import adjoint

# ----- moving and flipping -----   (a permutation of the elements: g goes back the other way)


@adjoint(np.moveaxis)
def moveaxis_adjoint(g, a, source=None, destination=None):
    return np.moveaxis(g, destination, source)


@adjoint(np.roll)
def roll_adjoint(g, a, shift=None, axis=None):
    if np.ndim(g) == 0:  # a number rolls onto itself (np.roll would make a host array of it)
        return g
    back = -shift if np.ndim(shift) == 0 else tuple(-s for s in shift)
    return np.roll(g, back, axis=axis)


@adjoint(np.flip)
def flip_adjoint(g, m, axis=None):
    return np.flip(g, axis=axis)


@adjoint(np.fliplr)
def fliplr_adjoint(g, m):
    return np.fliplr(g)


@adjoint(np.flipud)
def flipud_adjoint(g, m):
    return np.flipud(g)


@adjoint(np.rot90)
def rot90_adjoint(g, m, k=1, axes=(0, 1)):
    return np.rot90(g, -k, axes=axes)


# One array only: with several, np.atleast_1d(a, b) returns a list (refused by arity).
@adjoint(np.atleast_1d)
def atleast_1d_adjoint(g, ary):
    return np.reshape(g, np.shape(ary))


@adjoint(np.atleast_2d)
def atleast_2d_adjoint(g, ary):
    return np.reshape(g, np.shape(ary))


@adjoint(np.atleast_3d)
def atleast_3d_adjoint(g, ary):
    return np.reshape(g, np.shape(ary))


# ----- stacking -----   (``tup`` is one operand, a sequence: a tuple of adjoints, as for
# np.concatenate; each array is first given ``ndmin`` axes, a lower one has one slice)


@adjoint(np.hstack, allowed={"dtype": FLOAT_DTYPE})
def hstack_adjoint(g, tup, dtype=None, casting="same_kind"):
    if np.ndim(tup[0]) <= 1:  # vectors (and numbers) end to end
        return _unstack(g, tup, 0, 1)
    return _unstack(g, tup, 1, 2)


@adjoint(np.vstack, allowed={"dtype": FLOAT_DTYPE})
def vstack_adjoint(g, tup, dtype=None, casting="same_kind"):
    return _unstack(g, tup, 0, 2)


@adjoint(np.dstack)
def dstack_adjoint(g, tup):
    return _unstack(g, tup, 2, 3)


@adjoint(np.column_stack)
def column_stack_adjoint(g, tup):
    return _unstack(g, tup, 1, 2)


def _unstack(g, arrays, axis, ndmin):
    """``g`` cut along ``axis`` into one piece per array, each in its array's shape and
    dtype; an array of fewer than ``ndmin`` axes took one slice."""
    sizes = [np.shape(a)[axis] if np.ndim(a) >= ndmin else 1 for a in arrays]
    pieces = split(g, sizes, axis=axis)
    return tuple(_like(np.reshape(piece, np.shape(a)), a) for piece, a in zip(pieces, arrays))


# ----- splitting -----   (g holds one adjoint per piece, None for a piece not used)


@adjoint(np.split, sequence=True)
def split_adjoint(g, ary, indices_or_sections=None, axis=0):
    if any(d is None for d in g):
        return _join(g, np.split(ary, indices_or_sections, axis=axis), axis)
    return np.concatenate(g, axis=axis)


@adjoint(np.array_split, sequence=True)
def array_split_adjoint(g, ary, indices_or_sections=None, axis=0):
    if any(d is None for d in g):
        return _join(g, np.array_split(ary, indices_or_sections, axis=axis), axis)
    return np.concatenate(g, axis=axis)


@adjoint(np.hsplit, sequence=True)
def hsplit_adjoint(g, ary, indices_or_sections=None):
    if any(d is None for d in g):
        return _join(g, np.hsplit(ary, indices_or_sections), 1 if np.ndim(ary) > 1 else 0)
    return np.concatenate(g, axis=1 if np.ndim(ary) > 1 else 0)


@adjoint(np.vsplit, sequence=True)
def vsplit_adjoint(g, ary, indices_or_sections=None):
    if any(d is None for d in g):
        return _join(g, np.vsplit(ary, indices_or_sections), 0)
    return np.concatenate(g, axis=0)


@adjoint(np.dsplit, sequence=True)
def dsplit_adjoint(g, ary, indices_or_sections=None):
    if any(d is None for d in g):
        return _join(g, np.dsplit(ary, indices_or_sections), 2)
    return np.concatenate(g, axis=2)


def _join(g, pieces, axis):
    """The pieces' adjoints end to end along ``axis``, zeros (the shape of the piece of the
    primal, a view) for ``None`` (the split is made again only for such a piece's shape;
    with every piece's adjoint at hand, they are joined as they are)."""
    return np.concatenate([np.zeros_like(p) if d is None else d for p, d in zip(pieces, g)],
                          axis=axis)


# ----- copies -----   (every copy of an element adds its adjoint to it)


@adjoint(np.tile)
def tile_adjoint(g, A, reps=None):
    shape = np.shape(A)
    reps = tuple(reps) if np.ndim(reps) else (reps,)
    n = max(len(shape), len(reps))
    shape, reps = (1,) * (n - len(shape)) + shape, (1,) * (n - len(reps)) + reps
    if n == 0:
        return g
    # out[r * s + i] = A[i] along each axis: g as (r0, s0, r1, s1, ...), summed over the r's
    pairs = np.reshape(g, [k for pair in zip(reps, shape) for k in pair])
    return np.reshape(np.sum(pairs, axis=tuple(range(0, 2 * n, 2))), np.shape(A))


@adjoint(np.repeat)
def repeat_adjoint(g, a, repeats=None, axis=None):
    shape = np.shape(a)
    flat = axis is None or not shape  # a 0-d array takes any axis, as a flattened one
    axis = 0 if flat else axis % len(shape)
    along = (size(a),) if flat else shape
    if np.ndim(repeats) == 0 or np.size(repeats) == 1:  # each element r times in a row
        r = int(np.reshape(repeats, -1)[0]) if np.ndim(repeats) else int(repeats)
        split = along[:axis] + (along[axis], r) + along[axis + 1:]
        return np.reshape(np.sum(np.reshape(g, split), axis=axis + 1), shape)
    # element i repeats[i] times: which element each slice of g came from, summed per element
    source = np.repeat(np.arange(along[axis]), repeats)  # host indices, as repeats is
    dx = _zeros(a, g, along)
    scatter_add(dx, (slice(None),) * axis + (source,), g)
    return np.reshape(dx, shape)


def _zeros(a, g, shape):
    """Zeros of ``shape`` in the library and dtype of ``a`` (of ``g`` for a number ``a``); of
    a complex dtype where ``g`` is complex and ``a`` is not: a complex adjoint srcdiff did not
    see coming (from a helper run without being differentiated) stays complex, for the API to
    refuse, instead of losing its imaginary part in the scatter (a wrong real gradient)."""
    like = a if hasattr(a, "dtype") else g
    if np.iscomplexobj(g) and not np.iscomplexobj(like):
        return np.zeros_like(like, shape=shape, dtype=np.result_type(like, g))
    return np.zeros_like(like, shape=shape)


# ----- picking elements -----   (picked elements get their adjoint back, repeats adding up)


@adjoint(np.take)
def take_adjoint(g, a, indices=None, axis=None, mode="raise"):
    shape = np.shape(a)
    if axis is None or not shape:  # a flattened a (a 0-d one takes any axis)
        dx = _zeros(a, g, (size(a),))
        scatter_add(dx, _in_range(indices, dx.shape[0], mode), g)
        return np.reshape(dx, shape)
    axis %= len(shape)
    dx = _zeros(a, g, shape)
    scatter_add(dx, (slice(None),) * axis + (_in_range(indices, shape[axis], mode),), g)
    return dx


@adjoint(np.lib.stride_tricks.sliding_window_view)
def sliding_window_view_adjoint(g, x, window_shape=None, axis=None, subok=False,
                                writeable=False):
    # each window's element k along an axis is x's element at the window's start plus k:
    # one slice of g per offset in the window, added back where it was read (windows overlap)
    window = tuple(int(w) for w in np.atleast_1d(window_shape))
    shape = np.shape(x)
    axes = tuple(range(len(shape))) if axis is None else \
        tuple(int(a) % len(shape) for a in np.atleast_1d(axis))
    if len(set(axes)) != len(axes):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError("srcdiff differentiates sliding_window_view with one window per "
                           f"axis, and axis={axis} names one twice; take the windows in two "
                           "steps.")
    dx = _zeros(x, g, shape)
    starts = np.shape(g)[:len(shape)]  # how many windows along each axis
    for offsets in np.ndindex(*window):
        key = [slice(None)] * len(shape)
        for a, k in zip(axes, offsets):
            key[a] = slice(k, k + starts[a])
        dx[tuple(key)] += g[(Ellipsis, *offsets)]
    return dx


def added_at(a, indices, b):
    """A copy of ``a`` after ``np.add.at(a, indices, b)``: ``b`` added at ``indices``, repeats
    accumulating. The normalize stage writes ``np.add.at(z, i, v)`` on a local array as
    ``z = rt.added_at(z, i, v)``, a new version of ``z`` (as ``z[i] = v`` is
    ``rt.setitem``).

    >>> added_at(np.zeros(3), [0, 2, 0], 1.0)
    array([2., 0., 1.])
    """
    out = a.copy()
    scatter_add(out, indices, b)
    return out


@adjoint(added_at)
def added_at_adjoint(g, a, b, indices=None):
    # z = a, then z[i_k] += b_k for each k: a gets g, each b_k what its place got, g[i_k]
    return g, unbroadcast(g[indices], b)


def _bincount(x, weights=None, minlength=0):
    """``np.bincount``'s parameters by name (numpy's own ``x`` is positional only): the
    weights are an operand, absent for a plain count."""


# x, the bins, is an index (an option: a value that needs a gradient there is refused)
@adjoint(np.bincount, signature=_bincount)
def bincount_adjoint(g, weights, x=None, minlength=0):
    # out[j] sums the weights at the entries of x equal to j: each weight gets its bin's
    # adjoint back (np.bincount's weights are read as float64: the adjoint in theirs)
    if weights is None:
        return None
    dweights = g[x]
    dtype = getattr(weights, "dtype", None)
    return dweights if dtype is None or dweights.dtype == dtype else dweights.astype(dtype)


def _in_range(indices, n, mode):
    """``indices`` as ``np.take``/``np.choose`` read them in ``mode`` ('raise', 'wrap',
    'clip'); negative indices count from the end as they do in 'raise' mode."""
    if mode == "wrap":
        return np.remainder(indices, n)
    if mode == "clip":
        return np.clip(indices, 0, n - 1)
    return indices


@adjoint(np.take_along_axis)
def take_along_axis_adjoint(g, arr, indices=None, axis=-1):
    shape = np.shape(arr)
    if axis is None:  # arr flattened
        dx = _zeros(arr, g, (size(arr),))
        scatter_add(dx, indices, g)
        return np.reshape(dx, shape)
    axis %= len(shape)
    # numpy's own fancy index: aranges along the other axes, broadcast against ``indices``
    xp = array_module(arr)
    key = tuple(indices if i == axis else
                xp.reshape(xp.arange(n), (1,) * i + (n,) + (1,) * (len(shape) - i - 1))
                for i, n in enumerate(shape))
    dx = _zeros(arr, g, shape)
    scatter_add(dx, key, g)
    return dx


# choices[i] where a == i: each choice gets g where it was chosen
@adjoint(np.choose)
def choose_adjoint(g, a, choices, mode="raise"):
    index = _in_range(a, len(choices), mode)
    grads = tuple(unbroadcast(np.where(np.equal(index, i), g, 0.0), c)
                  for i, c in enumerate(choices))
    if isinstance(choices, (list, tuple)):
        return None, grads
    return None, np.stack(grads)  # one array of choices, along its first axis


@adjoint(np.diag)
def diag_adjoint(g, v, k=0):
    if np.ndim(v) == 1:  # v made the k-th diagonal of a matrix: read it back
        return np.diagonal(g, k)
    return _diagonal_adjoint(g, v, k, 0, 1)


@adjoint(np.diagonal)
def diagonal_adjoint(g, a, offset=0, axis1=0, axis2=1):
    return _diagonal_adjoint(g, a, offset, axis1, axis2)


def _diagonal_adjoint(g, a, offset, axis1, axis2):
    """Zeros of ``a``'s shape with ``g`` (whose last axis is the diagonal, the others
    ``a``'s other axes) on the ``offset`` diagonal of ``axis1`` and ``axis2``."""
    shape = np.shape(a)
    axis1, axis2 = axis1 % len(shape), axis2 % len(shape)
    rest = tuple(n for i, n in enumerate(shape) if i not in (axis1, axis2))
    dx = _zeros(a, g, rest + (shape[axis1], shape[axis2]))
    rows = array_module(dx).arange(np.shape(g)[-1]) + max(-offset, 0)
    dx[..., rows, rows + offset] = g
    return np.moveaxis(dx, (-2, -1), (axis1, axis2))


# The triangle kept; a vector m (one row, broadcast to a square) sums its rows back.
@adjoint(np.tril)
def tril_adjoint(g, m, k=0):
    return unbroadcast(np.tril(g, k=k), m)


@adjoint(np.triu)
def triu_adjoint(g, m, k=0):
    return unbroadcast(np.triu(g, k=k), m)


# ----- padding -----


# 'constant' pads with constants (``constant_values``, reaching numpy through ``**kwargs``: an
# option the rule does not read, and one the compiler refuses to see depend on a differentiated
# value), 'empty' with whatever memory held; 'edge', 'reflect' (even), 'symmetric' and 'wrap'
# pad with copies of elements, whose adjoints add up. The statistics ('mean', 'maximum', ...)
# and 'linear_ramp' are refused.
@adjoint(np.pad, allowed={"mode": OneOf(
    "constant", "empty", "edge", "reflect", "symmetric", "wrap",
    advice="compute the values to pad with (np.mean(x, axis=0, keepdims=True), ...) and "
           "np.concatenate them with the array")})
def pad_adjoint(g, array, pad_width=None, mode="constant", constant_values=0):
    shape = np.shape(array)
    if not shape:
        return g
    if mode in ("constant", "empty"):
        return g[tuple(slice(before, n - after) for (before, after), n in
                       zip(_pad_pairs(pad_width, len(shape)), np.shape(g)))]
    xp = array_module(g)
    source = np.pad(xp.reshape(xp.arange(size(array)), shape), pad_width, mode=mode)
    dx = _zeros(array, g, (size(array),))  # which element each one of g copies
    scatter_add(dx, source, g)
    return np.reshape(dx, shape)


def _pad_pairs(pad_width, ndim):
    """``np.pad``'s ``pad_width`` (a number, a pair, pairs per axis, a dict by axis) as one
    ``(before, after)`` pair per axis."""
    if isinstance(pad_width, dict):
        pairs = [(0, 0)] * ndim
        for axis, width in pad_width.items():
            pairs[axis] = _pad_pairs(width, 1)[0]
        return pairs
    w = np.round(np.asarray(pad_width)).astype(int)  # host numbers: pad_width is a constant
    if w.ndim < 3 and w.size == 1:
        return [(int(w.ravel()[0]),) * 2] * ndim
    if w.ndim < 3 and w.size == 2 and w.shape != (2, 1):
        return [tuple(int(n) for n in w.ravel())] * ndim
    return [tuple(pair) for pair in np.broadcast_to(w, (ndim, 2)).tolist()]


# ----- sorting -----   (the output is a permutation of a along axis: g goes back through it)


@adjoint(np.sort)
def sort_adjoint(g, a, axis=-1, kind=None, order=None, stable=None):
    if axis is None:  # the sort of a flattened
        return np.reshape(sort_adjoint(g, np.ravel(a)), np.shape(a))
    # a[p] is sorted: g[j] belongs to a[p[j]], so dx = g[inverse of p] (argsort inverts p)
    return np.take_along_axis(g, np.argsort(np.argsort(a, axis=axis), axis=axis), axis=axis)


# np.partition does not place elements as a[np.argpartition(a)] would (on numpy, nor on
# another library): the output is matched to the input by value instead, through the
# sorted order of each (ties are equal values, any match of them is a valid adjoint).
@adjoint(np.partition)
def partition_adjoint(g, ans, a, kth=None, axis=-1, kind="introselect", order=None):
    if axis is None:
        return np.reshape(partition_adjoint(g, ans, np.ravel(a)), np.shape(a))
    by_value = np.take_along_axis(g, np.argsort(ans, axis=axis), axis=axis)
    return np.take_along_axis(by_value, np.argsort(np.argsort(a, axis=axis), axis=axis),
                              axis=axis)


__all__ = [name for name in dir() if name.endswith("_adjoint") and not name.startswith("_")] + \
    ["added_at"]
