"""ranks: runtime rules written out for the ranks a pattern of argument shapes proves.

Only where the derivative is specialised for a pattern of argument shapes
(``srcdiff/dims.py``). ``rt.matmul_adjoint_x2(g, x1, x2)`` asks the ranks of ``x1`` and
``x2`` on every call and then computes one line; where the shapes pass knows both ranks,
that line is written in place of the call. Likewise the sum of an adjoint array back to a
number, ``rt.unbroadcast(g, b)`` for a ``b`` of shape ``()``, and back to an array ``b``
whose axes are ``g``'s last ones (a bias's: ``g.sum(axis=0)``). Invariant after this pass:
no call of ``rt.matmul_adjoint_x1/_x2`` or ``rt.dot_adjoint_a/_b`` whose operands have known
ranks of one or two axes remains, nor of ``rt.inner_adjoint_a/_b`` of two known vectors, nor of ``rt.matmul_adjoint_x1/_x2`` of two stacks of
matrices with the same known batch axes, nor an ``rt.unbroadcast`` of a known array to a number or
to an array of its last axes, nor ``rt.count`` of an array of known axes (its ``.size``, 1
for an empty one, as ``rt.count`` says).
The expressions are the rules' own for those ranks, so results are the same bits.

    dw = rt.matmul_adjoint_x2(d_t1, X, w)     →     dw = d_t1 @ X           (X: 2 axes, w: 1)
    dk = rt.matmul_adjoint_x2(ds, q, k)       →     dk = q.swapaxes(-1, -2) @ ds
                                                    (q, k: (b, n, d), (b, d, m): one batch)
    db = rt.unbroadcast(d_t2, b)              →     db = d_t2.sum()         (b: a number)
    db1 = rt.unbroadcast(da, b1)              →     db1 = da.sum(axis=0)    (b1: a's last axis)
    c = 1.0 / rt.count(r)                     →     c = 1.0 / (r.size or 1) (r: an array)

It runs after ``batch``, which recognises the rules' calls in loops.
"""

from __future__ import annotations

import libcst as cst

from srcdiff.runtime import helpers, rules

from ..analysis.values import Facts, calls_named, map_statements, subexpressions
from ..context import Context
from .shapes import SCALAR, axes_of, shape_facts

__all__ = ["rewrite", "operand"]

# (rule, rank of the first operand, rank of the second) -> the rule's line for those ranks,
# over the holes G (the adjoint), A (the first operand) and B (the second)
_X1 = {(2, 2): "G @ B.T", (2, 1): "G[:, None] * B", (1, 2): "B @ G", (1, 1): "G * B"}
_X2 = {(2, 2): "A.T @ G", (2, 1): "G @ A", (1, 2): "A[:, None] * G", (1, 1): "G * A"}
_BY_RANKS = {rules.matmul_adjoint_x1: _X1, rules.matmul_adjoint_x2: _X2,
             rules.dot_adjoint_a: _X1, rules.dot_adjoint_b: _X2,  # np.dot is @ for these ranks
             # np.inner of two vectors (its rules' own line; other ranks contract otherwise)
             rules.inner_adjoint_a: {(1, 1): "G * B"}, rules.inner_adjoint_b: {(1, 1): "G * A"}}
# matmul of two stacks of matrices with the same batch axes (attention's q @ k^T): the
# rule's line without its sum over broadcast batch axes, which it has none of
_BATCHED = {rules.matmul_adjoint_x1: "G @ B.swapaxes(-1, -2)",
            rules.matmul_adjoint_x2: "A.swapaxes(-1, -2) @ G"}
_NAMES = ("matmul_adjoint_x1", "matmul_adjoint_x2", "dot_adjoint_a", "dot_adjoint_b",
          "inner_adjoint_a", "inner_adjoint_b", "unbroadcast", "count")
_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    if not ctx.dims or not any(calls_named(vjp, name) for name in _NAMES):
        return module
    facts = shape_facts(vjp, ctx)
    transformer = _Write(facts)
    body = map_statements(vjp.body.body, lambda line: line.visit(transformer) if any(
        _written(c, facts) is not None for c in subexpressions(line) if type(c) is cst.Call)
        else line)
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _written(call: cst.Call, facts: Facts) -> str | None:
    """The template that replaces ``call``, else None."""
    if len(call.args) not in (1, 2, 3) or any(a.keyword is not None or a.star for a in call.args):
        return None
    fn = facts.resolve(call.func)
    if fn is helpers.count and len(call.args) == 1:  # a mean's count of an array: its size
        return "(G.size or 1)" if axes_of(facts.of(call.args[0].value)) else None
    if fn is helpers.unbroadcast and len(call.args) == 2:
        g, x = (facts.of(a.value) for a in call.args)
        if x == SCALAR and axes_of(g):
            return "G.sum()"
        g, x = axes_of(g), axes_of(x)  # a bias's: g has x's axes after leading ones
        if g is None or not x or len(g) <= len(x) or g[len(g) - len(x):] != x:
            return None
        lead = len(g) - len(x)
        return "G.sum(axis=0)" if lead == 1 else f"G.sum(axis={tuple(range(lead))})"
    table = _BY_RANKS.get(fn) if len(call.args) == 3 else None
    if table is None:
        return None
    a, b = (axes_of(facts.of(arg.value)) for arg in call.args[1:])
    if a is None or b is None:
        return None
    if len(a) == len(b) > 2 and a[:-2] == b[:-2] and fn in _BATCHED:
        return _BATCHED[fn]  # a stack of matrices each: the batch axes need no sum
    return table.get((len(a), len(b)))


class _Write(cst.CSTTransformer):
    def __init__(self, facts: Facts):
        self.facts = facts

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        template = _written(original, self.facts)
        if template is None:
            return updated
        holes = dict(zip("GAB", (operand(a.value) for a in updated.args)))
        return cst.parse_expression(template).visit(_Fill(holes))


def operand(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` as an operand of ``@``, ``*``, ``.T`` or ``[...]``: in parentheses unless an atom."""
    if isinstance(expr, _ATOMS) or expr.lpar:
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


class _Fill(cst.CSTTransformer):
    def __init__(self, holes: dict):
        self.holes = holes

    def leave_Name(self, original: cst.Name, updated: cst.Name):
        return self.holes.get(updated.value, updated)
