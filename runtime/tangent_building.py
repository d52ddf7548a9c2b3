"""Tangent rules of the primitives that build arrays from their operands, and of the
linear ones with a constant part (forward mode; the kinds and the table: ``tangents.py``).

``compress bincount extract choose select pad diff ediff1d polyint gradient`` (linear in some operands:
a condition, an index or a constant added keeps out of the tangent), ``arange logspace
geomspace polyval vander polyfit interp cov corrcoef``, ``math.fsum prod dist``,
``nextafter`` and ``angle``; the conversions and constructors with a dtype (``astype array
asarray asanyarray ascontiguousarray asfortranarray full full_like linspace hstack vstack``):
linear, once their dtype is checked (a float one, or none).
"""

from __future__ import annotations

import math

import numpy as np

from .tangents import _check_option, _refuse_unless, broadcast_tangent, tangent


# ----- linear, with a dtype checked when the code runs -----


@tangent(np.astype)
def astype_tangent(dx, ans, x, dtype=None, copy=True, device=None):
    _check_option(np.astype, "dtype", dtype)
    return np.astype(dx, dtype)


@tangent(np.array)
def array_tangent(dobject, ans, object, dtype=None, copy=True, order="K", subok=False,
                  ndmin=0, ndmax=0):
    _check_option(np.array, "dtype", dtype)
    if ndmax:  # (numpy 2.3)
        return np.array(dobject, dtype=dtype, order=order, ndmin=ndmin, ndmax=ndmax)
    return np.array(dobject, dtype=dtype, order=order, ndmin=ndmin)


@tangent(np.asarray)
def asarray_tangent(da, ans, a, dtype=None, order=None, copy=None):
    _check_option(np.asarray, "dtype", dtype)
    return np.asarray(da, dtype=dtype, order=order)


@tangent(np.asanyarray)
def asanyarray_tangent(da, ans, a, dtype=None, order=None, device=None, copy=None, like=None):
    _check_option(np.asanyarray, "dtype", dtype)
    return np.asanyarray(da, dtype=dtype, order=order)


@tangent(np.ascontiguousarray)
def ascontiguousarray_tangent(da, ans, a, dtype=None, like=None):
    _check_option(np.ascontiguousarray, "dtype", dtype)
    return np.ascontiguousarray(da, dtype=dtype)


@tangent(np.asfortranarray)
def asfortranarray_tangent(da, ans, a, dtype=None, like=None):
    _check_option(np.asfortranarray, "dtype", dtype)
    return np.asfortranarray(da, dtype=dtype)


@tangent(np.full)
def full_tangent(dfill_value, ans, fill_value, shape=None, dtype=None, order="C"):
    _check_option(np.full, "dtype", dtype)
    return np.full(shape, dfill_value, dtype=dtype, order=order)


@tangent(np.full_like)
def full_like_tangent(da, dfill_value, ans, a, fill_value, dtype=None, order="K", subok=True,
                      shape=None):
    _check_option(np.full_like, "dtype", dtype)
    return np.full_like(ans, dfill_value, dtype=np.result_type(ans, 1.0), order=order)


@tangent(np.linspace)
def linspace_tangent(dstart, dstop, ans, start, stop, num=50, endpoint=True, dtype=None, axis=0):
    _check_option(np.linspace, "dtype", dtype)
    return np.linspace(dstart, dstop, num=num, endpoint=endpoint, dtype=dtype, axis=axis)


@tangent(np.hstack)
def hstack_tangent(dtup, ans, tup, dtype=None, casting="same_kind"):
    _check_option(np.hstack, "dtype", dtype)
    return np.hstack(dtup, dtype=dtype, casting=casting)


@tangent(np.vstack)
def vstack_tangent(dtup, ans, tup, dtype=None, casting="same_kind"):
    _check_option(np.vstack, "dtype", dtype)
    return np.vstack(dtup, dtype=dtype, casting=casting)


# ----- linear, with a constant operand or a constant added -----


@tangent(np.compress)
def compress_tangent(dcondition, da, ans, condition, a, axis=None):
    return np.compress(condition, da, axis=axis)


@tangent(np.bincount)
def bincount_tangent(dweights, ans, weights, x=None, minlength=0):
    if weights is None or dweights is None:  # a count: a constant
        return np.zeros(np.shape(ans))
    return np.bincount(x, dweights, minlength)


@tangent(np.extract)
def extract_tangent(dcondition, darr, ans, condition, arr):
    return np.extract(condition, darr)


@tangent(np.choose)
def choose_tangent(da, dchoices, ans, a, choices, mode="raise"):
    return np.choose(a, dchoices, mode=mode)


@tangent(np.select)
def select_tangent(dcondlist, dchoicelist, ddefault, ans, condlist, choicelist, default=0):
    return np.select(condlist, dchoicelist, ddefault)


@tangent(np.pad)
def pad_tangent(darray, ans, array, pad_width=None, mode="constant", constant_values=0):
    if mode in ("constant", "empty"):  # the padding is constant
        return np.pad(darray, pad_width)
    return np.pad(darray, pad_width, mode=mode)


def _edge_zeros(value, a, axis):
    """Zeros for np.diff's ``prepend`` or ``append`` as numpy lays them along ``axis``."""
    shape = list(np.shape(a))
    if np.ndim(value) == 0:
        shape[axis] = 1
        return np.zeros_like(a, shape=tuple(shape))
    return np.zeros_like(a, shape=np.shape(value))


@tangent(np.diff)
def diff_tangent(da, ans, a, n=1, axis=-1, prepend=None, append=None):
    if prepend is not None:
        da = np.concatenate([_edge_zeros(prepend, da, axis), da], axis=axis)
    if append is not None:
        da = np.concatenate([da, _edge_zeros(append, da, axis)], axis=axis)
    return np.diff(da, n=n, axis=axis)


@tangent(np.ediff1d)
def ediff1d_tangent(dary, ans, ary, to_end=None, to_begin=None):
    end = None if to_end is None else np.zeros_like(dary, shape=(np.size(to_end),))
    begin = None if to_begin is None else np.zeros_like(dary, shape=(np.size(to_begin),))
    return np.ediff1d(dary, to_end=end, to_begin=begin)


@tangent(np.polyint)
def polyint_tangent(dp, ans, p, m=1, k=None):
    return np.polyint(dp, m=m)  # the constants k are constants


@tangent(np.gradient)
def gradient_tangent(df, *rest, axis=None, edge_order=1):
    # rest: the spacings' tangents, ans, f, the spacings. Linear in f; a number h divides
    # gradient(f), so its tangent adds -ans dh / h
    count = (len(rest) - 2) // 2
    if count == 0:
        return np.gradient(df, axis=axis, edge_order=edge_order)
    dh, ans, h = rest[0], rest[count], rest[-1]
    _refuse_unless(count == 1 and (np.ndim(h) == 0 or not np.any(dh != 0)),
                   "srcdiff's forward mode differentiates np.gradient in one spacing that is "
                   "a number, or in constant sample points; use reverse mode (srcdiff.vjp, "
                   "srcdiff.jacrev) for varied sample points")
    out = np.gradient(df, h, axis=axis, edge_order=edge_order)
    if np.ndim(h) > 0:
        return out
    if isinstance(out, (list, tuple)):  # one array per axis
        moved = []
        for i in range(len(out)):
            moved.append(out[i] - ans[i] * (dh / h))
        return moved
    return out - ans * (dh / h)


# ----- made from their operands -----


@tangent(np.arange)
def arange_tangent(dstart, dstop, dstep, ans, start_or_stop, stop=None, step=None):
    # start + i step; stop sets only how many there are; np.arange(n) starts at 0
    steps = np.arange(np.shape(ans)[0], like=ans) * (0.0 if step is None else dstep)
    return steps if stop is None else dstart + steps


@tangent(np.logspace)
def logspace_tangent(dstart, dstop, ans, start, stop, num=50, endpoint=True, base=10.0,
                     dtype=None, axis=0):
    exponents = np.linspace(dstart, dstop, num=num, endpoint=endpoint, axis=axis)
    return ans * np.log(base) * exponents


@tangent(np.geomspace)
def geomspace_tangent(dstart, dstop, ans, start, stop, num=50, endpoint=True, dtype=None,
                      axis=0):
    # evenly spaced logarithms: d log|v| = dv / v
    return ans * np.linspace(dstart / start, dstop / stop, num=num, endpoint=endpoint, axis=axis)


@tangent(np.polyval)
def polyval_tangent(dp, dx, ans, p, x):
    # Horner's steps y = y x + p_i, each with its tangent
    p = np.asarray(p) if isinstance(p, (list, tuple)) else p  # a list display of numbers
    dp = np.asarray(dp) if isinstance(dp, (list, tuple)) else dp
    value, tangent_ = 0.0 * x, 0.0 * dx
    for i in range(np.shape(p)[0]):
        tangent_ = tangent_ * x + value * dx + dp[i]
        value = value * x + p[i]
    return tangent_


@tangent(np.vander)
def vander_tangent(dx, ans, x, N=None, increasing=False):
    count = np.shape(x)[0] if N is None else N
    powers = np.arange(count, like=x) if increasing else np.arange(count, like=x)[::-1]
    lowered = x[:, None] ** np.maximum(powers - 1, 0)
    return np.where(powers == 0, 0.0, powers * lowered) * dx[:, None]


@tangent(np.polyfit)
def polyfit_tangent(dy, ans, y, x=None, deg=None, rcond=None, full=False, w=None, cov=False):
    return np.polyfit(x, dy, deg, rcond=rcond, w=w)  # least squares: linear in y


@tangent(np.interp)
def interp_tangent(dx, dxp, dfp, ans, x, xp, fp, left=None, right=None, period=None):
    # on [xp_i, xp_i+1] (t its fraction): (1 - t) fp_i + t fp_i+1; beyond, fp's end (or the
    # constant left/right); the slope moves with x and the knots xp inside
    xp = np.asarray(xp, dtype=float) if isinstance(xp, (list, tuple)) else xp
    fp = np.asarray(fp, dtype=float) if isinstance(fp, (list, tuple)) else fp
    dxp = np.asarray(dxp, dtype=float) if isinstance(dxp, (list, tuple)) else dxp
    dfp = np.asarray(dfp, dtype=float) if isinstance(dfp, (list, tuple)) else dfp
    i = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, np.shape(xp)[0] - 2)
    width = xp[i + 1] - xp[i]
    t = (x - xp[i]) / width
    inside = (t >= 0) & (t <= 1)
    beyond = inside | (t < 0) & (left is None) | (t > 1) & (right is None)
    t = np.clip(t, 0, 1)
    dvalues = ((1 - t) * dfp[i] + t * dfp[i + 1]) * beyond
    moved = dx - (1 - t) * dxp[i] - t * dxp[i + 1]
    return dvalues + inside * (fp[i + 1] - fp[i]) / width * moved


def _variables(m, y, rowvar):
    """np.cov's variables as rows: ``m`` (and ``y`` below it), at least two-dimensional (with
    rowvar=False, numpy transposes each that has more than one row)."""
    rows = _as_rows(m, rowvar)
    if y is None:
        return rows
    return np.concatenate([rows, _as_rows(y, rowvar)], axis=0)


def _as_rows(x, rowvar):
    x = np.atleast_2d(x)
    return x if rowvar or np.shape(x)[0] == 1 else x.T


def _cov_parts(dm, rest, rowvar, bias, ddof):
    """``(X, dX, N - ddof, ans)`` of np.cov with ``rest`` = ``(ans, m)`` or ``(dy, ans, m, y)``."""
    dy, ans, m, y = (None, rest[0], rest[1], None) if len(rest) == 2 else rest
    x, dx = _variables(m, y, rowvar), _variables(dm, dy if y is not None else None, rowvar)
    if y is not None and np.ndim(dx) != np.ndim(x) or np.shape(dx) != np.shape(x):
        dx = dx + np.zeros_like(x)
    centred = x - np.mean(x, axis=1, keepdims=True)
    dcentred = dx - np.mean(dx, axis=1, keepdims=True)
    fact = np.shape(x)[1] - (ddof if ddof is not None else 0 if bias else 1)
    return centred, dcentred, fact, ans


@tangent(np.cov)
def cov_tangent(dm, *rest, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None,
                dtype=None):
    centred, dcentred, fact, ans = _cov_parts(dm, rest, rowvar, bias, ddof)
    product = dcentred @ centred.T
    return np.reshape(product + product.T, np.shape(ans)) / fact


@tangent(np.corrcoef)
def corrcoef_tangent(dx, *rest, rowvar=True, dtype=None):
    # c_ij / sqrt(c_ii c_jj): dc_ij / s_i s_j - r_ij (dc_ii / 2 c_ii + dc_jj / 2 c_jj)
    centred, dcentred, fact, ans = _cov_parts(dx, rest, rowvar, False, None)
    c = centred @ centred.T
    product = dcentred @ centred.T
    dc = product + product.T
    scale = np.sqrt(np.diagonal(c))
    r = c / scale[:, None] / scale[None, :]
    half = np.diagonal(dc) / (2.0 * np.diagonal(c))
    return np.reshape(dc / scale[:, None] / scale[None, :] - r * (half[:, None] + half[None, :]),
                      np.shape(ans))


# ----- sequences of numbers (math) -----


@tangent(math.fsum)
def fsum_tangent(dseq, ans, seq):
    return math.fsum(dseq)


@tangent(math.prod)
def math_prod_tangent(diterable, ans, iterable, start=1):
    total = 0.0
    for i in range(len(iterable)):  # d x_i times the product of the others
        others = start
        for j in range(len(iterable)):
            others = others * (diterable[i] if j == i else iterable[j])
        total = total + others
    return total


@tangent(math.dist)
def dist_tangent(dp, dq, ans, p, q):
    along = 0.0
    for i in range(len(p)):
        along = along + (p[i] - q[i]) * (dp[i] - dq[i])
    return along / (ans + (ans == 0))


# ----- elementwise, with an operand of slope 0 -----


@tangent(np.nextafter)
def nextafter_tangent(dx1, dx2, ans, x1, x2):
    return broadcast_tangent(dx1 + 0.0 * dx2, ans)


@tangent(np.angle)
def angle_tangent(dz, ans, z, deg=False):
    # Im(conj(z) dz) / |z|^2; a real z: 0 or pi, constant
    slope = np.imag(np.conj(z) * dz) / np.maximum(np.real(z * np.conj(z)), 1e-300)
    return slope * (180.0 / np.pi) if deg else slope


__all__ = sorted(name for name, value in globals().items() if name.endswith("_tangent") and
                 not name.startswith("_") and getattr(value, "__module__", None) == __name__)
