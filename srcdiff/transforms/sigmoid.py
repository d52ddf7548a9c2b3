"""sigmoid: the lines of a logistic sigmoid → one ``rt.sigmoid`` call.

Written out, ``1.0 / (1.0 + np.exp(-z))`` is four operations, and reverse mode
differentiates each: the quotient (``-g / (t * t)``), the sum, the exponential (times
``exp(-z)``, which overflows to inf for ``z`` below about -709: 0 * inf is NaN) and the
negation, keeping ``exp(-z)`` and ``1 + exp(-z)`` for the backward pass. A careful person
writes ``g * s * (1 - s)``, keeping ``s``. After ``normalize`` this pass finds, in
consecutive statements of one block,

    m = -z                                    # or np.negative(z)
    e = np.exp(m)
    t = 1.0 + e                               # or e + 1.0; 1 for 1.0 anywhere
    s = 1.0 / t

and writes ``s = rt.sigmoid(z)``: the same operations in one array, so the same values,
with the adjoint ``g * s * (1.0 - s)`` and the tangent ``dz * s * (1.0 - s)`` (forward
mode reads this call too). Only where ``m``, ``e`` and ``t`` are each spelled nowhere else
(one assignment, one read) and are not ``z``: ``normalize``'s temporaries always qualify.
The new statement keeps the first line's comments (its ``# line N:`` marker).
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.calls import resolve
from ..analysis.values import number
from ..context import Context
from ..names import occurrences, with_blocks
from .normalize import local_variables
from .softmax import assigned

__all__ = ["rewrite", "operand_of", "Lines"]


def operand_of(value, fn, ctx: Context, local_names) -> str | None:
    """``x`` of ``fn(x)`` (one name, no keywords), else None."""
    if type(value) is cst.Call and len(value.args) == 1 and \
            value.args[0].keyword is None and not value.args[0].star and \
            type(value.args[0].value) is cst.Name and \
            resolve(value.func, ctx, local_names) is fn:
        return value.args[0].value.value
    return None


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return Lines.rewrite(_Finder, module, ctx)


class Lines:
    """A finder of runs of ``size`` consecutive statements of one block (after ``normalize``)
    that ``window`` reads as one value: the run becomes one statement binding that value to
    the last statement's target, under the first one's comments (its ``# line N:``)."""

    size = 0

    def __init__(self, ctx: Context, local_names, counts):
        self.ctx, self.local_names, self.counts = ctx, local_names, counts

    @staticmethod
    def rewrite(finder, module: cst.Module, ctx: Context) -> cst.Module:
        funcdef = module.body[0]
        lines = finder(ctx, local_variables(funcdef), occurrences(funcdef))
        return module.with_changes(body=[funcdef.with_changes(body=lines.block(funcdef.body)),
                                         *module.body[1:]])

    def block(self, block):
        body: list = []
        for stmt in block.body:
            if type(stmt) in (cst.If, cst.For, cst.While, cst.With):
                stmt = with_blocks(stmt, self.block)
            body.append(stmt)
            found = self.window(body[-self.size:]) if len(body) >= self.size else None
            if found is not None:
                first = body[-self.size]
                del body[-self.size:]
                line = stmt.with_changes(body=[stmt.body[0].with_changes(value=found)],
                                         leading_lines=first.leading_lines)
                body.append(line)
        return block.with_changes(body=body)

    def window(self, stmts):
        """The value the statements compute, as one expression, else None."""
        raise NotImplementedError

    def once(self, name: str) -> bool:
        """``name`` spelled twice in the function (assigned, read), and not a parameter."""
        return self.counts[name] == 2 and name not in self.ctx.params


class _Finder(Lines):
    size = 4

    def window(self, stmts):
        """``rt.sigmoid(z)`` where the four statements are a sigmoid's lines, else None."""
        parts = [assigned(s) for s in stmts]
        if any(p is None for p in parts):
            return None
        (m, negated), (e, exp), (t, total), (s, quotient) = parts
        if not all(self.once(n) for n in (m, e, t)) or len({m, e, t, s}) != 4:
            return None
        z = self.negation(negated)
        if z is None or z in (m, e, t) or self.operand_of(exp, np.exp) != m:
            return None
        if not self.one_plus(total, e) or not self.one_over(quotient, t):
            return None
        rt = cst.Name(self.ctx.rt)
        return cst.Call(cst.Attribute(rt, cst.Name("sigmoid")), [cst.Arg(cst.Name(z))])

    def negation(self, value) -> str | None:
        """``z`` of ``-z`` or ``np.negative(z)``."""
        if type(value) is cst.UnaryOperation and type(value.operator) is cst.Minus and \
                type(value.expression) is cst.Name and not value.expression.lpar:
            return value.expression.value
        return self.operand_of(value, np.negative)

    def operand_of(self, value, fn) -> str | None:
        return operand_of(value, fn, self.ctx, self.local_names)

    def one_plus(self, value, e: str) -> bool:
        """``1.0 + e`` or ``e + 1.0`` (``1`` as well)."""
        if not (type(value) is cst.BinaryOperation and type(value.operator) is cst.Add):
            return False
        sides = [(value.left, value.right), (value.right, value.left)]
        return any(number(a) == 1 and type(b) is cst.Name and b.value == e for a, b in sides)

    def one_over(self, value, t: str) -> bool:
        """``1.0 / t`` (``1`` as well)."""
        return type(value) is cst.BinaryOperation and \
            type(value.operator) is cst.Divide and number(value.left) == 1 and \
            type(value.right) is cst.Name and value.right.value == t
