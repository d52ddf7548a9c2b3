"""The ``# srcdiff: checkpoint`` directive: how a comment on a loop reaches the compiler.

``locate`` passes the directive on below the loop's line marker, tied to its line
(:func:`directive_line`); the ``checkpoint`` stage reads it back there (:func:`carried_line`)
and checks it against the user's own source (:func:`directives`), so that a directive is
followed or refused at its line, never dropped.

    # srcdiff: checkpoint every=4          directive_of(loop) == "# srcdiff: checkpoint every=4"
    for t in range(n):                     directives(ctx) == {<file line of the for>: 4}
"""

from __future__ import annotations

import re

import libcst as cst

from ..analysis.values import walk
from ..context import Context

__all__ = ["directive_of", "in_header", "directive_line", "carried_line", "directives", "is_range"]

_DIRECTIVE = re.compile(r"#\s*srcdiff\s*:\s*checkpoint\b")
_FORM = re.compile(r"#\s*srcdiff\s*:\s*checkpoint(?:\s+every\s*=\s*(\d+))?\s*$")
CARRIED = re.compile(r"^#\s*srcdiff\s*:\s*checkpoint\b.*\(line (\d+)\)$")
_HOW = "write '# srcdiff: checkpoint' or '# srcdiff: checkpoint every=K' (K a whole number > 0)"


def directive_of(stmt: cst.CSTNode) -> str | None:
    """The ``# srcdiff: checkpoint…`` comment above ``stmt`` or at the end of its first line."""
    comments = [line.comment for line in getattr(stmt, "leading_lines", ())]
    block = getattr(stmt, "body", None)
    comments.append(getattr(getattr(block, "header", None), "comment", None))
    comments.append(getattr(getattr(stmt, "trailing_whitespace", None), "comment", None))
    found = [c.value.strip() for c in comments if c is not None and _DIRECTIVE.match(c.value)]
    return found[0] if found else None


def in_header(stmt: cst.CSTNode) -> bool:
    """Whether ``stmt``'s directive ends its header line (``for t in range(n):  # srcdiff: …``)."""
    comment = getattr(getattr(getattr(stmt, "body", None), "header", None), "comment", None)
    return comment is not None and bool(_DIRECTIVE.match(comment.value))


def directive_line(text: str, file_line: int) -> cst.EmptyLine:
    """The directive as ``locate`` passes it on, tied to the loop's line."""
    return cst.EmptyLine(comment=cst.Comment(f"{text}  (line {file_line})"))


def carried_line(stmt) -> int | None:
    """The loop line of the directive ``locate`` passed on in ``stmt``'s comments, if any."""
    for line in getattr(stmt, "leading_lines", ()):
        match = line.comment is not None and CARRIED.match(line.comment.value)
        if match:
            return int(match.group(1))
    return None


def directives(ctx: Context) -> dict[int, int | None]:
    """``file line -> K`` (None: ⌈√n⌉) of each loop the user marked; a located error for a
    directive srcdiff cannot follow."""
    found: dict[int, int | None] = {}
    source = ctx.source

    def scan(statements, where: str | None):
        for stmt in statements:
            text = directive_of(stmt)
            if text is not None:
                line = source.file_line(source.line_of(source.module, stmt))
                found[line] = _every(text, stmt, where, line, ctx)
            loop = type(stmt) in (cst.For, cst.While)
            for i, block in enumerate(_blocks(stmt)):
                scan(block, "inside another loop" if loop and i == 0 else
                     "in a loop's 'else'" if loop else
                     where or f"inside {_PLACES.get(type(stmt), 'a block')}")

    scan(source.funcdef.body.body, None)
    return found


_PLACES = {cst.If: "an 'if'", cst.With: "a 'with' block"}


def _blocks(stmt) -> list:
    """The statement lists of ``stmt``'s blocks: its body, an ``elif``'s, an ``else``."""
    blocks, node = [], stmt
    while node is not None and isinstance(getattr(node, "body", None), cst.IndentedBlock):
        blocks.append(node.body.body)
        node = getattr(node, "orelse", None)
    return blocks


def _every(text: str, stmt, where, line: int, ctx: Context) -> int | None:
    form = _FORM.match(text)
    if form is None or form.group(1) is not None and int(form.group(1)) == 0:
        raise ctx.located(f"srcdiff does not understand the directive '{text}': {_HOW}.", line)
    if type(stmt) is cst.While:
        raise ctx.located("srcdiff checkpoints 'for … in range(…)' loops only, not 'while' loops "
                          "(their number of iterations is known only at the end); write "
                          "'for t in range(max_steps):' with an 'if' that stops the update, or "
                          "drop the directive.", line, token="while")
    if type(stmt) is not cst.For:
        raise ctx.located("a '# srcdiff: checkpoint' directive belongs on the line above a "
                          "'for … in range(…)' loop (or at the end of its header line); move it "
                          "there.", line)
    if not is_range(stmt.iter) or ctx.lookup("range") is not range:
        raise ctx.located("srcdiff checkpoints 'for … in range(…)' loops only; loop over the "
                          "indices instead ('for t in range(len(xs)): x = xs[t]').", line,
                          token="for")
    if where is not None:
        raise ctx.located(f"srcdiff cannot checkpoint a loop {where} yet; checkpoint a loop at "
                          "the top of the function, or move this one into a helper function "
                          "(its directive is followed there).", line, token="for")
    if stmt.orelse is not None or any(
            type(s) is cst.SimpleStatementLine and
            any(type(small) in (cst.Break, cst.Continue, cst.Return) for small in s.body)
            for s in walk(stmt.body.body)):
        raise ctx.located("srcdiff cannot checkpoint a loop with 'break', 'continue', "
                          "'return' or 'else' yet; drop the directive or the jump.", line,
                          token="for")
    return None if form.group(1) is None else int(form.group(1))


def is_range(node) -> bool:
    """Whether ``node`` is a call ``range(…)``."""
    return type(node) is cst.Call and type(node.func) is cst.Name and node.func.value == "range"
