"""Which values of a generated function are float64, for a call whose arrays all are.

A derivative compiled for arguments of one shape pattern (``srcdiff/dims.py``) may also be
told that every array argument is float64 and every number argument a Python number or a
numpy float64 (option ``FLOAT64``; the call picks that variant only for such arguments).
Then most values it computes are float64 too, and an operation whose result has an
operand's dtype and shape can write into that operand (``transforms/augment.py``).

The facts (a flow-insensitive fixpoint, :func:`srcdiff.analysis.values.infer`):

- ``FLOAT``: a float64 array, a numpy float64 or a Python float;
- ``INT``: a Python int (a literal, ``len(x)``, ``x.size``, ``x.shape[0]``);
- ``BOOL``: a truth value or an array of them (a comparison);
- ``NUMBER``: a number argument (a Python number or a numpy float64: its kind is not known);
- ``UNKNOWN``: anything else (a list, a tuple, an integer array, another dtype).

Arithmetic, numpy's float ufuncs, products, reductions and views of a ``FLOAT`` value with
values of known kinds are ``FLOAT`` (float64 wins every promotion with them, NEP 50); two
Python ints give a Python int (``/`` a float). Anything with a ``dtype=`` keyword, a global
or closure array (rebindable after compiling), and every call not listed here are
``UNKNOWN``.
"""

from __future__ import annotations

import functools

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, rules, tape

from ..context import Context
from .values import UNKNOWN, Domain, Facts, infer, split_pieces

__all__ = ["FLOAT64", "FLOAT", "INT", "BOOL", "NUMBER", "dtype_facts", "float64_call",
           "float64_kind", "Float64Kinds"]

FLOAT64 = "float64"  # the option (Context.options): every argument's array is float64

FLOAT, INT, BOOL, NUMBER = "float", "int", "bool", "number"
_KNOWN = (FLOAT, INT, BOOL, NUMBER)
_TREE = "tree"  # (_TREE, dims.Tree): a parameter passed as a container of float64 values

_F8 = np.dtype(np.float64)
_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.Modulo,
               cst.FloorDivide)
_INT_RESULTS = (cst.Add, cst.Subtract, cst.Multiply, cst.Modulo, cst.FloorDivide)
# a float64 array in, a float64 value out (first argument; the others any known kind)
_OF_FIRST = {np.sum, np.mean, np.max, np.min, np.amax, np.amin, np.prod, np.transpose,
             np.swapaxes, np.moveaxis, np.reshape, np.squeeze, np.expand_dims, np.ravel,
             np.diag, np.trace, np.cumsum}
_PRODUCTS = {np.dot, np.matmul, np.inner, np.vdot, np.outer, np.kron}
_METHODS = {"sum", "mean", "max", "min", "prod", "transpose", "swapaxes", "reshape", "ravel",
            "squeeze", "copy", "flatten", "cumsum"}
# runtime helpers and rules whose result is float64 where their array arguments are
_RUNTIME = {helpers.unbroadcast: (0,), helpers.zeros_like: (0,), rules.sum_adjoint: (0,),
            rules.mean_adjoint: (0,), rules.matmul_adjoint_x1: (0, 1, 2),
            rules.matmul_adjoint_x2: (0, 1, 2), rules.matmul_adjoint_x1_spread: (0, 1, 2),
            rules.matmul_adjoint_x2_spread: (0, 1, 2), helpers.guard: (0, 1),
            helpers.row_dots: (0, 1), helpers.dot_all: (0, 1), helpers.softmax: (0,), helpers.sigmoid: (0,),
            helpers.squared_norm: (0,),
            helpers.where_positive: (1,),  # where_positive(c, x, 0): x's dtype (a literal zero)
            helpers.blank_like: (0,), helpers.matmul_rows: (0, 1), helpers.rows_matmul: (0, 1),
            helpers.dot_rows: (0, 1), helpers.rows_dot: (0, 1), helpers.sum_all: (0,),
            helpers.mean_all: (0,)}
_SHAPE = "shape"  # x.shape: a tuple of Python ints (an internal kind: its items are INT)


def float64_call(args) -> bool:
    """Whether a call's arguments allow the ``FLOAT64`` variant: every numpy array float64,
    every number a Python number or a numpy float64 (other values, such as None or a
    string, are not numbers)."""
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            if a.dtype is not _F8:
                return False
        elif kind is dict or kind is list or kind is tuple:  # a pattern's tree: its items
            if not float64_call(a.values() if kind is dict else a):
                return False
        elif not float64_kind(kind):
            return False
    return True


def float64_kind(kind: type) -> bool:
    """Whether a value of type ``kind``, not a numpy array, allows the ``FLOAT64`` variant:
    not a numpy scalar of another type than float64, not complex."""
    return not (issubclass(kind, np.generic) and kind is not np.float64) and kind is not complex


class Float64Kinds(dict):
    """``float64_kind`` by type, each computed once (the written-out call's lookup path)."""

    def __missing__(self, kind):
        self[kind] = found = float64_kind(kind)
        return found


def dtype_facts(vjp: cst.FunctionDef, ctx: Context) -> Facts:
    """The kind of every name of ``vjp`` (see above); all ``UNKNOWN`` without ``FLOAT64``."""
    given = {}
    if FLOAT64 in ctx.options:
        from ..transforms.shapes import item_trees

        given = {p: FLOAT if axes else NUMBER for p, axes in ctx.dims if type(axes) is tuple}
        given.update((p, (_TREE, tree)) for p, tree in item_trees(ctx).items())
    # (the pieces of ``a, b = np.split(x, 2)``: ``np.split(x, 2)[1]``, x's kind)
    return infer(vjp, ctx, Domain(_evaluate, _join), given, unpacked=split_pieces(vjp, ctx))


def _join(a, b):
    return a if a == b else UNKNOWN


def _arithmetic(a, b, operator):
    if a not in _KNOWN or b not in _KNOWN:
        return UNKNOWN
    if a == FLOAT or b == FLOAT:
        return FLOAT  # float64 wins every promotion with these, a Python float's too
    if a == INT and b == INT:
        if type(operator) is cst.Divide:
            return FLOAT
        return INT if isinstance(operator, _INT_RESULTS) else UNKNOWN
    return UNKNOWN


def _evaluate(expr: cst.BaseExpression, facts: Facts):
    kind = type(expr)
    if kind is cst.Name:
        if expr.value in facts.names:
            return facts.names[expr.value]
        return _of_object(facts.resolve(expr))
    if kind is cst.Float:
        return FLOAT
    if kind is cst.Integer:
        return INT
    if kind is cst.UnaryOperation:
        if type(expr.operator) in (cst.Minus, cst.Plus):
            inner = _evaluate(expr.expression, facts)
            return inner if inner in (FLOAT, INT) else UNKNOWN
        return UNKNOWN
    if kind is cst.BinaryOperation:
        left, right = _evaluate(expr.left, facts), _evaluate(expr.right, facts)
        if type(expr.operator) is cst.MatrixMultiply:
            return FLOAT if left == right == FLOAT else UNKNOWN
        if isinstance(expr.operator, _ARITHMETIC):
            return _arithmetic(left, right, expr.operator)
        return UNKNOWN
    if kind is cst.Comparison:
        return BOOL
    if kind is cst.BooleanOperation:
        return _join(_evaluate(expr.left, facts), _evaluate(expr.right, facts))
    if kind is cst.IfExp:
        return _join(_evaluate(expr.body, facts), _evaluate(expr.orelse, facts))
    if kind is cst.Attribute:
        if expr.attr.value in ("size", "ndim"):
            return INT
        if expr.attr.value == "shape":
            return _SHAPE
        if expr.attr.value in ("T", "mT", "real"):
            return FLOAT if _evaluate(expr.value, facts) == FLOAT else UNKNOWN
        return _of_object(facts.resolve(expr))
    if kind is cst.Subscript:
        value = expr.value
        if type(value) is cst.Name:
            base = facts.names.get(value.value)
            if type(base) is tuple and base[0] == _TREE:  # an item of a float64 call's tree
                return _item_kind(base[1], expr)
        if type(value) is cst.Call and facts.resolve(value.func) is np.split and value.args and \
                value.args[0].keyword is None and not value.args[0].star and \
                len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Index and \
                type(expr.slice[0].slice.value) is cst.Integer:
            return FLOAT if _evaluate(value.args[0].value, facts) == FLOAT else UNKNOWN  # a piece
        base = _evaluate(value, facts)
        if base == _SHAPE:
            return INT if len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Index \
                else UNKNOWN  # x.shape[0] (x.shape[1:] is a tuple)
        return FLOAT if base == FLOAT else UNKNOWN
    if kind is cst.Call:
        return _call(expr, facts)
    return UNKNOWN


def _item_kind(tree, expr: cst.Subscript):
    """The kind of ``p[k]`` of a parameter ``p`` of the pattern ``tree``: a float64 array, a
    number (of a Python or float64 kind: ``float64_call`` checked the items), a tree."""
    from ..transforms.shapes import item_shape

    shape = item_shape(tree, expr)
    if shape is UNKNOWN:
        return UNKNOWN
    if type(shape.of) is tuple and shape.of and shape.of[0] == "tree":
        return (_TREE, shape.of[1])
    return NUMBER if shape.of == () else FLOAT


def _of_object(value):
    """The kind of a global or closure number (``np.pi``). A global array is UNKNOWN: the
    derivative is compiled once, and a module may rebind it to another dtype later (an
    expression of it alone, ``W * 2.0``, would then be float32 where a float64 was proved)."""
    kind = type(value)
    if kind is float:
        return FLOAT
    if kind is bool:
        return BOOL
    if kind is int:
        return INT
    return UNKNOWN


def _call(call: cst.Call, facts: Facts):
    if any(a.star for a in call.args) or \
            any(a.keyword is not None and a.keyword.value in ("dtype", "out") for a in call.args):
        return UNKNOWN
    positional = [a.value for a in call.args if a.keyword is None]
    func = call.func
    if type(func) is cst.Attribute and func.attr.value in _METHODS | {"dot"} and \
            facts.resolve(func) is None:  # a method of a local value: x.sum(), x.dot(w)
        operands = [func.value, *positional] if func.attr.value == "dot" else [func.value]
        return FLOAT if all(_evaluate(o, facts) == FLOAT for o in operands) else UNKNOWN
    fn = facts.resolve(func)
    if fn is None:
        return UNKNOWN
    if fn is len:
        return INT
    if fn is float:
        return FLOAT if len(positional) == 1 and _evaluate(positional[0], facts) in _KNOWN \
            else UNKNOWN
    if isinstance(fn, np.ufunc):
        if any(a.keyword is not None for a in call.args) or len(positional) != fn.nin:
            return UNKNOWN
        kinds = [_evaluate(a, facts) for a in positional]
        return FLOAT if _float_ufunc(fn, tuple(kinds)) else UNKNOWN  # (np.sqrt of an int too)
    if not _hashable(fn):
        return UNKNOWN
    if fn in _OF_FIRST:
        return FLOAT if positional and _evaluate(positional[0], facts) == FLOAT else UNKNOWN
    if fn in _PRODUCTS:
        return FLOAT if len(positional) == 2 and \
            all(_evaluate(a, facts) == FLOAT for a in positional) else UNKNOWN
    if fn is np.where and len(positional) == 3:
        kinds = [_evaluate(a, facts) for a in positional[1:]]
        return FLOAT if FLOAT in kinds and all(k in (FLOAT, INT, NUMBER) for k in kinds) \
            else UNKNOWN
    if fn is tape.each_step and len(positional) == 3 and type(positional[0]) is cst.Lambda:
        # the steps stage's factors of taped values, its lambda's parameters named after
        # the values it takes (so their facts are theirs): its body's kind, step by step
        return FLOAT if _evaluate(positional[0].body, facts) == FLOAT else UNKNOWN
    if fn in _RUNTIME:
        places = _RUNTIME[fn]
        return FLOAT if len(positional) > max(places) and \
            all(_evaluate(positional[i], facts) == FLOAT for i in places) else UNKNOWN
    return UNKNOWN


def _hashable(fn) -> bool:
    try:
        hash(fn)
    except TypeError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _float_ufunc(fn: np.ufunc, kinds: tuple) -> bool:
    """Whether numpy's loop for ``fn`` over operands of these kinds gives float64:
    ``np.tanh``, ``np.maximum``, ``np.add`` of a float64 array do, ``np.sqrt`` of an int does;
    ``np.greater`` (truth values), ``np.add`` of two ints do not."""
    if fn.nout != 1 or fn.signature is not None or not all(k in _KNOWN for k in kinds):
        return False
    samples = {FLOAT: np.ones(2), INT: 2, BOOL: np.ones(2, dtype=bool), NUMBER: 2.0}
    if NUMBER in kinds:  # a Python int, a Python float or a numpy float64: each must do
        options = [2, 2.0, np.float64(2.0), True]
    else:
        options = [None]
    try:
        with np.errstate(all="ignore"):
            for option in options:
                operands = [option if k == NUMBER else samples[k] for k in kinds]
                if np.result_type(fn(*operands)) != _F8:
                    return False
    except (TypeError, ValueError):
        return False
    return True

