"""checkpoint: a loop marked ``# srcdiff: checkpoint`` keeps its state every K iterations, not a tape.

A loop's tape keeps what its pullback reads, for every iteration: memory linear in the number
of iterations n. Under the directive ``# srcdiff: checkpoint every=K`` (on the line above a
``for … in range(…)`` loop, or at the end of its header) the forward pass keeps only what the
loop carries from one iteration to the next (the names the body reads before it sets them),
before every K-th iteration and after the last; the pullback walks these checkpoints
backwards, runs the K iterations after each one again to fill a tape of K entries, checks
that they end where the next checkpoint begins (``rt.check_recomputed``), and walks that tape
backwards as before. Without ``every=``, K is ⌈√n⌉ (``rt.checkpoint_every``), for n/K + K
entries kept in all. The gradient is the uncheckpointed one: the same operations on the same
values. The loop runs about twice; memory is n/K states plus K tape entries.

    _tape1 = rt.Tape()                          _steps1 = range(n)
    for t in range(n):                          _checkpoints1 = rt.Tape()
        h_2 = h_1                               for _k1, t in enumerate(_steps1):
        h_3 = np.tanh(h_2 * w)          →           if _k1 % 4 == 0:
        h_1 = h_3                                       _checkpoints1.push(h_1)
        _tape1.push(h_3)                            h_2 = h_1 …
                                                _checkpoints1.push(h_1)
    pullback:                               pullback:
    for h_3 in reversed(_tape1):                for _j1 in reversed(range(len(_checkpoints1) - 1)):
        …                                           h_1_again = _checkpoints1[_j1]
                                                    _tape1 = rt.Tape()
                                                    for t in _steps1[_j1 * 4:_j1 * 4 + 4]:
                                                        … (the body, h_1 read as h_1_again)
                                                    rt.check_recomputed(h_1_again, …)
                                                    for h_3 in reversed(_tape1):
                                                        …

Invariant after this pass: no directive comment is left; every loop that carried one keeps
checkpoints instead of a tape, or has no adjoint (nothing to keep), or the directive was
refused with a located error (a ``while`` loop, a loop over anything but ``range``, one
inside another loop or a branch, one with ``break``/``continue``/``return``, one whose
recomputation would repeat an effect).
"""

from __future__ import annotations

import os

import libcst as cst

from ..analysis.carried import bound_in, certainly_set, exposed
from ..analysis.values import bound_names, reads, walk
from ..context import Context
from ..names import Namer, Renamed, names_in
from .directives import CARRIED, carried_line, directives, is_range

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    wanted = directives(ctx)
    if not wanted:
        return module
    vjp = module.body[-1]  # after the module-level links, if any
    namer = Namer(names_in(module) | {ctx.rt})
    body = list(vjp.body.body)
    pullback_at = next(i for i, s in enumerate(body) if type(s) is cst.FunctionDef)
    done: set[int] = set()
    i = 0
    while i < pullback_at:
        stmt = body[i]
        line = carried_line(stmt)
        if line is None:
            i += 1
            continue
        if line not in wanted:  # a directive where the source scan did not look
            raise ctx.located("srcdiff cannot checkpoint this loop here; drop the directive.",
                              line, token="for")
        done.add(line)
        body[i] = stmt.with_changes(leading_lines=[
            x for x in stmt.leading_lines if x.comment is None or not CARRIED.match(x.comment.value)])
        # the loop: the first compound statement from here (rename's copies may come first)
        m = next((k for k in range(i, pullback_at) if not isinstance(body[k], cst.SimpleStatementLine)),
                 pullback_at)
        loop = body[m] if m < pullback_at else None
        tape = _made_tape(body[m - 1]) if i < m else None
        if tape is None and type(loop) in (cst.For, cst.While):  # the loop has no adjoint
            i = m + 1
            continue
        if tape is None or type(loop) is not cst.For or not is_range(loop.iter):
            raise ctx.located("srcdiff cannot checkpoint this loop: it is no longer one "
                              "'for … in range(…)' loop when differentiated; drop the directive.",
                              line, token="for")
        plan = _Plan(ctx, namer, line, wanted[line], tape, loop, body[:m - 1],
                     body[m + 1:pullback_at], body[pullback_at])
        forward = plan.forward(body[m - 1].leading_lines)
        body[m - 1:m + 1] = forward
        pullback_at += len(forward) - 2
        body[pullback_at] = plan.pullback()
        i = m - 1 + len(forward)
    for line in sorted(set(wanted) - done):
        raise ctx.located("srcdiff cannot checkpoint this loop: its directive did not reach the "
                          "generated code (does the loop matter to the gradient?); drop the "
                          "directive.", line, token="for")
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _made_tape(stmt) -> str | None:
    """``_tape1`` of ``_tape1 = rt.Tape()``."""
    if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign and \
            type(stmt.body[0].value) is cst.Call and \
            type(stmt.body[0].value.func) is cst.Attribute and \
            stmt.body[0].value.func.attr.value == "Tape":
        return stmt.body[0].targets[0].target.value
    return None


class _Plan:
    """The checkpointed forward loop, and the pullback that recomputes it, of one loop."""

    def __init__(self, ctx: Context, namer: Namer, line: int, every: int | None, tape: str,
                 loop: cst.For, before: list, after: list, pullback: cst.FunctionDef):
        self.ctx, self.line, self.tape, self.loop, self.pullback_def = ctx, line, tape, loop, pullback
        *self.body, self.push = loop.body.body
        if not _pushes(self.push, tape):
            raise ctx.located("srcdiff cannot checkpoint this loop: its tape is not pushed once, "
                              "at the end of each iteration; drop the directive.", line, token="for")
        self._refuse_effects()
        target = bound_names(loop.target)
        bound = [*target, *bound_in(self.body)]
        carried = exposed(self.body, set(target))
        self.state = [n for n in bound if n in carried]
        params = {p.name.value for p in ctx.source.funcdef.params.params} | set(ctx.params)
        unset = [n for n in self.state if n not in certainly_set(before, params)]
        if unset:
            raise ctx.located(
                f"srcdiff cannot checkpoint this loop: an iteration reads '{unset[0]}' as an "
                "earlier one left it, and it may not be set before the loop; set it before the "
                "loop.", line, token="for")
        self.at = next(i for i, s in enumerate(pullback.body.body) if _pops(s, tape))
        rest = [s for i, s in enumerate(pullback.body.body) if i != self.at]
        outside = names_in(cst.Module(body=[*before, *after, *rest])) | params
        self.again = {n: namer.fresh(f"{n}_again") for n in bound if n in outside}
        self.steps = namer.fresh_numbered("_steps")
        self.checkpoints = namer.fresh_numbered("_checkpoints")
        self.k, self.j = namer.fresh_numbered("_k"), namer.fresh_numbered("_j")
        self.every_name = namer.fresh_numbered("_every") if every is None else None
        self.every = str(every) if every is not None else self.every_name

    def _refuse_effects(self) -> None:
        """A statement whose effect a second run would repeat: a located error."""
        for stmt in walk(self.body):
            if type(stmt) is not cst.SimpleStatementLine:
                continue
            for small in stmt.body:
                code = cst.Module(body=[]).code_for_node(small)
                if "_in_place(" in code:
                    raise self.ctx.located(
                        "srcdiff cannot checkpoint a loop that appends to a list: the list keeps "
                        "every entry anyway, so there is no memory to save; drop the directive.",
                        self.line, token="for")
                if type(small) is cst.Expr and not _pushes(stmt):
                    raise self.ctx.located(
                        f"srcdiff cannot checkpoint this loop: '{code}' would run again when the "
                        "backward pass recomputes the loop; move it out of the loop or drop the "
                        "directive.", self.line, token="for")

    def forward(self, comments) -> list:
        """``_steps1 = range(n)``, the checkpoints made, the loop keeping one every K
        iterations, and the state after its last one."""
        rt, loop, k = self.ctx.rt, self.loop, self.k
        state = self._state(self.state)
        every = "every iteration" if self.every == "1" else \
            f"every {self.every} iterations" if self.every_name is None else "every ⌈√n⌉ iterations"
        note = [_comment(f"# checkpointed loop (line {self.line}): keeps what it carries {every},"),
                _comment("# not a tape; the pullback runs the iterations again from there")]
        made = [cst.parse_statement(f"{self.steps} = {_code(loop.iter)}\n").with_changes(
            leading_lines=[*comments, *note])]
        if self.every_name is not None:
            made.append(cst.parse_statement(
                f"{self.every_name} = {rt}.checkpoint_every(len({self.steps}))\n"))
        made.append(cst.parse_statement(f"{self.checkpoints} = {rt}.Tape()\n"))
        keep = cst.parse_statement(f"if {k} % {self.every} == 0:\n    {self.checkpoints}.push({state})\n")
        keep = keep.with_changes(body=keep.body.with_changes(body=[keep.body.body[0].with_changes(
            leading_lines=[_comment(f"# checkpoint: what the loop carries into iteration {k}")])]))
        header = cst.parse_statement(f"for {k}, {_code(loop.target)} in enumerate({self.steps}):\n    pass\n")
        new_loop = header.with_changes(body=loop.body.with_changes(body=[keep, *self.body]),
                                       leading_lines=loop.leading_lines)
        last = cst.parse_statement(f"{self.checkpoints}.push({state})\n").with_changes(
            leading_lines=[_comment("# checkpoint: what the loop carries out of its last iteration")])
        return [*made, new_loop, last]

    def pullback(self) -> cst.FunctionDef:
        """The pullback with the tape loop run once per checkpoint, after the iterations from
        that checkpoint are run again onto a tape of their own."""
        rt, j, every, line = self.ctx.rt, self.j, self.every, self.line
        statements = list(self.pullback_def.body.body)
        popped = statements[self.at]
        again = [self.again[n] for n in self.state]
        header = _code(self.loop.target.visit(Renamed(self.again)))
        redo = cst.parse_statement(
            f"for {header} in {self.steps}[{j} * {every}:{j} * {every} + {every}]:\n    pass\n")
        body = _without_dead_copies([s.visit(Renamed(self.again)) for s in [*self.body, self.push]],
                                    {self.again[n] for n in self.again if n not in self.state})
        redo = redo.with_changes(body=self.loop.body.with_changes(body=body))
        inner = [cst.parse_statement(f"{', '.join(again)} = {self.checkpoints}[{j}]\n")] if again else []
        inner += [cst.parse_statement(f"{self.tape} = {rt}.Tape()\n"), redo]
        if again:
            filename = os.path.basename(self.ctx.source.filename)
            inner.append(cst.parse_statement(f"{rt}.check_recomputed({self._state(again)}, "
                                             f"{self.checkpoints}[{j} + 1], {filename!r}, {line})\n"))
        inner[0] = inner[0].with_changes(leading_lines=[_comment(
            f"# run the loop (line {line}) again from checkpoint {j}, onto a tape")])
        inner.append(popped.with_changes(leading_lines=[_comment(
            "# adjoint of those iterations, last first")]))
        outer = cst.parse_statement(
            f"for {j} in reversed(range(len({self.checkpoints}) - 1)):\n    pass\n")
        outer = outer.with_changes(body=outer.body.with_changes(body=inner),
                                   leading_lines=popped.leading_lines)
        statements[self.at] = outer
        return self.pullback_def.with_changes(body=self.pullback_def.body.with_changes(body=statements))

    @staticmethod
    def _state(names) -> str:
        return "()" if not names else names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"


def _without_dead_copies(statements: list, names: set[str]) -> list:
    """``statements`` less the copies ``a_again = b`` into ``names`` that nothing reads: what
    the loop hands on only to the code after it, which the pullback does not run again."""
    read = _loads(statements)
    dead = lambda s: type(s) is cst.SimpleStatementLine and len(s.body) == 1 and \
        type(s.body[0]) is cst.Assign and type(s.body[0].value) is cst.Name and \
        all(type(t.target) is cst.Name and t.target.value in names - read
            for t in s.body[0].targets)  # noqa: E731
    out = []
    for stmt in statements:
        if dead(stmt):
            continue
        if type(stmt) in (cst.If, cst.For, cst.While):
            stmt = stmt.with_changes(body=stmt.body.with_changes(
                body=_without_dead_copies(list(stmt.body.body), names) or [cst.SimpleStatementLine([cst.Pass()])]))
            if type(stmt.orelse) is cst.Else:
                stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                    body=_without_dead_copies(list(stmt.orelse.body.body), names) or [cst.SimpleStatementLine([cst.Pass()])])))
        out.append(stmt)
    return out


def _loads(statements) -> set[str]:
    """The names ``statements`` read (assignment targets are not reads)."""
    found: set[str] = set()
    for stmt in walk(statements):
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                found |= reads(small.value) if type(small) is cst.Assign else reads(small)
        elif type(stmt) in (cst.If, cst.While):
            found |= reads(stmt.test)
        elif type(stmt) is cst.For:
            found |= reads(stmt.iter)
    return found


def _pushes(stmt, tape: str | None = None) -> bool:
    """Whether ``stmt`` is ``_tapeN.push(…)`` (of ``tape``, where given)."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Expr and type(stmt.body[0].value) is cst.Call):
        return False
    func = stmt.body[0].value.func
    return type(func) is cst.Attribute and func.attr.value == "push" and \
        type(func.value) is cst.Name and func.value.value.startswith("_tape") and \
        (tape is None or func.value.value == tape)


def _pops(stmt, tape: str) -> bool:
    """Whether ``stmt`` is ``for … in reversed(tape):``."""
    return type(stmt) is cst.For and type(stmt.iter) is cst.Call and \
        type(stmt.iter.func) is cst.Name and stmt.iter.func.value == "reversed" and \
        type(stmt.iter.args[0].value) is cst.Name and stmt.iter.args[0].value.value == tape


def _comment(text: str) -> cst.EmptyLine:
    return cst.EmptyLine(comment=cst.Comment(text))


def _code(node) -> str:
    return cst.Module(body=[]).code_for_node(node)
