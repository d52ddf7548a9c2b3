"""augment: a temporary read for the last time takes the result of its arithmetic, ``v += w``.

Only in a variant compiled for one pattern of shapes and float64 arrays (options ``dims``
and ``FLOAT64``, see ``srcdiff/analysis/dtypes.py``), where both things an in-place
operation needs are proved before it runs: the result has the operand's shape (the shapes
pass's facts) and its dtype (float64). Then ``t = v + w`` gives exactly the array
``v += w`` does, without a new one (~0.1 µs a small array, a page fault per 4 KiB of a
large one), as a careful person writes it. Invariant after this pass: ``v op= w`` stands
for ``t = v op w`` only where

- ``v`` is bound once at the function's top level to an array the function made
  (``transforms/inplace.py``'s ``makes``, and ``a.dot(b)``, ``a.sum(...)`` of float64
  values), and no line between reads it other than as an operand of arithmetic or a ufunc
  or for its shape; this line reads it only so, and no line after it reads more than its
  shape (``del v``, ``rt.unbroadcast(g, v)``);
- ``op`` is one of ``+ - * / **``, with ``v`` on its left (or either side of ``+ *``);
- ``v`` and ``t`` are float64 and of one shape, not a number (whose operators make a new
  one anyway), and ``t`` is bound only here.

In the forward pass a generated temporary takes the name of what it becomes; elsewhere (a
user's variable keeps its meaning) the target takes the memory first:

    _t1 = X.dot(w)                      r = X.dot(w)
    _t2 = _t1 + b                       r += b
    r = _t2 - y                 →       r -= y
    dr = 2 * r                          dr = r
                                        dr *= 2

The variant for large arrays of other dtypes keeps ``transforms/inplace.py``'s checked
forms (``rt.iadd(v, w)``), which this stage leaves to it; so does, in the variant for large
arrays, a product with a bool mask (``rt.imul(b, m)`` multiplies by the mask in one pass,
``b *= m`` has numpy cast the mask in chunks first).
"""

from __future__ import annotations

import re

import libcst as cst
import numpy as np

from ..analysis.dtypes import BOOL, FLOAT, FLOAT64, dtype_facts
from ..analysis.values import UNKNOWN, binding_counts, number, reads, resolve
from ..context import Context
from ..names import Renamed, kept_lines, spelled
from .inplace import INPLACE, Uses, assignment, bare, kept_nowhere, makes
from .shapes import SCALAR, shape_facts

__all__ = ["rewrite", "without_deleted"]

_AUGMENTED = {cst.Add: cst.AddAssign, cst.Subtract: cst.SubtractAssign,
              cst.Multiply: cst.MultiplyAssign, cst.Divide: cst.DivideAssign,
              cst.Power: cst.PowerAssign}
_COMMUTING = (cst.Add, cst.Multiply)
_TEMPORARY = re.compile(r"_t\d+$")  # the generated forward temporaries (names.Namer.temp)
_MADE_BY_METHODS = ("dot", "sum")


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if FLOAT64 not in ctx.options or not ctx.dims:
        return module
    vjp = module.body[-1]
    changed = False
    if not any(type(s) is cst.FunctionDef for s in vjp.body.body):
        # (a pullback kept as a closure: the top level's names live in two scopes)
        body = _Augmenting(vjp, ctx).statements()
        if body is not None:
            vjp, changed = vjp.with_changes(body=vjp.body.with_changes(body=body)), True
    looped = _in_loops(vjp, ctx)
    if looped is not None:
        vjp, changed = looped, True
    if not changed:
        return module
    return module.with_changes(body=[*module.body[:-1], vjp])


def _in_loops(vjp: cst.FunctionDef, ctx: Context) -> cst.FunctionDef | None:
    """``vjp`` with augmented assignments in the bodies of the forward pass's loops (at its
    top level, every statement a simple line); None where none changed. Within one iteration
    the body is straight-line code, and ``_InLoop`` asks, besides the top level's questions,
    that the array written into is read nowhere but in that body (not by the pullback), and
    not before the line that makes it (a value of the previous iteration)."""
    everywhere = spelled(vjp)  # (the pullback's reads of a forward name count: it is read there)
    # the facts of the forward pass alone: a loop's names are bound there once each (a
    # pullback's loop binds them again, from its tape, and their joined facts are unknown)
    forward = vjp.with_changes(body=vjp.body.with_changes(body=[
        s for s in vjp.body.body if type(s) is not cst.FunctionDef]))
    facts = None
    body, changed = [], False
    for stmt in vjp.body.body:
        if type(stmt) in (cst.For, cst.While) and not stmt.orelse and \
                all(type(s) is cst.SimpleStatementLine for s in stmt.body.body):
            facts = facts or (binding_counts(vjp), shape_facts(forward, ctx), dtype_facts(forward, ctx))
            new = _InLoop(list(stmt.body.body), ctx, facts, everywhere).statements()
            if new is not None:
                stmt, changed = stmt.with_changes(body=stmt.body.with_changes(body=new)), True
        body.append(stmt)
    return vjp.with_changes(body=vjp.body.with_changes(body=body)) if changed else None


class _Augmenting:
    """The top-level statements of the fused gradient ``vjp`` with augmented assignments."""

    def __init__(self, vjp: cst.FunctionDef, ctx: Context):
        self.ctx = ctx
        self.statements_in = list(vjp.body.body)
        self.counts = binding_counts(vjp)
        self.local = set(self.counts)
        self.uses = [Uses.of(s, ctx, self.local) for s in self.statements_in]
        self.shapes = shape_facts(vjp, ctx)
        self.kinds = dtype_facts(vjp, ctx)
        self.forward = _backward_start(self.statements_in)
        self.renames: dict[str, str] = {}

    def statements(self) -> list | None:
        """The rewritten statements, or None where nothing was rewritten."""
        out: list = []
        fresh: dict[str, int] = {}  # name -> index of the statement that made it
        changed = False
        for i, stmt in enumerate(self.statements_in):
            line = assignment(stmt)
            replaced = None
            if line is not None and type(line.targets[0].target) is cst.Name:
                target = line.targets[0].target.value
                replaced = self._augmented(stmt, line, target, i, fresh)
                if replaced is not None or self._single(target) and self._made(line.value, i, fresh):
                    fresh[target] = i
            if replaced is None:
                out.append(stmt)
            else:
                out += replaced
                changed = True
        if not changed:
            return None
        final = {old: self._final(old) for old in self.renames}
        out = [s.visit(Renamed(final)) for s in out]
        later, read = [], set()  # later[j]: what the lines after line j read
        for stmt in reversed(out):
            later.append(read)
            read = read | reads(stmt)
        later.reverse()
        # an emptied del goes, its comments (# backward) to the next line
        return kept_lines((stmt, without_deleted(stmt, read)) for stmt, read in zip(out, later))

    def _single(self, name: str) -> bool:
        return self.counts.get(name) == 1 and name not in self.ctx.params

    def _made(self, value, i: int, fresh: dict) -> bool:
        if makes(value, i, fresh, self.uses, self.ctx, self.local):
            return True
        # a.dot(b), a.sum(...), np.dot(a, b), np.matmul(a, b) of float64 values: numpy arrays
        # (or numbers), always new ones
        if type(value) is not cst.Call or self.kinds.of(value) != FLOAT:
            return False
        fn = resolve(value.func, self.ctx, self.local)
        if fn is np.dot or fn is np.matmul:
            return len(value.args) == 2 and all(
                a.keyword is None and not a.star and type(a.value) is cst.Name and
                self.kinds[a.value.value] == FLOAT for a in value.args)
        return type(value.func) is cst.Attribute and \
            value.func.attr.value in _MADE_BY_METHODS and \
            type(value.func.value) is cst.Name and self.kinds[value.func.value.value] == FLOAT

    def _augmented(self, stmt, line: cst.Assign, target: str, i: int, fresh: dict):
        """``stmt`` (``target = v op w``) as statements that write into ``v``, else None."""
        value = line.value
        if not (type(value) is cst.BinaryOperation and type(value.operator) in _AUGMENTED
                and self._single(target)):
            return None
        op = type(value.operator)
        if op is cst.Multiply and INPLACE in self.ctx.options and BOOL in (
                self.kinds.of(value.left), self.kinds.of(value.right)):
            return None  # a mask product of large arrays: rt.imul's one pass (inplace stage)
        sides = [(value.left, value.right)]
        if op in _COMMUTING:
            sides.append((value.right, value.left))
        for operand, other in sides:
            if type(operand) is cst.Name and self._last_read(operand.value, i, fresh) and \
                    self._fits(operand.value, value):
                return self._written(stmt, target, operand.value, op, other, i)
        return None

    def _last_read(self, name: str, i: int, fresh: dict) -> bool:
        uses = self.uses
        return name in fresh and name not in uses[i].kept and \
            kept_nowhere(name, fresh[name], i, uses) and \
            all(uses[k].only_shape(name) for k in range(i + 1, len(uses)))

    def _fits(self, name: str, value) -> bool:
        """``name``'s array has the dtype and the shape of ``value``: one shape class, exact
        (the pattern's axes, or "the shape of name's value"), not a number's (whose
        operators make a new one anyway)."""
        shape = self.shapes[name]
        return shape is not UNKNOWN and shape.exact and shape != SCALAR and \
            shape == self.shapes.of(value) and \
            self.kinds[name] == FLOAT and self.kinds.of(value) == FLOAT

    def _written(self, stmt, target: str, name: str, op, other, i: int) -> list:
        augmented = cst.AugAssign(cst.Name(target), _AUGMENTED[op](), bare(other))
        held = self._final(name)  # the name the array has by now (renamed before)
        if i < self.forward and _TEMPORARY.match(held):
            self.renames[held] = target  # a temporary becomes what it is made into
            return [stmt.with_changes(body=[augmented])]
        alias = cst.Assign([cst.AssignTarget(cst.Name(target))], cst.Name(name))
        if op in (cst.Multiply, cst.Divide) and number(other) == 1:
            return [stmt.with_changes(body=[alias])]  # float64 times 1.0: the same values
        return [stmt.with_changes(body=[alias]),
                cst.SimpleStatementLine([augmented])]

    def _final(self, name: str) -> str:
        seen = set()
        while name in self.renames and name not in seen:
            seen.add(name)
            name = self.renames[name]
        return name


class _InLoop(_Augmenting):
    """A forward loop body's statements with augmented assignments: ``facts`` are ``(the
    gradient's binding counts, the forward pass's shape facts, its dtype facts)``, ``everywhere``
    how often the gradient spells each name. Its temporaries take the names of what they
    become."""

    def __init__(self, statements: list, ctx: Context, facts, everywhere):
        self.ctx = ctx
        self.statements_in = statements
        self.counts, self.shapes, self.kinds = facts
        self.local = set(self.counts)
        self.uses = [Uses.of(s, ctx, self.local) for s in statements]
        self.forward = len(statements)
        self.renames = {}
        self.inside = spelled(cst.IndentedBlock(statements))
        self.everywhere = everywhere

    def _last_read(self, name: str, i: int, fresh: dict) -> bool:
        return self.inside.get(name) == self.everywhere.get(name) and \
            not any(name in self.uses[k].names for k in range(fresh.get(name, 0))) and \
            super()._last_read(name, i, fresh)


def _backward_start(statements: list) -> int:
    """The index of the first statement of the backward pass (``# backward``, fuse.py);
    0 where there is none (no statement is then known to be forward)."""
    for i, stmt in enumerate(statements):
        if any(line.comment is not None and line.comment.value == "# backward"
               for line in stmt.leading_lines):
            return i
    return 0


def without_deleted(stmt, read: set):
    """``stmt`` without the names in its ``del`` that a later line reads (renamed: their array
    lives on under one name), each named once; None for a ``del`` left empty."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Del):
        return stmt
    target = stmt.body[0].target
    elements = target.elements if type(target) is cst.Tuple else [cst.Element(target)]
    kept, seen = [], set()
    for e in elements:
        name = e.value.value if type(e.value) is cst.Name else None
        if name is None or name not in read and name not in seen:
            kept.append(e.value)
            seen.add(name)
    if len(kept) == len(elements):
        return stmt
    if not kept:
        return None
    names = kept[0] if len(kept) == 1 else cst.Tuple([cst.Element(k) for k in kept], lpar=[], rpar=[])
    return stmt.with_changes(body=[stmt.body[0].with_changes(target=names)])
