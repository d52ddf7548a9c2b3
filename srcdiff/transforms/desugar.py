"""desugar: rewrite shorthand into the plain forms later passes handle.

Invariant after this pass: no augmented or annotated assignments, no chained
comparisons and no loop ``else`` remain; every assignment is ``name = expression``.

    acc += x * w           →    acc = acc + x * w
    y: float = f(x)        →    y = f(x)
    lo < x < hi            →    lo < x and x < hi
    for row in x:          →    for _i in range(len(x)):
                                    row = x[_i]
    for i, v in enumerate(x):   for i in range(len(x)): v = x[i]
    for a, b in zip(p, q):      for _i in range(min(len(p), len(q))): a = p[_i]; b = q[_i]
    for c in reversed(p):       for _i in range(len(p) - 1, -1, -1): c = p[_i]
    for k, v in d.items():      _keys = rt.keys(d); for k in _keys: v = d[k] (then as above)
    for … : … break … else: E   _broke = False; for … : … _broke = True; break …
                                if not _broke: E      (E after the loop where nothing breaks)

Every loop is then a ``for`` over ``range(...)`` (or a ``while``), and reading a row
is an ordinary indexing operation with its own adjoint.
"""

from __future__ import annotations

import libcst as cst

from ..context import Context, line_marker, parse_marker
from ..names import Namer, names_in, nodes

__all__ = ["rewrite", "dict_view", "parenthesized"]

_AUGMENTED = {
    cst.AddAssign: cst.Add, cst.SubtractAssign: cst.Subtract, cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide, cst.PowerAssign: cst.Power,
    cst.MatrixMultiplyAssign: cst.MatrixMultiply, cst.ModuloAssign: cst.Modulo,
    cst.FloorDivideAssign: cst.FloorDivide, cst.BitAndAssign: cst.BitAnd,
    cst.BitOrAssign: cst.BitOr, cst.BitXorAssign: cst.BitXor,
    cst.LeftShiftAssign: cst.LeftShift, cst.RightShiftAssign: cst.RightShift,
}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if not any(_sugar(n) for n in nodes(module)):
        return module  # nothing to rewrite: spare the visit of the whole tree
    return module.visit(_Desugar(Namer(names_in(module) | {ctx.rt}), ctx.rt, _else_lines(ctx)))


def _else_lines(ctx: Context) -> dict[int, int]:
    """``{line of a loop: line of its else}`` in the user's file, for the loops with one."""
    source = ctx.source
    loops = [n for n in nodes(source.module) if type(n) in (cst.For, cst.While) and n.orelse is not None]
    return {source.file_line(source.line_of(source.module, n)):
            source.file_line(source.positions[n.orelse].start.line) for n in loops}


def _sugar(node: cst.CSTNode) -> bool:
    """Whether ``node`` is one of the forms this pass rewrites (each ``leave_*`` below)."""
    if type(node) in (cst.For, cst.AugAssign, cst.AnnAssign):
        return True
    if type(node) is cst.While:
        return node.orelse is not None
    if type(node) is cst.Comparison:
        return len(node.comparisons) > 1
    return type(node) is cst.Assign and type(node.targets[0].target) in (cst.Tuple, cst.List) \
        and type(node.value) in (cst.Tuple, cst.List)


def parenthesized(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` in parentheses where it is an operation (an operand of ``+``, ``**``)."""
    if isinstance(expr, (cst.BinaryOperation, cst.BooleanOperation, cst.Comparison,
                         cst.UnaryOperation, cst.IfExp)) and not expr.lpar:
        return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expr


def _call(name: str, *args) -> cst.Call:
    return cst.Call(cst.Name(name), [cst.Arg(a) for a in args])


def dict_view(it: cst.BaseExpression) -> str | None:
    """``"values"``, ``"items"`` or ``"keys"`` for ``d.values()`` & co. of a variable."""
    if type(it) is cst.Call and not it.args and type(it.func) is cst.Attribute and \
            it.func.attr.value in ("values", "items", "keys") and type(it.func.value) is cst.Name:
        return it.func.attr.value
    return None


def _enumerate_start(it: cst.Call) -> cst.BaseExpression | None:
    """``k`` of ``enumerate(x, k)`` or ``enumerate(x, start=k)``; None for ``enumerate(x)``."""
    if len(it.args) < 2:
        return None
    return it.args[1].value


def _minus_one() -> cst.UnaryOperation:
    return cst.UnaryOperation(cst.Minus(), cst.Integer("1"))


def _index(seq: cst.BaseExpression, i: cst.Name) -> cst.Subscript:
    return cst.Subscript(seq, [cst.SubscriptElement(cst.Index(i))])


def _rebound(it: cst.BaseExpression, body) -> bool:
    """Whether the loop body assigns the name the loop iterates over (``x = x * r``)."""
    head = it
    while type(head) in (cst.Subscript, cst.Attribute):
        head = head.value
    if type(head) is not cst.Name:
        return False
    found = []

    class Targets(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            target = node.target.value if type(node.target) is cst.Subscript else node.target
            if type(target) is cst.Name and target.value == head.value:
                found.append(node)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            if type(node.target) is cst.Name and node.target.value == head.value:
                found.append(node)

    body.visit(Targets())
    return bool(found)


def _breaks(statements) -> bool:
    """Whether ``statements`` hold a ``break`` of their own loop (a nested loop's are its own)."""
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine and any(type(s) is cst.Break for s in stmt.body):
            return True
        if type(stmt) is cst.If and (_breaks(stmt.body.body) or stmt.orelse is not None and _breaks(
                stmt.orelse.body.body if type(stmt.orelse) is cst.Else else [stmt.orelse])):
            return True
    return False


def _flag_breaks(statements, flag: str) -> list:
    """``statements`` with ``flag = True`` right before each ``break`` of their own loop."""
    out = []
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine and any(type(s) is cst.Break for s in stmt.body):
            out.append(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(flag))],
                                                           cst.Name("True"))],
                                               leading_lines=stmt.leading_lines))
            stmt = stmt.with_changes(leading_lines=())
        elif type(stmt) is cst.If:
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=_flag_breaks(stmt.body.body, flag)))
            if type(stmt.orelse) is cst.Else:
                stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                    body=_flag_breaks(stmt.orelse.body.body, flag))))
            elif type(stmt.orelse) is cst.If:
                stmt = stmt.with_changes(orelse=_flag_breaks([stmt.orelse], flag)[0])
        out.append(stmt)
    return out


class _Desugar(cst.CSTTransformer):
    def __init__(self, namer: Namer, rt: str = "rt", else_lines=None):
        self.namer, self.rt, self.else_lines = namer, rt, else_lines or {}

    def without_else(self, original, updated):
        """``for``/``while`` … ``else``: the loop, then its ``else`` block, run where no
        ``break`` left the loop (a flag set right before each ``break``)."""
        orelse = list(updated.orelse.body.body)
        loop = updated.with_changes(orelse=None)
        if not _breaks(loop.body.body):
            return cst.FlattenSentinel([*self.plain(original, loop), *orelse])
        flag = self.namer.fresh_numbered("_broke")
        start = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(flag))], cst.Name("False"))],
                                        leading_lines=updated.leading_lines)
        loop = loop.with_changes(leading_lines=(), body=loop.body.with_changes(
            body=_flag_breaks(loop.body.body, flag)))
        where = parse_marker(updated.leading_lines)
        line = self.else_lines.get(where[0]) if where else None
        unbroken = cst.If(test=cst.UnaryOperation(cst.Not(), cst.Name(flag)),
                          body=cst.IndentedBlock(orelse),
                          leading_lines=[line_marker(line, "else:")] if line else ())
        return cst.FlattenSentinel([start, *self.plain(original, loop), unbroken])

    def plain(self, original, loop) -> list:
        """The statements a loop without ``else`` becomes (a ``for`` may name its sequence)."""
        done = self.leave_For(original, loop) if type(loop) is cst.For else loop
        return list(done.nodes) if type(done) is cst.FlattenSentinel else [done]

    def leave_While(self, original, updated: cst.While):
        return self.without_else(original, updated) if updated.orelse is not None else updated

    def leave_For(self, original, updated: cst.For):
        if updated.orelse is not None:
            return self.without_else(original, updated)
        it, target = updated.iter, updated.target
        if type(it) in (cst.Tuple, cst.List):  # for w in (w1, w2): name the sequence first
            seq = cst.Name(self.namer.fresh("_items"))
            made = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(seq)], it)],
                                           leading_lines=updated.leading_lines)
            return cst.FlattenSentinel([made, self.leave_For(original, updated.with_changes(iter=seq))])
        view = dict_view(it)
        if view is not None:  # for k, v in d.items(): over the keys, each value read by key
            keys = cst.Name(self.namer.fresh("_keys"))
            made = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(keys)], cst.Call(
                cst.Attribute(cst.Name(self.rt), cst.Name("keys")), [cst.Arg(it.func.value)]))],
                leading_lines=updated.leading_lines)
            if view == "keys":
                return cst.FlattenSentinel([made, self.leave_For(original, updated.with_changes(
                    iter=keys, leading_lines=()))])
            key, value = (e.value for e in target.elements) if view == "items" else \
                (cst.Name(self.namer.fresh("_key")), target)
            read = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(value)], _index(
                it.func.value, key))])
            loop = updated.with_changes(target=key, iter=keys, leading_lines=(),
                                        body=updated.body.with_changes(body=[read, *updated.body.body]))
            return cst.FlattenSentinel([made, self.leave_For(original, loop)])
        func = it.func.value if type(it) is cst.Call and type(it.func) is cst.Name else None
        if func == "range":
            return updated
        start = _enumerate_start(it) if func == "enumerate" else None
        if start is not None and type(start) is not cst.Integer and not (
                type(start) is cst.Name and not _rebound(start, updated.body)):
            # enumerate(x, k): Python reads k once, before the loop
            named = cst.Name(self.namer.fresh("_start"))
            made = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(named)], start)],
                                           leading_lines=updated.leading_lines)
            args = [it.args[0], cst.Arg(named)]
            return cst.FlattenSentinel([made, self.leave_For(original, updated.with_changes(
                iter=it.with_changes(args=args), leading_lines=()))])
        inner = it.args[0].value if func == "enumerate" else None
        zipping = type(inner) is cst.Call and type(inner.func) is cst.Name and \
            inner.func.value == "zip"  # for i, (a, b) in enumerate(zip(p, q))
        if func in ("enumerate", "zip", "reversed"):
            holder = inner if zipping else it
            zipped = [a.value for a in holder.args]
            # Python iterates over the objects it started with: name them first where the loop
            # rebinds them, or where they are computed (zip(ps, ps[::-1]) once, not per step)
            rebound = [i for i, seq in enumerate(zipped) if _rebound(seq, updated.body)
                       or type(seq) is not cst.Name]
            if rebound:
                made, args = [], list(holder.args)
                for i in rebound:
                    seq = cst.Name(self.namer.fresh("_items"))
                    made.append(cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(seq)], zipped[i])],
                        leading_lines=updated.leading_lines if not made else ()))
                    args[i] = args[i].with_changes(value=seq)
                holder = holder.with_changes(args=args)
                if zipping:
                    holder = it.with_changes(args=[it.args[0].with_changes(value=holder),
                                                   *it.args[1:]])
                return cst.FlattenSentinel([*made, self.leave_For(original, updated.with_changes(
                    iter=holder, leading_lines=()))])
        if func == "reversed":  # for c in reversed(xs): the rows from the last
            index = cst.Name(self.namer.fresh("_i"))
            seq = it.args[0].value
            last = cst.BinaryOperation(_call("len", seq), cst.Subtract(), cst.Integer("1"))
            read = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], _index(seq, index))],
                                           leading_lines=updated.leading_lines)
            return updated.with_changes(
                target=index, iter=_call("range", last, _minus_one(), _minus_one()),
                body=updated.body.with_changes(body=[read, *updated.body.body]))
        counted = None  # enumerate(x, start): the user's count, start + the index
        if func == "enumerate":
            index, value = (e.value for e in target.elements)
            if start is not None:
                counted, index = index, cst.Name(self.namer.fresh("_i"))
            seqs, values = [inner], [value]
            if zipping:
                seqs = [a.value for a in inner.args]
                values = [e.value for e in value.elements] if type(value) in (cst.Tuple, cst.List) \
                    and len(value.elements) == len(seqs) else [value]
        elif func == "zip":
            index = cst.Name(self.namer.fresh("_i"))
            seqs, values = [a.value for a in it.args], [e.value for e in target.elements]
        else:  # for row in x
            index = cst.Name(self.namer.fresh("_i"))
            seqs, values = [it], [target]
            if _rebound(it, updated.body) or type(it) in (cst.Call, cst.BinaryOperation,
                                                          cst.UnaryOperation):
                # Python iterates over the object it started with (made once, before the loop)
                seq = cst.Name(self.namer.fresh("_items"))
                made = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(seq)], it)],
                                               leading_lines=updated.leading_lines)
                return cst.FlattenSentinel([made, self.leave_For(
                    original, updated.with_changes(iter=seq, leading_lines=()))])
        lengths = [_call("len", s) for s in seqs]
        count = lengths[0] if len(lengths) == 1 else _call("min", *lengths)
        items = [_index(s, index) for s in seqs]
        if len(values) < len(seqs):  # for i, pair in enumerate(zip(p, q)): pair = (p[i], q[i])
            items = [cst.Tuple([cst.Element(item) for item in items])]
        reads = [(v, item) for v, item in zip(values, items)]
        if counted is not None:
            reads.insert(0, (counted, cst.BinaryOperation(index, cst.Add(), start)))
        reads = [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(v)], item)],
                                         leading_lines=updated.leading_lines if i == 0 else ())
                 for i, (v, item) in enumerate(reads)]
        return updated.with_changes(
            target=index, iter=_call("range", count),
            body=updated.body.with_changes(body=[*reads, *updated.body.body]))

    def leave_AugAssign(self, original, updated: cst.AugAssign) -> cst.Assign:
        op = _AUGMENTED[type(updated.operator)]
        value = cst.BinaryOperation(left=updated.target, operator=op(),
                                    right=parenthesized(updated.value))
        return cst.Assign(targets=[cst.AssignTarget(updated.target)], value=value)

    def leave_SimpleStatementLine(self, original, updated: cst.SimpleStatementLine):
        """``a, b = e1, e2`` → temporaries first (the whole right side is evaluated before
        any name changes, as in Python), then one assignment per name."""
        small = updated.body[0]
        if not (type(small) is cst.Assign and type(small.targets[0].target) in (cst.Tuple, cst.List)
                and type(small.value) in (cst.Tuple, cst.List)):
            return updated
        names = [e.value for e in small.targets[0].target.elements]
        values = [e.value for e in small.value.elements]
        if len(names) != len(values):
            return updated  # Python raises the ValueError when it runs
        temps = [cst.Name(self.namer.temp()) for _ in values]
        lines = [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(t)], v)])
                 for t, v in zip(temps, values)]
        lines += [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(n)], t)])
                  for n, t in zip(names, temps)]
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(lines)

    def leave_AnnAssign(self, original, updated: cst.AnnAssign) -> cst.Assign:
        return cst.Assign(targets=[cst.AssignTarget(updated.target)], value=updated.value)

    def leave_Comparison(self, original, updated: cst.Comparison) -> cst.BaseExpression:
        if len(updated.comparisons) == 1:
            return updated
        parts, left = [], updated.left
        for target in updated.comparisons:
            parts.append(cst.Comparison(left=left, comparisons=[target]))
            left = target.comparator
        result = parts[0]
        for part in parts[1:]:
            result = cst.BooleanOperation(left=result, operator=cst.And(), right=part)
        return result.with_changes(lpar=updated.lpar, rpar=updated.rpar)
