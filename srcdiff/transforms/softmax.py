"""softmax: the lines of a softmax along one axis → one ``rt.softmax`` call.

Written out, a softmax is three or five operations, and reverse mode differentiates each:
the division, the sum, the exponential, the shift and the maximum — whose adjoint is
exactly zero in exact arithmetic (a softmax does not change when its input is shifted),
computed as a scatter into each row's maximum all the same. After ``normalize`` this pass
finds, in consecutive statements of one block,

    m = np.max(s, axis=a, keepdims=True)      # or s.max(a, keepdims=True), np.amax
    z = s - m                                 # (these two are optional: then e = np.exp(s))
    e = np.exp(z)
    t = np.sum(e, axis=a, keepdims=True)      # or e.sum(a, keepdims=True)
    p = e / t                                 # or np.divide(e, t)

or ``p = np.exp(s) / np.sum(np.exp(s), axis=a, keepdims=True)`` (two exponentials of one
name), and writes ``p = rt.softmax(s, axis=a)`` (``shifted=False`` without the maximum), whose
adjoint is one product, ``p * (g - np.sum(g * p, axis=a, keepdims=True))``. ``rt.softmax``
does the same operations as the lines, so the value is the same to the bit. ``a`` is an
integer literal with ``keepdims=True`` on both reductions, or no axis and no keepdims at
all (one softmax over the whole array).

Only where nothing else can see the intermediate values: ``m``, ``z``, ``e`` and ``t`` are
each spelled nowhere else in the function (one assignment, one use; ``e`` two uses), and
``s`` is not among them. ``normalize``'s temporaries always qualify; a user's ``e`` that is
read again keeps the lines as they are.

A log-softmax the same way: ``lse = np.log(t)`` after the ``t = np.sum(e, …)`` and
``e = np.exp(z)`` above (and their maximum or not), and later in the block ``w = z - lse``,
where ``z``, ``lse`` and ``w`` are read nowhere else and ``x`` is not bound again between:
the lines become ``w = rt.log_softmax(x, axis=a)`` where they stand (``w = z - lse`` goes),
with one adjoint ``g - np.exp(w) * np.sum(g, axis=a, keepdims=True)`` (a cross-entropy's).

The new statement keeps the first line's marker, its text the quoted lines joined by ``;``,
so the adjoint block quotes both lines: ``# adjoint of: e = np.exp(…); p = e / np.sum(…)``.
"""

from __future__ import annotations

from collections import Counter

import libcst as cst
import numpy as np

from ..analysis.calls import call_on_one_name, resolve
from ..analysis.values import number
from ..context import Context, is_marker, parse_marker
from ..names import occurrences, with_blocks
from .normalize import local_variables

__all__ = ["rewrite", "assigned"]

_SUMS = (np.sum,)
_MAXIMA = (np.max, np.amax)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    finder = _Finder(ctx, local_variables(funcdef), occurrences(funcdef))
    return module.with_changes(body=[funcdef.with_changes(body=finder.block(funcdef.body)),
                                     *module.body[1:]])


class _Finder:
    def __init__(self, ctx: Context, local_names, counts: Counter):
        self.ctx, self.local_names, self.counts = ctx, local_names, counts

    def block(self, block):
        body, where, carried = [], None, None
        for stmt in block.body:
            if carried is not None:  # the lines of a statement taken out: its marker
                stmt = stmt.with_changes(leading_lines=[*carried, *stmt.leading_lines])
                carried = None
            marker = parse_marker(getattr(stmt, "leading_lines", ()))
            where = marker or where
            if type(stmt) in (cst.If, cst.For, cst.While, cst.With):
                stmt = with_blocks(stmt, self.block)
            logs = self.log_window(stmt, body)
            if logs is not None:  # w = z - lse: w is the window's log-softmax, made there
                start, size, call = logs
                window = body[start:start + size]
                body[start:start + size] = [(self.joined(window, call), window[0][1])]
                carried = list(stmt.leading_lines)
                continue
            body.append((stmt, where))
            found = self.window([s for s, _ in body[-5:]])
            if found is not None:
                size, call = found
                window = body[-size:]
                del body[-size:]
                body.append((self.joined(window, call), window[0][1]))
        return block.with_changes(body=[stmt for stmt, _ in body])

    def log_window(self, stmt, before):
        """``(start, size, call)`` where ``stmt`` is ``w = z - lse`` and ``before`` (earlier
        statements of its block) holds ``lse``'s lines: ``lse = np.log(t)``, ``t = np.sum(e,
        axis=a, keepdims=True)``, ``e = np.exp(z)``, after ``z = x - np.max(x, axis=a,
        keepdims=True)`` and its maximum or not; the call is ``rt.log_softmax(x, axis=a)``
        (unshifted: of ``z``), bound to ``w`` where the lines stand."""
        found = assigned(stmt)
        if found is None or not self.once(found[0]):
            return None
        w_name, value = found
        if not (type(value) is cst.BinaryOperation and type(value.operator) is cst.Subtract
                and type(value.left) is cst.Name and type(value.right) is cst.Name):
            return None
        before = [s for s, _ in before]  # (statement, where) pairs: the statements
        z_name, lse_name = value.left.value, value.right.value
        j = next((k for k in range(len(before) - 1, -1, -1)
                  if (assigned(before[k]) or ("",))[0] == lse_name), None)
        if j is None or j < 2 or not self.once(lse_name):
            return None
        (l_name, log), (t_name, total), (e_name, exp) = (
            assigned(before[k]) or ("", None) for k in (j, j - 1, j - 2))
        if not (type(log) is cst.Call and len(log.args) == 1 and log.args[0].keyword is None
                and _is_name(log.args[0].value, t_name) and self.resolve(log.func) is np.log):
            return None
        summed = self.reduction(total, _SUMS)
        if summed is None or summed[0] != e_name or self.exponent(exp) != z_name or \
                not self.once(t_name) or not self.once(e_name):
            return None
        axis, start, x_name, shifted = summed[1], j - 2, z_name, False
        found = self.shift(before[j - 4:j - 2], z_name, axis, reads=2) if j >= 4 else None
        if found is not None:
            start, (x_name, m_name), shifted = j - 4, found, True
        names = [w_name, lse_name, t_name, e_name] + ([z_name, m_name] if shifted else [])
        if x_name in names or len(set(names)) != len(names):
            return None
        bound_after = {(assigned(s) or ("",))[0] for s in before[j + 1:]}
        if x_name in bound_after or not all(type(s) is cst.SimpleStatementLine for s in before[j + 1:]):
            return None  # x (or a name of the lines) bound again before w: not the same value
        call = self.call(x_name, axis, shifted)
        call = call.with_changes(func=call.func.with_changes(attr=cst.Name("log_softmax")))
        return start, j + 1 - start, (w_name, call)

    def window(self, stmts):
        """``(how many of the last statements, the call)`` where ``stmts`` end in a softmax."""
        if len(stmts) < 3:
            return None
        p, t, e = (assigned(s) for s in stmts[-1:-4:-1])
        if p is None or t is None or e is None:
            return None
        (p_name, divide), (t_name, total), (e_name, exp) = p, t, e
        operands = self.quotient(divide)
        if operands is None or not _is_name(operands[1], t_name):
            return None
        numerator = operands[0].value
        summed = self.reduction(total, _SUMS)
        z_name = self.exponent(exp)
        if summed is None or summed[0] != e_name or not self.once(t_name) or z_name is None:
            return None
        axis = summed[1]
        if numerator != e_name:  # np.exp(x) / np.sum(np.exp(x)): two exponentials
            numerator = assigned(stmts[-4]) if len(stmts) >= 4 else None
            if numerator is None or numerator[0] != operands[0].value or \
                    self.exponent(numerator[1]) != z_name or not self.once(e_name) or \
                    not self.once(numerator[0]):
                return None
            names = [p_name, t_name, e_name, numerator[0]]
            if z_name in names[1:] or len(set(names)) != len(names):
                return None
            return 4, self.call(z_name, axis, shifted=False)
        if self.counts[e_name] != 3 or e_name in self.ctx.params:
            return None
        size, x_name, shifted = 3, z_name, False
        found = self.shift(stmts[-5:-3], z_name, axis, reads=1) if len(stmts) == 5 else None
        if found is not None:
            size, (x_name, m_name), shifted = 5, found, True
        names = [p_name, t_name, e_name] + ([z_name, m_name] if shifted else [])
        if x_name in names[1:] or len(set(names)) != len(names):
            return None
        return size, self.call(x_name, axis, shifted)

    def shift(self, stmts, z_name: str, axis, reads: int):
        """``(x, m)`` where ``stmts`` are ``m = np.max(x, axis=axis, keepdims=True)`` and ``z =
        x - m``, ``m`` read only there and ``z`` only ``reads`` times; else None."""
        m, z = (assigned(stmt) for stmt in stmts)
        if m is None or z is None or z[0] != z_name or self.counts[z_name] != 1 + reads or \
                z_name in self.ctx.params or not self.once(m[0]):
            return None
        shift = z[1]
        if not (type(shift) is cst.BinaryOperation and type(shift.operator) is cst.Subtract
                and type(shift.left) is cst.Name and _is_name(shift.right, m[0])):
            return None
        maximum = self.reduction(m[1], _MAXIMA)
        return (shift.left.value, m[0]) if maximum == (shift.left.value, axis) else None

    def quotient(self, value):
        """``(a, b)``, two names, of ``a / b`` or ``np.divide(a, b)``, else None."""
        if type(value) is cst.BinaryOperation and type(value.operator) is cst.Divide:
            operands = (value.left, value.right)
        elif type(value) is cst.Call and len(value.args) == 2 and \
                all(a.keyword is None and not a.star for a in value.args) and \
                self.resolve(value.func) in (np.divide, np.true_divide):
            operands = (value.args[0].value, value.args[1].value)
        else:
            return None
        return operands if all(type(o) is cst.Name for o in operands) else None

    def exponent(self, value):
        """The name ``z`` of ``np.exp(z)``, else None."""
        found = call_on_one_name(value, self.ctx, self.local_names, (np.exp,), axis_needed=False)
        return found[0] if found is not None and found[1] is None else None

    def call(self, x_name: str, axis, shifted: bool) -> cst.Call:
        """``rt.softmax(x, axis=…)``, with ``shifted=False`` where there is no maximum."""
        rt = cst.Name(self.ctx.rt)
        args = [cst.Arg(cst.Name(x_name)),
                cst.Arg(_literal(axis), keyword=cst.Name("axis"), equal=_EQUAL)]
        if not shifted:
            args.append(cst.Arg(cst.Name("False"), keyword=cst.Name("shifted"), equal=_EQUAL))
        for i, arg in enumerate(args[:-1]):
            args[i] = arg.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return cst.Call(cst.Attribute(rt, cst.Name("softmax")), args)

    def once(self, name: str) -> bool:
        """``name`` spelled twice in the function (assigned, read), and not a parameter."""
        return self.counts[name] == 2 and name not in self.ctx.params

    def resolve(self, func):
        return resolve(func, self.ctx, self.local_names)

    def reduction(self, value, kinds):
        """``(operand, axis)`` of a sum/max (``kinds``) over one literal axis with keepdims, or
        over all axes without (axis None); None for anything else."""
        found = call_on_one_name(value, self.ctx, self.local_names, kinds, axis_needed=False)
        if found is None or not _literal_keepdims(value):
            return None
        operand, axis, keepdims = found
        if axis is not None and not (type(axis) is cst.Name and axis.value == "None"):
            axis = number(axis)
            if type(axis) is not int:
                return None
            if not keepdims:
                return None  # e / np.sum(e, axis=-1) broadcasts another way: not a softmax
        else:
            axis = None
            if keepdims:
                return None  # a (1, 1) total: a number's softmax would become an array
        return operand, axis

    def joined(self, window, call) -> cst.SimpleStatementLine:
        """The statement ``p = rt.softmax(…)`` in place of ``window`` (its statements and
        where each stands): the first one's comments, and a marker quoting every line."""
        first, last = window[0][0], window[-1][0]
        if isinstance(call, tuple):  # (the name it is bound to, the call): a log-softmax
            target, call = call
            last = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(target))], call)])
        wheres = []
        for _, where in window:
            if where is not None and where not in wheres:
                wheres.append(where)
        lines = [line for line in first.leading_lines if not is_marker(line)]
        if parse_marker(first.leading_lines) is not None or len(wheres) > 1:
            text = "; ".join(text for _, text in wheres)
            lines.append(cst.EmptyLine(comment=cst.Comment(f"# line {wheres[0][0]}: {text}")))
        assign = last.body[0].with_changes(value=call)
        return last.with_changes(body=[assign], leading_lines=lines)


_EQUAL = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))


def assigned(stmt):
    """``(name, value)`` of ``name = value``, else None."""
    if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and \
            isinstance(stmt.body[0].targets[0].target, cst.Name):
        return stmt.body[0].targets[0].target.value, stmt.body[0].value
    return None


def _is_name(node, name: str) -> bool:
    return type(node) is cst.Name and node.value == name


def _literal_keepdims(call: cst.Call) -> bool:
    """Whether ``keepdims=`` is absent or written ``True``/``False`` (given by position, it
    comes after ``dtype`` and ``out``, which ``call_on_one_name`` does not take)."""
    keep = next((a.value for a in call.args
                 if a.keyword is not None and a.keyword.value == "keepdims"), None)
    return keep is None or type(keep) is cst.Name and keep.value in ("True", "False")


def _literal(axis) -> cst.BaseExpression:
    if axis is None:
        return cst.Name("None")
    return cst.Integer(str(axis)) if axis >= 0 else cst.UnaryOperation(cst.Minus(), cst.Integer(str(-axis)))
