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
import numpy as np

from ..context import MISSING, Context
from ..names import names_in

__all__ = ["UNKNOWN", "Domain", "Facts", "infer", "resolve", "reads", "number", "walk",
           "single_assignments", "binding_counts", "bound_names",
           "map_statements", "subexpressions", "calls_named", "rewrite_lines_calling", "bound_in"]

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
          aliases: dict | None = None, fallback: dict | None = None,
          unpacked: dict | None = None) -> Facts:
    """The facts of every name bound in ``vjp`` (the forward function with its pullback
    nested in it). ``given`` holds the facts of ``vjp``'s parameters (a parameter left out
    is UNKNOWN); ``aliases`` binds parameters of nested functions to expressions whose
    value they receive (the pullback's seed has the shape of the output); ``fallback``
    gives a name the fact it has where its expression's fact is UNKNOWN (see
    :func:`single_assignments`); ``unpacked`` gives a name bound once, by a tuple target, the
    expression of its value (``zi, zf = np.split(z, 2)``: ``zf`` is ``np.split(z, 2)[1]``)."""
    aliases = aliases or {}
    fallback = fallback or {}
    unpacked = unpacked or {}
    bindings = [(name, expr) for name, expr, param in _bindings(vjp)
                if not (param and name in aliases) and not (expr is None and name in unpacked)] + \
        list(aliases.items()) + list(unpacked.items())
    params = {p.name.value for p in vjp.params.params}
    given = {name: given.get(name, UNKNOWN) for name in params}
    bound = {name for name, _ in bindings} | params
    resolver = lambda expr: resolve(expr, ctx, bound)  # noqa: E731
    env: dict = dict(given)
    facts = Facts(env, domain, resolver)
    read = [(name, expr, () if expr is None else tuple(reads(expr) & bound))
            for name, expr in bindings]
    # the facts each binding was last evaluated over, and its value then: a binding whose
    # names hold the very same facts (env rebinds a name only when its fact changes) has
    # the same value again, without evaluating it (the last round only confirms)
    memo: list = [None] * len(read)
    for _ in range(100):  # facts only ever grow towards UNKNOWN: this ends in a few rounds
        changed = False
        for i, (name, expr, names) in enumerate(read):
            if expr is None:
                value = UNKNOWN
            elif any(n not in env for n in names):
                continue  # reads a name no value has reached yet
            else:
                seen = memo[i]
                if seen is not None and all(env[n] is f for n, f in zip(names, seen[0])):
                    value = seen[1]
                else:
                    value = domain.evaluate(expr, facts)
                    memo[i] = (tuple(env[n] for n in names), value)
            if value is UNKNOWN and name in fallback:
                value = fallback[name]
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


def _bindings(vjp: cst.FunctionDef) -> tuple[tuple[str, cst.BaseExpression | None, bool], ...]:
    """:func:`_find_bindings`, kept for the last function asked about (shapes asks twice, seed
    and guards once more, mostly for the very same tree)."""
    global _last_bindings
    last = _last_bindings  # one read of one pair: safe when several threads compile at once
    if last is not None and last[0] is vjp:
        return last[1]
    found = tuple(_find_bindings(vjp))
    _last_bindings = (vjp, found)
    return found


_last_bindings = None
_AUGMENTED = {cst.AddAssign: cst.Add, cst.SubtractAssign: cst.Subtract,
              cst.MultiplyAssign: cst.Multiply, cst.DivideAssign: cst.Divide,
              cst.PowerAssign: cst.Power, cst.MatrixMultiplyAssign: cst.MatrixMultiply,
              cst.ModuloAssign: cst.Modulo, cst.FloorDivideAssign: cst.FloorDivide}


def all_bindings(vjp: cst.FunctionDef) -> tuple[tuple[str, cst.BaseExpression | None, bool], ...]:
    """Every way ``vjp`` and the functions nested in it bind a name: ``(name, the assigned
    expression or None, whether a nested function's parameter)`` (see :func:`_find_bindings`)."""
    return _bindings(vjp)


def _find_bindings(vjp: cst.FunctionDef) -> list[tuple[str, cst.BaseExpression | None, bool]]:
    """``(name, expression, False)`` for each single-name assignment in ``vjp`` and the
    functions nested in it (an arithmetic augmented assignment ``x += v`` as ``x + v``: the
    value ``x`` holds after it, in place or not); ``(name, None, False)`` for every other
    way a name is bound (tuple targets, loop targets, nested functions), ``(name, None,
    True)`` for the parameters of nested functions.
    A pullback loop over a tape, ``for a, b in reversed(_tape1)``, rebinds the names to the
    very values the forward pass pushed (``_tape1.push((a, b))``): it adds nothing."""
    out: list = []
    statements = list(walk(vjp.body.body))
    pushes = _tape_pushes(statements)
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) is cst.Assign:
                    if len(small.targets) == 1 and type(small.targets[0].target) is cst.Name:
                        out.append((small.targets[0].target.value, small.value, False))
                    else:
                        for target in small.targets:
                            out.extend((n, None, False) for n in bound_names(target.target))
                elif type(small) is cst.AugAssign and type(small.target) is cst.Name \
                        and type(small.operator) in _AUGMENTED:  # x op= v: x bound to x op v
                    operator = _AUGMENTED[type(small.operator)]()
                    out.append((small.target.value, cst.BinaryOperation(
                        small.target, operator, small.value), False))
                elif type(small) in (cst.AnnAssign, cst.AugAssign):
                    out.extend((n, None, False) for n in bound_names(small.target))
        elif type(stmt) is cst.For:
            zipped = _zipped_tape(stmt, pushes)
            if zipped is not None:  # the steps stage's zip(reversed(_tape1), factors, ...)
                out.extend(zipped)
                continue
            names = bound_names(stmt.target)
            tape = _reversed_tape(stmt.iter)
            if tape is None or pushes.get(tape) != tuple(names):
                out.extend((n, None, False) for n in names)
        elif type(stmt) is cst.FunctionDef:
            out.append((stmt.name.value, None, False))
            out.extend((p.name.value, None, True) for p in stmt.params.params)
        elif type(stmt) not in (cst.If, cst.While):
            for name in reads(stmt):  # a statement kind generated code does not use
                out.append((name, None, False))
    return out


def binding_counts(fn: cst.FunctionDef) -> dict[str, int]:
    """How many times ``fn`` (and the functions nested in it) binds each name, counting every
    way (assignments, loop targets, parameters of nested functions)."""
    counts: dict[str, int] = {}
    for name, _, _ in _bindings(fn):
        counts[name] = counts.get(name, 0) + 1
    return counts


def single_assignments(vjp: cst.FunctionDef) -> set[str]:
    """The names bound exactly once in ``vjp`` and its pullback, by a statement of the forward
    pass's top level (not in a loop, a branch or the pullback): each holds one value per
    call, so a fact about "this name's value" can be trusted wherever the name is read."""
    counts = binding_counts(vjp)
    found = set()
    for stmt in vjp.body.body:
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
            targets = stmt.body[0].targets
            if len(targets) == 1 and type(targets[0].target) is cst.Name and \
                    counts.get(targets[0].target.value) == 1:
                found.add(targets[0].target.value)
    return found


def method_line(stmt, method: str) -> tuple[str, cst.BaseExpression] | None:
    """``(owner, argument)`` of a line that is only ``owner.method(argument)`` (a tape's
    ``push``, a list's ``append``), the owner a name; else None."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Expr and type(stmt.body[0].value) is cst.Call):
        return None
    call = stmt.body[0].value
    if not (type(call.func) is cst.Attribute and call.func.attr.value == method and
            type(call.func.value) is cst.Name and len(call.args) == 1):
        return None
    return call.func.value.value, call.args[0].value


def split_pieces(vjp: cst.FunctionDef, ctx: Context) -> dict:
    """``name -> np.split(x, k, ...)[i]`` for each name bound once, as the ``i``-th target of
    ``a, b, ... = np.split(x, k, ...)`` (``k`` targets, all names)."""
    counts = binding_counts(vjp)
    local = set(counts) | {p.name.value for p in vjp.params.params}
    found = {}
    for stmt in walk(vjp.body.body):
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
                type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1):
            continue
        target, value = stmt.body[0].targets[0].target, stmt.body[0].value
        if not (type(target) is cst.Tuple and type(value) is cst.Call and
                resolve(value.func, ctx, local) is np.split):
            continue
        names = [e.value.value if type(e.value) is cst.Name and type(e) is not cst.StarredElement
                 else None for e in target.elements]
        if None in names or any(counts.get(n) != 1 for n in names):
            continue
        for i, name in enumerate(names):
            found[name] = cst.Subscript(value, [cst.SubscriptElement(cst.Index(cst.Integer(str(i))))])
    return found


def walk(statements):
    """Every statement in ``statements`` and in the blocks nested in them, in order."""
    for stmt in statements:
        yield stmt
        if type(stmt) in (cst.If, cst.For, cst.While, cst.FunctionDef):
            yield from walk(stmt.body.body)
            orelse = getattr(stmt, "orelse", None)
            while orelse is not None:
                yield from walk(orelse.body.body)
                orelse = getattr(orelse, "orelse", None)  # elif chains


def map_statements(statements, change):
    """``statements`` with ``change(line)`` applied to each simple statement line at any
    depth; blocks in which no line changed are kept as they are (the same objects)."""
    out, same = [], True
    for stmt in statements:
        new = stmt
        if type(stmt) is cst.SimpleStatementLine:
            new = change(stmt)
        elif type(stmt) in (cst.If, cst.For, cst.While, cst.FunctionDef):
            body = map_statements(stmt.body.body, change)
            if body is not stmt.body.body:
                new = new.with_changes(body=new.body.with_changes(body=body))
            orelse = getattr(stmt, "orelse", None)
            if orelse is not None:
                if type(orelse) is cst.If:  # elif
                    changed = map_statements([orelse], change)[0]
                else:
                    inner = map_statements(orelse.body.body, change)
                    changed = orelse if inner is orelse.body.body else orelse.with_changes(
                        body=orelse.body.with_changes(body=inner))
                if changed is not orelse:
                    new = new.with_changes(orelse=changed)
        same = same and new is stmt
        out.append(new)
    return statements if same else out


def _tape_pushes(statements) -> dict:
    """``tape name -> pushed names`` for tapes pushed in exactly one way."""
    found: dict = {}
    for stmt in statements:
        if type(stmt) is not cst.SimpleStatementLine or type(stmt.body[0]) is not cst.Expr:
            continue
        call = stmt.body[0].value
        if type(call) is not cst.Call:
            continue
        func = call.func
        if type(func) is cst.Attribute and func.attr.value == "push" and \
                type(func.value) is cst.Name and len(call.args) == 1:
            value = call.args[0].value
            names = bound_names(value) if type(value) in (cst.Name, cst.Tuple) else None
            tape = func.value.value
            if names is None or found.get(tape, tuple(names)) != tuple(names):
                found[tape] = None  # pushed in two ways: trusted in neither
            else:
                found[tape] = tuple(names)
    return found


def _zipped_tape(loop: cst.For, pushes: dict) -> list | None:
    """``for entry, f, ... in zip(reversed(_tape1), fs, ...)``, where ``entry`` binds what the
    forward pass pushed: the bindings it makes, ``f`` as a row of ``fs`` (``fs[0]``, as the
    facts of a row go) and the entry's names as nothing new; else None."""
    target, it = loop.target, loop.iter
    if not (type(target) is cst.Tuple and type(it) is cst.Call and type(it.func) is cst.Name
            and it.func.value == "zip" and len(it.args) == len(target.elements) >= 2 and
            not any(a.star or a.keyword for a in it.args)):
        return None
    tape = _reversed_tape(it.args[0].value)
    if tape is None or pushes.get(tape) is None or \
            tuple(bound_names(target.elements[0].value)) != pushes[tape]:
        return None
    rows = list(zip(target.elements[1:], it.args[1:]))
    if not all(type(e.value) is cst.Name and type(a.value) is cst.Name for e, a in rows):
        return None
    first = cst.SubscriptElement(cst.Index(cst.Integer("0")))
    return [(e.value.value, cst.Subscript(a.value, [first]), False) for e, a in rows]


def _reversed_tape(node: cst.BaseExpression) -> str | None:
    if type(node) is cst.Call and type(node.func) is cst.Name and \
            node.func.value == "reversed" and len(node.args) == 1 and \
            type(node.args[0].value) is cst.Name:
        return node.args[0].value.value
    return None


def bound_in(statements) -> set[str]:
    """The names ``statements`` (and the statements in them) bind: assignment and loop
    targets, function names."""
    bound = set()
    for stmt in walk(statements):
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) in (cst.Assign, cst.AugAssign, cst.AnnAssign):
                    targets = small.targets if type(small) is cst.Assign else [small]
                    for t in targets:
                        bound |= names_in(t.target)
        elif type(stmt) in (cst.For, cst.FunctionDef):
            bound |= names_in(stmt.target) if type(stmt) is cst.For else {stmt.name.value}
    return bound


def bound_names(node) -> list[str]:
    """The names an assignment or loop target binds (``a``, ``a, (b, *c)``); subscripts and
    attributes bind none."""
    if type(node) is cst.Name:
        return [node.value]
    if type(node) in (cst.Tuple, cst.List):
        return [n for e in node.elements for n in bound_names(e.value)]
    if type(node) is cst.StarredElement:
        return bound_names(node.value)
    return []  # subscripts and attributes bind no name


def reads(node: cst.CSTNode) -> set[str]:
    """The variables ``node`` reads (not attribute names, not keyword names)."""
    return {sub.value for sub in subexpressions(node) if type(sub) is cst.Name}


def subexpressions(node: cst.CSTNode):
    """``node`` and the nodes in it, expressions and statements, without libcst's (slow)
    visitor machinery for the kinds generated code is made of; attribute names and keyword
    names are not expressions, nor are a function's name and parameters."""
    stack = [node]
    pop, push, table = stack.pop, stack.extend, _BELOW
    while stack:
        node = pop()
        yield node
        below = table.get(type(node))
        if below is None:
            below = table[type(node)] = _below_of(type(node))
        if below is _LEAF:
            continue
        if below is _OTHER:  # anything else (a dict, a lambda, a parameter): libcst's traversal
            yield from _all_expressions(node)
        else:
            push(below(node))


def _subscript_parts(node: cst.Subscript) -> list:
    parts = []
    for element in reversed(node.slice):
        part = element.slice
        if type(part) is cst.Index:
            parts.append(part.value)
        else:
            parts += [p for p in (part.step, part.upper, part.lower) if p is not None]
    parts.append(node.value)
    return parts


def _LEAF(node):  # a marker: nothing below
    return ()


def _OTHER(node):  # a marker: libcst's complete traversal
    return ()


# what :func:`subexpressions` pushes for a node of each kind (last popped first), by the
# first kind in this list the node's type belongs to; worked out once per type in _BELOW,
# because isinstance against libcst's abstract classes is slow
_KINDS = (
    ((cst.Name, cst.BaseNumber, cst.BaseString), _LEAF),
    (cst.BinaryOperation, lambda n: (n.right, n.left)),
    (cst.UnaryOperation, lambda n: (n.expression,)),
    (cst.Attribute, lambda n: (n.value,)),
    (cst.Call, lambda n: [*(a.value for a in reversed(n.args)), n.func]),
    ((cst.Tuple, cst.List), lambda n: [e.value for e in reversed(n.elements)]),
    (cst.IfExp, lambda n: (n.orelse, n.test, n.body)),
    (cst.Comparison, lambda n: [*(c.comparator for c in reversed(n.comparisons)), n.left]),
    (cst.BooleanOperation, lambda n: (n.right, n.left)),
    (cst.Subscript, _subscript_parts),
    (cst.SimpleStatementLine, lambda n: n.body[::-1]),
    (cst.Assign, lambda n: [n.value, *(t.target for t in reversed(n.targets))]),
    ((cst.Expr, cst.Return), lambda n: () if n.value is None else (n.value,)),
    ((cst.If, cst.While), lambda n: (n.body, n.test) if n.orelse is None else (n.orelse, n.body, n.test)),
    (cst.For, lambda n: (n.body, n.iter, n.target) if n.orelse is None else
        (n.orelse, n.body, n.iter, n.target)),
    (cst.IndentedBlock, lambda n: n.body[::-1]),
    (cst.Else, lambda n: n.body.body[::-1]),
    (cst.FunctionDef, lambda n: (n.body,)),
    ((cst.Pass, cst.Break, cst.Continue), _LEAF),
)
_BELOW: dict = {}


def _below_of(kind: type):
    for kinds, below in _KINDS:
        if issubclass(kind, kinds):
            return below
    return _OTHER


def calls_named(node: cst.CSTNode, name: str) -> bool:
    """Whether ``node`` holds a call of something spelled ``name`` or ``<...>.name``."""
    for sub in subexpressions(node):
        if type(sub) is cst.Call:
            func = sub.func
            if type(func) is cst.Attribute and func.attr.value == name or \
                    type(func) is cst.Name and func.value == name:
                return True
    return False


def _all_expressions(node: cst.CSTNode) -> list:
    """Every expression inside ``node`` but ``node`` itself, except attribute and keyword names."""
    found: list = []
    labels: set[int] = set()

    class Collect(cst.CSTVisitor):
        def on_visit(self, child) -> bool:
            if type(child) is cst.Attribute:
                labels.add(id(child.attr))
            elif type(child) is cst.Arg and child.keyword is not None:
                labels.add(id(child.keyword))
            if child is not node and isinstance(child, cst.BaseExpression) and \
                    id(child) not in labels:
                found.append(child)
            return True

    node.visit(Collect())
    return found


def resolve(expr: cst.BaseExpression, ctx: Context, local: set):
    """The object ``np.sin`` / ``rt.guard`` / ``math.exp`` names for the generated code, by
    the user's globals (and ``rt``); None for local names and anything unresolvable."""
    if type(expr) is cst.Name:
        if expr.value in local:
            return None
        found = ctx.lookup(expr.value)
        return None if found is MISSING else found
    if type(expr) is cst.Attribute:
        base = resolve(expr.value, ctx, local)
        return None if base is None else getattr(base, expr.attr.value, None)
    return None


def number(node: cst.BaseExpression):
    """The value of a real number literal (``2``, ``0.5``, ``-1.0``), else None."""
    sign = 1  # (type tests: these node kinds have no subclasses, and isinstance is slow)
    while type(node) is cst.UnaryOperation and type(node.operator) in (cst.Minus, cst.Plus):
        sign, node = (-sign if type(node.operator) is cst.Minus else sign), node.expression
    if type(node) is cst.Integer:
        return sign * int(node.value, 0)
    if type(node) is cst.Float:
        return sign * float(node.value)
    return None


def rewrite_lines_calling(module: cst.Module, ctx: Context, name: str, facts_of, droppable,
                          drop):
    """The generated module with ``drop(facts)`` (a transformer) applied to each statement line
    holding a call ``c`` for which ``droppable(c, facts)``; ``facts_of(vjp, ctx)`` is run
    only when some call is named ``name``. Lines with nothing to drop stay the same objects."""
    vjp = module.body[-1]  # after the module-level links, if any
    if not calls_named(vjp, name):
        return module
    facts = facts_of(vjp, ctx)
    transformer = drop(facts)
    body = map_statements(vjp.body.body, lambda line: line.visit(transformer) if any(
        droppable(c, facts) for c in subexpressions(line) if type(c) is cst.Call) else line)
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])
