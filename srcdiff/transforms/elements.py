"""elements: an adjoint added at a key is added there in the line itself, ``dx[i] += g``.

``accumulate`` writes ``dx = rt.add_at(dx, g, x, key=rt.at[i])`` for a loop that reads
``x[i]``: ``dx[i] += g``, after checks (``x`` a container, ``g`` complex where ``dx`` is
real, a key of integer arrays, a Dask ``dx``) that cost ~3 µs a call; a loop over a
vector's elements (``for i in range(len(x)): total += (x[i] - mu) ** 2``) makes the call at
every step, and ran ~2.4x a hand-written loop. Only in the variant compiled for one pattern
of shapes and float64 arguments (options ``dims`` and ``FLOAT64``), where every check is
decided before the code runs:

- ``x`` is a float64 array of known axes (so is ``dx``: ``accumulate`` proved that it
  holds the array ``rt.zeros_like(x)`` or an addition made, and nothing else refers to it);
- ``g`` is a float64 value, a number or a boolean (never complex: nothing in the variant
  makes one from its float64 arguments but what ``dtype_facts`` calls unknown);
- the key is integers (literals, targets of ``for ... in range(...)``, ``+ - * // %`` of
  those) and slices of them.

Then the call is that very line:

    dx = rt.add_at(dx, d_t1, x, key=rt.at[i])     →     dx[i] += d_t1
"""

from __future__ import annotations

import libcst as cst

from srcdiff.runtime import rules

from ..analysis.dtypes import BOOL, FLOAT, FLOAT64, INT, NUMBER, dtype_facts
from ..analysis.values import calls_named, map_statements
from ..context import Context
from .shapes import axes_of, integer_expression, range_integers, shape_facts

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if FLOAT64 not in ctx.options or not ctx.dims:
        return module
    vjp = module.body[-1]  # after the module-level links, if any
    if not calls_named(vjp, "add_at"):
        return module
    writer = _Writer(vjp, ctx)
    body = map_statements(vjp.body.body, writer.line)
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


class _Writer:
    def __init__(self, vjp: cst.FunctionDef, ctx: Context):
        self.shapes, self.kinds = shape_facts(vjp, ctx), dtype_facts(vjp, ctx)
        self.integers = range_integers(vjp, ctx)

    def line(self, line: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
        small = line.body[0] if len(line.body) == 1 else None
        if type(small) is not cst.Assign or len(small.targets) != 1 or \
                type(small.targets[0].target) is not cst.Name:
            return line
        written = self.written(small.targets[0].target.value, small.value)
        return line if written is None else line.with_changes(body=[written])

    def written(self, target: str, value) -> cst.AugAssign | None:
        """``target[key] += g`` for ``target = rt.add_at(target, g, x, key=rt.at[key])``."""
        if not (type(value) is cst.Call and self.shapes.resolve(value.func) is rules.add_at and
                len(value.args) == 4 and all(a.keyword is None for a in value.args[:3]) and
                not any(a.star for a in value.args) and value.args[3].keyword is not None and
                value.args[3].keyword.value == "key"):
            return None
        acc, g, x, key = (a.value for a in value.args)
        if not (type(acc) is cst.Name and acc.value == target and type(x) is cst.Name):
            return None
        if self.kinds.of(x) != FLOAT or not axes_of(self.shapes.of(x)) or \
                self.kinds.of(g) not in (FLOAT, INT, BOOL, NUMBER):
            return None
        if not (type(key) is cst.Subscript and type(key.value) is cst.Attribute and
                key.value.attr.value == "at" and all(self.plain(e.slice) for e in key.slice)):
            return None
        return cst.AugAssign(cst.Subscript(cst.Name(target), key.slice), cst.AddAssign(), g)

    def plain(self, item) -> bool:
        """An integer, or a slice of integers: what selects without integer arrays."""
        if type(item) is cst.Index:
            return self.integer(item.value)
        return type(item) is cst.Slice and all(
            part is None or self.integer(part) for part in (item.lower, item.upper, item.step))

    def integer(self, expr) -> bool:
        return integer_expression(expr, self.integers)
