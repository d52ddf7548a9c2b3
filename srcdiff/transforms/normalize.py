"""normalize: one primitive operation per assignment.

Invariant after this pass: every assignment's value is one operation whose
operands are atoms (names, literals, tuples of literals, lists of atoms for
``np.stack``-like calls), and ``return`` returns an atom. Nested operations are
lifted into numbered temporaries ``_t1, _t2, …`` in evaluation order; the last
operation of a statement keeps the user's target. A ``# line N`` comment stays
on the first statement of each group.

    pred = x @ w + b               _t1 = x @ w
                           →       pred = _t1 + b
    return np.mean(pred ** 2)      _t2 = pred ** 2
                                   _out = np.mean(_t2)
                                   return _out
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.calls import classify, is_user_function, resolve
from ..context import Context
from ..names import Namer, is_kind, names_in, nodes

__all__ = ["rewrite", "is_atom", "local_variables", "target_names", "statement_normalizer"]

_CONSTANT_NAMES = frozenset({"None", "True", "False"})


def is_atom(node: cst.BaseExpression) -> bool:
    """Names, literals, negated numbers, ``...`` and tuples of those."""
    if isinstance(node, (cst.Name, cst.BaseNumber, cst.SimpleString, cst.ConcatenatedString,
                         cst.Ellipsis)):
        return True
    if type(node) is cst.UnaryOperation and type(node.operator) is cst.Minus:
        return isinstance(node.expression, cst.BaseNumber)
    if type(node) is cst.Tuple:
        return all(is_atom(e.value) for e in node.elements)
    return False


def _bare(node: cst.BaseExpression) -> cst.BaseExpression:
    """The expression without surrounding parentheses (a tuple, and a negated literal such
    as the base in ``(-0.5) ** 2``, keep theirs)."""
    if type(node) is cst.UnaryOperation:
        return node
    if type(node) is cst.Tuple:
        return node if node.lpar else node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    if getattr(node, "lpar", None):
        return node.with_changes(lpar=[], rpar=[])
    return node


_EMPTY = cst.Module(body=[])


class _OneLine(cst.CSTTransformer):
    """Every line break between tokens made a space: a statement written over several lines
    inside brackets (``a = (np.sin(x)`` / ``- np.cos(x))``) is read on one line, so the parts
    normalize lifts out of the brackets (``_t3 = _t1 - _t2``) stay valid lines."""

    def leave_ParenthesizedWhitespace(self, original, updated):
        return cst.SimpleWhitespace(" ")


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    normalized = statement_normalizer(module, ctx)
    body: list[cst.BaseStatement] = []
    for stmt in funcdef.body.body:
        body.extend(normalized(stmt))
    funcdef = funcdef.with_changes(body=funcdef.body.with_changes(body=body))
    return module.with_changes(body=[funcdef])


def statement_normalizer(module: cst.Module, ctx: Context):
    """``normalized(stmt) -> [statements]``: one statement of ``module``'s function in this
    pass's form, its temporaries named apart from every name of the module and from each
    other (for a pass that writes new lines into a function already normalized: the
    ``inline`` stage)."""
    namer = Namer(names_in(module) | {ctx.rt})
    namer.rt = ctx.rt
    local_names = local_variables(module.body[0])
    namer.calls_helper = lambda func: is_user_function(resolve(func, ctx, local_names))
    namer.gives_one_array = lambda call: _gives_one_array(call, ctx, local_names)
    namer.ufunc_at = lambda call: _ufunc_at(call, ctx, local_names)
    return lambda stmt: _normalize_statement(stmt, namer, local_names, ctx.rt)


def target_names(target: cst.BaseExpression) -> list[str]:
    """The names an assignment target binds: ``a`` or ``a, b``."""
    if type(target) is cst.Subscript and type(target.value) is cst.Name:
        return [target.value.value]
    if type(target) is cst.Name:
        return [target.value]
    if type(target) in (cst.Tuple, cst.List):
        return [e.value.value for e in target.elements if type(e.value) is cst.Name]
    return []


def local_variables(funcdef: cst.FunctionDef) -> frozenset[str]:
    """The function's parameters and every name it assigns."""
    names = {p.name.value for p in (*funcdef.params.posonly_params, *funcdef.params.params,
                                    *funcdef.params.kwonly_params)}

    for node in nodes(funcdef, skip=lambda n: is_kind(type(n), cst.BaseExpression)):
        kind = type(node)  # (these node kinds have no subclasses; isinstance is slow)
        if kind is cst.AssignTarget:
            names.update(target_names(node.target))
            if type(node.target) is cst.Subscript and type(node.target.value) is cst.Name:
                names.add(node.target.value.value)  # out[i] = v makes a new version of out
        elif kind is cst.Expr:
            func = getattr(node.value, "func", None)
            if type(func) is cst.Attribute and func.attr.value == "append" and \
                    type(func.value) is cst.Name:
                names.add(func.value.value)  # xs.append(v) makes a new version of xs
        elif kind is cst.For:
            if type(node.target) is cst.Name:
                names.add(node.target.value)
    return frozenset(names)


def _normalize_block(block: cst.IndentedBlock, namer: Namer, local_names) -> cst.IndentedBlock:
    body = []
    for stmt in block.body:
        body.extend(_normalize_statement(stmt, namer, local_names, namer.rt))
    return block.with_changes(body=body or [_line(cst.Pass())])


def _normalize_if(stmt: cst.If, namer: Namer, local_names) -> list[cst.BaseStatement]:
    """``if <test>:`` → ``_c1 = <test>`` then ``if _c1:`` (the pullback tests the same value);
    ``elif`` becomes ``else:`` holding the next test and its ``if``."""
    out: list[cst.BaseStatement] = []
    test = _bare(stmt.test)
    if type(test) is not cst.Name:
        name = cst.Name(namer.fresh_numbered("_c"))
        out.append(_line(cst.Assign([cst.AssignTarget(name)], test)))
        test = name
    orelse = stmt.orelse
    if type(orelse) is cst.Else:
        orelse = orelse.with_changes(body=_normalize_block(orelse.body, namer, local_names))
    elif type(orelse) is cst.If:
        nested = _normalize_if(orelse, namer, local_names)
        nested[0] = nested[0].with_changes(leading_lines=orelse.leading_lines)
        orelse = cst.Else(body=cst.IndentedBlock(nested))
    out.append(stmt.with_changes(test=test, body=_normalize_block(stmt.body, namer, local_names),
                                 orelse=orelse, leading_lines=()))
    out[0] = out[0].with_changes(leading_lines=stmt.leading_lines)
    return out


def _normalize_statement(stmt: cst.BaseStatement, namer: Namer,
                         local_names: frozenset[str], rt: str = "rt") -> list[cst.BaseStatement]:
    if type(stmt) is cst.If:
        return _normalize_if(stmt, namer, local_names)
    if type(stmt) in (cst.For, cst.While):  # range(...) and the while test stay as written
        return [stmt.with_changes(body=_normalize_block(stmt.body, namer, local_names))]
    if type(stmt) is not cst.SimpleStatementLine:
        return [stmt]
    if any("\n" in _EMPTY.code_for_node(small) for small in stmt.body):
        stmt = stmt.with_changes(body=[small.visit(_OneLine()) for small in stmt.body])
    out: list[cst.BaseStatement] = []
    for small in stmt.body:
        lifted: list[cst.BaseStatement] = []
        lift = _Lifter(namer, lifted, local_names)
        if type(small) is cst.Assign and type(small.targets[0].target) in (cst.Tuple, cst.List):
            names = [e.value for e in small.targets[0].target.elements]
            value = _bare(small.value)
            if type(value) is cst.Call and not namer.gives_one_array(value):
                # a, b = helper(x), a, b = np.split(x, 2): one call, several results
                target = cst.Tuple([cst.Element(n, comma=cst.Comma()) if len(names) == 1 else
                                    cst.Element(n) for n in names], lpar=[], rpar=[])  # (p, = h(x))
                lifted.append(_line(cst.Assign([cst.AssignTarget(target)], lift.operation(value))))
            else:  # a, b = x, a, b = np.exp(x): the rows of an array, as many as names
                whole = lift.atom(value)
                lifted.append(_line(cst.Expr(cst.Call(
                    cst.Attribute(cst.Name(rt), cst.Name("unpacked")),
                    [cst.Arg(whole), cst.Arg(cst.Integer(str(len(names))))]))))
                for i, name in enumerate(names):
                    row = cst.Subscript(whole, [cst.SubscriptElement(cst.Index(cst.Integer(str(i))))])
                    lifted.append(_line(cst.Assign([cst.AssignTarget(name)], row)))
        elif type(small) is cst.Assign and type(small.targets[0].target) is cst.Subscript:
            # out[i] = v on a local array → out = rt.setitem(out, rt.at[i], v): a new version
            target = small.targets[0].target
            value = lift.atom(small.value)
            key = cst.Subscript(cst.Attribute(cst.Name(rt), cst.Name("at")),
                                [lift._element(e) for e in target.slice])
            call = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("setitem")),
                            [cst.Arg(target.value), cst.Arg(key), cst.Arg(value)])
            lifted.append(_line(cst.Assign([cst.AssignTarget(target.value)], call)))
        elif type(small) is cst.Assign:
            value = lift.operation(small.value)
            lifted.append(_line(cst.Assign(targets=small.targets, value=value)))
        elif type(small) is cst.Return and isinstance(_bare(small.value), (cst.Tuple, cst.Dict)):
            # each returned item an atom, a display among them bound to a temporary of its own
            # (return (s, x), x: the pullback seeds items that are names, not displays)
            value = _bare(small.value)
            value = value.with_changes(elements=[
                e.with_changes(value=lift.element(e.value)) for e in value.elements])
            lifted.append(_line(small.with_changes(value=value)))
        elif type(small) is cst.Return and small.value is not None:
            value = small.value
            if not is_atom(value):
                target = namer.fresh("_out")
                lifted.append(_line(cst.Assign([cst.AssignTarget(cst.Name(target))],
                                               lift.operation(value))))
                value = cst.Name(target)
            lifted.append(_line(small.with_changes(value=value)))
        elif type(small) is cst.Expr and _is_append(small.value, local_names):
            # xs.append(v) → xs = rt.append(xs, v): a new version of the list
            xs = small.value.func.value
            value = lift.atom(small.value.args[0].value)
            call = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("append")),
                            [cst.Arg(xs), cst.Arg(value)])
            lifted.append(_line(cst.Assign([cst.AssignTarget(xs)], call)))
        elif type(small) is cst.Expr and getattr(namer, "ufunc_at", None) and \
                namer.ufunc_at(small.value):
            # np.add.at(z, i, v) on a local array → z = rt.added_at(z, i, v): a new version
            # (np.subtract.at adds -v)
            z, key, values = (a.value for a in small.value.args)
            values = lift.atom(values)
            if namer.ufunc_at(small.value) == "subtract":
                values = lift.atom(cst.UnaryOperation(cst.Minus(), values))
            call = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("added_at")),
                            [cst.Arg(z), cst.Arg(lift.atom(key)), cst.Arg(values)])
            lifted.append(_line(cst.Assign([cst.AssignTarget(z)], call)))
        elif type(small) is cst.Expr:
            if type(small.value) in (cst.SimpleString, cst.ConcatenatedString):
                continue  # the docstring
            lifted.append(_line(small.with_changes(value=lift.operation(small.value))))
        else:
            lifted.append(_line(small))
        out.extend(lifted)
    if out:
        out[0] = out[0].with_changes(leading_lines=stmt.leading_lines)
    return out


def _gives_one_array(call: cst.Call, ctx: Context, local_names) -> bool:
    """A call of a primitive whose rule gives one array (``np.exp(x)``), not a sequence of
    results (``np.split``) nor a call of a function srcdiff differentiates or meets when
    the code runs (``helper(x)``, ``f(x)``): unpacking it takes the array's rows."""
    op = classify(call, ctx, local_names)
    return op.kind == "rule" and not op.rule.sequence


def _ufunc_at(call, ctx: Context, local_names) -> str | None:
    """``"add"`` for ``np.add.at(z, i, v)`` on a local array ``z`` (three arguments by
    position), ``"subtract"`` for ``np.subtract.at``; else None."""
    if not (type(call) is cst.Call and type(call.func) is cst.Attribute and
            call.func.attr.value == "at" and len(call.args) == 3 and
            all(a.keyword is None and not a.star for a in call.args) and
            type(call.args[0].value) is cst.Name and call.args[0].value.value in local_names):
        return None
    ufunc = resolve(call.func.value, ctx, local_names)
    return {np.add: "add", np.subtract: "subtract"}.get(ufunc) if isinstance(ufunc, np.ufunc) \
        else None


def _is_append(call, local_names) -> bool:
    """``xs.append(v)`` on a local list."""
    return type(call) is cst.Call and type(call.func) is cst.Attribute and \
        call.func.attr.value == "append" and type(call.func.value) is cst.Name and \
        call.func.value.value in local_names and len(call.args) == 1 and not call.args[0].keyword


def _line(small: cst.BaseSmallStatement) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine(body=[small])


class _Lifter:
    """Lifts nested operations of one expression into temporaries, in evaluation order."""

    def __init__(self, namer: Namer, out: list, local_names: frozenset[str]):
        self.namer, self.out, self.local_names = namer, out, local_names

    def atom(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """``node`` as an atom, lifting it into a temporary when it is an operation."""
        node = _bare(node)
        if is_atom(node):
            return node
        if type(node) in (cst.List, cst.Tuple):
            return node.with_changes(elements=[e.with_changes(value=self.element(e.value))
                                               for e in node.elements])
        if type(node) is cst.IfExp:
            return self.conditional(node)
        value = self.operation(node)
        name = cst.Name(self.namer.temp())
        self.out.append(_line(cst.Assign([cst.AssignTarget(name)], value)))
        return name

    def element(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """An element of a list or tuple display: an atom, and a display holding variables
        (``[[a, b], c]``) a temporary of its own, so that each container is one operation."""
        node = self.atom(node)
        return self.name(node) if self.holds_variables(node) else node

    def holds_variables(self, node: cst.BaseExpression) -> bool:
        """A list, tuple or dict display that reads a variable (``(a, 2.0)``, not ``(2, 3)``)."""
        return type(node) in (cst.List, cst.Tuple, cst.Dict) and any(
            type(n) is cst.Name and n.value not in _CONSTANT_NAMES for n in nodes(node))

    def name(self, value: cst.BaseExpression) -> cst.Name:
        """A temporary bound to ``value`` (already an operation on atoms)."""
        name = cst.Name(self.namer.temp())
        self.out.append(_line(cst.Assign([cst.AssignTarget(name)], value)))
        return name

    def operation(self, node: cst.BaseExpression) -> cst.BaseExpression:
        """``node`` with every operand made an atom (the operation itself stays)."""
        node = _bare(node)
        if type(node) is cst.BinaryOperation:
            return node.with_changes(left=self.atom(node.left), right=self.atom(node.right))
        if type(node) is cst.UnaryOperation:
            if is_atom(node):
                return node
            return node.with_changes(expression=self.atom(node.expression))
        if type(node) is cst.Comparison:
            return node.with_changes(
                left=self.atom(node.left),
                comparisons=[c.with_changes(comparator=self.atom(c.comparator))
                             for c in node.comparisons])
        if type(node) is cst.BooleanOperation:
            return node.with_changes(left=self.atom(node.left), right=self.atom(node.right))
        if type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and not self._is_global(func.value):
                func = func.with_changes(value=self.atom(func.value))
            elif type(func) in (cst.Subscript, cst.Call):  # acts["relu"](x): name it first
                func = self.atom(func)
            args = [a.with_changes(value=self.atom(a.value)) for a in node.args]
            if any(self.holds_variables(a.value) for a in args) and \
                    getattr(self.namer, "calls_helper", None) and self.namer.calls_helper(func):
                # helper([a, b]): the list a value of its own, differentiated like any argument
                args = [a.with_changes(value=self.name(a.value)) if self.holds_variables(a.value)
                        else a for a in args]
            return node.with_changes(func=func, args=args)
        if type(node) is cst.Attribute:
            if self._is_global(node.value):
                return node
            return node.with_changes(value=self.atom(node.value))
        if type(node) is cst.Subscript:
            value = node.value if type(node.value) is cst.Name else self.atom(node.value)
            return node.with_changes(value=value, slice=[self._element(e) for e in node.slice])
        if type(node) in (cst.List, cst.Tuple):
            return self.atom(node)
        if type(node) is cst.Dict:
            return node.with_changes(elements=[e.with_changes(value=self.atom(e.value))
                                               for e in node.elements])
        if type(node) is cst.IfExp:
            return self.atom(node)
        return node

    def conditional(self, node: cst.IfExp) -> cst.Name:
        """``a if c else b`` → ``if c: _t = a`` / ``else: _t = b``: only one side runs."""
        target = cst.Name(self.namer.temp())
        branches = []
        for value in (node.body, node.orelse):
            out: list = []
            lifter = _Lifter(self.namer, out, self.local_names)
            out.append(_line(cst.Assign([cst.AssignTarget(target)], lifter.operation(value))))
            branches.append(cst.IndentedBlock(out))
        test = _bare(node.test)
        if type(test) is not cst.Name:
            name = cst.Name(self.namer.fresh_numbered("_c"))
            self.out.append(_line(cst.Assign([cst.AssignTarget(name)], test)))
            test = name
        self.out.append(cst.If(test=test, body=branches[0], orelse=cst.Else(body=branches[1])))
        return target

    def _is_global(self, node: cst.BaseExpression) -> bool:
        """``np`` or ``np.linalg`` (a path from a global name), or a local name itself."""
        if type(node) is cst.Name:
            return True
        return type(node) is cst.Attribute and type(node.value) in (cst.Name, cst.Attribute) \
            and self._head(node) not in self.local_names and self._is_global(node.value)

    @staticmethod
    def _head(node: cst.BaseExpression) -> str:
        while type(node) is cst.Attribute:
            node = node.value
        return node.value if type(node) is cst.Name else ""

    def _element(self, element: cst.SubscriptElement) -> cst.SubscriptElement:
        s = element.slice
        if type(s) is cst.Index:
            return element.with_changes(slice=s.with_changes(value=self.atom(s.value)))
        if type(s) is cst.Slice:
            parts = {k: (None if getattr(s, k) is None else self.atom(getattr(s, k)))
                     for k in ("lower", "upper", "step")}
            return element.with_changes(slice=s.with_changes(**parts))
        return element



