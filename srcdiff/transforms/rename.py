"""rename: give every reassigned variable a new version, so each name is assigned once.

Invariant after this pass (for the straight-line bodies srcdiff accepts today):
no name is assigned twice and no parameter is reassigned, so the adjoint pass
can read any primal value after the forward pass has run, with no tape.

    h = np.tanh(h)        →    h_1 = np.tanh(h)
    h = h * w                  h_2 = h_1 * w
    return h                   return h_2
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import Namer, names_in
from .normalize import local_variables

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    namer = Namer(names_in(module) | {ctx.rt})
    funcdef = module.body[0]
    local_names = local_variables(funcdef)
    current = {p: p for p in ctx.params}
    body = []
    for stmt in funcdef.body.body:
        renamed = stmt.visit(_Uses(current, local_names))
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Assign):
            assign = renamed.body[0]
            target = stmt.body[0].targets[0].target.value
            new = namer.version(target) if target in current else target
            current[target] = new
            assign = assign.with_changes(targets=[cst.AssignTarget(cst.Name(new))])
            renamed = renamed.with_changes(body=[assign])
        body.append(renamed)
    funcdef = funcdef.with_changes(body=funcdef.body.with_changes(body=body))
    return module.with_changes(body=[funcdef])


class _Uses(cst.CSTTransformer):
    """Replaces reads of local variables with their current version."""

    def __init__(self, current: dict[str, str], local_names: frozenset[str]):
        self.current, self.local_names = current, local_names

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return True

    def leave_Attribute(self, original, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)  # never rename the attribute itself

    def visit_Arg(self, node: cst.Arg) -> bool:
        return True

    def leave_Arg(self, original, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> bool:
        return False

    def leave_Name(self, original, updated: cst.Name) -> cst.Name:
        if updated.value in self.current:
            return updated.with_changes(value=self.current[updated.value])
        return updated
