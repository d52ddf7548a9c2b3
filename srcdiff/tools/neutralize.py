"""Make the statement that an error points at harmless, so that compiling goes on to the next.

``check`` reports every problem of a function at once: it compiles, records the located
error, rewrites the statement on that line and compiles again. The rewrite keeps every
line where it was (errors after it still point at the user's lines) and keeps the names
the statement binds bound, to constants, so the lines after it are checked as they are:

    u = np.unwrap(h) + h      →  u = rt.stop_gradient(np.unwrap(h)) + h   (the refused call)
                              →  u = 0.0                                  (if refused again)
    x += 1.0                  →  pass
    try:                      →  if True:
        v = np.sum(u)                v = np.sum(u)
    except ValueError:
        v = 0.0                      pass
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ..errors import SrcdiffSyntaxError

__all__ = ["neutralized"]

_ZERO = cst.Float("0.0")


def neutralized(module: cst.Module, snippet_line: int, col: int, error: Exception, level: int,
                rt: str) -> cst.Module | None:
    """``module`` with the statement on ``snippet_line`` made harmless: at ``level`` 0 the
    call the error points at (``col``), or else the statement's value, is cut off from
    differentiation; at 1 the value is replaced by a constant; None where there is no
    statement to change (the error is about the ``def`` itself)."""
    funcdef = module.body[0]
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    target = _innermost(funcdef.body, snippet_line, positions)
    if target is None:
        return None
    syntax = isinstance(error, SrcdiffSyntaxError)
    call = None if syntax or level else _call_at(target, snippet_line, col, positions)
    if call is not None:  # the refused call alone: what it reads stays differentiated
        new = target.deep_replace(call, _stopped(call, rt))
    elif type(target) is cst.SimpleStatementLine:
        final = funcdef.body.body[-1] is target
        keep_value = level == 0 and not syntax
        new = target.with_changes(body=[_small(s, keep_value, final, rt) for s in target.body])
        if new.deep_equals(target):
            return None
    else:
        span = positions[target].end.line - positions[target].start.line
        new = _compound(target, span, positions)
    changed = module.deep_replace(target, new)
    if changed.code.count("\n") != module.code.count("\n"):  # pragma: no cover - a safeguard:
        return None  # lines that moved would point later errors at the wrong lines
    return changed


def _call_at(stmt, line: int, col: int, positions):
    """The innermost call of ``stmt`` that starts at ``line``, ``col``."""
    from ..names import nodes

    found = [n for n in nodes(stmt) if type(n) is cst.Call and n in positions
             and (positions[n].start.line, positions[n].start.column) == (line, col)]
    return min(found, key=lambda n: len(cst.Module([]).code_for_node(n)), default=None)


def _stopped(value, rt: str) -> cst.Call:
    return cst.Call(cst.Attribute(cst.Name(rt), cst.Name("stop_gradient")), [cst.Arg(value)])


def _innermost(block, line: int, positions):
    """The innermost statement of ``block`` that starts on ``line`` (or, for a simple
    statement written over several lines, holds it)."""
    for stmt in block.body:
        where = positions[stmt]
        if not where.start.line <= line <= where.end.line:
            continue
        if type(stmt) is cst.SimpleStatementLine:
            return stmt
        header_end = positions[stmt.body].start.line if type(stmt.body) is cst.IndentedBlock \
            else where.start.line
        if line <= header_end and where.start.line == line:
            return stmt
        for inner in _blocks(stmt):
            found = _innermost(inner, line, positions)
            if found is not None:
                return found
        return stmt if where.start.line == line else None
    return None


def _blocks(stmt):
    """The indented blocks of a compound statement."""
    for name in ("body", "orelse", "finalbody"):
        part = getattr(stmt, name, None)
        if type(part) is cst.IndentedBlock:
            yield part
        elif type(part) in (cst.Else, cst.Finally):
            yield part.body
        elif type(part) is cst.If:  # elif
            yield cst.IndentedBlock(body=[part])
    for handler in getattr(stmt, "handlers", ()):
        yield handler.body


def _small(stmt: cst.BaseSmallStatement, keep_value: bool, final: bool, rt: str):
    """One small statement made harmless."""
    if type(stmt) in (cst.Assign, cst.AnnAssign) and stmt.value is not None:
        targets = stmt.targets if type(stmt) is cst.Assign else [cst.AssignTarget(stmt.target)]
        target = targets[0].target
        if type(target) is cst.Name or type(target) in (cst.Tuple, cst.List) and all(
                type(e.value) is cst.Name for e in target.elements):
            return cst.Assign(targets=[cst.AssignTarget(target)],
                              value=_harmless(stmt.value, target, keep_value, rt))
        return cst.Pass()
    if type(stmt) is cst.Return and final:
        return stmt.with_changes(value=_harmless(stmt.value, None, keep_value, rt)) \
            if stmt.value is not None else stmt
    return cst.Pass()


def _harmless(value, target, keep_value: bool, rt: str) -> cst.BaseExpression:
    """``rt.stop_gradient(value)`` where the value may stay, else constants of its structure."""
    if type(value) is cst.Tuple:
        return value.with_changes(elements=[e.with_changes(value=_harmless(
            e.value, None, keep_value, rt)) for e in value.elements])
    if type(value) is cst.Dict:
        return value.with_changes(elements=[e.with_changes(value=_harmless(
            e.value, None, keep_value, rt)) for e in value.elements])
    if keep_value:
        return _stopped(value, rt)
    if type(target) in (cst.Tuple, cst.List):
        return cst.Tuple([cst.Element(_ZERO) for _ in target.elements])
    return _ZERO


def _compound(stmt, span: int, positions):
    """``try``/``with`` keep their body under ``if True:``; other compound statements become
    ``pass``; either way on as many lines as before."""
    blank = [cst.EmptyLine()]
    if type(stmt) in (cst.Try, cst.TryStar, cst.With) and type(stmt.body) is cst.IndentedBlock:
        body = list(stmt.body.body)
        used = positions[stmt.body].end.line - positions[stmt].start.line
        if span > used:
            body.append(cst.SimpleStatementLine([cst.Pass()], leading_lines=blank * (span - used - 1)))
        return cst.If(test=cst.Name("True"), body=stmt.body.with_changes(body=body),
                      leading_lines=stmt.leading_lines)
    return cst.SimpleStatementLine([cst.Pass()], leading_lines=[*stmt.leading_lines, *blank * span])
