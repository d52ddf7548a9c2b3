"""Read a function's source and parse it with libcst.

The source is dedented and its decorators are stripped (the srcdiff decorator
itself and any other), so the tree holds one plain ``def``. Line numbers in the
tree count from the first line of that snippet; :attr:`FunctionSource.first_line`
maps them back to the user's file.
"""

from __future__ import annotations

import ast
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
    text: str | None = None  # the snippet, where its lines are the module's (no one-line def)
    one_line: int | None = None  # a one-line def or a lambda: the snippet line of every statement
    name: str = ""  # the name generated code uses (a lambda's: the name it is assigned to)
    lifted: tuple = ()  # (name, function) of the nested defs and lambdas lifted out (nested.py)

    @property
    def funcdef(self) -> cst.FunctionDef:
        return self.module.body[0]

    @cached_property
    def positions(self):
        """Where each node of :attr:`module` starts and ends, worked out once, when a message
        points at a node's line and column (statement lines: :meth:`line_of`)."""
        return MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)

    def positions_of(self, module: cst.Module):
        """:attr:`positions` when ``module`` is the parsed source itself, else computed."""
        if module is self.module:
            return self.positions
        return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)

    def line_of(self, module: cst.Module, node: cst.CSTNode) -> int:
        """The snippet line where ``node`` of ``module`` starts: looked up for the statements
        of the parsed source, else from libcst's positions (worked out only then)."""
        if module is self.module:
            line = self._statement_lines.get(id(node))
            if line is not None:
                return line
            return self.positions[node].start.line
        last = self.__dict__.get("_last_positions")  # one read of one pair: thread-safe
        if last is None or last[0] is not module:
            last = (module, self.positions_of(module))
            self.__dict__["_last_positions"] = last
        return last[1][node].start.line

    @cached_property
    def _statement_lines(self) -> dict[int, int]:
        """``id(statement) -> line`` for the statements and small statements of :attr:`module`,
        read off Python's own parse of the snippet, whose lines are the module's (else of the
        module's code): libcst's positions cost ~6 ms for a ten-line function, this ~0.3 ms."""
        found: dict[int, int] = {}
        try:
            tree = ast.parse(self.module.code if self.text is None else self.text)
        except SyntaxError:  # pragma: no cover - what libcst parsed, Python parses
            return found
        def_line = len(self.funcdef.leading_lines) + 1  # the blank lines kept for decorators
        if tree.body and type(tree.body[0]) is ast.FunctionDef and \
                tree.body[0].lineno == def_line and type(self.funcdef.body) is cst.IndentedBlock:
            _statement_lines(self.funcdef.body.body, tree.body[0].body, found)
        return found

    def file_line(self, snippet_line: int) -> int:
        """The line in the user's file: a one-line def's (or lambda's) statements all stand on
        its one line, whatever line the module made of it gives them."""
        if self.one_line is not None:
            snippet_line = self.one_line
        return self.first_line + snippet_line - 1

    def line_text(self, snippet_line: int) -> str:
        if 1 <= snippet_line <= len(self.lines):
            return self.lines[snippet_line - 1].rstrip("\n")
        return ""


# the compound statements whose line ``ast`` and libcst agree on, with their blocks (libcst,
# ast) below them; ``orelse`` is handled apart (an ``elif`` is an If in both)
_COMPOUND = {cst.If: ast.If, cst.For: ast.For, cst.While: ast.While, cst.With: ast.With}
# the small statements whose line ``ast`` gives
_SMALL = {cst.Assign: ast.Assign, cst.AnnAssign: ast.AnnAssign, cst.AugAssign: ast.AugAssign,
          cst.Expr: ast.Expr, cst.Return: ast.Return, cst.Pass: ast.Pass, cst.Break: ast.Break,
          cst.Continue: ast.Continue, cst.Assert: ast.Assert,
          cst.Raise: ast.Raise}


def _statement_lines(statements, parsed: list, found: dict) -> None:
    """Pairs the libcst ``statements`` of a block with the ``ast`` statements ``parsed`` of
    the same block and records their lines; stops at the first kind it does not know."""
    i = 0
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            smalls = parsed[i:i + len(stmt.body)]
            if len(smalls) != len(stmt.body) or any(
                    _SMALL.get(type(small)) is not type(node) for small, node in zip(stmt.body, smalls)):
                return
            found[id(stmt)] = smalls[0].lineno
            for small, node in zip(stmt.body, smalls):
                found[id(small)] = node.lineno
            i += len(stmt.body)
            continue
        node = parsed[i] if i < len(parsed) else None
        if node is None or _COMPOUND.get(type(stmt)) is not type(node) or \
                type(stmt.body) is not cst.IndentedBlock:
            return
        found[id(stmt)] = node.lineno
        _statement_lines(stmt.body.body, node.body, found)
        orelse = getattr(stmt, "orelse", None)
        if type(orelse) is cst.Else:
            if type(orelse.body) is cst.IndentedBlock:
                _statement_lines(orelse.body.body, node.orelse, found)
        elif orelse is not None:  # elif: one If in ast's orelse
            _statement_lines([orelse], node.orelse, found)
        i += 1


def get_source(fn) -> FunctionSource:
    """Parse ``fn``'s source; raise :class:`SourceUnavailableError` if there is none."""
    from .made import source_of
    from .nested import lift

    lifted = source_of(fn)
    if lifted is not None:  # a nested def or lambda of a differentiated function
        return lifted
    return lift(_read_source(fn))


def _read_source(fn) -> FunctionSource:
    name = getattr(fn, "__qualname__", repr(fn))
    if not inspect.isfunction(fn):
        raise SourceUnavailableError(
            f"srcdiff can only differentiate Python functions written with 'def'; got {fn!r}. "
            "For a builtin or C function, register an adjoint rule instead.")
    try:
        lines, first_line = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise SourceUnavailableError(
            f"the source of {name} is not available (was it defined by exec, eval or in an "
            "interactive session?); srcdiff reads a function's source, so define it in a .py "
            "file or a notebook cell.") from exc
    text = textwrap.dedent("".join(lines))
    if fn.__name__ == "<lambda>":
        return _lambda_source(fn, text, first_line)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:  # pragma: no cover - source that compiled always parses
        raise SourceUnavailableError(f"cannot parse the source of {name}: {exc}") from exc
    defs = [s for s in module.body if type(s) is cst.FunctionDef]
    if len(defs) != 1:
        raise SourceUnavailableError(f"could not isolate the definition of {name} in its source")
    funcdef = defs[0].with_changes(decorators=(), leading_lines=())
    same_lines = type(funcdef.body) is not cst.SimpleStatementSuite
    if not same_lines:  # def f(x): return x * 2
        funcdef = funcdef.with_changes(body=cst.IndentedBlock(
            [cst.SimpleStatementLine([small]) for small in funcdef.body.body]))
    # keep the decorator lines as blank lines so snippet line numbers stay file-relative
    def_line = re.search(r"^[ \t]*def\s", text, re.MULTILINE)
    n_decorator_lines = text[: def_line.start()].count("\n") if def_line else 0
    funcdef = funcdef.with_changes(
        leading_lines=[cst.EmptyLine()] * n_decorator_lines) if n_decorator_lines else funcdef
    module = cst.Module(body=[_spread_displays(funcdef)])
    return FunctionSource(fn, fn.__code__.co_filename, first_line, tuple(text.splitlines()),
                          module, text if same_lines else None,
                          None if same_lines else n_decorator_lines + 1, fn.__name__)


def _spread_displays(funcdef: cst.FunctionDef) -> cst.FunctionDef:
    """``f(*(a, b))`` → ``f(a, b)``, and ``f(*pair)`` → ``f(pair[0], pair[1])`` where ``pair``
    is bound once, to a tuple display (so it always holds that many values); any other
    ``*`` in a call is left for validate to refuse. The line keeps its number."""
    from .names import nodes

    bindings: dict[str, list] = {}
    params = funcdef.params
    for p in (*params.posonly_params, *params.params, *params.kwonly_params):
        bindings.setdefault(p.name.value, []).append(None)
    for node in nodes(funcdef.body):
        kind = type(node)
        if kind is cst.Assign and len(node.targets) == 1 and type(node.targets[0].target) is cst.Name:
            bindings.setdefault(node.targets[0].target.value, []).append(node.value)
        elif kind in (cst.Assign, cst.For, cst.CompFor, cst.AugAssign, cst.AnnAssign, cst.NamedExpr):
            for target in (node.targets if kind is cst.Assign else [node]):
                for n in nodes(target.target):
                    if type(n) is cst.Name:
                        bindings.setdefault(n.value, []).append(None)
    tuples = {name: len(values[0].elements) for name, values in bindings.items()
              if len(values) == 1 and type(values[0]) is cst.Tuple and
              all(type(e) is cst.Element for e in values[0].elements)}
    if not any(type(n) is cst.Arg and n.star == "*" for n in nodes(funcdef.body)):
        return funcdef
    return funcdef.visit(_Spread(tuples))


class _Spread(cst.CSTTransformer):
    """The ``*`` arguments :func:`_spread_displays` can spell out."""

    def __init__(self, tuples: dict[str, int]):
        self.tuples = tuples

    def leave_Arg(self, original, updated):
        value = updated.value
        if updated.star != "*":
            return updated
        if type(value) in (cst.Tuple, cst.List) and all(type(e) is cst.Element
                                                        for e in value.elements):
            items = [e.value for e in value.elements]
        elif type(value) is cst.Name and value.value in self.tuples:
            items = [cst.Subscript(value, [cst.SubscriptElement(cst.Index(cst.Integer(str(i))))])
                     for i in range(self.tuples[value.value])]
        else:
            return updated
        if not items:
            return cst.RemoveFromParent()
        args = [cst.Arg(item) for item in items]
        args[-1] = args[-1].with_changes(comma=updated.comma)
        return cst.FlattenSentinel(args)


def _lambda_source(fn, text: str, first_line: int) -> FunctionSource:
    """A lambda as the one-line ``def`` it stands for: ``lambda x: e`` → ``def f(x): return e``,
    named after the name it is assigned to. The lambda is told from others on its lines by
    its parameters and, where several share them, by its compiled code."""
    where = f"{fn.__code__.co_filename}, line {fn.__code__.co_firstlineno}"
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError:  # a lambda inside a statement that goes on over more lines
        raise SourceUnavailableError(
            f"srcdiff cannot isolate the lambda at {where} in its lines; write it as a 'def' "
            "function (or on a line of its own).") from None
    params = fn.__code__.co_varnames[:fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
    found = [n for n in _nodes(module) if type(n) is cst.Lambda and
             tuple(p.name.value for p in (*n.params.posonly_params, *n.params.params,
                                          *n.params.kwonly_params)) == params]
    if len(found) > 1:
        found = [n for n in found if _same_code(module.code_for_node(n), fn.__code__)]
    if len(found) != 1:
        raise SourceUnavailableError(
            f"srcdiff cannot tell which lambda on the line at {where} this is "
            f"({len(found) or 'none'} of the same form); write it as a 'def' function.")
    lam = found[0]
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    line = positions[lam].start.line
    name = _assigned_name(module, lam) or "lambda_"
    funcdef = cst.FunctionDef(
        name=cst.Name(name), params=lam.params.with_changes(),
        body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Return(lam.body)])]))
    return FunctionSource(fn, fn.__code__.co_filename, first_line, tuple(text.splitlines()),
                          cst.Module(body=[funcdef]), None, line, name)


def _nodes(node: cst.CSTNode):
    from .names import nodes  # (names imports nothing of this module; imported when needed)

    return nodes(node)


def _same_code(text: str, code) -> bool:
    """Whether the lambda ``text`` compiles to what ``code`` holds: its names, local names and
    constants (the bytecode itself depends on where it was compiled)."""
    try:
        compiled = compile(text, "<lambda>", "eval").co_consts
    except SyntaxError:  # pragma: no cover - what libcst parsed compiles
        return False
    inner = next((c for c in compiled if hasattr(c, "co_code")), None)
    return inner is not None and inner.co_names == code.co_names and \
        inner.co_varnames == code.co_varnames and inner.co_consts == code.co_consts


def _assigned_name(module: cst.Module, lam: cst.Lambda) -> str | None:
    """``loss`` for ``loss = lambda ...``: the generated code is named after it."""
    for node in _nodes(module):
        if type(node) is cst.Assign and node.value is lam and len(node.targets) == 1 and \
                type(node.targets[0].target) is cst.Name:
            return node.targets[0].target.value
    return None
