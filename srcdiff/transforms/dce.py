"""dce: remove assignments whose values nobody reads.

Invariant after this pass: every assignment in the generated function (forward
and pullback) is read later, by the forward pass, the pullback or a ``return``,
unless its value comes from a call that may have side effects (``print``, an
unknown function), or it unpacks a value (``a, b = v``: the count is checked) other than
the pair ``np.linalg.slogdet`` (or ``rt.slogdet_spd``) always gives. Adjoint code is pure by construction; in the forward pass
only operations srcdiff knows (rules, non-differentiable functions, copies,
constants) are removed.

    _t3 = np.exp(x)      # never read           →    (removed)
"""

from __future__ import annotations

from collections import Counter

import libcst as cst

import numpy as np

from srcdiff.runtime import linalg

from ..analysis.calls import classify, resolve
from ..context import Context
from ..names import nodes
from .normalize import local_variables

__all__ = ["rewrite"]

_PURE = ("rule", "nondiff", "copy", "constant", "project", "pack")
# calls whose result is always a tuple of this many values: ``sign, logdet = …`` of one that
# nothing reads goes (another unpacking could raise, for a value of another length)
_UNPACKED = {np.linalg.slogdet: 2, linalg.slogdet_spd: 2}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    local_names = local_variables(vjp)
    counts = _read_counts(vjp)  # kept up to date as statements go: no walk of all per round
    while True:
        removed: list = []
        new = _sweep(vjp, {name for name, n in counts.items() if n > 0}, ctx, local_names, removed)
        if not removed:  # nothing went: what is left may still feed only itself (a loop's
            new = _sweep(vjp, _live(vjp, ctx, local_names), ctx, local_names, removed)
            if not removed:  # running sum that nothing reads): the fixpoint
                return module.with_changes(body=[*module.body[:-1], new])
        for node in removed:
            counts.subtract(_read_counts(node))
        vjp = new


def _live(vjp: cst.FunctionDef, ctx: Context, local_names) -> set[str]:
    """The names whose values something that stays reads, through any chain of assignments:
    every name a statement other than a removable assignment reads (a return, a push, a test,
    a call, an assignment with side effects), and every name a live name's assignments read.
    A value carried around a loop that nothing else reads (the running sum ``grad`` does not
    return: ``total_3 = total_2 + _t5``, ``total_1 = total_3``, ``total_2 = total_1``) is
    read by its own assignments only, and not live."""
    feeds: dict[str, set] = {}  # name -> the names its removable assignments read
    roots: set = set()

    def visit(statements, ctx) -> None:
        for stmt in statements:
            if type(stmt) is cst.FunctionDef:  # the pullback: pure by construction
                visit(stmt.body.body, None)
            elif type(stmt) in (cst.If, cst.While):
                roots.update(_read_counts(stmt.test))
                visit(stmt.body.body, ctx)
                orelse = stmt.orelse
                if type(orelse) is cst.If:
                    visit([orelse], ctx)
                elif orelse is not None:
                    visit(orelse.body.body, ctx)
            elif type(stmt) is cst.For:
                roots.update(_read_counts(stmt.iter))
                roots.update(_read_counts(stmt.target))  # (a subscript target reads)
                visit(stmt.body.body, ctx)
                if stmt.orelse is not None:
                    visit(stmt.orelse.body.body, ctx)
            elif _dead(stmt, set(), ctx, local_names):  # removable, were its names not read
                for name in _target_names(stmt.body[0]):
                    feeds.setdefault(name, set()).update(_read_counts(stmt.body[0].value))
            else:
                roots.update(_read_counts(stmt))

    visit(vjp.body.body, ctx)
    live, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in live:
            live.add(name)
            todo.extend(feeds.get(name, ()))
    return live


def _sweep(vjp: cst.FunctionDef, read, ctx: Context, local_names, removed) -> cst.FunctionDef:
    """``vjp`` without the assignments to names not in ``read``; what goes is added to
    ``removed`` (statements, and the parts of an ``if`` that go with them)."""
    return vjp.with_changes(body=vjp.body.with_changes(
        body=_sweep_block(vjp.body.body, read, ctx, local_names, removed)))


def _sweep_block(statements, read, ctx, local_names, removed) -> list:
    """``statements`` without dead assignments; ``ctx`` None inside the (pure) pullback."""
    pairs = []  # (statement, what replaces it: itself, a swept copy, or None)
    for stmt in statements:
        if type(stmt) is cst.FunctionDef:  # the pullback
            new = stmt.with_changes(body=stmt.body.with_changes(
                body=_sweep_block(stmt.body.body, read, None, local_names, removed)))
        elif type(stmt) is cst.If:
            new = _sweep_if(stmt, read, ctx, local_names, removed)
        elif type(stmt) in (cst.For, cst.While):
            body = _sweep_block(stmt.body.body, read, ctx, local_names, removed)
            new = stmt.with_changes(body=stmt.body.with_changes(
                body=body or [cst.SimpleStatementLine([cst.Pass()])]))
        else:
            new = None if _dead(stmt, read, ctx, local_names) else stmt
            if new is None:
                removed.append(stmt)
        pairs.append((stmt, new))
    return _keep_comment(pairs)


def _sweep_if(stmt: cst.If, read, ctx, local_names, removed):
    """The ``if`` with dead code removed from both sides; None when nothing is left."""
    body = _sweep_block(stmt.body.body, read, ctx, local_names, removed)
    orelse = stmt.orelse.body.body if type(stmt.orelse) is cst.Else else []
    other = _sweep_block(orelse, read, ctx, local_names, removed)
    if not other and stmt.orelse is not None and type(stmt.orelse) is not cst.Else:
        removed.append(stmt.orelse)  # an elif goes with the empty else side
    if not body and not other:
        removed.append(stmt.test)
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
    if not (type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign):
        return False
    names = _target_names(stmt.body[0])
    if names is None or any(name in read for name in names):
        return False
    value = stmt.body[0].value
    if len(names) > 1:  # unpacking checks the count: only of a call that always gives it
        return ctx is not None and type(value) is cst.Call and \
            _UNPACKED.get(_resolved(value.func, ctx, local_names)) == len(names) and \
            classify(value, ctx, local_names).kind in _PURE
    if ctx is None:  # the pullback: pure by construction
        return True
    return classify(value, ctx, local_names).kind in _PURE


def _resolved(func, ctx, local_names):
    try:
        return resolve(func, ctx, local_names)
    except TypeError:  # an unhashable object
        return None


def _read_counts(node: cst.CSTNode) -> Counter:
    """How often each name is read in ``node`` (assignment targets of plain names, and tuples
    of them, excluded)."""
    found: Counter = Counter()
    for n in nodes(node, skip=lambda n: type(n) is cst.AssignTarget):
        if type(n) is cst.Name:
            found[n.value] += 1
        elif type(n) is cst.AssignTarget and type(n.target) is not cst.Name and \
                _names_of(n.target) is None:
            found.update(m.value for m in nodes(n.target) if type(m) is cst.Name)
    return found


def _target_names(assign: cst.Assign) -> list[str] | None:
    """The names one assignment binds where its target is a name or a tuple of names
    (``sign, logdet = …``); None for anything else (subscripts, attributes, starred)."""
    if len(assign.targets) != 1:
        return None
    return _names_of(assign.targets[0].target)


def _names_of(target) -> list[str] | None:
    if type(target) is cst.Name:
        return [target.value]
    if type(target) is cst.Tuple and target.elements and all(
            type(e) is cst.Element and type(e.value) is cst.Name for e in target.elements):
        return [e.value.value for e in target.elements]
    return None


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
