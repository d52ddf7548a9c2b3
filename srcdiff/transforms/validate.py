"""validate: reject what srcdiff cannot differentiate, pointing at the user's line.

Invariant after this pass: the function body uses only the syntax in
``SUPPORTED``, ends with its one ``return``, and never
changes an argument (or an alias of one) in place, and no name reads memory that a
write through another name changed (``analysis/sharing.py``). The module is returned
unchanged.

    def f(x):            def f(x):
        x += 1       →       x += 1
        return x             ^ InPlaceError: 'x += …' changes the argument x in place
"""

from __future__ import annotations

import libcst as cst

from ..analysis import sharing
from ..context import Context
from ..errors import InPlaceError, SrcdiffSyntaxError
from ..names import children, nodes
from .desugar import dict_view
from .returns import ends
from .returns import first_return as _first_return

__all__ = ["rewrite", "SUPPORTED", "UNSUPPORTED", "is_no_grad"]

# construct -> (what the user wrote, what to do instead)
UNSUPPORTED: dict[type, tuple[str, str]] = {
    cst.Try: ("try/except (or try/finally)", "move error handling and cleanup outside the "
              "differentiated function"),
    cst.TryStar: ("try/except*", "move error handling outside the differentiated function"),
    cst.With: ("a 'with' statement", "move it outside the differentiated function (srcdiff's "
               "own 'with srcdiff.no_grad():' is the one 'with' it accepts)"),
    cst.Yield: ("'yield' (a generator)", "return an array instead"),
    cst.Await: ("'await'", "differentiate a plain (non-async) function"),
    cst.Lambda: ("a lambda", "use a 'def' function defined at module level"),
    cst.Global: ("a 'global' statement", "pass the value as an argument and return the result"),
    cst.Nonlocal: ("a 'nonlocal' statement", "pass the value as an argument and return the result"),
    cst.ClassDef: ("a class definition", "define the class outside the function"),
    cst.FunctionDef: ("a nested function definition", "define the helper at module level"),
    cst.Del: ("'del'", "leave the variable in place; srcdiff frees nothing early"),
    cst.NamedExpr: ("an assignment expression ':='", "assign with a separate '=' statement"),
    cst.StarredElement: ("a starred expression (*args)", "pass the arguments one by one"),
    cst.StarredDictElement: ("a starred expression (**kwargs)", "pass the arguments one by one"),
    cst.Import: ("an import inside the function", "import at module level"),
    cst.ImportFrom: ("an import inside the function", "import at module level"),
    cst.Set: ("a set literal", "use a tuple"),
    cst.Match: ("a 'match' statement", "select between values with np.where"),
    cst.FormattedString: ("an f-string outside a raise or an assert", "format values outside "
                          "the differentiated function"),
    cst.Imaginary: ("complex numbers (an imaginary literal)", "keep real and imaginary parts "
                    "as separate real arrays: srcdiff's rules are real"),
}

# the statements and expressions srcdiff differentiates; any other (new syntax included,
# such as ``except*``) is refused: the table of what is accepted is this allowlist, not the
# list of what is known to be unsupported
SUPPORTED: frozenset[type] = frozenset({
    cst.FunctionDef, cst.If, cst.For, cst.While, cst.With,  # With: srcdiff.no_grad() only
    cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Expr, cst.Return, cst.Pass, cst.Break,
    cst.Continue, cst.Assert, cst.Raise,
    cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BinaryOperation, cst.UnaryOperation,
    cst.BooleanOperation, cst.Comparison, cst.IfExp, cst.Integer, cst.Float,
    cst.SimpleString, cst.ConcatenatedString, cst.Tuple, cst.List, cst.Dict, cst.Ellipsis,
    cst.ListComp, cst.DictComp, cst.SetComp, cst.GeneratorExp,  # lowered to loops
    # (comprehensions.py); see visit_CompFor
})
_CONSTRUCTS = (cst.BaseCompoundStatement, cst.BaseSmallStatement, cst.BaseExpression)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    _walk(_Validator(ctx, module), module)
    return module


def _walk(visitor: cst.CSTVisitor, node: cst.CSTNode) -> None:
    """``visitor``'s ``visit_…`` and ``leave_…`` methods, depth first, in field order: libcst's
    own ``visit`` would rebuild every node it passes (several times slower)."""
    if visitor.on_visit(node):
        for child in children(node):
            _walk(visitor, child)
    visitor.on_leave(node)


class _Validator(cst.CSTVisitor):
    final_return = None
    varied = None  # (names that may depend on wrt, local names), at the first set comprehension
    messages = 0  # how many raise or assert statements the walk is inside

    def __init__(self, ctx: Context, module: cst.Module):
        self.ctx, self.module = ctx, module
        self.depth = 0
        self.consumed: set[int] = set()  # generator expressions (and maps) a builtin consumes

    # ----- reporting -----

    def fail(self, node: cst.CSTNode, message: str, cls=SrcdiffSyntaxError):
        pos = self.ctx.source.positions_of(self.module)[node].start
        file_line = self.ctx.source.file_line(pos.line)
        if self.ctx.source.one_line is not None:  # a one-line def or a lambda: the caret goes
            token = self.module.code_for_node(node).strip().splitlines()[0]  # where it is written
            raise self.ctx.error(cls, message, file_line, token=token)
        raise self.ctx.error(cls, message, file_line, pos.column)

    def unsupported(self, node: cst.CSTNode):
        construct, instead = UNSUPPORTED[type(node)]
        self.fail(node, f"srcdiff does not support {construct} in {self.ctx.name}(); {instead}.")

    def on_visit(self, node: cst.CSTNode) -> bool:
        kind = type(node)  # (type tests: these kinds have no subclasses; isinstance is slow)
        if kind is cst.Dict:
            self._literal_dict(node)  # fails unless its keys are constant strings
        elif kind in (cst.Raise, cst.Assert):
            self.messages += 1  # (see FormattedString below)
        elif kind is cst.FormattedString and self.messages:
            return False  # an f-string in a raise or an assert: a message, never differentiated
        elif kind in UNSUPPORTED and not (kind is cst.FunctionDef and self.depth == 0
                                          or kind is cst.With and is_no_grad(node, self.ctx)):
            self.unsupported(node)
        elif kind not in SUPPORTED and issubclass(kind, _CONSTRUCTS) or \
                kind is cst.For and node.asynchronous is not None:
            self.fail(node, f"srcdiff does not support this construct ({kind.__name__}) in "
                            f"{self.ctx.name}(); write it with plain statements (assignments, "
                            "if, for, while, return) and calls.")
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if type(original_node) in (cst.Raise, cst.Assert):
            self.messages -= 1
        super().on_leave(original_node)

    # ----- the function itself -----

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth += 1
        if node.asynchronous is not None:
            self.fail(node, f"srcdiff does not support async functions ({self.ctx.name}); "
                            "differentiate a plain 'def' function.")
        params = node.params
        if type(params.star_arg) is cst.Param or params.star_kwarg is not None:
            self.fail(node, f"srcdiff does not support *args or **kwargs in {self.ctx.name}(); "
                            "name every parameter.")
        body = node.body.body
        last = [s for s in _small(body[-1]) if type(s) is cst.Return] if body else []
        if not last and body and isinstance(body[-1], cst.If) and ends(body[-1:]):
            return  # the last statement is an if whose every branch returns
        if not last and body and ends(body[-1:], _ENDS) and not ends(body[-1:]) and \
                _first_return(body) is not None:
            # if kind == "a": return …, elif …: return …, then raise (or an if whose every
            # path returns or raises): the returns' structure is the first one's
            self.final_return = _first_return(body)
            return
        if not last:
            early = [s for stmt in body[:-1] for s in _small(stmt) if type(s) is cst.Return]
            if early:
                self.fail(early[0], "the statements after this 'return' never run; remove "
                                    "them or put them before the return.")
            self.fail(node, f"{self.ctx.name}() must end with a 'return' of the value to "
                            "differentiate.")
        self.final_return = last[-1]
        if "has_aux" in self.ctx.options and not (
                isinstance(last[-1].value, cst.Tuple) and len(last[-1].value.elements) == 2):
            self.fail(last[-1], f"has_aux=True needs {self.ctx.name}() to return a pair "
                                "'return loss, aux'.")

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth -= 1
        if self.depth:
            return
        source = self.ctx.source
        problem = sharing.analyze(node, self.ctx, lambda n: source.file_line(
            source.line_of(self.module, n)))
        if problem is not None:
            cls = InPlaceError if problem.kind == "in_place" else SrcdiffSyntaxError
            self.fail(problem.node, problem.message, cls)

    def _literal_dict(self, node: cst.Dict) -> bool:
        """``{"a": a, "b": b}``: a dict with constant string keys."""
        for element in node.elements:
            if type(element) is not cst.DictElement or type(element.key) is not cst.SimpleString:
                self.fail(element, "srcdiff supports dicts with constant string keys only, "
                                   "like {\"loss\": loss}.")
        return True

    def visit_Return(self, node: cst.Return) -> None:
        if node is self.final_return:
            return
        from .returns import structure

        shape, final = structure(node), structure(self.final_return)
        if shape != final:
            self.fail(node, "every return of a function must give the same structure (srcdiff "
                            "differentiates one): this one gives "
                            f"{_described(shape)}, the last one {_described(final)}.")

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        for stmt in node.body[:-1]:
            returns = [s for s in _small(stmt) if type(s) is cst.Return]
            if returns:
                self.fail(returns[0], "the statements after this 'return' never run; remove "
                                      "them or put them before the return.")

    def visit_For(self, node) -> None:
        self._check_for(node)

    def visit_While(self, node) -> None:
        self._check_while(node)

    # ----- statements -----

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1:
            self.fail(node, "srcdiff does not support chained assignment 'a = b = …'; "
                            "assign each name separately.")
        self._check_target(node.targets[0].target, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._check_target(node.target, node)
        if node.value is None:
            self.fail(node, "srcdiff needs a value in an annotated assignment; write 'x: T = value'.")

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check_target(node.target, node)

    def _check_target(self, target: cst.BaseExpression, stmt: cst.CSTNode) -> None:
        if type(target) is cst.Name:
            return
        if type(target) in (cst.Tuple, cst.List) and type(stmt) is cst.Assign and all(
                type(e) is cst.Element and type(e.value) is cst.Name for e in target.elements):
            names = [e.value.value for e in target.elements]
            if len(set(names)) == len(names):
                return
        if type(target) in (cst.Subscript, cst.Attribute):
            if type(target) is cst.Subscript and type(target.value) is cst.Name:
                return  # out[i] = v on a local array: made functional by normalize
            self.fail(stmt, "srcdiff supports writing into local arrays as 'out[i, j] = …' "
                            "only (not 'out[i][j] = …' or 'obj.a = …').")
        self.fail(stmt, "srcdiff supports unpacking into distinct plain names only "
                        "('a, b = …'); unpack nested values in separate statements.")

    def _check_for(self, node: cst.For) -> None:
        if node.asynchronous is not None:
            self.fail(node, "srcdiff does not support 'async for'; write a plain 'for' loop.")
        if not _names_target(node.target):
            self.fail(node, "srcdiff supports loop targets that are names, or names in one "
                            "level of parentheses ('for i in …', 'for i, row in enumerate(x)', "
                            "'for i, (a, b) in enumerate(zip(p, q))'), each name once.")
        self._check_iterable(node, node.iter)

    def _check_iterable(self, node, it: cst.BaseExpression) -> None:
        """What a loop (or a comprehension's ``for``) may run over."""
        if self._iterable(it):
            return
        self.fail(node, "srcdiff supports 'for' loops over range(...), over the rows or items of "
                        "a variable ('for row in x', 'for layer in params[\"layers\"]'), over "
                        "reversed(...) of one, over d.values()/.items()/.keys(), and over enumerate/zip of "
                        "sequences; assign the "
                        "sequence to a name first.")

    def _iterable(self, it: cst.BaseExpression) -> bool:
        """range/enumerate/zip of anything, a name or path, a display, a call known to return
        a list, a dict view, and reversed(...) of any of those; an arithmetic operation or a
        numpy call, whose array's rows the loop takes (desugar names them first)."""
        call = it.func.value if type(it) is cst.Call and type(it.func) is cst.Name else None
        plain = not any(a.keyword or a.star for a in it.args) if call else True
        if call == "enumerate":  # enumerate(x), enumerate(x, 1), enumerate(x, start=k)
            return 1 <= len(it.args) <= 2 and not any(a.star for a in it.args) and \
                it.args[0].keyword is None and all(a.keyword is None or a.keyword.value == "start"
                                                   for a in it.args[1:])
        return call in ("range", "zip") and plain \
            or call == "reversed" and plain and len(it.args) == 1 and self._iterable(it.args[0].value) \
            or _is_path(it) or type(it) in (cst.Tuple, cst.List, cst.ListComp) \
            or type(it) is cst.Call and (self._makes_sequence(it) or self._makes_array(it)) \
            or dict_view(it) or type(it) in (cst.BinaryOperation, cst.UnaryOperation)

    def _makes_array(self, call: cst.Call) -> bool:
        """A call of a numpy function that returns one array (``np.exp(x)``, ``x.T``'s kin),
        not a sequence of them."""
        from srcdiff.runtime import rule_for

        from ..analysis.calls import resolve

        rule = rule_for(resolve(call.func, self.ctx, frozenset(self.ctx.params)))
        return rule is not None and not rule.sequence

    def _makes_sequence(self, call: cst.Call) -> bool:
        """A call known to return a list or tuple: a rule registered with ``sequence=True``
        (``np.split``), or a user function whose last return is a display."""
        from srcdiff.runtime import rule_for

        from ..analysis.activity import returns_container
        from ..analysis.calls import is_user_function, resolve

        obj = resolve(call.func, self.ctx, frozenset(self.ctx.params))
        rule = rule_for(obj)
        return rule is not None and rule.sequence or is_user_function(obj) and returns_container(obj)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        if node.asynchronous is not None:
            self.fail(node, "srcdiff does not support 'async for' in a comprehension.")
        if not _names_target(node.target):
            self.fail(node, "srcdiff supports comprehension targets that are names, or names "
                            "in one level of parentheses ('for v in xs', 'for i, v in "
                            "enumerate(xs)', 'for i, (a, b) in enumerate(zip(p, q))'), each "
                            "name once.")
        self._check_iterable(node, node.iter)

    def visit_SetComp(self, node: cst.SetComp) -> None:
        """A set holds constants: an array cannot be hashed, and equal numbers merge."""
        from ..analysis.dependence import bound_names, carries, varied_names

        funcdef = self.module.body[0]
        if self.varied is None:
            self.varied = varied_names(funcdef, self.ctx), bound_names(funcdef, self.ctx)
        if carries(node.elt, self.varied[0], self.ctx, self.varied[1]):
            self.fail(node, "srcdiff supports set comprehensions of constants only (a set cannot "
                            "hold an array, and equal numbers merge): "
                            f"'{self.module.code_for_node(node.elt)}' may depend on "
                            f"{' and '.join(self.ctx.wrt)}, which srcdiff differentiates. Collect "
                            "the values in a list [... for ...] instead, or wrap them in "
                            "srcdiff.stop_gradient(...).")

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        if id(node) not in self.consumed:
            self.fail(node, "srcdiff supports generator expressions as the one argument of sum, "
                            "max, min, any, all, list, tuple or sorted; write a list "
                            "comprehension [...] here.")

    def _check_while(self, node: cst.While) -> None:
        if any(type(n) in (cst.ListComp, cst.DictComp, cst.SetComp, cst.GeneratorExp)
               for n in nodes(node.test)):
            self.fail(node, "srcdiff does not support a comprehension in a 'while' test (it "
                            "runs again at every test); compute it before the loop and at the "
                            "end of its body.")

    def visit_Call(self, node: cst.Call) -> None:
        for arg in node.args:
            if arg.star:
                self.fail(arg, f"srcdiff does not support '{arg.star}' in calls here (it spells "
                               "out '*' of a tuple written in the call, or of a name bound "
                               "once to one: pair = (a, b); f(*pair)); pass the arguments "
                               "one by one.")
        from .comprehensions import consumes_generator

        if consumes_generator(node, self.ctx):
            self.consumed.add(id(node.args[0].value))
        if type(node.func) is cst.Name and self.ctx.lookup(node.func.value) is map and \
                id(node) not in self.consumed:
            self.fail(node, "srcdiff supports map(f, xs) as the one argument of list, tuple, "
                            "sorted, sum, max, min, any or all; write a list comprehension "
                            "[f(v) for v in xs] here.")


def is_no_grad(node: cst.With, ctx: Context) -> bool:
    """Whether ``node`` is ``with srcdiff.no_grad():`` (resolved by identity, any spelling)."""
    from srcdiff.runtime import no_grad

    from ..analysis.calls import resolve

    if len(node.items) != 1 or node.items[0].asname is not None or node.asynchronous:
        return False
    item = node.items[0].item
    return type(item) is cst.Call and not item.args and \
        resolve(item.func, ctx, frozenset(ctx.params)) is no_grad


def _described(shape: tuple) -> str:
    if shape[0] == "tuple":
        return f"a tuple of {shape[1]}"
    if shape[0] == "dict":
        return f"a dict with keys {', '.join(shape[1])}"
    return "one value"


def _is_path(node: cst.BaseExpression) -> bool:
    """``x``, ``params["layers"]``, ``model.layers``: a name, or parts read out of one."""
    while type(node) in (cst.Subscript, cst.Attribute):
        node = node.value
    return type(node) is cst.Name


def _names_target(target: cst.BaseExpression) -> bool:
    """``v``, ``i, v`` or ``i, (a, b)``: names, one level of parentheses at most, each name
    once (desugar unpacks the inner ones in the loop's body)."""
    if type(target) is cst.Name:
        return True
    if type(target) not in (cst.Tuple, cst.List):
        return False
    names = []
    for element in target.elements:
        inner = element.value
        parts = [e.value for e in inner.elements] if type(inner) in (cst.Tuple, cst.List) \
            else [inner]
        if type(element) is not cst.Element or \
                not all(type(p) is cst.Name for p in parts):
            return False
        names += [p.value for p in parts]
    return len(set(names)) == len(names)


_ENDS = (cst.Return, cst.Raise)  # where a path through the function may end


def _small(stmt: cst.CSTNode):
    return stmt.body if type(stmt) is cst.SimpleStatementLine else ()
