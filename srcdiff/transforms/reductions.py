"""reductions: ``np.sum(v)`` and ``np.mean(v)`` of a whole array without numpy's Python layers.

``np.mean(v)`` of a numpy array runs several Python functions of numpy's around one
``np.add.reduce``: ~2.5 µs, where the sum itself takes ~0.6 µs on a small array; ``np.sum(v)``
~1.7 µs. A small loss's value (``value_and_grad`` of a mean squared error, a running sum in
a loop) pays that on every call. Where the derivative is specialised for a pattern of
argument shapes (numpy arguments, ``srcdiff/dims.py``), such calls of one operand are
``rt.sum_all(v)`` / ``rt.mean_all(v)``: for a numpy array, the same operations as numpy's
(the same ``np.add.reduce``, a mean's division by the count as numpy writes it), so the
same values to the bit; anything else goes to ``np.sum`` / ``np.mean``.

    _out = np.mean(_t4)         →     _out = rt.mean_all(_t4)

It runs last: the passes before read ``np.sum`` and ``np.mean`` (their rules, their spread
seeds). Invariant after this pass, in that variant: no ``np.sum(v)`` or ``np.mean(v)`` of one
operand and no keywords is left.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.values import bound_in, map_statements, resolve, subexpressions
from ..context import Context

__all__ = ["rewrite", "respelled"]

_WHOLE = {np.sum: "sum_all", np.mean: "mean_all"}


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return respelled(module, ctx, _candidate, _Whole)


def respelled(module: cst.Module, ctx: Context, candidate, transformer) -> cst.Module:
    """Under a pattern of shapes, each line holding a call ``candidate`` accepts visited by
    ``transformer(ctx, local names)``; other lines (and every variant without a pattern) as
    they are. (The ``splits`` stage's frame too.)"""
    if not ctx.dims:
        return module
    vjp = module.body[-1]  # after the module-level links, if any
    local = bound_in([vjp]) | {p.name.value for p in vjp.params.params}
    visitor = transformer(ctx, local)
    body = map_statements(vjp.body.body, lambda line: line.visit(visitor) if any(
        candidate(c) for c in subexpressions(line) if type(c) is cst.Call) else line)
    return module if body is vjp.body.body else module.with_changes(
        body=[*module.body[:-1], vjp.with_changes(body=vjp.body.with_changes(body=body))])


def _candidate(call: cst.Call) -> bool:
    """Whether ``call`` is spelled ``<...>.sum(v)`` or ``<...>.mean(v)``: one operand."""
    return type(call.func) is cst.Attribute and call.func.attr.value in ("sum", "mean") and \
        len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star


class _Whole(cst.CSTTransformer):
    def __init__(self, ctx: Context, local: set):
        self.ctx, self.local = ctx, local  # bound here: not numpy's, whatever their names

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if len(updated.args) != 1 or updated.args[0].keyword is not None or updated.args[0].star:
            return updated
        try:
            name = _WHOLE.get(resolve(original.func, self.ctx, self.local))
        except TypeError:  # an unhashable object
            return updated
        if name is None:
            return updated
        return updated.with_changes(func=cst.Attribute(cst.Name(self.ctx.rt), cst.Name(name)))
