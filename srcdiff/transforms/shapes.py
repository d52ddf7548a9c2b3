"""shapes: drop ``rt.unbroadcast(g, x)`` where ``g`` provably has the shape of ``x``.

Invariant after this pass: every ``rt.unbroadcast`` left in the pullback sums an adjoint
whose shape may differ from its operand's; the others are gone (each cost a call per
adjoint, and in loops the tape kept values only for their shape). A shape is known only
as a *class*: the shape of a parameter, or ``()``, the shape of a number. Elementwise
operations keep the class of their operands when all of them are of one class or numbers;
everything else (matmul, indexing, a reduction over an axis, a call srcdiff does not
know) has an unknown shape, and its unbroadcast stays, except that a name the forward
pass binds once at its top level is a class of its own: ``b = np.tanh(a)`` after
``a = x @ w`` has the shape of ``a``.

    def f_vjp(x):                              def f_vjp(x):
        a = np.sin(x)                              a = np.sin(x)
        b = a * x                                  b = a * x
        ...                                        ...
            da = rt.unbroadcast(db * x, a)   →         da = db * x
            dx = rt.unbroadcast(db * a, x)             dx = db * a
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, rules
from srcdiff.runtime.backend import numpy_twin

from ..analysis.values import (UNKNOWN, Domain, Facts, infer, number, rewrite_lines_calling,
                               single_assignments)
from ..context import Context

__all__ = ["rewrite", "Shape", "shape_facts", "ELEMENTWISE"]


@dataclass(frozen=True)
class Shape:
    """All values have the shape of ``of`` (a parameter's name, ``()``, or ``("=", name)``
    for the value of a local ``name`` bound once); with ``exact=False`` they only broadcast
    into it (a ``keepdims`` reduction, a guard)."""

    of: object
    exact: bool = True


SCALAR = Shape(())

# elementwise: the result has the broadcast shape of the (array) operands
ELEMENTWISE = {np.negative, np.positive, np.exp, np.expm1, np.log, np.log1p, np.log2, np.log10,
          np.sqrt, np.square, np.absolute, np.sign, np.sin, np.cos, np.tan, np.sinh, np.cosh,
          np.tanh, np.arcsin, np.arccos, np.arctan, np.arcsinh, np.arccosh, np.arctanh,
          np.floor, np.ceil, np.rint, np.reciprocal, builtins.abs}
_NARY = {np.add, np.subtract, np.multiply, np.true_divide, np.power, np.remainder,
         np.maximum, np.minimum, np.heaviside, np.where, np.arctan2, np.hypot}
_MATH = {getattr(math, name) for name in (
    "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "fabs", "sin", "cos", "tan",
    "sinh", "cosh", "tanh", "asin", "acos", "atan", "atan2", "pow", "hypot", "floor", "ceil",
    "erf", "erfc", "gamma", "lgamma")}
_REDUCTIONS = {np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod}
# runtime helpers whose result always has the shape of one argument (its position)
_SHAPE_OF_ARGUMENT = {rules.sum_adjoint: 1, rules.mean_adjoint: 2, helpers.zeros_like: 0,
                      helpers.unbroadcast: 1, rules.getitem_adjoint: 1}
_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.Modulo,
              cst.FloorDivide)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return rewrite_lines_calling(module, ctx, "unbroadcast", shape_facts,
                                 _droppable, _Drop)


def shape_facts(vjp: cst.FunctionDef, ctx: Context) -> Facts:
    """The shape class of every name of the generated function ``vjp``."""
    given = {p: Shape(p) for p in ctx.params if p not in ctx.containers}
    own = {n: Shape(("=", n)) for n in single_assignments(vjp) if n not in ctx.params}
    return infer(vjp, ctx, Domain(_evaluate, _join), given, _seed(vjp), own)


def _seed(vjp: cst.FunctionDef) -> dict:
    """The pullback's parameter has the shape of the output (the API checks cotangents)."""
    final = vjp.body.body[-1]
    if not (isinstance(final, cst.SimpleStatementLine) and isinstance(final.body[0], cst.Return)):
        return {}
    value = final.body[0].value
    if not (isinstance(value, cst.Tuple) and len(value.elements) == 2):
        return {}
    out, pullback = (e.value for e in value.elements)
    if not (isinstance(out, cst.Name) and isinstance(pullback, cst.Name)):
        return {}
    for stmt in vjp.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == pullback.value and \
                len(stmt.params.params) == 1:
            return {stmt.params.params[0].name.value: out}
    return {}


def _join(a, b):
    if a == b or b is UNKNOWN:
        return b
    if a is UNKNOWN:
        return a
    if a.of == b.of:
        return Shape(a.of, exact=False)
    if a == SCALAR or b == SCALAR:  # () broadcasts into every shape
        return Shape((b if a == SCALAR else a).of, exact=False)
    return UNKNOWN


def _broadcast(shapes):
    """The shape of an elementwise result of operands of ``shapes``."""
    result = SCALAR
    for s in shapes:
        if s is UNKNOWN:
            return UNKNOWN
        if s == SCALAR:
            continue
        if result == SCALAR:
            result = s
        elif s.of != result.of:
            return UNKNOWN
        elif s.exact:
            result = s
    if result.of == ():  # only () broadcasts into ()
        return SCALAR
    return result


def _evaluate(expr: cst.BaseExpression, facts: Facts):
    if number(expr) is not None:
        return SCALAR
    kind = type(expr)  # (type tests: these kinds have no subclasses; isinstance is slow)
    if kind is cst.Name:
        return facts[expr.value]
    if kind is cst.UnaryOperation:
        if type(expr.operator) in (cst.Minus, cst.Plus, cst.BitInvert):
            return facts.of(expr.expression)
        return UNKNOWN
    if kind is cst.BinaryOperation:
        if type(expr.operator) in _OPERATORS:
            return _broadcast([facts.of(expr.left), facts.of(expr.right)])
        return UNKNOWN  # @ and the bitwise operators
    if kind is cst.IfExp:
        a, b = facts.of(expr.body), facts.of(expr.orelse)
        return a if a == b else UNKNOWN
    if kind is cst.Call:
        return _call(expr, facts)
    return UNKNOWN


_FULL_METHODS = ("sum", "mean", "max", "min", "prod")  # a.sum(): one number


def _call(call: cst.Call, facts: Facts):
    if not call.args and isinstance(call.func, cst.Attribute) and \
            call.func.attr.value in _FULL_METHODS and facts.resolve(call.func) is None:
        return SCALAR  # a method of a local array, reducing all of it
    fn = facts.resolve(call.func)
    if fn is None:
        return UNKNOWN
    fn = numpy_twin(fn) or fn  # cupy.tanh keeps shapes as np.tanh does
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if len(positional) + len(keywords) != len(call.args):
        return UNKNOWN  # *args or **kwargs
    if _known(fn, ELEMENTWISE) and len(positional) == 1 and not keywords:
        return facts.of(positional[0])
    if _known(fn, _NARY) and len(positional) >= 2 and not keywords:
        return _broadcast([facts.of(a) for a in positional])
    if _known(fn, _MATH):
        return SCALAR  # Python numbers
    if _known(fn, _REDUCTIONS) and len(positional) == 1 and set(keywords) <= {"axis", "keepdims"}:
        keepdims = keywords.get("keepdims")
        axis = keywords.get("axis")
        if keepdims is not None and isinstance(keepdims, cst.Name) and keepdims.value == "True":
            x = facts.of(positional[0])
            return UNKNOWN if x is UNKNOWN else _broadcast([Shape(x.of, exact=False)])
        if (keepdims is None or isinstance(keepdims, cst.Name) and keepdims.value == "False") \
                and (axis is None or isinstance(axis, cst.Name) and axis.value == "None"):
            return SCALAR  # a reduction of everything: one number
        return UNKNOWN
    if fn is helpers.guard and len(positional) == 2 and not keywords:
        s = _broadcast([facts.of(a) for a in positional])  # value, or 1 where g == 0
        return UNKNOWN if s is UNKNOWN else _broadcast([Shape(s.of, exact=False)])
    position = _position(fn)
    if position is not None and len(positional) > position:
        return facts.of(positional[position])
    return UNKNOWN


def _known(fn, table) -> bool:
    try:
        return fn in table
    except TypeError:  # unhashable
        return False


def _position(fn):
    try:
        return _SHAPE_OF_ARGUMENT.get(fn)
    except TypeError:
        return None


def _is_unbroadcast(call: cst.Call, facts: Facts) -> bool:
    return facts.resolve(call.func) is helpers.unbroadcast and len(call.args) == 2 and \
        all(a.keyword is None and a.star == "" for a in call.args)


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BaseNumber, cst.BaseString)


def _droppable(call: cst.Call, facts: Facts) -> bool:
    """Whether ``call`` is ``rt.unbroadcast(g, x)`` with ``g`` and ``x`` of one exact shape."""
    if not _is_unbroadcast(call, facts):
        return False
    g, x = (facts.of(a.value) for a in call.args)
    return g is not UNKNOWN and g.exact and g == x


class _Drop(cst.CSTTransformer):
    """``rt.unbroadcast(g, x)`` → ``g`` where both have one exact shape class."""

    def __init__(self, facts: Facts):
        self.facts = facts
        self.wrapped: set[int] = set()  # ids of replacements given parentheses here

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if not _droppable(original, self.facts):
            return updated
        value = updated.args[0].value
        if isinstance(value, _ATOMS) or value.lpar:
            return value
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        self.wrapped.add(id(value))  # kept where it is an operand; dropped below otherwise
        return value

    def _bare(self, node):
        if id(node) in self.wrapped:
            return node.with_changes(lpar=[], rpar=[])
        return node

    def leave_Assign(self, original, updated: cst.Assign):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_Arg(self, original, updated: cst.Arg):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_Element(self, original, updated: cst.Element):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_Return(self, original, updated: cst.Return):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_BinaryOperation(self, original, updated: cst.BinaryOperation):
        left, right = updated.left, updated.right
        level = _precedence(updated)
        if id(left) in self.wrapped and _precedence(left) >= level and level != _POWER:
            left = self._bare(left)  # (a * b) + c → a * b + c; (a - b) - c → a - b - c
        if id(right) in self.wrapped:
            inner = self._bare(right)
            if isinstance(updated.operator, cst.Add) and isinstance(inner, cst.UnaryOperation) \
                    and isinstance(inner.operator, cst.Minus):
                return updated.with_changes(left=left, operator=cst.Subtract(
                    whitespace_before=updated.operator.whitespace_before,
                    whitespace_after=updated.operator.whitespace_after), right=inner.expression)
            if _precedence(right) > level and level != _POWER:
                right = inner  # a + b * c; a - (b - c) keeps its parentheses
        return updated.with_changes(left=left, right=right)


_POWER = 4


def _precedence(node) -> int:
    """Python's binding strength of an expression (higher binds tighter); atoms are 9."""
    if isinstance(node, cst.BinaryOperation):
        op = node.operator
        if isinstance(op, cst.Power):
            return _POWER
        if isinstance(op, (cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo,
                           cst.MatrixMultiply)):
            return 2
        if isinstance(op, (cst.Add, cst.Subtract)):
            return 1
        return 0  # shifts and bitwise operators
    if isinstance(node, cst.UnaryOperation):
        return 3
    if isinstance(node, _ATOMS):
        return 9
    return -1  # comparisons, boolean operators, conditional expressions
