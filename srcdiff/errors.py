"""srcdiff's errors: every one derives from :class:`SrcdiffError`."""

from __future__ import annotations

__all__ = [
    "SrcdiffError",
    "SrcdiffSyntaxError",
    "NotDifferentiableError",
    "SourceUnavailableError",
    "InPlaceError",
    "GradientTypeError",
]


class SrcdiffError(Exception):
    """Base of every error srcdiff raises."""


class SrcdiffSyntaxError(SrcdiffError, SyntaxError):
    """Syntax srcdiff does not support, with the file, line, column and line text."""

    def __init__(self, message: str, filename: str, lineno: int, col: int, text: str):
        SyntaxError.__init__(self, message, (filename, lineno, col + 1, text))

    def __str__(self) -> str:
        caret = " " * (self.offset - 1 - (len(self.text) - len(self.text.lstrip()))) + "^"
        return (f"{self.msg}\n  File \"{self.filename}\", line {self.lineno}\n"
                f"    {self.text.strip()}\n    {caret}")


class LocatedError(SrcdiffError):
    """An error about a place in the user's source: message, then file, line and caret."""

    def __init__(self, message: str, filename: str, lineno: int, col: int, text: str):
        self.msg, self.filename, self.lineno, self.col, self.text = message, filename, lineno, col, text
        stripped = text.strip()
        indent = len(text) - len(text.lstrip())
        caret = " " * max(col - indent, 0) + "^"
        super().__init__(f"{message}\n  File \"{filename}\", line {lineno}\n    {stripped}\n    {caret}")


class NotDifferentiableError(LocatedError):
    """A value that needs a gradient flows into something srcdiff cannot differentiate."""


class InPlaceError(LocatedError):
    """The function changes an argument (or an alias of one) in place."""


class SourceUnavailableError(SrcdiffError):
    """The function's source cannot be read (a builtin, or defined by exec or in a REPL)."""


class GradientTypeError(SrcdiffError, TypeError):
    """An argument or output has a type srcdiff cannot differentiate (integers, non-scalars for grad)."""
