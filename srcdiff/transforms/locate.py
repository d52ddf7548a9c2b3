"""locate: tie every statement to its line in the user's file with a comment.

Invariant after this pass: each statement of the function body carries a
leading ``# line N: <text>`` comment, N being the line in the user's file.
Later passes keep these comments on the first statement of whatever the
statement becomes, and ``reverse`` turns them into ``# adjoint of:`` comments.

    def f(x):                      def f(x):
        y = np.sin(x)      →           # line 12: y = np.sin(x)
        return y * 2                   y = np.sin(x)
                                       # line 13: return y * 2
                                       return y * 2
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ..context import Context, line_marker

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    funcdef = module.body[0]
    body = []
    for stmt in funcdef.body.body:
        line = positions[stmt].start.line
        text = " ".join(module.code_for_node(stmt).split())
        if isinstance(stmt, cst.SimpleStatementLine):
            text = " ".join(module.code_for_node(stmt.with_changes(leading_lines=())).split())
        marker = line_marker(ctx.source.file_line(line), text)
        body.append(stmt.with_changes(leading_lines=[marker]))
    funcdef = funcdef.with_changes(body=funcdef.body.with_changes(body=body))
    return module.with_changes(body=[funcdef])
