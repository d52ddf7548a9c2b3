"""A whole elementwise kernel as one loop over the elements: forward and backward pass
computed per element, numbers in registers, no array but the gradients.

A kernel qualifies when it is straight-line code whose array values are all elementwise
over its array arguments (``rt.unbroadcast`` onto an array argument, ``rt.sum_adjoint``
of a number, ``rt.guard``, numpy ufuncs, arithmetic); a whole-array ``np.sum`` or
``np.mean`` becomes an accumulator, and so does ``rt.unbroadcast`` onto a number argument
(its gradient, summed over the elements). ``function.py`` runs it when the array
arguments share one shape and are C-contiguous, and the array kernel otherwise.

Before (a kernel, arrays ``{"x"}``)::

    def f_kernel(x):
        a = np.sin(x)
        dx = rt.sum_adjoint(1.0, a) * np.cos(x)
        return rt_jit.own(dx, (x,))

After::

    def f_kernel_loop(x):
        n = x.size
        x_flat = x.reshape(-1)
        dx_out = np.empty(n, x.dtype)
        for i in range(n):
            x_i = x_flat[i]
            a = np.sin(x_i)
            dx = 1.0 * np.cos(x_i)
            dx_out[i] = dx
        return dx_out.reshape(x.shape)
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
import numpy as np

from ..names import Namer, names_in
from .fuse import atom

__all__ = ["elementwise_loop"]

VARYING, UNIFORM, SUMMED = "varying", "uniform", "summed"  # a value per element, one, a sum


class _NotElementwise(Exception):
    pass


def elementwise_loop(fn: cst.FunctionDef, arrays: frozenset, roles: tuple, resolve, rt: str):
    """``fn`` (a kernel) as one loop over the elements of its array arguments ``arrays``,
    or None where it does not qualify. ``roles``: what the kernel returns, in order: a
    parameter name for its gradient, ``None`` for the function's value."""
    try:
        return _Loop(fn, arrays, roles, resolve, rt).build()
    except _NotElementwise:
        return None


class _Loop:
    def __init__(self, fn, arrays, roles, resolve, rt):
        self.fn, self.arrays, self.roles, self.resolve, self.rt = fn, arrays, roles, resolve, rt
        self.params = [p.name.value for p in fn.params.params]
        self.kinds = {p: VARYING if p in arrays else UNIFORM for p in self.params}
        self.vectorised = False  # a call of numba_vecmath's: the libm loop is kept for a rerun
        self.far: list = []      # the arguments of vsin/vcos in the statement at hand
        # the loop's own names, none of the kernel's (a variable of yours named i or n)
        self.namer = Namer(names_in(fn) | {rt, f"{rt}_jit"})
        self.i, self.n, self.flag = (self.namer.fresh(b) for b in ("i", "n", "_far_sines"))
        self.element = {p: self.namer.fresh(f"{p}_i") for p in self.params if p in arrays}
        self.flat = {p: self.namer.fresh(f"{p}_flat") for p in self.params if p in arrays}

    def build(self):
        if not self.arrays:
            raise _NotElementwise
        body = list(self.fn.body.body)
        inside, sums, checks = [], [], []
        for stmt in body[:-1]:
            if not m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])):
                raise _NotElementwise
            name = stmt.body[0].targets[0].target.value
            self.far = []
            kind, expr = self.expression(stmt.body[0].value)
            for arg in self.far:  # before the statement: the names its arguments read
                line = self._line(f"{self.flag} = {self.flag} | {self.rt}_jit.trig_far({_code(arg)})")
                inside.append(line)
                checks.append(id(line))
            if name in self.params or SUMMED in (kind, self.kinds.get(name)) and name in self.kinds:
                raise _NotElementwise  # a sum assigned twice: the array kernel runs
            self.kinds[name] = kind
            if kind == SUMMED:
                sums.append(name)
                inside.append(self._line(f"{name} += {_code(expr)}", stmt))
            else:  # numbers too: a name may be assigned again, per element (LLVM hoists)
                inside.append(stmt.with_changes(body=[stmt.body[0].with_changes(value=expr)]))
        returned = self.returned(body[-1])
        first = sorted(self.arrays, key=self.params.index)[0]
        i, n = self.i, self.n
        head = [f"{n} = {first}.size"] + [f"{self.flat[p]} = {p}.reshape(-1)" for p in self.params
                                           if p in self.arrays]
        outs = [g for g in returned if self.kinds.get(g) == VARYING]
        self.out = {g: self.namer.fresh(f"{g}_out") for g in outs}
        head += [f"{self.out[g]} = {self.rt}.np.empty({n}, {first}.dtype)" for g in outs]
        head += [f"{s} = 0.0" for s in sums]
        loads = [self._line(f"{self.element[p]} = {self.flat[p]}[{i}]") for p in self.params
                 if p in self.arrays]
        stores = [self._line(f"{self.out[g]}[{i}] = {g}") for g in outs]
        if len(returned) != len(self.roles):
            raise _NotElementwise
        results = [self.result(g, role, first, outs) for g, role in zip(returned, self.roles)]
        loop = cst.parse_statement(f"for {i} in range({n}):\n    pass\n").with_changes(
            body=cst.IndentedBlock([*loads, *inside, *stores]))
        ret = self.result_statement(results)
        if not self.vectorised:
            new_body = [*map(self._line, head), loop, ret]
        else:  # where a sine's argument is far (or not finite): again, with libm's functions
            libm = [s.visit(_Libm(self.rt)) for s in inside if id(s) not in checks]
            again = cst.parse_statement(f"if {self.flag}:\n    pass\n").with_changes(
                body=cst.IndentedBlock([*(self._line(f"{s} = 0.0") for s in sums), loop.with_changes(
                    body=cst.IndentedBlock([*loads, *libm, *stores]))]))
            loop = self._halves(loop, loads, inside, stores, first) if not sums else [loop]
            new_body = [*map(self._line, head), self._line(f"{self.flag} = False"), *loop, again, ret]
        return self.fn.with_changes(name=cst.Name(self.fn.name.value + "_loop"),
                                    body=self.fn.body.with_changes(body=new_body))

    def _halves(self, loop, loads, inside, stores, first: str) -> list:
        """The loop over the elements as two chains, the first half's element ``i`` and the
        second half's ``i + _half`` in one iteration (their names with ``_2``, or another
        suffix where the kernel has such a name), then the last
        element of an odd count: the vectorised functions are long chains of dependent
        operations, and two independent ones keep the processor busier (W5: 0.33x -> 0.19x hand).
        Without sums only: their order of addition would change."""
        i, n = self.i, self.n
        half, j = self.namer.fresh("_half"), self.namer.fresh("_j")
        names = {t for s in [*loads, *inside] for t in _targets(s)} - {self.flag}
        rename = _Suffixed({t: self.namer.fresh(f"{t}_2") for t in sorted(names)})
        second = [s.visit(rename) for s in inside]
        loads2 = [self._line(f"{rename.names[self.element[p]]} = {self.flat[p]}[{j}]")
                  for p in self.params if p in self.arrays]
        stores2 = [self._line(f"{self.out[g]}[{j}] = {rename.names.get(g, g)}") for g in self.out]
        both = loop.with_changes(iter=cst.parse_expression(f"range({half})"), body=cst.IndentedBlock(
            [self._line(f"{j} = {i} + {half}"), *loads, *loads2, *inside, *second, *stores, *stores2]))
        last = cst.parse_statement(f"if {n} % 2:\n    pass\n").with_changes(
            body=cst.IndentedBlock([self._line(f"{i} = {n} - 1"), *loads, *inside, *stores]))
        return [self._line(f"{half} = {n} // 2"), both, last]

    # ----- expressions -----

    def expression(self, expr):
        """``(kind, expr)``: the expression per element, and whether it varies, is one
        number for all elements, or is a sum over them."""
        if type(expr) in (cst.Integer, cst.Float):
            return UNIFORM, expr
        if type(expr) is cst.Name:
            kind = self.kinds.get(expr.value)
            if kind is None or kind == SUMMED:
                raise _NotElementwise  # a global, or a sum read before the loop ends
            return kind, cst.Name(self.element[expr.value]) if expr.value in self.arrays else expr
        if type(expr) is cst.BinaryOperation and isinstance(
                expr.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power)):
            (k1, left), (k2, right) = self.expression(expr.left), self.expression(expr.right)
            return _join(k1, k2), expr.with_changes(left=left, right=right)
        if type(expr) is cst.UnaryOperation and type(expr.operator) is cst.Minus:
            kind, inner = self.expression(expr.expression)
            return kind, expr.with_changes(expression=inner)
        if type(expr) is cst.Comparison and len(expr.comparisons) == 1 and isinstance(
                expr.comparisons[0].operator, (cst.LessThan, cst.GreaterThan, cst.LessThanEqual,
                                               cst.GreaterThanEqual, cst.Equal, cst.NotEqual)):
            (k1, left), (k2, right) = (self.expression(expr.left),
                                       self.expression(expr.comparisons[0].comparator))
            return _join(k1, k2), expr.with_changes(
                left=left, comparisons=[expr.comparisons[0].with_changes(comparator=right)])
        if type(expr) is cst.Call:
            return self.call(expr)
        raise _NotElementwise

    def call(self, call):
        args = [a.value for a in call.args]
        if any(a.keyword or a.star for a in call.args):
            raise _NotElementwise
        if isinstance(self.resolve(call.func), np.ufunc):
            kinds, values = zip(*map(self.expression, args)) if args else ((), ())
            kind = VARYING if VARYING in kinds else UNIFORM
            if SUMMED in kinds:
                raise _NotElementwise
            return kind, call.with_changes(args=[a.with_changes(value=v)
                                                 for a, v in zip(call.args, values)])
        rt = self.rt
        if m.matches(call, m.Call(func=m.Attribute(m.Attribute(m.Name(rt), m.Name("np")),
                                                   m.Name("float32")))):
            return UNIFORM, call  # a float32 constant (kernel.single)
        if m.matches(call.func, m.Attribute(m.Name(f"{rt}_jit"))) and len(args) == 1:
            from srcdiff.runtime.numba_twins import SIMD

            name = call.func.attr.value
            if name in SIMD:  # numpy's loop for arrays: per element, np's own or a vectorised one
                from srcdiff.runtime.numba_vecmath import VECTORISED

                kind, value = self.expression(args[0])
                if kind == SUMMED:
                    raise _NotElementwise
                func = cst.parse_expression(f"{rt}.np.{name}")
                if name in VECTORISED and kind == VARYING:
                    func = cst.parse_expression(f"{rt}_jit.v{name}")
                    self.vectorised = True
                    if name in ("sin", "cos"):
                        self.far.append(value)
                return kind, call.with_changes(func=func, args=[call.args[0].with_changes(value=value)])
        if m.matches(call.func, m.Attribute(m.Name(rt), m.Name("unbroadcast"))) and len(args) == 2:
            kind, g = self.expression(args[0])
            target = self.target_kind(args[1])
            if target == VARYING or kind == UNIFORM:
                return kind, g
            return SUMMED, g  # onto a number argument: summed over the elements
        if m.matches(call.func, m.Attribute(m.Name(rt), m.Name("sum_adjoint"))) and len(args) == 2:
            kind, g = self.expression(args[0])
            if kind != UNIFORM:
                raise _NotElementwise
            self.target_kind(args[1])
            return UNIFORM, g
        if m.matches(call.func, m.Attribute(m.Name(rt), m.Name("count"))) and len(args) == 1:
            return UNIFORM, cst.Name(self.n) if self.target_kind(args[0]) == VARYING else cst.Integer("1")
        if m.matches(call.func, m.Attribute(m.Name(rt), m.Name("guard"))) and len(args) == 2:
            (k1, value), (k2, g) = self.expression(args[0]), self.expression(args[1])
            return _join(k1, k2), cst.parse_expression(
                f"({_code(value)} if {_code(g)} != 0 else 1.0)")
        per_element = {  # selection adjoints, element by element (the twins' values)
            "where_adjoint_x": ("({0} if {1} else 0.0)", 2),
            "where_adjoint_y": ("(0.0 if {1} else {0})", 2),
            "larger_adjoint": ("({0} * {1} + (0.5 * {0}) * {2} if {2} else {0} * {1})", 3)}
        if self.resolve(call.func) is np.where and len(args) == 3:
            parts = [self.expression(a) for a in args]
            kinds = [k for k, _ in parts]
            if SUMMED in kinds:
                raise _NotElementwise
            c, a, b = (_code(atom(v)) for _, v in parts)
            return (VARYING if VARYING in kinds else UNIFORM,
                    cst.parse_expression(f"({a} if {c} else {b})"))
        for name, (template, arity) in per_element.items():
            if m.matches(call.func, m.Attribute(m.Name(rt), m.Name(name))):
                if len(args) != arity:
                    raise _NotElementwise
                parts = [self.expression(a) for a in args]
                kinds = [k for k, _ in parts]
                if SUMMED in kinds:
                    raise _NotElementwise
                values = [_code(atom(v)) for _, v in parts]
                return (VARYING if VARYING in kinds else UNIFORM,
                        cst.parse_expression(template.format(*values)))
        if self.resolve(call.func) in (np.sum,) and len(args) == 1:
            kind, value = self.expression(args[0])
            if kind != VARYING:
                raise _NotElementwise
            return SUMMED, value
        raise _NotElementwise

    def target_kind(self, expr):
        """Whether the operand whose shape a rule reads varies per element."""
        kind, _ = self.expression(expr)
        return kind

    # ----- results -----

    def returned(self, stmt) -> list[str]:
        """The names the kernel returns (value first where it returns one), ``own`` gone."""
        if not m.matches(stmt, m.SimpleStatementLine(body=[m.Return()])):
            raise _NotElementwise
        value = stmt.body[0].value
        self.shape = value
        names = []

        def walk(expr):
            if type(expr) is cst.Tuple:
                for e in expr.elements:
                    walk(e.value)
            elif m.matches(expr, m.Call(func=m.Attribute(attr=m.Name("own")))):
                walk(expr.args[0].value)
            elif type(expr) is cst.Name and expr.value in self.kinds:
                names.append(expr.value)
            else:
                raise _NotElementwise

        walk(value)
        return names

    def result(self, name: str, role, first: str, outs: list) -> str:
        """The expression returning ``name``, the gradient of ``role`` (None: the value)."""
        kind, array = self.kinds[name], role in self.arrays
        if kind == VARYING and array:
            return f"{self.out[name]}.reshape({first}.shape)"
        if kind == UNIFORM and array:  # the same number for every element
            return f"{self.rt}.np.full({first}.shape, {name}, {first}.dtype)"
        if kind != VARYING and not array:
            return name
        raise _NotElementwise

    def result_statement(self, results: list[str]):
        """The loop kernel's return, in the shape of the kernel's own (value, gradients)."""
        it = iter(results)

        def rebuild(expr):
            if type(expr) is cst.Tuple:
                inner = ", ".join(rebuild(e.value) for e in expr.elements)
                return f"({inner}{',' if len(expr.elements) == 1 else ''})"
            return next(it)

        return cst.parse_statement(f"return {rebuild(self.shape)}\n")

    @staticmethod
    def _line(code: str, like=None):
        stmt = cst.parse_statement(code + "\n")
        return stmt.with_changes(leading_lines=like.leading_lines) if like is not None else stmt


def _join(k1: str, k2: str) -> str:
    if SUMMED in (k1, k2):
        raise _NotElementwise
    return VARYING if VARYING in (k1, k2) else UNIFORM


def _targets(stmt) -> list[str]:
    if m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])):
        return [stmt.body[0].targets[0].target.value]
    return []


class _Suffixed(cst.CSTTransformer):
    """Each name in ``names`` (a dict) as the name it maps to (attributes' own names untouched)."""

    def __init__(self, names: dict):
        self.names = names

    def visit_Attribute(self, node) -> bool:
        return False

    def leave_Attribute(self, original, updated):
        return updated.with_changes(value=updated.value.visit(self))

    def leave_Name(self, original, updated):
        new = self.names.get(updated.value)
        return updated if new is None else updated.with_changes(value=new)


class _Libm(cst.CSTTransformer):
    """``rt_jit.vsin(...)`` → ``rt.np.sin(...)``: the loop again, with numba's libm calls."""

    def __init__(self, rt: str):
        self.rt = rt

    def leave_Call(self, original, updated):
        func = updated.func
        from srcdiff.runtime.numba_vecmath import VECTORISED

        if m.matches(func, m.Attribute(m.Name(f"{self.rt}_jit"))) and \
                func.attr.value[:1] == "v" and func.attr.value[1:] in VECTORISED:
            return updated.with_changes(func=cst.parse_expression(
                f"{self.rt}.np.{func.attr.value[1:]}"))
        return updated


def _code(expr) -> str:
    return cst.Module(body=[]).code_for_node(expr)
