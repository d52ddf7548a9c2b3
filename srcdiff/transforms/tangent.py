"""tangent: forward mode, a tangent statement after each primal statement.

Input: a normalized, renamed function (one operation per assignment, one assignment per
name). Output: ``f_jvp(<f's parameters>, <a tangent per wrt parameter>)`` that runs the
primal statements and, after each one that depends on a ``wrt`` parameter, the statement
for its tangent; it returns ``(value, tangent)``. Loops and branches stay as they are: the
tangent of a loop's state is computed in the same iteration, so nothing is kept. How each
primitive's tangent is written is ``runtime/tangents.py``'s table; each user line's group
of statements starts with ``# tangent of: <line>  (line N)``.

    def f(x, w):                    def f_jvp(x, w, dx):
        _t1 = x * w                     # tangent of: return np.sin(x * w)  (line 3)
        _out = np.sin(_t1)      →       _t1 = x * w
        return _out                     d_t1 = dx * w
                                        _out = np.sin(_t1)
                                        d_out = d_t1 * np.cos(_t1)
                                        return _out, d_out
"""

from __future__ import annotations

import operator

import libcst as cst
import numpy as np

import srcdiff.runtime as runtime
from srcdiff.runtime.tangents import TangentRule, tangent_kind

from ..analysis.activity import analyze, assignments, container_names
from ..analysis.complex_values import maybe_complex
from ..analysis.calls import Op, classify
from ..context import Context, is_marker, parse_marker
from ..errors import NotDifferentiableError
from ..names import Namer, names_in
from ..templates import fill, runtime_spelling, template_for
from .normalize import local_variables, target_names
from .reverse import _AdjointWriter, _Expand
from .simplify import simplify_line

__all__ = ["rewrite", "TANGENT_FIRST"]

TANGENT_FIRST = "tangent_first"  # option: return (tangent, value), for hvp's has_aux


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    local_names = local_variables(funcdef)
    activity = analyze(funcdef, ctx, local_names)
    varied = activity.varied & activity.useful  # a tangent only where it can reach the output
    namer = Namer(names_in(module) | {ctx.rt, ctx.name})
    writer = _TangentWriter(ctx, namer, varied, local_names,
                            container_names(funcdef, ctx, local_names))
    writer.complex_names = maybe_complex(funcdef, ctx, local_names)  # from np.fft, eigvals…
    writer.temps = {target: op.spelled for _, target, op, _ in
                    assignments(funcdef, ctx, local_names)
                    if isinstance(target, str) and target.startswith("_t")}  # for messages
    for p in ctx.wrt:
        writer.tangent(p)  # the parameters' tangents are named first: dx, dW
    body = writer.block(funcdef.body.body[:-1])
    body.append(writer.result(funcdef.body.body[-1]))
    params = [cst.Param(cst.Name(p)) for p in ctx.params] + \
        [cst.Param(cst.Name(writer.tangent(p))) for p in ctx.wrt]
    jvp = cst.FunctionDef(name=cst.Name(namer.fresh(f"{ctx.name}_jvp")),
                          params=cst.Parameters(params), body=cst.IndentedBlock(body))
    links = [statement for _, statement in writer.links.values()]
    if links:
        links[0] = links[0].with_changes(leading_lines=[cst.EmptyLine(
            comment=cst.Comment("# tangents of the functions it calls, compiled on first use"))])
        jvp = jvp.with_changes(leading_lines=[cst.EmptyLine(indent=False)] * 2)
    return cst.Module(body=[*links, jvp])


def _code(node) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _assign(target, value) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], value)])


def _is_number(node) -> bool:
    return type(node) in (cst.Integer, cst.Float) or type(node) is cst.UnaryOperation \
        and type(node.expression) in (cst.Integer, cst.Float)


# elementwise primitives whose adjoint formula (srcdiff's real rule, with the tangent for g) is
# their complex derivative times the tangent: analytic functions, and np.where's selection
_HOLOMORPHIC = frozenset({
    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pow,
    np.add, np.subtract, np.multiply, np.true_divide, np.negative, np.positive, np.power,
    np.square, np.exp, np.expm1, np.log, np.log1p, np.sqrt, np.sin, np.cos, np.tan, np.sinh,
    np.cosh, np.tanh, np.reciprocal, np.where, runtime.where_positive,
})


def _holomorphic(primitive) -> bool:
    try:
        return primitive in _HOLOMORPHIC
    except TypeError:
        return False


def _substitute(node: cst.CSTNode, replacements: dict[int, cst.CSTNode]) -> cst.CSTNode:
    """A copy of ``node`` with each sub-node whose ``id`` is a key of ``replacements``
    replaced (operands are found by identity: ``x @ x`` has two)."""

    class Replace(cst.CSTTransformer):
        def on_leave(self, original, updated):
            found = replacements.get(id(original))
            return updated if found is None else found

    return node.visit(Replace())


class _TangentWriter:
    def __init__(self, ctx: Context, namer: Namer, varied, local_names, containers):
        self.ctx, self.namer, self.varied, self.local_names = ctx, namer, varied, local_names
        self.containers = containers  # params["W"], p.W: projections, as reverse mode reads them
        self.links: dict = {}
        self.names: dict[str, str] = {}
        self.line = 0
        self.spellings: dict = {}
        self.temps: dict = {}

    # ----- names and atoms -----

    def tangent(self, name: str) -> str:
        if name not in self.names:
            self.names[name] = self.namer.adjoint(name)
        return self.names[name]

    def active(self, node) -> bool:
        return type(node) is cst.Name and node.value in self.varied

    def touches(self, node) -> bool:
        """An operand that has a tangent: an active name, or a list/tuple display holding one."""
        if type(node) in (cst.List, cst.Tuple):
            return any(self.touches(e.value) for e in node.elements)
        return self.active(node)

    def rt(self, name: str) -> cst.Attribute:
        return cst.Attribute(cst.Name(self.ctx.rt), cst.Name(name))

    def zero(self, node) -> cst.BaseExpression:
        if _is_number(node):
            return cst.Float("0.0")
        return cst.Call(self.rt("zero_tangent"), [cst.Arg(node)])

    def of(self, node) -> cst.BaseExpression:
        """The tangent of an operand: its tangent's name, a display of them, or a zero."""
        if type(node) in (cst.List, cst.Tuple) and self.touches(node):
            return node.with_changes(elements=[e.with_changes(value=self.of(e.value))
                                               for e in node.elements])
        if self.active(node):
            return cst.Name(self.tangent(node.value))
        return self.zero(node)

    # ----- statements -----

    def block(self, statements) -> list:
        out = []
        for stmt in statements:
            marker = parse_marker(getattr(stmt, "leading_lines", ()))
            if marker is not None:
                self.line = marker[0]
                stmt = stmt.with_changes(leading_lines=[
                    *(line for line in stmt.leading_lines if not is_marker(line)),
                    cst.EmptyLine(comment=cst.Comment(
                        f"# tangent of: {marker[1]}  (line {marker[0]})"))])
            if type(stmt) in (cst.If, cst.For, cst.While):  # the blocks, in place
                if type(stmt) is cst.For:
                    self.refuse_active_iteration(stmt)
                orelse = stmt.orelse
                if type(orelse) is cst.If:  # elif
                    orelse = self.block([orelse])[0]
                elif orelse is not None:
                    orelse = orelse.with_changes(body=orelse.body.with_changes(
                        body=self.block(orelse.body.body)))
                out.append(stmt.with_changes(body=stmt.body.with_changes(
                    body=self.block(stmt.body.body)), orelse=orelse))
            elif type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign:
                out += self.assignment(stmt)
            else:
                out.append(stmt)
        return out

    def refuse_active_iteration(self, stmt: cst.For) -> None:
        names = set(target_names(stmt.target))
        if names & self.varied:
            raise self.ctx.located(
                f"srcdiff's forward mode cannot iterate over '{_code(stmt.iter)}', which depends "
                "on a differentiated argument; loop over an index instead "
                "(for i in range(len(xs)): x = xs[i]).", self.line, token="for")

    def assignment(self, stmt: cst.SimpleStatementLine) -> list:
        assign = stmt.body[0]
        target = assign.targets[0].target
        names = target_names(target)
        op = classify(assign.value, self.ctx, self.local_names, self.containers)
        if not any(n in self.varied for n in names):
            return [stmt]
        if op.kind == "function":
            return self.function_call(stmt, target, op)
        if op.kind == "dynamic":
            return self.dynamic_call(stmt, target, op)
        value = self.tangent_value(target, op)
        if type(target) is cst.Tuple:
            lhs = cst.Tuple([cst.Element(cst.Name(self.tangent(n))) for n in names],
                            lpar=[], rpar=[])
        else:
            lhs = cst.Name(self.tangent(target.value))
        return [stmt, simplify_line(_assign(lhs, value))]  # 2 * dx * x ** 1 → 2 * dx * x

    def tangent_value(self, target, op: Op) -> cst.BaseExpression:
        if op.kind == "copy":
            return self.of(op.operands[0])
        if op.kind in ("constant", "nondiff"):
            return self.zero(target)
        if op.kind == "project":  # params["W"], p.W: the same field of the tangent
            base = op.operands[0]
            return _substitute(op.spelled, {id(base): self.of(base)}) if self.active(base) \
                else self.zero(target)
        if op.kind == "pack":  # {"w": w}, (a, b): the same display of the tangents
            return _substitute(op.spelled, {id(e): self.of(e) for e in op.operands})
        if op.kind == "rule":
            return self.rule(target, op)
        raise self.unknown(op, op.problem or f"the expression {op.text}")

    def unknown(self, op: Op, what: str) -> NotDifferentiableError:
        spelled = _code(op.spelled.visit(_Expand(self.temps)))  # the user's words, not _t1
        return self.ctx.error(
            NotDifferentiableError,
            f"srcdiff's forward mode cannot differentiate {what}: '{spelled}' receives a value "
            "that depends on a differentiated argument. Use reverse mode (srcdiff.vjp, "
            "srcdiff.jacrev) for it, or wrap the value in srcdiff.stop_gradient(...) if no "
            "derivative should flow through it.", self.line, token=op.text.split("(")[0])

    def result(self, stmt: cst.SimpleStatementLine) -> cst.SimpleStatementLine:
        marker = parse_marker(stmt.leading_lines)
        if marker is not None:
            stmt = stmt.with_changes(leading_lines=[
                *(line for line in stmt.leading_lines if not is_marker(line)),
                cst.EmptyLine(comment=cst.Comment(f"# {marker[1]}  (line {marker[0]})"))])
        value = stmt.body[0].value
        items = [cst.Element(value), cst.Element(self.of_output(value))]
        if TANGENT_FIRST in self.ctx.options:  # second order differentiates the tangent alone
            items.reverse()
        pair = cst.Tuple(items, lpar=[], rpar=[])
        return stmt.with_changes(body=[cst.Return(pair)])

    def of_output(self, value) -> cst.BaseExpression:
        if type(value) in (cst.Tuple, cst.List):
            return value.with_changes(elements=[e.with_changes(value=self.of_output(e.value))
                                                for e in value.elements])
        if type(value) is cst.Dict:
            return value.with_changes(elements=[e.with_changes(value=self.of_output(e.value))
                                                for e in value.elements])
        return self.of(value)

    # ----- primitives -----

    def rule(self, target, op: Op) -> cst.BaseExpression:
        kind = tangent_kind(op.primitive)
        active = [i for i, e in enumerate(op.operands) if self.touches(e)]
        if kind is None:
            raise self.unknown(op, f"'{op.text.split('(')[0]}' (it has no tangent rule yet)")
        complex_in = [e.value for e in op.operands if type(e) is cst.Name and
                      e.value in self.complex_names]
        if complex_in and kind not in ("linear", "multilinear") and \
                not (kind == "elementwise" and _holomorphic(op.primitive)):
            raise self.unknown(op, f"'{op.text.split('(')[0]}' of a value that may be complex"
                               ": forward mode carries complex tangents "
                               "through linear and holomorphic operations only (np.fft, + - * "
                               "/, np.exp…), not np.abs, np.angle, comparisons of them")
        if kind == "linear":
            return _substitute(op.spelled, {id(e): self.of(e) for e in op.operands})
        if kind == "multilinear":
            if not active:  # (a target varied by another binding: np.einsum of constants)
                return self.zero(target)
            terms = [_substitute(op.spelled, {id(op.operands[i]): self.of(op.operands[i])})
                     for i in active]
            return self.total(terms)
        if kind == "elementwise":
            return self.elementwise(target, op, active)
        return self.explicit(target, op, kind, active)

    @staticmethod
    def total(terms) -> cst.BaseExpression:
        """The sum of the terms; ``a + -b`` written ``a - b``."""
        expr = terms[0]
        for term in terms[1:]:
            if type(term) is cst.UnaryOperation and type(term.operator) is cst.Minus \
                    and not term.lpar:
                expr = cst.BinaryOperation(expr, cst.Subtract(), term.expression)
            else:
                expr = cst.BinaryOperation(expr, cst.Add(), term)
        return expr

    def elementwise(self, target, op: Op, active) -> cst.BaseExpression:
        rule = op.rule
        template = template_for(rule) if not op.unchecked else None
        terms, contributing = [], set()
        for i in active:
            g = cst.Name(self.tangent(op.operands[i].value))
            if template is not None:
                holes = {"g": g, **self.holes(rule, target, op)}
                spelling = {name: self.spelling(name, rule) for name in template.globals_used}
                expr = fill(template, i, holes, spelling)
            else:
                call = self.rule_call(rule, op, target, g)
                expr = call if len(op.operands) == 1 else cst.Subscript(
                    call, [cst.SubscriptElement(cst.Index(cst.Integer(str(i))))])
            if expr is not None:
                contributing.add(i)
            if expr is not None and any(expr.deep_equals(t) for t in terms):  # x * x
                terms[[expr.deep_equals(t) for t in terms].index(True)] = cst.BinaryOperation(
                    cst.Integer("2"), cst.Multiply(), expr)
            elif expr is not None:
                terms.append(expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                             if len(active) > 1 and type(expr) is cst.BinaryOperation and
                             type(expr.operator) not in (cst.Multiply, cst.Divide) else expr)
        if not terms:
            return self.zero(target)
        expr = self.total(terms)
        # an operand with no term (no tangent, or a zero one) may have broadcast the result
        spread = [e for j, e in enumerate(op.operands) if j not in contributing and
                  not _is_number(e)]
        if spread and any(n.value not in names_in(expr) for n in spread
                          if type(n) is cst.Name):
            expr = cst.Call(self.rt("broadcast_tangent"), [cst.Arg(expr), cst.Arg(target)])
        return expr

    def holes(self, rule, target, op: Op) -> dict:
        """The template's holes but ``g``: ``ans``, the operands, the options (as reverse mode
        fills them)."""
        name = target.value if type(target) is cst.Name else tuple(target_names(target))
        holes = _AdjointWriter.holes(self, (), name, op, None)
        del holes["g"]
        return holes

    def spelling(self, name: str, rule) -> cst.BaseExpression:
        if name not in self.spellings:
            self.spellings[name] = runtime_spelling(
                name, rule.raw.__globals__[name], self.ctx.rt, self.ctx.fn.__globals__,
                self.local_names)
        return self.spellings[name]

    def keyword(self, name: str, value) -> cst.Arg:
        return cst.Arg(value, keyword=cst.Name(name), equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))

    def rule_call(self, rule, op: Op, target, g) -> cst.Call:
        if getattr(runtime, rule.name, None) is not rule.call:
            raise self.unknown(op, f"'{op.text.split('(')[0]}' (its adjoint rule is the user's "
                               "own; forward mode needs a tangent rule)")
        args = [cst.Arg(g)] + ([cst.Arg(target)] if rule.takes_ans else [])
        args += [cst.Arg(e) for e in op.operands]
        args += [self.keyword(k, v) for k, v in op.options]
        function = self.rt(rule.name)
        if rule.call is not rule.raw:  # the table's wrapper sums adjoints back (unbroadcast):
            if getattr(rule.call, "__wrapped__", None) is not rule.raw:  # a tangent is not
                raise self.unknown(op, f"'{op.text.split('(')[0]}' (no tangent rule yet)")
            function = cst.Attribute(function, cst.Name("__wrapped__"))
        return cst.Call(function, args)

    def explicit(self, target, op: Op, rule: TangentRule, active) -> cst.BaseExpression:
        tangents = [self.of(e) for e in op.operands]  # a zero for an operand without one
        ans = target if type(target) is not cst.Tuple else \
            target.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        args = [cst.Arg(t) for t in tangents] + [cst.Arg(ans)]
        args += [cst.Arg(e) for e in op.operands] + [self.keyword(k, v) for k, v in op.options]
        return cst.Call(self.rt(rule.name), args)

    # ----- calls of the user's own functions -----

    def function_call(self, stmt, target, op: Op) -> list:
        """``_t2 = helper(_t1, 2.0)`` → ``_t2, d_t2 = helper_jvp(_t1, 2.0, d_t1)``."""
        active = [(p, e) for p, e in zip(op.params, op.operands) if self.touches(e)]
        names = target_names(target)
        if not active:  # a call on constants: a zero tangent for what it returns
            lhs = cst.Tuple([cst.Element(cst.Name(self.tangent(n))) for n in names], lpar=[],
                            rpar=[]) if type(target) is cst.Tuple else \
                cst.Name(self.tangent(target.value))
            value = cst.Tuple([cst.Element(self.zero(cst.Name(n))) for n in names], lpar=[],
                              rpar=[]) if type(target) is cst.Tuple else self.zero(target)
            return [stmt, _assign(lhs, value)]
        link = self.link(op.primitive, tuple(p for p, _ in active))
        call = cst.Call(cst.Name(link), [cst.Arg(e) for e in op.operands] +
                        [cst.Arg(self.of(e)) for _, e in active])
        return self.unpack_pair(stmt, target, call)

    def dynamic_call(self, stmt, target, op: Op) -> list:
        """A call of a function known when it runs (``f(y)`` of an argument ``f``, a
        ``srcdiff.grad`` function): ``y, dy = rt.call_jvp(f, y, dy, wrt=(0,))``."""
        receiver, args = op.operands[0], op.operands[1:]
        if receiver is not None or self.active(op.primitive):
            raise self.ctx.located(
                f"srcdiff's forward mode cannot differentiate '{op.text}': "
                + ("a method of an object" if receiver is not None else
                   "the function called depends on a differentiated value")
                + "; use reverse mode (srcdiff.vjp, srcdiff.jacrev) for it.", self.line,
                token=op.text.split("(")[0])
        active = [i for i, e in enumerate(args) if self.touches(e)]
        wrt = cst.Tuple([cst.Element(cst.Integer(str(i))) for i in active])
        call = cst.Call(self.rt("call_jvp"), [
            cst.Arg(op.primitive), *(cst.Arg(e) for e in args),
            *(cst.Arg(self.of(args[i])) for i in active),
            *(self.keyword(k, v) for k, v in op.options), self.keyword("wrt", wrt)])
        return self.unpack_pair(stmt, target, call)

    def unpack_pair(self, stmt, target, call) -> list:
        """``target, d_target = call``; a tuple target in two flat steps."""
        pair = lambda a, b: cst.Tuple([cst.Element(a), cst.Element(b)], lpar=[], rpar=[])  # noqa: E731
        if type(target) is not cst.Tuple:
            lhs = pair(target, cst.Name(self.tangent(target.value)))
            return [stmt.with_changes(body=[cst.Assign([cst.AssignTarget(lhs)], call)])]
        names = target_names(target)
        value = cst.Name(self.namer.fresh(f"{names[0]}_{names[-1]}"))
        tangent = cst.Name(self.tangent(value.value))
        tangents = cst.Tuple([cst.Element(cst.Name(self.tangent(n))) for n in names], lpar=[],
                             rpar=[])
        return [stmt.with_changes(body=[cst.Assign([cst.AssignTarget(pair(value, tangent))], call)]),
                _assign(target, value), _assign(tangents, tangent)]

    def link(self, fn, wrt: tuple[str, ...]) -> str:
        """``helper_jvp = rt.tangent_of(helper, ('x',))``, named as reverse mode names links."""
        return _AdjointWriter.link(self, fn, wrt, "tangent_of", "_jvp")
