"""What every pass is told about the function being differentiated (read-only)."""

from __future__ import annotations

import builtins
import linecache
import re
from dataclasses import dataclass, field

import libcst as cst

from .errors import LocatedError
from .source import FunctionSource

__all__ = ["Context", "MISSING", "line_marker", "parse_marker", "is_marker"]

MISSING = object()

_MARKER = re.compile(r"^# line (\d+): (.*)$")


def line_marker(file_line: int, text: str) -> cst.EmptyLine:
    """The comment that ties a statement to its line in the user's file."""
    return cst.EmptyLine(comment=cst.Comment(f"# line {file_line}: {text}"))


def is_marker(line: cst.EmptyLine) -> bool:
    return line.comment is not None and bool(_MARKER.match(line.comment.value))


def parse_marker(lines) -> tuple[int, str] | None:
    """``(file_line, text)`` from a statement's leading lines, if it carries a marker."""
    for line in lines:
        if line.comment is not None:
            match = _MARKER.match(line.comment.value)
            if match:
                return int(match.group(1)), match.group(2)
    return None


@dataclass(frozen=True)
class Context:
    """The function, what to differentiate it with respect to, and how to name things."""

    source: FunctionSource
    params: tuple[str, ...]
    wrt: tuple[str, ...]
    rt: str = "rt"
    options: frozenset = field(default_factory=frozenset)
    containers: frozenset = field(default_factory=frozenset)  # wrt params passed as pytrees
    dims: tuple = ()  # (param, symbolic shape) pairs the call's arrays are known to have (dims.py)

    @property
    def fn(self):
        return self.source.fn

    @property
    def name(self) -> str:
        return self.source.name or self.source.fn.__name__

    def lookup(self, name: str):
        """The object a free name of the function refers to: closure, then globals, then builtins."""
        if name == self.rt:  # generated code's own name for srcdiff.runtime
            import srcdiff.runtime

            return srcdiff.runtime
        for lifted, function in self.source.lifted:  # a nested def or lambda (nested.py)
            if lifted == name:
                return function
        code = self.fn.__code__
        if name in code.co_freevars and self.fn.__closure__:
            cell = self.fn.__closure__[code.co_freevars.index(name)]
            try:
                return cell.cell_contents
            except ValueError:
                return MISSING
        if name in self.fn.__globals__:
            return self.fn.__globals__[name]
        return getattr(builtins, name, MISSING)

    def error(self, cls, message: str, file_line: int, col: int | None = None, token: str = ""):
        """An error of type ``cls`` pointing at ``file_line`` of the user's file."""
        snippet_line = file_line - self.source.first_line + 1
        text = self.source.line_text(snippet_line)
        if not 1 <= snippet_line <= len(self.source.lines):  # a helper's line (inline stage)
            text = linecache.getline(self.source.filename, file_line).rstrip("\n")
        if col is None:
            found = text.find(token) if token else -1
            col = found if found >= 0 else len(text) - len(text.lstrip())
        return cls(message, self.source.filename, file_line, col, text)

    def located(self, message: str, file_line: int, token: str = "") -> LocatedError:
        return self.error(LocatedError, message, file_line, token=token)
