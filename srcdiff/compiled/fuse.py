"""Fusion of elementwise chains in the kernel: a value made by an elementwise expression and
read exactly once, later in the same block, is written into its reader.

numba compiles each statement's array expression (arithmetic and numpy ufuncs over arrays,
numbers broadcast) to one loop without temporaries, so a chain of such statements, one
expression after fusion, is one loop. The generated numpy source keeps one operation per
line for people; only the kernel is fused.

Before::

    _t1 = 0.1 * b
    c = np.exp(_t1)
    _t2 = c - x
    d = np.tanh(_t2)

After (``c`` is read again later, so it stays)::

    c = np.exp(0.1 * b)
    d = np.tanh(c - x)
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import libcst as cst
import libcst.matchers as m

__all__ = ["atom", "function"]

_ELEMENTWISE_OPS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power)


def atom(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` in parentheses unless it is a name, a number, a call or already enclosed."""
    if isinstance(expr, (cst.Name, cst.Integer, cst.Float, cst.Call, cst.Attribute,
                         cst.Subscript)) or getattr(expr, "lpar", None):
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def function(fn: cst.FunctionDef, is_ufunc: Callable[[cst.BaseExpression], bool]) -> cst.FunctionDef:
    """``fn`` with its single-use elementwise values written into their readers."""
    while True:
        loads, stores = _counts(fn)
        params = {p.name.value for p in fn.params.params}
        changed = _Fuser(loads, stores, params, is_ufunc)
        new = fn.visit(changed)
        if not changed.fused:
            return new
        fn = new


class _Names(cst.CSTVisitor):
    """Visits the names a node reads and writes: not attribute names, not keywords."""

    def visit_Attribute(self, node):
        node.value.visit(self)
        return False

    def visit_Arg(self, node):
        node.value.visit(self)
        return False


def _counts(node) -> tuple[Counter, Counter]:
    loads, stores = Counter(), Counter()

    class Count(_Names):
        def visit_Name(self, name):
            loads[name.value] += 1

        def visit_AssignTarget(self, target):
            for n in _names(target.target):
                stores[n] += 1
                loads[n] -= 1  # visit_Name counts the target too

        def visit_For(self, node):
            for n in _names(node.target):
                stores[n] += 1
                loads[n] -= 1

    node.visit(Count())
    return loads, stores


def _names(target) -> list[str]:
    if type(target) is cst.Name:
        return [target.value]
    if type(target) in (cst.Tuple, cst.List):
        return [n for e in target.elements for n in _names(e.value)]
    return []


def _reads(expr) -> set[str]:
    found = set()

    class Reads(_Names):
        def visit_Name(self, name):
            found.add(name.value)

    expr.visit(Reads())
    return found


class _Fuser(cst.CSTTransformer):
    """One round: in every block, the first fusable value of each statement list."""

    def __init__(self, loads, stores, params, is_ufunc):
        super().__init__()
        self.loads, self.stores, self.params, self.is_ufunc = loads, stores, params, is_ufunc
        self.fused = False

    def elementwise(self, expr) -> bool:
        if type(expr) in (cst.Name, cst.Integer, cst.Float):
            return True
        if type(expr) is cst.BinaryOperation:
            return isinstance(expr.operator, _ELEMENTWISE_OPS) and self.elementwise(expr.left) \
                and self.elementwise(expr.right)
        if type(expr) is cst.UnaryOperation:
            return type(expr.operator) is cst.Minus and self.elementwise(expr.expression)
        if type(expr) is cst.Call:
            return self.is_ufunc(expr.func) and all(
                a.keyword is None and not a.star and self.elementwise(a.value) for a in expr.args)
        return False

    def leave_IndentedBlock(self, original, updated):
        body = list(updated.body)
        for i, stmt in enumerate(body):
            target = self.candidate(stmt)
            if target is None:
                continue
            name, expr = target
            reads = _reads(expr)
            for j in range(i + 1, len(body)):
                later = body[j]
                if name in _reads(later):
                    if type(later) is not cst.SimpleStatementLine:
                        break  # read inside a loop or branch: computed once here, kept
                    body[j] = later.visit(_Substitute(name, atom(expr)))
                    if stmt.leading_lines:  # its comments stay where they were
                        after = body[i + 1]
                        body[i + 1] = after.with_changes(
                            leading_lines=[*stmt.leading_lines, *after.leading_lines])
                    del body[i]
                    self.fused = True
                    return updated.with_changes(body=body)
                if _assigns(later) & (reads | {name}):
                    break
        return updated

    def candidate(self, stmt):
        """``(name, expression)`` of ``name = expression``, fusable into its one reader."""
        if type(stmt) is not cst.SimpleStatementLine or len(stmt.body) != 1:
            return None
        assign = stmt.body[0]
        if type(assign) is not cst.Assign or len(assign.targets) != 1 or \
                type(assign.targets[0].target) is not cst.Name:
            return None
        name = assign.targets[0].target.value
        if self.stores[name] != 1 or self.loads[name] != 1 or name in self.params:
            return None
        if type(assign.value) in (cst.Name, cst.Integer, cst.Float):
            return None  # a copy of a name: nothing to fuse
        return (name, assign.value) if self.elementwise(assign.value) else None


def _assigns(stmt) -> set[str]:
    found = set()

    class Stores(_Names):
        def visit_AssignTarget(self, target):
            found.update(_names(target.target))

        def visit_For(self, node):
            found.update(_names(node.target))

    stmt.visit(Stores())
    return found


class _Substitute(cst.CSTTransformer):
    def __init__(self, name, expr):
        super().__init__()
        self.name, self.expr = name, expr

    def leave_Name(self, original, updated):
        return self.expr if updated.value == self.name else updated

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        value = updated.value  # an argument needs no parentheses of its own
        if m.matches(original.value, m.Name(self.name)) and getattr(value, "lpar", None):
            value = value.with_changes(lpar=[], rpar=[])
        return updated.with_changes(keyword=original.keyword, value=value)
