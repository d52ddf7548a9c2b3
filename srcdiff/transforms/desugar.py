"""desugar: rewrite shorthand into the plain forms later passes handle.

Invariant after this pass: no augmented or annotated assignments and no
chained comparisons remain; every assignment is ``name = expression``.

    acc += x * w           →    acc = acc + x * w
    y: float = f(x)        →    y = f(x)
    lo < x < hi            →    lo < x and x < hi
"""

from __future__ import annotations

import libcst as cst

from ..context import Context

__all__ = ["rewrite"]

_AUGMENTED = {
    cst.AddAssign: cst.Add, cst.SubtractAssign: cst.Subtract, cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide, cst.PowerAssign: cst.Power,
    cst.MatrixMultiplyAssign: cst.MatrixMultiply, cst.ModuloAssign: cst.Modulo,
    cst.FloorDivideAssign: cst.FloorDivide, cst.BitAndAssign: cst.BitAnd,
    cst.BitOrAssign: cst.BitOr, cst.BitXorAssign: cst.BitXor,
    cst.LeftShiftAssign: cst.LeftShift, cst.RightShiftAssign: cst.RightShift,
}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return module.visit(_Desugar())


def _parenthesized(expr: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation, cst.Comparison,
                         cst.UnaryOperation)) and not expr.lpar:
        return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expr


class _Desugar(cst.CSTTransformer):
    def leave_AugAssign(self, original, updated: cst.AugAssign) -> cst.Assign:
        op = _AUGMENTED[type(updated.operator)]
        value = cst.BinaryOperation(left=updated.target, operator=op(),
                                    right=_parenthesized(updated.value))
        return cst.Assign(targets=[cst.AssignTarget(updated.target)], value=value)

    def leave_AnnAssign(self, original, updated: cst.AnnAssign) -> cst.Assign:
        return cst.Assign(targets=[cst.AssignTarget(updated.target)], value=updated.value)

    def leave_Comparison(self, original, updated: cst.Comparison) -> cst.BaseExpression:
        if len(updated.comparisons) == 1:
            return updated
        parts, left = [], updated.left
        for target in updated.comparisons:
            parts.append(cst.Comparison(left=left, comparisons=[target]))
            left = target.comparator
        result = parts[0]
        for part in parts[1:]:
            result = cst.BooleanOperation(left=result, operator=cst.And(), right=part)
        return result.with_changes(lpar=updated.lpar, rpar=updated.rpar)
