"""stacks: a list summed whole gives each of its entries one number as adjoint, not a row.

``np.sum(np.stack(hs))`` (also ``np.array(hs)``, ``np.sum(hs)``, ``np.mean(np.stack(hs))``)
of a list of hidden states: ``reverse`` spreads the seed over an array of the stack's shape,
cuts it into rows, one per entry, and the pullback pops a row per step. Every row holds the
same number, the seed of its dtype, and adding it to an adjoint of the entry's exact shape
gives what adding the number gives:

    d_t4 = rt.sum_adjoint(1.0, _t4)                      # each entry of hs: the same adjoint
    dhs_1 = list(rt.stack_adjoint(d_t4, hs_1))     →     dhs_each = rt.spread_number(1.0, _t4)
    ...                                                  ...
        dhs_3 = dhs_1                                        dh_3 = dh_1
        dh_3 = dh_1                                          dh_3 = dh_3 + dhs_each
        dh_3 = dh_3 + rt.pop_adjoint(dhs_3, hs)
        dhs_2 = dhs_3
        ...
        dhs_1 = dhs_2

Conditions (under a shape pattern, ``ctx.dims``): the list's adjoint is made by that one line,
from ``d = rt.sum_adjoint(g, s)`` on the line before it with ``g`` a number; every other
binding of its versions is a copy (``dhs_3 = dhs_1``) or ``rt.drop_adjoint``, and every read
is one of those or ``rt.pop_adjoint(dhs, hs)`` as an operand of elementwise arithmetic whose
other operand provably has the shape of the list's entries (``shapes.shape_facts``). Otherwise
the list's adjoint stays as ``reverse`` and ``lists`` wrote it.

:func:`rewrite_blanks` (after ``dce``) then gives the forward pass's ``_t4 = np.stack(hs_1)``
(or ``np.array``), where only its shape and dtype are read (``rt.sum_adjoint``'s operand,
``rt.count``, ``rt.spread_number``), as ``rt.blank(np.stack, hs_1)``: a view of one zero of that
shape and dtype, without copying the entries, or ``np.stack(hs_1)`` itself (with its errors)
where the entries are not numpy arrays of one shape and dtype.
"""

from __future__ import annotations

import re

import libcst as cst
import numpy as np

from srcdiff.runtime import creation, helpers, rules, trees

from ..analysis.values import (binding_counts, map_statements, reads, resolve, subexpressions,
                               walk)
from ..context import Context
from ..analysis.list_versions import blocks
from ..names import Namer, children, kept_lines, names_in, with_blocks
from .inplace import assignment
from .shapes import SCALAR, _is_list, shape_facts
from .spread import _ELEMENTWISE

__all__ = ["rewrite", "rewrite_blanks"]

_SPLITS = (rules.stack_adjoint, creation.array_adjoint)  # the adjoint of np.stack / np.array
_MAKERS = (np.stack, np.array)
_SHAPE_READERS = {rules.sum_adjoint: 1, helpers.count: 0, rules.spread_number: 1}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    if not ctx.dims or type(vjp) is not cst.FunctionDef or \
            not any(type(n) is cst.Attribute and n.attr.value in ("stack_adjoint", "array_adjoint", "sum_adjoint")
                    for n in subexpressions(vjp)):
        return module
    facts = None
    for found in _split_lists(vjp, ctx):
        facts = facts or shape_facts(vjp, ctx)
        new = _Spread(vjp, ctx, facts, *found).rewrite()
        if new is not None:
            vjp, facts = new, None
    return module.with_changes(body=[*module.body[:-1], vjp])


def _split_lists(vjp: cst.FunctionDef, ctx: Context):
    """``(list adjoint's name, g, s, its line, the line before or None)`` for each ``L = list(rt.stack_adjoint(d, hs))``
    (``array_adjoint``) right after ``d = rt.sum_adjoint(g, s)``, and for each
    ``L = list(rt.sum_adjoint(g, hs))``, the adjoint of ``np.sum`` of the list itself."""
    local = set(binding_counts(vjp)) | {p.name.value for p in vjp.params.params}
    for block in _blocks(vjp):
        previous = None
        for stmt in block:
            line = assignment(stmt)
            value = line.value if line is not None else None
            if line is not None and type(line.targets[0].target) is cst.Name and \
                    _plain_call(value, list, ctx, local, 1):
                inner = value.args[0].value
                if _plain_call(inner, _SPLITS, ctx, local, 2) and previous is not None and \
                        _is_name(inner.args[0].value, previous[0]):
                    yield line.targets[0].target.value, previous[1], previous[2], stmt, previous[3]
                elif _plain_call(inner, rules.sum_adjoint, ctx, local, 2):
                    yield line.targets[0].target.value, inner.args[0].value, inner.args[1].value, stmt, None
            previous = None
            if line is not None and type(line.targets[0].target) is cst.Name and \
                    _plain_call(value, rules.sum_adjoint, ctx, local, 2):
                previous = (line.targets[0].target.value, value.args[0].value, value.args[1].value, stmt)


class _Spread:
    def __init__(self, vjp, ctx, facts, adjoint: str, g, s, made_at, spread_at):
        self.vjp, self.ctx, self.facts = vjp, ctx, facts
        self.adjoint, self.g, self.s, self.made_at, self.spread_at = adjoint, g, s, made_at, spread_at
        self.local = set(binding_counts(vjp)) | {p.name.value for p in vjp.params.params}

    def rewrite(self) -> cst.FunctionDef | None:
        if self.facts.of(self.g) != SCALAR:
            return None
        family = self._family()
        if family is None:
            return None
        name = Namer(names_in(self.vjp)).fresh(_adjoint_name(self.adjoint))
        popped = _Popped(self, family, name)
        body = map_statements(self.vjp.body.body, lambda line: line if _copies(line, family, self) \
            or line is self.made_at or line is self.spread_at else line.visit(popped))
        if not popped.lists or any(family & _reads_of(s) for s in walk(body) if s is not self.made_at
                                   and not _copies(s, family, self)):
            return None  # a version read otherwise: the list stays

        spread = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], cst.Call(
            cst.Attribute(cst.Name(self.ctx.rt), cst.Name("spread_number")),
            [cst.Arg(self.g), cst.Arg(self.s)]))])
        comment = cst.EmptyLine(comment=cst.Comment(
            f"# each entry of {_list_name(self.adjoint)}: the same adjoint, one number"))
        # the line stands where the spread array was made, if only the list's line read it
        at = self.spread_at if self.spread_at is not None and not any(
            self.spread_at.body[0].targets[0].target.value in _reads_of(s)
            for s in walk(body) if s is not self.made_at and s is not self.spread_at) else self.made_at

        def change(line):
            if line is at:
                return spread.with_changes(leading_lines=[*line.leading_lines, comment])
            return None if line is self.made_at or _copies(line, family, self) else line

        new = self.vjp.with_changes(body=self.vjp.body.with_changes(body=_without(body, change)))
        # the number gives the same values where every expression it enters elementwise has
        # the entries' shape anyway: checked on the facts of the new function (sound for it,
        # and step by step the two functions then hold the same values)
        facts = shape_facts(new, self.ctx)
        shapes = {_entry_shape(xs, facts) for xs in popped.lists}
        if len(shapes) != 1 or None in shapes or not _numbers_fit(new, name, shapes.pop(), facts):
            return None
        return new

    def _family(self) -> set[str] | None:
        """The versions of the list's adjoint: its name and every name bound to a copy of one
        (or to ``rt.drop_adjoint`` of one); None where a version is bound any other way."""
        family, grew = {self.adjoint}, True
        while grew:
            grew = False
            for stmt in walk(self.vjp.body.body):
                line = assignment(stmt)
                if line is None or type(line.targets[0].target) is not cst.Name:
                    continue
                target = line.targets[0].target.value
                if target not in family and _copied(line.value, self) in family:
                    family.add(target)
                    grew = True
        for stmt in walk(self.vjp.body.body):  # every binding of a version: a copy or the line
            if stmt is self.made_at or type(stmt) not in (cst.SimpleStatementLine, cst.For):
                continue
            if type(stmt) is cst.For:
                if family & set(names_in(stmt.target)):
                    return None
                continue
            for small in stmt.body:
                targets = small.targets if type(small) is cst.Assign else \
                    [small] if type(small) in (cst.AugAssign, cst.AnnAssign) else []
                bound = {n for t in targets for n in names_in(t.target)}
                if bound & family and not _copies(stmt, family, self):
                    return None
        return family


def _entry_shape(xs, facts):
    """The exact shape of the entries of the list ``xs``, else None."""
    found = facts.of(xs)
    if not _is_list(found) or found.of[1] is None or not found.of[1].exact:
        return None
    return found.of[1]


def _numbers_fit(vjp, name: str, shape, facts) -> bool:
    """Whether every read of the number ``name`` is an operand of elementwise arithmetic (at
    any depth) in ``y = E`` with ``E`` of exactly ``shape``, or ``d = name`` of a ``d`` bound
    once whose every read is such an operand."""
    counts = binding_counts(vjp)
    for stmt in walk(vjp.body.body):
        if name not in _reads_of(stmt) or _binds(stmt, name):
            continue
        line = assignment(stmt)
        if line is None or type(line.targets[0].target) is not cst.Name:
            return False
        if _is_name(line.value, name):  # d = the number: d's reads instead
            copy = line.targets[0].target.value
            if counts.get(copy) != 1 or not _operands_fit(vjp, copy, shape, facts, skip=stmt):
                return False
        elif not _operand_fits(line.value, name, shape, facts):
            return False
    return True


def _operands_fit(vjp, name: str, shape, facts, skip) -> bool:
    readers = [s for s in walk(vjp.body.body) if s is not skip and name in _reads_of(s)]
    for stmt in readers:
        line = assignment(stmt)
        if line is None or type(line.targets[0].target) is not cst.Name or \
                not _operand_fits(line.value, name, shape, facts):
            return False
    return bool(readers)


def _operand_fits(expr, name: str, shape, facts) -> bool:
    """Whether each ``name`` in ``expr`` is under ``+ - * /`` and unary minus only (not
    ``expr`` itself), and ``expr`` has exactly ``shape``."""
    uses = [n for n in subexpressions(expr) if type(n) is cst.Name and n.value == name]
    return bool(uses) and not _is_name(expr, name) and \
        all(_under_elementwise(expr, use) for use in uses) and facts.of(expr) == shape


def _binds(stmt, name: str) -> bool:
    line = assignment(stmt)
    return line is not None and _is_name(line.targets[0].target, name)


class _Popped(cst.CSTTransformer):
    """``rt.pop_adjoint(dhs, hs)`` of a version ``dhs`` → ``<name>``; ``lists``: the ``hs``."""

    def __init__(self, spread: _Spread, family: set, name: str):
        self.spread, self.family, self.name, self.lists = spread, family, name, []

    def leave_Call(self, original, updated):
        if _plain_call(original, trees.pop_adjoint, self.spread.ctx, self.spread.local, 2) and \
                type(original.args[0].value) is cst.Name and \
                original.args[0].value.value in self.family:
            self.lists.append(original.args[1].value)
            return cst.Name(self.name)
        return updated


def _under_elementwise(expr, operand) -> bool:
    """Whether ``operand`` is ``expr``, or in it under ``+ - * /`` and unary minus only."""
    if expr is operand:
        return True
    if type(expr) is cst.BinaryOperation and isinstance(expr.operator, _ELEMENTWISE):
        return _under_elementwise(expr.left, operand) or _under_elementwise(expr.right, operand)
    if type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Minus:
        return _under_elementwise(expr.expression, operand)
    return False


def _copied(value, spread: _Spread) -> str | None:
    """``v`` of a copy ``v`` or ``rt.drop_adjoint(v)``, else None."""
    if type(value) is cst.Name:
        return value.value
    if _plain_call(value, trees.drop_adjoint, spread.ctx, spread.local, 1) and \
            type(value.args[0].value) is cst.Name:
        return value.args[0].value.value
    return None


def _copies(stmt, family: set, spread: _Spread) -> bool:
    """Whether ``stmt`` is ``a = b`` (or ``a = rt.drop_adjoint(b)``) between versions."""
    line = assignment(stmt)
    return line is not None and type(line.targets[0].target) is cst.Name and \
        line.targets[0].target.value in family and _copied(line.value, spread) in family


def _reads_of(stmt) -> set[str]:
    """The names a line reads, or the header of a block (its test, its loop's iterable)."""
    if type(stmt) is cst.SimpleStatementLine:
        return reads(stmt)
    header = [getattr(stmt, k, None) for k in ("test", "iter")]
    return set().union(*(reads(h) for h in header if h is not None))


def _without(statements, change):
    """``statements`` with ``change`` applied to every simple line at any depth (None: the
    line goes, its comments to the next one; a block left empty holds ``pass``)."""
    def block(indented):
        return indented.with_changes(body=_without(indented.body, change) or
                                     [cst.SimpleStatementLine([cst.Pass()])])

    out = []
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            out.append((stmt, change(stmt)))
        elif type(stmt) in (cst.If, cst.For, cst.While):
            out.append((stmt, with_blocks(stmt, block)))
        elif type(stmt) is cst.FunctionDef:
            out.append((stmt, stmt.with_changes(body=block(stmt.body))))
        else:
            out.append((stmt, stmt))
    return kept_lines(out)


def _blocks(vjp: cst.FunctionDef):
    """The statement lists of ``vjp`` and of every block nested in it (elif chains too)."""
    yield vjp.body.body
    for stmt in walk(vjp.body.body):
        yield from blocks(stmt)


def _plain_call(node, fns, ctx: Context, local: set, n: int) -> bool:
    """Whether ``node`` calls one of ``fns`` with ``n`` positional arguments and nothing else."""
    if type(node) is not cst.Call or len(node.args) != n or \
            any(a.keyword is not None or a.star for a in node.args):
        return False
    fn = resolve(node.func, ctx, local)
    return fn in fns if isinstance(fns, tuple) else fn is fns


def _is_name(node, name: str) -> bool:
    return type(node) is cst.Name and node.value == name


def _list_name(adjoint: str) -> str:
    """``hs`` of the list adjoint ``dhs_1``."""
    return re.sub(r"_\d+$", "", adjoint[1:]) or adjoint


def _adjoint_name(adjoint: str) -> str:
    return f"d{_list_name(adjoint)}_each"


# ----- the forward pass: a stack read only for its shape -----


def rewrite_blanks(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]
    if not ctx.dims or type(vjp) is not cst.FunctionDef:
        return module
    local = set(binding_counts(vjp)) | {p.name.value for p in vjp.params.params}
    counts = binding_counts(vjp)
    made = {}
    for stmt in walk(vjp.body.body):
        line = assignment(stmt)
        if line is not None and type(line.targets[0].target) is cst.Name and \
                counts.get(line.targets[0].target.value) == 1 and \
                _plain_call(line.value, _MAKERS, ctx, local, 1):
            made[line.targets[0].target.value] = stmt
    if not made:
        return module
    shape_only = {name for name in made if _read_for_shape_only(vjp, name, ctx, local)}
    if not shape_only:
        return module
    lines = {id(made[name]) for name in shape_only}

    def change(line):
        if id(line) not in lines:
            return line
        assign = line.body[0]
        call = assign.value
        blank = cst.Call(cst.Attribute(cst.Name(ctx.rt), cst.Name("blank")),
                         [cst.Arg(call.func), cst.Arg(call.args[0].value)])
        return line.with_changes(body=[assign.with_changes(value=blank)])

    body = map_statements(vjp.body.body, change)
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _read_for_shape_only(vjp: cst.FunctionDef, name: str, ctx: Context, local: set) -> bool:
    """Whether every read of ``name`` is the operand of a call that reads only its shape and
    dtype (or a ``del``). Each read is judged by the call it is in, walking each line's tree:
    not by node identity, which generated lines share (the forward ``np.sum(s, axis=0)`` and
    its adjoint's ``rt.sum_adjoint(g, s, axis=0)`` hold one ``Name`` node: identity counted
    the sum's read as a shape's, and ``np.stack(hs)`` became a blank of zeros, a silent wrong
    gradient, fuzzer seed 114)."""
    for stmt in walk(vjp.body.body):
        if type(stmt) is cst.SimpleStatementLine and all(type(s) is cst.Del for s in stmt.body):
            continue
        if type(stmt) is cst.SimpleStatementLine:
            line = assignment(stmt)
            parts = [line.value] if line is not None and _is_name(line.targets[0].target, name) \
                else [stmt]
        else:
            parts = [getattr(stmt, "test", None), getattr(stmt, "iter", None), getattr(stmt, "target", None)]
        for part in parts:
            if part is not None and _read_beyond_shape(part, name, ctx, local):
                return False
    return True


def _read_beyond_shape(node, name: str, ctx: Context, local: set) -> bool:
    """Whether ``node`` reads ``name`` other than as a shape reader's operand."""
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is cst.Name:
            if n.value == name:
                return True
            continue
        if type(n) is cst.Call and n.args and not any(a.star for a in n.args):
            at = _SHAPE_READERS.get(resolve(n.func, ctx, local))
            positional = [a.value for a in n.args if a.keyword is None]
            if at is not None and len(positional) > at and _is_name(positional[at], name):
                skipped = positional[at]
                stack += (c for c in children(n) if c is not skipped and
                          not (type(c) is cst.Arg and c.value is skipped))
                continue
        stack += children(n)
    return False
