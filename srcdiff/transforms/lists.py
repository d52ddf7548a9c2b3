"""lists: a list built by appends costs O(1) per append, forward and backward.

``reverse`` makes ``xs.append(v)`` functional: ``xs_3 = rt.append(xs_2, v)`` copies the list,
the tape keeps every version, and the pullback slices (``dxs_2 = dxs_3[:-1]``) and copies
(``rt.tree_add_at``) the adjoint list at each step, after ``rt.tree_put`` made a zero array for
every entry: O(steps²) in all. For a list this pass proves safe it writes

    xs_3 = rt.append(xs_2, v)              →   xs_3 = rt.append_in_place(xs_2, v)
    dxs_1 = rt.tree_put(xs_1, -1, d_t7)    →   dxs_1 = rt.list_put(xs_1, -1, d_t7)
    dxs_2 = dxs_3[:-1]                     →   d_t6 = rt.pop_adjoint(dxs_3, xs)
    d_t6 = dxs_3[-1]                           dxs_2 = dxs_3
    dxs_2 = rt.tree_add_at(dxs_2, xs_2, -1, d_t1)  →  dxs_2 = rt.list_add_at(dxs_2, -1, d_t1)

where an adjoint entry is ``None`` until something is added into it (zeros are made only for
an entry popped or read without one). A list qualifies when (the family of its versions: the
names joined by copies and appends to one list display)

1. the display is at the top of the forward pass, assigned once, and every version of the list
   is made by it, a copy of a version or an append to one (one list object in all);
2. no version is read (forward, tape push, return) after an append that ran after it was
   bound: the versions then read as they would as copies (a flow walk, loops to a fixpoint);
3. the pullback reads a version as a whole (``rt.tree_put``, ``rt.tree_zeros``, any other use)
   only outside its loops, and only a version still current when the forward pass ends; the
   primal the pullback reads for zeros is the display's name, whose first ``len(d)`` entries
   never change;
4. every adjoint of a version is made fresh (``rt.list_put``/``rt.list_nones``, or ``list(…)``
   of anything else), changed only through the names above, and a copy ``dxs_2 = dxs_3``
   hands it over: ``dxs_3`` is not read again before it is bound anew. Any other read of it
   gets ``rt.filled(dxs, xs)``, a new list with zeros for the missing entries.

Otherwise the list keeps the code ``reverse`` wrote.
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import names_in

__all__ = ["rewrite"]


class _Unsafe(Exception):
    """The family of versions does not qualify."""


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    if not isinstance(vjp, cst.FunctionDef):
        return module
    for family, root in _families(vjp, ctx.rt):
        try:
            vjp = _Family(vjp, family, root, ctx.rt).rewrite()
        except _Unsafe:
            continue
    return module.with_changes(body=[*module.body[:-1], vjp])


def _call(value, rt: str, name: str) -> bool:
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
        isinstance(value.func.value, cst.Name) and value.func.value.value == rt and \
        value.func.attr.value == name


def _single(small) -> str | None:
    """The target of ``name = …``."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and \
            isinstance(small.targets[0].target, cst.Name):
        return small.targets[0].target.value
    return None


def _smalls(statements):
    """Every small statement (with its line) of ``statements``, nested blocks included."""
    for stmt in statements:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                yield small
        elif isinstance(stmt, cst.FunctionDef):
            continue
        else:
            for block in _blocks(stmt):
                yield from _smalls(block)


def _blocks(stmt) -> list:
    found = []
    if isinstance(stmt, (cst.If, cst.For, cst.While)):
        found.append(stmt.body.body)
        orelse = stmt.orelse
        if isinstance(orelse, cst.If):
            found.extend(_blocks(orelse))
        elif orelse is not None:
            found.append(orelse.body.body)
    elif hasattr(stmt, "body") and hasattr(stmt.body, "body"):
        found.append(stmt.body.body)
    return found


def _families(vjp: cst.FunctionDef, rt: str):
    """Each top-level list display's versions: names joined by copies and appends."""
    forward = [s for s in vjp.body.body if not isinstance(s, cst.FunctionDef)]
    parent: dict[str, str] = {}

    def find(n):
        while parent.setdefault(n, n) != n:
            n = parent[n]
        return n

    for small in _smalls(forward):
        target = _single(small)
        if target is None:
            continue
        value = small.value
        source = value.value if isinstance(value, cst.Name) and \
            value.value not in ("None", "True", "False") else \
            value.args[0].value.value if _call(value, rt, "append") and \
            isinstance(value.args[0].value, cst.Name) else None
        if source is not None:
            parent[find(target)] = find(source)
    roots = []
    for stmt in forward:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if _single(small) and isinstance(small.value, cst.List):
                    roots.append(small.targets[0].target.value)
    groups: dict[str, set] = {}
    for n in list(parent):
        groups.setdefault(find(n), set()).add(n)
    for root in roots:
        family = groups.get(find(root), {root})
        yield frozenset(family), root


class _Family:
    def __init__(self, vjp: cst.FunctionDef, family: frozenset, root: str, rt: str):
        self.vjp, self.family, self.root, self.rt = vjp, family, root, rt
        self.forward = [s for s in vjp.body.body if not isinstance(s, cst.FunctionDef)]
        pullbacks = [s for s in vjp.body.body if isinstance(s, cst.FunctionDef)]
        if len(pullbacks) != 1:
            raise _Unsafe
        self.pullback = pullbacks[0]
        taken = names_in(cst.Module(body=self.forward)) | {p.name.value for p in vjp.params.params}
        self.adjoint: dict[str, str] = {}
        for v in family:
            name = "d" + v
            while name in taken:
                name += "_"
            self.adjoint[name] = v
        self.appends: dict[str, str] = {}  # the target of an append -> the version appended to

    # ----- the forward pass -----

    def check_forward(self) -> frozenset:
        """The versions stale when the forward pass ends (condition 2), after condition 1."""
        defs = 0
        for small in _smalls(self.forward):
            target = _single(small)
            bound = names_in(small.targets[0].target) if isinstance(small, cst.Assign) else \
                names_in(small.target) if isinstance(small, (cst.AugAssign, cst.AnnAssign)) else set()
            if not bound & self.family:
                continue
            if target is None:
                raise _Unsafe
            value = small.value
            if isinstance(value, cst.List):
                defs += 1
                if target != self.root:
                    raise _Unsafe
            elif _call(value, self.rt, "append"):
                source = value.args[0].value.value
                if self.appends.setdefault(target, source) != source:
                    raise _Unsafe  # two appends make one name from different versions
            elif not (isinstance(value, cst.Name) and (value.value in self.family or
                                                       value.value == "None")):
                raise _Unsafe  # (None: the placeholder of a name a tape keeps)
        for stmt in self._all_statements(self.forward):
            if isinstance(stmt, cst.For) and names_in(stmt.target) & self.family:
                raise _Unsafe
        if defs != 1 or not self.appends or self._bindings(self.root) != 1:
            raise _Unsafe
        self.escaping: set = set()
        stale = frozenset(self._walk(self.forward, frozenset()))
        if self.escaping & stale:
            raise _Unsafe
        return stale

    def _bindings(self, name: str) -> int:
        return sum(1 for small in _smalls(self.forward) if _single(small) == name)

    def _all_statements(self, statements):
        for stmt in statements:
            yield stmt
            if not isinstance(stmt, (cst.SimpleStatementLine, cst.FunctionDef)):
                for block in _blocks(stmt):
                    yield from self._all_statements(block)

    def _read(self, node, stale) -> None:
        if names_in(node) & stale:
            raise _Unsafe

    def _walk(self, statements, stale: frozenset) -> frozenset:
        for stmt in statements:
            if isinstance(stmt, cst.FunctionDef):
                continue
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    stale = self._small(small, stale)
            elif isinstance(stmt, cst.If):
                self._read(stmt.test, stale)
                out = self._walk(stmt.body.body, stale)
                orelse = stmt.orelse
                other = self._walk([orelse], stale) if isinstance(orelse, cst.If) else \
                    self._walk(orelse.body.body, stale) if orelse is not None else stale
                stale = out | other
            elif isinstance(stmt, (cst.For, cst.While)):
                head = stmt.iter if isinstance(stmt, cst.For) else stmt.test
                self._read(head, stale)
                self.escaping |= names_in(head) & self.family
                for _ in range(len(self.family) + 2):
                    if isinstance(stmt, cst.While):
                        self._read(head, stale)
                    out = stale | self._walk(stmt.body.body, stale)
                    if out == stale:
                        break
                    stale = out
                else:
                    raise _Unsafe
                if stmt.orelse is not None:
                    stale = self._walk(stmt.orelse.body.body, stale)
            else:
                raise _Unsafe
        return stale

    def _small(self, small, stale: frozenset) -> frozenset:
        if isinstance(small, cst.Del):
            if not all(isinstance(t.target, cst.Name) for t in _del_targets(small)):
                raise _Unsafe
            return stale
        if _is_push(small):  # the tape keeps a reference; what the pullback reads is checked there
            return stale
        self._read(small.value if isinstance(small, cst.Assign) else small, stale)
        for node in _attributes(small):  # xs.pop(), xs.sort(): a change we do not follow
            if isinstance(node.value, cst.Name) and node.value.value in self.family:
                raise _Unsafe
        target = _single(small)
        if target in self.family:
            value = small.value
            if _call(value, self.rt, "append"):
                self.escaping |= names_in(value.args[1].value) & self.family
                return (stale | self.family) - {target}
            return stale - {target}
        if target is not None and _entry_read(small.value, self.family):
            return stale
        self.escaping |= names_in(small) & self.family  # stored, returned, passed on
        return stale

    # ----- the pullback -----

    def rewrite(self) -> cst.FunctionDef:
        self.stale = self.check_forward()
        self.frames: list = []
        params = [p.name.value for p in self.pullback.params.params]
        body = self._block(list(self.pullback.body.body), in_loop=False)
        owned = [cst.SimpleStatementLine([cst.Assign(
            [cst.AssignTarget(cst.Name(p))], cst.Call(cst.Name("list"), [cst.Arg(cst.Name(p))]))])
            for p in params if p in self.adjoint]  # a seed given by the caller: a copy of ours
        pullback = self.pullback.with_changes(body=self.pullback.body.with_changes(
            body=[*owned, *body]))
        forward_body = []
        for stmt in self.vjp.body.body:
            if isinstance(stmt, cst.FunctionDef):
                forward_body.append(pullback)
            else:
                forward_body.append(stmt.visit(_InPlaceAppends(self.appends, self.rt)))
        return self.vjp.with_changes(body=self.vjp.body.with_changes(body=forward_body))

    def _rt(self, name: str, *args) -> cst.Call:
        return cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name(name)),
                        [cst.Arg(a) for a in args])

    def _block(self, statements: list, in_loop: bool, loop_body: bool = False) -> list:
        frame = [statements, 0, loop_body]
        self.frames.append(frame)
        try:
            return self._statements(statements, in_loop, frame)
        finally:
            self.frames.pop()

    def _statements(self, statements: list, in_loop: bool, frame: list) -> list:
        out = []
        i = 0
        while i < len(statements):
            frame[1] = i
            stmt = statements[i]
            if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
                pair = self._append_adjoint(statements, i, in_loop)
                if pair is not None:
                    out.extend(pair)
                    i += 2 if len(pair) == 2 else 1
                    continue
                out.append(stmt.with_changes(body=[self._small_pb(stmt.body[0], statements, i,
                                                                  in_loop)]))
            elif isinstance(stmt, cst.SimpleStatementLine):
                out.append(stmt.with_changes(body=[self._other(s, in_loop) for s in stmt.body]))
            elif isinstance(stmt, cst.If):
                out.append(self._if(stmt, in_loop))
            elif isinstance(stmt, (cst.For, cst.While)):
                head = stmt.iter if isinstance(stmt, cst.For) else stmt.test
                if names_in(head) & (self.family | set(self.adjoint)):
                    raise _Unsafe
                orelse = stmt.orelse
                if orelse is not None:
                    orelse = orelse.with_changes(body=orelse.body.with_changes(
                        body=self._block(list(orelse.body.body), in_loop)))
                out.append(stmt.with_changes(body=stmt.body.with_changes(
                    body=self._block(list(stmt.body.body), True, True)), orelse=orelse))
            else:
                if names_in(stmt) & (self.family | set(self.adjoint)):
                    raise _Unsafe
                out.append(stmt)
            i += 1
        return out

    def _if(self, stmt: cst.If, in_loop: bool) -> cst.If:
        if names_in(stmt.test) & (self.family | set(self.adjoint)):
            raise _Unsafe
        orelse = stmt.orelse
        if isinstance(orelse, cst.If):
            orelse = self._if(orelse, in_loop)
        elif orelse is not None:
            orelse = orelse.with_changes(body=orelse.body.with_changes(
                body=self._block(list(orelse.body.body), in_loop)))
        return stmt.with_changes(body=stmt.body.with_changes(
            body=self._block(list(stmt.body.body), in_loop)), orelse=orelse)

    def _append_adjoint(self, statements, i, in_loop):
        """``dxs_2 = dxs_3[:-1]`` (then ``d_v = dxs_3[-1]``) of ``xs_3 = rt.append(xs_2, v)``."""
        small = statements[i].body[0]
        target = _single(small)
        if target not in self.adjoint or not isinstance(small.value, cst.Subscript):
            return None
        dvb = small.value.value
        if not (isinstance(dvb, cst.Name) and dvb.value in self.adjoint and
                self.adjoint[dvb.value] in self.appends and
                self.appends[self.adjoint[dvb.value]] == self.adjoint[target] and
                _is_slice_to_last(small.value)):
            raise _Unsafe
        nxt = statements[i + 1] if i + 1 < len(statements) else None
        entry = nxt.body[0] if isinstance(nxt, cst.SimpleStatementLine) and \
            len(nxt.body) == 1 else None
        self._handed_over(dvb.value, statements, i + (2 if entry is not None and
                                                      _is_last(entry, dvb.value) else 1))
        line = statements[i]
        if entry is not None and _is_last(entry, dvb.value):
            pop = cst.Assign([cst.AssignTarget(entry.targets[0].target)],
                             self._rt("pop_adjoint", dvb, cst.Name(self.root)))
            alias = cst.Assign([cst.AssignTarget(cst.Name(target))], dvb)
            return [line.with_changes(body=[pop]), nxt.with_changes(body=[alias])]
        return [line.with_changes(body=[small.with_changes(value=self._rt("drop_adjoint", dvb))])]

    def _handed_over(self, name: str, statements, start: int) -> None:
        """``name`` (an adjoint list another name now holds) is not read again before it is
        bound anew, on any path on from ``statements[start]``: the rest of each enclosing
        block, and for a loop's body the next iteration too."""
        frames = self.frames
        k, begin = len(frames) - 1, start
        while True:
            block, _, loop = frames[k]
            found = _scan(name, block[begin:])
            if found == "read":
                raise _Unsafe
            if found == "bound":
                return
            if loop and _scan(name, block) == "read":
                raise _Unsafe
            if k == 0:
                return
            k -= 1
            begin = frames[k][1] + 1

    def _small_pb(self, small, statements, i, in_loop):
        target = _single(small)
        if target in self.adjoint:
            value = small.value
            if _call(value, self.rt, "tree_put") or _call(value, self.rt, "tree_zeros"):
                primal = value.args[0].value
                if not isinstance(primal, cst.Name) or primal.value not in self.family:
                    return self._other(small, in_loop)
                self._whole(primal.value, in_loop)
                if _call(value, self.rt, "tree_zeros"):
                    return small.with_changes(value=self._rt("list_nones", primal))
                key = value.args[1].value
                if isinstance(key, cst.Slice) or any(a.keyword for a in value.args):
                    raise _Unsafe
                return small.with_changes(value=self._rt("list_put", primal, key,
                                                         value.args[2].value))
            if _call(value, self.rt, "tree_add_at") and len(value.args) == 4 and \
                    not any(a.keyword for a in value.args):
                d, primal, key, g = (a.value for a in value.args)
                if isinstance(d, cst.Name) and d.value in self.adjoint and \
                        isinstance(primal, cst.Name) and primal.value in self.family:
                    if d.value != target:
                        self._handed_over(d.value, statements, i + 1)
                    self._no_read(key, in_loop)
                    self._no_read(g, in_loop)
                    return small.with_changes(value=self._rt("list_add_at", d, key, g))
                raise _Unsafe
            if isinstance(value, cst.Name) and value.value in self.adjoint:
                self._handed_over(value.value, statements, i + 1)
                return small
            # made by anything else: a list of our own
            return small.with_changes(value=cst.Call(cst.Name("list"), [cst.Arg(
                self._other_value(value, in_loop))]))
        if isinstance(small, cst.Assign) and isinstance(small.value, cst.Subscript) and \
                isinstance(small.value.value, cst.Name) and small.value.value.value in self.adjoint \
                and len(small.value.slice) == 1 and \
                isinstance(small.value.slice[0].slice, cst.Index):
            key = small.value.slice[0].slice.value
            self._no_read(key, in_loop)
            return small.with_changes(value=self._rt("entry_adjoint", small.value.value, key,
                                                     cst.Name(self.root)))
        return self._other(small, in_loop)

    def _whole(self, primal: str, in_loop: bool) -> None:
        """A read of the version ``primal`` as a whole: condition 3."""
        if in_loop or primal in self.stale:
            raise _Unsafe

    def _no_read(self, node, in_loop) -> None:
        for n in names_in(node) & self.family:
            self._whole(n, in_loop)
        if names_in(node) & set(self.adjoint):
            raise _Unsafe

    def _other(self, small, in_loop):
        if isinstance(small, cst.Assign):
            for t in small.targets:
                if names_in(t.target) & (self.family | set(self.adjoint)):
                    raise _Unsafe
            return small.with_changes(value=self._other_value(small.value, in_loop))
        if names_in(small) & (self.family | set(self.adjoint)):
            if isinstance(small, (cst.Return, cst.Expr)) and small.value is not None:
                return small.with_changes(value=self._other_value(small.value, in_loop))
            raise _Unsafe
        return small

    def _other_value(self, value, in_loop):
        """Any other read: a version as a whole (condition 3), an adjoint list filled."""
        for n in names_in(value) & self.family:
            self._whole(n, in_loop)
        adjoints = names_in(value) & set(self.adjoint)
        if adjoints:
            value = value.visit(_Fill(adjoints, self.root, self.rt))
        return value


def _del_targets(small: cst.Del):
    target = small.target
    return [cst.AssignTarget(e.value) for e in target.elements] if isinstance(
        target, cst.Tuple) else [cst.AssignTarget(target)]


def _attributes(node):
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Attribute):
            yield n
        stack.extend(n.children)


def _is_push(small) -> bool:
    """``_tape1.push((…))``: what the pullback reads from it is checked there."""
    return isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and \
        isinstance(small.value.func, cst.Attribute) and small.value.func.attr.value == "push" \
        and isinstance(small.value.func.value, cst.Name) and \
        small.value.func.value.value.startswith("_tape")


def _entry_read(value, family) -> bool:
    """``xs_2[k]`` (an entry or a slice, a new list) or ``len(xs_2)``."""
    if isinstance(value, cst.Subscript) and isinstance(value.value, cst.Name):
        return not any(names_in(e) & family for e in value.slice)
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and \
        value.func.value == "len" and len(value.args) == 1 and \
        isinstance(value.args[0].value, cst.Name)


def _scan(name: str, statements) -> str | None:
    """``"bound"`` if ``statements`` bind ``name`` (``name = …`` on their own level) before
    reading it, ``"read"`` if they may read it first, else None."""
    for stmt in statements:
        small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and \
            len(stmt.body) == 1 else None
        if small is not None and _single(small) == name:
            return "read" if name in names_in(small.value) else "bound"
        if isinstance(stmt, cst.If) and name not in names_in(stmt.test):
            found = {_scan(name, block) for block in _blocks(stmt)}
            last = stmt
            while isinstance(last.orelse, cst.If):
                last = last.orelse
            if last.orelse is None:
                found.add(None)  # no else: the test may skip every body
            if "read" in found:
                return "read"
            if found == {"bound"}:
                return "bound"
            continue
        if isinstance(stmt, (cst.For, cst.While)) and stmt.orelse is None and name not in \
                names_in(stmt.iter if isinstance(stmt, cst.For) else stmt.test):
            if _scan(name, stmt.body.body) == "read":  # (it may run no time: never "bound")
                return "read"
            continue
        if name in names_in(stmt):
            return "read"
    return None


def _is_slice_to_last(sub: cst.Subscript) -> bool:
    if len(sub.slice) != 1 or not isinstance(sub.slice[0].slice, cst.Slice):
        return False
    s = sub.slice[0].slice
    return s.lower is None and s.step is None and isinstance(s.upper, cst.UnaryOperation) and \
        isinstance(s.upper.operator, cst.Minus) and isinstance(s.upper.expression, cst.Integer) \
        and s.upper.expression.value == "1"


def _is_last(small, name: str) -> bool:
    """``d_v = name[-1]``."""
    if _single(small) is None or not isinstance(small.value, cst.Subscript):
        return False
    sub = small.value
    if not (isinstance(sub.value, cst.Name) and sub.value.value == name and len(sub.slice) == 1
            and isinstance(sub.slice[0].slice, cst.Index)):
        return False
    key = sub.slice[0].slice.value
    return isinstance(key, cst.UnaryOperation) and isinstance(key.operator, cst.Minus) and \
        isinstance(key.expression, cst.Integer) and key.expression.value == "1"


class _Fill(cst.CSTTransformer):
    def __init__(self, names, root: str, rt: str):
        self.names, self.root, self.rt = names, root, rt

    def leave_Name(self, original, updated):
        if updated.value in self.names:
            return cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name("filled")),
                            [cst.Arg(updated), cst.Arg(cst.Name(self.root))])
        return updated

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)

    def leave_Subscript(self, original, updated):
        if isinstance(original.value, cst.Name) and original.value.value in self.names and \
                len(updated.slice) == 1 and isinstance(updated.slice[0].slice, cst.Index):
            return cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name("entry_adjoint")),
                            [cst.Arg(original.value), cst.Arg(updated.slice[0].slice.value),
                             cst.Arg(cst.Name(self.root))])
        return updated


class _InPlaceAppends(cst.CSTTransformer):
    def __init__(self, appends, rt: str):
        self.appends, self.rt = appends, rt

    def leave_Assign(self, original, updated):
        target = _single(updated)
        if target in self.appends and _call(updated.value, self.rt, "append"):
            return updated.with_changes(value=updated.value.with_changes(
                func=updated.value.func.with_changes(attr=cst.Name("append_in_place"))))
        return updated
