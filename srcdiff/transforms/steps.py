"""steps: a tape loop's factors of taped values alone, for every step at once.

The backward loop of a loop reads each step's values from the tape and multiplies adjoints
by factors made of those values alone: ``dh_3 * (1.0 - h_3 * h_3)`` for ``h_3 =
np.tanh(...)``. The factor is the same elementwise operations at every step; for the small
arrays of a recurrent network, each operation costs more in numpy's per-call work than in
arithmetic (three calls a step for tanh's). Here such a factor is made for every step at
once before the loop, by ``rt.each_step``, and the loop reads its step's row:

    for h_2, _t2, h_3 in reversed(_tape1):          # 1.0 - h_3 * h_3 of every step at once
        ...                                   →     h_3_factors = rt.each_step(
        d_t4 = dh_3 * (1.0 - h_3 * h_3)                 lambda h_3: 1.0 - h_3 * h_3, _tape1, (2,))
                                                    for (h_2, _t2, h_3), h_3_factor in zip(
                                                            reversed(_tape1), h_3_factors):
                                                        ...
                                                        d_t4 = dh_3 * h_3_factor

``rt.each_step`` stacks the taped values where at every step each is a small float numpy
array of one shape (then the operations, elementwise, are those of every step, in one
call each) and otherwise calls the function once a step, as the loop did. A factor here is
an operand of a larger expression on a line at the top of the loop's body, made by
``+ - * / **``, unary ``-`` and numpy's elementwise functions in ``_ELEMENTWISE`` of taped
names the loop does not rebind and number literals, at least one taped name: two operations
or more, or one such function (``np.sin(z)``; one product alone costs less than the stack).

Only in the variant for plain numpy arguments (``ctx.dims``): ``srcdiff.jit`` and second
order read the derivative without it.

Invariant after this pass: no such factor is left in a tape loop of that variant.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from srcdiff.runtime import tape as tapes

from ..analysis.values import bound_in, resolve, walk
from ..context import Context
from ..names import Namer, names_in, with_blocks

__all__ = ["rewrite"]

_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power)
_ELEMENTWISE = frozenset({np.exp, np.expm1, np.log, np.log1p, np.sqrt, np.square, np.tanh,
                          np.sin, np.cos, np.tan, np.sinh, np.cosh, np.arctan, np.negative,
                          np.reciprocal, np.abs, np.absolute})


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if not ctx.dims:
        return module
    tape_names = _tapes(module, ctx)
    if not tape_names:
        return module
    namer = Namer(names_in(module) | {ctx.rt})
    return module.with_changes(body=_block(list(module.body), ctx, tape_names, namer))


def _tapes(module: cst.Module, ctx: Context) -> set[str]:
    """The names bound to ``rt.Tape()``."""
    found = set()
    for node in walk(module.body):
        if type(node) is cst.SimpleStatementLine and len(node.body) == 1 and \
                type(node.body[0]) is cst.Assign and len(node.body[0].targets) == 1 and \
                isinstance(node.body[0].targets[0].target, cst.Name) and \
                type(node.body[0].value) is cst.Call and \
                resolve(node.body[0].value.func, ctx, set()) is tapes.Tape:
            found.add(node.body[0].targets[0].target.value)
    return found


def _block(statements: list, ctx: Context, tape_names: set, namer: Namer) -> list:
    out = []
    for stmt in statements:
        if type(stmt) is cst.For and _tape_of(stmt, tape_names) is not None:
            out.extend(_loop(stmt, ctx, tape_names, namer))
        elif type(stmt) in (cst.If, cst.For, cst.While, cst.With, cst.FunctionDef):
            out.append(with_blocks(stmt, lambda block: block.with_changes(
                body=_block(list(block.body), ctx, tape_names, namer))))
        else:
            out.append(stmt)
    return out


def _tape_of(loop: cst.For, tape_names: set) -> str | None:
    """The tape of ``for <names> in reversed(<tape>):`` (no ``else``), else None."""
    it = loop.iter
    if type(it) is cst.Call and type(it.func) is cst.Name and it.func.value == "reversed" \
            and len(it.args) == 1 and type(it.args[0].value) is cst.Name and \
            it.args[0].value.value in tape_names and not loop.orelse:
        return it.args[0].value.value
    return None


def _positions(target) -> dict[str, int | None] | None:
    """Each taped name's position in the tape's entries (None: the entry is the value)."""
    if type(target) is cst.Name:
        return {target.value: None}
    if type(target) is cst.Tuple and all(type(e.value) is cst.Name and
                                             type(e) is not cst.StarredElement
                                             for e in target.elements):
        return {e.value.value: i for i, e in enumerate(target.elements)}
    return None


def _loop(loop: cst.For, ctx: Context, tape_names: set, namer: Namer) -> list:
    positions = _positions(loop.target)
    if positions is None:
        return [loop]
    body = list(loop.body.body)
    taped = set(positions) - bound_in(body)
    finder = _Factors(ctx, taped, bound_in(body) | set(positions), namer)
    new_body = [finder.line(stmt) for stmt in body]
    if not finder.found:
        return [loop]
    tape = _tape_of(loop, tape_names)
    before, rows = [], []
    for text, (expr, leaves) in finder.found.items():
        base = namer.fresh(f"{leaves[0]}_factors")
        row = finder.rows[text]
        lam = cst.Lambda(cst.Parameters([cst.Param(cst.Name(n)) for n in leaves]), expr)
        where = cst.Tuple([cst.Element(cst.Integer(str(positions[n])) if positions[n] is not None
                                       else cst.Name("None")) for n in leaves])
        call = cst.Call(cst.Attribute(cst.Name(ctx.rt), cst.Name("each_step")),
                        [cst.Arg(lam), cst.Arg(cst.Name(tape)), cst.Arg(where)])
        before.append(cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(cst.Name(base))], call)],
            leading_lines=[cst.EmptyLine(comment=cst.Comment(
                f"# {cst.Module([]).code_for_node(expr)} of every step at once"))]))
        rows.append((row, base))
    before[0] = before[0].with_changes(leading_lines=[*loop.leading_lines,
                                                      *before[0].leading_lines])
    target = loop.target if type(loop.target) is cst.Name else \
        loop.target.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    new_target = cst.Tuple([cst.Element(target), *(cst.Element(cst.Name(r)) for r, _ in rows)],
                           lpar=[], rpar=[])
    new_iter = cst.Call(cst.Name("zip"), [cst.Arg(loop.iter),
                                          *(cst.Arg(cst.Name(base)) for _, base in rows)])
    return [*before, loop.with_changes(leading_lines=(), target=new_target, iter=new_iter,
                                       body=loop.body.with_changes(body=new_body))]


class _Factors:
    """Finds and replaces the factors in a loop's top-level lines; ``found``: code ->
    (expression, its taped names in order of appearance), ``rows``: code -> the row's name."""

    def __init__(self, ctx: Context, taped: set, local: set, namer: Namer):
        self.ctx, self.taped, self.local, self.namer = ctx, taped, local, namer
        self.found: dict = {}
        self.rows: dict = {}

    def line(self, stmt):
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
                type(stmt.body[0]) is cst.Assign):
            return stmt
        assign = stmt.body[0]
        value = self._operands(assign.value)
        return stmt if value is assign.value else \
            stmt.with_changes(body=[assign.with_changes(value=value)])

    def _operands(self, node):
        """``node`` with its factors (operands at any depth, never ``node`` itself) replaced."""
        if type(node) is cst.BinaryOperation:
            left, right = self._replaced(node.left), self._replaced(node.right)
            return node if left is node.left and right is node.right else \
                node.with_changes(left=left, right=right)
        if type(node) is cst.UnaryOperation:
            inner = self._replaced(node.expression)
            return node if inner is node.expression else node.with_changes(expression=inner)
        if type(node) is cst.Call:
            args = [a.with_changes(value=self._replaced(a.value)) if a.keyword is None and
                    not a.star else a for a in node.args]
            return node if all(a is b for a, b in zip(args, node.args)) else \
                node.with_changes(args=args)
        return node

    def _replaced(self, node):
        leaves = self._leaves(node)
        if leaves is None or not leaves[1] or leaves[0] < 2 and type(node) is not cst.Call:
            return self._operands(node)
        expr = node.with_changes(lpar=[], rpar=[])
        text = cst.Module([]).code_for_node(expr)
        if text not in self.found:
            names = list(dict.fromkeys(leaves[1]))
            self.found[text] = (expr, names)
            self.rows[text] = self.namer.fresh(f"{names[0]}_factor")
        return cst.Name(self.rows[text])

    def _leaves(self, node) -> tuple[int, list[str]] | None:
        """``(operations, taped names)`` where ``node`` is made of taped names and number
        literals by the operations this pass takes; None otherwise."""
        if type(node) is cst.Name:
            return (0, [node.value]) if node.value in self.taped else None
        if type(node) in (cst.Integer, cst.Float):
            return 0, []
        if type(node) is cst.BinaryOperation and isinstance(node.operator, _OPERATORS):
            left, right = self._leaves(node.left), self._leaves(node.right)
            if left is None or right is None:
                return None
            return left[0] + right[0] + 1, left[1] + right[1]
        if type(node) is cst.UnaryOperation and type(node.operator) in (cst.Minus, cst.Plus):
            inner = self._leaves(node.expression)
            return None if inner is None else (inner[0] + 1, inner[1])
        if type(node) is cst.Call and node.args and all(
                a.keyword is None and not a.star for a in node.args):
            try:
                elementwise = resolve(node.func, self.ctx, self.local) in _ELEMENTWISE
            except TypeError:  # an unhashable object
                elementwise = False
            if not elementwise or len(node.args) != 1:
                return None
            inner = self._leaves(node.args[0].value)
            return None if inner is None else (inner[0] + 1, inner[1])
        return None
