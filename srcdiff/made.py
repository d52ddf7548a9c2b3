"""Functions srcdiff makes from the user's source, and the source it reads them from.

A nested ``def`` or lambda lifted out of a differentiated function (``nested.py``) and the
twin of a function that takes ``*args`` (``total(*xs)`` → ``total(xs)``, :func:`packed`) are
real functions, compiled at their lines of the user's file over its globals and closure
(:func:`make_functions`); :func:`source_of` gives the source srcdiff differentiates for
each, which ``source.get_source`` reads before the file.
"""

from __future__ import annotations

import ast
import sys
import types
import weakref
from dataclasses import replace

import libcst as cst

__all__ = ["make_functions", "packed", "register", "source_of"]

_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # made fn -> its source
_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # fn(*xs) -> fn(xs)


def register(fn, source) -> None:
    """``source`` (a :class:`~srcdiff.source.FunctionSource`) is what srcdiff reads for ``fn``."""
    _SOURCES[fn] = source


def source_of(fn):
    """The :class:`~srcdiff.source.FunctionSource` of a function srcdiff made, or None."""
    return _SOURCES.get(fn) if isinstance(fn, types.FunctionType) else None


def packed(fn):
    """``fn``'s twin that takes its ``*args`` as one tuple: ``def total(*xs)`` → ``def
    total(xs)``, same body, same lines of the user's file (``rt.call_vjp`` differentiates a
    call ``total(x, y)`` as ``total((x, y))``, the tuple a container like any other)."""
    twin = _PACKED.get(fn)
    if twin is not None:
        return twin
    from .source import get_source

    source = get_source(fn)
    params = source.funcdef.params
    star = params.star_arg
    funcdef = source.funcdef.with_changes(params=params.with_changes(
        params=[*params.params, cst.Param(star.name, annotation=star.annotation)],
        star_arg=cst.MaybeSentinel.DEFAULT if not params.kwonly_params else cst.ParamStar()))
    line = source.file_line(source.line_of(source.module, source.funcdef))
    twin = make_functions(fn, [(funcdef.with_changes(leading_lines=()), line)])[0]
    twin.__qualname__ = fn.__qualname__
    register(twin, replace(source, fn=twin, text=None,
                           module=source.module.with_changes(body=[funcdef])))
    _PACKED[fn] = twin
    return twin


def make_functions(fn, defs, extra=None) -> list:
    """The functions ``defs`` (``(FunctionDef, file line)`` pairs) made in one factory over
    ``fn``'s globals and closure cells, so they see each other and ``fn``'s free variables
    (and the names of ``extra``, with its values); compiled at their lines of ``fn``'s file,
    so tracebacks point there."""
    extra = extra or {}
    freevars = tuple(v for v in fn.__code__.co_freevars if v not in extra)
    parsed = []
    for funcdef, line in defs:
        tree = ast.parse(cst.Module(body=[funcdef]).code)
        ast.increment_lineno(tree, line - 1)
        parsed.append(tree.body[0])
    result = ast.Return(ast.Tuple([ast.Name(d.name, ast.Load()) for d in parsed], ast.Load()))
    factory = ast.FunctionDef(
        name="__srcdiff_lifted__", args=ast.arguments(
            posonlyargs=[], args=[ast.arg(v) for v in (*freevars, *extra)], kwonlyargs=[],
            kw_defaults=[], defaults=[]),
        body=[*parsed, result], decorator_list=[], returns=None,
        **({"type_params": []} if sys.version_info >= (3, 12) else {}))
    ast.copy_location(factory, parsed[0])
    code = compile(ast.fix_missing_locations(ast.Module([factory], [])),
                   fn.__code__.co_filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    cells = {v: c for v, c in zip(fn.__code__.co_freevars, fn.__closure__ or ()) if v not in extra}
    built = types.FunctionType(factory_code, fn.__globals__)(
        *(_contents(cells[v]) for v in freevars), *extra.values())
    functions = []
    for made in built:
        closure = tuple(cells.get(v, cell) for v, cell in
                        zip(made.__code__.co_freevars, made.__closure__ or ()))
        function = types.FunctionType(made.__code__, fn.__globals__, made.__name__,
                                      made.__defaults__, closure)
        function.__kwdefaults__ = made.__kwdefaults__
        function.__module__ = fn.__module__
        functions.append(function)
    return functions


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:  # not bound yet
        return None
