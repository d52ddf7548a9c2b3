"""list_versions: the versions of a list built by appends, and whether they may be one list.

After ``reverse``, ``xs.append(v)`` is ``xs_3 = rt.append(xs_2, v)``: every version is a new
list. The versions of one list display (the names joined to it by copies ``a = b`` and
appends) may all be the same list, appended to in place, when

1. the display is on the forward pass's top level, its name bound once, and every version is
   made by it, by a copy of a version (or is a tape's ``None`` placeholder) or by an append;
2. no version is read after an append that ran after it was bound (a flow walk over the
   forward pass, loops to a fixpoint): it then holds what it held as a copy;
3. nothing changes the list but those appends (no ``xs.pop()``, no ``del xs[0]``), and a
   version is stored, passed on or returned (anything but ``xs[k]``, ``len(xs)``, a copy, an
   append or a tape push) only after the last top-level statement that appends: the list it
   holds never grows after it was handed out.

The tape keeps references only; what the pullback reads of them, ``transforms/lists.py``
checks. ``stale`` is what the pullback must not read as a whole: the versions an append ran
after when the forward pass ends.

    hs = [h0]                                   ListVersions(root="hs",
    hs_1 = hs                                     names={hs, hs_1, hs_2, hs_3},
    for t in range(n):                            appends={hs_3: hs_2},
        hs_2 = hs_1                               stale={hs, hs_2})
        hs_3 = rt.append(hs_2, v)
        hs_1 = hs_3
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ..names import names_in, nodes

__all__ = ["ListVersions", "list_versions", "is_rt_call", "single_target", "blocks",
           "small_statements"]


@dataclass(frozen=True)
class ListVersions:
    root: str                          # the display's name
    names: frozenset                   # every version
    appends: tuple                     # (target, the version appended to) pairs
    stale: frozenset                   # versions an append ran after, at the forward's end


class _Unsafe(Exception):
    """The versions of this list may not be one list."""


def list_versions(vjp: cst.FunctionDef, rt: str) -> tuple[ListVersions, ...]:
    """The lists of ``vjp``'s forward pass whose versions may be one list."""
    forward = [s for s in vjp.body.body if type(s) is not cst.FunctionDef]
    found = []
    for names, root in _families(forward, rt):
        try:
            found.append(_Walk(forward, names, root, rt).result())
        except _Unsafe:
            continue
    return tuple(found)


def is_rt_call(value, rt: str, name: str) -> bool:
    """``rt.<name>(…)``."""
    return type(value) is cst.Call and type(value.func) is cst.Attribute and \
        type(value.func.value) is cst.Name and value.func.value.value == rt and \
        value.func.attr.value == name


def single_target(small) -> str | None:
    """The target of ``name = …``."""
    if type(small) is cst.Assign and len(small.targets) == 1 and \
            type(small.targets[0].target) is cst.Name:
        return small.targets[0].target.value
    return None


def small_statements(statements):
    """Every small statement of ``statements``, nested blocks included (not nested defs)."""
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            yield from stmt.body
        elif type(stmt) is not cst.FunctionDef:
            for block in blocks(stmt):
                yield from small_statements(block)


def blocks(stmt) -> list:
    """The statement lists of a compound statement: body, each elif's, else."""
    found = []
    if type(stmt) in (cst.If, cst.For, cst.While):
        found.append(stmt.body.body)
        orelse = stmt.orelse
        if type(orelse) is cst.If:
            found.extend(blocks(orelse))
        elif orelse is not None:
            found.append(orelse.body.body)
    elif hasattr(stmt, "body") and hasattr(stmt.body, "body"):
        found.append(stmt.body.body)
    return found


def _source(value, rt: str) -> str | None:
    if type(value) is cst.Name and value.value not in ("None", "True", "False"):
        return value.value
    if is_rt_call(value, rt, "append") and type(value.args[0].value) is cst.Name:
        return value.args[0].value.value
    return None


def _families(forward, rt: str):
    """Each top-level list display with the names joined to it by copies and appends."""
    parent: dict[str, str] = {}

    def find(n):
        while parent.setdefault(n, n) != n:
            n = parent[n]
        return n

    for small in small_statements(forward):
        target = single_target(small)
        source = _source(small.value, rt) if target is not None else None
        if source is not None:
            parent[find(target)] = find(source)
    groups: dict[str, set] = {}
    for n in list(parent):
        groups.setdefault(find(n), set()).add(n)
    for stmt in forward:
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if single_target(small) and type(small.value) is cst.List:
                    root = small.targets[0].target.value
                    yield frozenset(groups.get(find(root), {root})), root


class _Walk:
    def __init__(self, forward, names: frozenset, root: str, rt: str):
        self.forward, self.names, self.root, self.rt = forward, names, root, rt
        self.appends: dict[str, str] = {}
        self.escapes: list[int] = []       # top-level positions of reads that hand the list out
        self.appended_at: list[int] = []   # top-level positions of appends
        self.position = 0

    def result(self) -> ListVersions:
        self._definitions()
        stale = frozenset(self._walk(self.forward, frozenset(), top=True))
        if self.escapes and min(self.escapes) <= max(self.appended_at):
            raise _Unsafe
        return ListVersions(self.root, self.names, tuple(sorted(self.appends.items())), stale)

    def _definitions(self) -> None:
        """Condition 1."""
        displays = bindings = 0
        for small in small_statements(self.forward):
            target = single_target(small)
            bindings += target == self.root
            bound = names_in(small.targets[0].target) if type(small) is cst.Assign else \
                names_in(small.target) if type(small) in (cst.AugAssign, cst.AnnAssign) \
                else set()
            if not bound & self.names:
                continue
            if target is None:
                raise _Unsafe
            value = small.value
            if type(value) is cst.List:
                displays += 1
            elif is_rt_call(value, self.rt, "append"):
                source = _source(value, self.rt)
                if source is None or self.appends.setdefault(target, source) != source:
                    raise _Unsafe  # two appends make one name from different versions
            elif not (type(value) is cst.Name and (value.value in self.names or
                                                       value.value == "None")):
                raise _Unsafe  # (None: the placeholder of a name a tape keeps)
        loops = [s for s in _compound(self.forward) if type(s) is cst.For]
        if any(names_in(s.target) & self.names for s in loops) or displays != 1 or \
                bindings != 1 or not self.appends:
            raise _Unsafe

    def _read(self, node, stale) -> None:
        if names_in(node) & stale:
            raise _Unsafe

    def _walk(self, statements, stale: frozenset, top: bool = False) -> frozenset:
        """Condition 2: the versions an append ran after since they were bound."""
        for i, stmt in enumerate(statements):
            if top:
                self.position = i
            if type(stmt) is cst.FunctionDef:
                continue
            if type(stmt) is cst.SimpleStatementLine:
                for small in stmt.body:
                    stale = self._small(small, stale)
            elif type(stmt) is cst.If:
                self._read(stmt.test, stale)
                out = self._walk(stmt.body.body, stale)
                orelse = stmt.orelse
                other = self._walk([orelse], stale) if type(orelse) is cst.If else \
                    self._walk(orelse.body.body, stale) if orelse is not None else stale
                stale = out | other
            elif type(stmt) in (cst.For, cst.While):
                head = stmt.iter if type(stmt) is cst.For else stmt.test
                self._read(head, stale)
                if names_in(head) & self.names:
                    self.escapes.append(self.position)
                for _ in range(len(self.names) + 2):
                    if type(stmt) is cst.While:
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
        if type(small) is cst.Del:
            if not all(type(t) is cst.Name for t in _del_targets(small)):
                raise _Unsafe
            return stale
        if _is_push(small):  # the tape keeps a reference; what the pullback reads is checked there
            return stale
        self._read(small.value if type(small) is cst.Assign else small, stale)
        for node in _attributes(small):  # xs.pop(), xs.sort(): a change not followed here
            if type(node.value) is cst.Name and node.value.value in self.names:
                raise _Unsafe
        target = single_target(small)
        if target in self.names:
            value = small.value
            if is_rt_call(value, self.rt, "append"):
                self.appended_at.append(self.position)
                if names_in(value.args[1].value) & self.names:
                    self.escapes.append(self.position)
                return (stale | self.names) - {target}
            return stale - {target}
        if target is not None and _entry_read(small.value, self.names):
            return stale
        if names_in(small) & self.names:  # stored, returned, passed on: condition 3
            self.escapes.append(self.position)
        return stale


def _compound(statements):
    for stmt in statements:
        if type(stmt) not in (cst.SimpleStatementLine, cst.FunctionDef):
            yield stmt
            for block in blocks(stmt):
                yield from _compound(block)


def _del_targets(small: cst.Del) -> list:
    target = small.target
    return [e.value for e in target.elements] if type(target) is cst.Tuple else [target]


def _attributes(node):
    return (n for n in nodes(node) if type(n) is cst.Attribute)


def _is_push(small) -> bool:
    """``_tape1.push((…))``."""
    return type(small) is cst.Expr and type(small.value) is cst.Call and \
        type(small.value.func) is cst.Attribute and small.value.func.attr.value == "push" \
        and type(small.value.func.value) is cst.Name and \
        small.value.func.value.value.startswith("_tape")


def _entry_read(value, names) -> bool:
    """``xs_2[k]`` (an entry, or a slice: a new list) or ``len(xs_2)``."""
    if type(value) is cst.Subscript and type(value.value) is cst.Name:
        return not any(names_in(e) & names for e in value.slice)
    return type(value) is cst.Call and type(value.func) is cst.Name and \
        value.func.value == "len" and len(value.args) == 1 and \
        type(value.args[0].value) is cst.Name
