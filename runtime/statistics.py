"""Adjoint rules of numpy's order statistics, signal functions and sample statistics.

``median nanmedian quantile nanquantile percentile nanpercentile convolve correlate interp
cov corrcoef trapezoid ediff1d``.

Conventions as in ``rules.py``; these rules call the numpy functions they differentiate
(``np.quantile``, ``np.correlate``, ``np.searchsorted``), which dispatch on device arrays.

- Order statistics: the result is one element of ``a`` or the linear interpolation of two
  neighbours in sorted order, whose weights are constants given the order. Each chosen value
  sends its weight of ``g`` to the elements equal to it, split evenly among ties (as
  ``np.max`` does; the sum over the tied elements is the slope of moving them together).
  ``q`` is a constant (an option). Refused: ``averaged_inverted_cdf`` (it jumps), and the
  NaN versions' methods that interpolate at a position other than linear's.
- ``np.interp``: the derivative w.r.t. ``x`` is the slope of its segment (0 outside
  ``xp``'s range, where the result is a constant); ``x`` on a knot takes the segment to its
  right. ``fp`` and ``xp`` get the derivatives of the interpolation weights.
- ``np.cov``/``np.corrcoef``: ``fweights``/``aweights`` are refused.
"""

from __future__ import annotations

import numpy as np

from .backend import array_module, scatter_add, size
from .helpers import expand_reduced, unbroadcast
from .options import FLOAT_DTYPE, OneOf
from .elementwise import _like
from .reductions import _count, _to_extremum, diff_adjoint
from .registry import adjoint

def _floats(v, *arrays):
    """``v``, or a list or tuple of numbers (a display in the user's code) as a float array
    where ``arrays`` are."""
    return array_module(*arrays).asarray(v, dtype=float) if isinstance(v, (list, tuple)) else v


# ----- order statistics -----   (q: a constant number or array of them)

# methods whose result is one element of ``a`` (the weight of g goes to it)
_ELEMENT = ("lower", "higher", "nearest", "inverted_cdf", "closest_observation")
# methods interpolating at n q + alpha + q (1 - alpha - beta) - 1 among the n sorted elements
# (Hyndman and Fan's; linear's alpha = beta = 1 puts it at q (n - 1)): method -> (alpha, beta)
_CONTINUOUS = {"interpolated_inverted_cdf": (0.0, 1.0), "hazen": (0.5, 0.5),
               "weibull": (0.0, 0.0), "median_unbiased": (1 / 3, 1 / 3),
               "normal_unbiased": (3 / 8, 3 / 8)}
METHODS = OneOf("linear", "midpoint", *_ELEMENT, *_CONTINUOUS, advice="averaged_inverted_cdf "
                "jumps where n q is a whole number: use another method")
NAN_METHODS = OneOf("linear", "midpoint", *_ELEMENT, advice="the other methods of the NaN "
                    "versions interpolate where the count of each slice says: use "
                    "method='linear' (the default)")


@adjoint(np.quantile, allowed={"method": METHODS})
def quantile_adjoint(g, ans, a, q=None, axis=None, method="linear", keepdims=False):
    return _quantiles(g, ans, a, q, axis, method, keepdims, np.quantile)


@adjoint(np.nanquantile, allowed={"method": NAN_METHODS})
def nanquantile_adjoint(g, ans, a, q=None, axis=None, method="linear", keepdims=False):
    return _quantiles(g, ans, a, q, axis, method, keepdims, np.nanquantile)


# a percentile is the quantile of q / 100
@adjoint(np.percentile, allowed={"method": METHODS})
def percentile_adjoint(g, ans, a, q=None, axis=None, method="linear", keepdims=False):
    return _quantiles(g, ans, a, np.true_divide(q, 100), axis, method, keepdims, np.quantile)


@adjoint(np.nanpercentile, allowed={"method": NAN_METHODS})
def nanpercentile_adjoint(g, ans, a, q=None, axis=None, method="linear", keepdims=False):
    return _quantiles(g, ans, a, np.true_divide(q, 100), axis, method, keepdims,
                      np.nanquantile)


# the median is the quantile 0.5 (of an even count: half of g to each middle element)
@adjoint(np.median)
def median_adjoint(g, a, axis=None, keepdims=False):
    return _quantile(g, None, a, 0.5, axis, "linear", keepdims, np.quantile)


@adjoint(np.nanmedian)
def nanmedian_adjoint(g, a, axis=None, keepdims=False):
    return _quantile(g, None, a, 0.5, axis, "linear", keepdims, np.nanquantile)


def _quantiles(g, ans, a, q, axis, method, keepdims, quantile):
    """The adjoint of ``quantile(a, q, ...)`` for a number ``q`` or an array of them (the
    result's leading axes, one adjoint added up per entry)."""
    a = _floats(a, g)
    if np.ndim(q) == 0:
        return _quantile(g, ans, a, q, axis, method, keepdims, quantile)
    q = np.asarray(q) if isinstance(q, (list, tuple)) else q
    da = 0.0
    for index in np.ndindex(np.shape(q)):
        da = da + _quantile(g[index], ans[index], a, q[index], axis, method, keepdims, quantile)
    return _like(da, a)


def _quantile(g, ans, a, q, axis, method, keepdims, quantile):
    """The adjoint of ``quantile(a, q, ...)`` for a number ``q``: ``ans`` (an element of
    ``a``) or the neighbours in sorted order it interpolates get their weight of ``g``."""
    if method in _ELEMENT:
        return _to_extremum(g, ans, a, axis, keepdims)
    if method in _CONTINUOUS:  # the same position as a linear quantile's
        alpha, beta = _CONTINUOUS[method]
        n = size(a) // max(size(ans), 1)
        position = np.clip(n * q + alpha + q * (1 - alpha - beta) - 1, 0, n - 1)
        q = position / max(n - 1, 1)
    lower = quantile(a, q, axis=axis, keepdims=True, method="lower")
    higher = quantile(a, q, axis=axis, keepdims=True, method="higher")
    if method == "midpoint":
        above = 0.5
    elif quantile is np.quantile:  # q (n - 1) is between the two: above is its fraction
        above = q * (size(a) // max(size(lower), 1) - 1) % 1
    else:  # n: the elements that are not NaN, slice by slice
        above = q * (np.sum(a == a, axis=axis, keepdims=True, dtype=lower.dtype) - 1) % 1
    share = (1 - above) * _evenly(a == lower, axis, a) + above * _evenly(a == higher, axis, a)
    return _like(expand_reduced(g, np.shape(a), axis, keepdims) * share, a)


def _evenly(hits, axis, like):
    """1 split evenly among the elements ``hits`` of each slice along ``axis``."""
    return hits / _count(hits, axis, like)


# ----- signals -----   (1-d operands; a number is one sample)


# convolve(a, v)[k] = sum_i a[i] v[k - i]; a mode keeps a slice of the full result, so g is
# laid where that slice lies in it and correlated with the other operand
@adjoint(np.convolve, allowed={"mode": OneOf("full", "same", "valid")})
def convolve_adjoint(g, a, v, mode="full"):
    a, v = _floats(a, g), _floats(v, g)
    n, m = np.size(a), np.size(v)
    g = _in_full(g, n + m - 1, _start(mode, n, m, (min(n, m) - 1) // 2))
    return (np.reshape(np.correlate(g, np.ravel(v), "valid"), np.shape(a)),
            np.reshape(np.correlate(g, np.ravel(a), "valid"), np.shape(v)))


# correlate(a, v) is convolve(a, v reversed) (but where numpy centres mode "same")
@adjoint(np.correlate, allowed={"mode": OneOf("valid", "same", "full")})
def correlate_adjoint(g, a, v, mode="valid"):
    a, v = _floats(a, g), _floats(v, g)
    n, m = np.size(a), np.size(v)
    g = _in_full(g, n + m - 1, _start(mode, n, m, (min(n, m) - (n >= m)) // 2))
    return (np.reshape(np.correlate(g, np.flip(np.ravel(v)), "valid"), np.shape(a)),
            np.reshape(np.flip(np.correlate(g, np.ravel(a), "valid")), np.shape(v)))


def _start(mode, n, m, same):
    """Where a mode's result starts in the full one."""
    return {"full": 0, "same": same, "valid": min(n, m) - 1}[mode]


def _in_full(g, length, start):
    """``g`` laid at ``start`` in zeros of the full result's ``length``."""
    return np.pad(g, (start, length - start - np.shape(g)[0]))


# On the segment [xp[i], xp[i + 1]] (the first or last one beyond xp's range, t clipped to
# [0, 1] there) interp is fp[i] + (fp[i + 1] - fp[i]) t, t = (x - xp[i]) / (xp[i + 1] - xp[i]).
# left=/right= values (constants) replace fp's ends beyond the range: fp gets nothing there.
@adjoint(np.interp, allowed={"period": OneOf(None, advice="periodic interpolation has no "
                                             "rule: wrap x into one period yourself")})
def interp_adjoint(g, x, xp, fp, left=None, right=None, period=None):
    if np.shape(xp)[0] < 2:
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError("srcdiff differentiates np.interp between two or more sample "
                           "points xp (with one, the result is a constant: fp[0], left or right)")
    xp, fp = _floats(xp, x, xp, fp), _floats(fp, x, xp, fp)
    i = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, np.shape(xp)[0] - 2)
    width, rise = xp[i + 1] - xp[i], fp[i + 1] - fp[i]
    t = (x - xp[i]) / width
    inside = (t >= 0) & (t <= 1)
    beyond = inside | (t < 0) & (left is None) | (t > 1) & (right is None)
    on_fp = g * beyond
    t = np.clip(t, 0, 1)
    dfp = np.zeros_like(fp)
    scatter_add(dfp, i, on_fp * (1 - t))
    scatter_add(dfp, i + 1, on_fp * t)
    dx = g * inside * rise / width
    dxp = np.zeros_like(xp)
    scatter_add(dxp, i, dx * (t - 1))
    scatter_add(dxp, i + 1, -dx * t)
    return _like(dx, x), _like(dxp, xp), _like(dfp, fp)




# ----- sample statistics -----

_NO_WEIGHTS = OneOf(None, advice="frequency and analytic weights have no rule: leave them out")


# cov = Xc Xc^T / (N - ddof) of the centred variables Xc (rows: variables, y's rows below m's);
# the centring's adjoint is a projection that Xc is already in: dX = (G + G^T) Xc / (N - ddof)
@adjoint(np.cov, allowed={"fweights": _NO_WEIGHTS, "aweights": _NO_WEIGHTS,
                          "dtype": FLOAT_DTYPE})
def cov_adjoint(g, m, *y, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None,
                dtype=None):
    rows = [_variables(v, rowvar, v is m) for v in (m, *y)]
    x = rows[0] if len(rows) == 1 else np.concatenate(rows, axis=0)
    centred = x - np.mean(x, axis=1, keepdims=True)
    count = np.shape(x)[1] - ((0 if bias else 1) if ddof is None else ddof)
    if np.ndim(g) == 0:  # one variable: the result is a number
        dx = 2 * g * centred / count
    else:
        dx = (g + np.swapaxes(g, 0, 1)) @ centred / count
    ends = np.cumsum([np.shape(r)[0] for r in rows])
    parts = [_from_variables(dx[end - np.shape(r)[0]:end], v, rowvar, v is m)
             for r, v, end in zip(rows, (m, *y), ends)]
    return parts[0] if not y else tuple(parts)


def _variables(v, rowvar, first):
    """``v`` as np.cov reads it: a 2-d array, one variable a row."""
    rows = np.reshape(v, (1, -1)) if np.ndim(v) < 2 else v
    return np.swapaxes(rows, 0, 1) if _transposed(v, rowvar, first) else rows


def _transposed(v, rowvar, first):
    """Whether np.cov reads ``v`` transposed: with rowvar=False ``m`` when it is 2-d, ``y``
    when it has more than one row."""
    return not rowvar and np.ndim(v) == 2 and (first or np.shape(v)[0] != 1)


def _from_variables(d, v, rowvar, first):
    """The adjoint ``d`` of ``_variables(v, rowvar, first)``, in ``v``'s layout and dtype."""
    d = np.swapaxes(d, 0, 1) if _transposed(v, rowvar, first) else d
    return _like(np.reshape(d, np.shape(v)), v)


# R = C / (s s^T), s = sqrt(diag C): dC = G / (s s^T), and each C_kk also gets
# -(sum_j G_kj R_kj + sum_i G_ik R_ik) / (2 C_kk); then through cov. R of one variable is 1.
# (every parameter of np.cov and np.corrcoef after y is an option of the rule, so that none is
# bound as a second array y)
@adjoint(np.corrcoef, allowed={"dtype": FLOAT_DTYPE})
def corrcoef_adjoint(g, ans, x, *y, rowvar=True, dtype=None):
    if np.ndim(ans) == 0:
        zeros = tuple(np.zeros_like(v) for v in (x, *y))
        return zeros[0] if not y else zeros
    c = np.cov(x, *y, rowvar=rowvar)
    variances = np.diagonal(c)
    scale = np.sqrt(variances)
    weighted = g * ans
    dc = g / (scale[:, None] * scale[None, :]) - np.diag(
        (np.sum(weighted, axis=0) + np.sum(weighted, axis=1)) / (2 * variances))
    return cov_adjoint(dc, x, *y, rowvar=rowvar)


# trapezoid = sum_i (x[i + 1] - x[i]) (y[i] + y[i + 1]) / 2 along axis: each y gets half of
# the widths on either side of it, each width the mean of its two y. Axes count from the end,
# where the widths (of an x with more axes than y) and y line up.
@adjoint(np.trapezoid)
def trapezoid_adjoint(g, y, *x, dx=1.0, axis=-1):
    y, x = _floats(y, g), tuple(_floats(v, g) for v in x)
    along = axis % np.ndim(y) - np.ndim(y)
    lower, upper, first = (_along(along, part) for part in (slice(-1), slice(1, None), slice(1)))
    width = _widths(x[0], y, axis) if x else dx
    g = expand_reduced(g, np.broadcast_shapes(np.shape(width), np.shape(y[upper])), axis, False)
    half = g * width / 2 + np.zeros_like(y[upper])  # g times half of each width
    edge = np.zeros_like(half[first])
    dy = unbroadcast(np.concatenate([half, edge], axis=along) +
                     np.concatenate([edge, half], axis=along), y)
    if not x:
        return dy
    dwidth = unbroadcast(g * (y[lower] + y[upper]) / 2, width)
    if np.ndim(x[0]) == 1:
        return dy, diff_adjoint(np.reshape(dwidth, (-1,)), x[0])
    return dy, diff_adjoint(dwidth, x[0], axis=axis)


def _along(axis, part):
    """The index of ``part`` of a negative ``axis``."""
    return (Ellipsis, part) + (slice(None),) * (-1 - axis)


def _widths(x, y, axis):
    """The widths np.trapezoid takes from sample points ``x``: a 1-d ``x`` along y's
    ``axis``."""
    if np.ndim(x) != 1:
        return np.diff(x, axis=axis)
    along = axis % np.ndim(y)
    return np.reshape(np.diff(x), [-1 if i == along else 1 for i in range(np.ndim(y))])


# ediff1d = to_begin, the differences of a flattened, to_end (constants)
@adjoint(np.ediff1d)
def ediff1d_adjoint(g, ary, to_end=None, to_begin=None):
    start = 0 if to_begin is None else size(to_begin)
    inner = g[start:start + size(ary) - 1]
    edge = np.zeros_like(g, shape=(1,))
    return np.reshape(np.concatenate([edge, inner]) - np.concatenate([inner, edge]),
                      np.shape(ary))


__all__ = [name for name, value in list(globals().items())
           if name.endswith("_adjoint") and getattr(value, "__module__", None) == __name__]
