"""release: a forward loop's step lets go of the arrays it made and nothing reads again.

A name bound in a loop's body holds its last value after the loop, until the function
returns: in a gradient that runs its backward pass in the same function (``fuse``), through
the whole backward pass. A temporary that is a view keeps all of its base alive: an LSTM's
``_t5 = xs_Wx[t]`` keeps the (10, 16, 256) rows ``batch`` made before the loop, which the
``del`` after the loop meant to free. Held, that memory is not there for the backward
pass's arrays, which take fresh pages instead (an LSTM's gradient: ~100 page faults a call
more, ~5 % of its time); and in the loop, each step's new arrays are made while the last
step's still live. Here the end of each step deletes such names, as returning from the
forward function would:

    for t in range(xs.shape[0]):                 for t in range(xs.shape[0]):
        h_2 = h_1                                    h_2 = h_1
        _t5 = xs_Wx[t]                               _t5 = xs_Wx[t]
        z = h_2 @ Wh                   →             z = h_2 @ Wh
        z += _t5                                     z += _t5
        ...                                          ...
        _tape1.push((h_2, z_blank, i))               _tape1.push((h_2, z_blank, i))
                                                     del _t5, z  # not read after this step

A name is deleted where it may be an array (not a number by the shapes pass's facts), bound on a
line at the top level of the body (so bound at its end, whatever branch ran), spelled
nowhere outside the body (not after the loop, not by the pullback, not in the loop's
header), not read in the body before that line (a value carried from the last step), and not a
value something else keeps anyway: pushed on the tape, or copied to or from a name that
stays (``h_1 = h_3``; ``b = a; b += 1.0`` deletes both). Only in the variant for plain numpy
arguments (``ctx.dims``), for loops at the function's top level; after every stage that
rewrites a loop's lines.

Invariant after this pass: such a loop's body ends by deleting every such name.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.values import bound_names, reads
from ..context import Context
from ..names import spelled
from .fuse import deleting
from .shapes import SCALAR, shape_facts

__all__ = ["rewrite"]

_COMMENT = "# not read after this step"


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if not ctx.dims:
        return module
    fn = module.body[-1]  # after the module-level links, if any
    loops = [s for s in fn.body.body if type(s) in (cst.For, cst.While) and not s.orelse]
    if not loops:
        return module
    everywhere = spelled(fn)
    found = {id(loop): names for loop in loops if (names := _candidates(loop, everywhere))}
    if not found:
        return module
    shapes = shape_facts(fn, ctx)
    body = []
    for stmt in fn.body.body:
        names = [n for n in found.get(id(stmt), ()) if shapes[n] != SCALAR]
        if names:
            stmt = stmt.with_changes(body=stmt.body.with_changes(
                body=[*stmt.body.body, deleting(names, _COMMENT)]))
        body.append(stmt)
    return module.with_changes(body=[*module.body[:-1], fn.with_changes(
        body=fn.body.with_changes(body=body))])


def _candidates(loop, everywhere) -> list[str]:
    """The names ``loop``'s body may delete at its end, in the order it binds them, before
    the test of their shapes."""
    statements = list(loop.body.body)
    inside = spelled(cst.IndentedBlock(statements))
    kept: set[str] = set()   # pushed, or read before the body binds them
    order: list[str] = []
    copies: list[tuple[str, str]] = []  # (target, source) of each top-level ``a = b``
    for stmt in statements:
        kept |= _read_by(stmt) - set(order)  # read before a line binds it: carried
        kept |= _pushed(stmt)
        order += [n for n in _bound_here(stmt) if n not in order and n not in kept]
        copies += _copies(stmt)
    names = {n for n in order if n not in kept and inside[n] == everywhere[n]}
    changed = True
    while changed:  # a copy and its source share one value: a name that stays keeps it
        changed = False
        for target, source in copies:
            if (target in names) != (source in names):
                names -= {target, source}
                changed = True
    return [n for n in order if n in names]


def _read_by(stmt) -> set[str]:
    """The names ``stmt`` reads; for a compound statement, every name it spells."""
    if type(stmt) is not cst.SimpleStatementLine:
        return set(spelled(stmt))
    found: set[str] = set()
    for small in stmt.body:
        if type(small) is cst.Assign:
            found |= reads(small.value)
            for target in small.targets:  # a[i] = v reads a and i
                found |= reads(target.target) - set(bound_names(target.target))
        else:
            found |= reads(small)
    return found


def _bound_here(stmt) -> list[str]:
    """The names a top-level line binds for certain: assignment targets."""
    if type(stmt) is not cst.SimpleStatementLine:
        return []
    found = []
    for small in stmt.body:
        if type(small) is cst.Assign:
            for target in small.targets:
                found += bound_names(target.target)
        elif type(small) is cst.AugAssign and type(small.target) is cst.Name:
            found.append(small.target.value)
    return found


def _pushed(stmt) -> set[str]:
    """The names a line pushes on a tape, which keeps their values."""
    if type(stmt) is not cst.SimpleStatementLine:
        return set()
    return {n for small in stmt.body if type(small) is cst.Expr and type(small.value) is cst.Call
            and type(small.value.func) is cst.Attribute and small.value.func.attr.value == "push"
            for n in reads(small.value)}


def _copies(stmt) -> list[tuple[str, str]]:
    """``(a, b)`` of each ``a = b`` on a line."""
    if type(stmt) is not cst.SimpleStatementLine:
        return []
    return [(t.target.value, small.value.value) for small in stmt.body
            if type(small) is cst.Assign and type(small.value) is cst.Name
            for t in small.targets if type(t.target) is cst.Name]
