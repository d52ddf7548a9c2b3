"""carried: the names a loop body reads before it sets them — what one iteration hands the next.

A checkpoint of a loop (``transforms/checkpoint.py``) keeps exactly these: run from them,
the body computes what it computed the first time.

    for t in range(n):
        h_2 = h_1                  carried(body, {"t"}) ∩ bound: ["h_1"]
        h_3 = np.tanh(h_2 * w)     (w is read but never set in the body: not carried)
        h_1 = h_3
"""

from __future__ import annotations

import libcst as cst

from .values import bound_names, reads, walk

__all__ = ["exposed", "certainly_set", "bound_in"]


def exposed(statements, defined: set[str]) -> set[str]:
    """The names ``statements`` may read before setting them, ``defined`` being set on entry."""
    found: set[str] = set()
    _walk(statements, set(defined), found)
    return found


def certainly_set(statements, defined: set[str]) -> set[str]:
    """The names set on every path through ``statements`` (``defined`` included)."""
    return _walk(statements, set(defined), set())


def bound_in(statements) -> list[str]:
    """Every name ``statements`` bind at any depth, in the order they first bind it."""
    order: dict[str, None] = {}
    for stmt in walk(statements):
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) is cst.Assign:
                    for target in small.targets:
                        order.update(dict.fromkeys(bound_names(target.target)))
        elif type(stmt) is cst.For:
            order.update(dict.fromkeys(bound_names(stmt.target)))
    return list(order)


def _walk(statements, defined: set[str], found: set[str]) -> set[str]:
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) is cst.Assign:
                    found |= reads(small.value) - defined
                    for target in small.targets:
                        if type(target.target) not in (cst.Name, cst.Tuple, cst.List):
                            found |= reads(target.target) - defined  # x[i] = …, p.w = …
                    for target in small.targets:
                        defined |= set(bound_names(target.target))
                else:
                    found |= reads(small) - defined
        elif type(stmt) is cst.If:
            found |= reads(stmt.test) - defined
            body = _walk(stmt.body.body, set(defined), found)
            orelse = stmt.orelse
            other = defined if orelse is None else _walk(
                [orelse] if type(orelse) is cst.If else orelse.body.body, set(defined), found)
            defined = body & other
        elif type(stmt) is cst.For:  # may run no time: sets nothing for certain
            found |= reads(stmt.iter) - defined
            _walk(stmt.body.body, defined | set(bound_names(stmt.target)), found)
        elif type(stmt) is cst.While:
            found |= reads(stmt.test) - defined
            _walk(stmt.body.body, set(defined), found)
        else:
            found |= reads(stmt) - defined
    return defined
