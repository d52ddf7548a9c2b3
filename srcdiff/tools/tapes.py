"""The tapes of a generated derivative: which loop pushes each, what an entry keeps, and the
user's loop it belongs to.

The forward pass pushes ``_tape1.push((h_2, x))`` once per iteration of a loop; the
pullback walks ``for h_2, x in reversed(_tape1):`` under the comment
``# adjoint of: for x in xs:  (line 6)``, which names the user's loop. A loop under
``# srcdiff: checkpoint`` (``transforms/checkpoint.py``) pushes its state every K
iterations (``_checkpoints1.push(h_1)``), and the pullback runs each stretch of K
iterations again onto a tape of its own (a push inside the pullback: kind "again").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from ..names import names_in

__all__ = ["TapeLoop", "tape_loops", "forward_and_pullback", "spelled", "simple_statements"]

_ADJOINT = re.compile(r"^# adjoint of: (.*)  \(line (\d+)\)$")


@dataclass(frozen=True)
class TapeLoop:
    """``tape`` (``_tape1``) is pushed by ``loop``, each entry keeping ``names``; ``line`` and
    ``text`` are the user's loop. ``kind``: "tape" (pushed every iteration of the forward
    pass), "checkpoints" (every K iterations), "again" (by the pullback, running a
    checkpointed stretch of the loop again)."""

    tape: str
    names: tuple[str, ...]
    line: int
    text: str
    loop: cst.CSTNode
    kind: str = "tape"

    @property
    def temps(self) -> dict:
        """The value of each temporary (``_t3``) the loop's body assigns, outside inner loops."""
        found = {}
        for stmt in simple_statements(self.loop.body.body):
            small = stmt.body[0]
            if type(small) is cst.Assign and type(small.targets[0].target) is cst.Name \
                    and small.targets[0].target.value.startswith("_t") \
                    and not small.targets[0].target.value.startswith("_tape") \
                    and not (type(small.value) is cst.Name and small.value.value == "None"):
                found[small.targets[0].target.value] = small.value  # (not a placeholder)
        return found


def forward_and_pullback(module: cst.Module):
    """The generated ``def`` (the last statement) and its pullback (a nested ``def``, if any)."""
    vjp = module.body[-1]
    pullbacks = [s for s in vjp.body.body if type(s) is cst.FunctionDef]
    return vjp, (pullbacks[0] if pullbacks else None)


def tape_loops(module: cst.Module) -> list[TapeLoop]:
    """Every tape of the generated ``module``: the forward pass's, in the order it makes them,
    then those the pullback fills."""
    vjp, pullback = forward_and_pullback(module)
    owners: dict[str, tuple] = {}  # tape -> (loop, names)
    _pushes([s for s in vjp.body.body if s is not pullback], None, owners)
    again: dict[str, tuple] = {}
    where: dict[str, tuple[int, str]] = {}
    if pullback is not None:
        _pushes(pullback.body.body, None, again)
        _comments(pullback.body.body, (0, ""), where)
    return [TapeLoop(tape, names, *where.get(tape, (0, "")), loop,
                     "checkpoints" if tape.startswith("_checkpoints") else "tape")
            for tape, (loop, names) in owners.items()] + \
        [TapeLoop(tape, names, *where.get(tape, (0, "")), loop, "again")
         for tape, (loop, names) in again.items() if tape not in owners]


def spelled(value, temps: dict, local_names) -> str:
    """``value`` with the temporaries it reads written out, in the user's names (``h_2`` →
    ``h``), with parentheses only where an operator needs them."""

    class Spell(cst.CSTTransformer):
        def leave_Name(self, original, updated):
            name = updated.value
            if name in temps:
                return temps[name].visit(self)
            base = re.sub(r"_\d+$", "", name)
            return updated.with_changes(value=base) if base != name and base in local_names \
                else updated

        def leave_BinaryOperation(self, original, updated):
            outer = _PRECEDENCE[type(updated.operator)]
            left, right = updated.left, updated.right
            if _precedence(left) < outer or outer == _POWER and _precedence(left) == outer:
                left = _parenthesized(left)
            if _precedence(right) < outer or _precedence(right) == outer and outer != _POWER:
                right = _parenthesized(right)
            return updated.with_changes(left=left, right=right)

    return cst.Module([]).code_for_node(value.visit(Spell()))


_POWER = 5
_PRECEDENCE = {cst.Power: _POWER, cst.Multiply: 3, cst.Divide: 3, cst.MatrixMultiply: 3,
               cst.Modulo: 3, cst.FloorDivide: 3, cst.Add: 2, cst.Subtract: 2}


def _precedence(node) -> int:
    if node.lpar:
        return 9
    if type(node) is cst.BinaryOperation:
        return _PRECEDENCE.get(type(node.operator), 0)
    if type(node) is cst.UnaryOperation:
        return 4
    return 9 if type(node) not in (cst.Comparison, cst.BooleanOperation, cst.IfExp) else 0


def _parenthesized(node):
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _pushes(statements, loop, owners: dict) -> None:
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                pushed = _pushed(small)
                if pushed is not None and loop is not None:
                    owners[pushed[0]] = (loop, pushed[1])
            continue
        inner = stmt if type(stmt) in (cst.For, cst.While) else loop
        for block in _blocks(stmt):
            _pushes(block, inner, owners)


def _pushed(small) -> tuple[str, tuple[str, ...]] | None:
    """``(tape, names)`` of ``_tapeN.push(...)`` (or ``_checkpointsN.push(...)``)."""
    call = small.value if type(small) is cst.Expr else None
    if not (type(call) is cst.Call and type(call.func) is cst.Attribute
            and call.func.attr.value == "push" and type(call.func.value) is cst.Name
            and call.func.value.value.startswith(("_tape", "_checkpoints"))
            and len(call.args) == 1):
        return None
    value = call.args[0].value
    if type(value) is cst.Name:
        names = (value.value,)
    elif type(value) is cst.Tuple:
        names = tuple(e.value.value for e in value.elements if type(e.value) is cst.Name)
    else:
        names = ()
    return call.func.value.value, names


def _comments(statements, last, where: dict):
    """Records, for each tape a pullback loop walks (``for … in reversed(_tapeN)``, ``for _j1 in
    reversed(range(len(_checkpoints1) - 1))``), the last ``# adjoint of:`` comment before it
    (its own included); returns the last one seen."""
    for stmt in statements:
        for line in stmt.leading_lines:
            match = _ADJOINT.match(line.comment.value) if line.comment is not None else None
            if match:
                last = (int(match.group(2)), match.group(1))
        if type(stmt) is cst.For:
            for name in names_in(stmt.iter):
                if name.startswith(("_tape", "_checkpoints")):
                    where.setdefault(name, last)
        if type(stmt) is not cst.SimpleStatementLine:
            for block in _blocks(stmt):
                last = _comments(block, last, where)
    return last


def _blocks(stmt):
    if type(stmt) is cst.SimpleStatementLine or type(stmt) is cst.FunctionDef:
        return
    if type(stmt.body) is cst.IndentedBlock:
        yield stmt.body.body
    orelse = getattr(stmt, "orelse", None)
    if type(orelse) is cst.Else:
        yield orelse.body.body
    elif type(orelse) is cst.If:
        yield [orelse]


def simple_statements(block):
    """The simple statements of a block, inside its branches too (not inside inner loops)."""
    for stmt in block:
        if type(stmt) is cst.SimpleStatementLine:
            yield stmt
        elif type(stmt) is cst.If:
            yield from simple_statements(stmt.body.body)
            if type(stmt.orelse) is cst.Else:
                yield from simple_statements(stmt.orelse.body.body)
            elif type(stmt.orelse) is cst.If:
                yield from simple_statements([stmt.orelse])
