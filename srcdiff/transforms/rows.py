"""rows: a loop's matmul terms that are the rows it walks read the array, not the tape.

A loop over every row of an argument ``xs`` (``for t in range(xs.shape[0])``,
``range(len(xs))``, ``for x_t in xs``) keeps each step's row ``xs[t]`` on its tape only
for the sum of ``U``'s adjoint after the backward loop (``batch``), which then stacks those
rows into a new array: ``xs`` itself, reversed. Where the pattern of argument shapes proves
``xs`` a numpy array of two or more axes that the function never rebinds, the sum reads
``xs`` (``rows=xs``: its rows, last first, as the backward loop appends the terms); the row
is no longer kept on the tape, and no longer taken in the forward pass if nothing else
there reads it:

    for t in range(xs.shape[0]):                 for t in range(xs.shape[0]):
        ...                                          ...
        _t2 = xs[t]                       →
        # kept for the pullback: h_2, _t2            # kept for the pullback: h_2
        _tape1.push((h_2, _t2))                      _tape1.push(h_2)
    ...                                          ...
    for h_2, _t2 in reversed(_tape1):            for h_2 in reversed(_tape1):
        dU_dW_terms.append((d_t4, _t2, h_2))         dU_dW_terms.append((d_t4, h_2))
    dU, dW = rt.matmul_adjoint_sums(             dU, dW = rt.matmul_adjoint_sums(
        dU_dW_terms, (rt.matmul_adjoint_x1_sum,      dU_dW_terms, (rt.matmul_adjoint_x1_sum,
        U), (rt.matmul_adjoint_x1_sum, W))           U, xs), (rt.matmul_adjoint_x1_sum, W))

The same terms: every iteration pushes once (the push is the loop body's last line, at its
top level) and the backward loop appends once per entry, so the terms are ``xs``'s rows in
reverse; the tape held views of them, which see what ``xs`` holds. Only for a loop at the
forward pass's top level and its tape loop at the pullback's (not a checkpointed one).
Invariant after this pass: no sum's term column is a row ``xs[t]`` of such an ``xs``.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.values import binding_counts, bound_in, reads
from ..context import Context
from .batch import _index, _rows_walked, _single_assign
from .reverse import tape_push, tape_target

__all__ = ["rewrite"]

_SUMS = ("matmul_adjoint_x1_sum", "matmul_adjoint_x2_sum", "dot_adjoint_a_sum",
         "dot_adjoint_b_sum")


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullbacks = [s for s in vjp.body.body if isinstance(s, cst.FunctionDef)]
    if not ctx.dims or len(pullbacks) != 1:
        return module
    arrays = {name for name, axes in ctx.dims if isinstance(axes, tuple) and len(axes) >= 2}
    counts = binding_counts(vjp)
    body = list(vjp.body.body)
    pullback = pullbacks[0]
    for i, loop in enumerate(body):
        walked = _rows_walked(loop) if isinstance(loop, cst.For) else None
        if walked is None or walked[1] not in arrays or counts.get(walked[1], 0):
            continue  # (an argument the function never rebinds: binding_counts omits parameters)
        t, xs = walked
        found = _tape(loop)
        if found is None:
            continue
        tape, kept = found
        rows = {name for name in kept if _row_of(loop, name, xs, t)}
        if not rows:
            continue
        elsewhere = set().union(set(), *(reads(s) for s in body if s is not loop and
                                         s is not pullbacks[0]))
        new_pullback, dropped = _summed_from(pullback, tape, kept, rows - elsewhere, xs, ctx)
        pullback = new_pullback
        if dropped:
            body[i] = _forward_without(loop, tape, kept, dropped)
    if pullback is pullbacks[0]:
        return module
    body = [pullback if s is pullbacks[0] else s for s in body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _tape(loop: cst.For):
    """``(tape, names)`` where the loop body's last line is ``tape.push(...)`` of names."""
    last = loop.body.body[-1] if loop.body.body else None
    if not (isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1 and
            isinstance(last.body[0], cst.Expr) and isinstance(last.body[0].value, cst.Call)):
        return None
    call = last.body[0].value
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "push" and
            isinstance(call.func.value, cst.Name) and len(call.args) == 1):
        return None
    value = call.args[0].value
    items = [e.value for e in value.elements] if isinstance(value, cst.Tuple) else [value]
    if not all(isinstance(item, cst.Name) for item in items):
        return None
    return call.func.value.value, [item.value for item in items]


def _row_of(loop: cst.For, name: str, xs: str, t: str) -> bool:
    """Whether the loop body binds ``name`` once, at its top level, to ``xs[t]``."""
    lines = [s for s in loop.body.body if name in bound_in([s])]
    if len(lines) != 1 or t in bound_in(loop.body.body):
        return False
    assign = _single_assign(lines[0])
    value = assign.value if assign is not None else None
    return isinstance(value, cst.Subscript) and isinstance(value.value, cst.Name) and \
        value.value.value == xs and _index(value) == t and \
        assign.targets[0].target.value == name


def _summed_from(pullback: cst.FunctionDef, tape: str, kept: list, rows: set, xs: str,
                 ctx: Context):
    """The pullback with each sum term that is one of ``rows`` read from ``xs`` instead (the
    same pullback where there is none), and the rows no longer read there (to drop from the
    tape; one the row's own adjoint reads stays)."""
    statements = list(pullback.body.body)
    loops = [k for k, s in enumerate(statements) if isinstance(s, cst.For) and _walks(s, tape)]
    if len(loops) != 1:
        return pullback, set()
    k = loops[0]
    loop = statements[k]
    if [getattr(n, "value", None) for n in _targets(loop.target)] != kept:
        return pullback, set()
    appends = {}  # terms list -> (its append line's index, the tuple's names)
    for j, stmt in enumerate(loop.body.body):
        found = _append(stmt)
        if found is not None:
            appends[found[0]] = (j, found[1])
    new_loop_body = list(loop.body.body)
    after = list(statements[k + 1:])
    changed = set()
    for j, stmt in enumerate(after):
        call = _sum_call(stmt, ctx)
        if call is None or call[0] not in appends:
            continue
        terms, sums = call
        index, items = appends[terms]
        columns = items[1:]  # (g, v1, v2, ...): v_k is the k-th sum's
        if len(columns) != len(sums) or len(set(columns)) != len(columns):
            continue
        moved = [c for c in columns if c in rows]
        if not moved:
            continue
        after[j] = _with_rows(stmt, [c in rows for c in columns], xs)
        kept_items = [items[0], *(c for c in columns if c not in rows)]
        new_loop_body[index] = _appended(new_loop_body[index], terms, kept_items,
                                         len(sums) > 1 or len(kept_items) > 1)
        changed |= set(moved)
    if not changed:
        return pullback, set()
    loop = loop.with_changes(body=loop.body.with_changes(body=new_loop_body))
    read_after = set().union(*(reads(s) for s in (*new_loop_body, *after, *statements[:k])))
    dropped = {name for name in changed if name not in read_after}
    if dropped:
        names = [n for n in kept if n not in dropped]
        loop = loop.with_changes(target=tape_target(names))
    statements = [*statements[:k], loop, *after]
    return pullback.with_changes(body=pullback.body.with_changes(body=statements)), dropped


def _walks(loop: cst.For, tape: str) -> bool:
    """``for ... in reversed(tape)``."""
    it = loop.iter
    return isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and \
        it.func.value == "reversed" and len(it.args) == 1 and \
        isinstance(it.args[0].value, cst.Name) and it.args[0].value.value == tape and \
        not loop.orelse


def _targets(target) -> list:
    """The names a tape loop unpacks (``_``: none)."""
    if isinstance(target, cst.Name):
        return [] if target.value == "_" else [target]
    if isinstance(target, cst.Tuple) and all(isinstance(e.value, cst.Name) for e in target.elements):
        return [e.value for e in target.elements]
    return [None]


def _append(stmt):
    """``(terms, [g, v1, ...])`` for a line ``terms.append((g, v1, ...))`` of names."""
    if not (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and
            isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, cst.Call)):
        return None
    call = stmt.body[0].value
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "append" and
            isinstance(call.func.value, cst.Name) and len(call.args) == 1 and
            isinstance(call.args[0].value, cst.Tuple)):
        return None
    items = call.args[0].value.elements
    if not all(isinstance(e.value, cst.Name) for e in items):
        return None
    return call.func.value.value, [e.value.value for e in items]


def _sum_call(stmt, ctx: Context):
    """``(terms, [(rule, matrix), ...])`` for ``acc = rt.<rule>_sum(terms, matrix)`` or
    ``a, b = rt.matmul_adjoint_sums(terms, (rt.rule, A), (rt.rule, B))``."""
    assign = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and \
        len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Assign) else None
    call = assign.value if assign is not None else None
    if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and
            isinstance(call.func.value, cst.Name) and call.func.value.value == ctx.rt and
            call.args and isinstance(call.args[0].value, cst.Name) and
            all(a.keyword is None and not a.star for a in call.args)):
        return None
    terms, name = call.args[0].value.value, call.func.attr.value
    if name in _SUMS and len(call.args) == 2:
        return terms, [(name, call.args[1].value)]
    if name != "matmul_adjoint_sums":
        return None
    sums = []
    for arg in call.args[1:]:
        pair = arg.value
        if not (isinstance(pair, cst.Tuple) and len(pair.elements) == 2 and
                isinstance(pair.elements[0].value, cst.Attribute) and
                pair.elements[0].value.attr.value in _SUMS):
            return None
        sums.append((pair.elements[0].value.attr.value, pair.elements[1].value))
    return terms, sums


def _with_rows(stmt, moved: list, xs: str):
    """The sum call with ``xs`` as the rows of each moved term column."""
    assign = stmt.body[0]
    call = assign.value
    rows = cst.Name(xs)
    if call.func.attr.value != "matmul_adjoint_sums":
        call = call.with_changes(args=[*call.args, cst.Arg(rows, keyword=cst.Name("rows"),
                                 equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                       whitespace_after=cst.SimpleWhitespace("")))])
    else:
        args = [call.args[0]]
        for arg, row in zip(call.args[1:], moved):
            pair = arg.value
            args.append(arg.with_changes(value=pair.with_changes(
                elements=[*pair.elements, cst.Element(rows)])) if row else arg)
        call = call.with_changes(args=args)
    return stmt.with_changes(body=[assign.with_changes(value=call)])


def _appended(stmt, terms: str, items: list, as_tuple: bool):
    """``terms.append((g, ...))`` of ``items`` (a bare ``g`` where a sum reads only ``g``)."""
    value = cst.Tuple([cst.Element(cst.Name(n)) for n in items]) if as_tuple else \
        cst.Name(items[0])
    return stmt.with_changes(body=[cst.Expr(cst.Call(
        cst.Attribute(cst.Name(terms), cst.Name("append")), [cst.Arg(value)]))])


def _forward_without(loop: cst.For, tape: str, kept: list, dropped: set) -> cst.For:
    """The forward loop pushing the names ``kept`` but ``dropped``, without the lines binding
    the dropped ones where nothing else in the loop reads them."""
    names = [n for n in kept if n not in dropped]
    body = list(loop.body.body)
    push = tape_push(tape, names).with_changes(
        leading_lines=[line for line in body[-1].leading_lines if line.comment is None] +
        list(tape_push(tape, names).leading_lines))
    body[-1] = push
    read = set().union(*(reads(s) - bound_in([s]) for s in body))
    body = [s for s in body if not (bound_in([s]) & dropped and not bound_in([s]) & read and
                                    _single_assign(s) is not None)]
    return loop.with_changes(body=loop.body.with_changes(body=body))
