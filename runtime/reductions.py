"""Adjoint rules of the NaN-skipping reductions, ``ptp``, ``average``, the scans and ``diff``.

``nansum nanmean nanmax nanmin nanprod nanvar nanstd ptp average cumsum cumprod nancumsum
nancumprod cumulative_sum cumulative_prod diff``. The order statistics (``median``,
``quantile``, ``percentile`` and their NaN versions) are in ``statistics.py``.

Conventions as in ``rules.py``. ``axis`` is None, an int (negative counts from the end) or
a tuple where numpy takes one; ``keepdims`` as numpy's. A number ``g`` (grad's seed) is
never reshaped: ``expand_reduced`` returns it as it is, and ``np.where(..., g,
np.zeros_like(x))`` spreads it in ``x``'s library and dtype.
"""

from __future__ import annotations

import numpy as np

from .backend import size
from .elementwise import _like
from .helpers import expand_reduced, unbroadcast
from .registry import adjoint
from .rules import prod_adjoint

# ----- NaN-skipping reductions -----   (a NaN element gets no gradient)


@adjoint(np.nansum)
def nansum_adjoint(g, a, axis=None, keepdims=False):
    return np.where(a != a, np.zeros_like(a), expand_reduced(g, np.shape(a), axis, keepdims))


@adjoint(np.nanmean)
def nanmean_adjoint(g, a, axis=None, keepdims=False):
    share = np.where(a != a, np.zeros_like(a), expand_reduced(g, np.shape(a), axis, keepdims))
    return share / _count(a == a, axis, share)


@adjoint(np.nanmax)
def nanmax_adjoint(g, ans, a, axis=None, keepdims=False):
    return _to_extremum(g, ans, a, axis, keepdims)


@adjoint(np.nanmin)
def nanmin_adjoint(g, ans, a, axis=None, keepdims=False):
    return _to_extremum(g, ans, a, axis, keepdims)


def _to_extremum(g, ans, a, axis, keepdims):
    """``g`` to the elements of ``a`` equal to the extremum ``ans``, split evenly among ties
    (NaN equals nothing: an all-NaN slice gets 0)."""
    shape = np.shape(a)
    hits = a == expand_reduced(ans, shape, axis, keepdims)
    share = np.where(hits, expand_reduced(g, shape, axis, keepdims), np.zeros_like(a))
    return share / _count(hits, axis, share)


def _count(mask, axis, like):
    """How many of ``mask`` are true along ``axis`` (kept as size 1), at least 1, in the dtype
    of ``like`` (float32 stays float32)."""
    dtype = getattr(like, "dtype", np.float64)  # a Python float: float64
    return np.maximum(np.sum(mask, axis=axis, keepdims=True, dtype=dtype), 1)


# NaN counts as 1 in the product: the product rule (zeros handled) of the other elements
@adjoint(np.nanprod)
def nanprod_adjoint(g, a, axis=None, keepdims=False):
    missing = a != a
    d = prod_adjoint(g, np.where(missing, np.ones_like(a), a), axis=axis, keepdims=keepdims)
    return np.where(missing, np.zeros_like(d), d)


# over the n elements that are not NaN: d var / d a = 2 (a - mean) / (n - ddof)
@adjoint(np.nanvar)
def nanvar_adjoint(g, a, axis=None, ddof=0, keepdims=False):
    return 2.0 * _centred(g, a, axis, ddof, keepdims)


# nanstd = sqrt(nanvar); where it is 0 every element equals the mean, and the slope is 0
@adjoint(np.nanstd)
def nanstd_adjoint(g, ans, a, axis=None, ddof=0, keepdims=False):
    return _centred(g / (ans + (ans == 0)), a, axis, ddof, keepdims)


def _centred(g, a, axis, ddof, keepdims):
    """``g * (a - mean) / (n - ddof)`` over the elements of ``a`` that are not NaN (0 at a
    NaN), the mean and count ``n`` taken along ``axis``."""
    present = a == a
    n = _count(present, axis, a)
    centred = np.where(present, a - np.nansum(a, axis=axis, keepdims=True) / n,
                       np.zeros_like(a))
    return expand_reduced(g, np.shape(a), axis, keepdims) * centred / (n - ddof)


# ptp = max - min: the max's elements get g, the min's -g (each split among its ties)
@adjoint(np.ptp)
def ptp_adjoint(g, a, axis=None, keepdims=False):
    top = np.max(a, axis=axis, keepdims=keepdims)
    bottom = np.min(a, axis=axis, keepdims=keepdims)
    return _to_extremum(g, top, a, axis, keepdims) - _to_extremum(g, bottom, a, axis, keepdims)


# ----- weighted mean -----   (weights are an option: constants, as numpy's data)


# The weighted mean sum(a * w) / sum(w) along axis: d/da = g * w / sum(w), d/dw = g * (a -
# mean) / sum(w), summed back to the layout numpy takes weights in (a's shape, or one per
# element of the reduced axes). Without weights it is the plain mean.
@adjoint(np.average)
def average_adjoint(g, a, weights, axis=None, keepdims=False):
    shape = np.shape(a)
    g = expand_reduced(g, shape, axis, keepdims)
    if weights is None:  # the mean: g / count everywhere, in a's library and dtype
        return g / max(size(a) // max(size(g), 1), 1) + np.zeros_like(a), None
    w = _weights_along(weights, shape, axis)
    total = np.sum(w, axis=axis, keepdims=True)
    da = _like(unbroadcast(g * w / total, a), a)
    mean = np.sum(a * w, axis=axis, keepdims=True) / total
    dw = _weights_back(unbroadcast(g * (a - mean) / total, w), weights, shape, axis)
    return da, dw


def _weights_along(weights, shape, axis):
    """``weights`` shaped to broadcast against ``a`` as ``np.average`` does: as they are when
    they have ``a``'s shape, else laid along ``axis`` (one entry per element of those axes,
    in ``axis``'s order)."""
    if np.shape(weights) == shape or axis is None:
        return weights
    axes = tuple(ax % len(shape) for ax in ((axis,) if isinstance(axis, int) else axis))
    order = sorted(range(len(axes)), key=axes.__getitem__)
    return np.reshape(np.transpose(weights, order),
                      [n if i in axes else 1 for i, n in enumerate(shape)])


def _weights_back(d, weights, shape, axis):
    """``d`` (laid out as ``_weights_along`` lays ``weights``) in ``weights``' own layout."""
    if np.shape(weights) == shape or axis is None:
        return np.reshape(d, np.shape(weights))
    axes = tuple(ax % len(shape) for ax in ((axis,) if isinstance(axis, int) else axis))
    order = sorted(range(len(axes)), key=axes.__getitem__)
    laid = np.reshape(d, [shape[axes[i]] for i in order])
    return np.transpose(laid, [order.index(i) for i in range(len(axes))])


# ----- scans -----   (axis=None scans the flattened array)


@adjoint(np.cumsum)
def cumsum_adjoint(g, a, axis=None):
    if axis is None:
        return np.reshape(_reverse_cumsum(g, 0), np.shape(a))
    return _reverse_cumsum(g, axis)


@adjoint(np.nancumsum)
def nancumsum_adjoint(g, a, axis=None):
    d = cumsum_adjoint(g, a, axis=axis)
    return np.where(a != a, np.zeros_like(d), d)


def _reverse_cumsum(g, axis):
    """Sums from the end: out[i] = g[i] + g[i + 1] + ... along ``axis``."""
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


# d y_i / d a_j = prod_{k <= i, k != j} a_k for j <= i. Where a slice has no zero up to j,
# that is y_i / a_j; at its first zero z, prod_{k < z} a_k * prod_{z < k <= i} a_k; after it,
# 0 (the product of the others holds the zero). All three without dividing by a zero.
@adjoint(np.cumprod)
def cumprod_adjoint(g, ans, a, axis=None):
    if axis is None:
        return np.reshape(cumprod_adjoint(g, ans, np.ravel(a), axis=0), np.shape(a))
    zero = a == 0
    seen = np.cumsum(zero, axis=axis)
    before, first = seen == 0, zero & (seen == 1)
    ones = np.ones_like(a)
    d_before = _reverse_cumsum(g * ans, axis) / np.where(before, a, ones)
    head = np.cumprod(np.where(before, a, ones), axis=axis)  # prod_{k < z} at z
    tail = np.cumprod(np.where(before | first, ones, a), axis=axis)  # prod_{z < k <= i}
    d_first = head * _reverse_cumsum(g * tail, axis)
    return np.where(before, d_before, np.where(first, d_first, np.zeros_like(d_before)))


# NaN counts as 1: the cumulative product of the array with ones for its NaNs
@adjoint(np.nancumprod)
def nancumprod_adjoint(g, ans, a, axis=None):
    missing = a != a
    d = cumprod_adjoint(g, ans, np.where(missing, np.ones_like(a), a), axis=axis)
    return np.where(missing, np.zeros_like(d), d)


# numpy 2.1's array-API scans: axis may be left out for a 1-d x only; include_initial puts
# the empty sum (0) or product (1) first, which no element moves
if hasattr(np, "cumulative_sum"):
    @adjoint(np.cumulative_sum)
    def cumulative_sum_adjoint(g, x, axis=None, include_initial=False):
        axis = 0 if axis is None else axis
        return _reverse_cumsum(_drop_initial(g, axis, include_initial), axis)

    @adjoint(np.cumulative_prod)
    def cumulative_prod_adjoint(g, ans, x, axis=None, include_initial=False):
        axis = 0 if axis is None else axis
        return cumprod_adjoint(_drop_initial(g, axis, include_initial),
                               _drop_initial(ans, axis, include_initial), x, axis=axis)


def _drop_initial(g, axis, include_initial):
    """``g`` without its first entry along ``axis`` where the scan put an initial value."""
    if not include_initial:
        return g
    return g[(slice(None),) * (axis % np.ndim(g)) + (slice(1, None),)]


# ----- differences -----   (prepend/append are constants; None: not given)


@adjoint(np.diff)
def diff_adjoint(g, a, n=1, axis=-1, prepend=None, append=None):
    if n == 0:
        return g
    axis = axis % np.ndim(a)
    for _ in range(n):  # the adjoint of out[i] = c[i + 1] - c[i]: dc[j] = g[j - 1] - g[j]
        zero = np.zeros_like(g[(slice(None),) * axis + (slice(0, 1),)])
        g = np.concatenate([zero, g], axis=axis) - np.concatenate([g, zero], axis=axis)
    start = 0 if prepend is None else _length(prepend, axis)
    return _like(g[(slice(None),) * axis + (slice(start, start + np.shape(a)[axis]),)], a)


def _length(extra, axis):
    """How many entries ``prepend=`` or ``append=`` adds along ``axis`` (a number: one)."""
    return 1 if np.ndim(extra) == 0 else np.shape(extra)[axis]


__all__ = [name for name, value in list(globals().items())
           if name.endswith("_adjoint") and getattr(value, "__module__", None) == __name__]
