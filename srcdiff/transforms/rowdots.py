"""rowdots: a pullback's sums of a product over the last axis, as one batched matmul.

``np.sum(g * p, axis=-1, keepdims=True)`` of two arrays of one shape is a dot product per
row: numpy makes the product array, then sums each short row in a loop of its own
(softmax's adjoint, ``p * (dp - np.sum(dp * p, axis=-1, keepdims=True))``, spends half its
time there on an attention's (8, 32, 32) scores). ``rt.row_dots(g, p)`` takes them as one
batched matmul of the rows, without the product array:

    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
                          →     ds = p * (dp - rt.row_dots(dp, p))

Likewise a whole array's sum of a product, a number's adjoint ``(g * x).sum()`` (or
``np.sum(g * x)``), is ``rt.dot_all(g, x)``: one BLAS dot product, no product array (a GP
kernel's hyperparameters: three of them over an (n, n) matrix):

    dsf2 = (d_t15 * _t14).sum()     →     dsf2 = rt.dot_all(d_t15, _t14)

The same sums up to rounding (BLAS adds in another order). Only in the pullback, where
the adjoint is the result and rounding is its own (the forward pass keeps numpy's values),
and only where the derivative is specialised for a pattern of argument shapes
(``srcdiff/dims.py``) that proves both operands of one shape with two axes or more (one
or more for ``rt.dot_all``); ``rt.row_dots`` checks that they are float numpy arrays,
``rt.dot_all`` that they are C-ordered float64 ones, and otherwise sum as written.

Invariant after this pass: no ``np.sum(a * b, axis=-1, keepdims=True)``, ``(a * b).sum()``
or ``np.sum(a * b)`` of two operands of one known shape is left in a pullback of that
variant.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.values import Facts, map_statements, number, subexpressions
from ..context import Context
from .shapes import axes_of, shape_facts

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullbacks = [s for s in vjp.body.body if type(s) is cst.FunctionDef]
    if not ctx.dims or not any(_candidate(c) for p in pullbacks for c in subexpressions(p)
                               if type(c) is cst.Call):
        return module  # (the shape facts cost more than this look at every call)
    facts = shape_facts(vjp, ctx)
    transformer = _Write(facts, ctx.rt)
    body = [s.with_changes(body=s.body.with_changes(body=map_statements(
        s.body.body, lambda line: line.visit(transformer)))) if s in pullbacks else s
            for s in vjp.body.body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _candidate(call: cst.Call) -> bool:
    """Whether ``call`` is spelled ``<...>.sum(<a * b>, ...)`` or ``(<a * b>).sum()``."""
    func = call.func
    if not (type(func) is cst.Attribute and func.attr.value == "sum"):
        return False
    return _product(call.args[0].value if call.args else func.value) is not None


def _product(expr) -> cst.BinaryOperation | None:
    """``expr`` where it is ``a * b``."""
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.Multiply:
        return expr
    return None


def _whole(call: cst.Call, facts: Facts):
    """``(a, b)`` where ``call`` is ``(a * b).sum()`` or ``np.sum(a * b)`` of two operands of
    one known shape of one axis or more."""
    func = call.func
    if not call.args and type(func) is cst.Attribute and func.attr.value == "sum":
        product = _product(func.value)
    elif len(call.args) == 1 and not call.args[0].keyword and not call.args[0].star and \
            facts.resolve(func) is np.sum:
        product = _product(call.args[0].value)
    else:
        return None
    if product is None:
        return None
    a, b = (axes_of(facts.of(side)) for side in (product.left, product.right))
    return (product.left, product.right) if a and a == b else None


def _operands(call: cst.Call, facts: Facts):
    """``(a, b)`` where ``call`` is ``np.sum(a * b, axis=-1, keepdims=True)`` (or the last
    axis by its number) of two operands of one known shape of two axes or more."""
    if facts.resolve(call.func) is not np.sum or not call.args or call.args[0].keyword or \
            call.args[0].star:
        return None
    product = _product(call.args[0].value)
    if product is None:
        return None
    options = {a.keyword.value: a.value for a in call.args[1:] if a.keyword is not None}
    if len(options) != len(call.args) - 1 or set(options) != {"axis", "keepdims"} or \
            not isinstance(options["keepdims"], cst.Name) or options["keepdims"].value != "True":
        return None
    a, b = (axes_of(facts.of(side)) for side in (product.left, product.right))
    if a is None or a != b or len(a) < 2 or number(options["axis"]) not in (-1, len(a) - 1):
        return None
    return product.left, product.right


class _Write(cst.CSTTransformer):
    def __init__(self, facts: Facts, rt: str):
        self.facts, self.rt = facts, rt

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if _operands(original, self.facts) is not None:
            name, product = "row_dots", updated.args[0].value
        elif _whole(original, self.facts) is not None:
            name = "dot_all"
            product = updated.args[0].value if updated.args else updated.func.value
        else:
            return updated
        return cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name(name)),
                        [cst.Arg(product.left.with_changes(lpar=[], rpar=[])),
                         cst.Arg(product.right.with_changes(lpar=[], rpar=[]))])
