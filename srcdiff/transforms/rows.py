"""rows: a loop's matmul terms that are rows it walks or states it carries read the array.

A loop over every row of an argument ``xs`` (``for t in range(xs.shape[0])``,
``range(len(xs))``, ``for x_t in xs``) keeps each step's row ``xs[t]`` on its tape only
for the sum of ``U``'s adjoint after the backward loop (``batch``), which then stacks those
rows into a new array: ``xs`` itself, reversed. Likewise ``W``'s sum stacks ``h_2``, the
state each step started from, which the tape keeps beside ``h_3``, the state it left: the
same arrays, shifted by one step. Where the pattern of argument shapes proves ``xs`` a numpy
array of two or more axes that the function never rebinds, the sum reads ``xs`` (its rows,
last first, as the backward loop appends the terms); a state carried from one step to the
next (``h_2 = h_1`` before ``h_1 = h_3``, ``h_1 = h`` before the loop) is read by
``rt.carried(tape, position of h_3, h)``, which takes ``each_step``'s stack of ``h_3``
where it made one. What no other line reads leaves the tape, and the forward pass where
nothing else there reads it:

    for t in range(xs.shape[0]):                 for t in range(xs.shape[0]):
        h_2 = h_1                                    h_2 = h_1
        _t2 = xs[t]                       →          ...
        ...                                          # kept for the pullback: h_3
        # kept for the pullback: h_2, _t2, h_3       _tape1.push(h_3)
        _tape1.push((h_2, _t2, h_3))
    ...                                          ...
    for h_2, _t2, h_3 in reversed(_tape1):       for h_3 in reversed(_tape1):
        dU_dW_terms.append((d_t4, _t2, h_2))         dU_dW_terms.append(d_t4)
    dU, dW = rt.matmul_adjoint_sums(             dU, dW = rt.matmul_adjoint_sums(
        dU_dW_terms, (rt.matmul_adjoint_x1_sum,      dU_dW_terms, (rt.matmul_adjoint_x1_sum,
        U), (rt.matmul_adjoint_x1_sum, W))           U, xs), (rt.matmul_adjoint_x1_sum, W,
                                                     rt.carried(_tape1, None, h)))

The same terms: every iteration pushes once (the push is the loop body's last line, at its
top level) and the backward loop appends once per entry, so the terms are ``xs``'s rows in
reverse; the tape held views of them, which see what ``xs`` holds. Only for a loop at the
forward pass's top level and its tape loop at the pullback's (not a checkpointed one);
after ``ranks`` and ``products``, whose adjoints of a product no longer read the operand
for its rank, and before ``steps``, which reads the tape's positions.
Invariant after this pass: no sum's term column is a row ``xs[t]`` of such an ``xs`` or
such a carried state.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.values import binding_counts, bound_in, method_line, reads
from ..context import Context
from .batch import is_row, rows_walked, single_assign
from .reverse import tape_push, tape_target

__all__ = ["rewrite"]

_SUMS = ("matmul_adjoint_x1_sum", "matmul_adjoint_x2_sum", "dot_adjoint_a_sum",
         "dot_adjoint_b_sum")


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullbacks = [s for s in vjp.body.body if type(s) is cst.FunctionDef]
    if not ctx.dims or len(pullbacks) != 1:
        return module
    arrays = {name for name, axes in ctx.dims if isinstance(axes, tuple) and len(axes) >= 2}
    counts = binding_counts(vjp)
    body = list(vjp.body.body)
    pullback = pullbacks[0]
    for i, loop in enumerate(body):
        walked = rows_walked(loop) if type(loop) is cst.For else None
        if walked is None or walked[1] not in arrays or counts.get(walked[1], 0):
            continue  # (an argument the function never rebinds: binding_counts omits parameters)
        t, xs = walked
        found = _tape(loop)
        if found is None:
            continue
        tape, kept = found
        elsewhere = set().union(set(), *(reads(s) for s in body if s is not loop and
                                         s is not pullbacks[0]))
        replace = {name: _rows_of(xs) for name in kept
                   if _row_of(loop, name, xs, t) and name not in elsewhere}
        for c, (n, init) in _states(loop, body[:i], kept, counts).items():
            if c not in replace and c not in elsewhere:
                replace[c] = _carried(ctx.rt, tape, n, init)
        if not replace:
            continue
        pullback, dropped = _summed_from(pullback, tape, kept, replace, ctx)
        if dropped:
            body[i] = _forward_without(loop, tape, kept, dropped)
    if pullback is pullbacks[0]:
        return module
    body = [pullback if s is pullbacks[0] else s for s in body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _tape(loop: cst.For):
    """``(tape, names)`` where the loop body's last line is ``tape.push(...)`` of names."""
    found = method_line(loop.body.body[-1], "push") if loop.body.body else None
    if found is None:
        return None
    tape, value = found
    items = [e.value for e in value.elements] if type(value) is cst.Tuple else [value]
    if not all(type(item) is cst.Name for item in items):
        return None
    return tape, [item.value for item in items]


def _row_of(loop: cst.For, name: str, xs: str, t: str) -> bool:
    """Whether the loop body binds ``name`` once, at its top level, to ``xs[t]``."""
    lines = [s for s in loop.body.body if name in bound_in([s])]
    if len(lines) != 1 or t in bound_in(loop.body.body):
        return False
    assign = single_assign(lines[0])
    return assign is not None and is_row(assign.value, xs, t) and \
        assign.targets[0].target.value == name


def _summed_from(pullback: cst.FunctionDef, tape: str, kept: list, replace: dict, ctx: Context):
    """The pullback with each sum term column named in ``replace`` read from what
    ``replace[name](names)`` writes instead (``names``: the tape's columns after), the same
    pullback where there is none; and the columns no longer read there (to drop from the
    tape; one that something else reads, such as the row's own adjoint, stays)."""
    statements = list(pullback.body.body)
    loops = [k for k, s in enumerate(statements) if type(s) is cst.For and _walks(s, tape)]
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
    plans = []  # (index in after, the sum line, its columns)
    for j, stmt in enumerate(after):
        call = _sum_call(stmt, ctx)
        if call is None or call[0] not in appends:
            continue
        terms, sums = call
        index, items = appends[terms]
        columns = items[1:]  # (g, v1, v2, ...): v_k is the k-th sum's
        if len(columns) != len(sums) or len(set(columns)) != len(columns) or \
                not any(c in replace for c in columns):
            continue
        plans.append((j, stmt, columns))
        kept_items = [items[0], *(c for c in columns if c not in replace)]
        new_loop_body[index] = _appended(new_loop_body[index], terms, kept_items,
                                         len(kept_items) > 1)
    if not plans:
        return pullback, set()
    changed = {c for _, _, columns in plans for c in columns if c in replace}
    read_after = set().union(*(reads(s) for s in (*new_loop_body, *after, *statements[:k])))
    dropped = {name for name in changed if name not in read_after}
    names = [n for n in kept if n not in dropped]
    for j, stmt, columns in plans:
        after[j] = _with_rows(stmt, [replace[c](names) if c in replace else None
                                     for c in columns])
    loop = loop.with_changes(body=loop.body.with_changes(body=new_loop_body))
    if dropped:
        loop = loop.with_changes(target=tape_target(names))
    statements = [*statements[:k], loop, *after]
    return pullback.with_changes(body=pullback.body.with_changes(body=statements)), dropped


def _states(loop: cst.For, before: list, kept: list, counts: dict) -> dict:
    """The loop-carried states among ``kept``: ``{c: (n, init)}`` where the body binds ``c =
    L`` before ``L = n`` (each once, at its top level; ``n`` kept too) and the function binds
    ``L = init`` last before the loop (``init`` a name bound once, or an argument): ``c`` at
    step ``t`` is ``init`` for the first step, else ``n`` of the step before."""
    body = loop.body.body
    lines = {}
    for position, stmt in enumerate(body):
        assign = single_assign(stmt)
        if assign is not None and type(assign.value) is cst.Name:
            lines.setdefault(assign.targets[0].target.value, []).append(
                (position, assign.value.value))
    bound = bound_in(body)
    found = {}
    for c in kept:
        if len(lines.get(c, ())) != 1 or sum(c in bound_in([s]) for s in body) != 1:
            continue
        at, carrier = lines[c][0]
        after = lines.get(carrier, ())
        if len(after) != 1 or sum(carrier in bound_in([s]) for s in body) != 1:
            continue
        later, n = after[0]
        if later <= at or n not in kept or n == c:
            continue
        init = None
        for stmt in reversed(before):
            if carrier in bound_in([stmt]):
                assign = single_assign(stmt)
                if assign is not None and type(assign.value) is cst.Name:
                    init = assign.value.value
                break
        if init is None or init in bound or counts.get(init, 0) > 1 or init == carrier:
            continue
        found[c] = (n, init)
    return found


def _rows_of(xs: str):
    """What reads a column of rows ``xs[t]``: ``xs``."""
    return lambda names: cst.Name(xs)


def _carried(rt: str, tape: str, n: str, init: str):
    """What reads a column of loop-carried states: ``rt.carried(tape, position of n, init)``."""
    def written(names):
        position = cst.Name("None") if len(names) == 1 else cst.Integer(str(names.index(n)))
        return cst.Call(cst.Attribute(cst.Name(rt), cst.Name("carried")),
                        [cst.Arg(cst.Name(tape)), cst.Arg(position), cst.Arg(cst.Name(init))])
    return written


def _walks(loop: cst.For, tape: str) -> bool:
    """``for ... in reversed(tape)``."""
    it = loop.iter
    return type(it) is cst.Call and type(it.func) is cst.Name and \
        it.func.value == "reversed" and len(it.args) == 1 and \
        type(it.args[0].value) is cst.Name and it.args[0].value.value == tape and \
        not loop.orelse


def _targets(target) -> list:
    """The names a tape loop unpacks (``_``: none)."""
    if type(target) is cst.Name:
        return [] if target.value == "_" else [target]
    if type(target) is cst.Tuple and all(type(e.value) is cst.Name for e in target.elements):
        return [e.value for e in target.elements]
    return [None]


def _append(stmt):
    """``(terms, [g, v1, ...])`` for a line ``terms.append((g, v1, ...))`` of names."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Expr and type(stmt.body[0].value) is cst.Call):
        return None
    call = stmt.body[0].value
    if not (type(call.func) is cst.Attribute and call.func.attr.value == "append" and
            type(call.func.value) is cst.Name and len(call.args) == 1 and
            type(call.args[0].value) is cst.Tuple):
        return None
    items = call.args[0].value.elements
    if not all(type(e.value) is cst.Name for e in items):
        return None
    return call.func.value.value, [e.value.value for e in items]


def _sum_call(stmt, ctx: Context):
    """``(terms, [(rule, matrix), ...])`` for ``acc = rt.<rule>_sum(terms, matrix)`` or
    ``a, b = rt.matmul_adjoint_sums(terms, (rt.rule, A), (rt.rule, B))``."""
    assign = stmt.body[0] if type(stmt) is cst.SimpleStatementLine and \
        len(stmt.body) == 1 and type(stmt.body[0]) is cst.Assign else None
    call = assign.value if assign is not None else None
    if not (type(call) is cst.Call and type(call.func) is cst.Attribute and
            type(call.func.value) is cst.Name and call.func.value.value == ctx.rt and
            call.args and type(call.args[0].value) is cst.Name and
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
        if not (type(pair) is cst.Tuple and len(pair.elements) == 2 and
                type(pair.elements[0].value) is cst.Attribute and
                pair.elements[0].value.attr.value in _SUMS):
            return None
        sums.append((pair.elements[0].value.attr.value, pair.elements[1].value))
    return terms, sums


def _with_rows(stmt, rows: list):
    """The sum call with ``rows[k]`` (an expression, or None) as the rows of its k-th column."""
    assign = stmt.body[0]
    call = assign.value
    if call.func.attr.value != "matmul_adjoint_sums":
        call = call.with_changes(args=[*call.args, cst.Arg(rows[0], keyword=cst.Name("rows"),
                                 equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                       whitespace_after=cst.SimpleWhitespace("")))])
    else:
        args = [call.args[0]]
        for arg, row in zip(call.args[1:], rows):
            pair = arg.value
            args.append(arg.with_changes(value=pair.with_changes(
                elements=[*pair.elements, cst.Element(row)])) if row is not None else arg)
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
    push = tape_push(tape, names)
    push = push.with_changes(leading_lines=[
        *(line for line in body[-1].leading_lines if line.comment is None), *push.leading_lines])
    body[-1] = push
    read = set().union(*(reads(s) - bound_in([s]) for s in body))
    body = [s for s in body if not (bound_in([s]) & dropped and not bound_in([s]) & read and
                                    single_assign(s) is not None)]
    return loop.with_changes(body=loop.body.with_changes(body=body))
