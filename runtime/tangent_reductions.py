"""Tangent rules of the reductions, scans and order statistics (forward mode; the kinds and
the table: ``tangents.py``).

``prod max min var std sort cumprod`` and the NaN-skipping ``nansum nanmean nanmax nanmin
nanprod nanvar nanstd nancumsum nancumprod``, ``ptp``, ``average`` (with weights),
``median quantile percentile`` (and their NaN versions: the adjoint's weights for a cotangent
of ones, ties shared evenly) and ``partition``. A NaN element has no tangent.
"""

from __future__ import annotations

import numpy as np

from .helpers import expand_reduced, guard, log_softmax, sigmoid, softmax, squared_norm
from .rules import prod_adjoint
from .statistics import (median_adjoint, nanmedian_adjoint, nanpercentile_adjoint,
                         nanquantile_adjoint, percentile_adjoint, quantile_adjoint)
from .tangents import tangent


# ----- reductions -----


@tangent(log_softmax)  # the softmax stage's z - log(sum(exp(z))) of z = x - max(x)
def log_softmax_axis_tangent(dx, ans, x, axis=-1, shifted=True):
    return dx - np.sum(np.exp(ans) * dx, axis=axis, keepdims=True)


@tangent(sigmoid)  # the sigmoid stage's 1.0 / (1.0 + np.exp(-x))
def sigmoid_tangent(dx, ans, x):
    return dx * ans * (1.0 - ans)


@tangent(squared_norm)  # the norms stage's np.linalg.norm(x) ** 2: the sum of x's squares
def squared_norm_tangent(dx, ans, x):
    return 2.0 * np.sum(x * dx)


@tangent(softmax)  # the canonical stage's e / sum(e) of e = exp(x - max(x)), along one axis
def softmax_axis_tangent(dx, ans, x, axis=-1, shifted=True):
    return ans * (dx - np.sum(ans * dx, axis=axis, keepdims=True))


@tangent(np.prod)
def prod_tangent(dx, ans, x, axis=None, keepdims=False):
    # sum over each group of dx_i times the product of the others: the adjoint of 1, exact
    # where entries are 0
    others = prod_adjoint(np.ones_like(ans), x, axis=axis, keepdims=keepdims)
    return np.sum(others * dx, axis=axis, keepdims=keepdims)


@tangent(np.max, np.amax, np.min, np.amin)
def extremum_tangent(dx, ans, x, axis=None, keepdims=False):
    # the mean of the tangents over the entries that attain the extremum (the adjoint's split)
    # (np.nanmax too: NaN attains nothing; an all-NaN slice gets 0)
    hits = x == expand_reduced(ans, np.shape(x), axis, keepdims)
    return np.sum(np.where(hits, dx, 0.0), axis=axis, keepdims=keepdims) / \
        np.maximum(np.sum(hits, axis=axis, keepdims=keepdims), 1)


@tangent(np.var)
def var_tangent(dx, ans, x, axis=None, ddof=0, keepdims=False):
    centred = x - np.mean(x, axis=axis, keepdims=True)
    dcentred = dx - np.mean(dx, axis=axis, keepdims=True)
    count = np.size(x) / np.size(ans)
    return 2.0 * np.sum(centred * dcentred, axis=axis, keepdims=keepdims) / (count - ddof)


@tangent(np.std)
def std_tangent(dx, ans, x, axis=None, ddof=0, keepdims=False):
    dvar = var_tangent(dx, ans * ans, x, axis=axis, ddof=ddof, keepdims=keepdims)
    return dvar / (2.0 * guard(ans, dvar))  # 0 where the variance does not move (std 0 too)


@tangent(np.sort)
def sort_tangent(dx, ans, x, axis=-1, kind=None, order=None, stable=None):
    if axis is None:
        return np.ravel(dx)[np.argsort(np.ravel(x), kind="stable")]
    return np.take_along_axis(dx, np.argsort(x, axis=axis, kind="stable"), axis=axis)


@tangent(np.cumprod, np.cumulative_prod)
def cumprod_tangent(dx, ans, x, axis=None, dtype=None, include_initial=False):
    # d cumprod_k = sum_{i <= k} dx_i prod_{j <= k, j != i} x_j, without dividing by x
    if include_initial:  # a 1 first, whose tangent is 0
        inner = cumprod_tangent(dx, ans, x, axis=axis)
        along = 0 if axis is None else axis
        first = np.zeros_like(np.take(inner, [0], axis=along))
        return np.concatenate([first, inner], axis=along)
    if axis is None:
        x, dx, axis = np.ravel(x), np.ravel(dx), 0
    xs, ts = np.moveaxis(x, axis, -1), np.moveaxis(dx, axis, -1)
    out = np.zeros_like(xs, dtype=np.result_type(xs, ts, 1.0))
    for i in range(xs.shape[-1]):  # term i: the running product with x_i replaced by dx_i
        replaced = np.concatenate([xs[..., :i], ts[..., i:i + 1], xs[..., i + 1:]], -1)
        out[..., i:] += np.cumprod(replaced, -1)[..., i:]
    return np.moveaxis(out, -1, axis)


# ----- reductions that skip NaN, and ptp -----   (a NaN element has no tangent)


@tangent(np.nansum)
def nansum_tangent(dx, ans, x, axis=None, keepdims=False):
    return np.sum(np.where(x == x, dx, 0.0), axis=axis, keepdims=keepdims)


@tangent(np.nanmean)
def nanmean_tangent(dx, ans, x, axis=None, keepdims=False):
    count = np.sum(x == x, axis=axis, keepdims=keepdims)  # an all-NaN slice gets 0
    return nansum_tangent(dx, ans, x, axis=axis, keepdims=keepdims) / np.maximum(count, 1)


@tangent(np.nanmax, np.nanmin)
def nanextremum_tangent(dx, ans, x, axis=None, keepdims=False):
    return extremum_tangent(dx, ans, x, axis=axis, keepdims=keepdims)


@tangent(np.ptp)
def ptp_tangent(dx, ans, x, axis=None, keepdims=False):
    top = extremum_tangent(dx, np.max(x, axis=axis, keepdims=keepdims), x, axis, keepdims)
    bottom = extremum_tangent(dx, np.min(x, axis=axis, keepdims=keepdims), x, axis, keepdims)
    return top - bottom


@tangent(np.nanprod)
def nanprod_tangent(dx, ans, x, axis=None, keepdims=False):
    valid = x == x  # NaN counts as 1
    return prod_tangent(np.where(valid, dx, 0.0), ans, np.where(valid, x, 1.0), axis=axis,
                        keepdims=keepdims)


@tangent(np.nanvar)
def nanvar_tangent(dx, ans, x, axis=None, ddof=0, keepdims=False):
    valid = x == x
    centred = np.where(valid, x - np.nanmean(x, axis=axis, keepdims=True), 0.0)
    count = np.sum(valid, axis=axis, keepdims=keepdims)
    return 2.0 * np.sum(centred * np.where(valid, dx, 0.0), axis=axis, keepdims=keepdims) / \
        np.maximum(count - ddof, 1)


@tangent(np.nanstd)
def nanstd_tangent(dx, ans, x, axis=None, ddof=0, keepdims=False):
    dvar = nanvar_tangent(dx, ans * ans, x, axis=axis, ddof=ddof, keepdims=keepdims)
    return dvar / (2.0 * ans + (ans == 0))


@tangent(np.nancumsum)
def nancumsum_tangent(dx, ans, x, axis=None):
    return np.cumsum(np.where(x == x, dx, 0.0), axis=axis)


@tangent(np.nancumprod)
def nancumprod_tangent(dx, ans, x, axis=None):
    valid = x == x
    return cumprod_tangent(np.where(valid, dx, 0.0), ans, np.where(valid, x, 1.0), axis=axis)


@tangent(np.average)
def average_tangent(da, dweights, ans, a, weights, axis=None, keepdims=False):
    # sum(w a) / sum(w): (sum(w da) + sum(dw (a - mean))) / sum(w)
    if weights is None:
        return np.mean(da, axis=axis, keepdims=keepdims)
    w = _weights_laid(weights, np.shape(a), axis)
    dw = _weights_laid(dweights, np.shape(a), axis) if np.ndim(dweights) else dweights
    mean = np.sum(a * w, axis=axis, keepdims=True) / np.sum(w, axis=axis, keepdims=True)
    return np.sum(w * da + dw * (a - mean), axis=axis, keepdims=keepdims) / \
        np.sum(w + 0.0 * a, axis=axis, keepdims=keepdims)


def _weights_laid(weights, shape, axis):
    """``weights`` laid along ``axis`` of an array of ``shape`` as np.average lays them (as
    they are where they have its shape, else one per element of the reduced axes)."""
    if np.shape(weights) == shape or axis is None:
        return weights
    axes = np.mod(np.atleast_1d(axis), len(shape))
    kept = np.ones(len(shape), dtype=int)
    kept[axes] = np.asarray(shape)[axes]
    order = tuple(np.argsort(axes).tolist())  # numbers, not a host array
    return np.reshape(np.transpose(weights, order), tuple(kept.tolist()))


# ----- order statistics -----   (the adjoint with a cotangent of ones weighs each element)


def _by_weights(weights, dx, x, axis, keepdims):
    """The tangent of a reduction in which each element of ``x`` reaches one result, with
    ``weights`` (its adjoint for a cotangent of ones) the slope of that result."""
    return np.sum(np.where(x == x, weights * dx, 0.0), axis=axis, keepdims=keepdims)


@tangent(np.median)
def median_tangent(dx, ans, x, axis=None, keepdims=False):
    weights = median_adjoint(np.ones_like(ans), x, axis=axis, keepdims=keepdims)
    return _by_weights(weights, dx, x, axis, keepdims)


@tangent(np.nanmedian)
def nanmedian_tangent(dx, ans, x, axis=None, keepdims=False):
    weights = nanmedian_adjoint(np.ones_like(ans), x, axis=axis, keepdims=keepdims)
    return _by_weights(weights, dx, x, axis, keepdims)


def _quantile_tangent(adjoint_of, dx, ans, x, q, axis, method, keepdims):
    """The tangent of a quantile with the weights of its adjoint (ties share evenly); for an
    array ``q``, one quantile (one leading index of the result) at a time."""
    if np.ndim(q) == 0:
        weights = adjoint_of(np.ones_like(ans), ans, x, q=q, axis=axis, method=method,
                             keepdims=keepdims)
        return _by_weights(weights, dx, x, axis, keepdims)
    q = np.asarray(q)
    out = np.zeros_like(ans, dtype=np.result_type(ans, dx, 1.0))
    for index in np.ndindex(q.shape):
        out[index] = _quantile_tangent(adjoint_of, dx, ans[index], x, q[index], axis, method,
                                       keepdims)
    return out


@tangent(np.quantile)
def quantile_tangent(dx, ans, x, q=None, axis=None, method="linear", keepdims=False):
    return _quantile_tangent(quantile_adjoint, dx, ans, x, q, axis, method, keepdims)


@tangent(np.nanquantile)
def nanquantile_tangent(dx, ans, x, q=None, axis=None, method="linear", keepdims=False):
    return _quantile_tangent(nanquantile_adjoint, dx, ans, x, q, axis, method, keepdims)


@tangent(np.percentile)
def percentile_tangent(dx, ans, x, q=None, axis=None, method="linear", keepdims=False):
    return _quantile_tangent(percentile_adjoint, dx, ans, x, q, axis, method, keepdims)


@tangent(np.nanpercentile)
def nanpercentile_tangent(dx, ans, x, q=None, axis=None, method="linear", keepdims=False):
    return _quantile_tangent(nanpercentile_adjoint, dx, ans, x, q, axis, method, keepdims)


@tangent(np.partition)
def partition_tangent(dx, ans, x, kth=None, axis=-1, kind="introselect", order=None):
    # each result is an element of x: its tangent, found by value (numpy's own partition need
    # not be x[np.argpartition(x)])
    if axis is None:
        x, dx, axis = np.ravel(x), np.ravel(dx), -1
    source = np.take_along_axis(np.argsort(x, axis=axis, kind="stable"),
                                np.argsort(np.argsort(ans, axis=axis, kind="stable"),
                                           axis=axis, kind="stable"), axis=axis)
    return np.take_along_axis(dx, source, axis=axis)


__all__ = sorted(name for name, value in globals().items() if name.endswith("_tangent") and
                 not name.startswith("_") and getattr(value, "__module__", None) == __name__)
