"""fuse: a gradient-only function runs its pullback in line, as one function.

After ``seed``, a function compiled for ``srcdiff.grad`` returns its pullback, which takes
no parameter. Invariant after this pass: such a function is ``f_grad(<f's parameters>)``
and returns the gradients. Where the pullback binds no name the forward pass binds (no
loop over a tape, which rebinds the loop's values), its statements follow the forward
ones in the same function, under a ``# backward`` comment: no closure is made per call.
Otherwise the pullback stays a nested function and is called at the end.

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

from ..analysis.values import walk
from ..context import Context
from ..names import Namer, names_in

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    vjp = module.body[-1]  # after the module-level links, if any
    pullback = _returned_pullback(vjp)
    if pullback is None:
        return module
    forward = [s for s in vjp.body.body[:-1] if s is not pullback]
    outer = _bound(vjp.with_changes(body=vjp.body.with_changes(body=forward)))
    inner = _bound(pullback) - {p.name.value for p in pullback.params.params}
    name = Namer(names_in(module) - {vjp.name.value}).fresh(f"{ctx.name}_grad")
    if outer & inner:  # the pullback rebinds forward names: it keeps its own scope
        call = cst.Call(cst.Name(pullback.name.value))
        final = vjp.body.body[-1].with_changes(body=[cst.Return(call)])
        body = [*vjp.body.body[:-1], final]
    else:
        backward = list(pullback.body.body)
        header = [cst.EmptyLine(indent=False)] if forward else []
        header.append(cst.EmptyLine(comment=cst.Comment("# backward")))
        backward[0] = backward[0].with_changes(leading_lines=[
            *header, *(line for line in backward[0].leading_lines if line.comment is not None)])
        body = [*forward, *backward]
    vjp = vjp.with_changes(name=cst.Name(name), body=vjp.body.with_changes(body=body))
    return module.with_changes(body=[*module.body[:-1], vjp])


def _returned_pullback(vjp: cst.FunctionDef) -> cst.FunctionDef | None:
    """The nested function ``vjp`` returns (``return f_pullback``), else None."""
    final = vjp.body.body[-1]
    if not (isinstance(final, cst.SimpleStatementLine) and isinstance(final.body[0], cst.Return)
            and isinstance(final.body[0].value, cst.Name)):
        return None
    name = final.body[0].value.value
    for stmt in vjp.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name and not stmt.params.params:
            return stmt
    return None


def _bound(fn: cst.FunctionDef) -> set[str]:
    """Every name ``fn``'s body binds: assignment and loop targets, nested functions and
    their parameters (a loop over a tape included, unlike the value analyses)."""
    found: set[str] = set()
    for stmt in walk(fn.body.body):
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else \
                    [small.target] if isinstance(small, (cst.AugAssign, cst.AnnAssign)) else []
                for target in targets:
                    found |= _names(target)
        elif isinstance(stmt, cst.For):
            found |= _names(stmt.target)
        elif isinstance(stmt, cst.FunctionDef):
            found.add(stmt.name.value)
            found |= {p.name.value for p in stmt.params.params}
    return found


def _names(target) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return set().union(*(_names(e.value) for e in target.elements))
    if isinstance(target, cst.StarredElement):
        return _names(target.value)
    return set()  # a subscript or an attribute binds no name
