"""locate: tie every statement to its line in the user's file with a comment.

Invariant after this pass: each statement of the function body carries a
leading ``# line N: <text>`` comment, N being the line in the user's file.
A ``# srcdiff: checkpoint`` directive on a loop (the line above it, or the end of its
header line) follows the marker as its own comment, with the line (``directives.directive_line``),
for the ``checkpoint`` stage. Later passes keep these comments on the first statement of whatever the
statement becomes, and ``reverse`` turns them into ``# adjoint of:`` comments.

    def f(x):                      def f(x):
        y = np.sin(x)      →           # line 12: y = np.sin(x)
        return y * 2                   y = np.sin(x)
                                       # line 13: return y * 2
                                       return y * 2
"""

from __future__ import annotations

import libcst as cst

from ..context import Context, line_marker
from . import directives

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    return module.with_changes(body=[funcdef.with_changes(
        body=_mark_block(funcdef.body, module, ctx))])


def _mark_block(block: cst.IndentedBlock, module, ctx) -> cst.IndentedBlock:
    body = []
    for stmt in block.body:
        line = ctx.source.line_of(module, stmt)
        directive = directives.directive_of(stmt)
        if directives.in_header(stmt):  # moved to a line of its own
            stmt = stmt.with_changes(body=stmt.body.with_changes(header=cst.TrailingWhitespace()))
        if type(stmt) is cst.SimpleStatementLine:
            text = module.code_for_node(stmt.with_changes(leading_lines=()))
        else:  # a compound statement: its header line, and its own blocks marked inside
            text = module.code_for_node(stmt.with_changes(leading_lines=())).strip().splitlines()[0]
            stmt = _mark_compound(stmt, module, ctx)
        file_line = ctx.source.file_line(line)
        marker = line_marker(file_line, " ".join(text.split()))
        kept = [] if directive is None else [directives.directive_line(directive, file_line)]
        body.append(stmt.with_changes(leading_lines=[marker, *kept]))
    return block.with_changes(body=body)


def _mark_compound(stmt, module, ctx):
    stmt = stmt.with_changes(body=_mark_block(stmt.body, module, ctx))
    orelse = getattr(stmt, "orelse", None)
    if type(orelse) is cst.Else:
        stmt = stmt.with_changes(orelse=orelse.with_changes(
            body=_mark_block(orelse.body, module, ctx)))
    elif type(orelse) is cst.If:  # elif: its test line gets a marker of its own
        line = ctx.source.line_of(module, orelse)
        text = module.code_for_node(orelse).strip().splitlines()[0].replace("elif", "if", 1)
        marked = _mark_compound(orelse, module, ctx)
        stmt = stmt.with_changes(orelse=marked.with_changes(
            leading_lines=[line_marker(ctx.source.file_line(line), " ".join(text.split()))]))
    return stmt
