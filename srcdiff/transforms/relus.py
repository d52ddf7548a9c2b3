"""relus: a ReLU of large arrays in one pass, without its mask where nothing else reads it.

In the variant for large arrays (option ``INPLACE``) the ``inplace`` stage has written a ReLU
into its operand's memory: ``r = rt.where_positive_into(c, b, 0)`` (``np.where(b > 0, b, 0)``
after ``canonical``) or ``r = rt.imul(b, c)`` (``b * (b > 0)``), ``c = b > 0`` made just for
it. Both values follow from ``b`` alone, in one pass (``runtime/_kernels.c``): the mask is
one more pass and one more array (a page fault per 32 KiB of a million float64, a tenth of
the memory the ReLU writes). Where the mask is ``c = b > 0`` (or ``0 < b``), ``c`` and ``b``
each bound once (so ``c`` still holds ``b > 0`` when the ReLU reads them), the ReLU reads
``b`` alone:

    _t1 = b > 0                                 r = rt.positive_part_into(b, 0.0)
    r = rt.where_positive_into(_t1, b, 0.0)  →
    _t2 = a > 0                                 _t2 = a > 0
    h = rt.imul(a, _t2)                         h = rt.positive_product_into(a)
    ...                                         ...
    da = rt.imul(dh, _t2)                       da = rt.imul(dh, _t2)

The mask's line goes where no other line reads it (the backward pass's ``del`` lists lose it
too); where one does (the adjoint's mask product above), it stays. The runtime functions
check the arrays when the line runs and otherwise compute ``np.where(b > 0, b, 0)`` /
``b * (b > 0)`` as written.

Invariant after this pass: every ``rt.positive_part_into(b, 0)`` / ``rt.positive_product_into(b)``
stands where ``rt.where_positive_into(b > 0, b, 0)`` / ``rt.imul(b, b > 0)`` stood, with ``b``
unchanged since the mask was made.
"""

from __future__ import annotations

import libcst as cst

from srcdiff.runtime import inplace as runtime_inplace

from ..analysis.values import binding_counts, number, reads, resolve
from ..context import Context
from ..names import kept_lines
from .augment import without_deleted
from .inplace import INPLACE, assignment

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if INPLACE not in ctx.options:
        return module
    vjp = module.body[-1]
    body = _Relus(vjp, ctx).statements()
    if body is None:
        return module
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


class _Relus:
    def __init__(self, vjp: cst.FunctionDef, ctx: Context):
        self.ctx, self.statements_in = ctx, list(vjp.body.body)
        params = {p.name.value for p in vjp.params.params}
        self.counts = binding_counts(vjp)
        self.single = lambda name: self.counts.get(name) == 1 and name not in params
        self.local = set(self.counts) | params

    def statements(self) -> list | None:
        masks: dict[str, tuple[int, str]] = {}  # c -> (its line, b) for c = b > 0
        out, rewritten = [], set()
        for i, stmt in enumerate(self.statements_in):
            line = assignment(stmt)
            if line is not None and type(line.targets[0].target) is cst.Name:
                target = line.targets[0].target.value
                compared = _positive_test(line.value)
                if compared is not None and self.single(target) and self.single(compared):
                    masks[target] = (i, compared)
                relu = self._relu(line.value, masks)
                if relu is not None:
                    stmt = stmt.with_changes(body=[line.with_changes(value=relu[0])])
                    rewritten.add(relu[1])
            out.append(stmt)
        if not rewritten:
            return None
        return self._without_masks(out, {c: masks[c][0] for c in rewritten})

    def _relu(self, value, masks: dict):
        """``value`` as the one-pass call, and the mask it no longer reads; else None."""
        if not (type(value) is cst.Call and all(
                a.keyword is None and not a.star for a in value.args)):
            return None
        fn = resolve(value.func, self.ctx, self.local)
        args = [a.value for a in value.args]
        if not all(type(a) is cst.Name for a in args[:2]):
            return None
        if fn is runtime_inplace.where_positive_into and len(args) == 3:
            (mask, x), name, kept = (args[0].value, args[1].value), "positive_part_into", [args[2]]
        elif fn is runtime_inplace.imul and len(args) == 2:
            (x, mask), name, kept = (args[0].value, args[1].value), "positive_product_into", []
        else:
            return None
        if masks.get(mask, (None, None))[1] != x:
            return None
        call = cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name(name)),
                        [cst.Arg(cst.Name(x)), *(cst.Arg(a) for a in kept)])
        return call, mask

    def _without_masks(self, statements: list, made: dict) -> list:
        """``statements`` without the line of each mask in ``made`` that only ``del`` reads."""
        unread = {c for c in made if not any(
            c in reads(s) for k, s in enumerate(statements) if k != made[c] and not _deletes(s))}
        if not unread:
            return statements
        dropped = {made[c] for c in unread}
        return kept_lines((stmt, None if k in dropped else without_deleted(stmt, unread)
                           if _deletes(stmt) else stmt) for k, stmt in enumerate(statements))


def _positive_test(value) -> str | None:
    """``b`` of ``b > 0`` or ``0 < b`` (a literal zero), else None."""
    if not (type(value) is cst.Comparison and len(value.comparisons) == 1):
        return None
    operator, right, left = value.comparisons[0].operator, value.comparisons[0].comparator, value.left
    if type(operator) is cst.GreaterThan and type(left) is cst.Name and number(right) == 0:
        return left.value
    if type(operator) is cst.LessThan and type(right) is cst.Name and number(left) == 0:
        return right.value
    return None


def _deletes(stmt) -> bool:
    return type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
        type(stmt.body[0]) is cst.Del
