"""inplace: an array the function made, read for the last time, lends its memory to the result.

Only in the variant compiled for large arrays (option ``INPLACE``: the API picks it when an
argument has ``rt.inplace.LARGE`` elements or more). A fresh array of a million float64
costs more in page faults than the arithmetic that fills it; a careful person writes
``g *= mask``. Invariant after this pass: an operand ``v`` of ``+ - * / **`` or of a numpy
ufunc call is written in place (``rt.imul(v, m)``, ``np.tanh(v, out=rt.spare(v))``) only
where

- ``v`` is bound once in the function, at its top level, to a value it made: arithmetic, a
  ufunc call, ``np.where(c, a, b)``, an adjoint rule of ``rt.inplace.FRESH_RESULTS``, or
  ``rt.unbroadcast(w, x)`` / ``w`` of such a value ``w`` read for the last time there
  (numpy operators and ufuncs always return new arrays);
- no line between reads ``v`` in a way that could keep it (a view, a tape, a container, a
  call that may return it): only arithmetic and ufuncs of it, and reads of its shape;
- the line is at the function's top level, and every other read of ``v`` in it and after it
  reads only its shape (``rt.unbroadcast(g, v)``, ``rt.count(v)``, ``v.shape``, ``del v``).

The mask products of np.where's and np.maximum's adjoints and np.where's ReLU
(``rt.where_adjoint_x(g, c)``, ``rt.larger_adjoint(g, m, t)``, ``rt.where_positive(c, x, 0)``)
read their operands the way a ufunc does: where ``g`` (``x``) is such an operand, the call
becomes its ``_into`` form (``rt.where_adjoint_x_into(g, c)``), which writes into it.

The runtime functions check the rest when the line runs (a float numpy array that owns its
memory, a result of its dtype and shape) and otherwise compute a new value as the operator
does.

    b = x - 0.25                        b = x - 0.25
    _t1 = b > 0                         _t1 = b > 0
    r = b * _t1                 →       r = rt.imul(b, _t1)
    dr = 2 * r                          dr = rt.imul(r, 2)
    db = rt.unbroadcast(dr * _t1, b)    db = rt.unbroadcast(rt.imul(dr, _t1), b)
"""

from __future__ import annotations

import inspect
import types

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, inplace, rules

from ..analysis.values import binding_counts, reads, resolve
from ..context import Context

__all__ = ["rewrite", "INPLACE", "Uses", "assignment", "bare", "makes", "kept_nowhere"]

INPLACE = "inplace"  # the option (Context.options) of the variant for large arrays

_OPERATORS = {cst.Add: "iadd", cst.Subtract: "isub", cst.Multiply: "imul", cst.Divide: "itruediv",
              cst.Power: "ipow"}
_COMMUTING = (cst.Add, cst.Multiply)  # v on the right of these is written in place too
_MADE = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.MatrixMultiply)
_SHAPE_ATTRIBUTES = {"shape", "ndim", "size", "dtype"}
_FRESH = {getattr(rules, name) for name in inplace.FRESH_RESULTS}
# calls that read every operand into a new array, and their forms that write it into the
# operand at this position where that gives the same array (rt.<name>_into, runtime/inplace.py):
# the mask products of np.where's and np.maximum's adjoints, np.where's ReLU
# runtime helpers that read these arguments into a new value and never return or keep them:
# rt.guard(value, g) reads g for its zeros, rt.row_dots(a, b) sums a * b by rows, rt.dot_all
# in all
_READ_ONLY = {helpers.guard: (1,), helpers.row_dots: (0, 1), helpers.dot_all: (0, 1)}
_SELECTIONS = {rules.where_adjoint_x: 0, rules.where_adjoint_y: 0, rules.larger_adjoint: 0,
               helpers.where_positive: 1}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if INPLACE not in ctx.options:
        return module
    vjp = module.body[-1]
    if _lazy_free_arrays(vjp, ctx):
        return module
    body = _function(vjp, ctx)
    body = [stmt.with_changes(body=stmt.body.with_changes(body=_function(stmt, ctx)))
            if type(stmt) is cst.FunctionDef else stmt for stmt in body]
    vjp = vjp.with_changes(body=vjp.body.with_changes(body=body))
    return module.with_changes(body=[*module.body[:-1], vjp])


def _function(fn: cst.FunctionDef, ctx: Context) -> list:
    """``fn``'s top-level statements, with last reads of fresh arrays written in place."""
    statements = list(fn.body.body)
    counts = binding_counts(fn)
    local = set(counts)
    uses = [Uses.of(stmt, ctx, local) for stmt in statements]
    closed = set().union(*(u.names for s, u in zip(statements, uses) if type(s) is cst.FunctionDef))
    fresh: dict[str, int] = {}  # name -> index of the statement that made it
    for i, stmt in enumerate(statements):
        line = assignment(stmt)
        if line is not None:
            replaced = _rewritten(line, i, fresh, uses, ctx, local)
            if replaced is not line:
                statements[i] = stmt.with_changes(body=[replaced])
                uses[i] = Uses.of(statements[i], ctx, local)
            target, value = line.targets[0].target, line.value
            if type(target) is cst.Name and counts.get(target.value) == 1 and \
                    target.value not in closed and makes(value, i, fresh, uses, ctx, local):
                fresh[target.value] = i
    return statements


def _lazy_free_arrays(vjp: cst.FunctionDef, ctx: Context) -> bool:
    """Whether the function reads a global or closure array that is not a numpy array (a
    Dask array's graph keeps the numpy operands of its arithmetic, to read them later)."""
    local = set(binding_counts(vjp)) | set(ctx.params)
    for name in reads(vjp) - local:
        value = ctx.lookup(name)
        if hasattr(value, "shape") and not callable(value) and \
                not isinstance(value, (np.ndarray, np.generic, types.ModuleType)):
            return True
    return False


def assignment(stmt) -> cst.Assign | None:
    if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1:
        return stmt.body[0]
    return None


def makes(value, i: int, fresh: dict, uses: list, ctx: Context, local: set) -> bool:
    """Whether ``value`` (statement ``i``) is an array no other name holds."""
    if type(value) is cst.BinaryOperation:
        return isinstance(value.operator, _MADE)
    if type(value) is cst.UnaryOperation:
        return type(value.operator) is cst.Minus
    if type(value) is cst.Call:
        fn = resolve(value.func, ctx, local)
        if isinstance(fn, np.ufunc) and fn.nout == 1:
            return all(a.keyword is None and not a.star for a in value.args)
        if fn in _FRESH or fn in (np.where, helpers.where_positive) and len(value.args) == 3:
            return True  # (np.where of three arguments: a new array)
        if fn is helpers.unbroadcast and len(value.args) == 2 and \
                type(value.args[0].value) is cst.Name:
            return _handed_over(value.args[0].value.value, i, fresh, uses)
        return False
    if type(value) is cst.Name:
        return _handed_over(value.value, i, fresh, uses)
    return False


def _handed_over(name: str, i: int, fresh: dict, uses: list) -> bool:
    """Whether statement ``i`` reads the fresh ``name`` for the last time (``w = v``,
    ``w = rt.unbroadcast(v, x)``): ``w`` then holds ``v``'s memory alone."""
    return name in fresh and kept_nowhere(name, fresh[name], i, uses) and \
        all(uses[k].only_shape(name) for k in range(i + 1, len(uses)))


def kept_nowhere(name: str, made: int, i: int, uses: list) -> bool:
    """No statement between ``made`` and ``i`` reads ``name`` other than as an operand of
    arithmetic or a ufunc, or for its shape."""
    return all(uses[k].only_consumed(name) for k in range(made + 1, i))


def _rewritten(line: cst.Assign, i: int, fresh: dict, uses: list, ctx: Context,
               local: set) -> cst.Assign:
    """``line`` with the operations that read a fresh array for the last time in place."""
    candidates = {n for n in fresh if n in uses[i].names and kept_nowhere(n, fresh[n], i, uses)
                  and all(uses[k].only_shape(n) for k in range(i + 1, len(uses)))}
    if not candidates:
        return line
    return line.with_changes(value=line.value.visit(_InPlace(candidates, uses[i], ctx, local)))


class _InPlace(cst.CSTTransformer):
    """The operation whose operand is a candidate name, and that reads it wherever the line
    does (other than for its shape), written in place."""

    def __init__(self, candidates: set, line_uses, ctx: Context, local: set):
        self.candidates, self.line, self.ctx, self.local = candidates, line_uses, ctx, local
        self.done: set = set()

    def _owner(self, operands) -> str | None:
        for name in (o.value for o in operands if type(o) is cst.Name):
            if name in self.candidates and name not in self.done and \
                    self.line.all_reads_in(name, operands):
                return name
        return None

    def leave_BinaryOperation(self, original, updated):
        op = type(original.operator)
        if op not in _OPERATORS:
            return updated
        name = self._owner([original.left, original.right])
        if name is None:
            return updated
        left_is = type(original.left) is cst.Name and original.left.value == name
        if not left_is and op not in _COMMUTING:
            return updated  # c - v, c / v: v's memory is not the left operand
        other = updated.right if left_is else updated.left  # (its own operations in place)
        self.done.add(name)
        call = cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name(_OPERATORS[op])),
                        [cst.Arg(cst.Name(name)), cst.Arg(bare(other))])
        return call.with_changes(lpar=[], rpar=[])

    def leave_Call(self, original, updated):
        if any(a.keyword is not None or a.star for a in original.args):
            return updated
        fn = resolve(original.func, self.ctx, self.local)
        position = _SELECTIONS.get(fn) if _selection(fn) else 0
        if not (_elementwise_float(fn) and len(original.args) == fn.nin or
                _selection(fn) and len(original.args) == len(inspect.signature(fn).parameters)):
            return updated
        operands = [a.value for a in original.args]
        name = self._owner(operands)
        if name is None or not (isinstance(operands[position], cst.Name) and
                                operands[position].value == name):
            return updated  # the result's memory is this operand's (a ufunc's first)
        self.done.add(name)
        if _selection(fn):  # rt.where_adjoint_x(g, c) → rt.where_adjoint_x_into(g, c)
            return updated.with_changes(func=cst.Attribute(
                cst.Name(self.ctx.rt), cst.Name(fn.__name__ + "_into")))
        spare = cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name("spare")),
                         [cst.Arg(bare(a.value)) for a in updated.args])
        args = [*updated.args[:-1], updated.args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
        return updated.with_changes(args=[*args, cst.Arg(spare, keyword=cst.Name("out"),
                                                         equal=_EQUAL)])


_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                         whitespace_after=cst.SimpleWhitespace(""))


def _selection(fn) -> bool:
    try:
        return fn in _SELECTIONS
    except TypeError:  # unhashable
        return False


def _elementwise_float(fn) -> bool:
    """Whether ``fn`` is an elementwise numpy ufunc that gives floats of its operands' type
    (``np.tanh``, ``np.maximum``): only such a result fits its operand's memory. Not a
    generalised ufunc (``np.matmul``, ``np.vecdot``: another shape), nor one that gives
    truth values (``np.isnan``) or takes an integer (``np.ldexp``)."""
    if not isinstance(fn, np.ufunc) or fn.nout != 1 or fn.signature is not None:
        return False
    return all(f"{c * fn.nin}->{c}" in fn.types for c in "fd")


def bare(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` as a call argument: parentheses it needed as an operand are dropped."""
    if getattr(expr, "lpar", None) and len(expr.lpar) == 1:
        return expr.with_changes(lpar=[], rpar=[])
    return expr


# ----- how a statement reads each name -----


class Uses(cst.CSTVisitor):
    """Each read of a name in one statement, as: an operand of arithmetic, of a comparison or
    of a numpy ufunc call (``consumed``: the result is a new array), a read of its shape only
    (``shape``), or anything else (``kept``: a view, a container, a call that may return it,
    a write into it). A name bound by a plain assignment, or deleted, is not read."""

    def __init__(self, ctx: Context, local: set):
        self.ctx, self.local = ctx, local
        self.stack: list = []
        self.consumed: dict[str, list] = {}  # name -> the Name nodes read as operands
        self.shape: set = set()
        self.kept: set = set()
        self.names: set = set()

    @classmethod
    def of(cls, stmt, ctx: Context, local: set) -> Uses:
        uses = cls(ctx, local)
        stmt.visit(uses)
        return uses

    def on_visit(self, node) -> bool:
        if type(node) is cst.Del or \
                type(node) is cst.AssignTarget and type(node.target) is cst.Name:
            return False
        if type(node) is cst.Name:
            self._read(node)
        self.stack.append(node)
        return True

    def on_leave(self, node) -> None:
        if self.stack and self.stack[-1] is node:
            self.stack.pop()

    def _read(self, node: cst.Name) -> None:
        parent = self.stack[-1] if self.stack else None
        if type(parent) is cst.Attribute and parent.attr is node or \
                type(parent) is cst.Arg and parent.keyword is node or \
                type(parent) in (cst.FunctionDef, cst.Param):
            return  # an attribute's or keyword's name, a def's name or parameter: no variable
        name = node.value
        self.names.add(name)
        if self._operand(parent):
            self.consumed.setdefault(name, []).append(node)
        elif self._shape_read(parent, node):
            self.shape.add(name)
        else:
            self.kept.add(name)

    def _operand(self, parent) -> bool:
        """Whether ``parent`` reads the name as the direct operand of an operation that
        returns a new array: arithmetic, a comparison, a numpy ufunc call."""
        if type(parent) is cst.BinaryOperation:
            return isinstance(parent.operator, _MADE)
        if type(parent) is cst.UnaryOperation:
            return type(parent.operator) is cst.Minus
        if type(parent) in (cst.Comparison, cst.ComparisonTarget):
            return True
        if type(parent) is cst.Arg and parent.keyword is None and not parent.star and \
                len(self.stack) >= 2 and isinstance(self.stack[-2], cst.Call):
            call = self.stack[-2]
            fn = resolve(call.func, self.ctx, self.local)
            if any(fn is f for f in _READ_ONLY):  # arguments read, never kept
                position = next(k for k, arg in enumerate(call.args) if arg is parent)
                return position in _READ_ONLY[fn] and len(call.args) == 2
            return (isinstance(fn, np.ufunc) and fn.nout == 1 or _selection(fn)) and \
                all(a.keyword is None for a in call.args)
        return False

    def _shape_read(self, parent, node) -> bool:
        """``v.shape`` (``ndim``, ``size``, ``dtype``), ``len(v)``, ``rt.count(v)``,
        ``rt.unbroadcast(g, v)``: the value's shape, which writing into it keeps."""
        if type(parent) is cst.Attribute:
            return parent.value is node and parent.attr.value in _SHAPE_ATTRIBUTES
        if not (type(parent) is cst.Arg and parent.keyword is None and len(self.stack) >= 2
                and isinstance(self.stack[-2], cst.Call)):
            return False
        call = self.stack[-2]
        position = next(k for k, a in enumerate(call.args) if a is parent)
        fn = resolve(call.func, self.ctx, self.local)
        return fn is len or fn is helpers.count and position == 0 or \
            fn is helpers.unbroadcast and position == 1

    # ----- questions -----

    def only_shape(self, name: str) -> bool:
        return name not in self.kept and name not in self.consumed

    def only_consumed(self, name: str) -> bool:
        return name not in self.kept

    def all_reads_in(self, name: str, operands) -> bool:
        """Whether every read of ``name`` here other than for its shape is one of ``operands``."""
        if name in self.kept:
            return False
        return all(any(node is o for o in operands) for node in self.consumed.get(name, []))
