"""Sharing analysis: which names may hold the same memory, and whether every write in place is
seen by each name that reads that memory afterwards.

srcdiff makes writes functional: ``out[i] = v`` becomes ``out_1 = rt.setitem(out, …)`` and
``y += x`` becomes ``y = y + x``. That is exact as long as no *other* reference to the written
memory is read afterwards — a view (``v = y[0:2]``), an alias (``z = y``), a container holding it
(``hs = [y]``), the array a loop iterates over, what a helper returned: numpy shows the write
through each of them, srcdiff's new array does not. This analysis follows an abstract set of
*roots* (the statements that made the memory) for every name, statement by statement, through
both sides of each ``if`` and around each loop to a fixpoint, and reports the first

- write into an argument or a global, or into memory that may be one (``InPlaceError``);
- read of a name whose memory was written through another name (a stale reference).

A root stands for the most recent array one expression made (an allocation site), and its
``older`` twin for all that site made before, so loops converge and an array made afresh in
each iteration is not mistaken for the one the last iteration stored.
Values that cannot be written (numbers, shapes, strings) have no roots: ``s += 1.0`` on a float
is a rebinding, not a write.

    y = x * 2.0            y: {y@1}
    z = y[0:2]             z: {y@1}         (a view)
    y += x                 y: {y@3}; z is stale: it shares y@1, which the write changed
    return np.sum(z)       ^ 'z' is a view of 'y' (numpy shares their memory), read after …
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from typing import Callable

import libcst as cst

from ..context import MISSING, Context
from ..names import nodes
from .calls import _dotted, resolve
from .effects import returns_new_array

__all__ = ["Problem", "analyze", "VIEWS"]

# calls and attributes that return a view of (or the same object as) their first argument
VIEWS = frozenset(
    "reshape transpose ravel squeeze expand_dims swapaxes moveaxis broadcast_to asarray "
    "asanyarray view T atleast_1d atleast_2d atleast_3d diagonal real imag flip fliplr flipud "
    "rot90 split array_split hsplit vsplit dsplit broadcast_arrays unstack "
    "diag conj conjugate rollaxis matrix_transpose ascontiguousarray asfortranarray "
    "real_if_close sliding_window_view".split()  # np.diag of a matrix; x.conj() of a real x
)  # is x itself
# numpy functions whose results are views of every array they are given (meshgrid's with
# copy=False, or a copy= not written as a literal: taken for views, which costs at most a
# refusal; np.atleast_2d(a, b) gives a view of each)
_VIEWS_OF_ALL = frozenset({"broadcast_arrays", "meshgrid", "atleast_1d", "atleast_2d",
                           "atleast_3d"})

# numpy functions that write into the array given first (out= aside), and array methods
# that write into their array (np.sort copies; x.sort() sorts x)
_FUNCTION_WRITERS = frozenset(
    "copyto put place putmask fill_diagonal put_along_axis at shuffle".split())
_METHOD_WRITERS = frozenset("fill sort partition resize itemset setfield put".split()
)
# attributes and builtins whose results cannot be written into
_IMMUTABLE_ATTRIBUTES = frozenset("shape ndim size dtype itemsize nbytes".split())
_IMMUTABLE_CALLS = frozenset("float int bool len round range str isinstance".split())
_PICKS = frozenset("max min".split())  # builtins that return one of their arguments
_CONTAINER_CALLS = {"list": "list", "dict": "dict", "tuple": None, "zip": None,
                    "enumerate": None, "reversed": None, "sorted": "list"}
_MUTATORS = frozenset("append extend insert pop update clear setdefault remove".split())
_COPIES = frozenset("copy astype tolist item".split())
# numpy functions (and array methods) that return their first argument (their array) itself
# for some values of an option: name -> (the option, its position, those values); any other
# constant makes a new array
_VIEW_WHEN = {"astype": ("copy", None, (False,)), "polyder": ("m", 1, (0,)),
              "polyint": ("m", 1, (0,)), "array": ("copy", None, (False, None))}
_METHOD_VIEW_WHEN = {"astype": ("copy", None, (False,))}


def _returns_its_argument(call: cst.Call, option: str, position, values) -> bool:
    """Whether ``call`` may return its first argument itself: its ``option`` (by keyword, or
    at ``position``) is one of ``values`` or not a constant."""
    given = next((a.value for a in call.args if a.keyword and a.keyword.value == option), None)
    if given is None and position is not None and len(call.args) > position and \
            call.args[position].keyword is None and call.args[position].star == "":
        given = call.args[position].value
    if given is None:
        return False
    try:
        constant = ast.literal_eval(cst.Module([]).code_for_node(given))
        return any(constant is v or constant == v and type(constant) is type(v) for v in values)
    except (ValueError, SyntaxError):
        return True  # a variable: it may be


@dataclass(frozen=True)
class Root:
    """Where memory comes from: an ``argument`` or ``global`` (by name), or the ``array``,
    ``list`` or ``dict`` one expression makes (``site`` identifies the expression)."""

    kind: str
    site: object
    older: bool = False  # the objects a site made before its most recent one

    @property
    def container(self) -> bool:
        return self.kind in ("list", "dict")

    @property
    def external(self) -> bool:
        return self.kind in ("argument", "global")


@dataclass(frozen=True)
class Problem:
    """What the analysis found: ``kind`` is ``in_place`` (an input is written) or ``stale``;
    ``node`` is where to point, ``message`` what to tell the user."""

    kind: str
    node: cst.CSTNode
    message: str


@dataclass(frozen=True)
class _Binding:
    """How a name came to hold its memory, for messages: ``describe()`` gives ``how``
    (``v = x[0:2]``) and the value's source ``text``, made only when a message needs them;
    ``line``, the names the value read, and the name it is a plain view of."""

    describe: Callable[[], tuple[str, str]]
    line: int
    reads: tuple[str, ...] = ()
    view_of: str | None = None  # a plain view (``x[0:2]``, ``x.T``, ``x``) of this name

    @property
    def how(self) -> str:
        return self.describe()[0]

    @property
    def text(self) -> str:
        return self.describe()[1]


@dataclass(frozen=True)
class _Stale:
    written: str  # the name that was written through
    line: int


@dataclass
class _State:
    env: dict = field(default_factory=dict)        # name -> frozenset[Root]
    stale: dict = field(default_factory=dict)      # name -> _Stale
    bindings: dict = field(default_factory=dict)   # name -> tuple[_Binding, ...] (per path)
    # name -> the list or dict object(s) the name itself is, where known (``ys = [x]``,
    # ``zs = ys``); a name not here may be any container among its roots
    tops: dict = field(default_factory=dict)

    def copy(self) -> "_State":
        return _State(dict(self.env), dict(self.stale), dict(self.bindings), dict(self.tops))

    def merge(self, other: "_State") -> "_State":
        env = dict(self.env)
        for name, roots in other.env.items():
            env[name] = env.get(name, frozenset()) | roots
        stale = {**other.stale, **self.stale}
        bindings = dict(self.bindings)
        for name, theirs in other.bindings.items():
            mine = bindings.get(name, ())
            bindings[name] = mine + tuple(b for b in theirs if b not in mine)[:4]
        tops = {}
        for name in env:  # known only where every path that binds the name knows it
            paths = [state for state in (self, other) if name in state.env]
            if all(name in state.tops for state in paths):
                tops[name] = frozenset().union(*(state.tops[name] for state in paths))
        return _State(env, stale, bindings, tops)

    def same(self, other: "_State") -> bool:
        return self.env == other.env and self.stale.keys() == other.stale.keys() and \
            self.tops == other.tops


class _Found(Exception):
    pass


def analyze(funcdef: cst.FunctionDef, ctx: Context, line_of) -> Problem | None:
    """The first in-place write into an input, or stale read, in ``funcdef``; else ``None``.

    ``line_of(node)`` is the file line of a node of ``funcdef``.
    """
    flow = _Flow(funcdef, ctx, line_of)
    try:
        flow.block(funcdef.body.body)
    except _Found as found:
        return found.args[0]
    return None


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node).strip()


class _Flow:
    def __init__(self, funcdef: cst.FunctionDef, ctx: Context, line_of):
        self.ctx, self.line_of = ctx, line_of
        self.locals = _bound_names(funcdef) | set(ctx.params)
        self.state = _State()
        for p in ctx.params:
            self.state.env[p] = frozenset({Root("argument", p)})
        self.jumps: list[tuple[list, list]] = []  # per enclosing loop: states at break, continue

    # ----- statements -----

    def block(self, statements) -> None:
        for stmt in statements:
            self.statement(stmt)

    def statement(self, stmt: cst.CSTNode) -> None:
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                self.small(small, stmt)
        elif type(stmt) is cst.If:
            self.read(stmt.test)
            entry = self.state
            self.state = entry.copy()
            self.block(stmt.body.body)
            taken = self.state
            self.state = entry.copy()
            if type(stmt.orelse) is cst.Else:
                self.block(stmt.orelse.body.body)
            elif stmt.orelse is not None:
                self.statement(stmt.orelse)
            self.state = taken.merge(self.state)
        elif type(stmt) is cst.For:
            self.loop_for(stmt)
        elif type(stmt) is cst.While:
            self.loop(stmt, lambda: self.read(stmt.test))
        elif type(stmt) is cst.With:  # with srcdiff.no_grad(): (validate allows no other)
            self.block(stmt.body.body)

    def small(self, small: cst.BaseSmallStatement, line: cst.CSTNode) -> None:
        if type(small) in (cst.Assign, cst.AnnAssign):
            target = small.targets[0].target if type(small) is cst.Assign else small.target
            if small.value is None:
                return
            self.read(small.value)
            self.calls_write(small.value, small)
            if type(target) in (cst.Subscript, cst.Attribute):
                self.read(target)
                self.write(target, small)
            else:
                self.bind(target, small.value, small)
        elif type(small) is cst.AugAssign:
            self.read(small.value)
            self.read(small.target)
            name = small.target.value if type(small.target) is cst.Name else None
            if name is not None and not self.state.env.get(name):
                # a number: `s += v` rebinds s (to a new array if v is one)
                self.assign(name, self.arith([small.target, small.value], small), small,
                            how=lambda: _code(small))
            else:
                self.write(small.target, small)
        elif type(small) is cst.Expr:
            self.read(small.value)
            call = small.value
            if type(call) is cst.Call and type(call.func) is cst.Attribute and \
                    call.func.attr.value in _MUTATORS and type(call.func.value) is cst.Name:
                self.mutate_container(call.func.value.value, call, small)
            else:
                self.calls_write(call, small)
        elif type(small) is cst.Return and small.value is not None:
            self.read(small.value)
        elif type(small) in (cst.Break, cst.Continue) and self.jumps:
            self.jumps[-1][type(small) is cst.Continue].append(self.state.copy())

    def loop_for(self, stmt: cst.For) -> None:
        self.read(stmt.iter)
        rows = self.iterated(stmt.iter)
        hidden = f"<loop at line {self.line_of(stmt)}>"  # what the loop iterates over
        self.state.env[hidden] = frozenset().union(*rows) if rows else frozenset()
        self.state.bindings[hidden] = (_Binding(
            lambda: (f"for … in {_code(stmt.iter)}", _code(stmt.iter)), self.line_of(stmt)),)

        def how():
            return f"for {_code(stmt.target)} in {_code(stmt.iter)}"

        def head():
            if hidden in self.state.stale:
                self.fail_stale(hidden, stmt)
            targets = stmt.target.elements if type(stmt.target) is cst.Tuple else None
            if targets is None:
                self.assign(stmt.target.value, frozenset().union(*rows), stmt, stmt.iter, how)
            else:
                for i, element in enumerate(targets):
                    part = rows[i] if len(rows) == len(targets) else frozenset().union(*rows)
                    inner = element.value  # for i, (a, b) in …: each of a, b may be any of it
                    for name in inner.elements if type(inner) in (cst.Tuple, cst.List) else ():
                        self.assign(name.value.value, part, stmt, stmt.iter, how)
                    if type(inner) is cst.Name:
                        self.assign(inner.value, part, stmt, stmt.iter, how)

        self.loop(stmt, head)
        self.state.env.pop(hidden, None)
        self.state.stale.pop(hidden, None)

    def loop(self, stmt, head) -> None:
        state = self.state
        for _ in range(50):
            self.state = state.copy()
            head()
            self.jumps.append(([], []))
            self.block(stmt.body.body)
            breaks, continues = self.jumps.pop()
            after = state.merge(self.state)
            for jump in continues:
                after = after.merge(jump)
            if after.same(state):
                break
            state = after
        if isinstance(getattr(stmt, "orelse", None), cst.Else):  # for/while … else: runs
            self.state = state  # when the loop ends without a break
            self.block(stmt.orelse.body.body)
            state = self.state
        for exit_state in breaks:
            state = state.merge(exit_state)
        self.state = state

    # ----- bindings and writes -----

    def bind(self, target: cst.BaseExpression, value: cst.BaseExpression, stmt) -> None:
        if type(target) is cst.Name:
            self.assign(target.value, self.roots(value), stmt, value, view_of=_view_of(value))
            top = self.top_of(value)
            if top is not None:
                self.state.tops[target.value] = top
        elif type(target) in (cst.Tuple, cst.List):
            names = [e.value.value for e in target.elements]
            if type(value) in (cst.Tuple, cst.List) and len(value.elements) == len(names):
                parts = [self.roots(e.value) for e in value.elements]
            else:
                parts = [_elements(self.roots(value))] * len(names)
            for name, roots in zip(names, parts):
                self.assign(name, roots, stmt, value,
                            lambda: f"{_code(target)} = {_code(value)}")

    def assign(self, name: str, roots, stmt, value=None, how=None,
               view_of: str | None = None) -> None:
        """``name`` now holds memory with ``roots``; ``how()`` says how, for messages."""
        self.state.env[name] = roots
        self.state.stale.pop(name, None)
        self.state.tops.pop(name, None)

        def describe():
            text = _code(value) if value is not None else ""
            return (how() if how else f"{name} = {text}"), text

        self.state.bindings[name] = (_Binding(describe, self.line_of(stmt),
                                              tuple(_read_names(value)) if value else (), view_of),)

    def write(self, target: cst.BaseExpression, stmt, call: cst.Call | None = None) -> None:
        """``target`` (``n[i]``, ``n.a`` or ``n`` of ``n += …``) is changed in place (by
        ``call``, where a call writes it)."""
        base = target
        while type(base) in (cst.Subscript, cst.Attribute):
            base = base.value
        if type(base) is not cst.Name:
            return
        name = base.value
        roots = self.name_roots(name)
        containers = frozenset(r for r in roots if r.container)
        changed = containers or roots
        self.check_inputs(name, changed, stmt, call=call)
        self.mark_stale(name, changed, stmt)
        kept = roots - changed if containers else frozenset()
        self.state.env[name] = kept | self.fresh("list" if containers else "array", stmt)
        self.state.stale.pop(name, None)

    def calls_write(self, value: cst.BaseExpression, stmt) -> None:
        for node in nodes(value):
            if type(node) is cst.Call:
                self.call_writes(node, stmt)

    def call_writes(self, call: cst.Call, stmt) -> None:
        """What a call writes into: the array given as ``out=``, the first argument of
        ``np.copyto``/``np.put``/``ufunc.at``…, the object of ``y.fill(…)``/``y.sort()``."""
        targets = [a.value for a in call.args if a.keyword is not None and a.keyword.value == "out"]
        func = call.func
        if type(func) is cst.Attribute:
            if _global_path(func, self.locals):
                if func.attr.value in _FUNCTION_WRITERS and call.args:
                    targets.append(call.args[0].value)  # np.copyto(y, x), np.add.at(y, i, v)
            elif func.attr.value in _METHOD_WRITERS:
                targets.append(func.value)  # y.fill(v), y.sort()
        for target in targets:
            if type(target) in (cst.Name, cst.Subscript, cst.Attribute):
                self.write(target, stmt, call)

    def mutate_container(self, name: str, call: cst.Call, stmt) -> None:
        """``name.append(…)`` and the like change the list or dict ``name`` is: where that
        object is known (``ys = [x]``), only it, not the lists inside it or that a value in
        it came from (``ys.append(first(hs))`` leaves ``hs`` as it was)."""
        roots = self.name_roots(name)
        changed = self.state.tops.get(name) or frozenset(r for r in roots if r.container) or roots
        self.check_inputs(name, changed, stmt, method=call.func.attr.value)
        self.mark_stale(name, changed, stmt)
        added = frozenset().union(*(self.roots(a.value) for a in call.args))
        made = self.fresh("list", stmt)
        self.state.env[name] = (roots - changed) | added | made
        self.state.tops[name] = made
        self.state.bindings[name] = (_Binding(lambda: (_code(call), _code(call)),
                                              self.line_of(stmt), tuple(_read_names(call))),)

    def check_inputs(self, name: str, changed, stmt, method: str | None = None,
                     call: cst.Call | None = None) -> None:
        external = sorted((r for r in changed if r.external), key=lambda r: (r.kind, r.site))
        if not external:
            return
        root = external[0]
        what = f"the argument {root.site}" if root.kind == "argument" else \
            f"{root.site}, a global,"
        if call is not None:
            message = (f"'{_code(call)}' changes {what} in place; srcdiff never differentiates "
                       f"in-place changes of inputs. Copy it first (y = {root.site}.copy()) and "
                       "change the copy, or compute a new array.")
        elif method is not None:
            message = (f"'{name}.{method}(…)' changes {what} in place; srcdiff never "
                       f"differentiates in-place changes of inputs. Make a new list "
                       f"('{name} = list({name})') first.")
        elif type(stmt) is cst.AugAssign:
            op = _code(stmt.operator)
            if name != root.site:
                what = f"'{name}', a view of {what}"
            message = (f"'{name} {op} …' changes {what} in place; srcdiff never differentiates "
                       f"in-place changes of inputs. Write '{name} = {name} {op[:-1]} …' to "
                       f"make a new array.")
        else:
            message = (f"this assignment changes {what} (or a view of it) in place; srcdiff "
                       f"never differentiates in-place changes of inputs. Copy it first "
                       f"(y = {root.site}.copy()) and write into the copy.")
        raise _Found(Problem("in_place", stmt, message))

    def mark_stale(self, name: str, changed, stmt) -> None:
        line = self.line_of(stmt)
        for other, roots in self.state.env.items():
            if other != name and roots & changed and other not in self.state.stale:
                self.state.stale[other] = _Stale(name, line)

    # ----- reads -----

    def read(self, node: cst.CSTNode) -> None:
        """Every name ``node`` reads must hold memory that no write has changed since."""
        for name in _read_names(node):
            if name in self.state.stale:
                self.fail_stale(name, node)

    def fail_stale(self, name: str, node: cst.CSTNode):
        stale = self.state.stale[name]
        written = stale.written
        mine_all = self.state.bindings.get(name, ())
        theirs_all = self.state.bindings.get(written, ())
        mine = next((b for b in mine_all if b.view_of == written),
                    next((b for b in mine_all if written in b.reads),
                         mine_all[-1] if mine_all else None))
        theirs = next((b for b in theirs_all if b.view_of == name),
                      next((b for b in theirs_all if name in b.reads), None))
        if name.startswith("<loop") and mine.text[:1] in "([":
            message = (f"this loop iterates over {mine.text}, which holds '{written}', changed "
                       f"in place on line {stale.line}, inside the loop; srcdiff makes a new "
                       f"array at each write, so the loop would not see the change. Write "
                       f"'{written} = {written} + …' (a new array) instead of writing in place.")
        elif name.startswith("<loop"):
            message = (f"this loop iterates over {mine.text}, which is changed in place through "
                       f"'{written}' on line {stale.line}, inside the loop; srcdiff makes a new "
                       f"array at each write, so the loop would not see the change. Iterate over "
                       f"a copy ({mine.text}.copy()), or write '{written} = …' to make a new "
                       f"array.")
        elif mine is not None and mine.view_of == written:
            message = (f"'{name}' is a view of '{written}' (numpy shares their memory), read "
                       f"after '{written}' was written into on line {stale.line}; srcdiff's "
                       f"writes do not show through views. Take a copy: "
                       f"{name} = {mine.text}.copy().")
        elif theirs is not None and theirs.view_of == name:
            message = (f"'{written}' is a view of '{name}' ({theirs.how}, line {theirs.line}), "
                       f"written into on line {stale.line}; numpy changes '{name}' too, but "
                       f"srcdiff's writes do not show through views, and '{name}' is read here. "
                       f"Take a copy ({written} = {theirs.text}.copy()) before writing into it.")
        else:
            link = theirs or mine
            how = f" ({link.how}, line {link.line})" if link is not None and link.how else ""
            message = (f"'{name}' may share memory with '{written}'{how}, and is read after "
                       f"'{written}' was changed in place on line {stale.line}; srcdiff makes a "
                       f"new array at each write, so the change would not show through "
                       f"'{name}'. Store a copy (.copy()) where they start to share, or make a "
                       f"new array instead of writing in place ('{written} = {written} + …').")
        raise _Found(Problem("stale", node, message))

    # ----- what an expression may share -----

    def name_roots(self, name: str):
        if name in self.state.env:
            return self.state.env[name]
        if name in self.locals:
            return frozenset()  # not bound on this path yet
        return self.global_roots(cst.Name(name), name)

    def global_roots(self, node, text: str):
        obj = resolve(node, self.ctx, frozenset(self.locals))
        if obj is not MISSING and (_immutable(obj) or inspect.ismodule(obj) or callable(obj)):
            return frozenset()
        return frozenset({Root("global", text)})

    def roots(self, e: cst.BaseExpression):
        if type(e) is cst.Name:
            return self.name_roots(e.value)
        if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString,
                          cst.ConcatenatedString, cst.Ellipsis)):
            return frozenset()
        if type(e) is cst.UnaryOperation and type(e.operator) is cst.Not:
            return frozenset()
        if type(e) is cst.Comparison:
            return self.arith([e.left] + [c.comparator for c in e.comparisons], e)
        if type(e) is cst.Attribute:
            attr = e.attr.value
            if attr in _IMMUTABLE_ATTRIBUTES:
                return frozenset()
            if _global_path(e, self.locals):
                return self.global_roots(e, ".".join(_dotted(e) or ["?"]))
            inner = self.roots(e.value)
            return inner if attr in VIEWS else _elements(inner)
        if type(e) is cst.Subscript:
            if any(_fancy(s.slice) for s in e.slice):
                return self.fresh("array", e)
            return _elements(self.roots(e.value))
        if type(e) is cst.Call:
            return self.call_roots(e)
        if type(e) is cst.BinaryOperation:
            return self.arith([e.left, e.right], e)
        if type(e) is cst.UnaryOperation:
            return self.arith([e.expression], e)
        if type(e) is cst.BooleanOperation:
            return self.roots(e.left) | self.roots(e.right)
        if type(e) is cst.IfExp:
            return self.roots(e.body) | self.roots(e.orelse)
        if type(e) is cst.Tuple:
            return self.union(x.value for x in e.elements)
        if type(e) is cst.List:
            return self.union(x.value for x in e.elements) | self.fresh("list", e)
        if type(e) is cst.Dict:
            return self.union(x.value for x in e.elements) | self.fresh("dict", e)
        if type(e) in (cst.ListComp, cst.DictComp):  # a new list or dict of any value read
            return self.union(cst.Name(n) for n in _read_names(e)) | \
                self.fresh("list" if type(e) is cst.ListComp else "dict", e)
        return self.union(cst.Name(n) for n in _read_names(e))  # anything else: may share all

    def top_of(self, value):
        """The list or dict object(s) ``value`` itself is, where known: a display, a
        ``list(…)``/``dict(…)``/``sorted(…)`` (made by ``roots``), or a name whose object is
        known; None otherwise."""
        if type(value) is cst.Name:
            return self.state.tops.get(value.value)
        if type(value) in (cst.List, cst.Dict, cst.ListComp, cst.DictComp):
            return frozenset({Root("list" if type(value) in (cst.List, cst.ListComp) else "dict",
                                   id(value))})
        if type(value) is cst.Call and type(value.func) is cst.Name and \
                _global_path(value.func, self.locals):
            obj = resolve(value.func, self.ctx, frozenset(self.locals))
            kind = _CONTAINER_CALLS.get(getattr(obj, "__name__", None)) \
                if getattr(obj, "__module__", None) == "builtins" else None
            if kind:
                return frozenset({Root(kind, id(value))})
        return None

    def fresh(self, kind: str, node: cst.CSTNode):
        """A new object made by ``node``: what ``node`` made before becomes its older twin."""
        new, older = Root(kind, id(node)), Root(kind, id(node), True)
        env = self.state.env
        for name, roots in env.items():
            if new in roots:
                env[name] = (roots - {new}) | {older}
        return frozenset({new})

    def union(self, exprs):
        return frozenset().union(*(self.roots(x) for x in exprs))

    def arith(self, operands, node):
        """Arithmetic makes a new array out of arrays, and a number out of numbers."""
        return self.fresh("array", node) if self.union(operands) else frozenset()

    def call_roots(self, call: cst.Call):
        func = call.func
        args = [a.value for a in call.args]
        if type(func) is cst.Attribute and not _global_path(func, self.locals):
            method = func.attr.value  # a method of a local value
            if method in VIEWS or method in _METHOD_VIEW_WHEN and \
                    _returns_its_argument(call, *_METHOD_VIEW_WHEN[method]):
                return self.roots(func.value)
            if method == "get":
                return _elements(self.roots(func.value))
            return self.fresh("array", call)
        obj = resolve(func, self.ctx, frozenset(self.locals))
        name = getattr(obj, "__name__", None) if obj is not MISSING else None
        if obj is max or obj is min:
            return self.union(args)
        if name in _IMMUTABLE_CALLS and getattr(obj, "__module__", None) == "builtins" or \
                getattr(obj, "__module__", None) == "math":
            return frozenset()
        if name in _CONTAINER_CALLS and getattr(obj, "__module__", None) == "builtins":
            kind = _CONTAINER_CALLS[name]
            inner = self.union(args)
            return inner | self.fresh(kind, call) if kind else inner
        if obj is abs:
            return self.arith(args, call)
        if name in _VIEWS_OF_ALL and (getattr(obj, "__module__", None) or "").startswith("numpy"):
            if name == "meshgrid" and _copies(call):
                return self.fresh("array", call)  # copy=True, the default: new arrays
            return self.union(args)  # np.broadcast_arrays(a, b): views of every operand
        if name in VIEWS and args or name in _VIEW_WHEN and args and \
                (getattr(obj, "__module__", None) or "").startswith("numpy") and \
                _returns_its_argument(call, *_VIEW_WHEN[name]):
            inner = self.roots(args[0])
            if type(args[0]) in (cst.List, cst.Tuple) or inner and all(r.container for r in inner):
                return self.fresh("array", call)  # np.asarray([w, 0.5]): a new array of a list
            return inner
        module = (getattr(obj, "__module__", None) or "").split(".")[0]
        if obj is not MISSING and returns_new_array(obj):  # def softplus(z): return np.log1p(…)
            return self.fresh("array", call)
        if obj is MISSING or (inspect.isfunction(obj) or inspect.ismethod(obj)
                              or inspect.isclass(obj)) and module not in ("numpy", "cupy", "scipy"):
            # the user's own function or class (a namedtuple, a dataclass: it keeps what it is
            # given), or one srcdiff cannot see: its result may be any argument, or hold one
            return self.union(args) | self.fresh("array", call)
        return self.fresh("array", call)

    def iterated(self, it: cst.BaseExpression) -> list:
        """The roots of the items a loop takes, one set per target of ``zip`` / ``enumerate``."""
        if type(it) is cst.Call and type(it.func) is cst.Name:
            args = [a.value for a in it.args]
            if it.func.value == "range":
                return [frozenset()]
            if it.func.value == "enumerate" and args:
                return [frozenset(), _elements(self.roots(args[0]))]
            if it.func.value == "zip":
                return [_elements(self.roots(a)) for a in args]
        if type(it) in (cst.Tuple, cst.List):
            return [self.union(x.value for x in it.elements)]
        return [_elements(self.roots(it))]


def _elements(roots):
    """What is read out of a value: its elements share all but the container itself."""
    return frozenset(r for r in roots if not r.container)


def _immutable(obj) -> bool:
    if isinstance(obj, (int, float, complex, str, bytes, bool, type(None))):
        return True
    return isinstance(obj, tuple) and all(_immutable(x) for x in obj)


def _global_path(node: cst.BaseExpression, local_names) -> bool:
    """``np.linalg.norm``, ``C``: a dotted name whose head is not a local variable."""
    while type(node) is cst.Attribute:
        node = node.value
    return type(node) is cst.Name and node.value not in local_names


def _fancy(index: cst.BaseSlice) -> bool:
    """Integer-array or boolean indexing (``x[np.array([1, 2])]``, ``x[x > 0]``) copies."""
    if type(index) is not cst.Index:
        return False
    value = index.value
    if type(value) in (cst.List, cst.Comparison):
        return True
    return type(value) is cst.Call and not (
        type(value.func) is cst.Name and value.func.value in ("int", "len", "slice", "round"))


def _view_of(value: cst.BaseExpression) -> str | None:
    """The name ``value`` is a plain view of: ``x``, ``x[1:]``, ``x.T``, ``x.reshape(…)``."""
    while True:
        if type(value) is cst.Name:
            return value.value
        if type(value) is cst.Subscript and not any(_fancy(s.slice) for s in value.slice) \
                or type(value) is cst.Attribute and value.attr.value in VIEWS:
            value = value.value
        elif type(value) is cst.Call and type(value.func) is cst.Attribute and \
                value.func.attr.value in VIEWS and type(value.func.value) is cst.Name and \
                value.func.value.value not in ("np", "numpy"):
            value = value.func.value
        else:
            return None


def _read_names(node: cst.CSTNode) -> list[str]:
    """The variables ``node`` reads (not attribute names, keywords, or ``n`` of ``n = …``)."""
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        for n in nodes(stack.pop(), skip=_opaque):
            kind = type(n)
            if kind is cst.Name:
                found[n.value] = None
            elif kind is cst.Attribute or kind is cst.Arg:
                stack.append(n.value)  # not the attribute's name, nor the keyword
    return list(found)


def _opaque(node: cst.CSTNode) -> bool:
    return type(node) is cst.Attribute or type(node) is cst.Arg


def _bound_names(funcdef: cst.FunctionDef) -> set[str]:
    """Every name the function binds: assignment, augmented assignment and loop targets."""
    names: set[str] = set()

    def add(target) -> None:
        if type(target) is cst.Name:
            names.add(target.value)
        elif type(target) in (cst.Tuple, cst.List):
            for e in target.elements:
                add(e.value)

    for n in nodes(funcdef.body):
        if type(n) in (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For):
            add(n.target)
    return names


def _copies(call: cst.Call) -> bool:
    """Whether a ``np.meshgrid`` call copies: ``copy=`` left out (True) or written ``True``."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "copy":
            return type(arg.value) is cst.Name and arg.value.value == "True"
        if arg.star == "**":
            return False  # copy= may be in there
    return True
