"""transposes: a pullback's transposed matrix product as the product of the transposes.

The adjoint of ``k.swapaxes(1, 2)`` (or ``W.T``, ``np.transpose(k, (0, 2, 1))``) swaps the
adjoint's last two axes back: ``dk = np.swapaxes(d_t1, 1, 2)``. Where ``d_t1`` is a matrix
product made for that line alone, ``d_t1 = q.swapaxes(-1, -2) @ ds``, the gradient is a
strided view of it, which the call copies before handing it over. ``(A @ B)^T = B^T @ A^T``
gives the gradient as one product, in the layout the caller gets:

    d_t1 = q.swapaxes(-1, -2) @ ds                →     dk = ds.swapaxes(-1, -2) @ q
    dk = np.swapaxes(d_t1, 1, 2)

The same sums up to rounding (BLAS is called with other operands' layouts). Only in a
pullback, where the adjoint is the result and rounding is its own, and only where the
derivative is specialised for a pattern of argument shapes (``srcdiff/dims.py``) that gives
both operands' ranks (two axes or more: matrices or stacks of them, whose last two axes
the transpose swaps). ``d_t1`` must be
bound once, by ``A @ B``, and read only by the transpose, on a line after it in the same
block with nothing between that binds a name the product reads.

A name the forward pass binds once to such a swap of another's (``_t1 = k.swapaxes(1, 2)``,
``_t1 = W.T``), swapped back in a pullback, is that other name: ``d_t2 @ _t1.swapaxes(-1,
-2)`` is ``d_t2 @ k`` (the same memory, one view less, and read as a hand gradient is).

Invariant after this pass: no such pair of lines is left in a pullback of that variant,
nor such a swap of a swap.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from srcdiff.runtime import rules

from ..analysis.values import Facts, binding_counts, number, subexpressions
from ..context import Context
from ..names import with_blocks
from .ranks import operand
from .shapes import axes_of, shape_facts

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullbacks = [s for s in vjp.body.body if type(s) is cst.FunctionDef]
    if not ctx.dims or not any(_candidate(n) for p in pullbacks for n in subexpressions(p)):
        return module  # (the shape facts cost more than this look at every node)
    facts = shape_facts(vjp, ctx)
    counts = binding_counts(vjp)
    uses: dict[str, int] = {}
    for node in subexpressions(vjp):
        if type(node) is cst.Name:
            uses[node.value] = uses.get(node.value, 0) + 1
    once = {n for n, k in counts.items() if k == 1 and uses.get(n) == 2}  # bound, read once
    # forward names bound once to a swap of another's last two axes (k_T = k.swapaxes(1, 2)):
    # swapped back in a pullback, they are that other name (a view of the same memory)
    swaps = {}
    for stmt in vjp.body.body:
        target, value = _assignment(stmt) or (None, None)
        if target is not None and counts.get(target) == 1:
            x = _transposed(value, facts)
            if x is not None and counts.get(x, 0) <= 1:
                swaps[target] = x
    undo = _Undo(swaps, facts)
    body = [_pullback(s.visit(undo) if swaps else s, facts, once) if s in pullbacks else s
            for s in vjp.body.body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


class _Undo(cst.CSTTransformer):
    """``k_T.swapaxes(-1, -2)`` (``W_T.T``) of a name bound to a swap of ``k``'s last two
    axes (``W``'s transpose) is ``k`` itself."""

    def __init__(self, swaps: dict, facts: Facts):
        self.swaps, self.facts = swaps, facts

    def leave_Call(self, original, updated):
        inner = _swapped(original, self.facts, undo_only=True)
        if inner is not original and type(inner) is cst.Name and inner.value in self.swaps:
            return cst.Name(self.swaps[inner.value])
        return updated

    def leave_Attribute(self, original, updated):
        inner = _swapped(original, self.facts, undo_only=True)
        if inner is not original and type(inner) is cst.Name and inner.value in self.swaps:
            return cst.Name(self.swaps[inner.value])
        return updated


def _candidate(node) -> bool:
    """Whether ``node`` may transpose an array: ``.T``, ``swapaxes``, ``transpose``,
    ``transpose_adjoint`` (resolved later)."""
    if type(node) is cst.Attribute:
        return node.attr.value == "T"
    return type(node) is cst.Call and type(node.func) is cst.Attribute and \
        node.func.attr.value in ("swapaxes", "transpose", "transpose_adjoint")


def _pullback(fn: cst.FunctionDef, facts: Facts, once: set) -> cst.FunctionDef:
    return fn.with_changes(body=fn.body.with_changes(body=_block(fn.body.body, facts, once)))


def _block(statements, facts: Facts, once: set) -> list:
    out = list(statements)
    for i, stmt in enumerate(out):
        if type(stmt) in (cst.For, cst.While, cst.If):
            out[i] = _nested(stmt, facts, once)
    made: dict[str, int] = {}  # a product's name -> the index of its line in out
    for i, stmt in enumerate(out):
        assign = _assignment(stmt)
        if assign is None:
            made.clear()  # (a compound statement between: the pair must be in one block)
            continue
        target, value = assign
        x = _transposed(value, facts)
        if x is not None and x in made and out[made[x]] is not None:
            product = _assignment(out[made[x]])[1]
            out[i] = stmt.with_changes(body=[stmt.body[0].with_changes(
                value=_product_transposed(product, facts))])
            out[made[x]] = None
            del made[x]
        written = {target}
        for name, index in list(made.items()):  # a product whose operands change moves no more
            product = _assignment(out[index])[1]
            if written & {n.value for n in subexpressions(product) if type(n) is cst.Name}:
                del made[name]
        if target in once and type(value) is cst.BinaryOperation and \
                type(value.operator) is cst.MatrixMultiply and \
                min(_rank(value.left, facts), _rank(value.right, facts)) >= 2:
            # (two stacks of matrices: a 1-d operand's product transposes otherwise)
            made[target] = i
    return [s for s in out if s is not None]


def _nested(stmt, facts: Facts, once: set):
    return with_blocks(stmt, lambda block: block.with_changes(
        body=_block(block.body, facts, once)))


def _assignment(stmt):
    """``(target, value)`` of a line ``name = value``, else None."""
    if type(stmt) is not cst.SimpleStatementLine or len(stmt.body) != 1:
        return None
    small = stmt.body[0]
    if not (type(small) is cst.Assign and len(small.targets) == 1 and
            type(small.targets[0].target) is cst.Name):
        return None
    return small.targets[0].target.value, small.value


def _rank(expr, facts: Facts) -> int:
    axes = axes_of(facts.of(expr))
    return -1 if axes is None else len(axes)


def _transposed(value, facts: Facts) -> str | None:
    """The name whose last two axes ``value`` swaps (its only change), else None."""
    if type(value) is cst.Attribute and value.attr.value == "T" and \
            type(value.value) is cst.Name and _rank(value.value, facts) == 2:
        return value.value.value
    if type(value) is not cst.Call or any(a.star for a in value.args):
        return None
    fn = facts.resolve(value.func)
    if fn is None and type(value.func) is cst.Attribute:  # a method of a local array
        receiver, method = value.func.value, value.func.attr.value
        args = [receiver, *(a.value for a in value.args)]
        if any(a.keyword is not None for a in value.args):
            return None
        fn = {"swapaxes": np.swapaxes, "transpose": np.transpose}.get(method)
        if method == "transpose" and len(args) > 2:
            args = [receiver, cst.Tuple([cst.Element(a) for a in args[1:]])]
    else:
        args = [a.value for a in value.args if a.keyword is None]
        keywords = {a.keyword.value: a.value for a in value.args if a.keyword is not None}
        if fn is rules.transpose_adjoint and set(keywords) <= {"axes"} and len(args) == 2:
            args = [args[0], keywords.get("axes")]  # the inverse of a swap of two is itself
        elif keywords:
            return None
    if fn is None or not args or type(args[0]) is not cst.Name:
        return None
    rank = _rank(args[0], facts)
    if rank < 2:
        return None
    if fn is np.swapaxes and len(args) == 3:
        pair = {number(args[1]), number(args[2])}
        if None in pair or not all(type(v) is int and -rank <= v < rank for v in pair):
            return None
        return args[0].value if {v % rank for v in pair} == {rank - 2, rank - 1} else None
    if fn in (np.transpose, rules.transpose_adjoint) and len(args) in (1, 2):
        axes = None if len(args) == 1 or args[1] is None else _integers(args[1])
        if len(args) == 2 and args[1] is not None and axes is None:
            return None
        want = (*range(rank - 2), rank - 1, rank - 2)
        if axes is None:  # all axes reversed: the last two swapped only for a matrix
            return args[0].value if rank == 2 else None
        return args[0].value if tuple(a % rank for a in axes) == want and \
            all(-rank <= a < rank for a in axes) else None
    return None


def _integers(expr) -> tuple | None:
    if type(expr) not in (cst.Tuple, cst.List):
        return None
    values = tuple(number(e.value) for e in expr.elements if type(e) is cst.Element)
    if len(values) != len(expr.elements) or any(type(v) is not int for v in values):
        return None
    return values


def _product_transposed(product: cst.BinaryOperation, facts: Facts) -> cst.BinaryOperation:
    """``(A @ B)`` with its last two axes swapped, as ``B^T @ A^T``."""
    return cst.BinaryOperation(_swapped(product.right, facts), cst.MatrixMultiply(),
                               _swapped(product.left, facts))


def _swapped(expr, facts: Facts, undo_only=False) -> cst.BaseExpression:
    """``expr`` with its last two axes swapped: undone where it is such a swap itself (with
    ``undo_only``, ``expr`` as it is otherwise)."""
    if type(expr) is cst.Attribute and expr.attr.value == "T" and not expr.lpar and \
            _rank(expr.value, facts) == 2:
        return expr.value
    if type(expr) is cst.Call and type(expr.func) is cst.Attribute and not expr.lpar and \
            expr.func.attr.value == "swapaxes" and len(expr.args) == 2 and \
            facts.resolve(expr.func) is None and \
            {number(a.value) for a in expr.args} == {-1, -2} and \
            all(a.keyword is None and not a.star for a in expr.args):
        return expr.func.value
    if undo_only:
        return expr
    base = operand(expr)
    if _rank(expr, facts) == 2:
        return cst.Attribute(base, cst.Name("T"))
    return cst.Call(cst.Attribute(base, cst.Name("swapaxes")), [cst.Arg(
        cst.UnaryOperation(cst.Minus(), cst.Integer(n))) for n in ("1", "2")])
