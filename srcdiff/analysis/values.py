"""What is known about every value of a generated function: a flow-insensitive fixpoint.

A *domain* says what one fact is (a shape class, a lower bound, ...), how to compute the
fact of an expression from the facts of the names it reads, and how to join two facts.
:func:`infer` runs the domain over every binding of the forward function and its
pullback until nothing changes, and returns the fact of each name. The analysis is
flow-insensitive: a name's fact holds for *every* value the name takes (all assignments
in all branches and iterations, joined), so a fact can be trusted anywhere the name is read.

    def f_vjp(x):                      facts (shape domain)
        a = np.sin(x)                  a: shape of x
        b = a * 2.0                    b: shape of x
        c = np.sum(b, axis=0)          c: unknown
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import libcst as cst

from ..context import MISSING, Context

__all__ = ["UNKNOWN", "Domain", "Facts", "infer", "resolve", "reads", "number"]

UNKNOWN = None  # the top of every domain: nothing is known
_UNSET = object()  # the bottom: no value reaches the name (yet)


@dataclass(frozen=True)
class Domain:
    """``evaluate(expr, facts)`` gives the fact of ``expr``; ``join(a, b)`` the fact of a
    name assigned both."""

    evaluate: Callable
    join: Callable


@dataclass(frozen=True)
class Facts:
    """The fact of each name (``UNKNOWN`` for names without one) and how to evaluate more."""

    names: dict
    domain: Domain
    resolver: Callable

    def __getitem__(self, name: str):
        return self.names.get(name, UNKNOWN)

    def of(self, expr: cst.BaseExpression):
        """The fact of an expression over the names of the function."""
        return self.domain.evaluate(expr, self)

    def resolve(self, expr: cst.BaseExpression):
        """The object a callee spelling (``np.sin``, ``rt.guard``) stands for, else None."""
        return self.resolver(expr)


def infer(vjp: cst.FunctionDef, ctx: Context, domain: Domain, given: dict,
          aliases: dict | None = None) -> Facts:
    """The facts of every name bound in ``vjp`` (the forward function with its pullback
    nested in it). ``given`` holds the facts of ``vjp``'s parameters (a parameter left out
    is UNKNOWN); ``aliases`` binds parameters of nested functions to expressions whose
    value they receive (the pullback's seed has the shape of the output)."""
    aliases = aliases or {}
    bindings = [(name, expr) for name, expr, param in _bindings(vjp)
                if not (param and name in aliases)] + list(aliases.items())
    params = {p.name.value for p in vjp.params.params}
    given = {name: given.get(name, UNKNOWN) for name in params}
    bound = {name for name, _ in bindings} | params
    resolver = lambda expr: resolve(expr, ctx, bound)  # noqa: E731
    env: dict = dict(given)
    facts = Facts(env, domain, resolver)
    for _ in range(100):  # facts only ever grow towards UNKNOWN: this ends in a few rounds
        changed = False
        for name, expr in bindings:
            if expr is None:
                value = UNKNOWN
            elif any(env.get(n, UNKNOWN if n not in bound else _UNSET) is _UNSET
                     for n in reads(expr)):
                continue  # reads a name no value has reached yet
            else:
                value = domain.evaluate(expr, facts)
            old = env.get(name, _UNSET)
            new = value if old is _UNSET else domain.join(old, value)
            if old is _UNSET or new != old:
                env[name] = new
                changed = True
        if not changed:
            break
    else:  # pragma: no cover - a domain whose facts do not settle
        raise AssertionError("value facts did not reach a fixpoint")
    for name in bound:
        env.setdefault(name, UNKNOWN)  # never reached: nothing is promised
    return facts


def _bindings(vjp: cst.FunctionDef) -> list[tuple[str, cst.BaseExpression | None, bool]]:
    """``(name, expression, False)`` for each single-name assignment in ``vjp`` and the functions
    nested in it; ``(name, None, False)`` for every other way a name is bound (tuple targets, loop
    targets, augmented assignments, nested functions), ``(name, None, True)`` for the
    parameters of nested functions.
    A pullback loop over a tape, ``for a, b in reversed(_tape1)``, rebinds the names to the
    very values the forward pass pushed (``_tape1.push((a, b))``): it adds nothing."""
    out: list = []
    pushes = _tape_pushes(vjp)

    class Collect(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                out.append((node.targets[0].target.value, node.value, False))
            else:
                for target in node.targets:
                    out.extend((n, None, False) for n in _target_names(target.target))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            out.extend((n, None, False) for n in _target_names(node.target))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            out.extend((n, None, False) for n in _target_names(node.target))

        def visit_For(self, node: cst.For) -> None:
            names = _target_names(node.target)
            tape = _reversed_tape(node.iter)
            if tape is None or pushes.get(tape) != tuple(names):
                out.extend((n, None, False) for n in names)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            if node is not vjp:
                out.append((node.name.value, None, False))
                out.extend((p.name.value, None, True) for p in node.params.params)

    vjp.visit(Collect())
    return out


def _tape_pushes(vjp: cst.FunctionDef) -> dict:
    """``tape name -> pushed names`` for tapes pushed in exactly one way."""
    found: dict = {}

    class Collect(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value == "push" and \
                    isinstance(func.value, cst.Name) and len(node.args) == 1:
                value = node.args[0].value
                names = _target_names(value) if isinstance(value, (cst.Name, cst.Tuple)) else None
                tape = func.value.value
                if names is None or found.get(tape, tuple(names)) != tuple(names):
                    found[tape] = None  # pushed in two ways: trusted in neither
                else:
                    found[tape] = tuple(names)

    vjp.visit(Collect())
    return found


def _reversed_tape(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and \
            node.func.value == "reversed" and len(node.args) == 1 and \
            isinstance(node.args[0].value, cst.Name):
        return node.args[0].value.value
    return None


def _target_names(node) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for e in node.elements for n in _target_names(e.value)]
    if isinstance(node, cst.StarredElement):
        return _target_names(node.value)
    return []  # subscripts and attributes bind no name


def reads(expr: cst.CSTNode) -> set[str]:
    """The variables ``expr`` reads (not attribute names, not keyword names)."""
    found: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

    expr.visit(Collect())
    return found


def resolve(expr: cst.BaseExpression, ctx: Context, local: set):
    """The object ``np.sin`` / ``rt.guard`` / ``math.exp`` names for the generated code, by
    the user's globals (and ``rt``); None for local names and anything unresolvable."""
    if isinstance(expr, cst.Name):
        if expr.value in local:
            return None
        found = ctx.lookup(expr.value)
        return None if found is MISSING else found
    if isinstance(expr, cst.Attribute):
        base = resolve(expr.value, ctx, local)
        return None if base is None else getattr(base, expr.attr.value, None)
    return None


def number(node: cst.BaseExpression):
    """The value of a real number literal (``2``, ``0.5``, ``-1.0``), else None."""
    sign = 1
    while isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        sign, node = (-sign if isinstance(node.operator, cst.Minus) else sign), node.expression
    if isinstance(node, cst.Integer):
        return sign * int(node.value, 0)
    if isinstance(node, cst.Float):
        return sign * float(node.value)
    return None
