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
from ..names import names_in, nodes
from .normalize import local_variables

__all__ = ["rewrite"]

_PURE = ("rule", "nondiff", "copy", "constant", "project", "pack")


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    local_names = local_variables(vjp)
    while True:
        new = _sweep(vjp, ctx, local_names)
        if new.deep_equals(vjp):
            return module.with_changes(body=[*module.body[:-1], new])
        vjp = new


def _sweep(vjp: cst.FunctionDef, ctx: Context, local_names) -> cst.FunctionDef:
    read = _reads(vjp)
    return vjp.with_changes(body=vjp.body.with_changes(
        body=_sweep_block(vjp.body.body, read, ctx, local_names)))


def _sweep_block(statements, read, ctx, local_names) -> list:
    """``statements`` without dead assignments; ``ctx`` None inside the (pure) pullback."""
    pairs = []  # (statement, what replaces it: itself, a swept copy, or None)
    for stmt in statements:
        if isinstance(stmt, cst.FunctionDef):  # the pullback
            new = stmt.with_changes(body=stmt.body.with_changes(
                body=_sweep_block(stmt.body.body, read, None, local_names)))
        elif isinstance(stmt, cst.If):
            new = _sweep_if(stmt, read, ctx, local_names)
        elif isinstance(stmt, (cst.For, cst.While)):
            body = _sweep_block(stmt.body.body, read, ctx, local_names)
            new = stmt.with_changes(body=stmt.body.with_changes(
                body=body or [cst.SimpleStatementLine([cst.Pass()])]))
        else:
            new = None if _dead(stmt, read, ctx, local_names) else stmt
        pairs.append((stmt, new))
    return _keep_comment(pairs)


def _sweep_if(stmt: cst.If, read, ctx, local_names):
    """The ``if`` with dead code removed from both sides; None when nothing is left."""
    body = _sweep_block(stmt.body.body, read, ctx, local_names)
    orelse = stmt.orelse.body.body if isinstance(stmt.orelse, cst.Else) else []
    other = _sweep_block(orelse, read, ctx, local_names)
    if not body and not other:
        return None
    if not body:
        return stmt.with_changes(test=cst.UnaryOperation(cst.Not(), stmt.test),
                                 body=stmt.orelse.body.with_changes(body=other), orelse=None)
    stmt = stmt.with_changes(body=stmt.body.with_changes(body=body))
    if not other:
        return stmt.with_changes(orelse=None)
    return stmt.with_changes(orelse=stmt.orelse.with_changes(
        body=stmt.orelse.body.with_changes(body=other)))


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
    for n in nodes(node, skip=lambda n: isinstance(n, cst.AssignTarget)):
        if type(n) is cst.Name:
            found.add(n.value)
        elif isinstance(n, cst.AssignTarget) and not isinstance(n.target, cst.Name):
            found.update(names_in(n.target))
    return found


def _keep_comment(pairs) -> list:
    """The kept statements; a removed statement's comments move to the next kept one."""
    result, carry = [], []
    for stmt, new in pairs:
        if new is None:
            carry.extend(line for line in stmt.leading_lines if line.comment is not None)
            continue
        if carry and not any(line.comment is not None for line in new.leading_lines):
            new = new.with_changes(leading_lines=[*carry, *new.leading_lines])
        carry = []
        result.append(new)
    return result
