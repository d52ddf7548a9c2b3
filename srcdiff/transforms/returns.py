"""returns: early returns in branches become one return at the end.

Invariant after this pass: the function has exactly one ``return``, its last
statement. Where a branch returns early, the statements after the ``if`` move
into the other branch; every ``return e`` becomes ``_ret = e``.

    if x[0] < 0:                  if x[0] < 0:
        return np.sum(-x)    →        _ret = np.sum(-x)
    y = x * 2.0                   else:
    return np.sum(y)                  y = x * 2.0
                                      _ret = np.sum(y)
                                  return _ret

A function that returns a tuple (or a dict) does so the same way everywhere (validate checks
it): each return becomes one assignment per position (``_ret1 = a; _ret2 = b``) and the end
``return _ret1, _ret2`` (``{"loss": _ret_loss, ...}``).
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import Namer, names_in

__all__ = ["rewrite", "holds_return", "structure", "first_return", "ends"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    body = list(funcdef.body.body)
    last_is_return = isinstance(body[-1], cst.SimpleStatementLine) and holds_return(body[-1])
    if last_is_return and not any(holds_return(s) for s in body[:-1]):
        return module  # one return, at the end: nothing to do
    namer = Namer(names_in(module) | {ctx.rt})
    shape = structure(first_return(body))  # validate saw to it that every return has it
    if shape[0] == "tuple":  # return a, b: one name per position
        names = [cst.Name(namer.fresh_numbered("_ret")) for _ in range(shape[1])]
        result = cst.Tuple([cst.Element(n) for n in names], lpar=[], rpar=[])
    elif shape[0] == "dict":  # return {"loss": l, "h": h}: one name per key
        names = [cst.Name(namer.fresh("_ret_" + key.strip("'\"") if key.strip("'\"").isidentifier()
                                      else "_ret")) for key in shape[1]]
        result = cst.Dict([cst.DictElement(cst.SimpleString(k), n) for k, n in zip(shape[1], names)])
    else:
        names = [cst.Name(namer.fresh("_ret"))]
        result = names[0]
    body = _assignholds_return(_lift(body), names)
    body.append(cst.SimpleStatementLine([cst.Return(result)]))
    return module.with_changes(body=[funcdef.with_changes(body=funcdef.body.with_changes(body=body))])


def structure(ret: cst.Return | None) -> tuple:
    """What a return gives: ``("tuple", n)``, ``("dict", keys)`` or ``("value",)``."""
    value = ret.value if ret is not None else None
    if type(value) is cst.Tuple:
        return ("tuple", len(value.elements))
    if type(value) is cst.Dict:
        return ("dict", tuple(e.key.value for e in value.elements))
    return ("value",)


def first_return(statements):
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine:
            found = next((s for s in stmt.body if type(s) is cst.Return), None)
            if found is not None:
                return found
        elif type(stmt) is cst.If:
            orelse = stmt.orelse
            other = orelse.body.body if type(orelse) is cst.Else else [orelse] if orelse else []
            found = first_return(stmt.body.body) or first_return(other)
            if found is not None:
                return found
    return None


def ends(statements, kinds=(cst.Return,)) -> bool:
    """Whether every path through ``statements`` ends in a statement of ``kinds`` (an
    ``elif`` is a path of its own)."""
    if not statements:
        return False
    last = statements[-1]
    if type(last) is cst.If:
        orelse = last.orelse
        other = orelse.body.body if type(orelse) is cst.Else else [orelse] if orelse else []
        return ends(last.body.body, kinds) and ends(list(other), kinds)
    return type(last) is cst.SimpleStatementLine and any(type(s) in kinds for s in last.body)


def holds_return(stmt) -> bool:
    """Whether ``stmt`` holds a return (loops never do: validate rejects that)."""
    if type(stmt) is cst.SimpleStatementLine:
        return any(type(s) is cst.Return for s in stmt.body)
    if type(stmt) is cst.If:
        orelse = stmt.orelse
        other = orelse.body.body if type(orelse) is cst.Else else [orelse] if orelse else []
        return any(map(holds_return, stmt.body.body)) or any(map(holds_return, other))
    return False


def _ends(statements) -> bool:
    """Whether every path through ``statements`` ends in a return or a raise."""
    if not statements:
        return False
    last = statements[-1]
    if type(last) is cst.If:
        return type(last.orelse) is cst.Else and _ends(last.body.body) and \
            _ends(last.orelse.body.body)
    return holds_return(last) or type(last) is cst.SimpleStatementLine and \
        any(type(s) is cst.Raise for s in last.body)


def _lift(statements) -> list:
    out = []
    for i, stmt in enumerate(statements):
        if type(stmt) is cst.If and holds_return(stmt):
            rest = list(statements[i + 1:])
            orelse = stmt.orelse
            other = orelse.body.body if type(orelse) is cst.Else else [orelse] if orelse else []
            body = list(stmt.body.body)
            body = _lift(body if _ends(body) else body + rest)
            other = _lift(list(other) if _ends(list(other)) else list(other) + rest)
            new = stmt.with_changes(body=stmt.body.with_changes(body=body),
                                    orelse=cst.Else(cst.IndentedBlock(other)) if other else None)
            out.append(new)
            return out
        out.append(stmt)
    return out


def _assignholds_return(statements, names: list) -> list:
    """Each ``return`` as assignments to the result names: ``_ret = e``, or one per position
    or key (``_ret1 = a; _ret2 = b``)."""
    out = []
    for stmt in statements:
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Return:
            value = stmt.body[0].value or cst.Name("None")
            single = len(names) == 1 and type(value) not in (cst.Tuple, cst.Dict)
            values = [value] if single else [e.value for e in value.elements]
            stmt = stmt.with_changes(body=[cst.Assign([cst.AssignTarget(n)], v)
                                           for n, v in zip(names, values)])
        elif type(stmt) is cst.If:
            stmt = stmt.with_changes(body=stmt.body.with_changes(
                body=_assignholds_return(stmt.body.body, names)))
            if type(stmt.orelse) is cst.Else:
                stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                    body=_assignholds_return(stmt.orelse.body.body, names))))
        out.append(stmt)
    return out
