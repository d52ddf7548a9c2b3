"""batch: a loop's matmuls with a fixed matrix become one matmul outside the loop.

Forward: a loop over every row of ``x`` (``for t in range(x.shape[0])`` or ``len(x)``) that
computes ``U @ x[t]`` (or ``x[t] @ U``) of a ``U`` it does not rebind reads row ``t`` of
``U_x = rt.matmul_rows(U, x)``, made before the loop: one matmul instead of one per step
(the same products up to rounding).

    for t in range(x.shape[0]):                   U_x = rt.matmul_rows(U, x)
        _t2 = x[t]                         →      for t in range(x.shape[0]):
        _t3 = U @ _t2                                 _t2 = x[t]
                                                      _t3 = U_x[t]

Pullback:
``h = np.tanh(W @ h + ...)`` in a loop gives, per iteration, ``dW = dW + rt.matmul_adjoint_x1(
d_t1, W, h_2)``: an outer product and an addition of two arrays of W's size, every step.
Where ``dW`` is touched by nothing else in the loop and ``W`` is the same object in every
iteration, the terms are kept instead (a vector pair per step) and summed after the loop by
``rt.matmul_adjoint_x1_sum``: for vectors, one matmul of the stacked terms. The sum is the
same up to rounding (a matmul adds in another order). Where ``dW`` was only set to
``rt.zeros_like(W)`` before the loop, the sum starts it instead (it has that shape and
dtype, and is those zeros when the loop ran no iteration).

Invariant after this pass: no top-level ``y = U @ x[t]`` / ``x[t] @ U`` is left in such a
loop of the forward pass; no ``dA = dA + rt.matmul_adjoint_x1/_x2(g, ...)`` is left at the
top of a tape loop whose ``dA`` is read or written elsewhere in the loop and whose
loop-invariant operand is not rebound there; those are summed after the loop instead, and
no ``dA = rt.zeros_like(A)`` is left for such a sum to add to.

    dW = rt.zeros_like(W)                         dW_terms = []
    for h_2, _t1 in reversed(_tape1):             for h_2, _t1 in reversed(_tape1):
        ...                                →         ...
        dW = dW + rt.matmul_adjoint_x1(               dW_terms.append((d_t1, h_2))
            d_t1, W, h_2)                         dW = rt.matmul_adjoint_x1_sum(dW_terms, W)
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, rules

from ..analysis.values import binding_counts, bound_in, method_line, reads, resolve, subexpressions
from ..context import Context
from ..names import Namer, names_in

__all__ = ["rewrite", "rows_walked", "single_assign", "is_row", "appended", "value_at", "terms_init"]

# the per-step rule -> (the rule summing a list of terms, the position of the fixed operand)
_SUMS = {rules.matmul_adjoint_x1: ("matmul_adjoint_x1_sum", 1),
         rules.matmul_adjoint_x2: ("matmul_adjoint_x2_sum", 2),
         rules.dot_adjoint_a: ("dot_adjoint_a_sum", 1),
         rules.dot_adjoint_b: ("dot_adjoint_b_sum", 2)}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    namer = Namer(names_in(module) | {ctx.rt})
    body = []
    for stmt in vjp.body.body:
        if type(stmt) is cst.FunctionDef:
            body.append(_pullback(stmt, ctx, namer))
        elif type(stmt) is cst.For and rows_walked(stmt) is not None:
            body.extend(_forward_loop(stmt, ctx, namer))
        else:
            body.append(stmt)
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


# ----- the forward pass: A @ x[t] for every row t at once, before the loop -----

# where the row is -> the helper, for ``a @ b`` and for ``np.dot(a, b)`` (the canonical
# pass leaves these two products; the dot helpers check the ndim at run time)
_ROWS = {"right": "matmul_rows", "left": "rows_matmul"}
_DOT_ROWS = {"right": "dot_rows", "left": "rows_dot"}


def _product(value, ctx: Context, bound) -> tuple | None:
    """``(a, b, helpers, spelling)`` for ``a @ b`` or ``np.dot(a, b)`` of two names."""
    if type(value) is cst.BinaryOperation and type(value.operator) is cst.MatrixMultiply \
            and type(value.left) is cst.Name and type(value.right) is cst.Name:
        return value.left, value.right, _ROWS, "{} @ {}"
    if type(value) is cst.Call and len(value.args) == 2 and all(
            a.keyword is None and not a.star and type(a.value) is cst.Name for a in value.args) \
            and resolve(value.func, ctx, bound) is np.dot:
        return value.args[0].value, value.args[1].value, _DOT_ROWS, "np.dot({}, {})"
    return None


def rows_walked(loop: cst.For) -> tuple[str, str] | None:
    """``(t, x)`` for ``for t in range(len(x))`` or ``for t in range(x.shape[0])``: a loop
    over every row of ``x``, in order."""
    it = loop.iter
    if not (type(loop.target) is cst.Name and not loop.orelse and type(it) is cst.Call
            and type(it.func) is cst.Name and it.func.value == "range" and len(it.args) == 1):
        return None
    n = it.args[0].value
    if type(n) is cst.Call and type(n.func) is cst.Name and n.func.value == "len" and \
            len(n.args) == 1 and type(n.args[0].value) is cst.Name:
        return loop.target.value, n.args[0].value.value
    if type(n) is cst.Subscript and type(n.value) is cst.Attribute and \
            type(n.value.value) is cst.Name and n.value.attr.value == "shape" and \
            _index(n) == "0":
        return loop.target.value, n.value.value.value
    return None


def _forward_loop(loop: cst.For, ctx: Context, namer: Namer) -> list:
    """The loop, where its body computes ``y = A @ row`` (or ``row @ A``) of a row
    ``row = x[t]`` of the array it walks and a matrix ``A`` it does not rebind, reading
    ``y = A_x[t]`` of ``A_x = rt.matmul_rows(A, x)`` made before it."""
    t, array = rows_walked(loop)
    bound = _bound_in(loop)
    body = list(loop.body.body)
    if array in bound or t in bound_in(body):
        return [loop]
    assigned = [bound_in([stmt]) for stmt in body]
    once = {n for n in bound if sum(n in names for names in assigned) == 1}
    rows, stacks, before, new_body = set(), {}, [], []
    for stmt in body:
        assign = single_assign(stmt)
        value = assign.value if assign is not None else None
        if is_row(value, array, t):
            rows |= {assign.targets[0].target.value} & once
        elif (product := _product(value, ctx, bound)) is not None:
            left, right, helpers_by_side, spell = product
            side = "right" if right.value in rows else "left" if left.value in rows else None
            fixed = left if side == "right" else right
            if side is not None and fixed.value not in bound:
                key = (side, fixed.value, spell)
                if key not in stacks:
                    stacks[key] = cst.Name(namer.fresh(
                        f"{fixed.value}_{array}" if side == "right" else f"{array}_{fixed.value}"))
                    operands = (fixed.value, f"{array}[{t}]") if side == "right" else \
                        (f"{array}[{t}]", fixed.value)
                    before.append(cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(stacks[key])], cst.Call(
                            cst.Attribute(cst.Name(ctx.rt), cst.Name(helpers_by_side[side])),
                            [cst.Arg(fixed if side == "right" else cst.Name(array)),
                             cst.Arg(cst.Name(array) if side == "right" else fixed)]))],
                        leading_lines=[cst.EmptyLine(comment=cst.Comment(
                            f"# {spell.format(*operands)} for every {t} at once"))]))
                stmt = stmt.with_changes(body=[assign.with_changes(value=cst.Subscript(
                    stacks[key], [cst.SubscriptElement(cst.Index(cst.Name(t)))]))])
        new_body.append(stmt)
    if not before:
        return [loop]
    before[0] = before[0].with_changes(leading_lines=[*loop.leading_lines, *before[0].leading_lines])
    return [*before, loop.with_changes(leading_lines=(), body=loop.body.with_changes(body=new_body))]


def single_assign(stmt) -> cst.Assign | None:
    """The assignment ``name = value`` alone on its line ``stmt``, else None."""
    if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and \
            isinstance(stmt.body[0].targets[0].target, cst.Name):
        return stmt.body[0]
    return None


def is_row(value, array: str, t: str) -> bool:
    """Whether ``value`` is ``array[t]``: row ``t`` of the array a loop walks."""
    return type(value) is cst.Subscript and type(value.value) is cst.Name and \
        value.value.value == array and _index(value) == t


def _index(subscript: cst.Subscript) -> str | None:
    """The name or integer of a one-element key ``x[key]``, else None."""
    if len(subscript.slice) == 1 and type(subscript.slice[0].slice) is cst.Index:
        key = subscript.slice[0].slice.value
        if type(key) in (cst.Name, cst.Integer) and not subscript.lpar:
            return key.value
    return None


# ----- the pullback: the matmul adjoints of every iteration at once, after the loop -----


def _pullback(fn: cst.FunctionDef, ctx: Context, namer: Namer) -> cst.FunctionDef:
    return fn.with_changes(body=fn.body.with_changes(body=_block(fn.body.body, ctx, namer)))


def _block(statements, ctx, namer) -> list:
    out = []
    for i, stmt in enumerate(statements):
        if type(stmt) is cst.For and _is_checkpoint_loop(stmt):  # its terms: per segment
            out.append(stmt.with_changes(body=stmt.body.with_changes(
                body=_block(stmt.body.body, ctx, namer))))
        elif type(stmt) is cst.For and _is_tape_loop(stmt):
            out = _loop(stmt, ctx, namer, out, statements[i + 1:])
        elif type(stmt) is cst.If:
            new = stmt.with_changes(body=stmt.body.with_changes(body=_block(stmt.body.body, ctx, namer)))
            if type(stmt.orelse) is cst.Else:
                new = new.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                    body=_block(stmt.orelse.body.body, ctx, namer))))
            out.append(new)
        else:
            out.append(stmt)
    return out


def _is_checkpoint_loop(loop: cst.For) -> bool:
    """``for _j1 in reversed(range(len(_checkpoints1) - 1)):`` (the ``checkpoint`` stage's)."""
    names = names_in(loop.iter)
    return any(n.startswith("_checkpoints") for n in names) and "len" in names


def _is_tape_loop(loop: cst.For) -> bool:
    it = loop.iter
    return type(it) is cst.Call and type(it.func) is cst.Name and \
        it.func.value == "reversed" and not loop.orelse


def _loop(loop: cst.For, ctx: Context, namer: Namer, above: list, below=()) -> list:
    """``above`` (the block's statements before ``loop``), then the loop with its terms
    kept and summed after it; a sum whose accumulator ``above`` only set to zeros starts
    it (``dW = rt.matmul_adjoint_x1_sum(...)``, and the zeros are gone)."""
    body = list(loop.body.body)
    bound = _bound_in(loop)
    before, after, new_body, comments, sums = [], [], [], [], []
    for stmt in body:
        found = _accumulation(stmt, ctx, bound)
        if found is None or _touched_elsewhere(found[0], stmt, body):
            new_body.append(stmt)
            continue
        acc, sum_name, fixed, g, other = found
        terms = cst.Name(namer.fresh(f"{acc}_terms"))
        before.append(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(terms)],
                                                          _new_terms(loop, ctx))]))
        new_body.append(stmt.with_changes(body=[cst.Expr(cst.Call(
            cst.Attribute(terms, cst.Name("append")),
            [cst.Arg(cst.Tuple([cst.Element(g), cst.Element(other)]))]))]))
        total = cst.Call(cst.Attribute(cst.Name(ctx.rt), cst.Name(sum_name)),
                         [cst.Arg(terms), cst.Arg(fixed)])
        zeros = _zero_start(above, acc, fixed.value, ctx)
        if zeros is not None:  # the sum has the shape and dtype of the zeros (none if no term)
            above, lines = _without(above, zeros)
            comments.extend(lines)
        else:
            total = cst.BinaryOperation(cst.Name(acc), cst.Add(), total)
        after.append(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(acc))], total)]))
        sums.append((acc, sum_name, fixed, g, other, zeros is not None, before[-1], new_body[-1],
                     after[-1]))
    if not before:
        return [*above, loop]
    if ctx.dims:
        before, new_body, after = _shared(sums, body, before, new_body, after, ctx, namer,
                                          [*above, *below])
        above, new_body, after = _bias_sums(above, before, new_body, after, loop, ctx, comments)
    # the adjoint-of comment (above the zeros or the loop) stays at the top of the block
    before[0] = before[0].with_changes(leading_lines=[*comments, *loop.leading_lines])
    loop = loop.with_changes(leading_lines=())
    after[0] = after[0].with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(
        "# the loop's matmul terms, summed at once"))])
    return [*above, *before, loop.with_changes(body=loop.body.with_changes(body=new_body)), *after]


def _new_terms(loop: cst.For, ctx: Context) -> cst.BaseExpression:
    """What a sum's list of terms starts as: ``rt.Terms(len(_tape1))`` for the loop over
    ``reversed(_tape1)`` in a variant for one pattern of shapes (the terms' adjoints copied
    into one array as they come, where they are large: see ``Terms``), else ``[]``."""
    tape = loop.iter.args[0].value if len(loop.iter.args) == 1 else None
    if not ctx.dims or type(tape) is not cst.Name:
        return cst.List([])
    return cst.Call(cst.Attribute(cst.Name(ctx.rt), cst.Name("Terms")),
                    [cst.Arg(cst.Call(cst.Name("len"), [cst.Arg(tape)]))])


def _shared(sums, body, before, new_body, after, ctx: Context, namer: Namer, outside):
    """Sums whose terms share their adjoint (``d_t1 = d_t4``, ``d_t3 = d_t4``: dW's and dU's
    in an RNN step) as one list of ``(g, v1, v2, ...)`` and one ``rt.matmul_adjoint_sums``
    after the loop, which stacks the ``g``'s once for all. Only sums that start from
    nothing (their zeros gone), where nothing between their appends rebinds what the merged
    append reads."""
    roots = _aliases(body)
    groups: dict[str, list] = {}
    for record in sums:
        if record[5]:
            groups.setdefault(roots.get(record[3].value, record[3].value), []).append(record)
    for root, group in groups.items():
        if len(group) < 2:
            continue
        first = next(i for i, s in enumerate(new_body) if s is group[0][7])
        last = next(i for i, s in enumerate(new_body) if s is group[-1][7])
        read = {root, *(record[4].value for record in group)}
        if any(read & bound_in([s]) for s in new_body[first:last + 1]):
            continue  # (the merged append, at the last one's line, reads them as they are)
        terms = cst.Name(namer.fresh("_".join(record[0] for record in group) + "_terms"))
        init = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(terms)], group[0][6].body[0].value)])
        append = group[-1][7].with_changes(body=[cst.Expr(cst.Call(
            cst.Attribute(terms, cst.Name("append")), [cst.Arg(cst.Tuple(
                [cst.Element(cst.Name(root)), *(cst.Element(r[4]) for r in group)]))]))])
        total = cst.Call(cst.Attribute(cst.Name(ctx.rt), cst.Name("matmul_adjoint_sums")), [
            cst.Arg(terms), *(cst.Arg(cst.Tuple([
                cst.Element(cst.Attribute(cst.Name(ctx.rt), cst.Name(r[1]))), cst.Element(r[2])]))
                for r in group)])
        assign = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Tuple(
            [cst.Element(cst.Name(r[0])) for r in group], lpar=[], rpar=[]))], total)])
        members = {id(r[6]) for r in group}
        before = [init if s is group[0][6] else s for s in before if id(s) not in members or
                  s is group[0][6]]
        appends = {id(r[7]) for r in group}
        new_body = [append if s is group[-1][7] else s for s in new_body
                    if id(s) not in appends or s is group[-1][7]]
        totals = {id(r[8]) for r in group}
        after = [assign if s is group[0][8] else s for s in after if id(s) not in totals or
                 s is group[0][8]]
        # an alias of the adjoint that only the merged appends read is read no more
        for name in {r[3].value for r in group} - {root}:
            line = next((s for s in new_body if _aliased(s) == name), None)
            if line is not None and not any(name in reads(s) for s in (*new_body, *after, *outside)
                                            if s is not line):
                new_body = [s for s in new_body if s is not line]
    return before, new_body, after


def _bias_sums(above, before, body, after, loop: cst.For, ctx: Context, comments: list):
    """A line ``acc = acc + rt.unbroadcast(x, like)`` (or ``acc + x.sum(axis=k)``) of a loop
    whose ``x`` is, under aliases, the ``g`` a sum's ``rt.Terms`` keeps each step (a bias's
    adjoint ``db`` from ``dz``, next to ``dW``'s terms), and whose ``acc`` is touched by
    nothing else in the loop and started as ``rt.zeros_like(like)``: one
    ``acc = rt.terms_sum(terms, like)`` after the sums instead, the zeros gone. Only where
    ``x`` where that line reads it and the ``g`` where the append reads it hold the value of
    one binding of that step (``value_at``)."""
    kept = {}  # the value a Terms keeps (see value_at) -> the terms' name
    for j, stmt in enumerate(body):
        found = appended(stmt)
        if found is not None and any(terms_init(b, found[0], ctx) for b in before):
            value = value_at(body, found[1], j)
            if value is not None:
                kept.setdefault(value, found[0])
    if not kept:
        return above, body, after
    bound = _bound_in(loop)
    new_body, totals = list(body), []
    for i, stmt in enumerate(body):
        found = _bias_line(stmt, ctx, bound)
        if found is None:
            continue
        acc, x, like, axis = found
        terms = kept.get(value_at(body, x, i))
        if terms is None or _touched_elsewhere(acc, stmt, body):
            continue
        zeros = _zero_start(above, acc, like, ctx) if like is not None else _any_zero_start(above, acc, ctx)
        if zeros is None:
            continue
        if like is None:
            like = zeros.body[0].value.args[0].value.value
        above, lines = _without(above, zeros)
        comments.extend(lines)
        new_body = [s for s in new_body if s is not stmt]
        args = [cst.Arg(cst.Name(terms)), cst.Arg(cst.Name(like))]
        if axis is not None:
            args.append(cst.Arg(axis, keyword=cst.Name("axis"),
                                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))))
        totals.append(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(acc))], cst.Call(
            cst.Attribute(cst.Name(ctx.rt), cst.Name("terms_sum")), args))]))
    return above, new_body, [*after, *totals]


def value_at(body: list, name: str, i: int) -> tuple[str, int] | None:
    """Which binding's value ``name`` holds when line ``i`` of a loop body reads it: ``(the
    name bound, its line)`` of the last line before ``i`` that binds it, through plain
    aliases (``d_t7 = dz``: dz's); None where no line of this iteration before ``i`` binds it
    by a simple assignment (its value from another iteration, or a branch's)."""
    for k in range(i - 1, -1, -1):
        stmt = body[k]
        if name not in bound_in([stmt]):
            continue
        assign = single_assign(stmt)
        if assign is None or assign.targets[0].target.value != name:
            return None
        if type(assign.value) is cst.Name:
            return value_at(body, assign.value.value, k)
        return name, k
    return None


def appended(stmt) -> tuple[str, str] | None:
    """``(terms, g)`` of a line ``terms.append((g, ...))`` or ``terms.append(g)`` of names."""
    found = method_line(stmt, "append")
    if found is None:
        return None
    terms, item = found
    if type(item) is cst.Tuple and item.elements:
        item = item.elements[0].value
    return (terms, item.value) if type(item) is cst.Name else None


def terms_init(stmt, terms: str, ctx: Context) -> bool:
    """Whether ``stmt`` is ``terms = rt.Terms(...)``."""
    assign = single_assign(stmt)
    return assign is not None and assign.targets[0].target.value == terms and \
        type(assign.value) is cst.Call and type(assign.value.func) is cst.Attribute and \
        type(assign.value.func.value) is cst.Name and assign.value.func.value.value == ctx.rt \
        and assign.value.func.attr.value == "Terms"


def _bias_line(stmt, ctx: Context, bound: set):
    """``(acc, x, like, axis)`` of ``acc = acc + rt.unbroadcast(x, like)`` (axis None; ``like``
    not rebound in the loop) or ``acc = acc + x.sum(axis=k)`` (like None, axis the literal)."""
    assign = single_assign(stmt)
    if assign is None:
        return None
    acc, value = assign.targets[0].target.value, assign.value
    if not (type(value) is cst.BinaryOperation and type(value.operator) is cst.Add and
            type(value.left) is cst.Name and value.left.value == acc and
            type(value.right) is cst.Call and not value.lpar):
        return None
    call = value.right
    args = call.args
    if any(a.star for a in args):
        return None
    if type(call.func) is cst.Attribute and call.func.attr.value == "sum" and \
            type(call.func.value) is cst.Name and len(args) == 1 and \
            args[0].keyword is not None and args[0].keyword.value == "axis" and \
            _int_literal(args[0].value):
        x = call.func.value.value
        return (acc, x, None, args[0].value) if x != acc else None
    if resolve(call.func, ctx, bound | {acc}) is helpers.unbroadcast and len(args) == 2 and \
            all(a.keyword is None and type(a.value) is cst.Name for a in args):
        x, like = args[0].value.value, args[1].value.value
        if acc not in (x, like) and like not in bound:
            return acc, x, like, None
    return None


def _int_literal(node) -> bool:
    """``3`` or ``-1``."""
    return type(node) is cst.Integer or type(node) is cst.UnaryOperation and \
        type(node.operator) is cst.Minus and type(node.expression) is cst.Integer


def _any_zero_start(above: list, acc: str, ctx: Context):
    """``_zero_start`` of ``acc`` with whatever name its zeros are like."""
    for stmt in reversed(above):
        assign = single_assign(stmt)
        if assign is not None and assign.targets[0].target.value == acc:
            value = assign.value
            if type(value) is cst.Call and len(value.args) == 1 and \
                    type(value.args[0].value) is cst.Name:
                return _zero_start(above, acc, value.args[0].value.value, ctx)
            return None
    return None


def _aliased(stmt) -> str | None:
    """The target of a line ``name = other_name``, else None."""
    if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and \
            isinstance(stmt.body[0].targets[0].target, cst.Name) and \
            type(stmt.body[0].value) is cst.Name:
        return stmt.body[0].targets[0].target.value
    return None


def _aliases(body) -> dict[str, str]:
    """Names a loop body binds once to another name (``d_t1 = d_t4``), each with the name it
    stands for at the end of such a chain."""
    counts = binding_counts(cst.FunctionDef(cst.Name("_"), cst.Parameters(),
                                            cst.IndentedBlock(body)))
    direct = {}
    for stmt in body:
        if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
                type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and \
                isinstance(stmt.body[0].targets[0].target, cst.Name) and \
                type(stmt.body[0].value) is cst.Name:
            target, value = stmt.body[0].targets[0].target.value, stmt.body[0].value.value
            if counts.get(target) == 1 and counts.get(value, 0) <= 1:
                direct[target] = value
    roots = {}
    for name in direct:
        root, seen = name, set()
        while root in direct and root not in seen:
            seen.add(root)
            root = direct[root]
        roots[name] = root
    return roots


def _zero_start(above: list, acc: str, fixed: str, ctx: Context):
    """The statement ``acc = rt.zeros_like(fixed)`` in ``above`` when nothing after it there
    reads or binds ``acc`` or ``fixed``; else None."""
    for stmt in reversed(above):
        if acc not in reads(stmt):  # reads: every name the statement spells, targets too
            if fixed in bound_in([stmt]):
                return None
            continue
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
                type(stmt.body[0]) is cst.Assign):
            return None
        assign = stmt.body[0]
        value = assign.value
        if len(assign.targets) == 1 and type(assign.targets[0].target) is cst.Name and \
                assign.targets[0].target.value == acc and type(value) is cst.Call and \
                resolve(value.func, ctx, set()) is helpers.zeros_like and len(value.args) == 1 and \
                value.args[0].keyword is None and not value.args[0].star and \
                type(value.args[0].value) is cst.Name and value.args[0].value.value == fixed:
            return stmt
        return None
    return None


def _without(statements: list, stmt) -> tuple[list, list]:
    """``statements`` without ``stmt``; the comment lines above ``stmt`` move to the next
    statement, or are returned when there is none (the caller keeps them above what follows)."""
    i = next(i for i, s in enumerate(statements) if s is stmt)
    rest = statements[i + 1:]
    if rest:
        rest[0] = rest[0].with_changes(leading_lines=[*stmt.leading_lines, *rest[0].leading_lines])
        return [*statements[:i], *rest], []
    return statements[:i], list(stmt.leading_lines)


def _accumulation(stmt, ctx, bound):
    """``(acc, sum rule, fixed operand, g, varying operand)`` for a line
    ``acc = acc + rt.matmul_adjoint_x1(g, fixed, other)`` (or ``_x2(g, other, fixed)``)
    whose operands are names and whose fixed operand is not rebound in the loop."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Assign):
        return None
    assign = stmt.body[0]
    if len(assign.targets) != 1 or type(assign.targets[0].target) is not cst.Name:
        return None
    acc = assign.targets[0].target.value
    value = assign.value
    if not (type(value) is cst.BinaryOperation and type(value.operator) is cst.Add and
            type(value.left) is cst.Name and value.left.value == acc and
            type(value.right) is cst.Call and not value.lpar):
        return None
    call = value.right
    rule = resolve(call.func, ctx, bound | {acc})
    try:
        found = _SUMS.get(rule)
    except TypeError:
        return None
    if found is None or len(call.args) != 3 or any(
            a.keyword is not None or a.star or type(a.value) is not cst.Name for a in call.args):
        return None
    sum_name, position = found
    g, x1, x2 = (a.value for a in call.args)
    fixed, other = (x1, x2) if position == 1 else (x2, x1)
    if fixed.value in bound or fixed.value == acc or g.value == acc or other.value == acc:
        return None
    return acc, sum_name, fixed, g, other


def _bound_in(loop: cst.For) -> set[str]:
    """The names the loop binds: its targets and everything assigned in its body."""
    return set(names_in(loop.target)) | bound_in(loop.body.body)


def _touched_elsewhere(acc: str, line, body) -> bool:
    """Whether ``acc`` is read or bound anywhere in the loop body but ``line``."""
    for stmt in body:
        if stmt is line:
            continue
        if any(type(n) is cst.Name and n.value == acc for n in subexpressions(stmt)):
            return True
    return False
