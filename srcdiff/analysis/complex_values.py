"""Which values may be complex, and whether every operation they reach has a sound rule.

srcdiff's rules are real rules: on a complex value the adjoint of ``a * b`` is
``g * conj(b)``, not ``g * b``. Complex values come from the fft family (``np.fft.rfft(x)``)
and the other functions of ``COMPLEX_RESULTS`` (``np.linalg.eigvals``, ``np.roots``), from
complex module-level or closure values and complex dtypes the function names
(``dtype=complex``); arguments are refused by the API. A name may be complex when any
assignment to it reads one (a loop's copies and constants such as
``srcdiff.stop_gradient(Z)`` included), unless the operation returns a real value
(``np.abs``, ``np.real``, ``np.fft.irfft``; tables in ``runtime/fft.py``).

An operation that reads a maybe-complex value and whose result needs an adjoint gets the
complex rule of its primitive (``rt.multiply_complex_adjoint``), keeps a rule that is right
for complex values too (``np.sum``, ``np.fft.fft``), or is refused at its line, as is a
maybe-complex value passed to a function, kept in a container, or returned.

    Z = np.fft.rfft(x)          maybe complex
    P = Z * np.conj(Z)          complex rule of *: dZ = dP * conj(conj(Z)) + ...
    return np.sum(np.real(P))   np.real: a real result, the real rule of np.sum
"""

from __future__ import annotations

import dataclasses

import libcst as cst
import numpy as np

from srcdiff.runtime.fft import (COMPLEX_LINEAR, COMPLEX_RESULTS, COMPLEX_RULES, INTEGER_RESULTS,
                                 REAL_RESULTS)
from srcdiff.runtime.nondiff import NONDIFFERENTIABLE_ATTRIBUTES

from ..context import Context, parse_marker
from ..errors import NotDifferentiableError
from .activity import Activity, outputs
from .calls import Op, reads

__all__ = ["adapt", "maybe_complex"]

_SUPPORTED = ("np.fft.fft/ifft/rfft/irfft/fft2/ifft2/rfft2/irfft2/fftn/ifftn/rfftn/irfftn, "
              "fftshift/ifftshift, np.real/np.imag/np.abs/np.conj/np.angle, + - * / and unary -, "
              "np.sum, np.mean, indexing, reshape and transpose")


def adapt(funcdef: cst.FunctionDef, ctx: Context, local_names, steps: dict,
          activity: Activity) -> dict:
    """``steps`` (statement id -> (target, op, reads)) with the complex rule of each operation
    that may receive a complex value; a located error where there is no sound one."""
    located = _located(funcdef.body.body, None, [])
    tainted = _maybe_complex(located, steps, ctx, local_names)
    if not tainted:
        return steps
    temps = {t: op.spelled for t, op, _ in steps.values() if isinstance(t, str) and
             t.startswith("_t")}  # normalize's temporaries, spelled back in messages
    adapted = dict(steps)
    for stmt, where in located:
        if id(stmt) not in steps:
            continue
        target, op, inputs = steps[id(stmt)]
        complex_in = [n for n in _reads(stmt, local_names) if n in tainted] + \
            _complex_globals(stmt, ctx, local_names)
        if not complex_in:
            continue
        targets = target if isinstance(target, tuple) else (target,)
        if op.kind == "unknown" or not any(activity.is_active(t) for t in targets) and \
                op.kind not in ("function", "dynamic"):
            continue  # no adjoint flows through it, or no rule: reverse refuses it, naming it
        adapted[id(stmt)] = (target, _complex_op(op, complex_in, ctx, where, temps), inputs)
    if any(op.kind == "unknown" and any(map(activity.is_active, inputs))
           for _, op, inputs in steps.values()):
        return adapted  # reverse refuses the call without a rule first, naming it
    for _, atom in outputs(funcdef, ctx):
        for name in reads(atom, local_names):
            if name in tainted:
                where = _last_line(located)
                raise ctx.error(
                    NotDifferentiableError,
                    "srcdiff differentiates functions with a real output, and this one's may "
                    "be a complex number; return its real part, imaginary part or absolute "
                    "value (np.real(...), np.imag(...), np.abs(...) ** 2).",
                    where[0] if where else ctx.source.first_line)
    return adapted


def _complex_op(op: Op, names, ctx, where, temps) -> Op:
    """``op`` with a rule that is right for complex operands, or a located error."""
    if op.kind == "copy":
        return op
    if op.kind == "rule":
        if _in(op.primitive, COMPLEX_RULES):
            return dataclasses.replace(op, rule=COMPLEX_RULES[op.primitive])
        if _in(op.primitive, COMPLEX_LINEAR):
            return op
    raise _refusal(ctx, where, op.spelled, names, temps,
                   f"srcdiff differentiates complex values only through {_SUPPORTED}")


def _refusal(ctx: Context, where, node, names, temps, what: str) -> NotDifferentiableError:
    text = _spell(node, temps)
    values = ", ".join(f"'{_spell(cst.Name(n), temps)}'" if n.isidentifier() else n
                       for n in names)
    return ctx.error(
        NotDifferentiableError,
        f"srcdiff cannot differentiate '{text}': it reads {values}, which may be a complex "
        f"number here, and {what}. Take np.real(...), np.imag(...) or np.abs(...) of the "
        "complex value first.",
        where[0] if where else ctx.source.first_line, token=text.split("(")[0])


def _spell(node, temps) -> str:
    """``node`` as the user wrote it: normalize's temporaries (``_t1``) put back."""

    class Expand(cst.CSTTransformer):
        def leave_Name(self, original, updated):
            if updated.value in temps:
                return temps[updated.value].visit(self)
            return updated

    return cst.Module(body=[]).code_for_node(node.visit(Expand()))


def maybe_complex(funcdef: cst.FunctionDef, ctx: Context, local_names) -> set[str]:
    """The names of a normalized body that may hold a complex value (forward mode asks)."""
    from .activity import assignments

    steps = {id(stmt): (target, op, inputs)
             for stmt, target, op, inputs in assignments(funcdef, ctx, local_names)}
    return _maybe_complex(_located(funcdef.body.body, None, []), steps, ctx, local_names)


def _located(statements, where, found: list) -> list:
    """``(simple statement, (line, text))`` in source order, inside blocks too."""
    for stmt in statements:
        where = parse_marker(stmt.leading_lines) or where
        if type(stmt) is cst.If:
            _located(stmt.body.body, where, found)
            if type(stmt.orelse) is cst.Else:
                _located(stmt.orelse.body.body, where, found)
        elif type(stmt) in (cst.For, cst.While):
            found.append((stmt, where))
            _located(stmt.body.body, where, found)
        else:
            found.append((stmt, where))
    return found


def _last_line(located):
    return located[-1][1] if located else None


def _maybe_complex(located, steps, ctx, local_names) -> set[str]:
    """The names that may hold a complex value: a fixpoint over every assignment."""
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for stmt, _ in located:
            if type(stmt) is cst.For:  # for row in Z: each row may be complex
                if not _is_range(stmt.iter, ctx) and (
                        set(reads(stmt.iter, local_names)) & tainted or
                        _complex_globals(stmt, ctx, local_names)):
                    tainted.update(reads(stmt.target, local_names))
                continue
            if id(stmt) not in steps:
                continue
            target, op, _ = steps[id(stmt)]
            targets = target if isinstance(target, tuple) else (target,)
            if _never_complex(op):
                continue
            if _in(op.primitive, COMPLEX_RESULTS) or \
                    set(_values_read(op, stmt, local_names)) & tainted or \
                    _complex_globals(stmt, ctx, local_names):
                tainted.update(targets)
        if len(tainted) == before:
            return tainted


def _never_complex(op: Op) -> bool:
    """Whether ``op`` gives a real value, or a shape, count, index or truth value."""
    if op.kind == "rule":
        return _in(op.primitive, REAL_RESULTS)
    if type(op.spelled) is cst.Attribute and op.spelled.attr.value in \
            NONDIFFERENTIABLE_ATTRIBUTES - {"dtype"}:  # Z.shape, Z.size (Z.dtype may be complex)
        return True
    return _in(op.primitive, INTEGER_RESULTS)


def _in(primitive, table) -> bool:
    try:
        return primitive in table
    except TypeError:  # an unhashable object: in no table
        return False


def _is_range(node, ctx) -> bool:
    return type(node) is cst.Call and type(node.func) is cst.Name and \
        ctx.lookup(node.func.value) is range


def _values_read(op: Op, stmt, local_names) -> tuple[str, ...]:
    """The local names whose values the result is made from: an index (``x[i]``'s ``i``) is
    not one of them."""
    if op.kind == "rule":
        parts = [*op.operands, *(v for k, v in op.options if k != "key")]
        return tuple(n for e in parts if e is not None for n in reads(e, local_names))
    return _reads(stmt, local_names)


def _reads(stmt, local_names) -> tuple[str, ...]:
    """The local names the right-hand side of an assignment reads (constants' too)."""
    node = stmt.body[0]
    return reads(node.value if type(node) is cst.Assign else stmt, local_names)


def _complex_globals(stmt, ctx, local_names) -> list[str]:
    """The module-level and closure names ``stmt`` reads whose value is complex now (a
    complex array or number, or a complex dtype such as ``np.complex128``), and the complex
    dtypes it spells as strings (``dtype="complex64"``)."""
    node = stmt.iter if type(stmt) is cst.For else stmt.body[0]
    node = node.value if type(node) is cst.Assign else node
    names, strings = _free_names(node, local_names)
    found = [n for n in names if _is_complex(ctx.lookup(n))]
    return found + [s for s in strings if _is_complex_dtype_name(s)]


def _free_names(node, local_names):
    class Visitor(cst.CSTVisitor):
        def __init__(self):
            self.names, self.strings = [], []

        def visit_Attribute(self, node):
            node.value.visit(self)  # x.real: the attribute's name is no variable
            return False

        def visit_Arg(self, node):
            if node.keyword is not None and node.keyword.value == "dtype":
                self.dtype(node.value)
            node.value.visit(self)  # f(axis=0): the keyword is no variable
            return False

        def visit_Call(self, node):  # x.astype("c8"), np.dtype("F")
            name = node.func.attr.value if type(node.func) is cst.Attribute else \
                getattr(node.func, "value", None)
            if name in ("astype", "dtype") and node.args:
                self.dtype(node.args[0].value)

        def dtype(self, value):
            if type(value) is cst.SimpleString:
                self.strings.append(value.value)

        def visit_Name(self, node):
            if node.value not in local_names:
                self.names.append(node.value)

        def visit_SimpleString(self, node):
            if "complex" in node.value:  # np.zeros(3, "complex64")
                self.strings.append(node.value)

    visitor = Visitor()
    node.visit(visitor)
    return visitor.names, visitor.strings


def _is_complex(value) -> bool:
    if isinstance(value, complex) or value is complex:
        return True
    if isinstance(value, type) and issubclass(value, np.complexfloating):
        return True
    if isinstance(value, np.dtype):
        return value.kind == "c"
    dtype = getattr(value, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind == "c"


def _is_complex_dtype_name(literal: str) -> bool:
    """Whether a string literal (with its quotes) names a complex dtype: 'complex64', 'c16'."""
    try:
        return np.dtype(literal[1:-1]).kind == "c"
    except (TypeError, ValueError, SyntaxError):
        return False
