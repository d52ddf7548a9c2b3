"""check's warnings: things that differentiate correctly but are slow or surprising.

Each is read off what the compiler already decided, never guessed again:

- ``row-loop``: a loop over the rows of an array that the ``batch`` pass did not turn into
  whole-array work (it moves only ``A @ row`` products out of a loop), so the derivative
  runs one Python step per row, forward and backward;
- ``large-tape``: a loop's tape (``tapes.py``) keeps, every iteration, a whole version of an
  array the loop writes into, or a value computed elementwise from one: memory grows with
  iterations times the array's size;
- ``constant-stop``: ``stop_gradient`` of a value that depends on no ``wrt`` parameter
  (the activity analysis): it changes nothing, which may mean ``wrt`` is not what was meant;
- ``zero-gradient``: a ``wrt`` parameter whose gradient is identically zero, and the
  statement that breaks the dependence (``lines.py``).
"""

from __future__ import annotations

import re

import libcst as cst

from ..transforms.batch import rows_walked
from ..transforms.shapes import ELEMENTWISE
from ..analysis.values import resolve
from ..transforms.normalize import local_variables
from . import lines as lines_of
from .findings import Finding
from .tapes import simple_statements, spelled, tape_loops

__all__ = ["notices"]


def notices(fn, ctx, module: cst.Module, refused: bool = False) -> list:
    """The warnings for ``fn``, whose derivative (the vjp form) is ``module``; ``refused``:
    ``ctx.source`` is a variant with refused statements made harmless, whose gradients
    may be zero for that reason alone (no ``zero-gradient`` warning then)."""
    source = ctx.source

    def warning(kind: str, line: int, message: str) -> Finding:
        text = source.line_text(line - source.first_line + 1) if line else ""
        return Finding("warning", kind, message, fn.__qualname__, source.filename, line,
                       len(text) - len(text.lstrip()), text)

    found = []
    local_names = local_variables(source.funcdef)
    products = _products(module)
    for loop in (t for t in tape_loops(module) if t.kind == "tape"):
        work = _row_work(loop, local_names, products)
        if work:
            rows, array, code = work
            found.append(warning("row-loop", loop.line, (
                f"this loop runs one Python step per row of {array}, forward and backward: "
                f"srcdiff moves only matrix products with a row (A @ {rows}) out of a loop, and "
                f"this one also computes `{code}` from each row alone, without the earlier "
                f"steps. Compute that for every row at once with whole-array operations on "
                f"{array}, before the loop or instead of it.")))
        large = _large(loop, ctx)
        if large:
            array = large[0][1]
            target = getattr(loop.loop, "target", None)
            step = target.value if type(target) is cst.Name and \
                not target.value.startswith("_") else "t"
            kept = ", ".join(f"`{spelled(cst.Name(name), loop.temps, local_names)}`"
                             for name, _ in large)
            found.append(warning("large-tape", loop.line, (
                f"the tape of this loop keeps {kept} every iteration, values the size of the "
                f"whole array `{array}` that the loop writes into: memory grows with the number "
                f"of iterations times the size of {array}. Compute each step from what it needs "
                f"(an element such as {array}[{step} - 1], or a running total) rather than from all "
                f"of {array}.")))
    facts = lines_of.read_lines(fn, ctx.wrt, tuple(ctx.containers), ctx.source,
                                "has_aux" in ctx.options)
    wrt = ", ".join(ctx.wrt)
    for line, text in facts.constant_stops:
        found.append(warning("constant-stop", line, (
            f"`{text}` stops the gradient of a value that does not depend on {wrt} (what is "
            "differentiated), so it changes nothing; remove it, or check that wrt names the "
            "parameters you meant.")))
    for param, (line, why) in () if refused else facts.zero.items():
        found.append(warning("zero-gradient", line, (
            f"the gradient with respect to {param} is identically zero: {why}.")))
    return found


# the batch pass's products for every row (``U_xs = rt.matmul_rows(U, xs)``): each row of
# one, read in the loop, is the product with the row; how to write that product
_PRODUCTS = {"matmul_rows": "{a} @ {row}", "rows_matmul": "{row} @ {b}",
             "dot_rows": "np.dot({a}, {row})", "rows_dot": "np.dot({row}, {b})"}


def _products(module: cst.Module) -> dict:
    """``{U_xs: (xs, "U @ {row}")}`` for each product the batch pass made before a loop."""
    vjp = module.body[-1]
    found = {}
    for stmt in vjp.body.body:
        small = stmt.body[0] if type(stmt) is cst.SimpleStatementLine else None
        call = getattr(small, "value", None)
        if type(small) is cst.Assign and type(call) is cst.Call and \
                type(call.func) is cst.Attribute and call.func.attr.value in _PRODUCTS and \
                len(call.args) == 2 and all(type(a.value) is cst.Name for a in call.args):
            a, b = (arg.value.value for arg in call.args)
            rows = b if call.func.attr.value in ("matmul_rows", "dot_rows") else a
            template = _PRODUCTS[call.func.attr.value].replace("{a}", a).replace("{b}", b)
            found[small.targets[0].target.value] = (rows, template)
    return found


def _row_work(loop, local_names, products: dict) -> tuple[str, str, str] | None:
    """``(row, array, code)`` where ``loop`` walks the rows of ``array`` and a statement of its
    body (``code``, spelled with the user's names) computes with a row, or with a product of
    one that the batch pass made for every row at once, and with nothing that an earlier
    step made: work the loop could do for every row at once."""
    if type(loop.loop) is not cst.For:
        return None
    walked = rows_walked(loop.loop)
    if walked is None:
        return None
    index, array = walked
    if array.startswith("_"):  # a sequence srcdiff made (a comprehension over a tuple display)
        return None
    statements = list(simple_statements(loop.loop.body.body))
    assigns = [s.body[0] for s in statements if type(s.body[0]) is cst.Assign
               and isinstance(s.body[0].targets[0].target, cst.Name)]
    rows = {a.targets[0].target.value for a in assigns if _is_row_read(a, index, array)}
    described = next((r for r in sorted(rows) if not r.startswith("_t")), f"{array}[{index}]")
    temps = {}
    for a in assigns:  # _t1 = X_W[_i]: the product of the row, made before the loop
        product = next((template for name, (walked_rows, template) in products.items()
                        if walked_rows == array and _is_row_read(a, index, name)), None)
        if product is not None:
            rows.add(a.targets[0].target.value)
            temps[a.targets[0].target.value] = cst.parse_expression(
                product.replace("{row}", described))
    assigned = {a.targets[0].target.value for a in assigns}
    stepped = {a.targets[0].target.value for a in assigns  # h_2 = h_1: the carried state
               if type(a.value) is cst.Name and a.value.value in assigned}
    for small in assigns:
        target, read = small.targets[0].target.value, _names(small.value)
        if type(small.value) is cst.Name and small.value.value in rows:
            rows.add(target)  # a copy of the row (the state of an inner loop): no work
            continue
        if stepped.intersection(read):
            stepped.add(target)
        elif target not in rows and rows.intersection(read):
            return described, array, spelled(small.value, temps, local_names)
        if target.startswith("_t") and target not in temps:
            temps[target] = small.value
    return None


def _is_row_read(small, index: str, array: str) -> bool:
    value = small.value
    return type(value) is cst.Subscript and type(value.value) is cst.Name \
        and value.value.value == array and len(value.slice) == 1 \
        and type(value.slice[0].slice) is cst.Index \
        and type(value.slice[0].slice.value) is cst.Name and value.slice[0].slice.value.value == index


def _large(loop, ctx) -> list[tuple[str, str]]:
    """``(kept name, array)`` for each name the tape keeps that is a whole version of an
    array the loop writes into (``out_3 = rt.setitem(out_2, …)``), or an elementwise result
    of one."""
    versions: dict[str, str] = {}  # name -> the array it is a version of
    statements = list(simple_statements(loop.loop.body.body))
    for stmt in statements:
        small = stmt.body[0]
        call = getattr(small, "value", None)
        if type(small) is cst.Assign and type(call) is cst.Call and \
                type(call.func) is cst.Attribute and call.func.attr.value == "setitem" and \
                type(call.args[0].value) is cst.Name:
            base = call.args[0].value.value
            array = versions.get(base, re.sub(r"_\d+$", "", base))
            versions[base] = versions[small.targets[0].target.value] = array
    if not versions:
        return []
    for stmt in statements:  # copies and elementwise results of a version, in order
        small = stmt.body[0]
        if type(small) is cst.Assign and type(small.targets[0].target) is cst.Name and \
                _elementwise(small.value, ctx):
            read = [versions[n] for n in _names(small.value) if n in versions]
            if read:
                versions.setdefault(small.targets[0].target.value, read[0])
    return [(name, versions[name]) for name in loop.names if name in versions]


def _elementwise(value, ctx) -> bool:
    if type(value) is cst.Name:
        return True
    if type(value) is cst.BinaryOperation:
        return type(value.operator) is not cst.MatrixMultiply
    if type(value) is cst.UnaryOperation:
        return True
    if type(value) is cst.Call:
        try:
            return resolve(value.func, ctx, frozenset()) in ELEMENTWISE
        except Exception:  # noqa: BLE001 - a callee that does not resolve: not elementwise
            return False
    return False


def _names(node) -> set[str]:
    from ..names import names_in

    return set(names_in(node))
