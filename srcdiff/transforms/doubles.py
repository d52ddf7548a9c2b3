"""doubles: an adjoint that takes the same term twice takes it once, doubled.

``r @ r`` of a vector (``np.dot(r, r)``, ``np.inner(r, r)``, ``np.einsum('i,i->', r, r)``)
reads ``r`` as both operands, so reverse mode adds both operands' adjoints into ``dr``: two
rules that ``reverse`` cannot tell apart from a matrix product's, which ``ranks`` writes,
once the shapes prove a vector, as the same product twice. A careful person writes
``2 * g * r``: one product less and no sum (a least squares loss spelled ``r @ r / n`` ran
~1.3x the ``np.mean(r ** 2)`` spelling's gradient on 256 points). This pass finds, in
consecutive statements of one block of the pullback,

    dr = e                                    # or dr = dr + e
    dr = dr + e                               # the same expression, to the node

where ``e`` is arithmetic of names and numbers that does not read ``dr`` (so it is the same
value both times), and writes ``dr = 2 * e`` (``dr = dr + 2 * e``), as ``reverse`` writes
``h * h``'s. Doubling is exact in floating point, so ``2 * a * b`` is ``a * b + a * b``
to the bit (up to overflow, which both give). The second line must carry no comment.

    d_t2 = 1.0 / _t3                                d_t2 = 1.0 / _t3
    dr = d_t2 * r                     →             dr = 2 * d_t2 * r
    dr = dr + d_t2 * r
"""

from __future__ import annotations

import libcst as cst

from ..analysis.values import number
from ..context import Context
from ..names import names_in, with_blocks
from ..templates import literal
from .reverse import _factor
from .softmax import assigned

__all__ = ["rewrite"]

_COMPOUND = (cst.If, cst.For, cst.While, cst.With)
_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.MatrixMultiply)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    body = [s.with_changes(body=_block(s.body)) if type(s) is cst.FunctionDef else s
            for s in vjp.body.body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


def _block(block):
    out: list = []
    for stmt in block.body:
        if type(stmt) in _COMPOUND:
            stmt = with_blocks(stmt, _block)
        merged = _merged(out[-1], stmt) if out else None
        if merged is not None:
            out[-1] = merged
        else:
            out.append(stmt)
    return block.with_changes(body=out)


def _merged(first, second):
    """``first`` taking its term twice, where ``second`` adds that term again; else None."""
    one, two = assigned(first), assigned(second)
    if one is None or two is None or one[0] != two[0] or \
            any(type(line.comment) is cst.Comment for line in second.leading_lines):
        return None
    name = one[0]
    again = _added(name, two[1])
    if again is None:
        return None
    earlier = _added(name, one[1])
    term = _bare(one[1] if earlier is None else earlier)
    if not term.deep_equals(_bare(again)) or name in names_in(term) or not _arithmetic(term):
        return None
    doubled = _doubled(term)
    value = doubled if earlier is None else one[1].with_changes(right=doubled)
    return first.with_changes(body=[first.body[0].with_changes(value=value)])


def _doubled(term):
    """``2 * term``; a leading number of a product is doubled in place (``(1.0) * x``, a seed
    folded into a rule's product, gives ``2.0 * x``: the float that ``1.0 *`` made stays)."""
    if type(term) is cst.BinaryOperation and type(term.operator) is cst.Multiply and \
            not term.lpar and number(term.left) is not None:
        return term.with_changes(left=literal(2 * number(term.left)))
    return cst.BinaryOperation(cst.Integer("2"), cst.Multiply(), _factor(term))


def _bare(expr):
    """``expr`` without the parentheses around it (``dx + (a - b)``'s term is ``a - b``)."""
    return expr.with_changes(lpar=[], rpar=[]) if getattr(expr, "lpar", None) else expr


def _added(name: str, value):
    """``e`` of ``name + e``, else None."""
    if type(value) is cst.BinaryOperation and type(value.operator) is cst.Add and \
            type(value.left) is cst.Name and value.left.value == name and not value.lpar:
        return value.right
    return None


def _arithmetic(expr) -> bool:
    """Whether ``expr`` is operators over names and numbers only (no call: the same value
    each time it is computed)."""
    kind = type(expr)
    if kind in (cst.Name, cst.Integer, cst.Float):
        return True
    if kind is cst.BinaryOperation:
        return isinstance(expr.operator, _ARITHMETIC) and _arithmetic(expr.left) and \
            _arithmetic(expr.right)
    if kind is cst.UnaryOperation:
        return type(expr.operator) is cst.Minus and _arithmetic(expr.expression)
    return False
