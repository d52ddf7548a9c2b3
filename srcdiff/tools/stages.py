"""The pipeline run for the tools: on a function's source or on a variant with the same lines,
stopped after any stage, with each statement's line in the user's file.

``check`` compiles variants of the source (a refused statement made harmless, every line
where it was) to find the next problem; ``explain`` stops after ``rename`` to read the
activity analysis that ``reverse`` would use.

    source, ctx = prepare(loss, ("w",))
    module = run(ctx, until="rename")       # the input of reverse
    for stmt, line in statements(module.body[0]):   # (statement, its line in the file)
        ...
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from .. import codegen
from ..context import Context, parse_marker
from ..names import names_in
from ..pipeline import PIPELINE, parameters
from ..source import FunctionSource, get_source
from ..transforms import seed

__all__ = ["prepare", "run", "module_text", "statements", "with_module"]


def prepare(fn, wrt: tuple[str, ...], containers: tuple[str, ...] = (),
            gradient: bool = False, source: FunctionSource | None = None, has_aux: bool = False):
    """``(source, ctx)`` as ``pipeline.compile_derivative`` makes them."""
    source = source or get_source(fn)
    names = names_in(source.module) | set(fn.__code__.co_names)
    rt = "rt"
    while rt in names:
        rt += "_"
    options = frozenset({"has_aux"} if has_aux else {seed.GRADIENT} if gradient else ())
    return source, Context(source=source, params=parameters(fn), wrt=tuple(wrt), rt=rt,
                           options=options, containers=frozenset(containers))


def with_module(source: FunctionSource, module: cst.Module) -> FunctionSource:
    """``source`` holding ``module``, a variant of its module whose statements keep their lines."""
    return dataclasses.replace(source, module=module, text=None)


def run(ctx: Context, until: str | None = None) -> cst.Module:
    """The module after the stage labelled ``until`` (after the last one by default)."""
    module = ctx.source.module
    for label, stage in PIPELINE:
        module = stage(module, ctx)
        if label == until:
            break
    return module


def module_text(module: cst.Module, ctx: Context) -> str:
    return codegen.module_text(module, ctx)


def statements(block, line: int = 0):
    """``(statement, line)`` for every statement of ``block`` (a function or a compound
    statement) and of the blocks inside it, in order: the line of the ``# line N:`` marker
    that the statement, or the last statement before it, carries."""
    for stmt in block.body.body:
        found = parse_marker(stmt.leading_lines)
        line = found[0] if found else line
        yield stmt, line
        if type(stmt) in (cst.If, cst.For, cst.While):
            yield from statements(stmt, line)
            orelse = stmt.orelse
            while type(orelse) is cst.If:  # elif
                found = parse_marker(orelse.leading_lines)
                yield from statements(orelse, found[0] if found else line)
                orelse = orelse.orelse
            if type(orelse) is cst.Else:
                yield from statements(orelse, line)
