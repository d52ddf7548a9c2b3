"""rename: give every reassigned variable a new version, so each name is assigned once.

Invariant after this pass: on any path through the function no name is assigned
twice and no parameter is reassigned, so the adjoint pass can read any primal
value after the forward pass has run, with no tape. Where the two sides of an
``if`` leave different versions of a name, both sides end by copying theirs
into one new version.

    h = np.tanh(h)        →    h_1 = np.tanh(h)
    if c:                      if c:
        h = h * w                  h_2 = h_1 * w
                                   h_3 = h_2
                               else:
                                   h_3 = h_1
    return h                   return h_3
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import Namer, children, names_in, nodes, occurrences
from .normalize import local_variables, target_names

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    namer = Namer(names_in(module) | {ctx.rt})
    funcdef = module.body[0]
    renamer = _Renamer(namer, local_variables(funcdef), occurrences(funcdef))
    renamer.targets_read_after = _targets_read_after(funcdef)
    body, _ = renamer.block(funcdef.body.body, {p: p for p in ctx.params})
    funcdef = funcdef.with_changes(body=funcdef.body.with_changes(body=body))
    return module.with_changes(body=[funcdef])


class _Renamer:
    """Renames one block at a time; ``current`` maps each variable to its live version."""

    def __init__(self, namer: Namer, local_names, occurrences):
        self.namer, self.local_names, self.occurrences = namer, local_names, occurrences

    def block(self, statements, current: dict[str, str]):
        body = []
        for stmt in statements:
            if type(stmt) is cst.If:
                stmt, current = self.branch(stmt, current)
                body.append(stmt)
                continue
            if type(stmt) in (cst.For, cst.While):
                loop, current = self.loop(stmt, current)
                body.extend(loop)
                continue
            renamed = stmt.visit(_Uses(current, self.local_names)) if any(
                current.get(n, n) != n for n in names_in(stmt)) else stmt  # else: nothing to rename
            if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
                news = []
                for target in target_names(stmt.body[0].targets[0].target):
                    new = self.namer.version(target) if self.assigned(target, current) else target
                    current = {**current, target: new}
                    news.append(cst.Name(new))
                original = stmt.body[0].targets[0].target
                target = news[0] if len(news) == 1 and type(original) is not cst.Tuple else \
                    cst.Tuple([cst.Element(n, comma=cst.Comma()) if len(news) == 1 else
                               cst.Element(n) for n in news], lpar=[], rpar=[])  # p, = h(x) too
                assign = renamed.body[0].with_changes(targets=[cst.AssignTarget(target)])
                renamed = renamed.with_changes(body=[assign])
            body.append(renamed)
        return body, current

    def assigned(self, name: str, current) -> bool:
        """Whether ``name`` already has a version anywhere (so a new one is needed)."""
        return name in current or name in self.seen

    seen: set[str] = set()
    targets_read_after: frozenset[str] = frozenset()

    def loop(self, stmt, current: dict[str, str]):
        """A loop keeps each variable it assigns in one *loop name* (``h_1``), copied in before
        the loop and back at the end of every iteration; inside, the body reads an iteration's
        own copy (``h_2 = h_1``), so each name in the body holds one value per iteration.

            h = h0                 h_1 = h0
            for t in range(n):  →  for t in range(n):
                h = np.tanh(h)         h_2 = h_1
                                       h_3 = np.tanh(h_2)
                                       h_1 = h_3
        """
        assigned = _assigned(stmt.body.body)
        target = stmt.target.value if type(stmt) is cst.For else None
        inside = occurrences(stmt)
        read_outside = {n for n in assigned if self.occurrences[n] > inside[n]}
        # a loop target read after the loop is a loop name too: the body reads an iteration's
        # own version (which a tape keeps), the code after the loop the last one
        handed_on = {target} & self.targets_read_after
        before, loop_names = [], {}
        for name in sorted((assigned - {target}) & (set(current) | read_outside) | handed_on):
            loop_names[name] = self.namer.version(name) if name in current or name in self.seen \
                else self.namer.fresh(name)
            lines = stmt.leading_lines if not before else ()
            if name in current:
                before.append(_copy(loop_names[name], current[name], lines))
            else:  # first made inside the loop: None until then, so every path can copy it
                before.append(_copy(loop_names[name], "None", lines))
        self.seen = self.seen | set(current)
        outer = {**current, **loop_names}
        inner, top = dict(outer), []
        if target is not None:
            inner[target] = self.namer.version(target) if target in current or handed_on else target
        read = names_in(cst.Module(body=list(stmt.body.body)))
        for name in sorted((set(loop_names) - handed_on) & set(current) & read):
            inner[name] = self.namer.version(name)
            top.append(_copy(inner[name], loop_names[name]))
        body, after = self.block(stmt.body.body, inner)
        self.seen = self.seen | assigned
        end = [_copy(loop_names[n], after[n]) for n in sorted(loop_names)
               if n in after and after[n] != loop_names[n]]
        new = stmt.with_changes(body=stmt.body.with_changes(body=[*top, *body, *end]))
        if type(stmt) is cst.For:
            new = new.with_changes(target=cst.Name(inner[target]),
                                   iter=stmt.iter.visit(_Uses(current, self.local_names)))
        else:
            new = new.with_changes(test=stmt.test.visit(_Uses(outer, self.local_names)))
        if before:
            new = new.with_changes(leading_lines=())
        return [*before, new], {**outer, **({target: inner[target]} if target and not handed_on else {})}

    def branch(self, stmt: cst.If, current: dict[str, str]):
        """Each side renamed on its own; names that differ after it meet in a new version,
        assigned at the end of both sides (``h_3 = h_1`` / ``h_3 = h_2``)."""
        self.seen = self.seen | set(current)
        body, after_body = self.block(stmt.body.body, dict(current))
        self.seen = self.seen | set(after_body)
        orelse = stmt.orelse.body.body if type(stmt.orelse) is cst.Else else []
        orelse, after_else = self.block(orelse, dict(current))
        self.seen = self.seen | set(after_else)
        merged = {}
        before = set(current.values())
        for name in sorted(set(after_body) | set(after_else)):
            a, b = after_body.get(name), after_else.get(name)
            if a == b or a is None or b is None:
                merged[name] = a or b  # the same on both sides, or defined on one side only
                continue
            # meet in a version made inside a side (renaming it there), else in a new one
            meet = a if a not in before else b if b not in before else self.namer.version(name)
            body = _join(body, a, meet, before)
            orelse = _join(orelse, b, meet, before)
            merged[name] = meet
        test = stmt.test.visit(_Uses(current, self.local_names))
        new = stmt.with_changes(test=test, body=stmt.body.with_changes(body=body))
        if orelse:
            else_block = stmt.orelse.body if type(stmt.orelse) is cst.Else else cst.IndentedBlock([])
            new = new.with_changes(orelse=cst.Else(body=else_block.with_changes(body=orelse)))
        return new, merged


def _assigned(statements) -> set[str]:
    """Names a block assigns (loop targets included), at any depth."""
    found: set[str] = set()
    for stmt in statements:
        for node in nodes(stmt):
            kind = type(node)
            if kind is cst.AssignTarget:
                found.update(target_names(node.target))
            elif kind is cst.For and type(node.target) is cst.Name:
                found.add(node.target.value)
    return found


def _targets_read_after(funcdef: cst.FunctionDef) -> frozenset[str]:
    """The ``for`` targets spelled somewhere outside the bodies of the loops that bind them
    (``return np.sum(s) * t`` after ``for t in …``): a later loop over the same name
    (``for i in …`` twice) reads its own."""
    total, own = occurrences(funcdef), occurrences(cst.Module(body=[]))

    def visit(node, binding: frozenset):
        if type(node) is cst.For and type(node.target) is cst.Name and \
                node.target.value not in binding:
            name = node.target.value
            own[name] += 1 + occurrences(node.body)[name]
            binding = binding | {name}
        for child in children(node):
            visit(child, binding)

    visit(funcdef.body, frozenset())
    return frozenset(n for n in own if total[n] > own[n])


def _join(statements: list, version: str, meet: str, before: set) -> list:
    """Make ``meet`` hold ``version`` at the end of a side: rename it if the side made it."""
    if version == meet:
        return statements
    if version not in before:
        return [s.visit(_Rename(version, meet)) for s in statements]
    return [*statements, _copy(meet, version)]


class _Rename(cst.CSTTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def leave_Name(self, original, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.new) if updated.value == self.old else updated

    def leave_Attribute(self, original, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def _copy(target: str, source: str, lines=()) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(target))],
                                               cst.Name(source))], leading_lines=lines)


class _Uses(cst.CSTTransformer):
    """Replaces reads of local variables with their current version."""

    def __init__(self, current: dict[str, str], local_names: frozenset[str]):
        self.current, self.local_names = current, local_names

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return True

    def leave_Attribute(self, original, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)  # never rename the attribute itself

    def visit_Arg(self, node: cst.Arg) -> bool:
        return True

    def leave_Arg(self, original, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> bool:
        return False

    def leave_Name(self, original, updated: cst.Name) -> cst.Name:
        if updated.value in self.current:
            return updated.with_changes(value=self.current[updated.value])
        return updated
