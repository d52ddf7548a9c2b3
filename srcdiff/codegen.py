"""Turn the generated module into text and then into a live function.

The text is a standalone module (``from srcdiff import runtime as rt`` and one
``def``). To run it, the ``def`` is compiled inside a factory whose parameters
are ``rt`` and the user function's free variables, and rebuilt over the user's
own globals and closure cells: the derivative sees the user's module as it is
when it runs, and defines nothing in it. The text is registered in
``linecache`` so tracebacks show generated lines.
"""

from __future__ import annotations

import ast
import itertools
import linecache
import sys
import types

import libcst as cst

import srcdiff.runtime as runtime

from .context import Context

__all__ = ["module_text", "load"]

_counter = itertools.count(1)


def module_text(module: cst.Module, ctx: Context) -> str:
    from .nested import describe

    header = f"from srcdiff import runtime as {ctx.rt}\n\n\n"
    return header + describe(ctx.source) + module.code


def load(text: str, ctx: Context):
    """The generated ``def`` in ``text`` as a function over the user's globals and closure."""
    filename = f"<srcdiff {ctx.name} #{next(_counter)}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    tree = ast.parse(text, filename)
    funcdef = next(node for node in tree.body if isinstance(node, ast.FunctionDef))
    links = [node for node in tree.body if isinstance(node, ast.Assign)]
    lifted = dict(ctx.source.lifted)  # nested defs and lambdas, lifted (srcdiff/nested.py)
    freevars = tuple(v for v in ctx.fn.__code__.co_freevars if v not in lifted)
    params = [ast.arg(ctx.rt), *map(ast.arg, freevars), *map(ast.arg, lifted)]
    result = ast.Return(ast.Name(funcdef.name, ast.Load()))
    factory = ast.FunctionDef(
        name="__srcdiff_factory__",
        args=ast.arguments(posonlyargs=[], args=params, kwonlyargs=[], kw_defaults=[],
                           defaults=[]),
        body=[*links, funcdef, result],
        decorator_list=[], returns=None,
        **({"type_params": []} if sys.version_info >= (3, 12) else {}),
    )
    wrapper = ast.Module(body=[factory], type_ignores=[])
    # the new nodes stand where the def does (what ast.fix_missing_locations would give
    # them, without its walk of the whole parsed tree, ~0.8 ms for a small MLP's derivative)
    for node in (factory, *params, result, result.value):
        ast.copy_location(node, funcdef)
    code = compile(wrapper, filename, "exec")
    factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    factory = types.FunctionType(factory_code, ctx.fn.__globals__)
    user_cells = dict(zip(freevars, ctx.fn.__closure__ or ()))
    built = factory(runtime, *(_contents(user_cells[name]) for name in freevars),
                    *lifted.values())
    # the user's closure cells themselves, not a snapshot, so later rebinding is seen
    cells = tuple(user_cells.get(name, cell)
                  for name, cell in zip(built.__code__.co_freevars, built.__closure__ or ()))
    return types.FunctionType(built.__code__, ctx.fn.__globals__, funcdef.name, None, cells)


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:  # not yet bound (a closure variable assigned later): replaced below
        return None
