"""guards: drop ``rt.guard(v, g)`` where ``v`` is provably positive.

``rt.guard(v, g)`` is ``v`` with 1 wherever the adjoint ``g`` is exactly zero, so that a
rule dividing by ``v`` gives 0, not 0/0, where ``v`` is zero and nothing flows back. Where
``v`` can never be zero, the guard changes nothing and only costs a comparison and a
``where``. Invariant after this pass: every guard left divides by (or raises) a value not
proven positive. A value is proven positive by a lower bound of at least 1e-6 (17 of
float16's smallest steps, 6e-8, above zero; a bound below 1e-7 counts as 0, see below), from
literals through ``+``,
``*``, a division by a positive literal, squares (``x * x``, even powers, ``np.square``),
``abs``, ``exp``, ``sqrt`` and ``cosh``, e.g. ``1.0 + x * x >= 1``; through reductions: a
mean lies between its terms, a sum of nonnegative terms is nonnegative (an empty sum is
0), ``np.var``, ``np.std`` and ``np.linalg.norm`` are nonnegative, so an RMS or layer norm's
``np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) >= 1e-3`` and its square, which
the quotient rule divides by, ``>= 1e-6``; and a softmax's
denominator, ``np.sum(e, axis=a)`` of ``e = np.exp(s - np.max(s, axis=a, keepdims=True))``,
is at least 1 (one of its terms is exp(0)), however the max and the sum are spelled, along
the same axis by its text or, under a shape pattern, modulo the array's number of
dimensions (``axis=-1`` and ``axis=2`` of a 3-d array). The bounds are
kept only through operations that make no NaN from numbers (no ``0 * inf``, no square root
of a negative, no ``inf - inf`` in a sum: a term with a lower bound is never -inf), so a
value with a bound is either above it (+inf included: a sum may overflow) or NaN because an
*input* is NaN; for NaN inputs the gradient may then be NaN where a guard would have given
0, as it is through any rule without a guard (``g * x``). Guards on the base of a power
stay: there ``0 * inf`` can come from an overflow of a large base, not only from a zero
one. The bounds are those of real (floating-point) arithmetic, except that a positive bound
below 1e-7 counts as 0, as float16 may round such a value (a literal ``1e-8``) to 0: so
``np.sqrt(np.sum(x * x) + 1e-8)`` keeps its guards, ``+ 1e-6`` loses them. An integer
``n * n`` that overflows is not modelled.

    _t3 = x * x
    _t4 = 1.0 + _t3
    e = d / _t4                                       (x * x >= 0, so _t4 >= 1)
        dd = de / rt.guard(_t4, de)        →          dd = de / _t4
"""

from __future__ import annotations

import math

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers
from srcdiff.runtime.backend import numpy_twin

from ..analysis.calls import call_on_one_name, classify
from ..analysis.values import (UNKNOWN, Domain, Facts, binding_counts, infer, number,
                               rewrite_lines_calling, single_assignments)
from ..context import Context
from .shapes import axes_of, shape_facts

__all__ = ["rewrite", "lower_bounds", "POSITIVE"]

POSITIVE = 1e-6  # a lower bound at least this large proves a value positive
# a positive bound below this may be a value that float16 rounds to 0 (its smallest step is
# 6e-8: np.float16(1e-8) == 0, so float16's sqrt(sum(x * x) + 1e-8) is 0 where x is 0): 0
FLOAT16_TINY = 1e-7

# f(x) >= bound(lower bound of x), for x not NaN; None: no bound
_UNARY = {
    np.exp: lambda lo: math.exp(lo) if lo is not None and lo < 700 else 0.0,  # exp underflows to 0
    np.sqrt: lambda lo: math.sqrt(lo) if lo is not None and lo >= 0 else UNKNOWN,  # sqrt(-1)
    np.square: lambda lo: lo * lo if lo is not None and lo >= 0 else 0.0,
    np.absolute: lambda lo: lo if lo is not None and lo >= 0 else 0.0,
    np.cosh: lambda lo: 1.0,
    math.exp: lambda lo: math.exp(lo) if lo is not None and lo < 700 else 0.0,
    math.sqrt: lambda lo: math.sqrt(lo) if lo is not None and lo >= 0 else UNKNOWN,
    math.cosh: lambda lo: 1.0,
    math.fabs: lambda lo: lo if lo is not None and lo >= 0 else 0.0,
}

# f(x, **options) >= bound(lower bound of x), for x not NaN, with only the options named
# (None: any); a term with a lower bound is never -inf, so a sum of them is never inf - inf
_REDUCED = {
    np.mean: (lambda lo: lo, {"axis", "keepdims"}),  # between its terms (an empty mean: NaN)
    np.sum: (lambda lo: 0.0 if lo is not None and lo >= 0 else UNKNOWN,  # an empty sum: 0
             {"axis", "keepdims"}),
    np.var: (lambda lo: 0.0, None),  # a mean of squares (any ddof: numpy divides by
    np.std: (lambda lo: 0.0, None),  # max(n - ddof, 0), inf where that is 0)
    np.linalg.norm: (lambda lo: 0.0, None),
}
_REDUCED_METHODS = {"sum", "mean", "var", "std"}  # x.sum(...): classify resolves them


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return rewrite_lines_calling(module, ctx, "guard", lower_bounds,
                                 _positive_guard, _Drop)


def lower_bounds(vjp: cst.FunctionDef, ctx: Context) -> Facts:
    """A lower bound of every name of the generated function ``vjp`` (None: unknown)."""
    params = {p.name.value for p in vjp.params.params}
    local = single_assignments(vjp) | params
    names = frozenset(binding_counts(vjp)) | params  # every name bound: not a global
    shifted = _shifted_exponentials(vjp, ctx, local)
    ndim = _ndims(vjp, ctx)

    def denominator(expr) -> bool:  # sum(e, axis=a) of a shifted exponential e along a
        reduced = call_on_one_name(expr, ctx, local, _SUMS)
        if reduced is None or reduced[0] not in shifted:
            return False
        s, axis = shifted[reduced[0]]
        return _same_axis(axis, reduced[1], ndim(s), ndim(reduced[0]))

    def reduction(expr, facts):  # the bound of a mean, sum, var, std or norm; else None
        return _reduced_bound(expr, facts, ctx, names)

    return infer(vjp, ctx, Domain(
        lambda expr, facts: _representable(_evaluate(expr, facts, denominator, reduction)),
        _join), {})


def _representable(lo):
    """``lo``, or 0 where a value that large may still round to 0 in float16."""
    return 0.0 if lo is not UNKNOWN and 0 < lo < FLOAT16_TINY else lo


def _reduced_bound(call: cst.Call, facts: Facts, ctx: Context, names: frozenset):
    """``(bound,)`` for a call of a reduction of ``_REDUCED`` on one operand, however it is
    spelled (``np.sum(x)``, ``x.sum(axis=0)``); None for any other call."""
    func = call.func
    if not (type(func) is cst.Attribute and func.attr.value in _REDUCED_METHODS):
        fn = facts.resolve(func)
        try:
            if (numpy_twin(fn) or fn) not in _REDUCED:
                return None
        except TypeError:  # unhashable
            return None
    op = classify(call, ctx, names)
    fn = numpy_twin(op.primitive) or op.primitive if op.kind == "rule" else None
    try:
        rule = _REDUCED.get(fn)
    except TypeError:
        return None
    if rule is None or len(op.operands) != 1:
        return None
    bound_of, allowed = rule
    if allowed is not None and {k for k, _ in op.options} - allowed:
        return (UNKNOWN,)
    return (bound_of(facts.of(op.operands[0])),)


def _ndims(vjp: cst.FunctionDef, ctx: Context):
    """``ndim(name)``: the number of dimensions of a name's value where a shape pattern gives
    it (shapes' facts, inferred on the first question), else None."""
    facts: list = []

    def ndim(name: str) -> int | None:
        if not ctx.dims:
            return None
        if not facts:
            facts.append(shape_facts(vjp, ctx))
        axes = axes_of(facts[0][name])
        return None if axes is None else len(axes)

    return ndim


def _same_axis(a: cst.BaseExpression, b: cst.BaseExpression, ndim_a, ndim_b) -> bool:
    """Whether reductions along ``axis=a`` and ``axis=b`` run along the same axes: the same
    text, or, where both arrays have ``n`` dimensions, the same axes modulo ``n``."""
    if _code(a) == _code(b):
        return True
    if ndim_a is None or ndim_a != ndim_b:
        return False
    axes = _axes(a, ndim_a)
    return axes is not None and axes == _axes(b, ndim_a)


def _axes(axis: cst.BaseExpression, n: int) -> frozenset | None:
    """The axes ``axis=`` names in an array of ``n`` dimensions (an int, a tuple of ints or
    None), each in ``range(n)``; None if not literal or out of range."""
    if type(axis) is cst.Name and axis.value == "None":
        return frozenset(range(n))
    items = [e.value for e in axis.elements] if type(axis) is cst.Tuple else [axis]
    found = [number(item) for item in items]
    if not found or any(type(k) is not int or not -n <= k < n for k in found):
        return None
    return frozenset(k % n for k in found)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


# ----- softmax: the sum of exp(s - max(s)) along the axis of the max is at least 1 -----

_MAXIMA = (np.max, np.amax)
_SUMS = (np.sum,)


def _shifted_exponentials(vjp: cst.FunctionDef, ctx: Context, local: set) -> dict:
    """``{e: (s, axis)}`` for each ``e = np.exp(d)``, ``d = s - m``, ``m = np.max(s, axis=a,
    keepdims=True)`` (or ``s.max(...)``) of the forward pass, each name bound once: every
    value of ``e`` is at most 1 and, along ``a``, one of them is exp(0) = 1 (or NaN where
    ``s`` holds a NaN or an infinity)."""
    values = {}
    for stmt in vjp.body.body:
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign \
                and len(stmt.body[0].targets) == 1 and \
                isinstance(stmt.body[0].targets[0].target, cst.Name):
            name = stmt.body[0].targets[0].target.value
            if name in local:
                values[name] = stmt.body[0].value
    found = {}
    for e, value in values.items():
        exp = call_on_one_name(value, ctx, local, (np.exp,), axis_needed=False)
        d = values.get(exp[0]) if exp is not None else None
        if not (type(d) is cst.BinaryOperation and type(d.operator) is cst.Subtract and
                type(d.left) is cst.Name and type(d.right) is cst.Name):
            continue
        reduced = call_on_one_name(values.get(d.right.value), ctx, local, _MAXIMA)
        if reduced is not None and reduced[0] == d.left.value and reduced[2]:
            found[e] = (reduced[0], reduced[1])
    return found


def _join(a, b):
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    return min(a, b)


def _evaluate(expr: cst.BaseExpression, facts: Facts, denominator=None, reduction=None):
    value = number(expr)
    if value is not None:
        return float(value)
    if type(expr) is cst.Name:
        return facts[expr.value]
    if type(expr) is cst.BinaryOperation:
        op = expr.operator
        if type(op) is cst.Multiply and type(expr.left) is cst.Name and \
                type(expr.right) is cst.Name and expr.left.value == expr.right.value:
            lo = facts[expr.left.value]  # x * x
            return lo * lo if lo is not None and lo >= 0 else 0.0
        if type(op) is cst.Power:
            return _power(facts.of(expr.left), number(expr.right))
        if type(op) in (cst.Multiply, cst.Divide):  # by a positive literal: no 0 * inf
            c, v = number(expr.right), expr.left
            if c is None and type(op) is cst.Multiply:
                c, v = number(expr.left), expr.right
            if c is not None:
                lo = facts.of(v)
                if not 0 < c < math.inf or lo is UNKNOWN:
                    return UNKNOWN
                return lo * c if type(op) is cst.Multiply else lo / c
        a, b = facts.of(expr.left), facts.of(expr.right)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if type(op) is cst.Add:
            return a + b
        if type(op) is cst.Subtract and number(expr.right) is not None and \
                math.isfinite(b):  # x - 1.0
            return a - b
        if type(op) is cst.Multiply and a > 0 and b > 0:  # no 0 * inf: NaN from numbers
            return a * b
        return UNKNOWN
    if denominator is not None and type(expr) is cst.Call and denominator(expr):
        return 1.0  # the denominator of a softmax
    if reduction is not None and type(expr) is cst.Call:
        reduced = reduction(expr, facts)
        if reduced is not None:
            return reduced[0]
    if type(expr) is cst.Call and len(expr.args) == 1 and expr.args[0].keyword is None \
            and expr.args[0].star == "":
        fn = facts.resolve(expr.func)
        fn = numpy_twin(fn) or fn
        try:
            bound = _UNARY.get(fn)
        except TypeError:  # unhashable
            return UNKNOWN
        if bound is not None:
            return bound(facts.of(expr.args[0].value))
    return UNKNOWN


def _power(lo, k):
    """A lower bound of ``x ** k`` for ``x >= lo`` and a literal ``k``: an even power of any
    number is >= 0, a power of a nonnegative one >= lo ** k; no bound for negative powers
    (``0 ** -1``) nor for a negative base's odd or fractional power."""
    if k is None or not k >= 0:
        return UNKNOWN
    nonnegative = lo is not UNKNOWN and lo >= 0
    if not nonnegative:
        return 0.0 if float(k).is_integer() and int(k) % 2 == 0 else UNKNOWN
    try:
        return float(lo) ** k
    except OverflowError:  # a bound above the largest float: any float is below it but inf
        return math.inf


def _positive_guard(call: cst.Call, facts: Facts) -> bool:
    """Whether ``call`` is ``rt.guard(v, g)`` with ``v >= POSITIVE``."""
    if len(call.args) != 2 or facts.resolve(call.func) is not helpers.guard:
        return False
    lo = facts.of(call.args[0].value)
    return lo is not UNKNOWN and lo >= POSITIVE


class _Drop(cst.CSTTransformer):
    """``rt.guard(v, g)`` → ``v`` where ``v >= POSITIVE``, except as the base of a power."""

    def __init__(self, facts: Facts):
        self.facts = facts
        self.bases: set[int] = set()  # guards raised to a power: they stay

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if type(node.operator) is cst.Power:
            self.bases.add(id(node.left))

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if id(original) in self.bases or not _positive_guard(original, self.facts):
            return updated
        value = updated.args[0].value
        if isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BaseNumber)) \
                or value.lpar:
            return value
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
