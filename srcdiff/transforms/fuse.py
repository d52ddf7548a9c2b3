"""fuse: a gradient-only function runs its pullback in line, as one function.

After ``seed``, a function compiled for ``srcdiff.grad`` returns its pullback, which takes
no parameter (for ``value_and_grad``, the value and its pullback). Invariant after this
pass: such a function is ``f_grad(<f's parameters>)`` and returns the gradients
(``f_value_and_grad``: ``return _out, (dw, db)``). Where the pullback binds no name the forward pass binds (no
loop over a tape, which rebinds the loop's values), its statements follow the forward
ones in the same function, under a ``# backward`` comment: no closure is made per call.
Otherwise the pullback stays a nested function and is called at the end. Either way the
values the forward pass made and the backward pass does not read are deleted first
(``del b, _t1  # not read by the backward pass``), as returning from the forward function
would, so that their memory serves the backward pass's arrays.

    def f_vjp(x):                              def f_grad(x):
        # forward                                  # forward
        a = np.sin(x)                              a = np.sin(x)
                                         →
        def f_pullback():                          # backward
            dx = np.cos(x)                         dx = np.cos(x)
            return dx                              return dx

        return f_pullback
"""

from __future__ import annotations

import libcst as cst

from ..analysis.values import bound_names, reads, walk
from ..context import Context
from ..names import Namer, names_in

__all__ = ["rewrite", "deleting"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullback = _returned_pullback(vjp)
    if pullback is None:
        return module
    value = _returned_value(vjp)  # value_and_grad: return _out, f_pullback
    forward = [s for s in vjp.body.body[:-1] if s is not pullback]
    outer = _bound(vjp.with_changes(body=vjp.body.with_changes(body=forward)))
    inner = _bound(pullback) - {p.name.value for p in pullback.params.params}
    kind = "value_and_grad" if value is not None else "grad"
    name = Namer(names_in(module) - {vjp.name.value}).fresh(f"{ctx.name}_{kind}")
    free = _freed(forward, pullback, ctx, value)
    if outer & inner:  # the pullback rebinds forward names: it keeps its own scope
        call = cst.Call(cst.Name(pullback.name.value))
        final = vjp.body.body[-1].with_changes(body=[cst.Return(_with_value(value, call))])
        if free:  # the blank line after the pullback's def goes before the del
            free[0] = free[0].with_changes(leading_lines=final.leading_lines)
            final = final.with_changes(leading_lines=[])
        body = [*vjp.body.body[:-1], *free, final]
    else:
        backward = [*free, *pullback.body.body]
        if value is not None:  # return _out, (dw, db)
            backward[-1] = _returning_value(backward[-1], value)
        header = [cst.EmptyLine(indent=False)] if forward else []
        header.append(cst.EmptyLine(comment=cst.Comment("# backward")))
        backward[0] = backward[0].with_changes(leading_lines=[
            *header, *(line for line in backward[0].leading_lines if line.comment is not None)])
        body = [*forward, *backward]
    vjp = vjp.with_changes(name=cst.Name(name), body=vjp.body.with_changes(body=body))
    return module.with_changes(body=[*module.body[:-1], vjp])


def _freed(forward: list, pullback: cst.FunctionDef, ctx: Context, value: str | None) -> list:
    """``del`` of the values the forward pass's top level made and the backward pass does not
    read (as a closure, the vjp form drops them when the forward function returns): their
    memory is free again for the backward's arrays, which matters for large ones (W5's
    10**6 elements: 1.08-1.17 -> 0.96-0.97 of the hand gradient's time)."""
    read = reads(pullback.body)
    names = []
    for stmt in forward:  # the top level only: a name bound in a branch or a loop may be unbound
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
            for target in stmt.body[0].targets:
                names += [n for n in sorted(set(bound_names(target.target))) if n not in names]
    dead = [n for n in names if n not in read and n not in ctx.params and n != value]
    return [deleting(dead, "# not read by the backward pass")] if dead else []


def deleting(names: list[str], comment: str) -> cst.SimpleStatementLine:
    """``del a, b  # comment``."""
    target = cst.Name(names[0]) if len(names) == 1 else cst.Tuple(
        [cst.Element(cst.Name(n)) for n in names], lpar=[], rpar=[])
    return cst.SimpleStatementLine([cst.Del(target)], trailing_whitespace=cst.TrailingWhitespace(
        whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(comment)))


def _returned(vjp: cst.FunctionDef):
    """What ``vjp`` returns: ``f_pullback`` or ``_out, f_pullback`` (as a list of names)."""
    final = vjp.body.body[-1]
    if not (type(final) is cst.SimpleStatementLine and type(final.body[0]) is cst.Return):
        return None
    value = final.body[0].value
    if type(value) is cst.Name:
        return [value.value]
    if type(value) is cst.Tuple and len(value.elements) == 2 and \
            all(type(e.value) is cst.Name for e in value.elements):
        return [e.value.value for e in value.elements]
    return None


def _returned_value(vjp: cst.FunctionDef) -> str | None:
    """The value ``vjp`` returns with its pullback (``value_and_grad``), else None."""
    names = _returned(vjp)
    return names[0] if names and len(names) == 2 else None


def _with_value(value: str | None, gradients: cst.BaseExpression) -> cst.BaseExpression:
    """``gradients``, or ``value, gradients`` (parenthesised where they are a tuple)."""
    if value is None:
        return gradients
    if type(gradients) is cst.Tuple:
        gradients = gradients.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Tuple([cst.Element(cst.Name(value)), cst.Element(gradients)], lpar=[], rpar=[])


def _returning_value(final, value: str):
    """The pullback's ``return dw, db`` as ``return _out, (dw, db)``."""
    ret = final.body[0]
    return final.with_changes(body=[ret.with_changes(value=_with_value(value, ret.value))])


def _returned_pullback(vjp: cst.FunctionDef) -> cst.FunctionDef | None:
    """The nested function ``vjp`` returns (``return f_pullback``, ``return _out,
    f_pullback``) and calls with no parameter, else None."""
    names = _returned(vjp)
    if names is None:
        return None
    name = names[-1]
    for stmt in vjp.body.body:
        if type(stmt) is cst.FunctionDef and stmt.name.value == name and not stmt.params.params:
            return stmt
    return None


def _bound(fn: cst.FunctionDef) -> set[str]:
    """Every name ``fn``'s body binds: assignment and loop targets, nested functions and
    their parameters (a loop over a tape included, unlike the value analyses)."""
    found: set[str] = set()
    for stmt in walk(fn.body.body):
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                targets = [t.target for t in small.targets] if type(small) is cst.Assign else \
                    [small.target] if type(small) in (cst.AugAssign, cst.AnnAssign) else []
                for target in targets:
                    found.update(bound_names(target))
        elif type(stmt) is cst.For:
            found.update(bound_names(stmt.target))
        elif type(stmt) is cst.FunctionDef:
            found.add(stmt.name.value)
            found |= {p.name.value for p in stmt.params.params}
    return found
