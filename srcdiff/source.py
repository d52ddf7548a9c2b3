"""Read a function's source and parse it with libcst.

The source is dedented and its decorators are stripped (the srcdiff decorator
itself and any other), so the tree holds one plain ``def``. Line numbers in the
tree count from the first line of that snippet; :attr:`FunctionSource.first_line`
maps them back to the user's file.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from dataclasses import dataclass
from functools import cached_property

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from .errors import SourceUnavailableError

__all__ = ["FunctionSource", "get_source"]


@dataclass(frozen=True)
class FunctionSource:
    """The parsed source of one user function and where it came from."""

    fn: object
    filename: str
    first_line: int  # line of the snippet's first line in the user's file
    lines: tuple[str, ...]  # the snippet's lines, dedented
    module: cst.Module  # a module holding exactly one FunctionDef, decorators removed

    @property
    def funcdef(self) -> cst.FunctionDef:
        return self.module.body[0]

    @cached_property
    def positions(self):
        """Where each node of :attr:`module` starts and ends, worked out once for the passes
        that point at the user's lines (validate, locate)."""
        return MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)

    def positions_of(self, module: cst.Module):
        """:attr:`positions` when ``module`` is the parsed source itself, else computed."""
        if module is self.module:
            return self.positions
        return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)

    def file_line(self, snippet_line: int) -> int:
        return self.first_line + snippet_line - 1

    def line_text(self, snippet_line: int) -> str:
        if 1 <= snippet_line <= len(self.lines):
            return self.lines[snippet_line - 1].rstrip("\n")
        return ""


def get_source(fn) -> FunctionSource:
    """Parse ``fn``'s source; raise :class:`SourceUnavailableError` if there is none."""
    name = getattr(fn, "__qualname__", repr(fn))
    if not inspect.isfunction(fn):
        raise SourceUnavailableError(
            f"srcdiff can only differentiate Python functions written with 'def'; got {fn!r}. "
            "For a builtin or C function, register an adjoint rule instead.")
    if fn.__name__ == "<lambda>":
        raise SourceUnavailableError(
            f"srcdiff cannot differentiate a lambda ({fn.__code__.co_filename}, line "
            f"{fn.__code__.co_firstlineno}); write it as a 'def' function.")
    try:
        lines, first_line = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise SourceUnavailableError(
            f"the source of {name} is not available (was it defined by exec, eval or in an "
            "interactive session?); srcdiff reads a function's source, so define it in a .py "
            "file.") from exc
    text = textwrap.dedent("".join(lines))
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:  # pragma: no cover - source that compiled always parses
        raise SourceUnavailableError(f"cannot parse the source of {name}: {exc}") from exc
    defs = [s for s in module.body if isinstance(s, cst.FunctionDef)]
    if len(defs) != 1:
        raise SourceUnavailableError(f"could not isolate the definition of {name} in its source")
    funcdef = defs[0].with_changes(decorators=(), leading_lines=())
    if isinstance(funcdef.body, cst.SimpleStatementSuite):  # def f(x): return x * 2
        funcdef = funcdef.with_changes(body=cst.IndentedBlock(
            [cst.SimpleStatementLine([small]) for small in funcdef.body.body]))
    # keep the decorator lines as blank lines so snippet line numbers stay file-relative
    def_line = re.search(r"^[ \t]*def\s", text, re.MULTILINE)
    n_decorator_lines = text[: def_line.start()].count("\n") if def_line else 0
    funcdef = funcdef.with_changes(
        leading_lines=[cst.EmptyLine()] * n_decorator_lines) if n_decorator_lines else funcdef
    module = cst.Module(body=[funcdef])
    return FunctionSource(fn, fn.__code__.co_filename, first_line,
                          tuple(text.splitlines()), module)
