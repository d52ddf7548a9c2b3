"""lasts: a list the function reads only at its last entry is that entry, one variable.

A recurrence is often written with its states in a list, ``hs = [h0]``, one
``hs.append(f(hs[-1]))`` a step, ``hs[-1]`` at the end. Where nothing else reads the list, it
is a loop-carried state spelled another way: the later stages know that form (the ``rows``
stage reads its states from the tape's stack; the adjoint is one array a step), while a list
costs an append, a pop of its adjoint and an addition into the adjoint list a step (the
``lists`` stage). This pass, before any other sees the function, writes such a list as the
variable that holds its last entry:

    hs = [h0]                                        hs_last = h0
    for t in range(xs.shape[0]):                     for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))  →    hs_last = np.tanh(W @ hs_last + U @ xs[t])
    return np.sum(hs[-1])                            return np.sum(hs_last)

A list qualifies where every occurrence of its name in the function is one of

- ``hs = [e]``, a one-element display bound to the name (the statement alone on its line);
- ``hs.append(v)``, a statement of its own, one positional argument;
- ``hs[-1]`` read (not assigned, deleted or a loop target);

none of them inside a nested function, lambda or class, the name no parameter (and so, by
the rule above, in no ``global``, ``nonlocal`` or ``del`` statement, never passed, returned,
measured or iterated). Then on every path ``hs[-1]`` is the value appended last, or the
display's entry: the variable holds the same object at each read. The statements keep their
line markers, so each adjoint block still quotes the line as written.

Invariant after this pass: no list that qualifies remains.
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import Namer, names_in, nodes, occurrences

__all__ = ["rewrite"]

_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[-1]
    if not any(_appended(n) is not None for n in nodes(funcdef)):
        return module  # no .append statement: spare the analysis
    forms = _Forms()
    funcdef.body.visit(forms)
    counts = occurrences(funcdef)
    params = set(ctx.params) | {p.name.value for p in nodes(funcdef.params) if type(p) is cst.Param}
    lists = {name for name in forms.displays if name not in params and name in forms.lasts and
             forms.displays[name] + forms.appends.get(name, 0) + forms.lasts[name] == counts[name]}
    if not lists:
        return module
    namer = Namer(names_in(module) | {ctx.rt})
    names = {name: namer.fresh(f"{name}_last") for name in sorted(lists)}
    body = funcdef.body.visit(_AsLast(names))
    return module.with_changes(body=[*module.body[:-1], funcdef.with_changes(body=body)])


def _display(stmt) -> tuple[str, cst.BaseExpression] | None:
    """``(name, e)`` of a line ``name = [e]``."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1):
        return None
    assign = stmt.body[0]
    if not (type(assign) is cst.Assign and len(assign.targets) == 1 and
            type(assign.targets[0].target) is cst.Name and type(assign.value) is cst.List):
        return None
    elements = assign.value.elements
    if len(elements) != 1 or type(elements[0]) is not cst.Element:  # not [*e]
        return None
    return assign.targets[0].target.value, elements[0].value


def _appended(stmt) -> tuple[str, cst.BaseExpression] | None:
    """``(name, v)`` of a line ``name.append(v)``."""
    if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
            type(stmt.body[0]) is cst.Expr):
        return None
    call = stmt.body[0].value
    if not (type(call) is cst.Call and type(call.func) is cst.Attribute and
            type(call.func.value) is cst.Name and call.func.attr.value == "append" and
            len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star):
        return None
    return call.func.value.value, call.args[0].value


def _last(node) -> str | None:
    """``name`` of ``name[-1]``."""
    if not (type(node) is cst.Subscript and type(node.value) is cst.Name and
            len(node.slice) == 1 and type(node.slice[0].slice) is cst.Index):
        return None
    index = node.slice[0].slice.value
    if type(index) is cst.UnaryOperation and type(index.operator) is cst.Minus and \
            type(index.expression) is cst.Integer and index.expression.value == "1":
        return node.value.value
    return None


def _targets(node) -> list:
    """The subscripts a statement assigns or deletes (and the elements of tuple targets)."""
    if type(node) in (cst.Tuple, cst.List):
        return [t for e in node.elements for t in _targets(e.value)]
    if type(node) is cst.StarredElement:
        return _targets(node.value)
    return [node]


class _Forms(cst.CSTVisitor):
    """How often each name occurs in each of the three forms, outside nested scopes."""

    def __init__(self):
        self.displays: dict[str, int] = {}
        self.appends: dict[str, int] = {}
        self.lasts: dict[str, int] = {}
        self.stored: set[int] = set()  # ids of subscripts written to, not read

    def visit_FunctionDef(self, node):
        return False  # its occurrences count against the name (occurrences() sees them)

    def visit_Lambda(self, node):
        return False

    def visit_ClassDef(self, node):
        return False

    def visit_SimpleStatementLine(self, node):
        for form, counts in ((_display(node), self.displays), (_appended(node), self.appends)):
            if form is not None:
                counts[form[0]] = counts.get(form[0], 0) + 1
        for small in node.body:
            written = [t.target for t in small.targets] if type(small) is cst.Assign else \
                [small.target] if type(small) in (cst.AugAssign, cst.AnnAssign, cst.Del) else []
            self.stored.update(id(t) for w in written for t in _targets(w))

    def visit_For(self, node):
        self.stored.update(id(t) for t in _targets(node.target))

    def visit_WithItem(self, node):
        if node.asname is not None:
            self.stored.update(id(t) for t in _targets(node.asname.name))

    def visit_Subscript(self, node):
        name = _last(node)
        if name is not None and id(node) not in self.stored:
            self.lasts[name] = self.lasts.get(name, 0) + 1


class _AsLast(cst.CSTTransformer):
    """Each qualifying list's three forms written with its variable (``names``: list → variable)."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def leave_SimpleStatementLine(self, original, updated):
        for form in (_display(updated), _appended(updated)):
            if form is not None and form[0] in self.names:
                target = cst.AssignTarget(cst.Name(self.names[form[0]]))
                return updated.with_changes(body=[cst.Assign([target], form[1])])
        return updated

    def leave_Subscript(self, original, updated):
        name = _last(updated)
        return cst.Name(self.names[name]) if name in self.names else updated
