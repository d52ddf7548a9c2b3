"""Where in the user's source a line of a kernel comes from, for errors.

The backward pass carries ``# adjoint of: <user line>  (line N)`` before each block; a
forward statement is placed at the block that computes its adjoint (``dpred`` for
``pred``, ``d_t2`` for ``_t2``), else at the function's ``def``.
"""

from __future__ import annotations

import re

from srcdiff.errors import LocatedError, SrcdiffError

__all__ = ["JitError", "located", "user_line"]

_ADJOINT = re.compile(r"#\s*adjoint of: (.*?)\s+\(line (\d+)\)\s*$")
_ASSIGN = re.compile(r"^\s*([A-Za-z_]\w*)\s*=")


class JitError(SrcdiffError):
    """``srcdiff.jit`` cannot compile a function (without a place in the user's source)."""


class JitLocatedError(JitError, LocatedError):
    """``srcdiff.jit`` cannot compile a line of the user's function: file, line and caret."""


def user_line(kernel_text: str, lineno: int) -> tuple[int, str] | None:
    """``(line, text)`` of the user's line that kernel line ``lineno`` (1-based) belongs to."""
    lines = kernel_text.splitlines()
    for k in range(min(lineno, len(lines)) - 1, -1, -1):
        hit = _ADJOINT.search(lines[k])
        if hit:
            return int(hit.group(2)), hit.group(1)
    target = _ASSIGN.match(lines[lineno - 1]) if 0 < lineno <= len(lines) else None
    if target:  # a forward statement: at its own line's block, or the one computing its adjoint
        name = target.group(1)
        renamed = re.fullmatch(r"(.+)_\d+", name)  # h_3: a version of the user's h
        for user in (name, renamed.group(1) if renamed else None):
            for line in lines if user else ():
                hit = _ADJOINT.search(line)
                if hit and re.match(rf"{re.escape(user)}\s*=", hit.group(1)):
                    return int(hit.group(2)), hit.group(1)
        adjoint = re.compile(rf"^\s*d{re.escape(name)}\s*=")
        for k, line in enumerate(lines):
            if adjoint.match(line):
                return user_line(kernel_text, k + 1)
    return None


def located(message: str, fn, kernel_text: str, lineno: int | None) -> JitError:
    """A ``JitLocatedError`` at the user's line of kernel line ``lineno``, else at ``fn``'s
    ``def``, or a plain ``JitError`` where ``fn`` has no source file."""
    code = getattr(fn, "__code__", None)
    where = user_line(kernel_text, lineno) if lineno else None
    if code is None:
        return JitError(message)
    filename = code.co_filename
    number, text = where if where else (code.co_firstlineno, None)
    if text is None:
        import linecache

        text = linecache.getline(filename, number) or f"def {fn.__name__}(...):"
    else:
        import linecache

        text = linecache.getline(filename, number) or text
    indent = len(text) - len(text.lstrip())
    return JitLocatedError(message, filename, number, indent, text.rstrip("\n"))
