"""keys: a local dict read and written only by constant keys is one variable per key.

Code written without an autodiff tool in mind keeps its intermediate values in a dict,
``cache = {}``, ``cache["z1"] = x @ W1``, ``cache["a1"] = np.tanh(cache["z1"])``. Where
nothing else reads the dict, its keys are plain variables spelled another way: the later
stages know variables (their shapes, their dtypes, which temporaries a product may reuse),
while a dict makes every write a new version of a container whose adjoint is a container. This
pass, right after ``desugar``, writes such a dict as one variable per key:

    cache = {}                                →    (nothing)
    cache["z1"] = x @ W1                      →    cache_z1 = x @ W1
    cache["a1"] = np.tanh(cache["z1"])        →    cache_a1 = np.tanh(cache_z1)
    params = {"w": w * 2.0, "b": b}           →    params_w = w * 2.0
                                                   params_b = b

A dict qualifies where

- it is bound once, by a display of constant string keys that are identifiers (``{}``,
  ``{"w": w}``), a statement of its own in the function's body (not in a branch or a loop);
- every other occurrence of its name is ``name["key"]``, read or assigned, outside nested
  functions, lambdas and classes: never passed, returned, iterated, measured or tested
  (``"k" in d``) — so no one sees the dict itself;
- each key is defined before it is read, on every path: by the display, or by an assignment
  that is a statement of the function's body (not in a branch or a loop), before every
  statement that reads it; a branch or a loop may assign a key defined already.

Then every read of ``name["key"]`` finds the value the variable holds. The statements keep
their line markers, so each adjoint block still quotes the line as written.

Invariant after this pass: no dict that qualifies remains.
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import Namer, names_in, nodes, occurrences
from .softmax import assigned

__all__ = ["rewrite"]

_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[-1]
    body = funcdef.body.body
    displays = {}  # name -> (index of its statement, its keys)
    for i, stmt in enumerate(body):
        found = _display(stmt)
        if found is not None:
            name, keys = found
            displays[name] = None if name in displays else (i, keys)  # bound twice: no
    displays = {n: d for n, d in displays.items() if d is not None and n not in ctx.params}
    if not displays:
        return module
    counts = occurrences(funcdef)
    keyed = _keyed(funcdef.body, set(displays))
    dicts = [n for n in displays if keyed.get(n, -1) + 1 == counts[n] and
             _defined_before_read(body, n, *displays[n])]
    if not dicts:
        return module
    namer = Namer(names_in(module) | {ctx.rt})
    names = {(n, k): namer.fresh(f"{n}_{k}") for n in sorted(dicts) for k in
             sorted(_keys_of(funcdef.body, n) | set(displays[n][1]))}
    new_body = []
    for stmt in body:
        found = _display(stmt)
        if found is not None and found[0] in dicts:  # name = {"k": e, …} → name_k = e, …
            lines = [cst.SimpleStatementLine([cst.Assign(
                [cst.AssignTarget(cst.Name(names[found[0], e.key.evaluated_value]))], e.value)])
                for e in stmt.body[0].value.elements]
            if lines:
                lines[0] = lines[0].with_changes(leading_lines=stmt.leading_lines)
            new_body += lines
            continue
        new_body.append(stmt.visit(_AsVariables(names)))
    return module.with_changes(body=[*module.body[:-1], funcdef.with_changes(
        body=funcdef.body.with_changes(body=new_body))])


def _display(stmt) -> tuple[str, tuple[str, ...]] | None:
    """``(name, keys)`` of a line ``name = {"k": e, …}`` of constant identifier keys."""
    found = assigned(stmt)
    if found is None or type(found[1]) is not cst.Dict:
        return None
    keys = []
    for element in found[1].elements:
        key = _constant(element.key) if type(element) is cst.DictElement else None
        if key is None:
            return None
        keys.append(key)
    return found[0], tuple(keys)


def _constant(node) -> str | None:
    """The string of a constant key that can name a variable (``"z1"``), else None."""
    if type(node) is not cst.SimpleString:
        return None
    value = node.evaluated_value
    return value if isinstance(value, str) and value.isidentifier() else None


def _key(node, names) -> tuple[str, str] | None:
    """``(name, key)`` of ``name["key"]`` for a name of ``names``, else None."""
    if not (type(node) is cst.Subscript and type(node.value) is cst.Name and
            node.value.value in names and len(node.slice) == 1 and
            type(node.slice[0].slice) is cst.Index):
        return None
    key = _constant(node.slice[0].slice.value)
    return None if key is None else (node.value.value, key)


def _keyed(block, names) -> dict[str, int]:
    """How often each of ``names`` is spelled ``name["key"]``, outside nested scopes (which
    then count against it)."""
    found: dict[str, int] = {}
    for node in nodes(block, skip=lambda n: type(n) in _SCOPES):
        key = _key(node, names)
        if key is not None:
            found[key[0]] = found.get(key[0], 0) + 1
    return found


def _keys_of(block, name: str) -> set[str]:
    return {k[1] for k in (_key(n, {name}) for n in nodes(block)) if k is not None}


def _defined_before_read(body, name: str, start: int, keys) -> bool:
    """Whether every read of ``name["key"]`` comes after a definition of the key on every
    path: the display (statement ``start``), or an assignment that is a statement of
    ``body``; a use before the display, or a write of a key not yet defined in a branch or
    a loop, disqualifies."""
    defined = set(keys)

    def used(node) -> list[str]:
        return [k[1] for k in (_key(n, {name}) for n in nodes(node)) if k is not None]

    for i, stmt in enumerate(body):
        if i == start:
            continue
        uses = used(stmt)
        if i < start:
            if uses:
                return False
            continue
        written = _written(stmt, name)
        if written is not None:  # name["k"] = value: the value's reads come first
            if any(k not in defined for k in used(stmt.body[0].value)):
                return False
            defined.add(written)
        elif any(k not in defined for k in uses):
            return False
    return True


def _written(stmt, name: str) -> str | None:
    """``key`` of a line ``name["key"] = value``."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1):
        return None
    key = _key(stmt.body[0].targets[0].target, {name})
    return None if key is None else key[1]


class _AsVariables(cst.CSTTransformer):
    """``name["key"]`` → the key's variable, read or assigned."""

    def __init__(self, names: dict):
        self.names = names

    def leave_Subscript(self, original, updated):
        key = _key(updated, {n for n, _ in self.names})
        if key is None or key not in self.names:
            return updated
        return cst.Name(self.names[key], lpar=updated.lpar, rpar=updated.rpar)
