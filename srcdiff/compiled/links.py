"""Calls of the user's own functions in a kernel: each linked derivative split in two.

A generated derivative calls another function's derivative through a link
(``sig_vjp = rt.derivative_of(sig, ('z',))``) that returns the value and a pullback closure.
numba compiles no closure that outlives its function, so in a kernel each linked
derivative becomes two functions of the same file: ``sig_forward`` returns the value and
the residuals (the forward values its pullback reads, as a tuple), ``sig_backward`` takes
them and the output's adjoint. The caller keeps the residuals where it kept the pullback
(``_t3_pullback``, on a tape too) and calls the backward function with them.

Before::

    sig_vjp = rt.derivative_of(sig, ('z',))

    def f_vjp(x):
        _t1, _t1_pullback = sig_vjp(x)
        def f_pullback(d_out):
            dx = _t1_pullback(d_out)
            return dx
        return _t1, f_pullback

After (the caller; then the pullback is inlined as for any kernel)::

    def f_vjp(x):
        _t1, _t1_pullback = sig_forward(x)
        def f_pullback(d_out):
            dx = sig_backward(_t1_pullback, d_out)
            return dx
        return _t1, f_pullback

    def sig_forward(z):
        _t1 = -z
        ...
        return _out, (_t2, _t3)

    def sig_backward(_residuals, d_out):
        _t2, _t3 = _residuals
        ...
        return dz
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m

__all__ = ["Link", "links_of", "split", "calls_to_links"]


@dataclass
class Link:
    """A linked derivative: the user's function, its ``wrt``, the names of its two kernel
    functions, and the namespace its source reads."""

    fn: object
    wrt: tuple
    forward: str
    backward: str
    namespace: dict = field(default_factory=dict)


def links_of(module: cst.Module, rt: str) -> dict[str, tuple]:
    """``{link name: (called expression, wrt)}`` of the module's ``X = rt.derivative_of(f, wrt)``
    statements; other statements beside the one function are a ``ValueError``."""
    found = {}
    for stmt in module.body[1:]:
        if type(stmt) is cst.FunctionDef:
            continue
        call = m.Call(func=m.Attribute(value=m.Name(rt), attr=m.Name("derivative_of")))
        if not m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(
                targets=[m.AssignTarget(target=m.Name())], value=call)])):
            raise ValueError(module.code_for_node(stmt).strip())
        assign = stmt.body[0]
        args = assign.value.args
        wrt = ast.literal_eval(module.code_for_node(args[1].value))
        found[assign.targets[0].target.value] = (args[0].value, tuple(wrt))
    return found


def calls_to_links(fn: cst.FunctionDef, names: dict[str, Link]) -> cst.FunctionDef:
    """``fn`` calling each link's forward function, and its pullbacks' backward ones."""
    pullbacks: dict[str, Link] = {}
    for assign in m.findall(fn, m.Assign(value=m.Call(func=m.Name()))):
        link = names.get(assign.value.func.value)
        target = assign.targets[0].target
        if link and m.matches(target, m.Tuple(elements=[m.Element(), m.Element(m.Name())])):
            pullbacks[target.elements[1].value.value] = link
    return fn.visit(_Calls(names, pullbacks))


class _Calls(cst.CSTTransformer):
    def __init__(self, names, pullbacks):
        super().__init__()
        self.names, self.pullbacks = names, pullbacks

    def leave_Call(self, original, updated):
        if type(updated.func) is not cst.Name:
            return updated
        name = updated.func.value
        if name in self.names:
            return updated.with_changes(func=cst.Name(self.names[name].forward))
        if name in self.pullbacks:
            return updated.with_changes(func=cst.Name(self.pullbacks[name].backward),
                                        args=[cst.Arg(cst.Name(name)), *updated.args])
        return updated


def split(fn: cst.FunctionDef, link: Link) -> tuple[cst.FunctionDef, cst.FunctionDef]:
    """The forward and backward functions of the linked derivative ``fn`` (``f_vjp`` with a
    nested pullback returned beside the value)."""
    body = list(fn.body.body)
    nested = [i for i, s in enumerate(body) if type(s) is cst.FunctionDef]
    last = body[-1]
    if len(nested) != 1 or not m.matches(last, m.SimpleStatementLine(body=[m.Return(
            m.Tuple(elements=[m.Element(m.Name()), m.Element(m.Name())]))])):
        raise ValueError("a linked derivative that does not return its value and pullback")
    pullback = body[nested[0]]
    value = last.body[0].value.elements[0].value
    forward_body = body[:nested[0]] + body[nested[0] + 1:-1]
    params = [p.name.value for p in fn.params.params]
    residuals = _residuals(pullback, forward_body, params)
    kept = cst.Tuple([cst.Element(cst.Name(r)) for r in residuals] if len(residuals) != 1 else
                     [cst.Element(cst.Name(residuals[0]), comma=cst.Comma())])
    ret = cst.SimpleStatementLine([cst.Return(cst.Tuple([cst.Element(value), cst.Element(kept)]))])
    forward = fn.with_changes(name=cst.Name(link.forward),
                              body=fn.body.with_changes(body=[*forward_body, ret]))
    unpack = [] if not residuals else [cst.parse_statement(
        f"{', '.join(residuals)}{',' if len(residuals) == 1 else ''} = _residuals")]
    backward = pullback.with_changes(
        name=cst.Name(link.backward), leading_lines=[cst.EmptyLine()] * 2,
        params=pullback.params.with_changes(params=[cst.Param(cst.Name("_residuals")),
                                                    *pullback.params.params]),
        body=pullback.body.with_changes(body=[*unpack, *pullback.body.body]))
    return forward, backward


def _residuals(pullback: cst.FunctionDef, forward: list, params: list) -> list[str]:
    """The names the pullback reads from its enclosing function (Python's own rule: read,
    never assigned in the pullback), in the order it first reads them."""
    tree = ast.parse(cst.Module(body=[pullback]).code)
    inner = tree.body[0]
    stored = {a.arg for a in inner.args.args}
    loaded: list[str] = []
    for node in ast.walk(inner):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                stored.add(node.id)
            elif node.id not in loaded:
                loaded.append(node.id)
    outer = set(params)
    for node in ast.walk(ast.parse(cst.Module(body=forward).code)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            outer.add(node.id)
    return [n for n in loaded if n not in stored and n in outer]


def link_all(module: cst.Module, rt: str, resolve, derive) -> tuple[dict, list]:
    """The links of ``module`` (``{link name: Link}``) and the kernel functions of every
    derivative they reach, helpers of helpers included: ``[(FunctionDef, resolve, Link)]``.
    ``derive(fn, wrt)`` gives ``(derivative source, resolve, namespace)`` of a user function;
    a ``ValueError`` says what cannot be linked (recursion, a helper numba cannot reach)."""
    done: dict = {}
    functions: list = []
    taken: set = set()

    def visit(module, rt, resolve, stack):
        names = {}
        for var, (expr, wrt) in links_of(module, rt).items():
            fn = resolve(expr)
            if fn is None:
                raise ValueError(f"the function {cst.Module(body=[]).code_for_node(expr)} "
                                 "is not found in its module")
            key = (fn, wrt)
            if key in stack:
                raise ValueError(f"{fn.__qualname__} calls itself (recursion), which a compiled "
                                 "kernel cannot")
            link = done.get(key)
            if link is None:
                base, k = fn.__name__, 1
                while base in taken:
                    k += 1
                    base = f"{fn.__name__}_{k}"
                taken.add(base)
                link = done[key] = Link(fn, wrt, f"{base}_forward", f"{base}_backward")
                source, inner_resolve, namespace = derive(fn, wrt)
                inner = cst.parse_module(source)
                inner_rt = _rt_name(inner)
                if inner_rt != rt:
                    raise ValueError(f"the derivative of {fn.__qualname__} names the runtime "
                                     f"{inner_rt}, its caller's {rt}")
                inner_names = visit(inner, inner_rt, inner_resolve, (*stack, key))
                vjp = next(s for s in inner.body if type(s) is cst.FunctionDef)
                forward, backward = split(calls_to_links(vjp, inner_names), link)
                link.namespace = namespace
                functions.extend([(forward, inner_resolve, link), (backward, inner_resolve, link)])
            names[var] = link
        return names

    return visit(module, rt, resolve, ()), functions


def _rt_name(module: cst.Module) -> str:
    first = module.body[0]
    alias = first.body[0].names[0]
    return alias.asname.name.value if alias.asname else alias.name.value


def free_names(fn: cst.FunctionDef) -> list[str]:
    """The names ``fn`` reads that it neither receives nor assigns."""
    return names_read(ast.parse(cst.Module(body=[fn.with_changes(leading_lines=[])]).code).body[0])


def names_read(fn: ast.FunctionDef) -> list[str]:
    """The names ``fn`` reads that it neither receives nor assigns, in order of first read
    (its own name too, where it calls itself; loader.free_names drops the kernel's defs)."""
    stored, loaded = {a.arg for a in fn.args.args}, []
    for node in ast.walk(fn):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                stored.add(node.id)
            elif node.id not in loaded:
                loaded.append(node.id)
    return [n for n in loaded if n not in stored]
