"""jumps: ``break``, ``continue`` and ``return`` inside loops become flags.

Invariant after this pass: no ``break`` or ``continue`` remains and no ``return``
stands inside a loop. A loop that jumps becomes a ``while`` that also stops on
``_brk``; each iteration starts with ``_go = True`` and the statements after a
possible jump run under ``if _go:``. A ``return v`` inside a loop sets
``_ret = v`` and ``_done = True`` and leaves the loop; after it,
``if _done: return _ret`` (an early return the ``returns`` pass then lifts). A
``return a, b`` keeps each part (``_ret1 = a; _ret2 = b``, then ``return _ret1, _ret2``),
a ``return {"loss": l}`` each value (``_ret_loss = l``).

    for t in range(n):              _brk = False
        h = f(h)                    _seq = range(n)
        if g(h) > 1:        →       _k = 0
            break                   while not _brk and _k < len(_seq):
        h = h * 2.0                     t = _seq[_k]
                                        _k = _k + 1
                                        _go = True
                                        h = f(h)
                                        if g(h) > 1:
                                            _brk = True
                                            _go = False
                                        if _go:
                                            h = h * 2.0
"""

from __future__ import annotations

import libcst as cst

from ..context import Context
from ..names import Namer, names_in, nodes
from .returns import holds_return, structure

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    jumps = _Jumps(Namer(names_in(module) | {ctx.rt}))
    body = jumps.block(list(funcdef.body.body))
    return module.with_changes(body=[funcdef.with_changes(body=funcdef.body.with_changes(body=body))])


def _assign(name: str, value: cst.BaseExpression) -> cst.SimpleStatementLine:
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])


def _jumps_here(stmt) -> bool:
    """Whether ``stmt`` holds a break, continue or return of the enclosing loop's level."""
    if type(stmt) is cst.SimpleStatementLine:
        return any(type(s) in (cst.Break, cst.Continue, cst.Return) for s in stmt.body)
    if type(stmt) is cst.If:
        orelse = stmt.orelse
        other = orelse.body.body if type(orelse) is cst.Else else [orelse] if orelse else []
        return any(map(_jumps_here, stmt.body.body)) or any(map(_jumps_here, other))
    return False  # a nested loop's jumps are its own; its returns were turned into flags


class _Jumps:
    def __init__(self, namer: Namer):
        self.namer = namer
        self.ret = self.done = None  # one _ret/_done pair for the whole function

    def block(self, statements) -> list:
        out = []
        for stmt in statements:
            if type(stmt) in (cst.For, cst.While):
                stmt = stmt.with_changes(body=stmt.body.with_changes(body=self.block(list(stmt.body.body))))
                out.extend(self.loop(stmt) if any(map(_jumps_here, stmt.body.body)) else [stmt])
            elif type(stmt) is cst.If:
                stmt = stmt.with_changes(body=stmt.body.with_changes(body=self.block(list(stmt.body.body))))
                if type(stmt.orelse) is cst.Else:
                    stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(
                        body=stmt.orelse.body.with_changes(body=self.block(list(stmt.orelse.body.body)))))
                elif type(stmt.orelse) is cst.If:
                    stmt = stmt.with_changes(orelse=self.block([stmt.orelse])[0])
                out.append(stmt)
            else:
                out.append(stmt)
        return out

    def loop(self, stmt) -> list:
        brk, go = self.namer.fresh_numbered("_brk"), self.namer.fresh_numbered("_go")
        returns = any(map(holds_return, stmt.body.body))
        if returns and self.ret is None:
            self.done = self.namer.fresh("_done")
            self.ret = self.returned(next(n for n in nodes(stmt) if type(n) is cst.Return))
        body = self.guard(self.replace(list(stmt.body.body), brk, go), go)
        before = [_assign(brk, cst.Name("False"))]
        if returns:
            before.append(_assign(self.done, cst.Name("False")))
        stop = cst.UnaryOperation(cst.Not(), cst.Name(brk))
        if type(stmt) is cst.For:  # while over the range, so a break really stops it
            seq, k = self.namer.fresh_numbered("_seq"), self.namer.fresh_numbered("_k")
            before += [_assign(seq, stmt.iter), _assign(k, cst.Integer("0"))]
            head = [_assign(stmt.target.value, cst.Subscript(
                        cst.Name(seq), [cst.SubscriptElement(cst.Index(cst.Name(k)))])),
                    _assign(k, cst.BinaryOperation(cst.Name(k), cst.Add(), cst.Integer("1")))]
            test = cst.BooleanOperation(stop, cst.And(), cst.Comparison(cst.Name(k), [
                cst.ComparisonTarget(cst.LessThan(), cst.Call(cst.Name("len"), [cst.Arg(cst.Name(seq))]))]))
        else:
            head = []
            test = cst.BooleanOperation(stop, cst.And(), stmt.test.with_changes(
                lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))
        body = [*head, _assign(go, cst.Name("True")), *body]
        body[0] = body[0].with_changes(leading_lines=stmt.leading_lines)
        loop = cst.While(test=test, body=cst.IndentedBlock(body), leading_lines=())
        before[0] = before[0].with_changes(leading_lines=stmt.leading_lines)
        after = []
        if returns:
            after.append(cst.If(test=cst.Name(self.done), body=cst.IndentedBlock(
                [cst.SimpleStatementLine([cst.Return(self.ret)])])))
        return [*before, loop, *after]

    def returned(self, ret: cst.Return) -> cst.BaseExpression:
        """What ``if _done:`` returns after the loop: ``_ret``, or for a function that returns
        a tuple or dict (every return alike, validate saw to it) one name per position or key,
        ``_ret1, _ret2`` or ``{"loss": _ret_loss}``."""
        shape = structure(ret)
        if shape[0] == "tuple":
            return cst.Tuple([cst.Element(cst.Name(self.namer.fresh_numbered("_ret")))
                              for _ in range(shape[1])], lpar=[], rpar=[])
        if shape[0] == "dict":
            return cst.Dict([cst.DictElement(cst.SimpleString(key), cst.Name(self.namer.fresh(
                "_ret_" + key.strip("'\"") if key.strip("'\"").isidentifier() else "_ret")))
                for key in shape[1]])
        return cst.Name(self.namer.fresh("_ret"))

    def kept(self, value) -> list:
        """``return value`` inside a loop: ``value`` kept in the names :meth:`returned` made."""
        if type(self.ret) is cst.Name:
            return [_assign(self.ret.value, value or cst.Name("None"))]
        return [_assign(name.value.value, part.value)
                for name, part in zip(self.ret.elements, value.elements)]

    def replace(self, statements, brk: str, go: str) -> list:
        """break/continue/return of this loop → flag assignments; what follows them goes."""
        out = []
        for stmt in statements:
            if type(stmt) is cst.SimpleStatementLine and _jumps_here(stmt):
                small = next(s for s in stmt.body if type(s) in (cst.Break, cst.Continue, cst.Return))
                lines = []
                if type(small) is cst.Return:
                    lines += [*self.kept(small.value), _assign(self.done, cst.Name("True"))]
                if type(small) in (cst.Break, cst.Return):
                    lines.append(_assign(brk, cst.Name("True")))
                lines.append(_assign(go, cst.Name("False")))
                lines[0] = lines[0].with_changes(leading_lines=stmt.leading_lines)
                out.extend(lines)
                return out  # the rest of this block never runs
            if type(stmt) is cst.If and _jumps_here(stmt):
                stmt = stmt.with_changes(body=stmt.body.with_changes(
                    body=self.replace(list(stmt.body.body), brk, go)))
                if type(stmt.orelse) is cst.Else:
                    stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                        body=self.replace(list(stmt.orelse.body.body), brk, go))))
                elif type(stmt.orelse) is cst.If:
                    stmt = stmt.with_changes(orelse=self.replace([stmt.orelse], brk, go)[0])
            out.append(stmt)
        return out

    def guard(self, statements, go: str) -> list:
        """Statements after one that may clear ``_go`` run under ``if _go:``."""
        out = []
        for i, stmt in enumerate(statements):
            if type(stmt) is cst.If:
                stmt = stmt.with_changes(body=stmt.body.with_changes(body=self.guard(list(stmt.body.body), go)))
                if type(stmt.orelse) is cst.Else:
                    stmt = stmt.with_changes(orelse=stmt.orelse.with_changes(body=stmt.orelse.body.with_changes(
                        body=self.guard(list(stmt.orelse.body.body), go))))
            out.append(stmt)
            rest = statements[i + 1:]
            if rest and _clears(stmt, go):
                out.append(cst.If(test=cst.Name(go), body=cst.IndentedBlock(self.guard(list(rest), go))))
                break
        return out


def _clears(stmt, go: str) -> bool:
    """Whether ``stmt`` may set ``go`` to False (a replaced jump inside it)."""
    found = []

    class Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            target = node.targets[0].target
            if type(target) is cst.Name and target.value == go and \
                    type(node.value) is cst.Name and node.value.value == "False":
                found.append(node)

        def visit_While(self, node) -> bool:
            return False  # a nested loop's own flags

    stmt.visit(Find())
    return bool(found)
