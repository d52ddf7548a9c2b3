"""Activity analysis: which variables need an adjoint.

A variable is *varied* if it depends on a ``wrt`` input through
differentiable operations, and *useful* if the returned value depends on it.
Only variables that are both — *active* — get adjoint code. Results of
non-differentiable operations (comparisons, ``argmax``, ``x.shape``) are
never varied.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ..context import Context
from .calls import Op, classify, reads

__all__ = ["Activity", "analyze", "assignments"]

_FLOWING = ("rule", "copy", "unknown")  # kinds through which a gradient could flow


@dataclass(frozen=True)
class Activity:
    varied: frozenset[str]
    useful: frozenset[str]

    @property
    def active(self) -> frozenset[str]:
        return self.varied & self.useful

    def is_active(self, name: str) -> bool:
        return name in self.varied and name in self.useful


def assignments(funcdef: cst.FunctionDef, ctx: Context, local_names):
    """``(statement, target, op, operand reads)`` for each assignment, in order."""
    found = []
    for stmt in funcdef.body.body:
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Assign):
            assign = stmt.body[0]
            op = classify(assign.value, ctx, local_names)
            inputs = reads(cst.Tuple([cst.Element(e) for e in op.operands]) if op.kind != "unknown"
                           else assign.value, local_names)
            found.append((stmt, assign.targets[0].target.value, op, inputs))
    return found


def analyze(funcdef: cst.FunctionDef, ctx: Context, local_names) -> Activity:
    """Varied and useful variables of a normalized, renamed function body."""
    steps = assignments(funcdef, ctx, local_names)
    varied = set(ctx.wrt)
    for _, target, op, inputs in steps:
        if op.kind in _FLOWING and varied.intersection(inputs):
            varied.add(target)
    useful: set[str] = set()
    last = funcdef.body.body[-1].body[0]
    if isinstance(last, cst.Return) and isinstance(last.value, cst.Name):
        useful.add(last.value.value)
    for _, target, op, inputs in reversed(steps):
        if target in useful and op.kind in _FLOWING:
            useful.update(inputs)
    return Activity(frozenset(varied), frozenset(useful))


def returned_name(funcdef: cst.FunctionDef) -> str | None:
    last = funcdef.body.body[-1].body[0]
    return last.value.value if isinstance(last, cst.Return) and isinstance(last.value, cst.Name) else None


__all__.append("returned_name")
__all__.append("Op")
