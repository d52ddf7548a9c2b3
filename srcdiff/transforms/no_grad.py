"""no_grad: ``with srcdiff.no_grad():`` blocks become plain statements whose values are constants.

Invariant after this pass: no ``with`` statement remains. Every assignment that
was inside a ``no_grad`` block has its value wrapped in ``rt.stop_gradient(...)``,
so activity analysis sees a constant, and a comment marks the block. The
statements run in the forward pass exactly as written; ``print`` and other
expression statements stay as they are.

    with srcdiff.no_grad():              # no_grad (line 5): constants for differentiation
        scale = np.max(np.abs(x))   →    scale = rt.stop_gradient(np.max(np.abs(x)))
"""

from __future__ import annotations

import libcst as cst

from ..context import Context, parse_marker

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    body = _flatten(funcdef.body.body, ctx, inside=False)
    return module.with_changes(body=[funcdef.with_changes(body=funcdef.body.with_changes(body=body))])


def _flatten(statements, ctx: Context, inside: bool) -> list:
    out = []
    for stmt in statements:
        if type(stmt) is cst.With:
            inner = _flatten(stmt.body.body, ctx, inside=True)
            if not inner:
                continue
            where = parse_marker(stmt.leading_lines)
            note = cst.EmptyLine(comment=cst.Comment(
                f"# no_grad (line {where[0] if where else '?'}): constants for differentiation"))
            inner[0] = inner[0].with_changes(leading_lines=[note, *inner[0].leading_lines])
            out.extend(inner)
        elif inside and type(stmt) is cst.SimpleStatementLine:
            out.append(stmt.with_changes(body=[_constant(s, ctx) for s in stmt.body]))
        elif type(stmt) is cst.If:
            out.append(_flatten_if(stmt, ctx, inside))
        elif type(stmt) in (cst.For, cst.While):
            body = _flatten(stmt.body.body, ctx, inside) or [cst.SimpleStatementLine([cst.Pass()])]
            stmt = stmt.with_changes(body=stmt.body.with_changes(body=body))
            if stmt.orelse is not None:  # for … else
                block = stmt.orelse.body
                body = _flatten(block.body, ctx, inside) or [cst.SimpleStatementLine([cst.Pass()])]
                stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(
                    body=block.with_changes(body=body)))
            out.append(stmt)
        else:
            out.append(stmt)
    return out


def _constant(small: cst.BaseSmallStatement, ctx: Context) -> cst.BaseSmallStatement:
    stop = cst.Attribute(cst.Name(ctx.rt), cst.Name("stop_gradient"))
    if type(small) in (cst.Assign, cst.AnnAssign) and small.value is not None:
        return small.with_changes(value=cst.Call(stop, [cst.Arg(small.value)]))
    if type(small) is cst.AugAssign:
        op = {cst.AddAssign: cst.Add, cst.SubtractAssign: cst.Subtract,
              cst.MultiplyAssign: cst.Multiply, cst.DivideAssign: cst.Divide,
              cst.PowerAssign: cst.Power}.get(type(small.operator))
        if op is not None:
            value = cst.BinaryOperation(small.target, op(), small.value.with_changes(
                lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
            return cst.Assign([cst.AssignTarget(small.target)],
                              cst.Call(stop, [cst.Arg(value)]))
    return small


def _flatten_if(stmt: cst.If, ctx: Context, inside: bool) -> cst.If:
    stmt = stmt.with_changes(body=stmt.body.with_changes(body=_flatten(stmt.body.body, ctx, inside)))
    if type(stmt.orelse) is cst.Else:
        body = _flatten(stmt.orelse.body.body, ctx, inside) or [cst.SimpleStatementLine([cst.Pass()])]
        stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(
            body=stmt.orelse.body.with_changes(body=body)))
    elif type(stmt.orelse) is cst.If:
        stmt = stmt.with_changes(orelse=_flatten_if(stmt.orelse, ctx, inside))
    return stmt
