"""masks: a ReLU's mask applied to an adjoint that is already zero where the mask is.

``r = relu(b)`` spelled ``b * (b > 0)``, ``np.where(b > 0, b, 0)`` or ``np.maximum(b, 0)``
has the adjoint ``dr`` where its mask holds and 0 elsewhere. Where ``dr`` is a product with
``r`` itself as a factor (``r * r`` or ``r ** 2`` of a squared ReLU or a squared hinge loss:
``dr = 2 * r``), it is already 0 wherever the mask is not (``r`` is), and applying the mask
again is a pass over the array that changes nothing:

    r = b * _t1                        (_t1 = b > 0)
    dr = 2 * r                  →      dr = 2 * r
    db = dr * _t1                      db = dr

Exactly: where the mask does not hold, ``r`` is ``±0`` (or NaN, for ``b`` NaN or -inf in
``b * m``), so ``dr = r * c`` is ``±0`` or NaN, which ``dr * m``, ``np.maximum``'s adjoint
(``dr`` times 0, half of it at a tie, where ``r`` is 0) and ``dr`` itself agree on. (One
difference: where an array has a tie, ``rt.larger_adjoint`` adds ``0.5 * g * ties``
everywhere, NaN at an infinite ``g``; the result here is that ``g``, as the rule gives
without a tie.) For
``np.where``, whose branch not taken gets exactly 0 (not ``0 * inf``), only where the other
factors are finite numbers (literals, a mean's ``1.0 / (v.size or 1)``); a zero's sign may
differ there (``-0.0 == 0.0``).

Only the lines the compiler writes, each bound once: ``r`` by one of those selections of a
name ``b`` (the mask a comparison bound once, the other operand a literal 0), ``dr`` by a
product of which ``r`` is a factor, and the mask's adjoint ``db = dr * m`` /
``rt.larger_adjoint(dr, b > 0, b == 0)`` / ``rt.where_adjoint_x(dr, m)`` at the top of the
pullback. Invariant after this pass: no such adjoint line is left.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, rules

from ..analysis.values import binding_counts, number, resolve, subexpressions
from ..context import Context

__all__ = ["rewrite"]

_MASKS = {rules.where_adjoint_x, rules.larger_adjoint}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullbacks = [s for s in vjp.body.body if type(s) is cst.FunctionDef]
    if len(pullbacks) != 1:
        return module
    counts = binding_counts(vjp)
    once = lambda name: counts.get(name) == 1  # noqa: E731
    local = set(counts) | {p.name.value for p in vjp.params.params}
    forward = {t: v for t, v in map(_assignment, vjp.body.body) if t is not None and once(t)}
    changed = _changed_in_place(vjp)
    selections = {r: s for r, s in ((r, _selection(v, forward, ctx, local))
                                    for r, v in forward.items())
                  if s is not None and not changed & {r, s[1], s[2]}}
    if not selections:
        return module
    pullback = pullbacks[0]
    lines = pullback.body.body
    products = {t: v for t, v in map(_assignment, lines) if t is not None and once(t)}
    body = []
    for stmt in lines:
        target, value = _assignment(stmt)
        found = None if target is None else _needless(value, selections, products, ctx, local)
        if found is not None:
            stmt = stmt.with_changes(body=[stmt.body[0].with_changes(value=cst.Name(found))])
        body.append(stmt)
    pullback = pullback.with_changes(body=pullback.body.with_changes(body=body))
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(body=vjp.body.with_changes(
        body=[pullback if s is pullbacks[0] else s for s in vjp.body.body]))])


def _changed_in_place(vjp) -> set:
    """Names whose array a line may change without rebinding them: the base of a subscript
    or attribute target, an augmented assignment's target, an ``out=`` argument."""
    found = set()
    for node in subexpressions(vjp):
        kind = type(node)
        if kind is cst.AssignTarget or kind is cst.AugAssign:
            target = node.target
            while type(target) in (cst.Subscript, cst.Attribute):
                target = target.value
                if type(target) is cst.Name:
                    found.add(target.value)
            if kind is cst.AugAssign and type(node.target) is cst.Name:
                found.add(node.target.value)
        elif kind is cst.Arg and node.keyword is not None and node.keyword.value == "out":
            found.update(n.value for n in subexpressions(node.value) if type(n) is cst.Name)
    return found


def _assignment(stmt):
    """``(target, value)`` of a line ``name = value``, else ``(None, None)``."""
    if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and \
            isinstance(stmt.body[0].targets[0].target, cst.Name):
        return stmt.body[0].targets[0].target.value, stmt.body[0].value
    return None, None


def _zero(expr) -> bool:
    value = number(expr)
    return value is not None and value == 0 and type(value) in (int, float)


def _comparison(expr, forward: dict) -> bool:
    """Whether ``expr`` is a name bound once to one comparison (a boolean mask)."""
    return type(expr) is cst.Name and type(forward.get(expr.value)) is cst.Comparison and \
        len(forward[expr.value].comparisons) == 1


def _selection(value, forward: dict, ctx: Context, local: set):
    """``(kind, b, m)`` where ``value`` is a ReLU of the name ``b``: ``("mask", b, m)`` for
    ``b * m`` (``m`` a comparison), ``("where", b, m)`` for ``np.where(m, b, 0)`` /
    ``rt.where_positive(m, b, 0)``, ``("maximum", b, None)`` for ``np.maximum(b, 0)``."""
    if type(value) is cst.BinaryOperation and type(value.operator) is cst.Multiply:
        for b, m in ((value.left, value.right), (value.right, value.left)):
            if type(b) is cst.Name and _comparison(m, forward):
                return "mask", b.value, m.value
        return None
    if type(value) is not cst.Call or any(a.keyword is not None or a.star for a in value.args):
        return None
    fn = resolve(value.func, ctx, local)
    args = [a.value for a in value.args]
    if (fn is np.where or fn is helpers.where_positive) and len(args) == 3 and \
            _comparison(args[0], forward) and type(args[1]) is cst.Name and _zero(args[2]):
        return "where", args[1].value, args[0].value
    if fn is np.maximum and len(args) == 2:
        for b, z in ((args[0], args[1]), (args[1], args[0])):
            if type(b) is cst.Name and _zero(z):
                return "maximum", b.value, None
    return None


def _factors(expr) -> list:
    """The operands of a product chain ``a * b * c`` (``expr`` itself if not a product)."""
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.Multiply and \
            not expr.lpar:
        return _factors(expr.left) + _factors(expr.right)
    return [expr]


def _finite(expr) -> bool:
    """A finite number by its spelling: a literal, or a mean's ``1.0 / (v.size or 1)``."""
    if expr.lpar:
        return _finite(expr.with_changes(lpar=[], rpar=[]))
    value = number(expr)
    if value is not None:
        return type(value) in (int, float) and abs(value) < float("inf")
    if type(expr) is cst.BinaryOperation and type(expr.operator) in (cst.Multiply, cst.Divide):
        if type(expr.operator) is cst.Divide:
            return _finite(expr.left) and _nonzero_count(expr.right)
        return _finite(expr.left) and _finite(expr.right)
    return False


def _nonzero_count(expr) -> bool:
    if expr.lpar:
        expr = expr.with_changes(lpar=[], rpar=[])
    return type(expr) is cst.BooleanOperation and type(expr.operator) is cst.Or and \
        type(expr.left) is cst.Attribute and expr.left.attr.value == "size" and \
        number(expr.right) == 1


def _needless(value, selections: dict, products: dict, ctx: Context, local: set):
    """The adjoint name ``dr`` where ``value`` is the mask of a selection ``r`` applied to
    ``dr``, a product with ``r`` as a factor; else None."""
    if type(value) is cst.BinaryOperation and type(value.operator) is cst.Multiply:
        operands = ((value.left, value.right), (value.right, value.left))
        for g, m in operands:
            if type(g) is cst.Name and type(m) is cst.Name:
                r = _selected(g.value, products, selections)
                if r is not None and selections[r][0] == "mask" and selections[r][2] == m.value:
                    return g.value
        return None
    if type(value) is not cst.Call or any(a.keyword is not None or a.star for a in value.args):
        return None
    fn = resolve(value.func, ctx, local)
    if fn not in _MASKS or not value.args or type(value.args[0].value) is not cst.Name:
        return None
    g = value.args[0].value.value
    r = _selected(g, products, selections)
    if r is None:
        return None
    kind, b, m = selections[r]
    args = [a.value for a in value.args[1:]]
    if fn is rules.where_adjoint_x and kind == "where" and len(args) == 1 and \
            type(args[0]) is cst.Name and args[0].value == m and \
            all(_finite(f) for f in _factors(products[g]) if not _is(f, r)):
        return g
    if fn is rules.larger_adjoint and kind == "maximum" and len(args) == 2 and \
            _compares(args[0], b, (cst.GreaterThan,), (cst.LessThan,)) and \
            _compares(args[1], b, (cst.Equal,), (cst.Equal,)):
        return g
    return None


def _is(expr, name: str) -> bool:
    return type(expr) is cst.Name and expr.value == name


def _selected(g: str, products: dict, selections: dict):
    """The selection ``r`` that is a factor of the product ``g`` is bound to, else None."""
    product = products.get(g)
    if product is None:
        return None
    for factor in _factors(product):
        if type(factor) is cst.Name and factor.value in selections and factor is not product:
            return factor.value
    return None


def _compares(expr, b: str, forward_ops, mirrored_ops) -> bool:
    """Whether ``expr`` is ``b <op> 0`` (an op of ``forward_ops``) or ``0 <op> b``."""
    if type(expr) is not cst.Comparison or len(expr.comparisons) != 1:
        return False
    op, right = type(expr.comparisons[0].operator), expr.comparisons[0].comparator
    return _is(expr.left, b) and _zero(right) and op in forward_ops or \
        _zero(expr.left) and _is(right, b) and op in mirrored_ops
