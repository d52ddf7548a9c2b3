"""products: matrix products of one or two axes by the array's own ``dot`` method.

On small arrays a matrix product's cost is numpy's call layers, not the arithmetic: for a
(64, 3) matrix and a 3-vector ``X @ w`` takes ~0.64 µs (``@`` is a generalised ufunc:
type resolution, loop selection), ``np.dot(X, w)`` ~0.50 µs (the ``__array_function__``
dispatch), ``X.dot(w)`` ~0.35 µs. A least-squares gradient of ~3.4 µs makes two of them; an
RNN of 50 steps makes two or three per step. Where the derivative is specialised for a
pattern of argument shapes (numpy arguments, ``srcdiff/dims.py``), a product whose operands
the shapes pass proves numpy arrays of one or two axes is written ``A.dot(B)``: for those
ranks numpy's ``dot`` and ``matmul`` are the same product (1-d operands as rows or columns,
a 1-d · 1-d product a number).

    dh_2 = d_t1 @ W               →     dh_2 = d_t1.dot(W)
    _t1 = np.dot(X, w)            →     _t1 = X.dot(w)

``np.dot(A, B)`` and ``A.dot(B)`` are one C function, so the same bits everywhere. ``A @ B``
and ``A.dot(B)`` agree to the bit on contiguous operands and may differ in the last bits on
strided ones (numpy's matmul has a loop of its own for those where dot copies them for
BLAS): ``@`` is rewritten in a pullback, whose adjoints are rounded as srcdiff chooses, and in
the forward pass only where no value leaves the derivative (``srcdiff.grad``, not
``value_and_grad``, not ``has_aux``), so a value a caller sees is numpy's for ``@``.

Not in the variant for large arrays (the ``inplace`` stage, after this one, writes ``@``'s
results into dead temporaries; the call layers are nothing there). It runs before ``steps``
(whose per-step factors the shapes pass does not follow into the pullback's loop) and
``fuse``, while the pullback is still its own function. Invariant after this pass, in a specialised
variant for small arrays: no ``A @ B`` or ``np.dot(A, B)`` / ``np.matmul(A, B)`` of two
operands of known ranks one or two, whose lengths are proved to fit, is left in a
pullback, nor in a forward pass whose values stay inside. (Operands that cannot fit keep
the user's spelling: the error is numpy's for it, at the user's line.)
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.values import Facts, map_statements, subexpressions
from ..context import Context
from .inplace import INPLACE
from .seed import GRADIENT, WITH_VALUE
from .ranks import operand
from .shapes import axes_of, shape_facts

__all__ = ["rewrite"]

_PRODUCTS = (np.dot, np.matmul)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if not ctx.dims or INPLACE in ctx.options:
        return module
    vjp = module.body[-1]  # after the module-level links, if any
    # the forward pass's values leave the derivative unless only its gradient does
    forward = GRADIENT in ctx.options and WITH_VALUE not in ctx.options
    if not any(_candidate(node) for node in subexpressions(vjp)):
        return module  # (the shape facts cost more than this look at every node)
    facts = shape_facts(vjp, ctx)
    inside, outside = _Write(facts, at_matmul=True), _Write(facts, at_matmul=forward)
    body = []
    for stmt in vjp.body.body:
        if type(stmt) is cst.FunctionDef:  # a pullback
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=map_statements(
                stmt.body.body, lambda line: _rewritten(line, inside))))
        else:
            stmt = map_statements([stmt], lambda line: _rewritten(line, outside))[0]
        body.append(stmt)
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _candidate(node) -> bool:
    """Whether ``node`` is spelled as a product of two operands: ``A @ B`` or ``<...>.dot(A,
    B)`` / ``<...>.matmul(A, B)`` (resolved later)."""
    if type(node) is cst.BinaryOperation:
        return type(node.operator) is cst.MatrixMultiply
    return type(node) is cst.Call and type(node.func) is cst.Attribute and \
        node.func.attr.value in ("dot", "matmul") and len(node.args) == 2


def _rewritten(line, transformer):
    return line.visit(transformer) if any(_candidate(n) for n in subexpressions(line)) else line


def _ranked(expr, facts: Facts) -> bool:
    """Whether ``expr`` is a numpy array of one or two axes (the variant's arguments are)."""
    axes = axes_of(facts.of(expr))
    return axes is not None and len(axes) in (1, 2)


def _fits(product, facts: Facts) -> bool:
    """Whether the shapes pass proves ``product``'s operands fit (its shape known): one that
    cannot keeps the user's spelling, so that the error raised is numpy's for it."""
    return axes_of(facts.of(product)) is not None


def _dot(a: cst.BaseExpression, b: cst.BaseExpression) -> cst.Call:
    return cst.Call(cst.Attribute(operand(a), cst.Name("dot")), [cst.Arg(b)])


class _Write(cst.CSTTransformer):
    def __init__(self, facts: Facts, at_matmul: bool):
        self.facts, self.at_matmul = facts, at_matmul

    def leave_BinaryOperation(self, original: cst.BinaryOperation, updated):
        if self.at_matmul and type(original.operator) is cst.MatrixMultiply and \
                _ranked(original.left, self.facts) and _ranked(original.right, self.facts) and \
                _fits(original, self.facts):
            return _dot(updated.left, updated.right).with_changes(lpar=updated.lpar,
                                                                  rpar=updated.rpar)
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if len(original.args) != 2 or any(a.keyword is not None or a.star for a in original.args):
            return updated
        fn = self.facts.resolve(original.func)
        if not any(fn is p for p in _PRODUCTS) or fn is np.matmul and not self.at_matmul:
            return updated
        a, b = (arg.value for arg in original.args)
        if not (_ranked(a, self.facts) and _ranked(b, self.facts) and _fits(original, self.facts)):
            return updated
        return _dot(updated.args[0].value, updated.args[1].value)
