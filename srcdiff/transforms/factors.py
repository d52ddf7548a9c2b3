"""factors: a Cholesky factor's solve and log-determinant → one call each, differentiated in ``a``.

A Gaussian-process likelihood, spelled as textbooks spell it, factors ``K`` once and uses
the factor twice:

    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))      # K^-1 y
    ... np.sum(np.log(np.diag(L)))                             # log det K / 2

Differentiated line by line, the adjoint flows through both solves into ``L`` and then
through the factorisation's own rule: two matrix triangular solves and a product of
``n x n`` matrices. A careful person differentiates in ``K``: ``-K^-1 g alpha^T`` and
``K^-1 / 2``, one solve and one inverse from the factor already made. After ``rename``
(one assignment per name) this pass finds, at the function's top level,

- ``x = np.linalg.solve(T, Z)`` with ``T = L.T`` (``np.transpose(L)``, ``np.swapaxes(L,
  -1, -2)``, ``L.swapaxes(-1, -2)``) and ``Z = np.linalg.solve(L, b)``, and writes
  ``x = rt.cholesky_solve(K, b, factor=L)``;
- ``x = scipy.linalg.cho_solve((L, low), b)`` of ``L, low = scipy.linalg.cho_factor(K,
  lower=True)``, and writes ``x = rt.cholesky_solve(K, b, factor=L_factor, clean=False)``
  (scipy's factor holds ``K``'s entries above its diagonal, which the calls do not read);
- ``s = np.sum(Q)`` (``Q.sum()``) with ``Q = np.log(D)`` and ``D = np.diag(L)``, and writes
  ``s = rt.cholesky_log_diagonal(K, factor=L)``;

where ``L = np.linalg.cholesky(K)`` (the lower factor: no ``upper=True``), ``K`` a name
bound at most once, and ``T``, ``Z``, ``Q``, ``D`` each bound once and read only by the
line that follows them (their lines go; their markers move to the next line). ``L`` stays,
and any other use of it is differentiated as before; the calls read it as a constant,
``L_factor = rt.stop_gradient(L)`` (their adjoint is ``K``'s). The runtime functions compute the
same values (the log-determinant the same operations, the solve by two triangular solves:
equal to rounding); their adjoints are the derivative of what the lines compute with
respect to ``K`` (through the lower triangle numpy's Cholesky reads), on a stack of
matrices the lines' own rules one after another. Reverse mode only: forward mode and second
order read the lines as written.

In ``grad`` (no value returned, so rounding-level differences stay inside), two more:

- a factor that only those calls read is LAPACK's, ``L = rt.cholesky_factor(K)`` (numpy's
  factor to rounding, ~2x faster; numpy's call and error where K is not positive definite);
- ``sign, logdet = np.linalg.slogdet(K)`` and ``np.linalg.solve(K, b)`` of one matrix share
  one factor: ``K_spd = rt.spd_factor(K)`` (None unless K is exactly symmetric and positive
  definite), ``K_factor = rt.stop_gradient(K_spd)``, then ``rt.slogdet_spd(K,
  factor=K_factor)`` and ``rt.solve_spd(K, b, factor=K_factor)``: numpy's calls and rules
  where there is no factor, else the factor's log-determinant, solves and ``potri``.
"""

from __future__ import annotations

import sys
from collections import Counter

import libcst as cst
import numpy as np

from ..analysis.calls import resolve
from ..analysis.values import binding_counts
from ..context import Context
from ..names import Namer, names_in, occurrences
from .seed import GRADIENT, WITH_VALUE
from .softmax import assigned
from .normalize import local_variables

__all__ = ["rewrite"]



def _scipy(name: str):
    """``scipy.linalg.<name>`` where the user's code has imported scipy (srcdiff does not)."""
    module = sys.modules.get("scipy.linalg")
    return getattr(module, name, None) if module is not None else None

_EQUAL = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if "tangent" in ctx.options:
        return module
    funcdef = module.body[0]
    finder = _Finder(funcdef, ctx)
    body = finder.statements()
    if body is None:
        return module
    funcdef = funcdef.with_changes(body=funcdef.body.with_changes(body=body))
    return module.with_changes(body=[funcdef, *module.body[1:]])


class _Finder:
    def __init__(self, funcdef: cst.FunctionDef, ctx: Context):
        self.ctx = ctx
        self.local = local_variables(funcdef)
        self.counts: Counter = occurrences(funcdef)
        self.body = list(funcdef.body.body)
        self.bound: dict[str, tuple[int, cst.BaseExpression]] = {}  # name -> (line, value)
        self.pairs: dict[str, tuple[int, cst.BaseExpression, str]] = {}  # c -> (line, value, low)
        for i, stmt in enumerate(self.body):
            found = assigned(stmt)
            if found is not None:
                self.bound[found[0]] = (i, found[1])
            pair = _pair_assigned(stmt)
            if pair is not None:  # c, low = scipy.linalg.cho_factor(K, lower=True)
                self.pairs[pair[0]] = (i, pair[2], pair[1])
        self.assigned: Counter = Counter(binding_counts(funcdef))  # name -> how many bindings
        self.namer = Namer(names_in(funcdef))
        self.helds: dict[str, str] = {}  # a factor -> the name its constant value is bound to

    def statements(self) -> list | None:
        dropped: set[int] = set()
        replaced: dict[int, cst.BaseExpression] = {}
        for i, stmt in enumerate(self.body):
            found = assigned(stmt)
            if found is None:
                continue
            call = self.solve(found[1], i) or self.log_diagonal(found[1], i)
            if call is not None:
                value, gone = call
                replaced[i] = value
                dropped |= gone
        shared = self.shared_factors()
        replaced.update(shared[0])
        if not replaced:
            return None
        faster = self.faster_factors(replaced, dropped)
        out, carried = [], []
        lines = {(self.pairs[factor] if factor in self.pairs else self.bound[factor])[0]:
                 (factor, held) for factor, held in self.helds.items()}
        for i, stmt in enumerate(self.body):
            if i in dropped:
                carried += stmt.leading_lines
                continue
            if i in replaced:
                stmt = stmt.with_changes(body=[stmt.body[0].with_changes(value=replaced[i])])
            elif i in faster:  # L = rt.cholesky_factor(K)
                stmt = stmt.with_changes(body=[stmt.body[0].with_changes(value=faster[i])])
            if carried:
                stmt, carried = stmt.with_changes(leading_lines=[*carried, *stmt.leading_lines]), []
            if i in shared[1]:  # K_spd = rt.spd_factor(K), before K's first solve (its marker)
                made = shared[1][i]
                out += [made[0].with_changes(leading_lines=stmt.leading_lines), *made[1:]]
                stmt = stmt.with_changes(leading_lines=[])
            out.append(stmt)
            if i in lines:  # L_factor = rt.stop_gradient(L): the calls' gradient is K's
                factor, held = lines[i]
                out += self.held_lines(factor, held)
        return out

    def shared_factors(self) -> tuple[dict, dict]:
        """In ``grad``, a matrix ``K`` (a name bound at most once) whose log-determinant
        (``sign, logdet = np.linalg.slogdet(K)``) and a solve (``np.linalg.solve(K, b)``)
        the function computes, at its top level: ``({line: the call}, {line: the lines that
        make the factor})``, the calls ``rt.slogdet_spd(K, factor=K_factor)`` and
        ``rt.solve_spd(K, b, factor=K_factor)``, the factor ``K_factor =
        rt.stop_gradient(rt.spd_factor(K))`` (in two lines) before the first of them: where
        ``K`` is symmetric positive definite they share it, else they are numpy's calls.
        Not for ``value_and_grad``: their values are numpy's to rounding."""
        if GRADIENT not in self.ctx.options or WITH_VALUE in self.ctx.options:
            return {}, {}
        uses: dict[str, list] = {}  # K -> [(line, "slogdet" | "solve", value)]
        for i, stmt in enumerate(self.body):
            pair = _pair_assigned(stmt)
            found = assigned(stmt)
            value = pair[2] if pair is not None else found[1] if found is not None else None
            kind = "slogdet" if pair is not None else "solve"
            operands = self.call_of(value, np.linalg.slogdet if pair else np.linalg.solve,
                                    1 if pair else 2) if value is not None else None
            if operands and type(operands[0]) is cst.Name and self.single_matrix(operands[0]):
                uses.setdefault(operands[0].value, []).append((i, kind, value))
        calls, made = {}, {}
        for name, found in uses.items():
            if {kind for _, kind, _ in found} != {"slogdet", "solve"}:
                continue
            spd, held = self.namer.fresh(f"{name}_spd"), self.namer.fresh(f"{name}_factor")
            rt = cst.Name(self.ctx.rt)
            factor = cst.Call(cst.Attribute(rt, cst.Name("spd_factor")), [cst.Arg(cst.Name(name))])
            stop = cst.Call(cst.Attribute(rt, cst.Name("stop_gradient")), [cst.Arg(cst.Name(spd))])
            made[min(i for i, _, _ in found)] = [_assignment(spd, factor), _assignment(held, stop)]
            for i, kind, value in found:
                args = [a.value for a in value.args]
                calls[i] = self.rt_call(f"{kind}_spd", [*args, ("factor", cst.Name(held))])
        return calls, made

    def single_matrix(self, name: cst.Name) -> bool:
        """``name`` is bound at most once (a parameter never bound again)."""
        n = name.value
        return self.assigned[n] <= 1 and not (n in self.ctx.params and self.assigned[n])

    def faster_factors(self, replaced: dict, dropped: set) -> dict:
        """``{line: rt.cholesky_factor(K)}`` for each ``L = np.linalg.cholesky(K)`` that only
        the calls read once the idioms are rewritten, in ``grad`` (no value returned: LAPACK's
        factor is numpy's to rounding, and twice as fast)."""
        if GRADIENT not in self.ctx.options or WITH_VALUE in self.ctx.options:
            return {}
        gone = {i for i in dropped} | set(replaced)
        found = {}
        for factor in self.helds:
            if factor in self.pairs:
                continue
            line, value = self.bound[factor]
            read_elsewhere = any(factor in names_in(stmt) for i, stmt in enumerate(self.body)
                                 if i != line and i not in gone)
            if not read_elsewhere:
                found[line] = value.with_changes(
                    func=cst.Attribute(cst.Name(self.ctx.rt), cst.Name("cholesky_factor")),
                    args=[value.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)])
        return found

    def held_lines(self, factor: str, held: str) -> list:
        """``held = rt.stop_gradient(factor)``."""
        stop = cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name("stop_gradient")),
                        [cst.Arg(cst.Name(factor))])
        return [_assignment(held, stop)]

    def held(self, factor: str) -> cst.Name:
        """The name of ``factor`` as the calls read it: a constant (its gradient is ``K``'s)."""
        if factor not in self.helds:
            self.helds[factor] = self.namer.fresh(f"{factor}_factor")
        return cst.Name(self.helds[factor])

    # ----- the idioms -----

    def solve(self, value, i: int):
        """``(rt.cholesky_solve(K, b, factor=L), the lines that go)`` for ``np.linalg.solve(T,
        Z)`` of ``T = L.T`` and ``Z = np.linalg.solve(L, b)``, else None."""
        found = self.cho_solve(value, i)
        if found is not None:
            return found
        operands = self.call_of(value, np.linalg.solve, 2)
        if operands is None or not all(type(o) is cst.Name for o in operands):
            return None
        t, z = (self.single_use(o.value, i) for o in operands)
        if t is None or z is None:
            return None
        transposed = self.transposed(t[1])
        inner = self.call_of(z[1], np.linalg.solve, 2)
        if transposed is None or inner is None or type(inner[0]) is not cst.Name or \
                inner[0].value != transposed[0]:
            return None
        factor = self.factor(transposed[0], t[0])
        if factor is None:
            return None
        args = [factor, inner[1], ("factor", self.held(transposed[0]))]
        if transposed[1]:
            args.append(("swapped", cst.Name("True")))
        return self.rt_call("cholesky_solve", args), {t[0], z[0]}

    def log_diagonal(self, value, i: int):
        """``(rt.cholesky_log_diagonal(K, factor=L), the lines that go)`` for ``np.sum(Q)`` of
        ``Q = np.log(D)`` and ``D = np.diag(L)``, else None."""
        summed = self.call_of(value, np.sum, 1)
        if summed is None and type(value) is cst.Call and not value.args and \
                type(value.func) is cst.Attribute and value.func.attr.value == "sum":
            summed = [value.func.value]  # Q.sum()
        if summed is None or type(summed[0]) is not cst.Name:
            return None
        q = self.single_use(summed[0].value, i)
        logged = q and self.call_of(q[1], np.log, 1)
        if not logged or type(logged[0]) is not cst.Name:
            return None
        d = self.single_use(logged[0].value, q[0])
        diagonal = d and self.call_of(d[1], np.diag, 1)
        if not diagonal or type(diagonal[0]) is not cst.Name:
            return None
        factor = self.factor(diagonal[0].value, d[0])
        if factor is None:
            return None
        args = [factor, ("factor", self.held(diagonal[0].value))]
        if diagonal[0].value in self.pairs:  # scipy's: K's entries above the diagonal
            args.append(("clean", cst.Name("False")))
        return self.rt_call("cholesky_log_diagonal", args), {q[0], d[0]}

    def cho_solve(self, value, i: int):
        """``(rt.cholesky_solve(K, b, factor=c_factor), no lines)`` for scipy's
        ``cho_solve((c, low), b)`` of ``c, low = cho_factor(K, lower=True)``, else None."""
        cho_solve = _scipy("cho_solve")
        if cho_solve is None or type(value) is not cst.Call or len(value.args) != 2 or \
                any(a.keyword is not None or a.star for a in value.args) or \
                resolve(value.func, self.ctx, self.local) is not cho_solve:
            return None
        pair, b = value.args[0].value, value.args[1].value
        if not (type(pair) is cst.Tuple and len(pair.elements) == 2 and
                all(type(e.value) is cst.Name for e in pair.elements)):
            return None
        c, low = (e.value.value for e in pair.elements)
        if c not in self.pairs or self.pairs[c][2] != low and low != "True":
            return None
        factor = self.factor(c, i)
        if factor is None:
            return None
        args = [factor, b, ("factor", self.held(c)), ("clean", cst.Name("False"))]
        return self.rt_call("cholesky_solve", args), set()

    # ----- what the idioms are made of -----

    def factor(self, name: str, before: int):
        """``K`` (a name) where ``name`` is bound once, before line ``before``, to
        ``np.linalg.cholesky(K)`` (the lower factor), or with ``low`` to scipy's
        ``cho_factor(K, lower=True)`` (``name, low = …``), and ``K`` at most once; else None."""
        if self.assigned[name] != 1 or name in self.ctx.params:
            return None
        if name in self.pairs:
            line, value, _ = self.pairs[name]
            fn, allowed = _scipy("cho_factor"), {"lower": "True", "check_finite": None,
                                        "overwrite_a": "False"}
        elif name in self.bound:
            (line, value), fn, allowed = self.bound[name], np.linalg.cholesky, {"upper": "False"}
        else:
            return None
        if fn is None or line >= before or type(value) is not cst.Call or \
                resolve(value.func, self.ctx, self.local) is not fn:
            return None
        args = value.args
        if not args or args[0].keyword is not None or args[0].star or \
                type(args[0].value) is not cst.Name:
            return None
        given = {}
        for arg in args[1:]:
            if arg.keyword is None or arg.keyword.value not in allowed or \
                    type(arg.value) is not cst.Name:
                return None
            given[arg.keyword.value] = arg.value.value
        for keyword, required in allowed.items():
            if required is not None and given.get(keyword, "False") != required and \
                    (keyword in given or required != "False"):
                return None  # cho_factor needs lower=True; cholesky upper=False
        a = args[0].value
        if self.assigned[a.value] > 1 or a.value in self.ctx.params and self.assigned[a.value]:
            return None
        return a

    def single_use(self, name: str, reader: int):
        """``(line, value)`` of ``name``, bound once at the top level before line ``reader``,
        which is the only line that reads it; else None."""
        if name in self.ctx.params or self.assigned[name] != 1 or name not in self.bound or \
                self.counts[name] != 2:
            return None
        line, value = self.bound[name]
        return (line, value) if line < reader else None

    def transposed(self, value):
        """``(L, swapped)`` where ``value`` is ``L.T`` or ``np.transpose(L)`` (every axis
        reversed: swapped False) or ``np.swapaxes(L, -1, -2)``/``L.swapaxes(-1, -2)``."""
        if type(value) is cst.Attribute and value.attr.value == "T" and \
                type(value.value) is cst.Name:
            return value.value.value, False
        found = self.call_of(value, np.transpose, 1)
        if found is not None and type(found[0]) is cst.Name:
            return found[0].value, False
        found = self.call_of(value, np.swapaxes, 3)
        if found is None and type(value) is cst.Call and \
                type(value.func) is cst.Attribute and value.func.attr.value == "swapaxes" \
                and len(value.args) == 2 and all(a.keyword is None for a in value.args):
            found = [value.func.value, *(a.value for a in value.args)]
        if found is None or type(found[0]) is not cst.Name:
            return None
        axes = {_integer(found[1]), _integer(found[2])}
        return (found[0].value, True) if axes == {-1, -2} else None

    def call_of(self, value, fn, count: int):
        """The ``count`` positional operands of a call of ``fn`` with no keywords, else None."""
        if type(value) is not cst.Call or len(value.args) != count or \
                any(a.keyword is not None or a.star for a in value.args):
            return None
        if resolve(value.func, self.ctx, self.local) is not fn:
            return None
        return [a.value for a in value.args]

    def rt_call(self, name: str, args) -> cst.Call:
        made = []
        for arg in args:
            if isinstance(arg, tuple):
                made.append(cst.Arg(arg[1], keyword=cst.Name(arg[0]), equal=_EQUAL))
            else:
                made.append(cst.Arg(arg))
        made = [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                for a in made[:-1]] + made[-1:]
        return cst.Call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name(name)), made)


def _assignment(name: str, value) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])


def _pair_assigned(stmt):
    """``(c, low, value)`` of ``c, low = value``, else None."""
    if type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1:
        target = stmt.body[0].targets[0].target
        if type(target) is cst.Tuple and len(target.elements) == 2 and \
                all(type(e.value) is cst.Name for e in target.elements):
            c, low = (e.value.value for e in target.elements)
            return c, low, stmt.body[0].value
    return None


def _integer(node):
    if type(node) is cst.Integer:
        return int(node.value)
    if type(node) is cst.UnaryOperation and type(node.operator) is cst.Minus and \
            type(node.expression) is cst.Integer:
        return -int(node.expression.value)
    return None
