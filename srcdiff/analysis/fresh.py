"""Which gradients a derivative makes as new arrays of their argument's shape.

The call of a gradient-only derivative hands each gradient to the caller only once it knows
the caller owns it (``srcdiff/fast_call.py``): an array with no base, of the argument's dtype
and shape, writeable, none of the arguments. Five checks a gradient, ~0.15 µs on a call of a
few microseconds. Where the generated function provably returns a new array of the
argument's shape, the dtype (float32 arguments run the same function) and the type are all
that is left to check (the type also catches a number where an array was expected, and
another library's array).

A gradient is *fresh* where the function returns it as a name bound once, by an expression
that makes a new array whenever its result is a numpy array: arithmetic (``+ - * / ** @``,
a negation: numpy's operators never return an operand), ``a.dot(b)`` or ``a.sum(...)`` of
a value of known axes (a numpy array, under a shape pattern), or a numpy ufunc called
without keywords. Its shape is the argument's where the shapes pass proves it under the
derivative's pattern (``srcdiff/dims.py``).
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..context import Context
from .values import binding_counts, resolve, walk

__all__ = ["fresh_gradients"]

_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.MatrixMultiply,
               cst.FloorDivide, cst.Modulo)
_METHODS = ("dot", "sum")


def fresh_gradients(module: cst.Module, ctx: Context) -> tuple[bool | str, ...]:
    """Per ``wrt`` parameter, in order: whether the gradient-only function in ``module``
    returns its gradient as a new array of the parameter's shape (see above); all False
    without a shape pattern. ``FLOAT64`` where that array is also proved float64 (the variant
    for float64 arrays, ``analysis/dtypes.py``): nothing is left to check."""
    from .dtypes import FLOAT, FLOAT64, dtype_facts
    from ..transforms.shapes import axes_of, shape_facts

    wrt = tuple(ctx.wrt)
    if not ctx.dims:
        return (False,) * len(wrt)
    fn = module.body[-1]
    last = fn.body.body[-1] if fn.body.body else None
    if not (type(last) is cst.SimpleStatementLine and type(last.body[0]) is cst.Return
            and last.body[0].value is not None):
        return (False,) * len(wrt)
    returned = _gradients(last.body[0].value, len(wrt), ctx)
    if returned is None:
        return (False,) * len(wrt)
    counts = binding_counts(fn)
    bound = {}
    for stmt in walk(fn.body.body):
        if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
                type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and \
                isinstance(stmt.body[0].targets[0].target, cst.Name):
            bound[stmt.body[0].targets[0].target.value] = stmt.body[0].value
    local = set(counts) | {p.name.value for p in fn.params.params}
    facts = kinds = None
    pattern = dict(ctx.dims)
    found = []
    for name, expr in zip(wrt, returned):
        ok = type(expr) is cst.Name and counts.get(expr.value) == 1 and \
            expr.value in bound and type(pattern.get(name)) is tuple
        if ok:
            facts = facts or shape_facts(fn, ctx)
            value = bound[expr.value]
            ok = _makes_new(value, facts, ctx, local) and \
                axes_of(facts.of(expr)) == tuple(pattern[name])
            if ok and FLOAT64 in ctx.options and pattern[name]:  # an array, not a number
                kinds = kinds or dtype_facts(fn, ctx)
                ok = FLOAT64 if kinds[expr.value] == FLOAT else ok
        found.append(ok)
    return tuple(found)


def _gradients(value, n: int, ctx: Context):
    """The returned gradient expressions (one per ``wrt`` parameter), else None."""
    from ..transforms.seed import WITH_VALUE

    if WITH_VALUE in ctx.options:  # return value, gradients
        if not (type(value) is cst.Tuple and len(value.elements) == 2):
            return None
        value = value.elements[1].value
    if n == 1 and type(value) is not cst.Tuple:
        return [value]
    if type(value) is cst.Tuple and len(value.elements) == n:
        return [e.value for e in value.elements]
    return None


def _makes_new(value, facts, ctx: Context, local: set) -> bool:
    from ..transforms.shapes import axes_of

    kind = type(value)
    if kind is cst.BinaryOperation:
        return type(value.operator) in _ARITHMETIC
    if kind is cst.UnaryOperation:
        return type(value.operator) is cst.Minus
    if kind is not cst.Call or any(a.star for a in value.args):
        return False
    func = value.func
    if type(func) is cst.Attribute and func.attr.value in _METHODS and \
            resolve(func, ctx, local) is None:  # a method of a local array
        return bool(axes_of(facts.of(func.value)))
    fn = resolve(func, ctx, local)
    return isinstance(fn, np.ufunc) and all(a.keyword is None for a in value.args)
