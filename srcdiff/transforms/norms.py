"""norms: the square of an array's 2-norm → one ``rt.squared_norm`` call.

``np.linalg.norm(r) ** 2`` is a common spelling of the sum of ``r``'s squares (a least
squares loss). Differentiated as written, the square's adjoint multiplies by the norm and
the norm's divides by it again: the forward pass must compute the norm for ``grad`` too,
and the pullback pays a general ``rt.norm_adjoint`` call (~4x the gradient of
``np.sum(r ** 2)``, on 256 points). A careful person writes ``2 * g * r``. After
``normalize`` this pass finds, in consecutive statements of one block,

    n = np.linalg.norm(r)                     # r: one name, no ord, axis or keepdims
    s = n ** 2                                # or n ** 2.0

and writes ``s = rt.squared_norm(r)``: the same operations, so the same value, with the
adjoint ``2.0 * g * r`` and the tangent ``2.0 * np.sum(r * dr)``; where only the gradient
is asked for, nothing reads the value and ``dce`` drops the call. Only where ``n`` is spelled
nowhere else (one assignment, one read) and is not a parameter: ``normalize``'s temporaries
always qualify. Without ``ord`` numpy takes the 2-norm of all of ``r``, flattened, whatever
its number of axes; with one (``ord=2`` of a matrix is its largest singular value) the lines
stay as they are. The new statement keeps the first line's comments (its ``# line N:``).

    _t3 = np.linalg.norm(_t2)          →      _t4 = rt.squared_norm(_t2)
    _t4 = _t3 ** 2
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.values import number
from ..context import Context
from .sigmoid import Lines, operand_of
from .softmax import assigned

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return Lines.rewrite(_Finder, module, ctx)


class _Finder(Lines):
    size = 2

    def window(self, stmts):
        """``rt.squared_norm(r)`` where the two statements square a norm, else None."""
        parts = [assigned(s) for s in stmts]
        if any(p is None for p in parts):
            return None
        (n, norm), (s, power) = parts
        if n == s or not self.once(n):
            return None
        r = operand_of(norm, np.linalg.norm, self.ctx, self.local_names)
        if r is None or r == n:
            return None
        if not (type(power) is cst.BinaryOperation and type(power.operator) is cst.Power and
                type(power.left) is cst.Name and power.left.value == n and
                not power.left.lpar and number(power.right) == 2):
            return None
        rt = cst.Name(self.ctx.rt)
        return cst.Call(cst.Attribute(rt, cst.Name("squared_norm")), [cst.Arg(cst.Name(r))])
