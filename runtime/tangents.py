"""The tangent-rule table: how forward mode (``srcdiff.jvp``) carries a tangent through each
primitive, kept beside its adjoint rule (``registry.py``).

Most primitives need no code of their own; their kind says how their tangent is written:

- *elementwise* (every ufunc, ``math`` function and arithmetic operator, ``np.where``,
  ``np.clip``…): the Jacobian is diagonal after broadcasting, so the adjoint rule's formula
  with the operand's tangent in place of ``g`` is the tangent (``dx * np.cos(x)`` for
  ``np.sin(x)``), summed over the operands that have one;
- *linear* (``np.sum``, ``reshape``, indexing, ``concatenate``, the FFTs…): the primitive
  itself, applied to the tangents (``np.sum(dx, axis=0)``), a zero for an operand without one;
- *multilinear* (``@``, ``np.dot``, ``einsum``, ``np.outer``…): one term per operand that has a
  tangent, with that operand replaced by it (``dW @ h + W @ dh``).

The rest have a tangent rule here: ``@tangent(np.prod)`` on
``prod_tangent(dx, ans, x, axis=None, keepdims=False)``, which takes one tangent per operand
(``None`` for an operand without one), the primal output ``ans``, the operands and the
primitive's options, and returns the output's tangent. A rule whose body is one ``return``
and that takes one operand is written inline. A primitive of none of these kinds is refused by
``jvp`` at the user's line.

Tangent rules are written for real values; ``srcdiff.jvp`` refuses complex arguments.
"""

from __future__ import annotations

import builtins
import math
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import helpers
from .helpers import expand_reduced, guard, unbroadcast, zeros_like
from .registry import adjoint
from .rules import prod_adjoint
from .statistics import (median_adjoint, nanmedian_adjoint, nanpercentile_adjoint,
                         nanquantile_adjoint, percentile_adjoint, quantile_adjoint)
from .trees import is_container, tree_map

__all__ = ["TangentRule", "TANGENTS", "tangent", "tangent_kind", "zero_tangent",
           "broadcast_tangent", "broadcast_tangent_adjoint", "guard_adjoint"]


@dataclass(frozen=True)
class TangentRule:
    """One registered tangent: ``fn(*tangents, ans, *operands, **options)``."""

    primitive: object
    fn: Callable
    name: str


TANGENTS: dict[object, TangentRule] = {}


def tangent(*primitives):
    """Register the decorated function as the tangent rule of each of ``primitives``."""

    def register(fn):
        for primitive in primitives:
            TANGENTS[primitive] = TangentRule(primitive, fn, fn.__name__)
        return fn

    return register


# ----- the kinds -----

_ELEMENTWISE_OTHERS = frozenset({
    operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.mod,
    operator.neg, builtins.abs, builtins.float, np.where, np.clip, np.sinc, np.nan_to_num, np.i0,
})
_MATH = frozenset(v for v in vars(math).values() if callable(v)) - {
    math.fsum, math.prod, math.dist}  # of sequences: rules below

LINEAR = frozenset({
    operator.getitem, helpers.setitem, helpers.append,
    np.sum, np.mean, np.reshape, np.ravel, np.squeeze, np.expand_dims, np.transpose,
    np.swapaxes, np.moveaxis, np.broadcast_to, np.copy, np.concatenate, np.stack, np.hstack,
    np.vstack, np.dstack, np.column_stack, np.split, np.array_split, np.hsplit, np.vsplit,
    np.dsplit, np.tile, np.repeat, np.take, np.take_along_axis, np.diag, np.diagonal, np.diagflat,
    np.tril, np.triu, np.trace, np.cumsum, np.cumulative_sum, np.roll, np.flip, np.fliplr,
    np.flipud, np.rot90, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.rollaxis,
    np.matrix_transpose, np.unstack, np.real, np.imag, np.conjugate, np.array, np.asarray,
    np.asanyarray, np.ascontiguousarray, np.asfortranarray, np.astype, np.real_if_close,
    np.append, np.insert, np.delete, np.resize, np.block, np.linspace, np.polyadd, np.polysub,
    np.polyder, np.meshgrid, np.broadcast_arrays, np.full, np.full_like,
    np.fft.fft, np.fft.ifft, np.fft.fftn, np.fft.ifftn, np.fft.fft2, np.fft.ifft2, np.fft.rfft,
    np.fft.irfft, np.fft.rfftn, np.fft.irfftn, np.fft.rfft2, np.fft.irfft2, np.fft.fftshift,
    np.fft.ifftshift,
})
# linear too, but with an operand that is not (a condition, an index: np.compress, np.choose,
# np.select) or a constant added (np.pad's constant_values, np.diff's prepend, np.polyint's k):
# explicit rules below keep the one and drop the other

MULTILINEAR = frozenset({
    operator.matmul, np.matmul, np.dot, np.inner, np.outer, np.vdot, np.tensordot, np.kron,
    np.cross, np.einsum, np.vecdot, np.matvec, np.vecmat, np.polymul, np.convolve, np.correlate,
    np.trapezoid,  # linear in y, and in the sample points x where they are given
})


def tangent_kind(primitive) -> str | TangentRule | None:
    """``"elementwise"``, ``"linear"``, ``"multilinear"``, the primitive's :class:`TangentRule`,
    or None where forward mode has no tangent for it."""
    found = TANGENTS.get(primitive)
    if found is not None:
        return found
    try:
        if primitive in LINEAR:
            return "linear"
        if primitive in MULTILINEAR:
            return "multilinear"
        if primitive in _ELEMENTWISE_OTHERS or primitive in _MATH:
            return "elementwise"
    except TypeError:  # an unhashable primitive has no kind
        return None
    if isinstance(primitive, np.ufunc) and primitive.signature is None and primitive.nout == 1:
        return "elementwise"
    return None


# ----- helpers the generated code calls -----


def _float_zeros(x):
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return 0.0
    float_dtype = dtype if dtype.kind in "fc" else np.result_type(dtype, 1.0)
    return np.zeros_like(x, dtype=float_dtype)


def zero_tangent(x):
    """The tangent of a value that does not depend on the differentiated arguments: zeros of its
    shape in a floating dtype (0.0 for a number), a container of them for a container."""
    if is_container(x):
        return tree_map(_float_zeros, x)
    return _float_zeros(x)


def broadcast_tangent(t, ans):
    """``t`` spread to the shape of the primal result ``ans`` where an operand without a tangent
    broadcast it larger (``x + c`` with a larger constant ``c``: the tangent is ``dx``, spread)."""
    shape = np.shape(ans)
    if np.shape(t) == shape:
        return t
    return np.broadcast_to(t, shape).copy()


# second order (hvp) runs reverse mode over tangent code: these helpers need adjoints


@adjoint(broadcast_tangent)
def broadcast_tangent_adjoint(g, t, ans):
    return unbroadcast(g, t), zeros_like(ans)  # ans gives its shape only (zeros: see guard's)


@adjoint(guard)
def guard_adjoint(g, value, g_):
    # where g_ is exactly 0 the result is the constant 1; g_ itself only selects (a zero adjoint,
    # returned as zeros: in second order g_ is active, and the caller adds to it)
    return np.where(g_ == 0, 0.0, g), zeros_like(g_)


def _refuse_unless(admitted, message):
    """Raise srcdiff's error for what a tangent rule does not differentiate (a function of its
    own: second order reads the rules, and differentiates no ``raise``; srcdiff.errors is
    imported when needed, the runtime does not import the compiler)."""
    if not admitted:
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(message)


# ----- tangent rules of the primitives that are none of the kinds -----


@tangent(np.prod)
def prod_tangent(dx, ans, x, axis=None, keepdims=False):
    # sum over each group of dx_i times the product of the others: the adjoint of 1, exact
    # where entries are 0 (second order through it is not supported: no rule for prod_adjoint)
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
    return dvar / (2.0 * ans)


@tangent(np.linalg.inv)
def inv_tangent(da, ans, a):
    return -(ans @ da @ ans)


@tangent(np.linalg.solve)
def solve_tangent(da, db, ans, a, b):
    # x = a^-1 b: dx = a^-1 (db - da x); b of one dimension is a vector (numpy 2)
    if np.ndim(b) == 1:
        return np.linalg.solve(a, (db[..., None] - da @ ans[..., None]))[..., 0]
    return np.linalg.solve(a, db - da @ ans)


@tangent(np.linalg.det)
def det_tangent(da, ans, a):
    # d det(a) = det(a) tr(a^-1 da)
    return ans * np.trace(np.linalg.solve(a, da), axis1=-2, axis2=-1)


@tangent(np.linalg.slogdet)
def slogdet_tangent(da, ans, a):
    sign, logdet = ans
    return np.zeros_like(logdet), np.trace(np.linalg.solve(a, da), axis1=-2, axis2=-1)


@tangent(np.linalg.cholesky)
def cholesky_tangent(da, ans, a, upper=False):
    # a = L L^T: dL = L Phi(L^-1 da L^-T), Phi the lower triangle with its diagonal halved
    # numpy reads one triangle of a: the lower one, the upper one where upper=True
    lower = np.swapaxes(ans, -1, -2) if upper else ans
    da = _triangle(da, "U" if upper else "L")
    inner = np.linalg.solve(lower, np.swapaxes(np.linalg.solve(lower, da), -1, -2))
    phi = np.tril(inner) - 0.5 * np.eye(inner.shape[-1]) * inner
    dl = lower @ phi
    return np.swapaxes(dl, -1, -2) if upper else dl


@tangent(np.linalg.norm)
def norm_tangent(dx, ans, x, ord=None, axis=None, keepdims=False):
    if ord is None or ord == "fro":  # Euclidean (Frobenius): <x, dx> / |x|, 0 at x = 0
        return np.sum(x * dx, axis=axis, keepdims=keepdims) / (ans + (ans == 0))
    if axis is None and np.ndim(x) == 2 or not isinstance(axis, int) and np.size(axis) == 2:
        return _matrix_norm_tangent(dx, ans, x, ord, (0, 1) if axis is None else axis, keepdims)
    if ord == 0:  # a count: piecewise constant
        return np.zeros_like(ans * 1.0)
    slope = np.sign(x) * dx  # the tangent of |x|
    if ord == np.inf or ord == -np.inf:
        return extremum_tangent(slope, ans, np.abs(x), axis=axis, keepdims=keepdims)
    if ord == 1:
        return np.sum(slope, axis=axis, keepdims=keepdims)
    # (sum |x|^p)^(1/p): |x|_p^(1 - p) sum |x|^(p - 1) d|x|
    return np.sum(np.abs(x) ** (ord - 1) * slope, axis=axis, keepdims=keepdims) * \
        ans ** (1 - ord)


def _matrix_norm_tangent(dx, ans, x, ord, axis, keepdims):
    """The tangent of a matrix norm over the two axes ``axis`` (rows, columns): of the
    extreme singular value or their sum (2, -2, 'nuc'), of the extreme column (1, -1) or row
    (inf, -inf) sum of magnitudes."""
    rows, cols = axis[0] % np.ndim(x), axis[1] % np.ndim(x)
    m = np.moveaxis(x, (rows, cols), (-2, -1))
    dm = np.moveaxis(dx, (rows, cols), (-2, -1))
    if ord in (2, -2, "nuc"):  # ds_i = u_i^T dm v_i
        u, s, vh = np.linalg.svd(m, full_matrices=False)
        ds = np.diagonal(np.swapaxes(u, -1, -2) @ dm @ np.swapaxes(vh, -1, -2), axis1=-2,
                         axis2=-1)
        out = np.sum(ds, axis=-1) if ord == "nuc" else ds[..., 0] if ord == 2 else ds[..., -1]
    else:
        over = -2 if ord in (1, -1) else -1  # 1: the column sums; inf: the row sums
        sums = np.sum(np.abs(m), axis=over)
        dsums = np.sum(np.sign(m) * dm, axis=over)
        best = np.max(sums, axis=-1) if ord in (1, np.inf) else np.min(sums, axis=-1)
        out = extremum_tangent(dsums, best, sums, axis=-1)
    return np.expand_dims(out, tuple(sorted((rows, cols)))) if keepdims else out


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
    out = np.zeros(xs.shape, dtype=np.result_type(xs, ts, 1.0))
    for i in range(xs.shape[-1]):  # term i: the running product with x_i replaced by dx_i
        replaced = np.concatenate([xs[..., :i], ts[..., i:i + 1], xs[..., i + 1:]], -1)
        out[..., i:] += np.cumprod(replaced, -1)[..., i:]
    return np.moveaxis(out, -1, axis)


def _triangle(da, uplo):
    """The symmetric matrix eigh sees of ``da``: it reads one triangle (``uplo``) only."""
    part = np.tril(da, -1) if uplo == "L" else np.triu(da, 1)
    return part + np.swapaxes(part, -1, -2) + np.eye(da.shape[-1]) * da


@tangent(np.linalg.eigh)
def eigh_tangent(da, ans, a, UPLO="L"):
    # dw = diag(V^T da V); dV = V (F o (V^T da V)), F_ij = 1 / (w_j - w_i) off the diagonal
    w, v = ans
    da = _triangle(da, UPLO)
    inner = np.swapaxes(v, -1, -2) @ da @ v
    gaps = w[..., None, :] - w[..., :, None]
    eye = np.eye(w.shape[-1], dtype=bool)
    f = np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, gaps))
    return np.diagonal(inner, axis1=-2, axis2=-1), v @ (f * inner)


@tangent(np.linalg.eigvalsh)
def eigvalsh_tangent(da, ans, a, UPLO="L"):
    w, v = np.linalg.eigh(a, UPLO=UPLO)
    da = _triangle(da, UPLO)
    return np.diagonal(np.swapaxes(v, -1, -2) @ da @ v, axis1=-2, axis2=-1)


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
    return np.reshape(np.transpose(weights, np.argsort(axes)), tuple(kept.tolist()))


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
    out = np.zeros(np.shape(ans), dtype=np.result_type(ans, dx, 1.0))
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


# ----- linear, with a constant operand or a constant added -----


@tangent(np.compress)
def compress_tangent(dcondition, da, ans, condition, a, axis=None):
    return np.compress(condition, da, axis=axis)


@tangent(np.extract)
def extract_tangent(dcondition, darr, ans, condition, arr):
    return np.extract(condition, darr)


@tangent(np.choose)
def choose_tangent(da, dchoices, ans, a, choices, mode="raise"):
    return np.choose(a, dchoices, mode=mode) + np.zeros_like(ans * 1.0)


@tangent(np.select)
def select_tangent(dcondlist, dchoicelist, ddefault, ans, condlist, choicelist, default=0):
    return np.select(condlist, dchoicelist, ddefault) + np.zeros_like(ans * 1.0)


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
        return np.zeros(shape)
    return np.zeros(np.shape(value))


@tangent(np.diff)
def diff_tangent(da, ans, a, n=1, axis=-1, prepend=None, append=None):
    if prepend is not None:
        da = np.concatenate([_edge_zeros(prepend, da, axis), da], axis=axis)
    if append is not None:
        da = np.concatenate([da, _edge_zeros(append, da, axis)], axis=axis)
    return np.diff(da, n=n, axis=axis)


@tangent(np.ediff1d)
def ediff1d_tangent(dary, ans, ary, to_end=None, to_begin=None):
    end = None if to_end is None else np.zeros(np.size(to_end))
    begin = None if to_begin is None else np.zeros(np.size(to_begin))
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
    steps = np.arange(np.shape(ans)[0]) * (0.0 if step is None else dstep)
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
    p, dp = np.asarray(p), np.asarray(dp)
    value, tangent_ = 0.0 * x, 0.0 * dx
    for i in range(np.shape(p)[0]):
        tangent_ = tangent_ * x + value * dx + dp[i]
        value = value * x + p[i]
    return tangent_ + np.zeros_like(ans * 1.0)


@tangent(np.vander)
def vander_tangent(dx, ans, x, N=None, increasing=False):
    count = np.shape(x)[0] if N is None else N
    powers = np.arange(count) if increasing else np.arange(count)[::-1]
    lowered = x[:, None] ** np.maximum(powers - 1, 0)
    return np.where(powers == 0, 0.0, powers * lowered) * dx[:, None]


@tangent(np.polyfit)
def polyfit_tangent(dy, ans, y, x=None, deg=None, rcond=None, full=False, w=None, cov=False):
    return np.polyfit(x, dy, deg, rcond=rcond, w=w)  # least squares: linear in y


@tangent(np.interp)
def interp_tangent(dx, dxp, dfp, ans, x, xp, fp, left=None, right=None, period=None):
    # on [xp_i, xp_i+1] (t its fraction): (1 - t) fp_i + t fp_i+1; beyond, fp's end (or the
    # constant left/right); the slope moves with x and the knots xp inside
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


# ----- linear algebra -----


@tangent(np.linalg.matrix_power)
def matrix_power_tangent(da, ans, a, n=None):
    # a^n = a a ... a: the sum of the products with one factor replaced by its tangent;
    # a negative n: the same of inv(a), whose tangent is -inv(a) da inv(a)
    if n == 0:
        return np.zeros_like(ans * 1.0)
    base, dbase = a, da
    if n < 0:
        base = np.linalg.inv(a)
        dbase = -(base @ da @ base)
    power, dpower = base, dbase
    for _ in range(abs(n) - 1):
        dpower = dpower @ base + power @ dbase
        power = power @ base
    return dpower


@tangent(np.linalg.pinv)
def pinv_tangent(da, ans, a, rcond=None, hermitian=False, rtol=None):
    # of a matrix of constant rank: -P da P + P P^T da^T (I - a P) + (I - P a) da^T P^T P
    if hermitian:
        da = _triangle(da, "L")  # numpy reads the lower triangle
    p, pt, dat = ans, np.swapaxes(ans, -1, -2), np.swapaxes(da, -1, -2)
    left = np.eye(np.shape(a)[-2]) - a @ p
    right = np.eye(np.shape(a)[-1]) - p @ a
    return -(p @ da @ p) + p @ pt @ dat @ left + right @ dat @ pt @ p


def _inverse_gaps(s2):
    """``1 / (s2_j - s2_i)`` off the diagonal, 0 on it (distinct values)."""
    eye = np.eye(np.shape(s2)[-1], dtype=bool)
    return np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, s2[..., None, :] - s2[..., :, None]))


@tangent(np.linalg.svd)
def svd_tangent(da, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    # distinct singular values: ds_i = u_i^T da v_i; u and v by Townsend's formulas
    if not compute_uv:
        return _singular_values_tangent(da, a, hermitian)
    return _svd_factors_tangent(da, ans, a, full_matrices, hermitian)


def _singular_values_tangent(da, a, hermitian):
    if hermitian:  # |eigenvalues| of the lower triangle, largest first
        w, v = np.linalg.eigh(a)
        dw = np.diagonal(np.swapaxes(v, -1, -2) @ _triangle(da, "L") @ v, axis1=-2, axis2=-1)
        order = np.argsort(np.abs(w), axis=-1)[..., ::-1]
        return np.take_along_axis(np.sign(w) * dw, order, axis=-1)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.diagonal(np.swapaxes(u, -1, -2) @ da @ np.swapaxes(vh, -1, -2), axis1=-2,
                       axis2=-1)


def _svd_factors_tangent(da, ans, a, full_matrices, hermitian):
    m, n = np.shape(a)[-2:]
    if hermitian:  # vh = (u * sign(w))^T, in the order of |w|, largest first
        w, v = np.linalg.eigh(a)
        dw, dv = eigh_tangent(da, (w, v), a)
        order = np.argsort(np.abs(w), axis=-1)[..., ::-1]
        ds = np.take_along_axis(np.sign(w) * dw, order, axis=-1)
        signs = np.take_along_axis(np.sign(w), order, axis=-1)
        du = np.take_along_axis(dv, order[..., None, :], axis=-1)
        return du, ds, np.swapaxes(du * signs[..., None, :], -1, -2)
    _refuse_unless(not full_matrices or m == n,
                   "srcdiff's forward mode differentiates u and vh of a non-square matrix's "
                   "np.linalg.svd with full_matrices=False only (the extra columns are not "
                   "unique): write np.linalg.svd(a, full_matrices=False)")
    u, s, vh = ans[0], ans[1], ans[2]
    v = np.swapaxes(vh, -1, -2)
    inner = np.swapaxes(u, -1, -2) @ da @ v
    ds = np.diagonal(inner, axis1=-2, axis2=-1)
    f = _inverse_gaps(s * s)
    s_cols, s_rows = s[..., None, :], s[..., :, None]  # S on the right, S on the left
    inner_t = np.swapaxes(inner, -1, -2)
    du = u @ (f * (inner * s_cols + s_rows * inner_t))
    dv = v @ (f * (s_rows * inner + inner_t * s_cols))
    if m > n:  # the part of da outside u's columns
        du = du + (da - u @ (np.swapaxes(u, -1, -2) @ da)) @ v / s_cols
    if n > m:
        dat = np.swapaxes(da, -1, -2)
        dv = dv + (dat - v @ (vh @ dat)) @ u / s_cols
    return du, ds, np.swapaxes(dv, -1, -2)


def _qr_square_tangent(q, r, da):
    """``(dq, dr)`` of ``a = q r`` with r square (m >= n): q^T dq skew, dr r^-1 upper."""
    x = np.swapaxes(np.linalg.solve(np.swapaxes(r, -1, -2), np.swapaxes(da, -1, -2) @ q), -1, -2)
    lower = np.tril(x, -1)
    omega = lower - np.swapaxes(lower, -1, -2)
    dr = (x - omega) @ r
    dq = np.swapaxes(np.linalg.solve(np.swapaxes(r, -1, -2), np.swapaxes(da, -1, -2)), -1, -2) \
        - q @ (x - omega)
    return dq, dr


@tangent(np.linalg.qr)
def qr_tangent(da, ans, a, mode="reduced"):
    q, r = ans[0], ans[1]
    m, n = np.shape(a)[-2:]
    if m >= n:
        dq, dr = _qr_square_tangent(q, r, da)
        return dq, dr
    # a = q [r1 | r2] with r1 square: the square part, then r2 = q^T a2
    dq, dr1 = _qr_square_tangent(q, r[..., :, :m], da[..., :, :m])
    dr2 = np.swapaxes(q, -1, -2) @ (da[..., :, m:] - dq @ r[..., :, m:])
    return dq, np.concatenate([dr1, dr2], axis=-1)


@tangent(np.linalg.lstsq)
def lstsq_tangent(da, db, ans, a, b, rcond=None):
    # x = pinv(a) b; the residuals |b - a x|^2 per column (a of full column rank, m > n);
    # the rank is a count; the singular values as np.linalg.svd's
    x, residuals = ans[0], ans[1]
    p = np.linalg.pinv(a)
    dx = pinv_tangent(da, p, a) @ b + p @ db
    r = b - a @ x
    dres = 2.0 * np.sum(r * (db - da @ x - a @ dx), axis=0)
    dres = np.reshape(dres, np.shape(residuals)) if np.size(residuals) else np.zeros(0)
    return dx, dres, 0.0, _singular_values_tangent(da, a, False)


__all__ += sorted({rule.name for rule in TANGENTS.values()})  # called as rt.<name>_tangent
