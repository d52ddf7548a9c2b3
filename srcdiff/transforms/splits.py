"""splits: ``np.split(x, k, axis=a)`` into ``k`` equal parts without numpy's Python layers.

``np.split`` of a numpy array into a number of sections goes through ``np.array_split``'s
Python code: ~10 µs for an LSTM's four gates, where the four slices take ~1 µs (an LSTM of
ten steps spends ~5% of its gradient there). Where the derivative is specialised for a
pattern of argument shapes (numpy arguments, ``srcdiff/dims.py``), a call with an int
literal of sections is ``rt.split``: for a numpy array whose axis the sections divide, the
same list of views (``x[:, 0:q]``, ``x[:, q:2q]``, ... are what ``np.split`` returns); anything
else goes to ``np.split``, with its errors.

    zi, zf, zo, zg = np.split(_t6, 4, axis=1)   →   zi, zf, zo, zg = rt.split(_t6, 4, axis=1)

It runs last: the passes before read ``np.split`` (its rule, its pieces' shapes). Invariant
after this pass, in that variant: no ``np.split(x, k, ...)`` with an int literal ``k`` is left.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.values import number, resolve
from ..context import Context
from .reductions import respelled

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return respelled(module, ctx, _candidate, _Sections)


def _candidate(call: cst.Call) -> bool:
    """Whether ``call`` is spelled ``<...>.split(x, k, ...)`` with an int literal ``k``."""
    return type(call.func) is cst.Attribute and call.func.attr.value == "split" and \
        len(call.args) >= 2 and call.args[1].keyword is None and \
        type(number(call.args[1].value)) is int


class _Sections(cst.CSTTransformer):
    def __init__(self, ctx: Context, local: set):
        self.ctx, self.local = ctx, local  # bound here: not numpy's, whatever their names

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if not _candidate(original) or any(a.star for a in original.args) or \
                resolve(original.func, self.ctx, self.local) is not np.split:
            return updated
        return updated.with_changes(func=cst.Attribute(cst.Name(self.ctx.rt), cst.Name("split")))
