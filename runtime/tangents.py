"""The tangent-rule table: how forward mode (``srcdiff.jvp``) carries a tangent through each
primitive that has an adjoint rule (``registry.py``).

Most primitives need no code of their own; their kind says how their tangent is written:

- *elementwise* (every ufunc, ``math`` function and arithmetic operator, ``np.where``,
  ``np.clip``…): the Jacobian is diagonal after broadcasting, so the adjoint rule's formula
  with the operand's tangent in place of ``g`` is the tangent (``dx * np.cos(x)`` for
  ``np.sin(x)``), summed over the operands that have one;
- *linear* (``np.sum``, ``reshape``, indexing, ``concatenate``, the FFTs…): the primitive
  itself, applied to the tangents (``np.sum(dx, axis=0)``), a zero for an operand without one;
- *multilinear* (``@``, ``np.dot``, ``einsum``, ``np.outer``, ``np.trapezoid``…): one term per
  operand that has a tangent, with that operand replaced by it (``dW @ h + W @ dh``).

The rest have a tangent rule (``tangent_reductions.py``, ``tangent_linalg.py``,
``tangent_building.py``, ``tangent_scipy.py``): ``@tangent(np.prod)`` on
``prod_tangent(dx, ans, x, axis=None, keepdims=False)``, which takes one tangent per operand
(a zero, ``rt.zero_tangent(x)``, for an operand without one), the primal output ``ans``, the
operands and the primitive's options, and returns the output's tangent. A rule whose body is
one ``return`` and that takes one operand is written inline. A primitive of none of these
kinds is refused by ``jvp`` at the user's line ("has no tangent rule yet"). A primitive that
is linear but has an operand that is not (``np.compress``'s condition, ``np.choose``'s index),
adds a constant (``np.pad``'s ``constant_values``, ``np.diff``'s ``prepend``) or takes a dtype
(``x.astype(t)``, checked when the code runs) has a rule.

Coverage: every one of the 297 primitives with an adjoint rule (scipy's included) has a
tangent: 115 elementwise, 74 linear, 17 multilinear, 91 rules (28 of reductions, 13 of
linear algebra, 34 of building, 16 of scipy). Only ``guard`` and ``broadcast_tangent``, which
srcdiff's own generated code calls, have none (they have adjoints, for second order).
tests/test_tangent_rules.py runs every case of the adjoint rules' tables through
``srcdiff.jvp`` against finite differences. Refused, never approximated: ``u`` and ``vh`` of
``np.linalg.svd`` of a non-square matrix with ``full_matrices=True`` (not unique);
``np.gradient`` in several spacings or in varied sample points. At a tie (``np.max``,
``np.median``, ``np.linalg.norm(x, np.inf)``) the tangent is the mean of the tied tangents,
what central differences give for two tied elements.

Second order (``srcdiff.hvp``, ``hessian``) runs reverse mode over these rules, so they are
plain numpy: no ``raise`` (a refusal is ``_refuse_unless``), no import, no ``*`` in a call,
one structure per return. The order statistics (``np.median``, ``np.quantile``,
``np.percentile`` and their NaN versions: weights from the adjoint, through a quantile
function passed as a value) and the scipy rules that call scipy through a helper
(``polygamma``, ``t.logpdf``, ``solve_triangular``, ``cho_solve``) are refused there.

Tangent rules are written for real values; ``srcdiff.jvp`` refuses complex arguments (a
complex value inside, from an FFT, carries a complex tangent through the linear rules).
"""

from __future__ import annotations

import builtins
import math
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import helpers, shaping
from .helpers import guard, unbroadcast, where_positive, zeros_like
from .options import refusal
from .registry import RULES, adjoint
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
    operator.neg, builtins.abs, builtins.float, np.where, where_positive, np.clip, np.sinc, np.nan_to_num, np.i0,
})
_MATH = frozenset(v for v in vars(math).values() if callable(v)) - {
    math.fsum, math.prod, math.dist}  # of sequences: rules below

LINEAR = frozenset({
    operator.getitem, helpers.setitem, helpers.append,
    np.sum, np.mean, np.reshape, np.ravel, np.squeeze, np.expand_dims, np.transpose,
    np.swapaxes, np.moveaxis, np.broadcast_to, np.copy, np.concatenate, np.stack, np.dstack,
    np.column_stack, np.split, np.array_split, np.hsplit, np.vsplit, np.dsplit, np.tile,
    np.repeat, np.take, np.take_along_axis, np.diag, np.diagonal, np.diagflat, np.tril, np.triu,
    np.trace, np.cumsum, np.cumulative_sum, np.roll, np.flip, np.fliplr, np.flipud, np.rot90,
    np.atleast_1d, np.atleast_2d, np.atleast_3d, np.rollaxis, np.matrix_transpose, np.unstack,
    np.real, np.imag, np.conjugate, np.real_if_close, np.append, np.insert, np.delete,
    np.resize, np.block, np.polyadd, np.polysub, np.polyder, np.meshgrid, np.broadcast_arrays,
    np.fft.fft, np.fft.ifft, np.fft.fftn, np.fft.ifftn, np.fft.fft2, np.fft.ifft2, np.fft.rfft,
    np.fft.irfft, np.fft.rfftn, np.fft.irfftn, np.fft.rfft2, np.fft.irfft2, np.fft.fftshift,
    np.fft.ifftshift, np.lib.stride_tricks.sliding_window_view, shaping.added_at,
})
# linear too, but with an operand that is not (a condition, an index: np.compress, np.choose,
# np.select), a constant added (np.pad's constant_values, np.diff's prepend, np.polyint's k) or
# a dtype (np.astype, np.array, np.full, np.linspace, np.hstack...: one known only when the code
# runs, x.astype(t), is checked there, as their adjoint rules check it): rules of their own,
# tangent_building.py

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
    # returned as zeros: in second order g_ is active, and the caller adds to it). A number
    # guarded by an array comes back as itself where that divides alike (rt.guard's shortcut:
    # g, its adjoint, is then a number too, all of it value's), else as an array of g_'s
    # shape, whose adjoint is summed back to the number's
    if np.ndim(g_) and not np.ndim(g):
        return g, zeros_like(g_)
    return unbroadcast(np.where(g_ == 0, 0.0, g), value), zeros_like(g_)


def _check_option(primitive, option, value):
    """Refuse an option value that the adjoint rule of ``primitive`` does not differentiate,
    known only when the code runs (``x.astype(t)``: the compiler checks a constant)."""
    message = refusal(RULES[primitive], option, value)
    _refuse_unless(not message, "srcdiff's forward mode cannot differentiate " + message)


def _refuse_unless(admitted, message):
    """Raise srcdiff's error for what a tangent rule does not differentiate (a function of its
    own: second order reads the rules, and differentiates no ``raise``; srcdiff.errors is
    imported when needed, the runtime does not import the compiler)."""
    if not admitted:
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(message)


# ----- the rules, one module per family (each registers its own) -----

from .tangent_building import *  # noqa: E402,F401,F403  called as rt.<name>_tangent
from .tangent_linalg import *  # noqa: E402,F401,F403
from .tangent_reductions import *  # noqa: E402,F401,F403

__all__ += sorted({rule.name for rule in TANGENTS.values()})
