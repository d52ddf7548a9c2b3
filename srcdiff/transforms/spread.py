"""spread: a reduction's adjoint that only meets a value of its operand's shape is not spread.

``rt.sum_adjoint(g, x, axis=a, keepdims=True)`` broadcasts ``g``, the adjoint of a ``keepdims``
sum, back to the shape of ``x``: a new array of ``x``'s size. Where it is an operand of
elementwise ``+``, ``-``, ``*`` or ``/`` whose other operand has exactly ``x``'s shape, numpy
broadcasts ``g`` there with the same numbers, and the array is never made. Invariant after
this pass: every ``rt.sum_adjoint(..., keepdims=True)`` left is used where its shape may
matter (alone, or beside a value not proven to have ``x``'s shape). Shapes are those of
``shapes.shape_facts``: ``g`` must provably broadcast into ``x``'s exact shape
(``factor.broadcasts_into``: it is the adjoint of a ``keepdims`` reduction of ``x``), not
only be a number (whose dtype a spread array would fix).

    _t8 = np.sum(e, axis=-1, keepdims=True)
        de = de + rt.sum_adjoint(d_t8, e, axis=-1, keepdims=True)   →   de = de + d_t8

The same for the adjoint of a sum of all of ``x``, ``rt.sum_adjoint(g, x)`` with ``g`` a
number, beside a value of ``x``'s exact shape (a running sum ``total + np.sum(h)`` in a
loop: ``dh + 1.0`` each step, not ``dh + rt.sum_adjoint(1.0, h)``). A number ``g`` gives
the spread array ``x``'s float dtype, or its own as a numpy number, and so does ``a + g``
for the adjoint ``a``, which has ``x``'s shape and a float dtype.
"""

from __future__ import annotations

import libcst as cst

from srcdiff.runtime import rules

from ..analysis.values import UNKNOWN, Facts, rewrite_lines_calling
from ..context import Context
from .factor import broadcasts_into
from .shapes import SCALAR, shape_facts

__all__ = ["rewrite"]

_ELEMENTWISE = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return rewrite_lines_calling(module, ctx, "sum_adjoint", shape_facts,
                                 lambda call, facts: _spread_of(call, facts) is not None, _Unspread)


def _spread_of(call: cst.Call, facts: Facts):
    """``(g, x)`` of ``rt.sum_adjoint(g, x, axis=..., keepdims=True)`` where ``g`` broadcasts
    into ``x``'s exact shape class; None otherwise."""
    if type(call) is not cst.Call or facts.resolve(call.func) is not rules.sum_adjoint:
        return None
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    keepdims = keywords.get("keepdims")
    if len(positional) != 2:
        return None
    g, x = positional
    target, spread = facts.of(x), facts.of(g)
    if not keywords:  # all of x summed: a number g (its array would be g everywhere)
        return (g, x) if spread == SCALAR and target is not UNKNOWN and target.exact and \
            target != SCALAR else None
    if set(keywords) != {"axis", "keepdims"} or \
            not (type(keepdims) is cst.Name and keepdims.value == "True"):
        return None
    if target == SCALAR or spread == SCALAR or not broadcasts_into(spread, target):
        return None
    return g, x


def _exact_as(expr, x, facts: Facts) -> bool:
    known = facts.of(expr)
    return known is not UNKNOWN and known.exact and known == facts.of(x)


class _Unspread(cst.CSTTransformer):
    """``a + rt.sum_adjoint(g, x, axis=k, keepdims=True)`` → ``a + g`` (``a`` of ``x``'s shape)."""

    def __init__(self, facts: Facts):
        self.facts = facts

    def leave_BinaryOperation(self, original: cst.BinaryOperation, updated: cst.BinaryOperation):
        if not isinstance(updated.operator, _ELEMENTWISE):
            return updated
        for side, other in (("right", updated.left), ("left", updated.right)):
            found = _spread_of(getattr(updated, side), self.facts)
            if found is not None and _exact_as(other, found[1], self.facts):
                return updated.with_changes(**{side: _operand(found[0], side, updated)})
        return updated


def _operand(g, side, parent: cst.BinaryOperation):
    """``g`` where the call was, parenthesised if it would bind wrongly there."""
    if g.lpar or isinstance(g, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BaseNumber)) \
            or type(g) is cst.BinaryOperation and type(g.operator) is cst.Power:
        return g
    tight = type(g) is cst.BinaryOperation and type(g.operator) in (cst.Multiply, cst.Divide)
    loose_parent = type(parent.operator) in (cst.Add, cst.Subtract)
    if tight and (loose_parent or side == "left") or type(g) is cst.UnaryOperation and side == "left":
        return g
    return g.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
