"""comprehensions: list comprehensions, generator expressions and the builtins that consume
them become the loops a person would write, which every later pass already differentiates.

Invariant after this pass: no comprehension (list, dict or set) or generator expression remains, and no call of
the builtins ``sum``, ``max`` or ``min`` over a sequence (``max(a, b)`` of two values becomes
a conditional expression). Each loop stands right before the statement that used its
result, in the same place (inside the loop body for a comprehension nested in another), and
carries that statement's ``# line N`` marker. A comprehension's variables are renamed where
the function uses the same names elsewhere (in Python they are the comprehension's own).

    heads = [attend(q, k) for q, k in zip(Wq, Wk)]      heads = []
                                                   →    for q, k in zip(Wq, Wk):
                                                            heads.append(attend(q, k))
    penalty = sum(np.sum(p ** 2) for p in ps if p.ndim > 1)
                                                        penalty = 0
                                                   →    for p in ps:
                                                            if p.ndim > 1:
                                                                penalty = penalty + np.sum(p ** 2)
    m = max(a, b)                                  →    m = b if b > a else a
    sq = {k: np.sum(v ** 2) for k, v in d.items()}      sq = {}
                                                   →    for k, v in d.items():
                                                            sq[k] = np.sum(v ** 2)
    sizes = {len(v) for v in xs}                        sizes = []
                                                   →    for v in xs:
                                                            sizes.append(len(v))
                                                        sizes = set(sizes)

A set holds only constants (an array cannot be hashed): a value that needs a gradient
reaching ``set(...)`` is refused where the later passes meet it.
"""

from __future__ import annotations

import builtins

import libcst as cst

from ..context import Context
from ..names import Namer, Renamed, names_in, nodes, occurrences

__all__ = ["rewrite", "REDUCERS", "consumes_generator", "is_map"]

# builtins whose one argument may be a generator expression (or ``map(f, xs)``), and how
# each lowers: "list" builds the items first, then calls the builtin on them (list: the items)
REDUCERS = {builtins.sum: "sum", builtins.max: "max", builtins.min: "min",
            builtins.any: "list", builtins.all: "list", builtins.list: "list",
            builtins.tuple: "list", builtins.sorted: "list"}
_COMPARE = {"max": cst.GreaterThan, "min": cst.LessThan}
_COMPREHENSIONS = (cst.ListComp, cst.DictComp, cst.SetComp)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if not any(type(n) in (*_COMPREHENSIONS, cst.GeneratorExp) or type(n) is cst.Call and
               _reducer(n, ctx) is not None for n in nodes(module)):
        return module
    funcdef = module.body[0]
    lowering = _Lowering(ctx, Namer(names_in(module) | {ctx.rt}), occurrences(funcdef))
    body = lowering.block(funcdef.body.body)
    return module.with_changes(body=[funcdef.with_changes(body=funcdef.body.with_changes(body=body))])


def _reducer(call: cst.Call, ctx: Context) -> str | None:
    """``"sum"``, ``"max"``, ``"min"`` or ``"list"`` for a call this pass lowers, else None."""
    if type(call.func) is not cst.Name or any(a.star for a in call.args) or any(
            a.keyword for a in call.args[:1]) or any(  # sum(xs, start=s): as sum(xs, s)
            a.keyword and a.keyword.value != "start" for a in call.args[1:]):
        return None
    kind = REDUCERS.get(ctx.lookup(call.func.value))
    if kind != "sum" and any(a.keyword for a in call.args):
        return None
    if kind is None or not call.args:
        return None
    first = call.args[0].value
    if kind == "list":  # any(gen), all(gen), list(gen): the sequence becomes a list
        return kind if len(call.args) == 1 and (type(first) is cst.GeneratorExp or
                                                is_map(first, ctx)) else None
    if kind == "sum":
        return kind if len(call.args) <= 2 else None
    return kind if len(call.args) == 1 or all(  # max(a, b): values
        type(a.value) not in (cst.GeneratorExp, cst.ListComp) for a in call.args) else None


def consumes_generator(call: cst.Call, ctx: Context) -> bool:
    """Whether ``call`` is a builtin that this pass lowers with a generator expression (or a
    ``map(f, xs)``) as its first argument (``sum(p ** 2 for p in ps)``)."""
    return bool(call.args) and (type(call.args[0].value) is cst.GeneratorExp or
                                is_map(call.args[0].value, ctx)) and _reducer(call, ctx) is not None


def is_map(node: cst.BaseExpression, ctx: Context) -> bool:
    """``map(f, xs, …)``: the builtin map of a function over one or more sequences."""
    return type(node) is cst.Call and type(node.func) is cst.Name and len(node.args) >= 2 \
        and not any(a.keyword or a.star for a in node.args) and ctx.lookup(node.func.value) is builtins.map


def _line(small: cst.BaseSmallStatement) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([small])


def _assign(name: str, value: cst.BaseExpression) -> cst.SimpleStatementLine:
    return _line(cst.Assign([cst.AssignTarget(cst.Name(name))], value))


class _Lowering:
    def __init__(self, ctx: Context, namer: Namer, counts):
        self.ctx, self.namer, self.counts = ctx, namer, counts
        self.sets: set[str] = set()  # names a set comprehension built

    def iterable(self, node: cst.BaseExpression, before: list) -> cst.BaseExpression:
        """What a loop runs over: a set built here as ``list(s)`` (a set has no ``s[i]``)."""
        node = self.expr(node, before)
        if type(node) is cst.Name and node.value in self.sets:
            return cst.Call(cst.Name("list"), [cst.Arg(node)])
        return node

    # ----- statements -----

    def block(self, statements) -> list:
        out = []
        for stmt in statements:
            out.extend(self.statement(stmt))
        return out

    def statement(self, stmt) -> list:
        before: list = []
        if type(stmt) is cst.SimpleStatementLine:
            if len(stmt.body) == 1 and self.whole(stmt.body[0], before):
                return self.placed(before, stmt, keep=False)
            stmt = stmt.with_changes(body=[self.expression_in(s, before) for s in stmt.body])
        elif type(stmt) is cst.If:
            stmt = self.branch(stmt, before)
        elif type(stmt) in (cst.For, cst.While, cst.With):  # validate keeps them out of tests
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=self.block(stmt.body.body)))
            if type(stmt) is cst.For:
                stmt = stmt.with_changes(iter=self.iterable(stmt.iter, before))
            if getattr(stmt, "orelse", None) is not None:  # for … else: its own block
                stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(
                    body=stmt.orelse.body.with_changes(body=self.block(stmt.orelse.body.body))))
        return self.placed(before, stmt) if before else [stmt]

    @staticmethod
    def placed(before: list, stmt, keep: bool = True) -> list:
        """``before`` then ``stmt`` (unless the loops replace it), the statement's
        ``# line N`` marker on the first of them."""
        first = before[0].with_changes(leading_lines=[*stmt.leading_lines, *before[0].leading_lines])
        return [first, *before[1:], *([stmt.with_changes(leading_lines=())] if keep else [])]

    def branch(self, stmt: cst.If, before: list) -> cst.If:
        test = self.expr(stmt.test, before)
        orelse = stmt.orelse
        if type(orelse) is cst.If:  # elif: what its test needs runs only when it is reached
            inner = self.statement(orelse)
            orelse = cst.Else(body=cst.IndentedBlock(inner)) if len(inner) > 1 else inner[0]
        elif type(orelse) is cst.Else:
            orelse = orelse.with_changes(body=orelse.body.with_changes(body=self.block(orelse.body.body)))
        return stmt.with_changes(test=test, orelse=orelse,
                                 body=stmt.body.with_changes(body=self.block(stmt.body.body)))

    def whole(self, small, before: list) -> bool:
        """``name = <comprehension, sum, max or min>``: the loop builds ``name`` itself (unless
        the comprehension reads ``name``); False where the statement is not of that form."""
        if not (type(small) is cst.Assign and type(small.targets[0].target) is cst.Name):
            return False
        name, value = small.targets[0].target.value, small.value
        if isinstance(value, _COMPREHENSIONS):
            whole = True
        elif type(value) is cst.Call:
            kind = _reducer(value, self.ctx)
            whole = kind in ("sum", "max", "min") and not (kind != "sum" and len(value.args) > 1)
        else:
            whole = False
        if not whole or any(type(n) is cst.Name and n.value == name for n in nodes(value)):
            return False
        made = self.lower(value, before, name)
        if type(value) is cst.SetComp:  # s = [] … s.append(e), then s = set(s)
            before.append(_assign(name, made))
            self.sets.add(name)
        return True

    def expression_in(self, small, before: list):
        if type(small) is cst.Assign:
            return small.with_changes(value=self.expr(small.value, before))
        if type(small) in (cst.Return, cst.Expr) and small.value is not None:
            return small.with_changes(value=self.expr(small.value, before))
        if type(small) in (cst.AugAssign, cst.AnnAssign) and small.value is not None:
            return small.with_changes(value=self.expr(small.value, before))
        return small

    # ----- expressions -----

    def expr(self, node: cst.BaseExpression, before: list) -> cst.BaseExpression:
        """``node`` with every comprehension and reducer replaced by the name its loop
        builds; the loops are appended to ``before``."""
        if not any(type(n) in (*_COMPREHENSIONS, cst.GeneratorExp) or type(n) is cst.Call and
                   _reducer(n, self.ctx) is not None for n in nodes(node)):
            return node
        return node.visit(_Replace(self, before))

    def lower(self, node, before: list, name: str | None = None) -> cst.BaseExpression:
        """The loop of a comprehension or reducer call, appended to ``before``; returns what
        stands for its value (``name``, or a fresh one)."""
        if type(node) is cst.ListComp:
            return self.collect(node, before, name, lambda acc, e: self.appended(acc, e))
        if type(node) is cst.DictComp:  # d[k] = v for each item, into d = {}
            return self.collect(node, before, name, lambda acc, e: [_line(cst.Assign(
                [cst.AssignTarget(cst.Subscript(cst.Name(acc), [cst.SubscriptElement(
                    cst.Index(e.key))]))], e.value))], start=cst.Dict([]))
        if type(node) is cst.SetComp:  # the items in a list, then set(...) of it
            items = self.collect(node, before, name, lambda acc, e: self.appended(acc, e))
            return cst.Call(cst.Name("set"), [cst.Arg(items)])
        kind = _reducer(node, self.ctx)
        args = [a.value for a in node.args]
        if kind == "list":  # any(gen), all(gen), list(gen), tuple(gen), sorted(gen)
            items = self.collect(args[0], before, None, lambda acc, e: self.appended(acc, e))
            if self.ctx.lookup(node.func.value) is builtins.list:
                return items
            return node.with_changes(args=[cst.Arg(items)])
        if kind in ("max", "min") and len(args) > 1:  # max(a, b): the first of the largest
            return self.pick(kind, [self.expr(a, before) for a in args])
        if kind == "sum":
            start = self.expr(args[1], before) if len(args) > 1 else cst.Integer("0")
            return self.collect(args[0], before, name, lambda acc, e: [_assign(
                acc, cst.BinaryOperation(cst.Name(acc), cst.Add(), _paren(e)))], start=start)
        return self.extreme(kind, args[0], before, name)

    def pick(self, kind: str, values) -> cst.BaseExpression:
        best = values[0]
        for value in values[1:]:
            best = cst.IfExp(test=cst.Comparison(value, [cst.ComparisonTarget(
                _COMPARE[kind](), best)]), body=value, orelse=best, lpar=[cst.LeftParen()],
                rpar=[cst.RightParen()])
        return best.with_changes(lpar=[], rpar=[])

    def extreme(self, kind: str, seq, before: list, name: str | None) -> cst.BaseExpression:
        """``max(seq)``: a loop keeping the first of the largest, as Python's ``max`` does."""
        first = self.namer.fresh_numbered("_first")
        acc = name or self.namer.fresh_numbered(f"_{kind}")

        def keep(acc_name, e):
            value = cst.Name(self.namer.fresh_numbered("_v"))
            better = cst.Comparison(value, [cst.ComparisonTarget(_COMPARE[kind](), cst.Name(acc_name))])
            keep_it = cst.IndentedBlock([_assign(acc_name, value)])
            return [_assign(value.value, e),
                    cst.If(test=cst.Name(first), body=keep_it, orelse=cst.If(test=better, body=keep_it)),
                    _assign(first, cst.Name("False"))]

        before.append(_assign(first, cst.Name("True")))
        return self.collect(seq, before, acc, keep, start=cst.Float("0.0"))

    def generator(self, call: cst.Call) -> cst.GeneratorExp:
        """``map(f, xs, ys)`` as ``(f(_item1, _item2) for _item1, _item2 in zip(xs, ys))``."""
        seqs = [a.value for a in call.args[1:]]
        names = [cst.Name(self.namer.fresh_numbered("_item")) for _ in seqs]
        elt = cst.Call(call.args[0].value, [cst.Arg(n) for n in names])
        target = names[0] if len(names) == 1 else cst.Tuple([cst.Element(n) for n in names],
                                                             lpar=[], rpar=[])
        it = seqs[0] if len(seqs) == 1 else cst.Call(cst.Name("zip"), [cst.Arg(q) for q in seqs])
        return cst.GeneratorExp(elt=elt, for_in=cst.CompFor(target=target, iter=it))

    def collect(self, comp, before: list, name, action, start=None) -> cst.Name:
        """The loops of ``comp`` (a comprehension, or any sequence: ``sum(xs)``) with
        ``action(acc, element)`` innermost; ``acc`` starts as ``[]`` or ``start``."""
        acc = name or self.namer.fresh_numbered(
            "_items" if start is None else "_dict" if type(start) is cst.Dict else "_sum")
        before.append(_assign(acc, start if start is not None else cst.List([])))
        if is_map(comp, self.ctx):
            comp = self.generator(comp)
        if not isinstance(comp, (*_COMPREHENSIONS, cst.GeneratorExp)):  # sum(xs), max(xs)
            item = self.namer.fresh_numbered("_item")
            comp = cst.GeneratorExp(elt=cst.Name(item), for_in=cst.CompFor(
                target=cst.Name(item), iter=self.iterable(comp, before)))
        comp = self.own_names(comp)
        elt = cst.DictElement(comp.key, comp.value) if type(comp) is cst.DictComp else comp.elt
        before.extend(self.loops(comp.for_in, elt, acc, action, before))
        return cst.Name(acc)

    def loops(self, clause: cst.CompFor, elt, acc: str, action, outside: list) -> list:
        """``for`` statements for ``clause`` and the clauses nested in it; the first clause's
        iterable is computed in ``outside`` (before the loops), as Python does."""
        iterable = self.iterable(clause.iter, outside)
        inner: list = []  # what the element (or the next clause's iterable) needs, then its use
        if clause.inner_for_in is not None:
            inner += self.loops(clause.inner_for_in, elt, acc, action, inner)
        else:
            element = self.expr(elt, inner)
            inner += action(acc, element)
        for condition in reversed(clause.ifs):  # only what passes the filters is computed
            test_before: list = []
            test = self.expr(condition.test, test_before)
            inner = [*test_before, cst.If(test=test, body=cst.IndentedBlock(inner))]
        return [cst.For(target=clause.target, iter=iterable, body=cst.IndentedBlock(inner))]

    def appended(self, acc: str, element) -> list:
        call = cst.Call(cst.Attribute(cst.Name(acc), cst.Name("append")), [cst.Arg(element)])
        return [_line(cst.Expr(call))]

    def own_names(self, comp):
        """``comp`` with its variables renamed where the function spells them elsewhere."""
        bound = set()
        clause = comp.for_in
        while clause is not None:
            bound |= {n.value for n in nodes(clause.target) if type(n) is cst.Name}
            clause = clause.inner_for_in
        inside = occurrences(comp)
        renames = {n: self.namer.fresh(n) for n in sorted(bound) if self.counts[n] > inside[n]}
        return comp.visit(Renamed(renames)) if renames else comp


def _paren(e: cst.BaseExpression) -> cst.BaseExpression:
    """``e`` as the right operand of ``+``: parenthesized where it binds as loosely or looser."""
    loose = type(e) is cst.BinaryOperation and type(e.operator) in (cst.Add, cst.Subtract)
    if (loose or type(e) in (cst.BooleanOperation, cst.IfExp, cst.Comparison)) and not e.lpar:
        return e.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return e


class _Replace(cst.CSTTransformer):
    """Replaces the outermost comprehensions and reducer calls of one expression."""

    def __init__(self, lowering: _Lowering, before: list):
        self.lowering, self.before = lowering, before

    def _lowers(self, node) -> bool:
        return isinstance(node, _COMPREHENSIONS) or type(node) is cst.Call and \
            _reducer(node, self.lowering.ctx) is not None

    def on_visit(self, node) -> bool:
        return not self._lowers(node) and type(node) is not cst.GeneratorExp

    def on_leave(self, original, updated):
        if self._lowers(original):
            return self.lowering.lower(original, self.before)
        return updated
