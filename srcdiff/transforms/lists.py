"""lists: a list built by appends costs O(1) per append, forward and backward.

``reverse`` makes ``xs.append(v)`` functional: ``xs_3 = rt.append(xs_2, v)`` copies the list,
the tape keeps every version, and the pullback slices (``dxs_2 = dxs_3[:-1]``) and copies
(``rt.tree_add_at``) the adjoint list at each step, after ``rt.tree_put`` made a zero array for
every entry: O(steps²) in all. For a list this pass proves safe it writes

    xs_3 = rt.append(xs_2, v)              →   xs_3 = rt.append_in_place(xs_2, v)
    dxs_1 = rt.tree_put(xs_1, -1, d_t7)    →   dxs_1 = rt.list_put(xs_1, -1, d_t7)
    dxs_2 = dxs_3[:-1]                     →   d_t6 = rt.pop_adjoint(dxs_3, xs)
    d_t6 = dxs_3[-1]                           dxs_2 = dxs_3
    dxs_2 = dxs_3[:-1]                     →   dh_3 = dh_3 + rt.pop_adjoint(dxs_3, xs)
    dh_3 = dh_3 + dxs_3[-1]                    dxs_2 = dxs_3
    dxs_2 = rt.tree_add_at(dxs_2, xs_2, -1, d_t1)  →  dxs_2 = rt.list_add_at(dxs_2, -1, d_t1)

where an adjoint entry is ``None`` until something is added into it (zeros are made only for
an entry popped or read without one). A list qualifies when its versions may be one list
(``analysis/list_versions.py``: one top-level display, versions made by copies and appends, no
version read after a later append, none handed out before the last append) and

1. the pullback reads a version as a whole (``rt.tree_put``, ``rt.tree_zeros``, any other use)
   only outside its loops, and only a version still current when the forward pass ends; the
   primal it reads for zeros is the display's name, whose first ``len(d)`` entries never
   change (the list only grows);
2. every adjoint of a version is made fresh (``rt.list_put``/``rt.list_nones``, or ``list(…)``
   of anything else, the caller's seed included), changed only through the forms above, and
   a copy ``dxs_2 = dxs_3`` hands it over: on every path on, ``dxs_3`` is bound anew before
   it is read. Any other read gets ``rt.filled(dxs, xs)``, a new list with zeros for the
   missing entries, or ``rt.entry_adjoint(dxs, k, xs)`` for one entry.

Otherwise the list keeps the code ``reverse`` wrote.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.list_versions import ListVersions, blocks, is_rt_call, list_versions, \
    single_target
from ..context import Context
from ..names import names_in

__all__ = ["rewrite"]


class _Unsafe(Exception):
    """The family of versions does not qualify."""


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    if type(vjp) is not cst.FunctionDef:
        return module
    for versions in list_versions(vjp, ctx.rt):
        try:
            vjp = _Family(vjp, versions, ctx.rt).rewrite()
        except _Unsafe:
            continue
    return module.with_changes(body=[*module.body[:-1], vjp])


class _Family:
    def __init__(self, vjp: cst.FunctionDef, versions: ListVersions, rt: str):
        self.vjp, self.rt = vjp, rt
        self.family, self.root, self.stale = versions.names, versions.root, versions.stale
        self.appends = dict(versions.appends)  # the target of an append -> the version appended to
        forward = [s for s in vjp.body.body if type(s) is not cst.FunctionDef]
        pullbacks = [s for s in vjp.body.body if type(s) is cst.FunctionDef]
        if len(pullbacks) != 1:
            raise _Unsafe
        self.pullback = pullbacks[0]
        taken = names_in(cst.Module(body=forward)) | {p.name.value for p in vjp.params.params}
        self.adjoint: dict[str, str] = {}  # the adjoint's name -> the version's (Namer's rule)
        for v in self.family:
            name = "d" + v
            while name in taken:
                name += "_"
            self.adjoint[name] = v

    # ----- the pullback -----

    def rewrite(self) -> cst.FunctionDef:
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
            if type(stmt) is cst.FunctionDef:
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
            if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1:
                pair = self._append_adjoint(statements, i, in_loop)
                if pair is not None:
                    out.extend(pair)
                    i += 2 if len(pair) == 2 else 1
                    continue
                out.append(stmt.with_changes(body=[self._small_pb(stmt.body[0], statements, i,
                                                                  in_loop)]))
            elif type(stmt) is cst.SimpleStatementLine:
                out.append(stmt.with_changes(body=[self._other(s, in_loop) for s in stmt.body]))
            elif type(stmt) is cst.If:
                out.append(self._if(stmt, in_loop))
            elif type(stmt) in (cst.For, cst.While):
                head = stmt.iter if type(stmt) is cst.For else stmt.test
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
        if type(orelse) is cst.If:
            orelse = self._if(orelse, in_loop)
        elif orelse is not None:
            orelse = orelse.with_changes(body=orelse.body.with_changes(
                body=self._block(list(orelse.body.body), in_loop)))
        return stmt.with_changes(body=stmt.body.with_changes(
            body=self._block(list(stmt.body.body), in_loop)), orelse=orelse)

    def _append_adjoint(self, statements, i, in_loop):
        """``dxs_2 = dxs_3[:-1]`` (then ``d_v = dxs_3[-1]``) of ``xs_3 = rt.append(xs_2, v)``."""
        small = statements[i].body[0]
        target = single_target(small)
        if target not in self.adjoint or type(small.value) is not cst.Subscript:
            return None
        dvb = small.value.value
        if not (type(dvb) is cst.Name and dvb.value in self.adjoint and
                self.adjoint[dvb.value] in self.appends and
                self.appends[self.adjoint[dvb.value]] == self.adjoint[target] and
                _is_slice_to_last(small.value)):
            raise _Unsafe
        nxt = statements[i + 1] if i + 1 < len(statements) else None
        entry = nxt.body[0] if type(nxt) is cst.SimpleStatementLine and \
            len(nxt.body) == 1 else None
        added = entry is not None and _adds_last(entry, dvb.value, target)
        self._handed_over(dvb.value, statements, i + (2 if entry is not None and (
            _is_last(entry, dvb.value) or added) else 1))
        line = statements[i]
        pop = self._rt("pop_adjoint", dvb, cst.Name(self.root))
        alias = cst.Assign([cst.AssignTarget(cst.Name(target))], dvb)
        if entry is not None and _is_last(entry, dvb.value):
            return [line.with_changes(body=[cst.Assign([cst.AssignTarget(
                entry.targets[0].target)], pop)]), nxt.with_changes(body=[alias])]
        if added:  # dv = dv + dxs_3[-1]: the entry popped there, then the list handed over
            self._no_read(entry.value.left, in_loop)
            return [nxt.with_changes(leading_lines=line.leading_lines,
                                     body=[entry.with_changes(value=entry.value.with_changes(
                                         right=pop))]),
                    line.with_changes(leading_lines=nxt.leading_lines, body=[alias])]
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
        target = single_target(small)
        if target in self.adjoint:
            value = small.value
            if is_rt_call(value, self.rt, "tree_put") or is_rt_call(value, self.rt, "tree_zeros"):
                primal = value.args[0].value
                if type(primal) is not cst.Name or primal.value not in self.family:
                    return self._other(small, in_loop)
                self._whole(primal.value, in_loop)
                if is_rt_call(value, self.rt, "tree_zeros"):
                    return small.with_changes(value=self._rt("list_nones", primal))
                key = value.args[1].value
                if type(key) is cst.Slice or any(a.keyword for a in value.args):
                    raise _Unsafe
                return small.with_changes(value=self._rt("list_put", primal, key,
                                                         value.args[2].value))
            if is_rt_call(value, self.rt, "tree_add_at") and len(value.args) == 4 and \
                    not any(a.keyword for a in value.args):
                d, primal, key, g = (a.value for a in value.args)
                if type(d) is cst.Name and d.value in self.adjoint and \
                        type(primal) is cst.Name and primal.value in self.family:
                    if d.value != target:
                        self._handed_over(d.value, statements, i + 1)
                    self._no_read(key, in_loop)
                    self._no_read(g, in_loop)
                    return small.with_changes(value=self._rt("list_add_at", d, key, g))
                raise _Unsafe
            if type(value) is cst.Name and value.value in self.adjoint:
                self._handed_over(value.value, statements, i + 1)
                return small
            # made by anything else: a list of our own
            return small.with_changes(value=cst.Call(cst.Name("list"), [cst.Arg(
                self._other_value(value, in_loop))]))
        if type(small) is cst.Assign and type(small.value) is cst.Subscript and \
                type(small.value.value) is cst.Name and small.value.value.value in self.adjoint \
                and len(small.value.slice) == 1 and \
                type(small.value.slice[0].slice) is cst.Index:
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
        if type(small) is cst.Assign:
            for t in small.targets:
                if names_in(t.target) & (self.family | set(self.adjoint)):
                    raise _Unsafe
            return small.with_changes(value=self._other_value(small.value, in_loop))
        if names_in(small) & (self.family | set(self.adjoint)):
            if type(small) in (cst.Return, cst.Expr) and small.value is not None:
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


def _scan(name: str, statements) -> str | None:
    """``"bound"`` if ``statements`` bind ``name`` (``name = …`` on their own level) before
    reading it, ``"read"`` if they may read it first, else None."""
    for stmt in statements:
        small = stmt.body[0] if type(stmt) is cst.SimpleStatementLine and \
            len(stmt.body) == 1 else None
        if small is not None and single_target(small) == name:
            return "read" if name in names_in(small.value) else "bound"
        if type(stmt) is cst.If and name not in names_in(stmt.test):
            found = {_scan(name, block) for block in blocks(stmt)}
            last = stmt
            while type(last.orelse) is cst.If:
                last = last.orelse
            if last.orelse is None:
                found.add(None)  # no else: the test may skip every body
            if "read" in found:
                return "read"
            if found == {"bound"}:
                return "bound"
            continue
        if type(stmt) in (cst.For, cst.While) and stmt.orelse is None and name not in \
                names_in(stmt.iter if type(stmt) is cst.For else stmt.test):
            if _scan(name, stmt.body.body) == "read":  # (it may run no time: never "bound")
                return "read"
            continue
        if name in names_in(stmt):
            return "read"
    return None


def _is_slice_to_last(sub: cst.Subscript) -> bool:
    if len(sub.slice) != 1 or type(sub.slice[0].slice) is not cst.Slice:
        return False
    s = sub.slice[0].slice
    return s.lower is None and s.step is None and type(s.upper) is cst.UnaryOperation and \
        type(s.upper.operator) is cst.Minus and type(s.upper.expression) is cst.Integer \
        and s.upper.expression.value == "1"


def _is_last(small, name: str) -> bool:
    """``d_v = name[-1]``."""
    if single_target(small) is None or type(small.value) is not cst.Subscript:
        return False
    sub = small.value
    if not (type(sub.value) is cst.Name and sub.value.value == name and len(sub.slice) == 1
            and type(sub.slice[0].slice) is cst.Index):
        return False
    key = sub.slice[0].slice.value
    return type(key) is cst.UnaryOperation and type(key.operator) is cst.Minus and \
        type(key.expression) is cst.Integer and key.expression.value == "1"


def _adds_last(small, name: str, head: str) -> bool:
    """``dv = e + name[-1]`` (the appended value had another adjoint ``e`` already), where ``e``
    reads neither ``name`` nor ``head`` and ``dv`` is neither."""
    target = single_target(small)
    value = small.value if target is not None else None
    return type(value) is cst.BinaryOperation and type(value.operator) is cst.Add and \
        not value.lpar and target not in (name, head) and \
        _is_last(cst.Assign([cst.AssignTarget(cst.Name(target))], value.right), name) and \
        not names_in(value.left) & {name, head}


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
        if type(original.value) is cst.Name and original.value.value in self.names and \
                len(updated.slice) == 1 and type(updated.slice[0].slice) is cst.Index:
            return cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name("entry_adjoint")),
                            [cst.Arg(original.value), cst.Arg(updated.slice[0].slice.value),
                             cst.Arg(cst.Name(self.root))])
        return updated


class _InPlaceAppends(cst.CSTTransformer):
    def __init__(self, appends, rt: str):
        self.appends, self.rt = appends, rt

    def leave_Assign(self, original, updated):
        target = single_target(updated)
        if target in self.appends and is_rt_call(updated.value, self.rt, "append"):
            return updated.with_changes(value=updated.value.with_changes(
                func=updated.value.func.with_changes(attr=cst.Name("append_in_place"))))
        return updated
