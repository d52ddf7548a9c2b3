"""A helper given a nested function that reads local variables, made into a helper of its own.

``apply(lambda z: z * w, x)`` passes a function that carries ``w``; a value cannot carry it
to where srcdiff differentiates it, so the helper is specialized: its function parameter is
replaced by the lifted function (``nested.py``), and the captured variables become its first
parameters, passed at the call like any argument:

    def apply(fn, u):                    def apply_lambda_(w_1, u):    # made from apply's lines
        return fn(u) + u          →          return lambda_(w_1, u) + u

    apply(lambda z: z * w, x)     →      apply_lambda_(w, x)

The helper may only call its function parameter (``fn(u)``), never pass it on, store or
rebind it; otherwise the call is refused at its line.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import libcst as cst

from .made import make_functions, register
from .names import Namer, names_in, nodes

__all__ = ["specialize", "specialized_call", "why_not"]


def why_not(helper, param: str) -> str:
    """Why ``helper`` cannot be specialized for its parameter ``param`` ('' if it can)."""
    from .source import get_source

    try:
        funcdef = get_source(helper).funcdef
    except Exception as exc:  # noqa: BLE001 - any reason its source cannot be read
        return f"srcdiff cannot read {helper.__qualname__} ({exc})"
    called = {id(n.func) for n in nodes(funcdef.body) if type(n) is cst.Call}
    for n in nodes(funcdef.body):
        if type(n) is cst.Name and n.value == param and id(n) not in called:
            return (f"{helper.__qualname__}() uses its parameter '{param}' other than by calling "
                    "it (it passes it on, stores or rebinds it)")
    return ""


def specialize(helper, param: str, function, captured: tuple[str, ...], name: str):
    """``helper`` with ``param`` bound to the lifted ``function``, whose ``captured``
    variables come first: ``(the new function, its parameters' names)``."""
    from .source import get_source

    source = get_source(helper)
    funcdef = source.funcdef
    namer = Namer(names_in(source.module) | set(helper.__globals__) | set(source.fn.__code__.co_names))
    given = [namer.fresh(c) for c in captured]
    inner = namer.fresh(function.__name__)
    params = funcdef.params
    first = [cst.Param(cst.Name(c)) for c in given]
    keep = lambda ps: [p for p in ps if p.name.value != param]  # noqa: E731
    if params.posonly_params:
        params = params.with_changes(posonly_params=[*first, *keep(params.posonly_params)],
                                     params=keep(params.params))
    else:
        params = params.with_changes(params=[*first, *keep(params.params)])
    params = params.with_changes(kwonly_params=keep(params.kwonly_params))
    body = funcdef.body.visit(_Calls(param, inner, given))
    made = funcdef.with_changes(name=cst.Name(name), params=params, body=body)
    line = source.file_line(source.line_of(source.module, funcdef))
    new = make_functions(helper, [(made.with_changes(leading_lines=()), line)],
                         extra={inner: function})[0]
    new.__qualname__ = f"{helper.__qualname__}[{param}={function.__name__}]"
    register(new, replace(source, fn=new, text=None, name=name,
                          module=source.module.with_changes(body=[made]),
                          lifted=(*source.lifted, (inner, function))))
    return new


def specialized_call(original, updated, helper, param, captured, index, name):
    """The call of the specialized helper: the captured variables, then the arguments
    but the function, by position as far as the helper's parameters are given in order
    (a call through ``rt.call_vjp`` differentiates positional arguments only)."""
    signature = inspect.signature(helper)
    bound = signature.bind(*[a.value for a in original.args if a.keyword is None],
                           **{a.keyword.value: a.value for a in original.args if a.keyword})
    param_of = {id(v): p for p, v in bound.arguments.items()}
    given = {param_of[id(old.value)]: new.value
             for i, (old, new) in enumerate(zip(original.args, updated.args)) if i != index}
    positional = []
    for p in signature.parameters:
        if p == param:
            continue
        if p not in given:
            break
        positional.append(cst.Arg(given.pop(p)))
    keywords = [cst.Arg(v, keyword=cst.Name(k), equal=cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))
        for k, v in given.items()]
    return updated.with_changes(func=cst.Name(name), args=[
        *(cst.Arg(cst.Name(n)) for n in captured), *positional, *keywords])


class _Calls(cst.CSTTransformer):
    """``fn(u)`` → ``lambda_(w_1, u)``."""

    def __init__(self, param: str, inner: str, given):
        self.param, self.inner, self.given = param, inner, given

    def leave_Call(self, original, updated):
        if type(updated.func) is cst.Name and updated.func.value == self.param:
            return updated.with_changes(func=cst.Name(self.inner), args=[
                *(cst.Arg(cst.Name(g)) for g in self.given), *updated.args])
        return updated
