"""dce: remove assignments whose values nobody reads.

Invariant after this pass: every assignment in the generated function (forward
and pullback) is read later, by the forward pass, the pullback or a ``return``,
unless its value comes from a call that may have side effects (``print``, an
unknown function). Adjoint code is pure by construction; in the forward pass
only operations srcdiff knows (rules, non-differentiable functions, copies,
constants) are removed.

    _t3 = np.exp(x)      # never read           →    (removed)
"""

from __future__ import annotations

import libcst as cst

from ..analysis.calls import classify
from ..context import Context
from ..names import names_in
from .normalize import local_variables

__all__ = ["rewrite"]

_PURE = ("rule", "nondiff", "copy", "constant")


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[0]
    local_names = local_variables(vjp)
    while True:
        new = _sweep(vjp, ctx, local_names)
        if new.deep_equals(vjp):
            return module.with_changes(body=[new])
        vjp = new


def _sweep(vjp: cst.FunctionDef, ctx: Context, local_names) -> cst.FunctionDef:
    read = _reads(vjp)
    kept = [s for s in vjp.body.body if not _dead(s, read, ctx, local_names)]
    body = []
    for stmt in _keep_comment(vjp.body.body, kept):
        if isinstance(stmt, cst.FunctionDef):  # the pullback
            inner = [s for s in stmt.body.body if not _dead(s, read, None, local_names)]
            stmt = stmt.with_changes(body=stmt.body.with_changes(
                body=_keep_comment(stmt.body.body, inner)))
        body.append(stmt)
    return vjp.with_changes(body=vjp.body.with_changes(body=body))


def _dead(stmt, read: set[str], ctx, local_names) -> bool:
    if not (isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Assign)):
        return False
    target = stmt.body[0].targets[0].target
    if not isinstance(target, cst.Name) or target.value in read:
        return False
    if ctx is None:  # the pullback: pure by construction
        return True
    return classify(stmt.body[0].value, ctx, local_names).kind in _PURE


def _reads(node: cst.CSTNode) -> set[str]:
    """Names read anywhere in ``node`` (assignment targets of plain names excluded)."""
    found: set[str] = set()

    class Reads(cst.CSTVisitor):
        def visit_AssignTarget(self, n: cst.AssignTarget) -> bool:
            if not isinstance(n.target, cst.Name):
                found.update(names_in(n.target))
            return False

        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

    node.visit(Reads())
    return found


def _keep_comment(before: list, after: list) -> list:
    """Move a removed statement's comments onto the statement that now comes first in its place."""
    kept = {id(s) for s in after}
    result, carry = [], []
    for stmt in before:
        if id(stmt) not in kept:
            carry.extend(line for line in stmt.leading_lines if line.comment is not None)
            continue
        if carry and not any(line.comment is not None for line in stmt.leading_lines):
            stmt = stmt.with_changes(leading_lines=[*carry, *stmt.leading_lines])
        carry = []
        result.append(stmt)
    return result
