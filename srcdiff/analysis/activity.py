"""Activity analysis: which variables need an adjoint.

A variable is *varied* if it depends on a ``wrt`` input through
differentiable operations, and *useful* if the returned value depends on it.
Only variables that are both — *active* — get adjoint code. Results of
non-differentiable operations (comparisons, ``argmax``, ``x.shape``) are
never varied.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import libcst as cst

from ..context import Context
from .calls import Op, classify, reads
from ..transforms.normalize import target_names

__all__ = ["Activity", "analyze", "assignments"]

_FLOWING = ("rule", "copy", "function", "dynamic", "project", "pack", "unknown")  # kinds through which a gradient could flow


@dataclass(frozen=True)
class Activity:
    varied: frozenset[str]
    useful: frozenset[str]

    @property
    def active(self) -> frozenset[str]:
        return self.varied & self.useful

    def is_active(self, name: str) -> bool:
        return name in self.varied and name in self.useful


def simple_statements(statements):
    """Every simple statement line, in source order, inside ``if`` blocks too."""
    for stmt in statements:
        if type(stmt) is cst.If:
            yield from simple_statements(stmt.body.body)
            if type(stmt.orelse) is cst.Else:
                yield from simple_statements(stmt.orelse.body.body)
        elif type(stmt) in (cst.For, cst.While):
            yield from simple_statements(stmt.body.body)
        else:
            yield stmt


def assignments(funcdef: cst.FunctionDef, ctx: Context, local_names):
    """``(statement, target, op, operand reads)`` for each assignment, in order.

    ``reverse`` asks three times for the same function (activity, containers, its own
    steps): the last answer is kept, for the very same objects, and handed out again."""
    global _last
    last = _last  # one read of one tuple: safe when several threads compile at once
    if last is not None and last[0] is funcdef and last[1] is ctx and last[2] is local_names:
        return last[3]
    found = _assignments(funcdef, ctx, local_names)
    _last = (funcdef, ctx, local_names, found)
    return found


_last = None  # (funcdef, ctx, local_names, assignments); the assignments are a tuple


def _assignments(funcdef: cst.FunctionDef, ctx: Context, local_names):
    found = []
    containers = set(ctx.containers)  # grows with what is read out of them, in order
    sequences: set[str] = set()  # names bound to a list or tuple built here
    for stmt in simple_statements(funcdef.body.body):
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
            assign = stmt.body[0]
            op = classify(assign.value, ctx, local_names, containers, sequences)
            if _makes_container(op, assign.value, containers):
                containers.update(target_names(assign.targets[0].target))
            if type(assign.value) in (cst.List, cst.Tuple, cst.Dict) or \
                    op.primitive is _append() or op.kind == "copy" and \
                    type(assign.value) is cst.Name and assign.value.value in sequences:
                sequences.update(target_names(assign.targets[0].target))
            # options count too: a varied value in one (np.clip(c, a_min=lo)) is refused later
            inputs = _operand_reads((*op.operands, *(v for _, v in op.options)), local_names) \
                if op.kind != "unknown" else reads(assign.value, local_names)
            target = assign.targets[0].target
            names = tuple(e.value.value for e in target.elements) if type(target) is cst.Tuple \
                else target.value
            found.append((stmt, names, op, inputs))
    return tuple(found)


def _append():
    from srcdiff.runtime import append

    return append


def _operand_reads(operands, local_names) -> tuple[str, ...]:
    """The local variables the operands read, in order (as ``reads`` of a tuple of them)."""
    found: dict[str, None] = {}
    for operand in operands:
        if operand is not None:  # (a dynamic call of a plain function has no receiver)
            found.update(dict.fromkeys(reads(operand, local_names)))
    return tuple(found)


def analyze(funcdef: cst.FunctionDef, ctx: Context, local_names) -> Activity:
    """Varied and useful variables of a normalized, renamed function body."""
    steps = assignments(funcdef, ctx, local_names)
    varied = set(ctx.wrt)
    useful = {atom.value for _, atom in outputs(funcdef, ctx) if type(atom) is cst.Name}
    changed = True
    while changed:  # loops carry values backwards in the text: iterate to a fixpoint
        size = len(varied) + len(useful)
        for _, target, op, inputs in steps:
            if op.kind in _FLOWING and varied.intersection(inputs):
                varied.update(_names(target))
        for _, target, op, inputs in reversed(steps):
            if useful.intersection(_names(target)) and op.kind in _FLOWING:
                useful.update(inputs)
        changed = len(varied) + len(useful) != size
    return Activity(frozenset(varied), frozenset(useful))


def _names(target) -> tuple[str, ...]:
    return target if isinstance(target, tuple) else (target,)


def outputs(funcdef: cst.FunctionDef, ctx: Context):
    """The differentiated outputs as ``(key, atom)`` pairs; ``key`` None for a single output.

    ``return y`` gives ``[(None, y)]``; ``return a, b`` gives ``[(0, a), (1, b)]``;
    ``return {"a": a}`` gives ``[('"a"', a)]``; with has_aux, ``return loss, aux`` gives
    ``[(None, loss)]``: the aux value is returned untouched.
    """
    value = funcdef.body.body[-1].body[0].value
    if "has_aux" in ctx.options:
        return [(None, value.elements[0].value)]
    if type(value) is cst.Tuple:
        return [(cst.Integer(str(i)), e.value) for i, e in enumerate(value.elements)]
    if type(value) is cst.Dict:
        return [(e.key, e.value) for e in value.elements]
    return [(None, value)]


__all__ += ["outputs", "Op", "simple_statements"]


def container_names(funcdef: cst.FunctionDef, ctx: Context, local_names) -> frozenset[str]:
    """The wrt containers and every name read out of one (which may be a container too)."""
    names = set(ctx.containers)
    for stmt, target, op, _ in assignments(funcdef, ctx, local_names):
        if _makes_container(op, stmt.body[0].value, names):
            names.update(_names(target))
    return frozenset(names)


def _makes_container(op: Op, value: cst.BaseExpression, containers) -> bool:
    """Projections, copies of containers and their writes (``d["k"] = v`` of a local
    ``d = {}``), list literals and appends may hold a container; so
    do primitives that return a list or tuple (``np.split``) and helpers whose last return is
    a display (``return [a, b]``, ``return a, b``)."""
    from srcdiff.runtime import append, setitem

    return op.kind == "project" or op.kind == "copy" and type(op.operands[0]) is cst.Name \
        and op.operands[0].value in containers \
        or op.primitive is setitem and type(op.operands[0]) is cst.Name \
        and op.operands[0].value in containers \
        or type(value) in (cst.List, cst.Tuple, cst.Dict) or op.primitive is append \
        or op.kind == "pack" \
        or op.kind == "rule" and op.rule.sequence \
        or op.kind == "function" and returns_container(op.primitive)


@lru_cache(maxsize=512)
def returns_container(fn) -> bool:
    """Whether the user function ``fn`` ends by returning a list, tuple or dict display."""
    from ..source import get_source

    try:
        last = get_source(fn).funcdef.body.body[-1]
    except Exception:  # noqa: BLE001 - no source: its derivative will say why
        return False
    small = last.body[0] if type(last) is cst.SimpleStatementLine else None
    return type(small) is cst.Return and type(small.value) in (cst.List, cst.Tuple, cst.Dict)


__all__.append("container_names")
