"""simplify: fold constants and drop arithmetic that does nothing.

Invariant after this pass: in the pullback, no ``* 1``, ``1 *``, ``/ 1``, ``** 1``,
``+ 0``, ``0 +``, ``- 0`` or ``- -`` remains, arithmetic on two number literals
is folded, and no ``rt.guard`` wraps a nonzero constant or a base raised to a
positive integer power (neither can make an infinite derivative), or guards for an adjoint
that is a nonzero constant (``rt.guard(n, 1.0)`` is ``n``: it changes only where g is 0). Inlined rules produce these when an operand is a constant. The forward
pass is the user's code and is left exactly as written (``x * 1.0`` makes a float
copy there; dropping it could change a dtype).

    d_t2 = d_t3 * 2 * _t2 ** (2 - 1)    →    d_t2 = d_t3 * 2 * _t2
"""

from __future__ import annotations

import libcst as cst

from ..analysis.values import map_statements, subexpressions
from ..context import Context

__all__ = ["rewrite", "simplify_expression", "simplify_line"]

_FOLD = {
    cst.Add: lambda a, b: a + b, cst.Subtract: lambda a, b: a - b,
    cst.Multiply: lambda a, b: a * b,
}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    body = [s.with_changes(body=s.body.with_changes(body=map_statements(s.body.body, simplify_line)))
            if type(s) is cst.FunctionDef else s for s in vjp.body.body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(body=vjp.body.with_changes(body=body))])


def simplify_line(line: cst.SimpleStatementLine, adjoints=None) -> cst.SimpleStatementLine:
    """Only lines where a rule below applies are visited; the others are kept as they are.

    ``adjoints``: where given, the names known to hold adjoints (float arrays or numbers);
    then a line whose value the rules would leave without arithmetic on a number or on one
    of them is simplified only where that holds node by node. After the seed is folded, a
    rule's ``g * m`` may become ``1.0 * m`` of a primal ``m``, a mask of booleans: dropping
    the ``1.0 *`` would make the adjoint that mask itself, and ``dx + m`` of two such is a
    logical or (1, not 2); ``2.0 * m`` or ``dx + m`` are arithmetic, and correct."""
    if not any(_applies(n) for n in subexpressions(line)):
        return line
    simplified = line.visit(_Simplify())
    if adjoints is None or all(_floating(small.value, adjoints) for small in simplified.body
                               if type(small) is cst.Assign):
        return simplified
    return line.visit(_Simplify(adjoints))


def _applies(node: cst.CSTNode) -> bool:
    """Whether a rule of :class:`_Simplify` changes ``node`` as it is. Where none changes any
    node of a line, none changes the nodes rebuilt from their (unchanged) children either."""
    kind = type(node)
    if kind is cst.Call:
        return _needless_guard(node) is not None
    if kind is cst.BinaryOperation:
        op, left, right = type(node.operator), node.left, node.right
        a, b = _number(left), _number(right)
        return op is cst.Power and _guarded(left) is not None and isinstance(b, int) and b >= 1 \
            or a is not None and b is not None and op in _FOLD \
            or op in (cst.Multiply, cst.Divide, cst.Power) and b == 1 \
            or op in (cst.Add, cst.Subtract) and b == 0 \
            or op is cst.Multiply and a == 1 or op is cst.Add and a == 0 \
            or op is cst.Subtract and type(right) is cst.UnaryOperation and \
            type(right.operator) is cst.Minus and not right.lpar
    if kind is cst.UnaryOperation:
        return type(node.operator) is cst.Minus and type(node.expression) is cst.UnaryOperation \
            and type(node.expression.operator) is cst.Minus
    return kind is cst.FormattedString  # subexpressions does not look inside: the visit does


def simplify_expression(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` simplified; the same object where no rule applies (see :func:`_applies`)."""
    if any(_applies(n) for n in subexpressions(expr)):
        return expr.visit(_Simplify())
    return expr


def _number(node: cst.BaseExpression):
    """The value of a number literal (``2``, ``0.5``, ``-1``), else None."""
    sign = 1
    if type(node) is cst.UnaryOperation and type(node.operator) is cst.Minus:
        sign, node = -1, node.expression
    if type(node) is cst.Integer:
        return sign * int(node.value)
    if type(node) is cst.Float:
        return sign * float(node.value)
    return None


def _literal(value) -> cst.BaseExpression:
    if value < 0:
        return cst.UnaryOperation(cst.Minus(), _literal(-value))
    return cst.Integer(str(value)) if isinstance(value, int) else cst.Float(repr(value))


def _keep_parens(original: cst.BaseExpression, replacement: cst.BaseExpression):
    if original.lpar and not getattr(replacement, "lpar", None) and not isinstance(
            replacement, (cst.Name, cst.BaseNumber, cst.Attribute, cst.Call, cst.Subscript)):
        return replacement.with_changes(lpar=original.lpar, rpar=original.rpar)
    return replacement


def _guarded(node) -> cst.BaseExpression | None:
    """The value inside ``rt.guard(value, g)``, else None."""
    if type(node) is cst.Call and type(node.func) is cst.Attribute and \
            node.func.attr.value == "guard" and len(node.args) == 2:
        return node.args[0].value
    return None


def _needless_guard(node) -> cst.BaseExpression | None:
    """The value of ``rt.guard(value, g)`` where the guard changes nothing: a nonzero
    constant ``value`` (``x / 2.0``) or a nonzero constant adjoint ``g`` (the guard puts 1
    only where g is 0); else None."""
    value = _guarded(node)
    if value is None or _number(value) in (None, 0) and _number(node.args[1].value) in (None, 0):
        return None
    if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation, cst.BooleanOperation,
                          cst.Comparison, cst.IfExp)) and not value.lpar:
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])  # x / (a * a)
    return value


def _floating(expr: cst.BaseExpression, adjoints) -> bool:
    """Whether ``expr`` is provably a number, or arithmetic that makes booleans numbers: a
    number literal, a name of ``adjoints``, or ``+ - * / **`` with either operand such."""
    if adjoints is None or _number(expr) is not None:
        return True
    if type(expr) is cst.Name:
        return expr.value in adjoints
    if type(expr) is cst.BinaryOperation and not isinstance(
            expr.operator, (cst.BitAnd, cst.BitOr, cst.BitXor, cst.LeftShift, cst.RightShift)):
        return _floating(expr.left, adjoints) or _floating(expr.right, adjoints)
    if type(expr) is cst.UnaryOperation and type(expr.operator) in (cst.Minus, cst.Plus):
        return _floating(expr.expression, adjoints)
    return False


class _Simplify(cst.CSTTransformer):
    def __init__(self, adjoints=None):
        super().__init__()
        self.adjoints = adjoints

    def leave_Call(self, original, updated: cst.Call):
        value = _needless_guard(updated)
        return value if value is not None else updated

    def leave_BinaryOperation(self, original, updated: cst.BinaryOperation):
        op, left, right = type(updated.operator), updated.left, updated.right
        a, b = _number(left), _number(right)
        if op is cst.Power and _guarded(left) is not None and isinstance(b, int) and b >= 1:
            left = _guarded(left)  # x ** 2 is finite everywhere: no guard
            updated = updated.with_changes(left=left)
        if a is not None and b is not None and op in _FOLD:
            return _keep_parens(updated, _literal(_FOLD[op](a, b)))
        if (op is cst.Multiply and b == 1 or op is cst.Divide and b == 1 or
                op is cst.Power and b == 1 or op in (cst.Add, cst.Subtract) and b == 0) and \
                _floating(left, self.adjoints):
            return _keep_parens(updated, left)
        if (op is cst.Multiply and a == 1 or op is cst.Add and a == 0) and \
                _floating(right, self.adjoints):
            return _keep_parens(updated, right)
        if op is cst.Subtract and type(right) is cst.UnaryOperation and \
                type(right.operator) is cst.Minus and not right.lpar:
            return updated.with_changes(operator=cst.Add(), right=right.expression)
        return updated

    def leave_UnaryOperation(self, original, updated: cst.UnaryOperation):
        inner = updated.expression
        if type(updated.operator) is cst.Minus and type(inner) is cst.UnaryOperation \
                and type(inner.operator) is cst.Minus:
            return _keep_parens(updated, inner.expression)
        return updated
