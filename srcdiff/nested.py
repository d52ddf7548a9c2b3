"""Nested ``def``s and lambdas in a differentiated function, lifted to functions of their own.

A nested ``def``, a lambda bound to a name (``act = lambda z: …``) and a lambda written in a
call (``apply(lambda z: z ** 2, x)``) become real functions, made once when srcdiff reads the
function, with the local variables they read as their first parameters; each call passes
them, so a gradient reaches a captured variable as it reaches any argument:

    def f(x, w):                         def f(x, w):
        def act(z):                          return np.sum(act(w, x))   # act: the lifted one
            return np.tanh(z * w)   →
        return np.sum(act(x))            def act(w, z):                 # w: a parameter now
                                             return np.tanh(z * w)

The rest of the pipeline sees a call of a function it does not know until it runs
(``rt.call_vjp(act, w, x, wrt=(0, 1))``); the lifted function's source is its own lines of
the user's file (:func:`source_of`), so its errors point there. Lines keep their numbers: a
removed definition leaves blank lines. Refused, at their line: a function that reads local
variables and is used as a value (not called), a name both defined here and assigned, a
decorated nested ``def``, a lambda written over several lines inside an expression.
"""

from __future__ import annotations

import builtins
import weakref
from dataclasses import dataclass, replace

import libcst as cst

from .errors import SrcdiffSyntaxError
from .made import make_functions, register, source_of
from .names import Namer, names_in, nodes
from .specialize import specialize, specialized_call

__all__ = ["lift", "describe"]

_LIFTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # fn -> its lifted source
_ORIGIN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # lifted fn -> what it is


def describe(source) -> str:
    """Comment lines for generated code that calls the functions lifted out of ``source``'s
    function: what each takes, where it was defined, which variables it is given."""
    lines = []
    for name, fn in source.lifted:
        params = ", ".join(_params(source_of(fn).funcdef.params))
        lines.append(f"# {name}({params}): {_ORIGIN[fn]}")
    return "".join(line + "\n" for line in lines) + "\n\n" if lines else ""


@dataclass
class _Nested:
    """One function to lift: its name, the node it was written as, and what it reads."""

    name: str
    node: cst.FunctionDef | cst.Lambda
    inline: bool = False  # a lambda written in an expression (not bound to a name)
    captured: tuple[str, ...] = ()


def lift(source):
    """``source`` with its nested functions lifted (``source`` itself where it has none)."""
    done = _LIFTED.get(source.fn)
    if done is not None:
        return done
    funcdef = source.funcdef
    if not any(type(n) in (cst.FunctionDef, cst.Lambda) for n in nodes(funcdef.body)):
        return source
    lifted = _Lifter(source).run()
    _LIFTED[source.fn] = lifted
    return lifted


def _is_function(node) -> bool:
    return type(node) in (cst.FunctionDef, cst.Lambda)


def _params(params: cst.Parameters) -> list[str]:
    star = [params.star_arg] if type(params.star_arg) is cst.Param else []
    return [p.name.value for p in (*params.posonly_params, *params.params, *star,
                                   *params.kwonly_params,
                                   *([params.star_kwarg] if params.star_kwarg else []))]


def _bound(node: cst.CSTNode) -> set[str]:
    """The names a body binds, not looking into functions defined in it."""
    found: set[str] = set()
    for n in nodes(node, skip=lambda n: _is_function(n) and n is not node):
        kind = type(n)
        targets = [t.target for t in n.targets] if kind is cst.Assign else \
            [n.target] if kind in (cst.For, cst.CompFor, cst.AugAssign, cst.AnnAssign,
                                   cst.NamedExpr) else []
        if kind is cst.FunctionDef and n is not node:
            found.add(n.name.value)
        for target in targets:
            found.update(t.value for t in nodes(target) if type(t) is cst.Name)
    return found


class _Lifter:
    """Finds the nested functions of one function, lifts them, rewrites their calls."""

    def __init__(self, source):
        self.source, self.funcdef = source, source.funcdef
        self.module = source.module
        self.mapped = _mapped_lambdas(self.funcdef, source.fn)  # comprehensions.py's
        self.specs: dict = {}  # id(call) -> (helper, parameter, item, argument index, name)
        self.namer = Namer(names_in(self.module) | set(source.fn.__code__.co_names))

    def fail(self, node, message: str):
        line = self.source.file_line(self.source.line_of(self.module, node))
        text = self.source.line_text(line - self.source.first_line + 1)
        token = self.module.code_for_node(node).strip().splitlines()[0]
        col = text.find(token) if token and text.find(token) >= 0 else \
            len(text) - len(text.lstrip())
        raise SrcdiffSyntaxError(message, self.source.filename, line, col, text)

    def run(self):
        from .analysis.calls import reads

        found = self._find()
        if not found:
            return self.source
        outer = set(_params(self.funcdef.params)) | _bound(self.funcdef)
        names = {item.name for item in found}
        for item in found:
            body = item.node.body
            own = set(_params(item.node.params)) | _bound(item.node)
            read = reads(body, outer)
            inner = [n for n in nodes(body) if _is_function(n) and id(n) not in self.mapped]
            if inner:
                self.fail(inner[0],
                          f"srcdiff lifts functions defined in {self.source.name}() itself, not "
                          "one defined inside another; define it beside the other.")
            item.captured = tuple(dict.fromkeys(
                n for n in read if n in outer and n not in own and n not in names))
            shadowed = [n for n in item.captured if n in self._comprehension_targets()]
            if shadowed:  # [act(x) for v in vs]: Python's act reads f's v, not the loop's
                self.fail(item.node, f"'{item.name}' reads '{shadowed[0]}', which a "
                          f"comprehension in {self.source.name}() also binds; rename one of them.")
        self._check_uses(found, names)
        body = _Rewriter(self, found).rewrite(self.funcdef)
        functions = self._make(found)
        family = tuple((item.name, functions[item.name]) for item in found)
        for item in found:
            register(functions[item.name], self._source_of(item, functions[item.name], family))
            line = source_of(functions[item.name]).first_line
            kind = "lambda" if type(item.node) is cst.Lambda else "function defined"
            _ORIGIN[functions[item.name]] = f"the {kind} in {self.source.name}() at line {line}" + (
                f" ({', '.join(item.captured)}, which it reads, passed first)" if item.captured
                else "")
        for helper, param, item, _, name in self.specs.values():
            made = specialize(helper, param, functions[item.name], item.captured, name)
            family += ((name, made),)
            _ORIGIN[made] = (f"{helper.__name__}() given {item.name} as {param} "
                             f"({', '.join(item.captured)}, which {item.name} reads, passed first)")
        module = self.module.with_changes(body=[body])
        return replace(self.source, module=module, text=None, lifted=family)

    def _comprehension_targets(self) -> set[str]:
        return {n.value for c in nodes(self.funcdef.body, skip=_is_function)
                if type(c) is cst.CompFor for n in nodes(c.target) if type(n) is cst.Name}

    def _find(self) -> list[_Nested]:
        """The nested ``def``s and lambdas, in order, each with the name it is lifted as."""
        found = []
        assigned = {}  # id(lambda) -> the name it is bound to
        for node in nodes(self.funcdef.body, skip=_is_function):
            if type(node) is cst.Assign and type(node.value) is cst.Lambda and \
                    len(node.targets) == 1 and type(node.targets[0].target) is cst.Name:
                assigned[id(node.value)] = node.targets[0].target.value
        for node in nodes(self.funcdef.body, skip=_is_function):
            if type(node) is cst.FunctionDef:
                if node.decorators:
                    self.fail(node.decorators[0], "srcdiff does not support a decorated "
                              f"function defined inside {self.source.name}(); define it at "
                              "module level.")
                found.append(_Nested(node.name.value, node))
            elif type(node) is cst.Lambda and id(node) not in self.mapped:
                name = assigned.get(id(node))
                found.append(_Nested(name or self.namer.fresh("lambda_"), node, name is None))
        seen: set[str] = set()
        for item in found:
            if item.name in seen:
                self.fail(item.node, f"'{item.name}' is defined twice in {self.source.name}(); "
                          "give each function its own name.")
            seen.add(item.name)
        return found

    def _check_uses(self, found, names) -> None:
        """Each lifted name is bound only by its definition; one that reads local variables is
        only ever called (a call passes them; a value could not carry them)."""
        params = set(_params(self.funcdef.params))
        lambdas = {id(item.node) for item in found if type(item.node) is cst.Lambda}
        for node in nodes(self.funcdef.body, skip=_is_function):
            kind = type(node)
            targets = [t.target for t in node.targets] if kind is cst.Assign and \
                id(node.value) not in lambdas else [node.target] if kind in (
                    cst.For, cst.CompFor, cst.AugAssign, cst.AnnAssign) else []
            for target in targets:
                for n in nodes(target):
                    if type(n) is cst.Name and (n.value in names):
                        self.fail(node, f"'{n.value}' names a function defined in "
                                  f"{self.source.name}() and is assigned here too; give them "
                                  "different names.")
        for item in found:
            if item.name in params:
                self.fail(item.node, f"'{item.name}' is a parameter of {self.source.name}() "
                          "and a function defined in it; give them different names.")
        captures = {item.name: item for item in found if item.captured}
        called = {id(n.func) for n in nodes(self.funcdef.body, skip=_is_function)
                  if type(n) is cst.Call} | {  # and act = lambda …: the definition itself
            id(n.targets[0].target) for n in nodes(self.funcdef.body, skip=_is_function)
            if type(n) is cst.Assign and id(n.value) in lambdas}
        arguments = {id(arg.value): (call, i) for call in nodes(self.funcdef.body, skip=_is_function)
                     if type(call) is cst.Call for i, arg in enumerate(call.args)}
        for item in found:
            if item.captured and item.inline:
                self._value_use(item.node, item, arguments)
        for node in nodes(self.funcdef.body, skip=_is_function):
            if type(node) is cst.Name and node.value in captures and id(node) not in called:
                self._value_use(node, captures[node.value], arguments)
        for item in found:
            for n in nodes(item.node.body):
                if type(n) is cst.Name and n.value in captures:
                    self.fail(n, f"'{n.value}' reads local variables of {self.source.name}() "
                              f"({', '.join(captures[n.value].captured)}), and srcdiff passes "
                              "them only where it is called in the function itself; pass them "
                              "as arguments.")

    def _value_use(self, node, item, arguments) -> None:
        """A function that reads local variables, used as a value: given to a helper of the
        user's, which then gets a specialized twin (``specialize.py``); else refused."""
        import inspect

        from .analysis.calls import is_user_function, resolve
        from .context import Context
        from .specialize import why_not

        call, index = arguments.get(id(node), (None, None))
        outer = set(_params(self.funcdef.params)) | _bound(self.funcdef)
        helper = resolve(call.func, Context(source=self.source, params=(), wrt=()), outer) \
            if call is not None else None
        if not is_user_function(helper) or helper is self.source.fn or \
                any(a.star for a in call.args):  # (not the function itself: it is being read)
            self._captured_value(node, item)
        try:
            bound = inspect.signature(helper).bind(
                *[a.value for a in call.args if a.keyword is None],
                **{a.keyword.value: a.value for a in call.args if a.keyword is not None})
        except TypeError:
            self._captured_value(node, item)
        param = next(p for p, v in bound.arguments.items() if v is node)
        problem = why_not(helper, param)
        if problem or id(call) in self.specs:
            what = "the lambda" if item.inline else f"'{item.name}'"
            self.fail(node, f"srcdiff gives {helper.__name__}() the local variables {what} "
                      f"reads ({', '.join(item.captured)}) by making it a helper of its own, "
                      "which it cannot do here: " + (problem or "two such functions in one "
                      "call") + f"; make {', '.join(item.captured)} a parameter of {what} "
                      "instead.")
        self.specs[id(call)] = (helper, param, item, index,
                                self.namer.fresh(f"{helper.__name__}_{item.name}"))

    def _captured_value(self, node, item) -> None:
        self.fail(node, f"srcdiff passes the local variables a function defined in "
                  f"{self.source.name}() reads ({', '.join(item.captured)}) at each call, and "
                  "here it is used as a value (not given to a helper of yours); call it "
                  f"directly, or make {', '.join(item.captured)} its parameters.")

    def _lifted_def(self, item: _Nested) -> cst.FunctionDef:
        """The function ``item`` becomes: the captured variables first, then its own
        parameters; a lambda's body returned; no decorators or leading comments."""
        node = item.node
        params = node.params
        first = [cst.Param(cst.Name(name), comma=cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))) for name in item.captured]
        if params.posonly_params:
            params = params.with_changes(posonly_params=[*first, *params.posonly_params])
        else:
            params = params.with_changes(params=[*first, *params.params])
        if type(node) is cst.Lambda:
            if item.captured and not (params.params[len(first):] or params.star_arg or
                                      params.kwonly_params or params.star_kwarg):
                params = params.with_changes(params=[
                    *first[:-1], first[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)])
            return cst.FunctionDef(
                name=cst.Name(item.name), params=params,
                body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Return(node.body)])]))
        body = node.body
        if type(body) is cst.SimpleStatementSuite:  # def act(z): return z * 2.0
            body = cst.IndentedBlock([cst.SimpleStatementLine([s]) for s in body.body])
        return node.with_changes(params=params, body=body, leading_lines=(), decorators=())

    def _first_line(self, item: _Nested) -> int:
        return self.source.file_line(self.source.line_of(self.module, item.node))

    def _make(self, found) -> dict:
        """The lifted functions, made together in one factory over the function's closure
        (so they see each other and its free variables), at their lines of the user's file."""
        defs = []
        for item in found:
            lifted = self._lifted_def(item)
            if item.inline or type(item.node) is cst.Lambda:  # one line, as it was written
                lifted = lifted.with_changes(body=cst.SimpleStatementSuite(lifted.body.body[0].body))
            defs.append((lifted, self._first_line(item)))
        try:
            made = make_functions(self.source.fn, defs)
        except NameError as exc:  # a default that reads a local variable
            name = getattr(exc, "name", None)
            item = next((i for i in found if name in names_in(i.node.params)), found[0])
            self.fail(item.node, f"a default value of '{item.name}' reads '{name}', a local "
                      f"variable of {self.source.name}(), before it runs; read it in the body "
                      "instead (srcdiff passes it at each call).")
        functions = {}
        for item, function in zip(found, made):
            function.__qualname__ = f"{self.source.fn.__qualname__}.<locals>.{item.name}"
            functions[item.name] = function
        return functions

    def _source_of(self, item: _Nested, function, family):
        """The lifted function's source: its own lines of the user's file."""
        from .source import FunctionSource

        start = self.source.line_of(self.module, item.node)
        end = self.source.positions_of(self.module)[item.node].end.line
        lines = self.source.lines[start - 1:end]
        indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
        lines = tuple(s[indent:] for s in lines)
        one_line = 1 if type(item.node) is cst.Lambda or \
            type(item.node.body) is cst.SimpleStatementSuite else None
        module = cst.Module(body=[self._lifted_def(item)])
        return FunctionSource(function, self.source.filename, self.source.file_line(start),
                              lines, module, None, one_line, item.name, family)


def _mapped_lambdas(funcdef, fn) -> set[int]:
    """The lambdas of ``map(lambda v: …, xs)``, which ``transforms/comprehensions.py`` writes
    as generator expressions, or refuses."""
    if fn.__globals__.get("map", builtins.map) is not builtins.map:
        return set()
    return {id(n.args[0].value) for n in nodes(funcdef) if type(n) is cst.Call and
            type(n.func) is cst.Name and n.func.value == "map" and n.args and
            type(n.args[0].value) is cst.Lambda}


class _Rewriter(cst.CSTTransformer):
    """The function's body without its nested functions: a definition leaves its lines
    blank, a lambda in a call becomes the name it is lifted as, and each call of a function
    that reads local variables passes them first (``act(x)`` → ``act(w, x)``)."""

    def __init__(self, lifter: _Lifter, found):
        self.lifter = lifter
        self.names = {id(item.node): item for item in found}
        self.captured = {item.name: item.captured for item in found if item.captured}
        self.removed: dict[int, int] = {}  # id(statement) -> lines it spanned

    def rewrite(self, funcdef: cst.FunctionDef) -> cst.FunctionDef:
        self.outer = funcdef
        return funcdef.visit(self)

    def _lines(self, node) -> int:
        positions = self.lifter.source.positions_of(self.lifter.module)[node]
        return positions.end.line - positions.start.line + 1 + len(node.leading_lines)

    def visit_FunctionDef(self, node) -> bool:
        return node is self.outer

    def visit_Lambda(self, node) -> bool:
        return False

    def leave_Lambda(self, original, updated):
        item = self.names.get(id(original))
        if item is None:  # map(lambda v: …, xs): a generator expression (comprehensions.py)
            return updated
        positions = self.lifter.source.positions_of(self.lifter.module)[original]
        if positions.start.line != positions.end.line:
            self.lifter.fail(original, "srcdiff lifts a lambda written on one line; write this "
                             "one on one line, or as a 'def'.")
        return cst.Name(item.name)

    def leave_Call(self, original, updated):
        func = updated.func
        spec = self.lifter.specs.get(id(original))
        if spec is not None:  # apply(lambda z: z * w, x) -> apply_lambda_(w, x)
            helper, param, item, index, name = spec
            return specialized_call(original, updated, helper, param, item.captured, index, name)
        if type(func) is cst.Name and func.value in self.captured:
            first = [cst.Arg(cst.Name(n)) for n in self.captured[func.value]]
            return updated.with_changes(args=[*first, *updated.args])
        return updated

    def _block(self, original_body, updated_body):
        """Statements, with the nested definitions (and ``act = lambda …``) taken out and
        their lines left blank before what follows; ``(statements, blank lines at the end)``."""
        out, blank = [], 0
        for old, new in zip(original_body, updated_body):
            if self._is_definition(old):
                blank += self._lines(old)
                continue
            if blank:
                new = new.with_changes(leading_lines=[*[cst.EmptyLine()] * blank,
                                                      *new.leading_lines])
                blank = 0
            out.append(new)
        if blank and not out:  # the block was only definitions: a pass keeps its lines
            return [cst.SimpleStatementLine([cst.Pass()], leading_lines=[cst.EmptyLine()] * (
                blank - 1))], 0
        return out, blank

    def _is_definition(self, stmt) -> bool:
        if type(stmt) is cst.FunctionDef:
            return id(stmt) in self.names
        return type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and \
            type(stmt.body[0]) is cst.Assign and id(stmt.body[0].value) in self.names and \
            type(stmt.body[0].targets[0].target) is cst.Name and \
            self.names[id(stmt.body[0].value)].name == stmt.body[0].targets[0].target.value

    def leave_IndentedBlock(self, original, updated):
        body, blank = self._block(original.body, updated.body)
        return updated.with_changes(body=body, footer=[*[cst.EmptyLine(indent=False)] * blank,
                                                       *updated.footer])
