"""inline: a helper that returns one expression is written where it is called.

A call of the user's own function, ``s = sigmoid(z)``, is differentiated as a function of its
own: the call runs its derivative's forward pass and keeps a pullback closure, a step of a
loop at a time (an LSTM's three gates: six calls and three closures a step). Most such
helpers are one expression (an activation, a layer: ``return 1.0 / (1.0 + np.exp(-z))``);
written in place, the caller's stages see the expression (the ``sigmoid`` stage, the loop
passes) and the adjoint is a few lines of the caller's:

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    _t7 = sigmoid(zf)         →     _t8 = -zf                 (then: _t7 = rt.sigmoid(zf))
                                    _t9 = np.exp(_t8)
                                    _t10 = 1.0 + _t9
                                    _t7 = 1.0 / _t10

After ``normalize`` (a call's arguments are atoms), a line ``t = helper(a, ...)`` is
rewritten where

- ``helper`` is a user function (``analysis.calls.is_user_function``): no closure, no
  ``*args``/``**kwargs``/keyword-only parameters, no decorator, defaults only literals
  (``slope=0.01``, ``axis=None``); the call gives each parameter one argument, by position
  or by name, or leaves it its default;
- its body is ``return <expression>`` (after a docstring), not a tuple, the expression made of its
  parameters, other names, numbers and strings, arithmetic, attributes, calls, subscripts
  with slices and tuples: nothing that binds a name or runs code later (no lambda,
  comprehension, walrus, conditional expression);
- every other name in it means the same object here as in the helper's module (``np`` the
  same module, a global the same object) and is not a local variable of the function.

The helper is a module-level function of the function's own module and file (not a nested
``def``, which ``nested.py`` lifts): a global it reads is the one the inlined line reads, now
and after any rebinding. The expression, its parameters replaced by the call's atoms (names
and literals, which read the same value wherever they stand), takes the call's place, under
the helper's line marker: an error in it, and the adjoint block's comment, name the helper's
``return`` line, as when it was called; the next line gets the caller's marker back.
The new line is normalized as ``normalize`` writes every line (``statement_normalizer``),
and so on for helpers the expression calls (three levels at most). Anything else stays a
call.
"""

from __future__ import annotations

import builtins
import inspect

import libcst as cst

from ..analysis.calls import is_user_function
from ..context import MISSING, Context, is_marker, line_marker
from ..names import nodes, with_blocks
from ..source import get_source
from . import normalize

__all__ = ["rewrite"]

_DEPTH = 3  # helpers calling helpers: inlined this many levels deep at most

# the expression nodes an inlined body may hold (with their punctuation and whitespace)
_ALLOWED = (cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.BinaryOperation,
            cst.UnaryOperation, cst.Attribute, cst.Call, cst.Arg, cst.Subscript,
            cst.SubscriptElement, cst.Index, cst.Slice, cst.Tuple, cst.Element, cst.Ellipsis,
            cst.Comparison, cst.ComparisonTarget, cst.BooleanOperation)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    for _ in range(_DEPTH):
        funcdef = module.body[0]
        inliner = _Inline(ctx, normalize.local_variables(funcdef),
                          normalize.statement_normalizer(module, ctx))
        body = inliner.block(list(funcdef.body.body), None)
        if not inliner.changed:
            return module
        module = module.with_changes(body=[funcdef.with_changes(
            body=funcdef.body.with_changes(body=body))])
    return module


class _Inline:
    def __init__(self, ctx: Context, local: frozenset, normalized):
        self.ctx, self.local, self.normalized, self.changed = ctx, local, normalized, False
        self.lifted = {name for name, _ in ctx.source.lifted}  # nested defs (nested.py)
        self.bodies: dict = {}  # helper -> (parameter names, expression, marker), or None

    def block(self, statements: list, marker) -> list:
        """``statements`` with their helper calls inlined; ``marker``: the line marker in force
        above them. An inlined line carries the helper's marker (its errors and its adjoint's
        comment are the helper's line, as when it was called); the caller's goes on the next
        line that has none."""
        out, restore = [], None
        for stmt in statements:
            own = next((line for line in stmt.leading_lines if is_marker(line)), None)
            marker = own or marker
            if restore is not None and own is None:
                stmt = stmt.with_changes(leading_lines=[*stmt.leading_lines, restore])
            restore = None
            if type(stmt) in (cst.If, cst.For, cst.While):
                stmt = with_blocks(stmt, lambda b: b.with_changes(body=self.block(list(b.body), marker)))
            elif type(stmt) is cst.SimpleStatementLine:
                inlined = self._inlined(stmt)
                if inlined is not None:
                    stmt, helper_marker = inlined
                    kept = [line for line in stmt.leading_lines if not is_marker(line)]
                    lines = self.normalized(stmt.with_changes(leading_lines=[*kept, helper_marker]))
                    out += lines[:-1]  # (normalize keeps the marker on the first line)
                    stmt, restore = lines[-1], marker
            out.append(stmt)
        return out

    def _inlined(self, stmt):
        """``(the line with the helper's expression, the helper's marker)``, else None."""
        if len(stmt.body) != 1 or type(stmt.body[0]) is not cst.Assign:
            return None
        assign = stmt.body[0]
        call = assign.value
        if not (type(call) is cst.Call and type(call.func) is cst.Name) or \
                call.func.value in self.local or call.func.value in self.lifted:
            return None
        fn = self.ctx.lookup(call.func.value)
        if fn is MISSING or not is_user_function(fn):
            return None
        body = self._body(fn)
        if body is None:
            return None
        params, expression, marker, defaults = body
        given = _arguments(call, params, defaults)
        if given is None:
            return None
        self.changed = True
        value = expression.visit(_Substituted(given))
        return stmt.with_changes(body=[assign.with_changes(value=value)]), marker

    def _body(self, fn):
        if fn not in self.bodies:
            self.bodies[fn] = self._read(fn)
        return self.bodies[fn]

    def _read(self, fn):
        """``(parameters, expression, marker)`` of a helper this pass may inline, else None."""
        code = fn.__code__
        if fn.__closure__ or fn.__kwdefaults__ or code.co_kwonlyargcount or \
                code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS | inspect.CO_GENERATOR |
                                 inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR) or \
                code.co_filename != self.ctx.fn.__code__.co_filename or \
                fn.__globals__ is not self.ctx.fn.__globals__:
            return None  # (another file or module: its lines, its globals are not ours)
        try:
            source = get_source(fn)
        except Exception:  # no source to read: the call stays a call, differentiated as one
            return None
        funcdef = source.funcdef
        statements = list(funcdef.body.body)
        if statements and _docstring(statements[0]):
            statements = statements[1:]
        if funcdef.decorators or len(statements) != 1 or not (
                type(statements[0]) is cst.SimpleStatementLine and
                len(statements[0].body) == 1 and isinstance(statements[0].body[0], cst.Return)):
            return None
        expression = statements[0].body[0].value
        params = tuple(p.name.value for p in funcdef.params.params)
        defaults = {p.name.value: p.default for p in funcdef.params.params if p.default is not None}
        if not all(_literal(d) for d in defaults.values()) or \
                len(defaults) != len(fn.__defaults__ or ()):
            return None  # a default that is not a literal: its object is the helper's own
        if expression is None or type(expression) is cst.Tuple or \
                funcdef.params.posonly_params or len(params) != code.co_argcount or not all(
                    isinstance(n, _ALLOWED) or not isinstance(n, cst.BaseExpression) and
                    not isinstance(n, (cst.BaseSmallStatement, cst.BaseCompoundStatement))
                    for n in nodes(expression)):
            return None
        for name in _free_names(expression) - set(params):
            if name in self.local or self.ctx.lookup(name) is not _resolved(fn, name):
                return None
        line = source.line_of(source.module, statements[0])
        marker = line_marker(source.file_line(line), " ".join(source.line_text(line).split()))
        return params, expression, marker, defaults


def _literal(node) -> bool:
    """A number (or its negation), a string, True, False or None written in the source."""
    if type(node) is cst.UnaryOperation and type(node.operator) is cst.Minus:
        node = node.expression
    return type(node) in (cst.Integer, cst.Float, cst.SimpleString) or \
        type(node) is cst.Name and node.value in ("True", "False", "None")


def _docstring(stmt) -> bool:
    return type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
        type(stmt.body[0]) is cst.Expr and type(stmt.body[0].value) is cst.SimpleString


def _resolved(fn, name: str):
    """What ``name`` means in ``fn``'s module: its global, else the builtin."""
    if name in fn.__globals__:
        return fn.__globals__[name]
    return getattr(builtins, name, MISSING)


def _free_names(expression) -> set[str]:
    """The variables an expression reads: not attribute names, not keywords."""
    skip = set()
    for n in nodes(expression):
        if type(n) is cst.Attribute:
            skip.add(id(n.attr))
        elif type(n) is cst.Arg and n.keyword is not None:
            skip.add(id(n.keyword))
    return {n.value for n in nodes(expression) if type(n) is cst.Name and id(n) not in skip}


def _arguments(call: cst.Call, params: tuple, defaults: dict) -> dict | None:
    """Each parameter's atom in ``call`` or its literal default, else None (a star, a missing
    or extra argument)."""
    given = {}
    for i, arg in enumerate(call.args):
        if arg.star or not normalize.is_atom(arg.value):
            return None
        name = params[i] if arg.keyword is None and i < len(params) else \
            arg.keyword.value if arg.keyword is not None else None
        if name is None or name not in params or name in given:
            return None
        given[name] = arg.value
    for name, default in defaults.items():
        given.setdefault(name, default)
    return given if len(given) == len(params) else None


class _Substituted(cst.CSTTransformer):
    """Each parameter read replaced by its argument (an atom, parenthesized where it is not a
    name or a plain number); attribute names and keywords stay."""

    def __init__(self, given: dict):
        self.given = given

    def leave_Name(self, original, updated):
        atom = self.given.get(updated.value)
        if atom is None:
            return updated
        if type(atom) in (cst.Name, cst.Integer, cst.Float) and not getattr(atom, "lpar", ()):
            return atom
        return atom.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)
