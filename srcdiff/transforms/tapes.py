"""tapes: a loop's tape keeps only what its pullback reads, and never an array for its shape.

``reverse`` tapes what the adjoint body reads when it is written; later passes remove reads
(``shapes`` drops ``rt.unbroadcast``), and some reads want only a shape: the template of
``rt.getitem_adjoint(g, out_3, key=…)`` is a whole version of an array written in the loop,
so taping it keeps one copy of the array per iteration. This pass

1. lets a shape-only use of such a version (the template of ``rt.getitem_adjoint`` /
   ``rt.add_at``, the shape of ``rt.unbroadcast`` / ``rt.zeros_like``) name a version made
   outside every loop instead: ``rt.setitem`` and copies keep shape and dtype, so any version
   has the same;
2. drops from each ``_tapeN.push(…)`` and its ``for … in reversed(_tapeN)`` the names that
   loop of the pullback no longer reads (and their ``name = None`` placeholders);
3. has the tape keep ``z_blank = rt.blank_like(z)`` for a version made in the loop that the
   pullback reads only for its shape and dtype, only in that loop, and at least once as the
   array a slice or split was cut from (an LSTM's ``z`` cut into gates: the template of each
   gate's ``rt.getitem_adjoint``): a read-only array of zeros with no memory of its own
   where ``z`` is a numpy array of a page or more, so the tape does not hold one such array
   per step.

Invariant after this pass: every name a tape keeps is read by the pullback loop that pops it;
a version made in the loop that the pullback reads only for its shape, once at least as the
array a piece was cut from, is kept as its blank.

    _tape1.push((t, _t3, out_3))                 _tape1.push((t, _t3))
    for t, _t3, out_3 in reversed(_tape1):   →   for t, _t3 in reversed(_tape1):
        … rt.getitem_adjoint(d, out_3, key=…)        … rt.getitem_adjoint(d, out, key=…)
"""

from __future__ import annotations

from collections import Counter

import libcst as cst

from ..context import Context
from ..names import names_in, nodes, spelled, with_blocks
from .reverse import tape_push, tape_target

__all__ = ["rewrite", "BLANK", "blanked"]

BLANK = "_blank"  # z_blank: the blank the tape keeps for z

# rt function -> the positions of its arguments it reads only for shape and dtype
# of those, the ones whose argument is an array a piece was cut from (larger than the piece):
# a tape keeps the blank of such a version (the template of an operand's shape, ``rt.unbroadcast(g,
# x)``, is mostly an array as small as the adjoint, and costs nothing to keep)
CUTS = {"getitem_adjoint", "add_at", "split_adjoint", "slices_adjoint", "slices_joined"}
SHAPE_ONLY = {"getitem_adjoint": (1,), "add_at": (2,), "unbroadcast": (1,), "zeros_like": (0,),
              "split_adjoint": (1,), "slices_adjoint": (0,), "slices_joined": (0,)}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    if not any(n.startswith("_tape") for n in names_in(vjp)):
        return module  # no loop
    forward = [s for s in vjp.body.body if type(s) is not cst.FunctionDef]
    stable = _stable_versions(vjp, forward)
    kept: dict[str, tuple[str, ...]] = {}  # tape -> the names its pullback loop reads
    blanks: dict[str, dict[str, str]] = {}  # tape -> {blank's name: the version it stands for}
    taken = set(names_in(vjp))
    body = []
    for stmt in vjp.body.body:
        if type(stmt) is cst.FunctionDef:
            stmt = _loops_walked(stmt, _Pullback(ctx.rt, stable, kept, blanks, taken, stmt))
        body.append(stmt)
    pushes = _Pushes(kept, blanks, ctx.rt)
    body = [_loops_walked(s, pushes) if type(s) is not cst.FunctionDef else s for s in body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _loops_walked(stmt, transformer: cst.CSTTransformer):
    """``stmt.visit(transformer)`` for a transformer that changes loops alone (its
    ``leave_For``, ``leave_While``; inner loops first), walking statements only, not every
    expression in them as libcst's traversal does."""
    kind = type(stmt)
    if kind is cst.SimpleStatementLine:
        return stmt
    if kind not in (cst.If, cst.For, cst.While, cst.FunctionDef):
        return stmt.visit(transformer)  # (a kind the pipeline does not write here)
    updated = with_blocks(stmt, lambda block: block.with_changes(
        body=[_loops_walked(s, transformer) for s in block.body]))
    if kind is cst.For:
        return transformer.leave_For(stmt, updated)
    if kind is cst.While:
        return transformer.leave_While(stmt, updated)
    return updated


def _stable_versions(vjp: cst.FunctionDef, forward) -> dict[str, str]:
    """For each array version the forward pass makes only by ``rt.setitem`` of, or copies of,
    other versions, the version they all come from when that one is assigned once,
    unconditionally, outside every loop (or is a parameter): it has their shape and dtype."""
    sources: dict[str, set] = {}   # name -> the names its version assignments copy
    roots: set[str] = set()        # names with an assignment that makes a new value
    anchored: set[str] = {p.name.value for p in vjp.params.params}  # stable, once, on top
    counts: Counter = Counter()

    def walk(statements, top):
        for stmt in statements:
            if type(stmt) is cst.SimpleStatementLine:
                for small in stmt.body:
                    if type(small) is not cst.Assign:
                        continue
                    for target in small.targets:
                        for n in names_in(target.target):
                            counts[n] += 1
                    target = small.targets[0].target
                    if len(small.targets) != 1 or type(target) is not cst.Name:
                        roots.update(names_in(small.targets[0].target))
                        continue
                    source = _version_source(small.value)
                    if source is None:
                        roots.add(target.value)
                    else:
                        sources.setdefault(target.value, set()).add(source)
                    if top:
                        anchored.add(target.value)
            elif type(stmt) in (cst.For, cst.While):
                if type(stmt) is cst.For:
                    for n in names_in(stmt.target):
                        counts[n] += 1
                        roots.add(n)
                walk(stmt.body.body, False)
            elif type(stmt) is cst.If:
                walk(stmt.body.body, False)
                orelse = stmt.orelse
                while type(orelse) is cst.If:
                    walk(orelse.body.body, False)
                    orelse = orelse.orelse
                if orelse is not None:
                    walk(orelse.body.body, False)

    walk(forward, True)
    anchored = {n for n in anchored if counts[n] <= 1}
    anchor: dict[str, str | None] = {n: (n if n in anchored else None) for n in roots}
    for n in anchored - set(sources):
        anchor.setdefault(n, n)
    changed = True
    while changed:  # an optimistic fixpoint: unknown sources agree until shown otherwise
        changed = False
        for n, srcs in sources.items():
            if n in roots:
                continue
            known = {anchor[s] for s in srcs if s in anchor}
            new = None if None in known or len(known) > 1 or not known else known.pop()
            if anchor.get(n, "?") != new:
                anchor[n] = new
                changed = True
    return {n: a for n, a in anchor.items()
            if a is not None and a != n and all(anchor.get(s) == a for s in sources.get(n, ()))}


def _version_source(value: cst.BaseExpression) -> str | None:
    """``b`` of ``a = b`` or ``a = rt.setitem(b, …)``."""
    if type(value) is cst.Name:
        return value.value
    if type(value) is cst.Call and type(value.func) is cst.Attribute and \
            value.func.attr.value == "setitem" and value.args and \
            type(value.args[0].value) is cst.Name:
        return value.args[0].value.value
    return None


class _Pullback(cst.CSTTransformer):
    """Renames shape-only uses of taped versions, then trims each loop's pop target."""

    def __init__(self, rt: str, stable: dict[str, str], kept: dict, blanks: dict, taken: set,
                 pullback: cst.FunctionDef):
        super().__init__()
        self.rt, self.stable, self.kept, self.blanks, self.taken = rt, stable, kept, blanks, taken
        self.spelled = spelled(pullback)  # name -> how often the pullback spells it


    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For:
        tape = _tape_of(updated.iter)
        if tape is None:
            return updated
        names = _target(updated.target)
        swap = {n: self.stable[n] for n in names
                if n in self.stable and self.stable[n] not in names}
        body = updated.body.visit(_ShapeOnly(self.rt, swap)) if swap else updated.body
        read = names_in(body)
        keep = tuple(n for n in names if n in read)
        blank = {}
        for n in _shape_only(self.rt, original, keep, self.spelled):
            name, k = n + BLANK, 1
            while name in self.taken:
                k += 1
                name = f"{n}{BLANK}{k}"
            self.taken.add(name)
            blank[n] = name
        if blank:
            body = body.visit(_Renamed(blank))
            keep = tuple(blank.get(n, n) for n in keep)
            self.blanks[tape] = {blank[n]: n for n in blank}
        self.kept[tape] = keep
        return updated.with_changes(body=body, target=tape_target(keep))


def blanked(name: str) -> str:
    """The version a tape's blank stands for (``z`` of ``z_blank``), for comments."""
    head, _, k = name.rpartition(BLANK)
    return head if head and (k == "" or k.isdigit()) else name


def _shape_only(rt: str, loop: cst.For, names, whole: Counter) -> list[str]:
    """The names of ``names`` (the loop's pop target) that the pullback spells only in this
    loop: in its target, and as arguments the ``SHAPE_ONLY`` helpers read for shape alone,
    at least once as the array a piece was cut from (``CUTS``)
    (the loop's body as the earlier steps of this pass left it, before the swaps, which
    only take such arguments away)."""
    in_loop = spelled(loop)
    allowed: Counter = Counter()
    cut: set = set()  # read as the array a slice or a split was cut from
    for n in nodes(loop.body):
        if type(n) is not cst.Call:
            continue
        func = n.func
        if not (type(func) is cst.Attribute and type(func.value) is cst.Name and
                func.value.value == rt and func.attr.value in SHAPE_ONLY):
            continue
        for i in SHAPE_ONLY[func.attr.value]:
            if i < len(n.args) and n.args[i].keyword is None and n.args[i].star == "" and \
                    type(n.args[i].value) is cst.Name:
                allowed[n.args[i].value.value] += 1
                if func.attr.value in CUTS:
                    cut.add(n.args[i].value.value)
    return [n for n in names if n in cut and in_loop[n] == whole[n] == allowed[n] + 1]


class _Renamed(cst.CSTTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        new = self.names.get(updated.value)
        return updated if new is None else updated.with_changes(value=new)


class _ShapeOnly(cst.CSTTransformer):
    def __init__(self, rt: str, swap: dict[str, str]):
        self.rt, self.swap = rt, swap

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        func = updated.func
        if not (type(func) is cst.Attribute and type(func.value) is cst.Name
                and func.value.value == self.rt and func.attr.value in SHAPE_ONLY):
            return updated
        args = list(updated.args)
        for i in SHAPE_ONLY[func.attr.value]:
            if i < len(args) and args[i].keyword is None and isinstance(args[i].value, cst.Name) \
                    and args[i].value.value in self.swap:
                args[i] = args[i].with_changes(value=cst.Name(self.swap[args[i].value.value]))
        return updated.with_changes(args=args)


class _Pushes(cst.CSTTransformer):
    """Trims each ``_tapeN.push(…)`` (and its comment and placeholders) to what is kept."""

    def __init__(self, kept: dict, blanks: dict, rt: str):
        super().__init__()
        self.kept, self.blanks, self.rt = kept, blanks, rt

    def leave_For(self, original, updated):
        return self._loop(updated)

    def leave_While(self, original, updated):
        return self._loop(updated)

    def _loop(self, loop):
        body = list(loop.body.body)
        if not body:
            return loop
        push = _push_of(body[-1])
        if push is None or push[0] not in self.kept:
            return loop
        tape, names = push
        keep = self.kept[tape]
        if tuple(keep) == tuple(names):
            return loop
        blanks = self.blanks.get(tape, {})
        dropped = set(names) - set(keep) - set(blanks.values())  # (a blank's version stays)
        body = [s for s in body[:-1] if not _placeholder(s, dropped)]
        for name, version in blanks.items():
            call = cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name("blank_like")),
                            [cst.Arg(cst.Name(version))])
            body.append(cst.SimpleStatementLine(
                [cst.Assign([cst.AssignTarget(cst.Name(name))], call)],
                leading_lines=[cst.EmptyLine(comment=cst.Comment(
                    f"# the pullback reads {version} for its shape and dtype alone"))]))
        return loop.with_changes(body=loop.body.with_changes(body=[*body, tape_push(tape, keep)]))


def _tape_of(node: cst.BaseExpression) -> str | None:
    """``_tape1`` of ``reversed(_tape1)``."""
    if type(node) is cst.Call and type(node.func) is cst.Name and \
            node.func.value == "reversed" and len(node.args) == 1 and \
            type(node.args[0].value) is cst.Name and \
            node.args[0].value.value.startswith("_tape"):
        return node.args[0].value.value
    return None


def _push_of(stmt) -> tuple[str, tuple[str, ...]] | None:
    """``(tape, names)`` of a ``_tapeN.push(names)`` statement."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Expr and type(stmt.body[0].value) is cst.Call):
        return None
    call = stmt.body[0].value
    func = call.func
    if not (type(func) is cst.Attribute and func.attr.value == "push" and
            type(func.value) is cst.Name and func.value.value.startswith("_tape")):
        return None
    value = call.args[0].value
    if type(value) is cst.Name:
        return func.value.value, (value.value,)
    if type(value) is cst.Tuple and all(type(e.value) is cst.Name for e in value.elements):
        return func.value.value, tuple(e.value.value for e in value.elements)
    return None


def _placeholder(stmt, names: set[str]) -> bool:
    """``n = None`` for a dropped ``n`` (made on one side of an ``if`` only)."""
    return type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
        type(stmt.body[0]) is cst.Assign and type(stmt.body[0].value) is cst.Name and \
        stmt.body[0].value.value == "None" and \
        isinstance(stmt.body[0].targets[0].target, cst.Name) and \
        stmt.body[0].targets[0].target.value in names


def _target(node: cst.BaseExpression) -> tuple[str, ...]:
    if type(node) is cst.Name:
        return () if node.value == "_" else (node.value,)
    return tuple(e.value.value for e in node.elements)
