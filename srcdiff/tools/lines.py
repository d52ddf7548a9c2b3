"""The activity analysis read back line by line, and why a gradient is identically zero.

``reverse`` asks ``analysis.activity`` which values are *varied* (depend on a ``wrt``
parameter through differentiable operations) and *useful* (the output depends on them
that way); only the *active* ones, both, get adjoint code. This module runs the pipeline
up to ``rename`` once per ``wrt`` parameter, asks the same question, and maps the
answers to the user's lines. Where a parameter's gradient is zero it names the
statement that breaks the dependence: a value with zero derivative (``np.round``), a
``stop_gradient``, or an output that does not read the parameter at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from srcdiff.runtime import stop_gradient

from ..analysis.activity import _FLOWING, analyze, assignments, outputs
from ..analysis.calls import reads
from ..context import parse_marker
from ..transforms.normalize import local_variables
from . import stages

__all__ = ["Lines", "read_lines"]


@dataclass(frozen=True)
class Lines:
    """``status[(line, parameter)]``: "active", "varied" (depends on the parameter, but the
    output does not use it differentiably) or absent; ``zero[parameter]``: ``(line, why)``
    its gradient is identically zero, for those whose gradient is; ``texts``: each line."""

    texts: dict
    status: dict
    zero: dict
    constant_stops: tuple  # (line, text) of stop_gradients of values that depend on no wrt


def read_lines(fn, wrt: tuple[str, ...], containers: tuple[str, ...] = (), source=None,
               has_aux: bool = False) -> Lines:
    """What the activity analysis says about each line of ``fn``, for each ``wrt`` parameter
    (of ``source``, a variant of ``fn``'s source with the same lines, where given; with
    ``has_aux``, ``fn`` returns ``(loss, aux)`` and only ``loss`` counts as its output)."""
    texts: dict[int, str] = {}
    status: dict[tuple[int, str], str] = {}
    zero: dict[str, tuple[int, str]] = {}
    for param in wrt:
        facts = _facts(fn, (param,), tuple(c for c in containers if c == param), texts, source,
                       has_aux)
        varied = facts.activity.varied
        for line, targets, op, read in facts.steps:  # (a name assigned on several lines is
            if op.kind not in _FLOWING or not varied.intersection(read):  # active on each:
                continue  # a line counts where what it reads is varied too)
            if facts.activity.active.intersection(targets):
                status[(line, param)] = "active"
            elif (line, param) not in status:
                status[(line, param)] = "varied"
        if param not in facts.activity.useful:
            zero[param] = _why_zero(param, facts, texts)
        elif facts.activity.active.intersection(facts.outputs):  # return y: no assignment
            status.setdefault((facts.returned, param), "active")
    everything = _facts(fn, wrt, containers, texts, source, has_aux)
    stops = tuple((line, texts.get(line, "")) for line, _, op, read in everything.steps
                  if op.primitive is stop_gradient and not everything.activity.varied.intersection(read)
                  and "stop_gradient" in texts.get(line, ""))
    return Lines(texts, status, zero, tuple(dict.fromkeys(stops)))


@dataclass(frozen=True)
class _Facts:
    activity: object
    steps: tuple  # (line, target names, op, every local name the value reads)
    outputs: tuple  # the output's names
    returned: int  # the line of the return


def _facts(fn, wrt, containers, texts: dict, source=None, has_aux=False) -> _Facts:
    _, ctx = stages.prepare(fn, wrt, containers, source=source, has_aux=has_aux)
    funcdef = stages.run(ctx, until="rename").body[0]
    local_names = local_variables(funcdef)
    lines = {}
    for stmt, line in stages.statements(funcdef):
        lines[id(stmt)] = line
        found = _marker_text(stmt)
        if found:
            texts.setdefault(*found)
    steps = tuple((lines.get(id(stmt), 0), target if isinstance(target, tuple) else (target,), op,
                   reads(stmt.body[0].value, local_names))
                  for stmt, target, op, _ in assignments(funcdef, ctx, local_names))
    names = tuple(atom.value for _, atom in outputs(funcdef, ctx) if hasattr(atom, "value")
                  and isinstance(atom.value, str))
    final = parse_marker(funcdef.body.body[-1].leading_lines)
    return _Facts(analyze(funcdef, ctx, local_names), steps, names, final[0] if final else 0)


def _marker_text(stmt):
    return parse_marker(stmt.leading_lines)


def _why_zero(param: str, facts: _Facts, texts: dict) -> tuple[int, str]:
    """The statements that break the dependence of the output on ``param``: the line of the
    first, and the reason."""
    varied, useful = facts.activity.varied, facts.activity.useful
    cuts = [(line, op) for line, targets, op, read in facts.steps
            if op.kind not in _FLOWING and varied.intersection(read) and useful.intersection(targets)]
    if cuts:
        return cuts[0][0], "; ".join(dict.fromkeys(_cut(line, op, texts) for line, op in cuts))
    last = max(texts) if texts else 0  # the return
    reached = {param}  # what depends on param in any way, differentiable or not
    changed = True
    while changed:
        size = len(reached)
        for _, targets, _, read in facts.steps:
            if reached.intersection(read):
                reached.update(targets)
        changed = len(reached) != size
    tests = [line for line, targets, op, read in facts.steps
             if reached.intersection(read) and any(t.startswith("_c") for t in targets)]
    if not reached.intersection(facts.outputs) and tests:
        return tests[0], (f"{param} only decides which way the code goes (line {tests[0]}: "
                          f"`{texts.get(tests[0], '')}`); each way has zero derivative with "
                          f"respect to it")
    if reached.intersection(facts.outputs):
        return last, f"the output depends on {param} only through values without a derivative"
    return last, f"the output does not read `{param}`"


def _cut(line: int, op, texts: dict) -> str:
    text = texts.get(line, "")
    if op.primitive is stop_gradient:
        how = "stops the gradient" if "stop_gradient" in text else \
            "is computed under srcdiff.no_grad()"
        return f"`{text}` on line {line} {how}"
    return f"`{text}` on line {line} has zero derivative"
