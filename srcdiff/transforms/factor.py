"""factor: a factor that is constant along the axes ``rt.unbroadcast`` sums is applied after the sum.

``rt.unbroadcast(g, x)`` sums ``g`` over the axes along which numpy broadcast ``x``. A factor
of ``g`` that has exactly the shape of ``x`` (or is one number) holds one value all along those
axes, so multiplying or dividing the small sum by it gives the same numbers (up to rounding)
as multiplying or dividing every element of ``g`` first; a negation likewise. Each factor so
moved saves one pass over the large array. Invariant after this pass: no ``rt.unbroadcast``
has a negated first argument, nor a factor (of its first argument's chain of ``*`` and ``/``)
of its operand's exact shape or of one number, where the other factors provably keep the
large shape (``x`` broadcasts into the exact shape of one of them, or is a number);
everything else is left as it is.

A factor has ``x``'s shape when it is ``x`` itself, elementwise arithmetic of ``x`` and numbers
(``x * x``, ``x ** 2``, ``np.exp(x)``), or a value of ``x``'s exact shape class
(``shapes.shape_facts``). ``rt.guard(v, g)`` has ``g``'s shape (it is ``v`` with 1 where the
large ``g`` is 0), so it is never moved: the gradient stays 0 wherever ``g`` is.

    p = e / s                                   (s = np.sum(e, axis=-1, keepdims=True))
        ds = rt.unbroadcast(-dp * e / (s * s), s)   →   ds = -rt.unbroadcast(dp * e, s) / (s * s)
"""

from __future__ import annotations

import libcst as cst

from srcdiff.runtime import helpers

from ..analysis.values import UNKNOWN, Facts, number, rewrite_lines_calling
from ..context import Context
from .shapes import ELEMENTWISE, SCALAR, Unwrapping, axes_of, shape_facts

__all__ = ["rewrite", "broadcasts_into"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return rewrite_lines_calling(module, ctx, "unbroadcast", shape_facts,
                                 lambda call, facts: _plan(call, facts) is not None, _Factor)


def _plan(call: cst.Call, facts: Facts):
    """``(negated, kept, moved)`` for ``rt.unbroadcast(g, x)``: the factors of ``g`` that stay
    inside the sum and those applied after it, each a list of ``(factor, divides)``; None
    where nothing moves."""
    if not (facts.resolve(call.func) is helpers.unbroadcast and len(call.args) == 2 and
            all(a.keyword is None and a.star == "" for a in call.args)):
        return None
    g, x = (a.value for a in call.args)
    negated, factors = _factors(g)
    moved = [(f, d) for f, d in factors if _scalar(f, facts) or _shaped_as(f, x, facts)]
    kept = [(f, d) for f, d in factors if not any(f is m for m, _ in moved)]
    if not any(not d for _, d in kept):
        moved, kept = [], factors  # nothing would be left to sum: move the sign only
    elif not all(_scalar(f, facts) for f, _ in moved) and not _keeps_shape(kept, x, facts):
        moved = [(f, d) for f, d in moved if _scalar(f, facts)]  # the sum might shrink
        kept = [(f, d) for f, d in factors if not any(f is m for m, _ in moved)]
    if any(d for _, d in moved):  # a division makes floats: a factor 1 (seed's) goes
        moved = [(f, d) for f, d in moved if d or number(f) != 1]
    if not moved and not negated:
        return None
    return negated, kept, moved


def _factors(expr) -> tuple[bool, list]:
    """``expr`` as ``(negated, [(factor, divides), ...])`` over its chain of ``*``, ``/`` and
    unary ``-``; a divisor is one factor as it is (``a / (b * c)``: ``b * c``)."""
    if type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Minus:
        negated, factors = _factors(expr.expression)
        return not negated, factors
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.Multiply:
        left_negated, left = _factors(expr.left)
        right_negated, right = _factors(expr.right)
        return left_negated != right_negated, left + right
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.Divide:
        negated, left = _factors(expr.left)
        return negated, left + [(expr.right, True)]
    return False, [(expr, False)]


def _scalar(expr, facts: Facts) -> bool:
    """Whether ``expr`` is one number (a literal, or of shape ``()``)."""
    return number(expr) is not None or facts.of(expr) == SCALAR


def _shaped_as(expr, x, facts: Facts) -> bool:
    """Whether ``expr`` provably has exactly the shape of ``x``."""
    if type(expr) is cst.Name and type(x) is cst.Name and expr.value == x.value:
        return True
    known = facts.of(x)
    if known is not UNKNOWN and known.exact and facts.of(expr) == known:
        return True
    if type(expr) is cst.UnaryOperation and type(expr.operator) in (cst.Minus, cst.Plus):
        return _shaped_as(expr.expression, x, facts)
    if type(expr) is cst.BinaryOperation and isinstance(
            expr.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power)):
        sides = (expr.left, expr.right)
        return all(_shaped_as(s, x, facts) or _scalar(s, facts) for s in sides) and \
            any(_shaped_as(s, x, facts) for s in sides)
    if type(expr) is cst.Call and len(expr.args) == 1 and expr.args[0].keyword is None \
            and expr.args[0].star == "" and _elementwise(facts.resolve(expr.func)):
        return _shaped_as(expr.args[0].value, x, facts)
    return False


def _elementwise(fn) -> bool:
    try:
        return fn in ELEMENTWISE
    except TypeError:  # unhashable
        return False


def _keeps_shape(kept, x, facts: Facts) -> bool:
    """Whether the product of ``kept`` provably has a shape ``x`` broadcasts into: ``x`` is one
    number, or ``x`` broadcasts into the exact shape of a kept factor."""
    target = facts.of(x)
    return target is not UNKNOWN and (target == SCALAR or any(
        broadcasts_into(target, facts.of(f)) for f, _ in kept))


def broadcasts_into(small, large) -> bool:
    """Whether a value of shape ``small`` provably broadcasts into the exact shape ``large``
    (``shapes.Shape`` facts): one class (``small`` exact or only broadcasting into it), or,
    under a pattern of argument shapes, axes that are ``large``'s or 1, aligned at the end."""
    if small is UNKNOWN or large is UNKNOWN or not large.exact:
        return False
    if small.of == large.of:
        return True
    a, b = axes_of(small), axes_of(large)
    return a is not None and b is not None and len(a) <= len(b) and \
        all(x == y or x == 1 for x, y in zip(a, b[len(b) - len(a):]))


def _product(factors) -> cst.BaseExpression:
    """``a * b / c`` of ``[(a, False), (b, False), (c, True)]``, multiplications first."""
    ordered = [f for f in factors if not f[1]] + [f for f in factors if f[1]]
    out = _operand(ordered[0][0], False)
    for factor, divides in ordered[1:]:
        out = cst.BinaryOperation(left=out, operator=cst.Divide() if divides else cst.Multiply(),
                                  right=_operand(factor, True))
    return out


_TIGHT = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BaseNumber, cst.BaseString)


def _operand(node, right: bool) -> cst.BaseExpression:
    """``node`` as an operand of ``*`` or ``/``, parenthesised where it would bind wrongly."""
    if node.lpar or isinstance(node, _TIGHT) or \
            type(node) is cst.BinaryOperation and type(node.operator) is cst.Power:
        return node
    if type(node) is cst.UnaryOperation and not right:
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


class _Factor(Unwrapping):
    """``rt.unbroadcast(-a * f / h, x)`` → ``-rt.unbroadcast(a, x) * f / h`` (``f``, ``h`` of
    ``x``'s shape); the result is parenthesised, and the parentheses dropped where the
    context does not need them (``d + -u * f`` is written ``d - u * f``, ``--u`` as ``u``)."""

    def __init__(self, facts: Facts):
        super().__init__()
        self.facts = facts
        # what wrap() attaches to a parenthesised result: the same without its sign where it
        # is negated, else None

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        plan = _plan(updated, self.facts)
        if plan is None:
            return updated
        negated, kept, moved = plan
        inner = updated.with_changes(args=[updated.args[0].with_changes(value=_product(kept)),
                                           updated.args[1]])
        positive = _product([(inner, False), *moved])
        if not negated:
            return self.wrap(positive.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
        out = _product([(cst.UnaryOperation(operator=cst.Minus(), expression=inner), False),
                        *moved]).with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return self.wrap(out, positive)

    def leave_UnaryOperation(self, original, updated: cst.UnaryOperation):
        positive = self.attached(updated.expression)
        if positive is not None and type(updated.operator) is cst.Minus:
            return positive.with_changes(lpar=updated.lpar, rpar=updated.rpar)  # --u → u
        return updated

    def leave_BinaryOperation(self, original, updated: cst.BinaryOperation):
        left, right, operator = updated.left, updated.right, updated.operator
        if self.is_wrapped(left) and isinstance(operator, _LOOSE + _PRODUCT):
            left = self._bare(left)  # (-u * f) + b → -u * f + b
        if self.is_wrapped(right) and isinstance(operator, _LOOSE):
            positive = self.attached(right)
            if positive is None:
                right = self._bare(right)  # a + (u * f) → a + u * f
            else:  # a + (-u * f) → a - u * f; a - (-u * f) → a + u * f
                flipped = cst.Subtract if type(operator) is cst.Add else cst.Add
                operator = flipped(whitespace_before=operator.whitespace_before,
                                   whitespace_after=operator.whitespace_after)
                right = positive
        return updated.with_changes(left=left, operator=operator, right=right)


_LOOSE = (cst.Add, cst.Subtract)
_PRODUCT = (cst.Multiply, cst.Divide)
