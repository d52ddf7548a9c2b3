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
_MATH = frozenset(v for v in vars(math).values() if callable(v))

LINEAR = frozenset({
    operator.getitem, helpers.setitem, helpers.append,
    np.sum, np.mean, np.reshape, np.ravel, np.squeeze, np.expand_dims, np.transpose,
    np.swapaxes, np.moveaxis, np.broadcast_to, np.copy, np.concatenate, np.stack, np.hstack,
    np.vstack, np.dstack, np.column_stack, np.split, np.array_split, np.hsplit, np.vsplit,
    np.dsplit, np.tile, np.repeat, np.take, np.take_along_axis, np.diag, np.diagonal, np.diagflat,
    np.tril, np.triu, np.trace, np.cumsum, np.cumulative_sum, np.diff, np.ediff1d, np.roll,
    np.flip, np.fliplr, np.flipud, np.rot90, np.atleast_1d, np.atleast_2d, np.atleast_3d,
    np.rollaxis, np.matrix_transpose, np.unstack, np.real, np.imag, np.conjugate,
    np.array, np.asarray, np.asanyarray, np.ascontiguousarray, np.asfortranarray, np.astype,
    np.real_if_close, np.append, np.insert, np.delete, np.resize, np.compress, np.extract,
    np.block, np.pad, np.linspace, np.polyadd, np.polysub, np.polyder, np.polyint, np.gradient,
    np.select, np.choose, np.meshgrid, np.broadcast_arrays, np.full, np.full_like,
    np.fft.fft, np.fft.ifft, np.fft.fftn, np.fft.ifftn, np.fft.fft2, np.fft.ifft2, np.fft.rfft,
    np.fft.irfft, np.fft.rfftn, np.fft.irfftn, np.fft.rfft2, np.fft.irfft2, np.fft.fftshift,
    np.fft.ifftshift,
})

MULTILINEAR = frozenset({
    operator.matmul, np.matmul, np.dot, np.inner, np.outer, np.vdot, np.tensordot, np.kron,
    np.cross, np.einsum, np.vecdot, np.matvec, np.vecmat, np.polymul, np.convolve, np.correlate,
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
    hits = x == expand_reduced(ans, np.shape(x), axis, keepdims)
    return np.sum(dx * hits, axis=axis, keepdims=keepdims) / \
        np.sum(hits, axis=axis, keepdims=keepdims)


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
    # x = a^-1 b: dx = a^-1 (db - da x)
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
    lower = np.swapaxes(ans, -1, -2) if upper else ans
    inner = np.linalg.solve(lower, np.swapaxes(np.linalg.solve(lower, da), -1, -2))
    phi = np.tril(inner) - 0.5 * np.eye(inner.shape[-1]) * inner
    dl = lower @ phi
    return np.swapaxes(dl, -1, -2) if upper else dl


def _two_norm(ord, x, axis):
    """Whether ``np.linalg.norm(x, ord, axis)`` is a Euclidean (or Frobenius) norm."""
    return ord in (None, "fro") or ord == 2 and (np.ndim(x) == 1 or isinstance(axis, int))


@tangent(np.linalg.norm)
def norm_tangent(dx, ans, x, ord=None, axis=None, keepdims=False):
    if not _two_norm(ord, x, axis):
        raise NotImplementedError(f"srcdiff's forward mode differentiates np.linalg.norm as a "
                                  f"2-norm or 'fro' only, not ord={ord!r}")
    # d|x| = <x, dx> / |x|, 0 at x = 0 (abs's choice)
    return np.sum(x * dx, axis=axis, keepdims=keepdims) / (ans + (ans == 0))


@tangent(np.sort)
def sort_tangent(dx, ans, x, axis=-1, kind=None, order=None, stable=None):
    if axis is None:
        return np.ravel(dx)[np.argsort(np.ravel(x), kind="stable")]
    return np.take_along_axis(dx, np.argsort(x, axis=axis, kind="stable"), axis=axis)


@tangent(np.cumprod, np.cumulative_prod)
def cumprod_tangent(dx, ans, x, axis=None, dtype=None, include_initial=False):
    # d cumprod_k = sum_{i <= k} dx_i prod_{j <= k, j != i} x_j, without dividing by x
    if include_initial:
        raise NotImplementedError("srcdiff's forward mode does not take include_initial=True")
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


__all__ += sorted({rule.name for rule in TANGENTS.values()})  # called as rt.<name>_tangent
