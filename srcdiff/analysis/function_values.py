"""What a function's locals may hold that effects must follow into: functions and records.

``act = twice``, ``acts = {"t": np.tanh}`` then ``acts["t"](x)``, ``g = pick(0)`` (where
every ``return`` of ``pick`` names functions), ``r = Rec(u, 0.5)``: the calls through these
names are read like calls of the functions themselves (``effects.py``), so a call whose
result is not differentiated is refused only where one of them may write into what it is
given. A name bound any other way holds something srcdiff does not know.

    act = pick(0)        local_functions(...) -> {"act": (np.tanh, twice)}
    a = act(x) <= 0.1
"""

from __future__ import annotations

import inspect
from operator import getitem

import libcst as cst

from ..names import nodes
from .calls import _dotted, _is_record, installed, resolve_parts

__all__ = ["records", "statements_of", "local_functions", "returned_functions", "named",
           "helper_functions"]


def records(funcdef: cst.FunctionDef, lookup) -> dict:
    """``name -> class`` for a helper's locals bound only to a new dataclass or namedtuple
    (``r = Rec(u, 0.5)``), whose methods are read like helpers."""
    found: dict = {}
    for name, values in _bindings(funcdef).items():
        classes = {resolve_parts(_dotted(v.func), lookup) if type(v) is cst.Call else None
                   for v in values}
        cls = next(iter(classes))
        if len(classes) == 1 and _is_record(cls):
            found[name] = cls
    return found


def _bindings(funcdef: cst.FunctionDef) -> dict[str, list]:
    """``name -> the values assigned to it`` in a body, a ``None`` for a binding of another
    kind (a parameter, a loop or unpacking target, ``+=``)."""
    found: dict[str, list] = {p.name.value: [None] for p in (
        *funcdef.params.posonly_params, *funcdef.params.params, *funcdef.params.kwonly_params)}
    for node in nodes(funcdef.body):
        kind = type(node)
        if kind is cst.Assign and len(node.targets) == 1 and type(node.targets[0].target) is cst.Name:
            found.setdefault(node.targets[0].target.value, []).append(node.value)
        elif kind in (cst.Assign, cst.For, cst.CompFor, cst.AugAssign, cst.AnnAssign,
                      cst.NamedExpr):
            targets = node.targets if kind is cst.Assign else [node]
            for target in targets:
                for n in nodes(target.target):
                    if type(n) is cst.Name:
                        found.setdefault(n.value, []).append(None)
    return found


def statements_of(steps) -> list:
    """The ``(target, op)`` of a function's normalized assignments, in order."""
    return [(t, op) for t, op, _ in steps.values()]


def local_functions(statements, lookup, loop_targets=frozenset()) -> dict[str, tuple]:
    """``name -> every function it may hold`` for the locals whose every binding names
    functions: ``act = twice``, ``acts = {"t": twice}`` then ``act = acts["t"]``,
    ``act = pick(0)`` where every ``return`` of ``pick`` names functions."""
    tables: dict[str, tuple] = {}  # a display of functions, by name
    found: dict[str, tuple] = {}
    unknown: set[str] = set(loop_targets)
    for target, op in statements:
        if not isinstance(target, str):
            unknown.update(t for t in target if isinstance(t, str))
            continue
        base = op.operands[0].value if op.operands and type(op.operands[0]) is cst.Name \
            else None
        if target in tables or target in found or target in unknown:
            tables[target] = None  # a display bound to a name bound again: not followed
        fns = None
        if op.kind == "constant" and type(op.spelled) in (cst.Name, cst.Attribute):
            fns = _functions_named([op.spelled], lookup)
        elif op.kind == "pack":
            tables[target] = None if target in tables else _functions_named(op.operands, lookup, found)
            unknown.add(target)
            continue
        elif op.kind == "project" or op.primitive is getitem:
            fns = tables.get(base)
        elif op.kind == "copy":
            fns = found.get(base)
        elif op.kind == "function" and not any(
                type(e) in (cst.Name, cst.Attribute) and _functions_named([e], lookup, found)
                for e in op.operands):
            fns = returned_functions(op.primitive)
        if fns:
            found[target] = (*found.get(target, ()), *fns)
        else:
            unknown.add(target)
    return {name: fns for name, fns in found.items() if name not in unknown}


def _functions_named(exprs, lookup, local: dict | None = None) -> tuple | None:
    """The functions ``exprs`` (names or dotted names) refer to, ``local`` giving those of
    local names (``_t1 = np.tanh``); None unless each is one."""
    objs: tuple = ()
    for e in exprs:
        if type(e) is cst.Name and local and e.value in local:
            objs += local[e.value]
            continue
        obj = resolve_parts(_dotted(e), lookup)
        if not callable(obj) or isinstance(obj, type):
            return None
        objs += (obj,)
    return objs or None


def returned_functions(fn, _seen=frozenset()) -> tuple | None:
    """Every function the user function ``fn`` may return: each ``return`` names one
    (``return np.tanh if flag else twice``), reads a local display of them
    (``table = {"t": np.tanh}; return table[name]``) or returns what such a function returns
    (``return pick(0)``); None where one returns anything else."""
    from ..context import Context
    from ..source import get_source

    if fn in _seen or not inspect.isfunction(fn) or installed(fn):
        return None
    try:
        source = get_source(fn)
    except Exception:  # noqa: BLE001 - no source: nothing is proven
        return None
    lookup = Context(source=source, params=(), wrt=()).lookup
    bindings = _bindings(source.funcdef)
    found: tuple = ()
    for node in nodes(source.funcdef.body):
        if type(node) is cst.Return:
            fns = named(node.value, lookup, bindings, _seen | {fn}) \
                if node.value is not None else None
            if fns is None:
                return None
            found += fns
    return found or None


def named(expr, lookup, bindings=None, _seen=frozenset()) -> tuple | None:
    """Every function ``expr`` may be, read without running it: a name or dotted name of
    one, ``a if c else b`` of them, ``table[k]`` of a local display ``table`` (``bindings``:
    a function's locals and the values bound to them), or ``pick(0)`` of a user function
    whose returns are all such; None otherwise (a parameter, any other local)."""
    bindings = bindings or {}
    if type(expr) is cst.IfExp:
        body, orelse = named(expr.body, lookup, bindings, _seen), \
            named(expr.orelse, lookup, bindings, _seen)
        return None if body is None or orelse is None else body + orelse
    if type(expr) is cst.Subscript:
        expr = expr.value  # table[name]: any of the table's values
        values = bindings.get(expr.value) if type(expr) is cst.Name else None
        if not values or len(values) != 1 or \
                type(values[0]) not in (cst.Dict, cst.List, cst.Tuple):
            return None
        return _functions_named([e.value for e in values[0].elements], lookup)
    if type(expr) is cst.Call and type(expr.func) in (cst.Name, cst.Attribute) and \
            not (type(expr.func) is cst.Name and expr.func.value in bindings):
        return returned_functions(resolve_parts(_dotted(expr.func), lookup), _seen)
    if type(expr) is cst.Name and expr.value in bindings:
        return None  # a local: see helper_functions
    return _functions_named([expr], lookup) if type(expr) in (cst.Name, cst.Attribute) \
        else None


def helper_functions(funcdef: cst.FunctionDef, lookup) -> dict[str, tuple]:
    """``name -> every function it may hold`` for a helper's locals bound once, to a
    function (``act = np.tanh``, ``act = pick(1)``, ``act = acts["t"]`` of a display)."""
    bindings = _bindings(funcdef)
    found = {}
    for name, values in bindings.items():
        fns = named(values[0], lookup, bindings) if len(values) == 1 and values[0] is not None \
            else None
        if fns:
            found[name] = fns
    return found
