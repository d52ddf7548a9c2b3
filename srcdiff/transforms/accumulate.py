"""accumulate: indexing adjoints are added in place into the adjoint they build up.

``dx = dx + rt.getitem_adjoint(g, x, key=k)`` makes a zero array the size of ``x`` for each
read of ``x[k]``, so a loop that reads ``x[t]`` for every ``t`` costs O(len(x)) per step and
O(len(x)²) in all. Where ``dx`` is provably the only reference to its array, this pass writes
``dx = rt.add_at(dx, g, x, key=k)``, which adds ``g`` into ``dx[k]`` in place: O(size of g).

Invariant after this pass: ``rt.add_at`` only changes an adjoint of the pullback whose every
assignment makes a new array (``rt.zeros_like(…)``, ``rt.getitem_adjoint(…)``, ``dx + e``,
``rt.add_at(dx, …)``) and which nothing reads but those accumulations and the pullback's final
``return``; so no other name can see the change.

    dx = rt.zeros_like(x)                                 dx = rt.zeros_like(x)
    for t, _t3 in reversed(_tape1):               →       for t, _t3 in reversed(_tape1):
        dx = dx + rt.getitem_adjoint(d_t3, x, key=rt.at[t])
                                                          dx = rt.add_at(dx, d_t3, x, key=rt.at[t])

Every other accumulation ``dx = dx + e`` into an adjoint that holds a fresh array only it
refers to becomes ``dx = rt.add_into(dx, e)``, which adds ``e`` into ``dx`` in place (no new
array the size of ``dx``) where ``e`` has the shape and dtype of ``dx``, and is ``dx + e``
otherwise (dtypes are known only when it runs). Such an adjoint is made by arithmetic
(``a * b``, ``-a``: a new array, or a number), by ``rt.zeros_like``/``rt.getitem_adjoint``/
``rt.add_at``, or taken over from an adjoint made so (``dx = d_t2``, at the pullback's top
level, after the last read of ``d_t2``); it is read only as an operand of arithmetic or a
comparison, by its own accumulations and by the final ``return``, so no other name, tape or
container can see its array change.

    d_t2 = dd * (1.0 - d * d)                             d_t2 = dd * (1.0 - d * d)
    dx = d_t2                                     →       dx = d_t2
    dx = dx + da * np.cos(x)                              dx = rt.add_into(dx, da * np.cos(x))
"""

from __future__ import annotations

from collections import Counter, defaultdict

import libcst as cst

from ..analysis.values import map_statements
from ..context import Context
from ..names import children, names_in, with_blocks

__all__ = ["rewrite"]

_FRESH = ("zeros_like", "getitem_adjoint", "add_at")  # rt calls that return a new array


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    body = [_pullback(stmt, ctx.rt) if type(stmt) is cst.FunctionDef else stmt
            for stmt in vjp.body.body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _pullback(fn: cst.FunctionDef, rt: str) -> cst.FunctionDef:
    owned, sums = _owned(fn, rt), _owned_sums(fn, rt)
    if owned or sums:  # (an assignment is a line's: no libcst traversal of every expression)
        in_place = _InPlace(owned, sums, rt)
        fn = fn.with_changes(body=fn.body.with_changes(body=map_statements(
            fn.body.body, lambda line: _line_in_place(line, in_place))))
    return fn.with_changes(body=fn.body.with_changes(body=_in_order(fn.body.body, rt)))


def _in_order(statements, rt: str) -> list:
    """``statements`` (and the blocks inside them), with each ``dx = dx + rt.getitem_adjoint(g,
    x, key=k)`` written ``dx = rt.add_at(dx, g, x, key=k)`` where, in this very block, ``dx``
    was last bound to an array an ``rt`` call made (``rt.getitem_adjoint``, ``rt.zeros_like``,
    ``rt.add_at``) and nothing has read it since: only ``dx`` can refer to that array, whatever
    is read after (a loop's ``dz = rt.getitem_adjoint(…)`` then ``dz = dz + …`` once per slice of
    ``z``, then ``rt.unbroadcast(dz, …)``: no zero array per slice). Any other read of a name,
    here or in a nested block, ends this for it."""
    out, owned = [], set()
    for stmt in statements:
        if type(stmt) is not cst.SimpleStatementLine:
            owned -= names_in(stmt)
            out.append(_with_blocks(stmt, rt))
            continue
        smalls = []
        for small in stmt.body:
            target = small.targets[0].target if type(small) is cst.Assign and \
                len(small.targets) == 1 else None
            if type(target) is not cst.Name:
                owned -= names_in(small)
                smalls.append(small)
                continue
            name, value = target.value, small.value
            other = _accumulated(name, value)
            if other is not None and name in owned and _is_getitem_adjoint(other, rt):
                owned -= names_in(other)
                small = small.with_changes(value=other.with_changes(
                    func=other.func.with_changes(attr=cst.Name("add_at")),
                    args=[cst.Arg(cst.Name(name)), *other.args]))
            else:
                owned -= names_in(value)
                if _is_rt_call(value, rt, _FRESH):
                    owned.add(name)
                else:
                    owned.discard(name)
            smalls.append(small)
        out.append(stmt.with_changes(body=smalls))
    return out


def _with_blocks(stmt, rt: str):
    """``stmt`` with :func:`_in_order` applied to each block inside it."""
    if type(stmt) not in (cst.For, cst.While, cst.If, cst.With):
        return stmt
    return with_blocks(stmt, lambda block: block.with_changes(body=_in_order(block.body, rt)))


def _owned(fn: cst.FunctionDef, rt: str) -> set[str]:
    """Adjoints of ``fn`` that hold arrays only they refer to, and that some indexing adjoint
    accumulates into."""
    fresh_only: dict[str, bool] = defaultdict(lambda: True)
    other_reads: set[str] = set()
    indexed: set[str] = set()
    for p in fn.params.params:
        fresh_only[p.name.value] = False
    statements = list(_simple(fn.body.body))
    last = fn.body.body[-1] if fn.body.body else None
    for line, small in statements:
        if type(small) is cst.Assign and len(small.targets) == 1 and \
                type(small.targets[0].target) is cst.Name:
            name = small.targets[0].target.value
            value = small.value
            other = _accumulated(name, value)
            if other is not None:
                other_reads |= names_in(other)
                if _is_getitem_adjoint(other, rt):
                    indexed.add(name)
            elif _is_rt_call(value, rt, _FRESH):
                other_reads |= names_in(value)
            else:
                fresh_only[name] = False
                other_reads |= names_in(value)
        elif type(small) is cst.Return and line is last:
            continue  # the final return reads the finished adjoints
        else:
            targets = _targets(small)
            for name in targets:
                fresh_only[name] = False
            other_reads |= names_in(small) - targets
    return {n for n in indexed if fresh_only[n] and n not in other_reads}


def _owned_sums(fn: cst.FunctionDef, rt: str) -> set[str]:
    """Adjoints of ``fn`` accumulated with ``+`` that hold fresh arrays only they refer to."""
    kinds: dict[str, set[str]] = defaultdict(set)  # how each name is bound: fresh, sum, ...
    taken: dict[str, list[tuple[int, str]]] = defaultdict(list)  # n = m: (where, m) for n
    moved: dict[str, list[int]] = defaultdict(list)  # n = m: where m is taken over
    reads, top = _Reads(), {id(stmt) for stmt in fn.body.body}
    params = {p.name.value for p in fn.params.params}
    last = fn.body.body[-1] if fn.body.body else None
    for index, (line, small) in enumerate(_simple(fn.body.body)):
        reads.at = index
        if type(small) is cst.Return and line is last:
            for name in names_in(small):  # reads the finished adjoints, keeps none for later
                reads.where[name].add(index)
            continue
        target = small.targets[0].target if type(small) is cst.Assign and \
            len(small.targets) == 1 else None
        if type(target) is not cst.Name:
            for name in _targets(small):
                kinds[name].add("other")
            reads.read(small)
            continue
        name, value = target.value, small.value
        other = _accumulated(name, value)
        if other is not None:
            kinds[name].add("sum")
            reads.read(value)  # other, an operand of +, is added into name, not kept
        elif type(value) is cst.Name and id(line) in top:
            kinds[name].add("move")
            taken[name].append((index, value.value))
            moved[value.value].append(index)
            reads.where[value.value].add(index)
        else:
            kinds[name].add("fresh" if _makes_array(value, rt) else "other")
            reads.read(value)

    def movable(m: str, at: int) -> bool:  # m's array can be taken over at ``at``: m is
        return m not in params and kinds.get(m) == {"fresh"} and not reads.kept[m] and \
            moved.get(m) == [at] and max(reads.where[m]) == at  # not read after, nor kept

    return {n for n, k in list(kinds.items()) if "sum" in k and k <= {"fresh", "sum", "move"}
            and n not in params and not reads.kept[n] and not moved[n]
            and all(movable(m, at) for at, m in taken[n])}


def _makes_array(value: cst.BaseExpression, rt: str) -> bool:
    """Whether ``value`` is a new array (or a number) that nothing else refers to."""
    return type(value) in (cst.BinaryOperation, cst.UnaryOperation) or \
        _is_rt_call(value, rt, _FRESH)


class _Reads:
    """Where each name is read (``where``: statement numbers) and how often a read may keep
    a reference to its array (``kept``): anything but an operand of arithmetic or a
    comparison, whose result is a new value. Whether a read is an operand is decided by its
    parent in the tree being read, not by node identity: generated lines share node objects
    (one ``Name`` may be an operand in one line and a call's argument in another)."""

    def __init__(self):
        self.at = 0
        self.where: dict[str, set[int]] = defaultdict(set)
        self.kept: Counter = Counter()

    def read(self, node: cst.CSTNode) -> None:
        """Record the reads in ``node`` as reads at statement ``self.at``."""
        stack = [(node, False)]  # (node, whether it is an operand of arithmetic)
        while stack:
            n, operand = stack.pop()
            kind = type(n)
            if kind is cst.Name:
                self.where[n.value].add(self.at)
                if not operand:
                    self.kept[n.value] += 1
            elif kind is cst.BinaryOperation:
                stack += ((n.left, True), (n.right, True))
            elif kind is cst.UnaryOperation:
                stack.append((n.expression, True))
            elif kind is cst.Comparison:
                stack.append((n.left, True))
                stack += ((c.comparator, True) for c in n.comparisons)
            else:
                stack += ((c, False) for c in children(n))


def _line_in_place(line: cst.SimpleStatementLine, in_place: "_InPlace"):
    smalls = [in_place.leave_Assign(s, s) if type(s) is cst.Assign else s for s in line.body]
    return line if all(a is b for a, b in zip(smalls, line.body)) else \
        line.with_changes(body=smalls)


class _InPlace(cst.CSTTransformer):
    def __init__(self, owned: set[str], sums: set[str], rt: str):
        self.owned, self.sums, self.rt = owned, sums, rt

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        target = updated.targets[0].target if len(updated.targets) == 1 else None
        if type(target) is not cst.Name:
            return updated
        other = _accumulated(target.value, updated.value)
        if other is None:
            return updated
        if target.value in self.owned and _is_getitem_adjoint(other, self.rt):
            call = other.with_changes(func=other.func.with_changes(attr=cst.Name("add_at")),
                                      args=[cst.Arg(cst.Name(target.value)), *other.args])
            return updated.with_changes(value=call)
        if target.value in self.sums and type(updated.value.left) is cst.Name and \
                updated.value.left.value == target.value:  # dx + e, not e + dx: the order kept
            call = cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name("add_into")),
                            [cst.Arg(cst.Name(target.value)), cst.Arg(other)])
            return updated.with_changes(value=call)
        return updated


def _accumulated(name: str, value: cst.BaseExpression) -> cst.BaseExpression | None:
    """``e`` of ``name + e`` or ``e + name`` where ``e`` does not read ``name``, else None."""
    if not (type(value) is cst.BinaryOperation and type(value.operator) is cst.Add):
        return None
    for mine, other in ((value.left, value.right), (value.right, value.left)):
        if type(mine) is cst.Name and mine.value == name and name not in names_in(other):
            return other
    return None


def _is_rt_call(node: cst.BaseExpression, rt: str, functions) -> bool:
    return type(node) is cst.Call and type(node.func) is cst.Attribute and \
        type(node.func.value) is cst.Name and node.func.value.value == rt and \
        node.func.attr.value in functions


def _is_getitem_adjoint(node: cst.BaseExpression, rt: str) -> bool:
    return _is_rt_call(node, rt, ("getitem_adjoint",)) and bool(node.args) and \
        node.args[0].keyword is None and \
        any(a.keyword is not None and a.keyword.value == "key" for a in node.args)


def _targets(small: cst.CSTNode) -> set[str]:
    found: set[str] = set()
    if type(small) is cst.Assign:
        for t in small.targets:
            found |= names_in(t.target)
    elif type(small) in (cst.AugAssign, cst.AnnAssign):
        found |= names_in(small.target)
    return found


def _simple(statements):
    """``(statement line, small statement)`` for every simple statement, nested blocks too;
    a compound statement's header (``for`` target and iterable, ``if`` test) counts as a
    small statement that reads and binds its names."""
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                yield stmt, small
            continue
        if type(stmt) is cst.For:
            yield stmt, cst.Assign(targets=[cst.AssignTarget(stmt.target)], value=stmt.iter)
        elif type(stmt) in (cst.If, cst.While):
            yield stmt, cst.Expr(stmt.test)
        for block in _blocks(stmt):
            yield from _simple(block)


def _blocks(stmt):
    body = getattr(stmt, "body", None)
    if isinstance(body, cst.BaseSuite):
        yield body.body
    orelse = getattr(stmt, "orelse", None)
    if type(orelse) is cst.If:
        yield [orelse]
    elif orelse is not None:
        yield orelse.body.body
