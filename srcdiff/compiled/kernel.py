"""The generated numpy derivative, rewritten into the one function numba compiles.

The readable derivative (``.source``) stays the reference; the kernel differs from it only
where numba needs it to:

- the pullback is inlined: ``f_vjp(x)`` with ``def f_pullback(d_out): …; return _out,
  f_pullback`` becomes ``f_kernel(x, d_out)`` returning ``(_out, gradients)``; a pullback
  called in place (``return f_pullback()``) becomes the rest of the body;
- a tape is a list (``rt.Tape()`` → ``[]``, ``.push`` → ``.append``), walked backwards with
  ``tape[::-1]`` instead of ``reversed(tape)``;
- ``del`` statements go (numba frees what is no longer read itself), ``rt.at[1:3, 0]`` is
  the key ``(slice(1, 3), 0)``, and ``rt.add_into(a, b)`` is ``a + b``;
- elementwise chains are fused (``fuse.py``): numba compiles each statement's array
  expression to one loop.

Before::

    def f_vjp(x):
        _t1 = np.sin(x)
        _out = np.sum(_t1)
        def f_pullback(d_out):
            d_t1 = rt.sum_adjoint(d_out, _t1)
            return d_t1 * np.cos(x)
        return _out, f_pullback

After::

    def f_kernel(x, d_out):
        _t1 = np.sin(x)
        _out = np.sum(_t1)
        d_t1 = rt.sum_adjoint(d_out, _t1)
        return _out, d_t1 * np.cos(x)
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
import numpy as np

from . import fuse, links, loops

__all__ = ["Kernel", "KernelError", "build", "loop", "single"]


class KernelError(Exception):
    """The generated derivative has a form the kernel writer does not take; says which."""


@dataclass(frozen=True)
class Kernel:
    """The kernel's source and what calling it needs."""

    source: str
    name: str
    params: tuple[str, ...]     # the derivative's parameters, then the pullback's (d_out)
    seeded: bool                # True: the last parameter is the output's adjoint
    with_value: bool            # True: the kernel returns (value, gradients)
    rt: str                     # the name generated code gives srcdiff.runtime
    helpers: tuple = ()         # the functions of the user's helpers (links.py), after it
    names: dict = field(default_factory=dict)   # what they read of their own modules
    owners: dict = field(default_factory=dict)  # helper function name -> the user's function
    aux: tuple | None = None    # has_aux: how the kernel's (value, aux) packs aux (_packed_aux)
    error_model: str = "python"  # numba's: "numpy" for one loop over the elements (no check
                                 # per division, so that LLVM vectorises it; inf as numpy's)


def build(text: str, resolve=lambda expr: None, derive=None) -> Kernel:
    """The kernel of the generated derivative ``text`` (a module: import, links, one ``def``);
    ``resolve(expr)``: the object a called name or attribute stands for (``np.tanh``), by
    the user's namespace, else None; ``derive(fn, wrt)``: the derivative source, resolver and
    namespace of a helper function the derivative calls (links.py)."""
    module = cst.parse_module(text)
    rt = _runtime_name(module)
    defs = [s for s in module.body if type(s) is cst.FunctionDef]
    if len(defs) != 1:
        raise KernelError("a derivative of more than one function")
    try:
        if derive is None and len(module.body) != 2:
            raise ValueError("no helper functions here")
        names, functions = links.link_all(module, rt, resolve, derive)
    except ValueError as exc:
        raise KernelError(f"the derivative calls other generated derivatives (helper functions "
                          f"of yours) that a kernel cannot call: {exc}") from None
    fn = links.calls_to_links(defs[0], names)
    body, params, seeded, with_value = _inline_pullback(fn)
    body, aux = _packed_aux(body, with_value)
    body = _owned(body, params, rt, with_value)
    name = fn.name.value.rsplit("_", 1)[0] + "_kernel"
    new = fn.with_changes(
        name=cst.Name(name),
        params=cst.Parameters(params=[cst.Param(cst.Name(p)) for p in params]),
        body=fn.body.with_changes(body=body))
    new = fuse.function(new.visit(_Lower(rt, resolve)).visit(_DropDels()),
                        lambda func: isinstance(resolve(func), np.ufunc))
    new = new.visit(_NumpyLoops(rt, resolve))
    helpers, read = [], {}
    for helper, helper_resolve, link in functions:
        helpers.append(fuse.function(helper.visit(_Lower(rt, helper_resolve)).visit(_DropDels()),
                                     lambda func: isinstance(helper_resolve(func), np.ufunc)
                                     ).visit(_NumpyLoops(rt, helper_resolve)))
        for free in links.free_names(helpers[-1]):
            if free in link.namespace:
                read[free] = link.namespace[free]
    header = (f"from srcdiff import runtime as {rt}\n"
              f"from srcdiff.runtime import numba_twins as {rt}_jit\n\n\n")
    source = header + cst.Module(body=[new, *helpers]).code
    owners = {h.name.value: link.fn for h, (_, _, link) in zip(helpers, functions)}
    for helper in owners:
        read.pop(helper, None)
    return Kernel(source, name, tuple(params), seeded, with_value, rt, tuple(owners), read, owners,
                  aux)


def single(kernel: Kernel) -> Kernel:
    """``kernel`` for float32 arguments: its number constants float32 (``rt.np.float32(2.0)``).
    numba types a Python float as float64, which would make a float32 program's arrays float64
    (numpy 2 keeps them float32: a Python number is weak); the results stay as numpy's."""
    module = cst.parse_module(kernel.source)
    body = [s.visit(_Float32(kernel.rt)) if type(s) is cst.FunctionDef else s
            for s in module.body]
    body = [s.with_changes(name=cst.Name(kernel.name + "_f32")) if type(s) is cst.FunctionDef
            and s.name.value == kernel.name else s for s in body]
    return dataclasses.replace(kernel, source=module.with_changes(body=body).code,
                               name=kernel.name + "_f32")


class _Float32(cst.CSTTransformer):
    """Number constants that are operands of arithmetic, as float32."""

    def __init__(self, rt: str):
        super().__init__()
        self.rt = rt

    def _wrap(self, expr):
        number = (cst.Float, cst.Integer)
        if isinstance(expr, number) or type(expr) is cst.UnaryOperation and \
                isinstance(expr.expression, number):  # 2.0, -1.0; not x[-1] nor axis=-1
            return cst.Call(cst.parse_expression(f"{self.rt}.np.float32"),
                            [cst.Arg(expr.with_changes(lpar=[], rpar=[]))])
        return expr

    def leave_BinaryOperation(self, original, updated):
        return updated.with_changes(left=self._wrap(updated.left), right=self._wrap(updated.right))

    def leave_Call(self, original, updated):
        """A number that is a value of np.where, np.maximum, … (``np.where(a > 0, a, 0)``):
        numba would make the result float64, the float32 program's next matmul float64 too."""
        if m.matches(updated.func, m.Attribute(value=m.Name("np") | m.Attribute(attr=m.Name("np")),
                                               attr=m.Name("where") | m.Name("maximum") |
                                               m.Name("minimum") | m.Name("clip"))):
            return updated.with_changes(args=[a.with_changes(value=self._wrap(a.value))
                                              if a.keyword is None else a for a in updated.args])
        return updated


def loop(kernel: Kernel, arrays: frozenset, roles: tuple, resolve) -> Kernel | None:
    """``kernel`` as one loop over the elements of its array arguments ``arrays``
    (``loops.py``), or None where it is not elementwise throughout."""
    if kernel.helpers:  # calls of the user's functions: not one loop
        return None
    module = cst.parse_module(kernel.source)
    fn = next(s for s in module.body if type(s) is cst.FunctionDef)
    new = loops.elementwise_loop(fn, arrays, roles, resolve, kernel.rt)
    if new is None:
        return None
    source = module.with_changes(body=[*(s for s in module.body if s is not fn), new]).code
    return Kernel(source, new.name.value, kernel.params, kernel.seeded, kernel.with_value,
                  kernel.rt, error_model="numpy")


def _owned(body: list, params: list, rt: str, with_value: bool) -> list:
    """The final return with each gradient as ``rt_jit.own(g, (arguments…))``: a copy where
    it shares memory with an argument (checked inside the kernel, no Python call)."""
    final = body[-1]
    if not m.matches(final, m.SimpleStatementLine(body=[m.Return()])):
        raise KernelError("a derivative that does not end with its return")
    value = final.body[0].value
    grads = value.elements[1].value if with_value else value
    args = cst.parse_expression(f"({', '.join(params)}{',' if len(params) == 1 else ''})")

    def own(g):
        return cst.Call(cst.Attribute(cst.Name(f"{rt}_jit"), cst.Name("own")),
                        [cst.Arg(_bare(g)), cst.Arg(args)])

    if type(grads) is cst.Tuple:
        grads = grads.with_changes(elements=[e.with_changes(value=own(e.value))
                                             for e in grads.elements])
    else:
        grads = own(grads)
    if with_value:
        grads = value.with_changes(elements=[value.elements[0],
                                             value.elements[1].with_changes(value=grads)])
    return body[:-1] + [final.with_changes(body=[final.body[0].with_changes(value=grads)])]


def _bare(expr):
    return expr.with_changes(lpar=[], rpar=[]) if getattr(expr, "lpar", None) else expr


def _runtime_name(module: cst.Module) -> str:
    first = module.body[0]
    if m.matches(first, m.SimpleStatementLine(body=[m.ImportFrom(module=m.Name("srcdiff"))])):
        alias = first.body[0].names[0]
        return alias.asname.name.value if alias.asname else alias.name.value
    raise KernelError("not a generated derivative (no 'from srcdiff import runtime as rt')")


def _inline_pullback(fn: cst.FunctionDef):
    """The body with the pullback inlined, the parameters, whether seeded, whether valued."""
    params = [p.name.value for p in fn.params.params]
    if fn.params.star_arg not in (None, cst.MaybeSentinel.DEFAULT) or fn.params.kwonly_params:
        raise KernelError("*args and keyword-only parameters")
    stmts = list(fn.body.body)
    nested = [i for i, s in enumerate(stmts) if type(s) is cst.FunctionDef]
    if not nested:  # gradient only: f_grad(x) returns the gradients itself
        return stmts, params, False, False
    if len(nested) != 1:
        raise KernelError("more than one nested function")
    i = nested[0]
    pullback = stmts[i]
    pb_name = pullback.name.value
    last = stmts[-1]
    rest = [s for s in stmts[i + 1:-1] if not _is_del(s)]
    ret = last.body[0] if type(last) is cst.SimpleStatementLine else None
    pb_params = [p.name.value for p in pullback.params.params]
    pb_body = list(pullback.body.body)
    if m.matches(ret, m.Return(m.Call(func=m.Name(pb_name), args=[]))):  # called in place
        return stmts[:i] + rest + pb_body, params, False, False
    valued = m.Element(m.Name() | m.Tuple(elements=[m.Element(m.Name()), m.Element()]))
    if not m.matches(ret, m.Return(m.Tuple(elements=[valued, m.Element(m.Name(pb_name))]))) \
            or len(pb_params) != 1:
        raise KernelError("a pullback that is neither returned with the value nor called")
    value = ret.value.elements[0].value  # has_aux: (value, aux)
    final = pb_body[-1]
    if not m.matches(final, m.SimpleStatementLine(body=[m.Return()])) or any(
            m.findall(cst.Module(body=pb_body[:-1]), m.Return())):
        raise KernelError("a pullback with more than one return")
    grads = fuse.atom(final.body[0].value)
    final = final.with_changes(body=[cst.Return(cst.Tuple([cst.Element(value), cst.Element(grads)]))])
    return stmts[:i] + rest + pb_body[:-1] + [final], params + pb_params, True, True


def _packed_aux(body: list, with_value: bool):
    """The body with ``has_aux``'s auxiliary value as a tuple numba can return, and how to
    rebuild it: ``("leaf",)`` (an array or number), ``("tuple",)``, ``("list",)`` or
    ``("dict", keys)`` of a display of string keys (``{"h": h, "n": n}`` -> ``(h, n)``);
    ``None`` where the derivative has no aux."""
    final = body[-1].body[0].value
    value = final.elements[0].value if with_value else None
    if type(value) is not cst.Tuple:
        return body, None
    aux = value.elements[1].value
    display, where = aux, None
    if type(aux) is cst.Name:
        writes = [k for k, s in enumerate(body) if m.matches(s, m.SimpleStatementLine(body=[
            m.Assign(targets=[m.AssignTarget(target=m.Name(aux.value))])]))]
        if len(writes) == 1:
            where, display = writes[0], body[writes[0]].body[0].value
    if type(display) in (cst.Tuple, cst.List):
        kind, values = ("tuple",) if type(display) is cst.Tuple else ("list",), [
            e.value for e in display.elements]
    elif type(display) is cst.Dict:
        if not all(type(e) is cst.DictElement and type(e.key) is cst.SimpleString
                   for e in display.elements):
            raise KernelError("an auxiliary dict whose keys are not strings written in the source")
        kind = ("dict", tuple(ast.literal_eval(e.key.value) for e in display.elements))
        values = [e.value for e in display.elements]
    else:
        return body, ("leaf",)
    packed = cst.Tuple([cst.Element(v) for v in values] if len(values) != 1 else
                       [cst.Element(values[0], comma=cst.Comma())])
    if where is None:
        value = value.with_changes(elements=[value.elements[0], value.elements[1].with_changes(
            value=packed)])
        ret = body[-1].body[0]
        body = body[:-1] + [body[-1].with_changes(body=[ret.with_changes(
            value=final.with_changes(elements=[final.elements[0].with_changes(value=value),
                                               final.elements[1]]))])]
    else:
        assign = body[where].body[0]
        body = body[:where] + [body[where].with_changes(body=[assign.with_changes(
            value=packed)])] + body[where + 1:]
    return body, kind


def _is_del(stmt) -> bool:
    return type(stmt) is cst.SimpleStatementLine and all(type(s) is cst.Del for s in stmt.body)


class _DropDels(cst.CSTTransformer):
    """No ``del`` statements; a removed line's comments go to the statement after it."""

    def leave_IndentedBlock(self, original, updated):
        out, carried = [], []
        for s in updated.body:
            if _is_del(s):
                carried.extend(s.leading_lines)
                continue
            if carried:
                s = s.with_changes(leading_lines=[*carried, *s.leading_lines])
                carried = []
            out.append(s)
        return updated.with_changes(body=out)


class _Lower(cst.CSTTransformer):
    """Tapes as lists, ``rt.at[k]`` as ``k``, ``rt.add_into(a, b)`` as ``a + b``, a numpy
    reduction over an axis as its twin ``rt_jit.reduce_<name>(x, axis, keepdims)``, ``a @ b``
    as ``rt_jit.matmul(a, b)`` (BLAS for transposed operands too)."""

    def __init__(self, rt: str, resolve):
        super().__init__()
        self.rt, self.resolve = rt, resolve
        self.targets = 0  # inside an assignment's target

    def _rt(self, attr: str):
        return m.Attribute(value=m.Name(self.rt), attr=m.Name(attr))

    def visit_AssignTarget(self, node):
        self.targets += 1

    def leave_AssignTarget(self, original, updated):
        self.targets -= 1
        return updated

    def leave_Call(self, original, updated):
        updated = self._joined(updated)
        func = self.resolve(updated.func)
        if func is np.squeeze and len(updated.args) == 2:  # numba has none: one literal axis
            return self._jit("squeeze", [updated.args[0].value, updated.args[1].value])
        if func is np.einsum:  # numba has none: loops written for the subscripts (numba_einsum)
            return self._jit("einsum", [a.value for a in updated.args if a.keyword is None])
        if m.matches(updated.func, self._rt("einsum_adjoint")):  # the subscripts first
            given = {a.keyword.value: a.value for a in updated.args if a.keyword}
            if "subscripts" in given:
                return self._jit("einsum_adjoint", [given["subscripts"], *(
                    a.value for a in updated.args if a.keyword is None)])
        if m.matches(updated.func, m.Attribute(attr=m.Name("copy"))) and updated.args and \
                self.resolve(updated.func.value) is None:  # x.copy(order="F"): the same values
            return updated.with_changes(args=[])
        if m.matches(updated.func, m.Attribute(attr=m.Name("swapaxes"))) and \
                self.resolve(updated.func.value) is None:  # an array's method numba lacks
            return cst.Call(cst.parse_expression(f"{self.rt}.np.swapaxes"),
                            [cst.Arg(updated.func.value), *updated.args])
        if m.matches(updated, m.Call(func=self._rt("Tape"), args=[])):
            return cst.List([])
        if m.matches(updated, m.Call(func=m.Attribute(attr=m.Name("push")), args=[m.Arg()])):
            return updated.with_changes(func=updated.func.with_changes(attr=cst.Name("append")))
        if m.matches(updated, m.Call(func=m.Name("reversed"), args=[m.Arg(m.Name())])):
            return cst.Subscript(updated.args[0].value, [cst.SubscriptElement(cst.Slice(
                None, None, step=cst.UnaryOperation(cst.Minus(), cst.Integer("1"))))])
        if m.matches(updated.func, m.Name("abs")) and self.resolve(updated.func) in (None, abs):
            return updated.with_changes(func=cst.parse_expression(f"{self.rt}.np.abs"))
        if m.matches(updated, m.Call(func=self._rt("add_into"), args=[m.Arg(keyword=None)] * 2)):
            return cst.BinaryOperation(fuse.atom(updated.args[0].value), cst.Add(),
                                       fuse.atom(updated.args[1].value))
        return self._reduction(updated)

    def _jit(self, name: str, args: list):
        return cst.Call(cst.Attribute(cst.Name(f"{self.rt}_jit"), cst.Name(name)),
                        [cst.Arg(_bare(a)) for a in args])

    def _joined(self, call):
        """A join's list of arrays as a tuple (numba's np.concatenate and np.stack, and the
        twins of their adjoints, take tuples: a size known when compiling)."""
        func = self.resolve(call.func)
        at = 0 if func in (np.concatenate, np.stack) else 1 if m.matches(
            call.func, self._rt("concatenate_adjoint") | self._rt("stack_adjoint")) else None
        if at is None or len(call.args) <= at or not isinstance(call.args[at].value, cst.List):
            return call
        items = call.args[at].value.elements
        tuple_ = cst.Tuple([cst.Element(e.value) for e in items] if len(items) != 1 else
                           [cst.Element(items[0].value, comma=cst.Comma())])
        return call.with_changes(args=[*call.args[:at], call.args[at].with_changes(value=tuple_),
                                       *call.args[at + 1:]])

    def _reduction(self, call):
        from srcdiff.runtime.numba_twins import METHODS, REDUCTIONS

        if self.resolve(call.func) is np.inner:  # numba has none: rt_jit.inner (vectors)
            return call.with_changes(func=cst.Attribute(cst.Name(f"{self.rt}_jit"), cst.Name("inner")))
        names = ("a", "axis", "dtype", "out", "keepdims")
        method = m.matches(call.func, m.Attribute(attr=m.Name())) and \
            self.resolve(call.func.value) is None and call.func.attr.value in METHODS
        if method:  # x.min(axis=1): an array's method, as np.min(x, axis=1)
            twin, names = METHODS[call.func.attr.value], names[1:]
        else:
            try:
                twin = REDUCTIONS.get(self.resolve(call.func))
            except TypeError:  # an unhashable object
                twin = None
        if twin is None or not call.args or \
                not method and not any(a.keyword for a in call.args) and len(call.args) == 1:
            return call
        given = {a.keyword.value if a.keyword else names[i]: a.value for i, a in enumerate(call.args)}
        if method:
            given["a"] = call.func.value
        if set(given) - {"a", "axis", "keepdims"} or "a" not in given:
            return call  # numba says what it cannot take, at this line
        return cst.Call(cst.Attribute(cst.Name(f"{self.rt}_jit"), cst.Name(twin.__name__)), [
            cst.Arg(given["a"]), cst.Arg(given.get("axis", cst.Name("None"))),
            cst.Arg(given.get("keepdims", cst.Name("False")))])

    def leave_BinaryOperation(self, original, updated):
        if type(updated.operator) is cst.MatrixMultiply:
            return cst.Call(cst.Attribute(cst.Name(f"{self.rt}_jit"), cst.Name("matmul")),
                            [cst.Arg(_bare(updated.left)), cst.Arg(_bare(updated.right))])
        return updated

    def leave_Subscript(self, original, updated):
        if not m.matches(updated.value, self._rt("at")):
            if not self.targets and len(updated.slice) == 1 and m.matches(
                    updated.slice[0].slice, m.Index(value=m.Name())):  # x[k]: k may be a mask
                return self._jit("index", [updated.value, updated.slice[0].slice.value])
            return updated
        keys = [_key(e.slice, f"{self.rt}_jit") for e in updated.slice]
        return keys[0] if len(keys) == 1 else cst.Tuple([cst.Element(k) for k in keys])


class _NumpyLoops(cst.CSTTransformer):
    """``np.tanh(a)`` → ``rt_jit.tanh(a)``: numpy's vectorised loop for a large array (numba's
    calls libm per element, ~10x slower), numba's own for a number or a small array."""

    def __init__(self, rt: str, resolve):
        super().__init__()
        self.rt, self.resolve = rt, resolve

    def leave_Call(self, original, updated):
        from srcdiff.runtime.numba_twins import SIMD

        func = self.resolve(updated.func)
        name = getattr(func, "__name__", None)
        if isinstance(func, np.ufunc) and name in SIMD and getattr(np, name) is func and \
                len(updated.args) == 1 and updated.args[0].keyword is None:
            return updated.with_changes(func=cst.Attribute(cst.Name(f"{self.rt}_jit"), cst.Name(name)))
        return updated


def _key(index, rt_jit: str) -> cst.BaseExpression:
    """A key of ``rt.at[...]`` as the kernel's: ``1:3`` is ``rt_jit.slice(1, 3)`` (numba's
    builtin, by the twins' module: a variable of the user's named ``slice`` stays theirs)."""
    if type(index) is cst.Index:
        return index.value
    parts = [index.lower, index.upper, index.step]
    if parts[2] is None:  # slice(1, None): 1: (slice(1) would be :1)
        parts.pop()
        if parts[1] is None and parts[0] is None:
            parts.pop()
    args = [p if p is not None else cst.Name("None") for p in parts]
    return cst.Call(cst.Attribute(cst.Name(rt_jit), cst.Name("slice")), [cst.Arg(a) for a in args])
