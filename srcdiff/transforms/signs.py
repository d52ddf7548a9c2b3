"""signs: the pullback's negations move to where they cost no array operation.

Rules give adjoints with signs (``-g`` for ``a - b``, ``-g * np.sin(x)`` for ``cos``), and a
sign on an array is one more pass over it. Invariant after this pass, in the pullback: no
statement is of the form ``n = -y`` (``y`` a name) where every read of that value could take
the sign for free, and no expression spends an operation on a sign (or on ``1.0 *``) that a
number factor, an addition or a subtraction in it could take instead.

    d_t8 = -dk                                 (removed)
    dc = d_t8 * 0.5                    →       dc = dk * -0.5
    da = -de                                   (removed)
    da = da + db * x                           da = db * x - de
    d_t4 = -1.0 * e / (_t4 * _t4)              d_t4 = -e / (_t4 * _t4)

Every move is exact in IEEE arithmetic: ``(-a) * b == a * (-b) == -(a * b)``, the same for
``/``, ``a + (-b) == a - b`` and ``(-a) + b == b - a``, zeros' signs included; a sign is never
taken out of a sum (``-(a + b)`` may differ from ``-a - b`` in the sign of a zero). A sign moves
only onto or off a value known to be inexact (a float or complex: a true division, a float
literal, a transcendental function, arithmetic with such), so no dtype changes (``1.0 * v``
is ``v`` only then) and no unsigned value wraps. ``n = -y`` is inlined only at the pullback's
top level, where every read of it comes later in the same straight-line code, nothing
between rebinds ``y``, reads ``n`` in a block or writes an array in place.
"""

from __future__ import annotations

import math

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, rules

from ..analysis.values import Domain, Facts, infer, map_statements, reads, subexpressions
from ..context import Context

__all__ = ["rewrite"]

_ALWAYS_INEXACT = {  # a float (or complex) whatever the argument's dtype
    *(getattr(np, n) for n in ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh",
                               "tanh", "arcsinh", "arccosh", "arctanh", "exp", "exp2", "expm1",
                               "log", "log2", "log10", "log1p", "sqrt", "cbrt", "true_divide",
                               "float64", "float32")),
    *(getattr(math, n) for n in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
                                 "tanh", "exp", "expm1", "log", "log1p", "sqrt")),
    float,
}
_KEEPS_DTYPE = {helpers.unbroadcast, rules.sum_adjoint}  # of their first argument
_IN_PLACE = ("add_into", "add_at")  # runtime calls that write into an array argument
_CODE = cst.Module(body=[])
_PREC = {cst.Add: 10, cst.Subtract: 10, cst.Multiply: 11, cst.Divide: 11}
_OTHER_PREC = {cst.Power: 13, cst.LeftShift: 9, cst.RightShift: 9, cst.BitAnd: 8, cst.BitXor: 7,
               cst.BitOr: 6}  # the rest (//, %, @) bind like *
_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    if not isinstance(vjp, cst.FunctionDef) or not any(
            isinstance(n, cst.UnaryOperation) for n in subexpressions(vjp.body)):
        return module
    facts = infer(vjp, ctx, Domain(_inexact, lambda a, b: a if a == b else None), {})
    body = list(vjp.body.body)
    start = _backward_start(body)
    if start is not None:  # fused: the pullback's statements follow the forward ones
        body[start:] = _pullback(body[start:], facts)
    else:
        body = [s.with_changes(body=s.body.with_changes(body=_pullback(s.body.body, facts)))
                if isinstance(s, cst.FunctionDef) else s for s in body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _backward_start(body) -> int | None:
    for i, stmt in enumerate(body):
        if any(line.comment is not None and line.comment.value == "# backward"
               for line in getattr(stmt, "leading_lines", ())):
            return i
    return None


def _pullback(statements, facts: Facts) -> list:
    statements = list(map_statements(statements, lambda line: _cheaper_line(line, facts)))
    while (found := _inlinable(statements, facts)) is not None:
        i, readers = found
        for j, line in readers.items():
            statements[j] = line
        moved = statements[i].leading_lines  # the `# adjoint of:` comment stays, on the next line
        statements[i + 1] = statements[i + 1].with_changes(
            leading_lines=[*moved, *statements[i + 1].leading_lines])
        del statements[i]
    return statements


def _cheaper_line(line: cst.SimpleStatementLine, facts: Facts) -> cst.SimpleStatementLine:
    assign = line.body[0]
    if len(line.body) != 1 or not isinstance(assign, cst.Assign) or not any(
            isinstance(n, cst.UnaryOperation) or isinstance(n, (cst.Integer, cst.Float)) and
            float(n.value) == 1.0 for n in subexpressions(assign.value)):
        return line  # nothing to move: no sign, no factor of one
    value = _normal(assign.value, facts)
    if _cost(value) < _cost(assign.value):
        return line.with_changes(body=[assign.with_changes(value=value)])
    return line


def _inlinable(statements, facts: Facts):
    """``(i, {j: new line})``: statement ``i`` is ``n = -y`` and each reader ``j`` of its value
    takes the sign for free; None where no statement is."""
    for i, stmt in enumerate(statements):
        alias = _negated_alias(stmt, facts)
        if alias is None:
            continue
        n, y = alias
        readers = _readers(statements, i, n, y)
        if not readers:
            continue
        new = {j: _absorbed(statements[j], n, y, facts) for j in readers}
        if all(line is not None for line in new.values()):
            return i, new
    return None


def _negated_alias(stmt, facts: Facts) -> tuple[str, str] | None:
    assign = _assign(stmt)
    if assign is None or not isinstance(assign.value, cst.UnaryOperation):
        return None  # (after _cheaper_line, -1.0 * y is -y)
    negative, core = _pull(assign.value, facts)
    if negative and isinstance(core, cst.Name) and facts[core.value]:
        return assign.targets[0].target.value, core.value
    return None


def _readers(statements, i: int, n: str, y: str) -> list[int]:
    """The statements after ``i`` that read its value of ``n``, where all are plain assignments
    at this level and nothing up to the last rebinds ``y`` or writes in place; else []."""
    found: list[int] = []
    rebinds_y, writes = False, None
    for j in range(i + 1, len(statements)):
        stmt = statements[j]
        if writes is None and _writes_in_place(stmt):
            writes = j
        assign = _assign(stmt)
        if assign is None:
            if n in reads(stmt) or n in _bound(stmt):
                return []  # read in a block, a return, ...: the sign has nowhere to go
            rebinds_y = rebinds_y or y in reads(stmt) or y in _bound(stmt)
            continue
        target = assign.targets[0].target.value
        if n in reads(assign.value):
            if rebinds_y:
                return []
            found.append(j)
        if target == n:
            break
        rebinds_y = rebinds_y or target == y
    if found and writes is not None and writes <= found[-1]:
        return []
    return found


def _absorbed(line: cst.SimpleStatementLine, n: str, y: str, facts: Facts):
    """``line`` with ``-y`` for ``n``, where that costs no more than ``line`` does; else None."""
    assign = line.body[0]
    negated = cst.UnaryOperation(cst.Minus(), cst.Name(y), lpar=[cst.LeftParen()],
                                 rpar=[cst.RightParen()])
    value = _normal(_substitute(assign.value, n, negated), facts)
    if _cost(value)[0] > _cost(assign.value)[0]:
        return None
    return line.with_changes(body=[assign.with_changes(value=value)])


def _assign(stmt) -> cst.Assign | None:
    """The one ``name = value`` of a simple statement line, else None."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and \
            isinstance(stmt.body[0], cst.Assign) and len(stmt.body[0].targets) == 1 and \
            isinstance(stmt.body[0].targets[0].target, cst.Name):
        return stmt.body[0]
    return None


def _bound(stmt) -> set[str]:
    """Names bound anywhere in ``stmt`` (any way): over-approximated by every name it holds
    as a target, a loop variable or a function."""
    found: set[str] = set()
    for node in subexpressions(stmt):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                found |= reads(target.target)
        elif isinstance(node, cst.For):
            found |= reads(node.target)
        elif isinstance(node, cst.FunctionDef):
            found |= {node.name.value} | reads(node.body)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            found |= reads(node.target)
    return found


def _writes_in_place(stmt) -> bool:
    for node in subexpressions(stmt):
        if isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.Expr)):
            return True
        if isinstance(node, cst.Assign) and not all(
                isinstance(t.target, cst.Name) for t in node.targets):
            return True  # x[k] = v, a.b = v, a, b = ...
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
                node.func.attr.value in _IN_PLACE:
            return True
    return False


def _substitute(expr: cst.BaseExpression, n: str, replacement) -> cst.BaseExpression:
    class Substitute(cst.CSTTransformer):
        def leave_Attribute(self, original, updated):
            return updated.with_changes(attr=original.attr)  # x.n is not the variable n

        def leave_Name(self, original, updated):
            return replacement if updated.value == n else updated

        def leave_Arg(self, original, updated):
            return updated.with_changes(keyword=original.keyword)

    return expr.visit(Substitute())


# ----- inexact values: a float or a complex, so that a sign moves without changing a dtype -----


def _inexact(expr: cst.BaseExpression, facts: Facts):
    if isinstance(expr, (cst.Float, cst.Imaginary)):
        return True
    if isinstance(expr, cst.Name):
        return facts[expr.value]
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        return _inexact(expr.expression, facts)
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, cst.Divide):
            return True
        if isinstance(expr.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.Power,
                                      cst.Modulo, cst.FloorDivide, cst.MatrixMultiply)):
            return _inexact(expr.left, facts) or _inexact(expr.right, facts) or None
    if isinstance(expr, cst.Call):
        func = facts.resolve(expr.func)
        if any(func is f for f in _ALWAYS_INEXACT):
            return True
        if any(func is f for f in _KEEPS_DTYPE) and expr.args and expr.args[0].keyword is None:
            return _inexact(expr.args[0].value, facts)
    return None


# ----- the sign algebra: (negative, expression) with the sign taken out where it is exact -----


def _normal(expr: cst.BaseExpression, facts: Facts) -> cst.BaseExpression:
    """``expr`` with its signs moved; read back from its text first, since a generated tree
    may nest as the code does not (``2 * (g * v)`` without parentheses is ``(2 * g) * v``)."""
    negative, core = _pull(cst.parse_expression(_CODE.code_for_node(expr)), facts)
    return _signed(core, negative, facts)


def _pull(expr: cst.BaseExpression, facts: Facts) -> tuple[bool, cst.BaseExpression]:
    """``(s, e)`` with ``expr == -e`` if ``s`` else ``expr == e``, exactly; ``e`` has no sign
    that could be elsewhere, and no parentheses of its own."""
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and \
            _inexact(expr.expression, facts):
        negative, core = _pull(expr.expression, facts)
        return not negative, core
    if isinstance(expr, cst.BinaryOperation) and type(expr.operator) in _PREC:
        (nl, left), (nr, right) = _pull(expr.left, facts), _pull(expr.right, facts)
        op = type(expr.operator)
        if op is cst.Multiply and _one(left) and _inexact(right, facts):
            return nl != nr, right
        if op in (cst.Multiply, cst.Divide) and _one(right) and _inexact(left, facts):
            return nl != nr, left
        if op in (cst.Multiply, cst.Divide):
            return nl != nr, _binary(left, expr.operator, right)
        minus = (op is cst.Subtract) != nr  # left +/- right, signs of the parts taken out
        if not nl:
            return False, _binary(left, cst.Subtract() if minus else cst.Add(), right)
        if not minus:  # -left + right
            return False, _binary(right, cst.Subtract(), left)
        return False, _binary(_signed(left, True, facts), cst.Subtract(), right)  # -left - right
    return False, expr.with_changes(lpar=[], rpar=[]) if _bare(expr) else expr


def _signed(core: cst.BaseExpression, negative: bool, facts: Facts) -> cst.BaseExpression:
    """``-core``, the sign on a number factor where there is one (free), else on an inexact
    factor (so that no integer or unsigned operand is negated), else on the whole."""
    if not negative:
        return core
    if isinstance(core, cst.Float) or isinstance(core, cst.Integer) and int(core.value, 0) != 0:
        return cst.UnaryOperation(cst.Minus(), core)  # an integer 0 has no negative zero
    if isinstance(core, cst.BinaryOperation) and isinstance(core.operator, (cst.Multiply, cst.Divide)):
        left, right = _unwrap(core.left), _unwrap(core.right)
        for takes in (lambda part, other: _literal_factor(part, other, facts),
                      lambda part, other: _inexact(part, facts)):
            if takes(left, right):
                return _binary(_signed(left, True, facts), core.operator, right)
            if takes(right, left):
                return _binary(left, core.operator, _signed(right, True, facts))
    return cst.UnaryOperation(cst.Minus(), _parens(core, 12))


def _literal_factor(part, other, facts: Facts) -> bool:
    """Whether a number literal in the product ``part`` can take a sign: a float, or a nonzero
    integer beside an inexact value (``-2 * u`` fails for an unsigned ``u``)."""
    if isinstance(part, cst.Float):
        return True
    if isinstance(part, cst.Integer):
        return int(part.value, 0) != 0 and bool(_inexact(other, facts))
    if isinstance(part, cst.BinaryOperation) and isinstance(part.operator, (cst.Multiply, cst.Divide)):
        left, right = _unwrap(part.left), _unwrap(part.right)
        return _literal_factor(left, right, facts) or _literal_factor(right, left, facts)
    return False


def _one(expr) -> bool:
    return isinstance(expr, (cst.Integer, cst.Float)) and float(expr.value) == 1.0


def _bare(expr) -> bool:
    """Whether the parentheses around ``expr`` can go (they are put back where needed)."""
    return isinstance(expr, _ATOMS) or isinstance(expr, cst.BinaryOperation) and \
        type(expr.operator) in _PREC or isinstance(expr, cst.UnaryOperation) and \
        not isinstance(expr.operator, cst.Not)


def _unwrap(expr):
    return expr.with_changes(lpar=[], rpar=[]) if _bare(expr) and expr.lpar else expr


def _precedence(expr) -> int:
    if expr.lpar:
        return 14
    if isinstance(expr, cst.BinaryOperation):
        return _PREC.get(type(expr.operator), _OTHER_PREC.get(type(expr.operator), 11))
    if isinstance(expr, cst.UnaryOperation):
        return 0 if isinstance(expr.operator, cst.Not) else 12
    return 14 if isinstance(expr, _ATOMS) else 0


def _parens(expr, below: int):
    if _precedence(expr) < below:
        return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expr


def _binary(left, op, right) -> cst.BinaryOperation:
    prec = _PREC[type(op)]
    return cst.BinaryOperation(_parens(_unwrap(left), prec), op, _parens(_unwrap(right), prec + 1))


def _cost(expr) -> tuple[int, int]:
    """(array operations, factors of one): a sign on a number literal is free."""
    ops = ones = 0
    for node in subexpressions(expr):
        if isinstance(node, cst.UnaryOperation):
            ops += not isinstance(node.expression, (cst.Integer, cst.Float))
        elif isinstance(node, cst.BinaryOperation):
            ops += 1
            ones += any(_one(_unwrap(part.expression if isinstance(part, cst.UnaryOperation)
                                     else part)) for part in (node.left, node.right))
    return ops, ones
