"""numba twins of index writes, selections by a mask or an integer array, joins, ``np.clip``
and ``np.prod`` (``srcdiff.jit``); registered by ``numba_twins``, which imports this module.

A key is what ``rt.at[...]`` spells and the kernel passes as it is: integers and slices
(numba's own indexing), a boolean mask of the array's shape or of its first axis, or a 1-d
integer array over the first axis (repeated indices accumulate, as ``np.add.at``). Other keys
are a typing error that ``srcdiff.compiled`` reports at the user's line.

>>> import numba, numpy as np
>>> from srcdiff import runtime as rt
>>> numba.njit(lambda x: rt.setitem(x, 1, 5.0))(np.zeros(3))  # doctest: +SKIP
array([0., 5., 0.])
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core.errors import TypingError

from . import helpers, nondiff, rules
from .numba_twins import _expanded, _is_none, _is_number, _literal, _twin, _zero, reduce_prod, reduce_sum

__all__ = ["index", "squeeze"]


def _key_kind(key, x) -> str:
    """``plain`` (integers, slices), ``mask`` (booleans of x's shape), ``rows`` (booleans of
    x's first axis), ``take`` (1-d integers over the first axis); else a typing error."""
    parts = key.types if isinstance(key, types.BaseTuple) else (key,)
    if all(isinstance(p, (types.Integer, types.SliceType)) for p in parts):
        return "plain"
    if isinstance(key, types.Array) and isinstance(x, types.Array):
        if isinstance(key.dtype, types.Boolean):
            if key.ndim == x.ndim:
                return "mask"
            if key.ndim == 1:
                return "rows"
        elif isinstance(key.dtype, types.Integer) and key.ndim == 1:
            return "take"
    raise TypingError("the compiled indexing takes integers and slices, a boolean mask of the "
                      "array's shape or of its first axis, or a 1-d integer array")


def index(x, key):
    """``x[key]`` (kernel.py writes a subscript by a variable as this): numba's indexing, and
    a mask of two or more axes, which numba does not take."""
    return x[key]


@_twin(index)
def _index(x, key):
    kind = _key_kind(key, x)
    if kind == "mask" and key.ndim > 1:
        def by_mask(x, key):
            out = np.empty(np.count_nonzero(key), x.dtype)
            j = 0
            for i in np.ndindex(key.shape):
                if key[i]:
                    out[j] = x[i]
                    j += 1
            return out
        return by_mask
    return lambda x, key: x[key]


def _put(out, key, value, add):
    """``out[key] = value`` (``add``: ``+=``, repeated indices accumulating) (plain numba)."""


@_twin(_put)
def _put_twin(out, key, value, add):
    kind = _key_kind(key, out)
    accumulate = _literal(add, "add")
    scalar = _is_number(value)
    if kind == "plain" and isinstance(value, types.Array) and value.ndim == 0:  # np.copy(y[0, 0])
        if accumulate:
            def plain_add_0d(out, key, value, add):
                out[key] += value[()]
            return plain_add_0d

        def plain_0d(out, key, value, add):
            out[key] = value[()]
        return plain_0d
    if kind == "plain":
        if accumulate:
            def plain_add(out, key, value, add):
                out[key] += value
            return plain_add

        def plain(out, key, value, add):
            out[key] = value
        return plain
    if kind == "mask":
        def masked(out, key, value, add):
            j = 0
            for i in np.ndindex(key.shape):
                if key[i]:
                    v = value if scalar else value[j]
                    out[i] = out[i] + v if accumulate else v
                    j += 1
        return masked
    if kind == "rows":
        def rows(out, key, value, add):
            j = 0
            for i in range(key.shape[0]):
                if key[i]:
                    v = value if scalar else value[j]
                    if accumulate:
                        out[i] += v
                    else:
                        out[i] = v
                    j += 1
        return rows

    def take(out, key, value, add):
        for j in range(key.shape[0]):
            v = value if scalar else value[j]
            if accumulate:
                out[key[j]] += v
            else:
                out[key[j]] = v
    return take


@_twin(helpers.setitem)
def _setitem(x, key, value):
    if not isinstance(x, types.Array):
        raise TypingError("the compiled index write takes an array")

    def impl(x, key, value):
        out = x.copy()
        _put(out, key, value, False)
        return out

    return impl


@_twin(rules.getitem_adjoint)
def _getitem_adjoint(g, x, key=()):
    if not isinstance(x, types.Array):
        raise TypingError("the compiled indexing adjoint takes an array")
    _key_kind(key, x)

    def impl(g, x, key=()):
        dx = np.zeros_like(x)
        _put(dx, key, g, True)
        return dx

    return impl


@_twin(rules.add_at)
def _add_at(acc, g, x, key=()):
    _key_kind(key, acc)

    def impl(acc, g, x, key=()):
        _put(acc, key, g, True)
        return acc

    return impl


@_twin(rules.slices_adjoint)
def _slices_adjoint(x, *pieces):
    """The chain ``slices_adjoint`` stands for (zeros, each piece added at its key): numba
    makes no new array per piece to join, so the concatenation gains nothing here."""
    if not isinstance(x, types.Array):
        raise TypingError("the compiled slices adjoint takes an array")
    for piece in pieces:
        _key_kind(piece.types[1], x)
    from numba import literal_unroll

    def impl(x, *pieces):
        dx = np.zeros_like(x)
        for piece in literal_unroll(pieces):
            _put(dx, piece[1], piece[0], True)
        return dx

    return impl


def squeeze(x, axis):
    """``np.squeeze(x, axis=axis)`` for one literal axis (numba has no np.squeeze)."""
    return np.squeeze(x, axis=axis)


@_twin(squeeze, cache=False)
def _squeeze(x, axis):
    if not isinstance(x, types.Array) or _is_none(axis):
        raise TypingError("the compiled np.squeeze takes an array and one axis written in the "
                          "source (np.squeeze(x, axis=1))")
    a = _literal(axis, "axis") % x.ndim
    kept = "".join(f"x.shape[{i}], " for i in range(x.ndim) if i != a)
    scope: dict = {"np": np}
    exec(f"def impl(x, axis):\n"  # noqa: S102  our own text, of integers only
         f"    if x.shape[{a}] != 1:\n"
         f"        raise ValueError('cannot select an axis to squeeze out which has size not "
         f"equal to one')\n"
         f"    return np.ascontiguousarray(x).reshape(({kept}))\n", scope)
    return scope["impl"]


@_twin(nondiff.stop_gradient)
def _stop_gradient(x):
    return lambda x: x


# ----- np.clip and np.prod -----


@_twin(rules.clip_adjoint)
def _clip_adjoint(g, a, a_min, a_max):
    low, high = not _is_none(a_min), not _is_none(a_max)
    zero = _zero(g)
    if _is_number(g) and _is_number(a):  # numbers: the same choices as Python conditions
        if low and high:
            def numbers(g, a, a_min, a_max):
                below = a < a_min and a_min <= a_max
                above = max(a, a_min) > a_max
                return (zero if below or above else g, g if below else zero, g if above else zero)
            return numbers
        if low:
            return lambda g, a, a_min, a_max: ((zero, g, None) if a < a_min else (g, zero, None))
        return lambda g, a, a_min, a_max: ((zero, None, g) if a > a_max else (g, None, zero))
    # each adjoint summed back onto its operand's shape, as the rule's table does (broadcasting)
    sum_to = helpers.unbroadcast
    if low and high:
        def both(g, a, a_min, a_max):
            above = np.maximum(a, a_min) > a_max
            below = (a < a_min) & (a_min <= a_max)
            return (sum_to(np.where(below | above, zero, g), a),
                    sum_to(np.where(below, g, zero), a_min), sum_to(np.where(above, g, zero), a_max))
        return both
    if low:
        def below_only(g, a, a_min, a_max):
            below = a < a_min
            return sum_to(np.where(below, zero, g), a), sum_to(np.where(below, g, zero), a_min), None
        return below_only
    if high:
        def above_only(g, a, a_min, a_max):
            above = a > a_max
            return sum_to(np.where(above, zero, g), a), None, sum_to(np.where(above, g, zero), a_max)
        return above_only
    raise TypingError("np.clip needs a bound")


# one operand's adjoint (the rule's parts), not summed to its shape: the derivative does that
@_twin(rules.clip_adjoint_a)
def _clip_adjoint_a(g, a, a_min, a_max):
    low, high, zero = not _is_none(a_min), not _is_none(a_max), _zero(g)
    if _is_number(g) and _is_number(a):
        return lambda g, a, a_min, a_max: rules.clip_adjoint(g, a, a_min, a_max)[0]
    if low and high:
        return lambda g, a, a_min, a_max: np.where(
            (np.maximum(a, a_min) > a_max) | ((a < a_min) & (a_min <= a_max)), zero, g)
    if low:
        return lambda g, a, a_min, a_max: np.where(a < a_min, zero, g)
    return lambda g, a, a_min, a_max: np.where(a > a_max, zero, g)


@_twin(rules.clip_adjoint_min)
def _clip_adjoint_min(g, a, a_min, a_max):
    low, high, zero = not _is_none(a_min), not _is_none(a_max), _zero(g)
    if not low:
        return lambda g, a, a_min, a_max: None
    if _is_number(g) and _is_number(a):
        return lambda g, a, a_min, a_max: rules.clip_adjoint(g, a, a_min, a_max)[1]
    if high:
        return lambda g, a, a_min, a_max: np.where((a < a_min) & (a_min <= a_max), g, zero)
    return lambda g, a, a_min, a_max: np.where(a < a_min, g, zero)


@_twin(rules.clip_adjoint_max)
def _clip_adjoint_max(g, a, a_min, a_max):
    low, high, zero = not _is_none(a_min), not _is_none(a_max), _zero(g)
    if not high:
        return lambda g, a, a_min, a_max: None
    if _is_number(g) and _is_number(a):
        return lambda g, a, a_min, a_max: rules.clip_adjoint(g, a, a_min, a_max)[2]
    if low:
        return lambda g, a, a_min, a_max: np.where(np.maximum(a, a_min) > a_max, g, zero)
    return lambda g, a, a_min, a_max: np.where(a > a_max, g, zero)


@_twin(rules.prod_adjoint)
def _prod_adjoint(g, x, axis=None, keepdims=False):
    if _is_number(x):
        return lambda g, x, axis=None, keepdims=False: g

    def impl(g, x, axis=None, keepdims=False):
        is_zero = x == 0
        nonzero = np.where(is_zero, np.ones_like(x), x)
        others = reduce_prod(nonzero, axis, True) / nonzero
        others_have_zero = reduce_sum(is_zero.astype(np.intp), axis, True) - is_zero > 0
        return _expanded(g, x, axis, keepdims) * np.where(others_have_zero, np.zeros_like(others),
                                                          others)

    return impl


# ----- joins: np.concatenate and np.stack of a tuple of arrays (kernel.py makes a list one) -----


def _pieces(count: int, axis: int, ndim: int, stack: bool):
    """The adjoint of a join of ``count`` arrays along ``axis`` of ``g`` (``ndim`` axes):
    one view of ``g`` per array, written out for this count (numba's tuples have a size
    known when it compiles)."""
    before = ":, " * axis
    lines = [f"def impl(g, arrays, axis=0):"]
    if stack:
        views = [f"g[{before}{i}]" for i in range(count)]
    else:
        lines.append("    o0 = 0")
        for i in range(count):
            lines.append(f"    o{i + 1} = o{i} + arrays[{i}].shape[{axis}]")
        views = [f"g[{before}o{i}:o{i + 1}]" for i in range(count)]
    lines.append(f"    return ({', '.join(views)},)")
    scope: dict = {}
    exec("\n".join(lines), scope)  # noqa: S102  our own text, of integers only
    return scope["impl"]


def _join_adjoint(stack: bool):
    def generator(g, arrays, axis=0):
        if not (isinstance(g, types.Array) and isinstance(arrays, types.BaseTuple) and
                all(isinstance(a, types.Array) for a in arrays.types)):
            raise TypingError("the compiled np.concatenate and np.stack adjoints take a tuple or "
                              "list of arrays written in the call")
        given = axis.value if isinstance(axis, types.Omitted) else _literal(axis, "axis")
        if given is None:
            raise TypingError("the compiled np.concatenate adjoint takes an axis, not None")
        return _pieces(len(arrays.types), given % g.ndim, g.ndim, stack)

    return generator


_twin(rules.concatenate_adjoint, cache=False)(_join_adjoint(stack=False))
_twin(rules.stack_adjoint, cache=False)(_join_adjoint(stack=True))
