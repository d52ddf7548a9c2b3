"""reverse: the forward (primal) pass and, inside it, the pullback (adjoint pass).

Input: a normalized, renamed function. Output: ``f_vjp(<f's parameters>)`` that
runs the primal statements and returns ``(value, f_pullback)``; the pullback
takes the output's adjoint and returns one adjoint per ``wrt`` parameter.
Only active variables (see ``analysis/activity.py``) get adjoint code; each
block of it starts with ``# adjoint of: <primal line>  (line N)``. Rules whose
body is one ``return`` are inlined; the others are called as ``rt.<rule>``.

    def f(x, w):                    def f_vjp(x, w):
        _t1 = x * w                     _t1 = x * w
        _out = np.sin(_t1)      →       _out = np.sin(_t1)
        return _out                     def f_pullback(d_out):
                                            # adjoint of: return np.sin(x * w)  (line 3)
                                            d_t1 = d_out * np.cos(_t1)
                                            dw = rt.unbroadcast(d_t1 * x, w)
                                            return dw
                                        return _out, f_pullback
"""

from __future__ import annotations

import inspect
import types
from functools import lru_cache

import libcst as cst

from ..analysis.activity import (Activity, analyze, assignments, container_names, outputs,
                                 simple_statements)
from ..analysis import complex_values, effects
from ..analysis.calls import Op, reads
from ..context import Context, is_marker, parse_marker
from ..errors import NotDifferentiableError
from ..names import Namer, names_in, occurrences
from ..templates import fill, literal, runtime_spelling, template_for
from .normalize import local_variables, target_names
from .returns import ends

__all__ = ["rewrite", "tape_push", "tape_target"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    local_names = local_variables(funcdef)
    activity = analyze(funcdef, ctx, local_names)
    namer = Namer(names_in(module) | {ctx.rt, ctx.name})
    writer = _AdjointWriter(ctx, namer, activity, local_names,
                            container_names(funcdef, ctx, local_names))

    vjp_name = namer.fresh(f"{ctx.name}_vjp")
    pullback_name = namer.fresh(f"{ctx.name}_pullback")
    returned = funcdef.body.body[-1].body[0].value
    results = outputs(funcdef, ctx)
    seeds: list[cst.BaseStatement] = []
    if len(results) == 1 and results[0][0] is None and isinstance(results[0][1], cst.Name):
        out = results[0][1].value  # one output: the pullback's parameter is its adjoint
        seed = namer.adjoint(out)
        if activity.is_active(out):
            writer.defined.add(out)
    else:  # several outputs: the parameter holds their adjoints in the output's structure
        seed = namer.fresh("d_out")
        for key, atom in results:
            if writer.active(atom):
                part = cst.Name(seed) if key is None else cst.Subscript(
                    cst.Name(seed), [cst.SubscriptElement(cst.Index(key))])
                seeds += writer.contribute(atom.value, part)

    # walk the statements backwards, one adjoint block per line of the user's source
    steps = {id(stmt): (target, op, inputs)
             for stmt, target, op, inputs in assignments(funcdef, ctx, local_names)}
    steps = complex_values.adapt(funcdef, ctx, local_names, steps, activity)  # complex rules
    writer.temps = {target: op.spelled for target, op, _ in steps.values()
                    if isinstance(target, str) and target.startswith("_t")}
    _refuse_unseen_writes(funcdef.body.body, ctx, local_names, activity, steps, writer)
    available: dict = {}
    _assigned_before(funcdef.body.body, set(ctx.params), available)
    reverser = _Reverser(writer, steps, available, occurrences(funcdef))
    blocks, notes = reverser.block(funcdef.body.body[:-1], parse_marker(
        funcdef.body.body[-1].leading_lines), seeds)

    results = [cst.Name(namer.adjoint(p)) if p in writer.defined else writer.zeros(p)
               for p in ctx.wrt]
    result = results[0] if len(results) == 1 else cst.Tuple([cst.Element(r) for r in results],
                                                            lpar=[], rpar=[])
    blocks.append(cst.SimpleStatementLine([cst.Return(result)], leading_lines=notes))

    pullback = cst.FunctionDef(
        name=cst.Name(pullback_name),
        params=cst.Parameters([cst.Param(cst.Name(seed))]),
        body=cst.IndentedBlock(blocks),
        leading_lines=[cst.EmptyLine(indent=False)],
    )
    forward = [_strip_markers(stmt)
               for stmt in _with_tapes(funcdef.body.body[:-1], reverser.tapes, ctx.rt, writer.forward)]
    if forward:
        header = cst.EmptyLine(comment=cst.Comment("# forward"))
        forward[0] = forward[0].with_changes(leading_lines=[header, *forward[0].leading_lines])
    final = cst.SimpleStatementLine(
        [cst.Return(cst.Tuple([cst.Element(returned), cst.Element(cst.Name(pullback_name))],
                              lpar=[], rpar=[]))],
        leading_lines=[cst.EmptyLine(indent=False)])
    params = cst.Parameters([cst.Param(cst.Name(p)) for p in ctx.params])
    vjp = cst.FunctionDef(name=cst.Name(vjp_name), params=params,
                          body=cst.IndentedBlock([*forward, pullback, final]))
    links = [statement for _, statement in writer.links.values()]
    if links:
        links[0] = links[0].with_changes(leading_lines=[cst.EmptyLine(
            comment=cst.Comment("# derivatives of the functions it calls, compiled on first use"))])
        vjp = vjp.with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)
    return cst.Module(body=[*links, vjp])


def _loops_inside(statements) -> set[int]:
    """The ids of the ``for``/``while`` statements anywhere inside ``statements``."""
    found: set[int] = set()
    for stmt in statements:
        if type(stmt) in (cst.For, cst.While):
            found.add(id(stmt))
            found |= _loops_inside(stmt.body.body)
        elif type(stmt) is cst.If:
            found |= _loops_inside(stmt.body.body)
            if type(stmt.orelse) is cst.Else:
                found |= _loops_inside(stmt.orelse.body.body)
            elif type(stmt.orelse) is cst.If:
                found |= _loops_inside([stmt.orelse])
    return found


def _refuse_unseen_writes(statements, ctx: Context, local_names, activity, steps,
                          writer) -> None:
    """A call that may write into what it is given, reached by a varied value, where no
    adjoint covers its write (``analysis/effects.py``): a located error."""
    found = effects.unseen_write(statements, ctx, local_names, activity, steps)
    if found is None:
        return
    where, call, write, name = found
    place = f" ({write.filename}, line {write.line})" if write.line else ""
    spelled = writer.spell(call)
    what = write.what.replace(f"'{_code(call)}'", f"'{spelled}'") if not write.line else write.what
    names = ", ".join(writer.user_names([name]))
    if type(call.func) is cst.Name and call.func.value in local_names and not write.line:
        what = "it calls a function known only when it runs, which srcdiff cannot check"
    raise ctx.error(
        NotDifferentiableError,
        f"srcdiff cannot differentiate through '{spelled}': {what}{place}, and '{names}', which "
        "needs a gradient, reaches the call while its result is not differentiated. srcdiff "
        "differentiates values, not changes made in place: return the new value instead "
        "(cache = helper(cache, v); y = y * 2.0; y = x.copy()), or wrap the value in "
        "srcdiff.stop_gradient(...) if no gradient should flow.", where[0],
        token=spelled.split("(")[0].split(".")[0])


class _Expand(cst.CSTTransformer):
    """Puts normalize's temporaries back into an expression, for messages."""

    def __init__(self, temps: dict):
        self.temps = temps

    def leave_Name(self, original, updated):
        value = self.temps.get(updated.value)
        if value is None:
            return updated
        value = value.visit(self)
        if isinstance(value, (cst.BinaryOperation, cst.BooleanOperation, cst.Comparison,
                              cst.IfExp, cst.UnaryOperation)) and not value.lpar:
            value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return value


def _code(node) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _strip_markers(stmt):
    """``stmt`` without ``# line N:`` markers, rebuilt only along the statements that carry one
    (libcst's transformer would copy every node: ~5 ms for the forward pass of a small MLP)."""
    if type(stmt) is cst.SimpleStatementLine:
        return _without_markers(stmt)
    if type(stmt) not in (cst.If, cst.For, cst.While, cst.Else) or \
            type(stmt.body) is not cst.IndentedBlock:
        return stmt.visit(_StripMarkers())
    new = _without_markers(stmt)
    body = [_strip_markers(s) for s in stmt.body.body]
    if any(a is not b for a, b in zip(body, stmt.body.body)):
        new = new.with_changes(body=stmt.body.with_changes(body=body))
    orelse = getattr(stmt, "orelse", None)
    if orelse is not None:
        stripped = _strip_markers(orelse)
        if stripped is not orelse:
            new = new.with_changes(orelse=stripped)
    return new


def _without_markers(node):
    lines = node.leading_lines
    if lines and any(is_marker(line) for line in lines):
        return node.with_changes(leading_lines=[
            line for line in lines if line.comment is not None and not is_marker(line)])
    return node


class _StripMarkers(cst.CSTTransformer):
    """Drops the ``# line N:`` markers (the forward pass reads as the user's code)."""

    def on_leave(self, original, updated):
        lines = getattr(updated, "leading_lines", None)
        if lines and any(is_marker(line) for line in lines):
            return updated.with_changes(leading_lines=[
                line for line in lines if line.comment is not None and not is_marker(line)])
        return updated


def _target_names(stmt) -> list[str]:
    return [stmt.target.value] if type(stmt) is cst.For else []


def _assigned_names(statements, ordered: bool = False):
    """Names assigned in ``statements`` at any depth (in order when ``ordered``)."""
    found: list[str] = []
    for simple in simple_statements(statements):
        if type(simple) is cst.SimpleStatementLine and type(simple.body[0]) is cst.Assign:
            found.extend(target_names(simple.body[0].targets[0].target))
    for stmt in statements:
        if type(stmt) in (cst.For, cst.While):
            found.extend(_target_names(stmt))
            found.extend(_assigned_names(stmt.body.body, ordered))
    return found if ordered else set(found)


def _with_tapes(statements, tapes: dict, rt: str, calls: dict | None = None) -> list:
    """The forward statements with each differentiated loop's tape (made before the loop,
    pushed at the end of every iteration) and each differentiated call's rewrite."""
    out = []
    for stmt in statements:
        if id(stmt) in (calls or {}):
            stmt = calls[id(stmt)].with_changes(leading_lines=stmt.leading_lines)
        elif type(stmt) is cst.If:
            stmt = stmt.with_changes(body=stmt.body.with_changes(
                body=_with_tapes(stmt.body.body, tapes, rt, calls)))
            if type(stmt.orelse) is cst.Else:
                stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                    body=_with_tapes(stmt.orelse.body.body, tapes, rt, calls))))
        elif type(stmt) in (cst.For, cst.While):
            info = tapes.get(id(stmt))
            body = _with_tapes(stmt.body.body, tapes, rt, calls)
            if info is not None:
                tape, names, starts = info
                certain = _assigned_before(body, set(_target_names(stmt)), {})
                unset = [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(n))],
                                                              cst.Name("None"))])
                         for n in names if n not in certain and n not in starts]  # (if one side)
                body = [*unset, *(_start_blank(copy, name, rt) for copy, name in starts.items()),
                        *body, tape_push(tape, names)]
                make = cst.SimpleStatementLine([cst.Assign(
                    [cst.AssignTarget(cst.Name(tape))],
                    cst.Call(cst.Attribute(cst.Name(rt), cst.Name("Tape")), []))],
                    leading_lines=[line for line in stmt.leading_lines if line.comment is not None])
                out.append(make)
                stmt = stmt.with_changes(leading_lines=())
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=body))
        out.append(stmt)
    return out


def _start_blank(copy: str, name: str, rt: str) -> cst.SimpleStatementLine:
    """``x_1_start = rt.blank_like(x_1)`` at the top of a loop's body (``_at_start``)."""
    comment = f"# the pullback reads {name} as the step starts for its shape and dtype alone"
    blank = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("blank_like")), [cst.Arg(cst.Name(name))])
    return _assign(cst.Name(copy), blank).with_changes(
        leading_lines=[cst.EmptyLine(comment=cst.Comment(comment))])


def tape_push(tape: str, names) -> cst.SimpleStatementLine:
    """``_tape1.push((a, b))`` under the comment that says what it keeps."""
    value = cst.Name(names[0]) if len(names) == 1 else cst.Tuple(
        [cst.Element(cst.Name(n)) for n in names])
    push = cst.Expr(cst.Call(cst.Attribute(cst.Name(tape), cst.Name("push")), [cst.Arg(value)]))
    saved = cst.EmptyLine(comment=cst.Comment(
        "# kept for the pullback: " + ", ".join(names) if names else
        "# kept for the pullback: the number of iterations"))
    return cst.SimpleStatementLine([push], leading_lines=[saved])


def tape_target(names) -> cst.BaseExpression:
    """What ``for … in reversed(_tape1)`` unpacks: ``_``, ``a`` or ``a, b``."""
    if not names:
        return cst.Name("_")
    if len(names) == 1:
        return cst.Name(names[0])
    return cst.Tuple([cst.Element(cst.Name(n)) for n in names], lpar=[], rpar=[])


def _assigned_before(statements, assigned: set, found: dict) -> set:
    """Records, for each ``if`` and loop, the names certainly assigned before it; returns the
    names certainly assigned after ``statements``."""
    for stmt in statements:
        if type(stmt) is cst.If:
            found[id(stmt)] = frozenset(assigned)
            body = _assigned_before(stmt.body.body, set(assigned), found)
            orelse = stmt.orelse.body.body if type(stmt.orelse) is cst.Else else []
            assigned = assigned | (body & _assigned_before(orelse, set(assigned), found))
        elif type(stmt) in (cst.For, cst.While):  # may run no times: adds nothing certain
            found[id(stmt)] = frozenset(assigned)
            _assigned_before(stmt.body.body, assigned | set(_target_names(stmt)), found)
        elif type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
            target = stmt.body[0].targets[0].target
            names = [e.value for e in target.elements] if type(target) is cst.Tuple else [target]
            assigned = assigned | {n.value for n in names if type(n) is cst.Name}
    return assigned


class _Reverser:
    """Turns a block of primal statements into its adjoint block, last statement first."""

    def __init__(self, writer, steps, available, occurrences):
        self.writer, self.steps, self.available = writer, steps, available
        self.occurrences = occurrences  # how often each name is spelled in the function
        # loop -> (tape, taped names, {copy taken at the start of the body: name copied})
        self.tapes: dict[int, tuple[str, tuple[str, ...], dict[str, str]]] = {}
        self.tape_names: dict[int, str] = {}
        self.starts: dict[tuple[int, str], str] = {}  # (loop, name) -> _at_start's copy

    def loop(self, stmt, where) -> list:
        """``for … in reversed(_tape1):`` walking the iterations backwards.

        Adjoints of values made before the loop accumulate across iterations, so they start
        at zero before it; a loop variable's adjoint is handed from one iteration to the one
        before through the copies ``rename`` put at both ends of the body. What the adjoint
        body reads of the iteration's own values is what the forward pass tapes.
        """
        writer = self.writer
        body = stmt.body.body
        inside = occurrences(stmt)
        local = {n for n in _assigned_names(body) | set(_target_names(stmt))
                 if self.occurrences[n] == inside[n]}  # spelled nowhere outside the loop
        entry = set(writer.defined) - local
        # dry runs find the adjoints the body adds to, which must exist before the loop; an
        # adjoint carried in from the next iteration can open new paths, so run to a fixpoint
        needed: set[str] = set()
        while True:
            writer.defined = entry | needed
            self.block(body, where, [])
            grown = {n for n in (writer.defined - local - entry) if writer.activity.is_active(n)}
            if grown <= needed:
                break
            needed |= grown
        needed = sorted(needed)
        writer.defined = entry | set(needed)
        start = set(writer.defined)
        out, notes = self.block(body, where, [])
        missed = {n for n in (writer.defined - local) - start if writer.activity.is_active(n)}
        if missed:  # a contribution the loop would drop: never let it pass silently
            raise AssertionError(f"loop adjoints {sorted(missed)} were not initialised")
        before = self.available.get(id(stmt), frozenset())
        for name in sorted(start - writer.defined):  # reset in the body and not given again
            out.append(writer.zero(name, self._at_start(stmt, name) if name in before else name))
        writer.defined = start
        if not out:
            return [writer.zero(n) for n in needed]
        # the tapes of the loops inside this one, each iteration's own (found by where the
        # loops stand, not by which tapes appeared while this body was written: the dry runs
        # of an enclosing loop write this body more than once)
        nested = {self.tapes[k][0] for k in _loops_inside(body) if k in self.tapes}
        nested |= {writer.pullbacks[id(s)] for s in simple_statements(body) if id(s) in writer.pullbacks}
        read = names_in(cst.Module(body=out))
        starts = {copy: name for (loop, name), copy in self.starts.items()
                  if loop == id(stmt) and copy in read}
        taped = tuple(sorted(read & (local | nested | set(starts)), key=self._order(stmt)))
        tape = self.tape_names.setdefault(id(stmt), writer.namer.fresh_numbered("_tape"))
        self.tapes[id(stmt)] = (tape, taped, starts)
        target = tape_target(taped)
        header = cst.EmptyLine(comment=cst.Comment(f"# adjoint of: {where[1]}  (line {where[0]})"))
        loop = cst.For(target=target, iter=cst.Call(cst.Name("reversed"), [cst.Arg(cst.Name(tape))]),
                       body=cst.IndentedBlock(out, footer=notes))
        before = [writer.zero(n) for n in needed]
        result = [*before, loop]
        result[0] = result[0].with_changes(leading_lines=[header])
        return result

    def _at_start(self, stmt, name: str) -> str:
        """The name of what the forward body takes of ``name`` first (``x_1_start =
        rt.blank_like(x_1)``: its shape and dtype, no memory of a large array): a step that
        overwrites ``name`` without reading it gives the value it had at the start of the
        step a zero adjoint, of that value's shape, which the value after the loop need not
        have. One name per loop and variable, however often the body is written (the dry
        runs)."""
        key = (id(stmt), name)
        if key not in self.starts:
            self.starts[key] = self.writer.namer.fresh(f"{name}_start")
        return self.starts[key]

    @staticmethod
    def _order(stmt):
        """Taped names in the order the forward pass makes them: the loop target first."""
        order = {n: i for i, n in enumerate([*_target_names(stmt),
                                             *_assigned_names(stmt.body.body, ordered=True)])}
        return lambda n: (order.get(n, len(order)), n)

    def block(self, statements, start, seeds) -> tuple[list, list]:
        """The adjoint statements of ``statements``, and comments left for what follows."""
        out: list = []
        notes: list[cst.EmptyLine] = []  # comments waiting for the next pullback statement
        said = [start] if not seeds else [None]  # the line whose comment was written last

        def comment(stmts, where):
            if not stmts or where == said[0]:
                return stmts
            said[0] = where
            return _commented(stmts, where)

        def emit(new):
            if new and notes:
                new[0] = new[0].with_changes(leading_lines=[*notes, *new[0].leading_lines])
                notes.clear()
            out.extend(new)

        located, where = [], start
        for stmt in statements:
            where = parse_marker(stmt.leading_lines) or where
            located.append((stmt, where))
        current, pending = start, list(seeds)
        for stmt, where in reversed(located):
            if where != current:
                emit(comment(pending, current))
                current, pending = where, []
            if type(stmt) is cst.If:
                emit(comment(pending, current))
                pending = []
                emit(self.branch(stmt, where, repeat=where != said[0]))
                said[0] = where
            elif type(stmt) in (cst.For, cst.While):
                emit(comment(pending, current))
                pending = []
                emit(self.loop(stmt, where))
                said[0] = where
            elif id(stmt) in self.steps:
                target, op, inputs = self.steps[id(stmt)]
                pending.extend(self.writer.assignment(target, op, inputs, where[0], id(stmt)))
            for line in stmt.leading_lines:
                if line.comment is not None and line.comment.value.startswith("# no_grad"):
                    emit(comment(pending, current))
                    current, pending = None, []
                    notes.append(cst.EmptyLine(comment=cst.Comment(
                        line.comment.value.replace("constants for differentiation", "no adjoint"))))
        emit(comment(pending, current))
        return out, notes

    def branch(self, stmt: cst.If, where, repeat: bool = True) -> list:
        """``if c:`` in the pullback too, on the same recorded condition; an adjoint that only
        one side computes is zero on the other."""
        writer = self.writer
        before = set(writer.defined)
        body, body_notes = self.block(stmt.body.body, where, [])
        after_body, writer.defined = writer.defined, set(before)
        orelse = stmt.orelse.body.body if type(stmt.orelse) is cst.Else else []
        other, other_notes = self.block(orelse, where, [])
        after_other = writer.defined
        available = self.available.get(id(stmt), frozenset())
        raising = [ends(stmt.body.body, (cst.Raise,)), ends(orelse, (cst.Raise,))]
        if any(raising) and not all(raising):  # a side that raises never reaches the pullback:
            if raising[0]:                     # the other side's adjoints are the only ones
                body, body_notes, after_body = [], [], after_other
            else:
                other, other_notes, after_other = [], [], after_body
        for name in sorted(after_body - after_other):
            if name in available:
                other.append(writer.zero(name))
        for name in sorted(after_other - after_body):
            if name in available:
                body.append(writer.zero(name))
        writer.defined = (after_body | after_other) & (before | available)
        if not body and not other:
            return []
        test = stmt.test
        if not body:
            body, other, body_notes = other, [], other_notes
            test = cst.UnaryOperation(cst.Not(), test)
        comment = cst.EmptyLine(comment=cst.Comment(f"# adjoint of: {where[1]}  (line {where[0]})"))
        block = cst.IndentedBlock(body, footer=body_notes)
        result = cst.If(test=test, body=block, leading_lines=[comment] if repeat else [])
        if other:
            result = result.with_changes(orelse=cst.Else(cst.IndentedBlock(other, footer=other_notes)))
        return [result]


@lru_cache(maxsize=None)
def _parameters(raw) -> types.MappingProxyType:
    """``inspect.signature(raw).parameters`` of a rule's function, worked out once."""
    return inspect.signature(raw).parameters


def _commented(stmts: list, where) -> list:
    if not stmts or where is None:
        return stmts
    line, text = where
    comment = cst.EmptyLine(comment=cst.Comment(f"# adjoint of: {text}  (line {line})"))
    return [stmts[0].with_changes(leading_lines=[comment]), *stmts[1:]]


def _field_name(key) -> str | None:
    """``w`` for the key ``rt.field("w")`` of a dataclass or namedtuple field, else None."""
    if type(key) is cst.Call and type(key.func) is cst.Attribute and \
            key.func.attr.value == "field" and type(key.args[0].value) is cst.SimpleString:
        return key.args[0].value.evaluated_value
    return None


def _value(target) -> cst.BaseExpression:
    """The primal result of a line: its name, or the tuple of its names (``a, b = …``)."""
    if isinstance(target, tuple):  # (p,) for one name: the comma makes it a tuple
        return cst.Tuple([cst.Element(cst.Name(t), comma=cst.Comma()) if len(target) == 1
                          else cst.Element(cst.Name(t)) for t in target])
    return cst.Name(target)


def _assign(target: cst.BaseAssignTargetExpression, value: cst.BaseExpression):
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], value)])


def _factor(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` as the right operand of ``2 *``: products stay bare, sums get parentheses."""
    if isinstance(expr, (cst.Name, cst.Call, cst.Attribute, cst.Subscript, cst.BaseNumber)) or \
            type(expr) is cst.BinaryOperation and type(expr.operator) is cst.Multiply:
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _is_number(node: cst.BaseExpression) -> bool:
    if type(node) is cst.UnaryOperation:
        node = node.expression
    return isinstance(node, cst.BaseNumber)


class _AdjointWriter:
    """Writes the adjoint statements of one primal assignment at a time, last first."""

    def __init__(self, ctx: Context, namer: Namer, activity: Activity, local_names,
                 containers=frozenset()):
        self.ctx, self.namer, self.activity, self.local_names = ctx, namer, activity, local_names
        self.containers = containers  # names whose adjoint is a container (a pytree)
        self.defined: set[str] = set()  # variables whose adjoint has been assigned
        self.links: dict = {}  # (function, wrt) -> (name, module-level statement)
        self.pullbacks: dict[int, str] = {}  # call statement -> its pullback's name
        self.forward: dict[int, cst.SimpleStatementLine] = {}  # call statement -> its rewrite
        self.spelling_cache: dict[str, cst.BaseExpression] = {}
        self.covered: set[str] = set()  # names the statement being written gave adjoints to
        self.temps: dict[str, cst.BaseExpression] = {}  # normalize's temporaries, for messages

    def rt(self, name: str) -> cst.Attribute:
        return cst.Attribute(cst.Name(self.ctx.rt), cst.Name(name))

    def active(self, node: cst.BaseExpression) -> bool:
        return type(node) is cst.Name and self.activity.is_active(node.value)

    def zero(self, name: str, like: str | None = None) -> cst.SimpleStatementLine:
        """``dname = rt.zeros_like(name)``: the adjoint on a side that does not touch it;
        ``like``: a name holding a value of ``name``'s there (its shape, its structure)."""
        return _assign(cst.Name(self.namer.adjoint(name)), self.zeros(name, like))

    def zeros(self, name: str, like: str | None = None) -> cst.Call:
        helper = "tree_zeros" if name in self.containers else "zeros_like"
        return cst.Call(self.rt(helper), [cst.Arg(cst.Name(like or name))])

    def contribute(self, name: str, expr: cst.BaseExpression) -> list:
        """``dname = expr`` for the first contribution, ``dname = dname + expr`` after."""
        d = cst.Name(self.namer.adjoint(name))
        self.covered.add(name)
        if name not in self.defined:
            self.defined.add(name)
            return [_assign(d, expr)]
        if name in self.containers:
            return [_assign(d, cst.Call(self.rt("tree_add"), [cst.Arg(d), cst.Arg(expr)]))]
        if type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Minus:
            return [_assign(d, cst.BinaryOperation(d, cst.Subtract(), expr.expression))]
        return [_assign(d, cst.BinaryOperation(d, cst.Add(), expr))]

    def assignment(self, target, op: Op, inputs, line: int, key: int = 0) -> list:
        """The adjoint statements of ``target = <op>``; an active value that ``op`` reads and
        that gets no adjoint from them (a value inside an argument srcdiff does not
        differentiate) is an error, never a silent zero."""
        self.line, self.covered = line, set()
        flows = any(self.activity.is_active(t) and t in self.defined for t in
                    (target if isinstance(target, tuple) else (target,)))
        out = self.adjoint(target, op, inputs, key)
        if not flows or op.kind in ("constant", "nondiff"):
            return out  # no adjoint reaches the line, or its value is a proven constant
        hidden = self.hidden(op)
        if hidden is None:
            missing = [n for n in inputs if self.activity.is_active(n) and n not in self.covered]
            hidden = (missing[0], "an argument srcdiff does not differentiate") if missing else None
        if hidden is not None:
            raise self.uncovered(op, *hidden)
        return out

    def hidden(self, op: Op):
        """``(name, where)`` for an active name read where the adjoint code does not look: in
        an option (``np.clip(x, a_min=lo)``), or inside an expression that is not an operand
        of its own (``helper([a, b])``, a list in a list); ``None`` if there is none."""
        parts = []
        for e in op.operands:
            if e is None:  # a dynamic call without a receiver
                continue
            if type(e) in (cst.List, cst.Tuple) and op.kind == "rule":  # np.stack([a, b])
                parts += [(el.value, "a list or tuple inside a list or tuple") for el in e.elements
                          if type(el.value) is not cst.Name]
            elif type(e) is not cst.Name:
                parts.append((e, "a list, tuple or dict written inside the call"))
        parts += [(v, f"its argument {k}=") for k, v in op.options]
        for expr, where in parts:
            for name in reads(expr, self.local_names):
                if self.activity.is_active(name):
                    return name, where
        return None

    def spell(self, node: cst.CSTNode) -> str:
        """``node`` as the user wrote it: normalize's temporaries (``_t1``) put back."""
        return _code(node.visit(_Expand(self.temps)))

    def user_names(self, names) -> list[str]:
        """The user's variables behind ``names`` (a temporary stands for what it reads)."""
        found: dict[str, None] = {}
        stack = list(reversed(list(names)))
        while stack:
            name = stack.pop()
            if name in self.temps:
                stack.extend(reversed(reads(self.temps[name], self.local_names)))
            else:
                found[name] = None
        return list(found)

    def uncovered(self, op: Op, name: str, where: str):
        """The error for an active ``name`` that reaches ``op`` where no adjoint flows back."""
        advice = "Bind the value to a name first and pass the name, or wrap it in " \
            "srcdiff.stop_gradient(...) if no gradient should flow through it."
        if where == "its argument key=":  # d[k] of k from 'for k in d': srcdiff took d's rows
            advice = "A key or an index is not differentiated: compute it from values that " \
                "are not, or wrap it in srcdiff.stop_gradient(...). To loop over a dict's " \
                "keys write 'for k in d.keys()' or 'for k, v in d.items()' ('for k in d' " \
                "reads d's rows, as for an array)."
        return self.ctx.error(
            NotDifferentiableError,
            f"srcdiff cannot differentiate '{self.spell(op.spelled)}' with respect to "
            f"'{', '.join(self.user_names([name]))}', which needs a "
            f"gradient: the value reaches {where}, and srcdiff has no adjoint for it there. "
            f"{advice}", self.line, token=op.text.split("(")[0])

    def adjoint(self, target, op: Op, inputs, key: int) -> list:
        if isinstance(target, tuple):  # a, b = helper(x)
            return self.unpacked_call(target, op, inputs, key)
        if not self.activity.is_active(target) or target not in self.defined:
            return []
        g = cst.Name(self.namer.adjoint(target))
        self.defined.discard(target)  # the value is overwritten here: earlier, its adjoint is 0
        if op.kind == "copy":  # a constant copied into an active name gets no adjoint
            return self.contribute(op.operands[0].value, g) if self.active(op.operands[0]) else []
        if op.kind == "rule":
            return self.rule(target, op, g)
        if op.kind == "function":
            return self.function_call(target, op, g, key)
        if op.kind == "dynamic":
            return self.dynamic_call(target, op, g, key)
        if op.kind == "project":
            return self.projection(op, g)
        if op.kind in ("constant", "nondiff"):  # nothing flows back through a constant
            return []
        if op.kind == "pack":  # d = {"w": w}: each value's adjoint is read out of dd
            out = []
            for (_, key), value in zip(op.options, op.operands):
                if self.active(value):
                    field = _field_name(key)  # p = P(w, b): dw = dp.w
                    part = cst.Attribute(g, cst.Name(field)) if field else cst.Subscript(
                        g, [cst.SubscriptElement(cst.Index(key))])
                    out += self.contribute(value.value, part)
            return out
        reads = [n for n in inputs if self.activity.is_active(n)]
        if not reads:  # an unknown operation on constants (p.c of a parameter not in wrt)
            return []
        raise self.unknown(op, reads)

    def unknown(self, op: Op, reads) -> NotDifferentiableError:
        """The error for an operation without a rule that active values reach."""
        reads = [n for n in reads if self.activity.is_active(n)]
        return self.ctx.error(
            NotDifferentiableError,
            f"srcdiff cannot differentiate {op.problem}: '{self.spell(op.spelled)}' receives "
            f"{', '.join(self.user_names(reads)) or 'a value'}, which needs a gradient. "
            "Register an adjoint with "
            "@srcdiff.adjoint(<function>), or wrap the value in srcdiff.stop_gradient(...) "
            "if no gradient should flow through it.", self.line, token=op.text.split("(")[0])

    def rule(self, target: str, op: Op, g: cst.Name) -> list:
        rule = op.rule
        sequences = [i for i, e in enumerate(op.operands) if type(e) in (cst.List, cst.Tuple)
                     and any(self.active(el.value) for el in e.elements)]
        singles = [i for i, e in enumerate(op.operands) if self.active(e)]
        if not sequences and not singles:
            return []
        self.covered.update(op.operands[i].value for i in singles)  # the rule's adjoints, or
        self.covered.update(el.value.value for i in sequences  # a zero it proves
                            for el in op.operands[i].elements if self.active(el.value))
        template = template_for(rule) if not op.unchecked else None  # rt.<rule> checks them
        if template is not None and not sequences:
            holes = self.holes(template.params, target, op, g)
            spelling = {name: self.spelling(name, rule) for name in template.globals_used}
            contributions: list[tuple[str, cst.BaseExpression]] = []
            for i in singles:
                expr = fill(template, i, holes, spelling)
                if expr is None:
                    continue
                if rule.broadcasting and self.may_broadcast(op, i):
                    expr = self.unbroadcast(expr, op.operands[i])
                name = op.operands[i].value
                same = [k for k, (n, e) in enumerate(contributions) if n == name and e.deep_equals(expr)]
                if same:  # h * h: one statement, 2 * (dh_1 * h), not the same term twice
                    contributions[same[0]] = (name, cst.BinaryOperation(
                        cst.Integer("2"), cst.Multiply(), _factor(expr)))
                else:
                    contributions.append((name, expr))
            out = []
            for name, expr in contributions:
                out += self.contribute(name, expr)
            return out
        return self.called_rule(target, op, g, singles, sequences)

    def called_rule(self, target, op, g, singles, sequences) -> list:
        rule = op.rule
        template = template_for(rule)  # a rule called (its options checked when it runs)
        if template is not None:  # whose one-line body says an adjoint is None: none here
            singles = [i for i in singles if template.results[i] is not None]
            if not singles and not sequences:
                return []
        args = [cst.Arg(g)] + ([cst.Arg(_value(target))] if rule.takes_ans else [])
        args += [cst.Arg(e) for e in op.operands]
        args += [cst.Arg(v, keyword=cst.Name(k), equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))
            for k, v in op.options]
        call = cst.Call(self.rule_function(rule, op), args)
        if len(op.operands) > 1 and len(singles) == 1 and not sequences:
            i = singles[0]
            index = cst.Subscript(call, [cst.SubscriptElement(cst.Index(cst.Integer(str(i))))])
            return self.contribute(op.operands[i].value, index)
        if len(op.operands) == 1 and singles:
            return self.contribute(op.operands[0].value, call)
        # several adjoints at once: unpack into fresh names, then accumulate
        out, later, targets = [], [], []
        for i, e in enumerate(op.operands):
            if i in sequences:
                parts = []
                for el in e.elements:
                    parts.append(self.receiver(el.value, later))
                targets.append(cst.Tuple([cst.Element(p) for p in parts],
                                         lpar=[] if len(op.operands) == 1 else [cst.LeftParen()],
                                         rpar=[] if len(op.operands) == 1 else [cst.RightParen()]))
            else:
                targets.append(self.receiver(e, later) if i in singles else cst.Name("_"))
        lhs = targets[0] if len(targets) == 1 else cst.Tuple([cst.Element(t) for t in targets],
                                                             lpar=[], rpar=[])
        out.append(_assign(lhs, call))
        for name, temp in later:
            out += self.contribute(name, temp)
        return out

    def function_call(self, target: str, op: Op, g: cst.Name, key: int) -> list:
        """A call of the user's own function: the forward pass calls its derivative
        (``_t1, _t1_pullback = helper_vjp(a, b)``), the pullback its pullback."""
        active = [(p, e) for p, e in zip(op.params, op.operands) if self.active(e)]
        if not active:
            return []
        link = self.link(op.primitive, tuple(p for p, _ in active))
        forward = cst.Call(cst.Name(link), [cst.Arg(e) for e in op.operands])
        return self.called_derivative(target, key, forward, [e for _, e in active], g)

    def dynamic_call(self, target, op: Op, g: cst.Name, key: int) -> list:
        """A call of a function known when it runs (``f(y, theta)``, ``model.nll(X)``): the
        forward pass asks the runtime for its derivative, by identity
        (``_t1, _t1_pullback = rt.call_vjp(f, y, theta, wrt=(1,))``)."""
        receiver, args = op.operands[0], op.operands[1:]
        active = [i for i, e in enumerate(args) if self.active(e)]
        by_self = receiver is not None and self.active(receiver)
        if not active and not by_self:
            return []
        if receiver is None and self.active(op.primitive):
            raise self.ctx.located(
                f"srcdiff cannot differentiate '{self.spell(op.spelled)}': the function called "
                "depends on a "
                "value that needs a gradient.", self.line, token=op.text.split("(")[0])
        keyword = lambda k, v: cst.Arg(v, keyword=cst.Name(k), equal=cst.AssignEqual(  # noqa: E731
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))
        wrt = cst.Tuple([cst.Element(cst.Integer(str(i))) for i in active]) if active else \
            cst.Tuple([])
        call_args = [cst.Arg(op.primitive), *(cst.Arg(e) for e in args),
                     *(keyword(k, v) for k, v in op.options), keyword("wrt", wrt)]
        if by_self:  # the object itself: a @staticmethod reached through it gives it zeros
            call_args.append(keyword("wrt_self", receiver))
        forward = cst.Call(self.rt("call_vjp"), call_args)
        return self.called_derivative(target, key, forward,
                                      [receiver] * by_self + [args[i] for i in active], g)

    def called_derivative(self, target, key: int, forward: cst.Call, active, g) -> list:
        """The forward pass's ``value, pullback = <forward>`` and the pullback's call of it,
        whose adjoints go to the ``active`` operands in order."""
        names = target if isinstance(target, tuple) else (target,)
        base = next((n for n in names if n.strip("_")), "call")
        pullback = self.pullbacks.setdefault(key, self.namer.fresh(f"{base}_pullback"))
        value = _value(target)
        self.forward[key] = cst.SimpleStatementLine([cst.Assign(
            [cst.AssignTarget(cst.Tuple([cst.Element(value), cst.Element(cst.Name(pullback))],
                                        lpar=[], rpar=[]))], forward)])
        call = cst.Call(cst.Name(pullback), [cst.Arg(g)])
        if len(active) == 1:
            return self.contribute(active[0].value, call)
        later: list = []
        targets = [self.receiver(e, later) for e in active]
        out = [_assign(cst.Tuple([cst.Element(t) for t in targets], lpar=[], rpar=[]), call)]
        for name, temp in later:
            out += self.contribute(name, temp)
        return out

    def projection(self, op: Op, g: cst.Name) -> list:
        """``w = params["W"]``: ``dparams = rt.tree_put(params, "W", dw)`` the first time,
        ``rt.tree_add_at(dparams, params, "W", dw)`` after."""
        base = op.operands[0]
        if not self.active(base):
            return []
        key = dict(op.options)["key"]
        d = cst.Name(self.namer.adjoint(base.value))
        self.covered.add(base.value)
        if base.value not in self.defined:
            self.defined.add(base.value)
            return [_assign(d, cst.Call(self.rt("tree_put"), [cst.Arg(base), cst.Arg(key), cst.Arg(g)]))]
        return [_assign(d, cst.Call(self.rt("tree_add_at"),
                                    [cst.Arg(d), cst.Arg(base), cst.Arg(key), cst.Arg(g)]))]

    def unpacked_call(self, targets: tuple[str, ...], op: Op, inputs, key: int) -> list:
        """``a, b = helper(x)``: the pullback gets the tuple ``(da, db)``, zero where a result
        has no adjoint."""
        given = [t for t in targets if self.activity.is_active(t) and t in self.defined]
        if not given:
            return []
        if op.kind == "rule" and op.rule.sequence:  # a, b = np.split(x, 2): g is a tuple
            g = _value(tuple(self.namer.adjoint(t) if t in given else "None" for t in targets))
            for t in given:
                self.defined.discard(t)
            return self.rule(targets, op, g)
        if op.kind == "unknown":  # w, v = np.linalg.eig(A): the function has no rule
            raise self.unknown(op, inputs)
        if op.kind not in ("function", "dynamic"):
            raise self.ctx.located(
                f"srcdiff can unpack the results of your own functions ('a, b = helper(x)'), "
                f"not of '{self.spell(op.spelled)}'; assign the result to one name and index it, or make "
                "the values one by one.", self.line, token=op.text.split("(")[0])
        parts = []
        for t in targets:
            if t in given:
                parts.append(cst.Name(self.namer.adjoint(t)))
            else:
                parts.append(self.zeros(t))  # a container's zeros for one (a, b = pair())
        for t in given:
            self.defined.discard(t)
        g = cst.Tuple([cst.Element(p, comma=cst.Comma()) if len(parts) == 1 else cst.Element(p)
                       for p in parts])  # (dp,) for p, = helper(x)
        if op.kind == "dynamic":
            return self.dynamic_call(targets, op, g, key)
        return self.function_call(targets, op, g, key)

    def link(self, fn, wrt: tuple[str, ...], kind: str = "derivative_of",
             suffix: str = "_vjp") -> str:
        """The module-level name of ``fn``'s derivative: ``helper_vjp = rt.derivative_of(…)``
        (forward mode's: ``helper_jvp = rt.tangent_of(…)``)."""
        key = (fn, wrt)
        if key not in self.links:
            spelled = _AdjointWriter.spell_function(self, fn)
            name = self.namer.fresh(f"{fn.__name__}{suffix}")
            value = cst.Call(self.rt(kind), [
                cst.Arg(spelled),
                cst.Arg(cst.Tuple([cst.Element(cst.SimpleString(repr(p))) for p in wrt]))])
            self.links[key] = (name, cst.SimpleStatementLine(
                [cst.Assign([cst.AssignTarget(cst.Name(name))], value)]))
        return self.links[key][0]

    def spell_function(self, fn) -> cst.BaseExpression:
        """The name under which the user's code sees ``fn`` (a global or a closure variable);
        a runtime function read from source (a tangent rule, in second order) is ``rt.<name>``."""
        import srcdiff.runtime as runtime

        if getattr(runtime, fn.__name__, None) is fn:
            return self.rt(fn.__name__)
        if getattr(getattr(runtime, fn.__name__, None), "__wrapped__", None) is fn:
            return cst.Attribute(self.rt(fn.__name__), cst.Name("__wrapped__"))  # a rule's body
        for name, value in self.ctx.fn.__globals__.items():
            if value is fn and name not in self.local_names:
                return cst.Name(name)
        for name, value in self.ctx.fn.__globals__.items():  # import mod; mod.helper(x)
            if isinstance(value, types.ModuleType) and name not in self.local_names and \
                    getattr(value, fn.__name__, None) is fn:
                return cst.Attribute(cst.Name(name), cst.Name(fn.__name__))
        code, cells = self.ctx.fn.__code__, self.ctx.fn.__closure__ or ()
        for name, cell in zip(code.co_freevars, cells):
            if cell.cell_contents is fn:
                return cst.Name(name)
            if isinstance(cell.cell_contents, runtime.tangent_of) and \
                    cell.cell_contents.function() is fn:  # a helper's jvp, in second order
                return cst.Call(cst.Attribute(cst.Name(name), cst.Name("function")), [])
        raise self.ctx.located(
            f"srcdiff cannot name the function {fn.__qualname__} called here from the generated "
            f"code; make it a module-level function of {self.ctx.name}'s module.", self.line)

    def rule_function(self, rule, op: Op) -> cst.BaseExpression:
        """How generated code names the rule: ``rt.<name>``, or the user's own name for it."""
        import srcdiff.runtime as runtime

        if getattr(runtime, rule.name, None) is rule.call:
            return self.rt(rule.name)
        for name, value in self.ctx.fn.__globals__.items():
            if value is rule.call and name not in self.local_names:
                return cst.Name(name)
        for name, value in self.ctx.fn.__globals__.items():
            module = getattr(value, "__name__", None)
            if module == rule.call.__module__ and getattr(value, rule.call.__name__, None) is rule.call:
                return cst.Attribute(cst.Name(name), cst.Name(rule.call.__name__))
        raise self.ctx.located(
            f"the adjoint rule {rule.call.__name__} (module {rule.call.__module__}) for "
            f"'{op.text}' is not visible from the module of {self.ctx.name}(); import it there "
            f"(from {rule.call.__module__} import {rule.call.__name__}) so the generated code "
            "can call it.", self.line)

    def receiver(self, node, later) -> cst.Name:
        """Where an unpacked adjoint lands: its own name the first time, else a temporary."""
        if not self.active(node):
            return cst.Name("_")
        name = node.value
        self.covered.add(name)
        if name not in self.defined and all(name != n for n, _ in later):
            self.defined.add(name)
            return cst.Name(self.namer.adjoint(name))
        temp = cst.Name(self.namer.fresh("_d" + name.lstrip("_")))
        later.append((name, temp))
        return temp

    def holes(self, params, target, op: Op, g) -> dict:
        rule = op.rule
        holes = {"g": g}
        if rule.takes_ans:
            holes["ans"] = _value(target)
        holes.update(zip(rule.operands, op.operands))
        given = dict(op.options)
        defaults = _parameters(rule.raw)
        for name in rule.options:
            holes[name] = given[name] if name in given else literal(defaults[name].default)
        return holes

    def spelling(self, name: str, rule) -> cst.BaseExpression:
        if name not in self.spelling_cache:
            self.spelling_cache[name] = runtime_spelling(
                name, rule.raw.__globals__[name], self.ctx.rt, self.ctx.fn.__globals__,
                self.local_names)
        return self.spelling_cache[name]

    def unbroadcast(self, expr: cst.BaseExpression, operand) -> cst.BaseExpression:
        """``rt.unbroadcast(expr, operand)``; ``-rt.unbroadcast(g, y)`` for ``expr = -g``: the
        same numbers (negation is exact), negating the summed array, which may be smaller."""
        if type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Minus and \
                not expr.lpar:
            return expr.with_changes(expression=self.unbroadcast(expr.expression, operand))
        return cst.Call(self.rt("unbroadcast"), [cst.Arg(expr), cst.Arg(operand)])

    @staticmethod
    def may_broadcast(op: Op, i: int) -> bool:
        """Whether operand ``i`` may have a smaller shape than the result."""
        others = [e for j, e in enumerate(op.operands) if j != i]
        mine = op.operands[i]
        return not all(_is_number(e) or e is mine or e.deep_equals(mine) for e in others)

