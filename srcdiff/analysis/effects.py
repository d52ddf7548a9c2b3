"""Effects analysis: which calls may change what their arguments (or globals) hold.

srcdiff differentiates values, not side effects: a call that writes into a list, dict, object
or array it was given (``cache.append(v)`` in a helper, ``np.copyto(y, x)``, ``out=y``,
``setattr(o, "v", a)``) runs in the forward pass, but its write has no adjoint. Where a
value that needs a gradient reaches such a call, the gradient would silently be wrong, so the
reverse pass refuses it (``write_of``). A call is taken for read-only only when that is
*proven*: a function of the read-only tables below, a numpy function with an adjoint rule
called without ``out=``, or a user helper whose own body (and every helper it calls) writes
nothing but its local names.

    def remember(cache, v):          write_of(remember(cache, a)) ->
        cache.append(v)              Write("'cache.append(…)' changes what 'cache' holds",
                                           file, line 2)
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import types
import weakref
from dataclasses import dataclass

import libcst as cst
import numpy as np

from srcdiff.runtime import NONDIFFERENTIABLE, NONDIFFERENTIABLE_METHODS, no_grad, rule_for

from ..context import MISSING
from ..names import nodes
from .calls import METHODS, _dotted, _signature, reads_source, resolve_parts
from .function_values import (helper_functions, local_functions, named, records,
                              statements_of)

__all__ = ["Write", "write_of", "unseen_write", "READ_ONLY_BUILTINS", "READ_ONLY_METHODS", "NUMPY_WRITERS"]

# builtins that never change their arguments
READ_ONLY_BUILTINS = frozenset(
    getattr(builtins, name) for name in
    "abs all any bool dict divmod enumerate float hasattr int isinstance issubclass iter len list "
    "max min pow print range repr reversed round sorted str sum tuple type zip".split())
# methods that never change their receiver (arrays, lists, dicts, tuples)
READ_ONLY_METHODS = frozenset(METHODS) | NONDIFFERENTIABLE_METHODS | frozenset(
    "astype conj conjugate count get index item items keys tolist values".split())
# keywords through which a numpy function writes into an array it is given
_OUTPUT_KEYWORDS = frozenset({"out"})
# numpy's functions that write into an argument (ufunc methods: ``np.add.at``); numpy's other
# functions only read theirs (``out=`` aside)
NUMPY_WRITERS = frozenset("copyto put place putmask fill_diagonal put_along_axis shuffle at "
                          "seed".split())


@dataclass(frozen=True)
class Write:
    """Where a call may write: ``what`` it changes, at ``line`` of ``filename``."""

    what: str
    filename: str
    line: int


def write_of(call: cst.Call, lookup, local_names, records=None, functions=None) -> Write | None:
    """How ``call`` may change a value it can reach, or ``None`` where it provably cannot.

    ``lookup(name)`` resolves a free name of the calling function (``Context.lookup``);
    ``local_names`` are the calling function's own variables; ``records`` maps a local to
    the dataclass or namedtuple class it was built from (``r = Rec(...)``), whose methods
    are then read like helpers; ``functions`` maps a local to every function it may hold
    (``act = twice``, ``g = pick(0)``), each of which is then read.
    """
    effects = _Effects(lookup, local_names)
    effects.records = records or {}
    effects.functions = functions or {}
    return effects.call(call, {})


def unseen_write(statements, ctx, local_names, activity, steps, where=None, functions=None):
    """``(where, call, Write, varied name)`` for the first call of a normalized body that may
    write into what it is given, that a varied value reaches, and whose line needs no adjoint
    (a line that does is spared: a helper's own derivative refuses such writes, and an
    operation without a rule is refused where its adjoint is written); else ``None``.
    ``where`` is the ``(line, text)`` of the statement's ``# line N`` marker."""
    from ..context import parse_marker
    from .calls import reads

    if functions is None:  # the function's whole body: what its locals may hold, once
        loop_targets = {n.value for stmt in statements for node in nodes(stmt)
                        if type(node) in (cst.For, cst.CompFor)
                        for n in nodes(node.target) if type(n) is cst.Name}
        functions = local_functions(statements_of(steps), ctx.lookup, loop_targets)
    for stmt in statements:
        where = parse_marker(stmt.leading_lines) or where
        if type(stmt) is cst.If:
            blocks = [stmt.body.body] + ([stmt.orelse.body.body]
                                         if type(stmt.orelse) is cst.Else else [])
            for block in blocks:
                found = unseen_write(block, ctx, local_names, activity, steps, where, functions)
                if found is not None:
                    return found
            continue
        if type(stmt) in (cst.For, cst.While):
            found = unseen_write(stmt.body.body, ctx, local_names, activity, steps, where,
                                 functions)
            if found is not None:
                return found
            stmt = stmt.iter if type(stmt) is cst.For else stmt.test
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Raise:
            continue  # nothing runs after a raise: what its exception's calls write is never read
        step = steps.get(id(stmt))
        if step is not None and any(activity.is_active(t) for t in (
                step[0] if isinstance(step[0], tuple) else (step[0],))):
            continue
        for call in nodes(stmt):
            if type(call) is not cst.Call:
                continue
            varied = [n for n in reads(call, local_names) if n in activity.varied]
            records = {t: op.primitive for t, op, _ in steps.values()
                       if isinstance(t, str) and op.kind == "pack" and isinstance(op.primitive, type)}
            write = varied and write_of(call, ctx.lookup, local_names, records, functions)
            if write:
                return where, call, write, varied[0]
    return None


class _Effects:
    """The first possible write of one function body (or one call in it)."""

    def __init__(self, lookup, local_names, filename: str = "", source=None, fresh=None):
        self.lookup, self.local_names = lookup, local_names
        self.filename, self.source = filename, source
        self.fresh = fresh or {}  # a helper's locals that only ever hold memory it made
        self.records: dict = {}  # a local -> the record class it was built from
        self.functions: dict = {}  # a local -> every function it may hold
        self.rebound: dict = {}  # the statement after a rebinding -> (name, kind) made fresh

    def line(self, node) -> int:
        """The file line of a node of the helper's source (0 for the calling function's)."""
        if self.source is None:
            return 0
        return self.source.file_line(self.source.line_of(self.source.module, node))

    def write(self, what: str, node) -> Write:
        return Write(what, self.filename, self.line(node))

    def call(self, call: cst.Call, seen: dict) -> Write | None:
        text = _code(call)
        if any(a.keyword is not None and a.keyword.value in _OUTPUT_KEYWORDS and
               self.fresh.get(_name_of(a.value)) != "array" for a in call.args):
            return self.write(f"'{text}' writes its result into the array given as out=", call)
        func = call.func
        parts = _dotted(func)
        held = self.functions.get(func.value) if type(func) is cst.Name else \
            named(func, self.lookup) if type(func) is cst.Call else None  # pick(1)(x)
        if held:  # act = twice; act(x)
            for obj in held:
                found = self.callee(obj, text, call, seen)
                if found is not None:
                    return found
            return None
        if type(func) is cst.Attribute and func.attr.value in _METHOD_OUTPUT_AT and not (
                parts and isinstance(self.resolve(parts[:-1]), types.ModuleType)):
            found = self.output(_argument_at(call, _METHOD_OUTPUT_AT[func.attr.value]), text,
                                call)  # a method of a value: a.dot(b, c)
            if found is not None:
                return found
        if type(func) is cst.Attribute and (parts is None or parts[0] in self.local_names):
            if func.attr.value in READ_ONLY_METHODS:  # a method of a local value
                return None
            method = getattr(self.records.get(_name_of(func.value)), func.attr.value, None)
            if inspect.isfunction(method) and reads_source(method):  # r = Rec(...); r.apply(x)
                return self.helper(method, text, call, seen)
            if self.fresh.get(_name_of(func.value)) and func.attr.value in LOCAL_MUTATORS:
                return None  # hs.append(v) on the helper's own list changes nothing it was given
            return self.write(f"'{text}' may change what '{_code(func.value)}' holds in place "
                              f"(.{func.attr.value}() is not known to leave it unchanged)", call)
        if type(func) is cst.Attribute and func.attr.value in READ_ONLY_METHODS and \
                not isinstance(self.resolve(parts[:-1]), (types.ModuleType, type)):
            return None  # a read-only method of a global value (C.dot(x))
        obj = self.resolve(parts)
        if obj is MISSING:
            return self.write(f"'{text}' calls something srcdiff cannot resolve", call)
        return self.callee(obj, text, call, seen)

    def callee(self, obj, text: str, call: cst.Call, seen: dict) -> Write | None:
        """The first write of ``call``, a call of ``obj``."""
        found = self.output(_positional_output(obj, call), text, call)
        if found is not None:
            return found
        if _read_only(obj):
            return None
        if inspect.isfunction(obj) and rule_for(obj) is None and reads_source(obj):
            return self.helper(obj, text, call, seen)
        if getattr(obj, "__name__", None) in NUMPY_WRITERS:
            return self.write(f"'{text}' writes into an array it is given", call)
        return self.write(f"'{text}' may change its arguments in place ("
                          f"{getattr(obj, '__qualname__', repr(obj))} is not known to leave them "
                          "unchanged)", call)

    def resolve(self, parts):
        return resolve_parts(parts, self.lookup)

    def output(self, out, text: str, call: cst.Call) -> Write | None:
        """The write of an output argument ``out`` (``_argument_at``'s) that is not memory
        the helper made itself."""
        if out is True or out is not None and self.fresh.get(_name_of(out)) != "array":
            return self.write(f"'{text}' writes its result into the array given as its output "
                              "argument", call)
        return None

    def helper(self, fn, text: str, call, seen: dict) -> Write | None:
        """The first write in ``fn``'s body, found once per function and per functions passed
        to it (a cycle is read-only until one of its bodies writes). A parameter given a
        function this call site names (``apply(twice, x)``) is that function in the body, so
        ``fn(u)`` there is followed into ``twice``."""
        bound = self.passed_functions(fn, call)
        key = (fn, tuple(sorted(bound.items(), key=lambda item: item[0])))
        if key in seen:
            return seen[key]
        seen[key] = None
        read = _read_source(fn)
        if read is None:
            seen[key] = self.write(f"'{text}' calls {fn.__qualname__}, whose source srcdiff "
                                   "cannot read", call)
            return seen[key]
        source, globals_lookup = read
        funcdef = source.funcdef

        def lookup(name: str):
            return bound[name] if name in bound else globals_lookup(name)

        inner = _Effects(lookup, _assigned(funcdef), source.filename, source,
                         _fresh(funcdef, lookup))
        inner.rebound = _rebound(funcdef, lookup)  # u = v * 2.0; u -= 1.0
        inner.records = records(funcdef, lookup)  # r = Rec(...); r.apply(x) in the helper
        inner.functions = helper_functions(funcdef, lookup)  # act = pick(1); act(x)
        found = inner.body(funcdef, seen)
        seen[key] = found
        return found

    def passed_functions(self, fn, call: cst.Call) -> dict:
        """``{parameter: function}`` for the arguments of ``call`` that name a function."""
        try:
            sig = inspect.signature(fn)
            bound = sig.bind(*[a.value for a in call.args if a.keyword is None and not a.star],
                             **{a.keyword.value: a.value for a in call.args if a.keyword})
        except (TypeError, ValueError):
            return {}
        found = {}
        for name, node in bound.arguments.items():
            obj = self.resolve(_dotted(node)) if type(node) in (cst.Name, cst.Attribute) \
                else MISSING
            held = self.functions.get(node.value, ()) if type(node) is cst.Name else ()
            if len(held) == 1:  # _t1 = np.tanh; apply(_t1, x)
                obj = held[0]
            if callable(obj) and not isinstance(obj, type):
                found[name] = obj
        return found

    def body(self, funcdef: cst.FunctionDef, seen: dict) -> Write | None:
        # (nothing runs after a raise: what its exception's calls write is never read)
        for node in nodes(funcdef.body, skip=lambda n: type(n) is cst.Raise):
            kind = type(node)
            if node in self.rebound:  # from here on the name holds the helper's memory
                name, made = self.rebound[node]
                self.fresh = {**self.fresh, name: made}
            if kind in (cst.Global, cst.Nonlocal, cst.Del, cst.FunctionDef, cst.ClassDef,
                        cst.Lambda):
                return self.write(f"{_code(node).strip().splitlines()[0]!r} is not known to "
                                  "leave its arguments unchanged", node)
            if kind is cst.AugAssign and not self.own(node.target, augmented=True):
                return self.write(f"'{_code(node).strip()}' may change an array in place", node)
            if kind is cst.AssignTarget or kind is cst.AnnAssign:
                target = node.target
                if type(target) in (cst.Subscript, cst.Attribute) and not self.own(target):
                    return self.write(f"'{_code(target)} = …' changes what "
                                      f"'{_code(target.value)}' holds in place", node)
            if kind is cst.Call:
                found = self.call(node, seen)
                if found is not None:
                    return found
        return None


    def own(self, target, augmented: bool = False) -> bool:
        """Whether writing ``target`` changes only memory the helper made itself: a fresh
        array (``out = np.zeros(n)``; ``out[i] += v``, ``out += v``), or a fresh list or dict
        written with ``=`` (``hs[0] = v``; ``hs[0] += v`` would write into the element)."""
        if type(target) is cst.Name:
            return self.fresh.get(target.value) == "array"
        if type(target) is cst.Subscript:
            kind = self.fresh.get(_name_of(target.value))
            return kind == "array" or kind == "container" and not augmented
        return False


# methods that change only the object they are called on
LOCAL_MUTATORS = frozenset("append extend insert pop remove clear update setdefault sort "
                           "reverse fill".split())
# what makes memory of its own: numpy's constructors and copies, displays, list()/dict()
_FRESH_CALLS = frozenset("zeros ones empty full zeros_like ones_like empty_like full_like eye "
                         "identity arange linspace copy concatenate stack hstack vstack dstack "
                         "column_stack tile repeat outer kron take take_along_axis sort "
                         "cross solve inv pinv cholesky".split())


def _bindings(funcdef: cst.FunctionDef, lookup) -> tuple[list, dict]:
    """Every way the body binds a name, in the order it spells them: ``(name, kind)``, the
    kind ``_made`` gives the value bound to a plain name (None: not new memory, or no value:
    loop, unpacking and ``as`` targets); and ``{id(assignment): the index of its first
    binding}``. Not ``u -= 1.0``, which keeps u's memory, nor a comprehension's targets,
    which live in its own scope."""
    bindings: list = []
    first: dict = {}
    for node in nodes(funcdef.body):
        kind = type(node)
        if kind is cst.Assign:
            first[id(node)] = len(bindings)
            for target in node.targets:
                made = _made(node.value, lookup) if type(target.target) is cst.Name else None
                for n in nodes(target.target):
                    if type(n) is cst.Name and type(target.target) is not cst.Subscript:
                        bindings.append((n.value, made))
        elif kind is cst.AnnAssign and type(node.target) is cst.Name and node.value is not None:
            bindings.append((node.target.value, _made(node.value, lookup)))  # h: T = …
        elif kind in (cst.For, cst.AnnAssign, cst.NamedExpr):
            bindings.extend((n.value, None) for n in nodes(node.target) if type(n) is cst.Name)
        elif kind is cst.AsName:  # with … as h, except … as h, import … as h
            bindings.extend((n.value, None) for n in nodes(node.name) if type(n) is cst.Name)
    return bindings, first


def _parameters(funcdef: cst.FunctionDef) -> set[str]:
    return {p.name.value for p in (*funcdef.params.posonly_params, *funcdef.params.params,
                                   *funcdef.params.kwonly_params)}


def _fresh(funcdef: cst.FunctionDef, lookup) -> dict[str, str]:
    """``name -> "array" | "container"`` for the locals every binding of which makes new
    memory (not parameters, not loop or unpacking targets, never a name or a view)."""
    kinds: dict[str, set] = {}
    for name, made in _bindings(funcdef, lookup)[0]:
        kinds.setdefault(name, set()).add(made)
    params = _parameters(funcdef)
    return {name: next(iter(k)) for name, k in kinds.items()
            if name not in params and len(k) == 1 and None not in k}


def _rebound(funcdef: cst.FunctionDef, lookup) -> dict:
    """``{statement: (name, kind)}`` for each parameter or local that a line of the body's
    top level rebinds to new memory (``u = v * 2.0``, ``h = np.add.reduce(t)``) and that
    every binding after that line also gives new memory of that kind, keyed by the next
    top-level statement: from there on, and only from there (the top level runs once, in
    order; the line itself may still write into what the name held, ``np.negative(u,
    out=u)``), writes into the name change only the helper's own memory, whatever it held
    before (``h = xs[0]`` above it: a view)."""
    bindings, first = _bindings(funcdef, lookup)
    found = {}
    top = funcdef.body.body
    for stmt, after in zip(top, top[1:]):
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
                type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and
                type(stmt.body[0].targets[0].target) is cst.Name):
            continue
        at = first[id(stmt.body[0])]
        name, made = bindings[at]
        if made is not None and name not in {n for n, _ in found.values()} and \
                all(kind == made for n, kind in bindings[at + 1:] if n == name):
            found[after] = (name, made)
    return found


# array methods whose result is always a new array (or a number) unless out= (or copy=False)
# says otherwise; not the views (reshape, ravel, T, squeeze, diagonal) nor conj, which is the
# array itself for a real one
_FRESH_METHODS = frozenset("dot sum mean prod std var cumsum cumprod flatten astype round clip "
                           "max min argmax argmin".split())


# where each of those methods takes ``out`` (``copy`` for astype) positionally: a.dot(b, c)
# writes into c and returns it
_METHOD_OUTPUT_AT = {"dot": 1, "sum": 2, "mean": 2, "prod": 2, "std": 2, "var": 2, "cumsum": 2,
                     "cumprod": 2, "clip": 2, "round": 1, "max": 1, "min": 1, "argmax": 1,
                     "argmin": 1, "astype": 4, "flatten": 1}


# a ufunc's methods that make a new array (np.add.reduce(x), np.multiply.outer(a, b)) unless
# out= says otherwise; not ``at``, which writes into its first argument
_FRESH_UFUNC_METHODS = frozenset("reduce accumulate reduceat outer".split())


def _made(value: cst.BaseExpression, lookup) -> str | None:
    """``"array"`` or ``"container"`` where ``value`` makes new memory, else None."""
    if type(value) in (cst.List, cst.Dict, cst.Set, cst.ListComp, cst.DictComp):
        return "container"
    if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation, cst.BaseNumber,
                          cst.Comparison)):
        return "array"  # a new array (a mask too), or a number (immutable: s += v rebinds it)
    if type(value) is not cst.Call:
        return None
    func = value.func
    if type(func) is cst.Attribute and func.attr.value == "copy" and not value.args:
        return "array"  # x.copy()
    parts = _dotted(func)
    obj = resolve_parts(parts, lookup)
    if type(func) is cst.Attribute and func.attr.value in _FRESH_METHODS and \
            not any(a.keyword is not None and a.keyword.value in ("out", "copy")
                    for a in value.args):
        if obj is not None and obj is not MISSING:  # np.dot(a, b): a module's function
            return "array" if _positional_output(obj, value) is None else None
        return "array" if _argument_at(value, _METHOD_OUTPUT_AT[func.attr.value]) is None \
            else None  # a method: a.dot(b), not a.dot(b, c)
    if obj in (list, dict, set):
        return "container"
    if obj is builtins.sum and len(value.args) == 1 and value.args[0].keyword is None:
        return "array"  # 0 + x0 + x1 …: a new array or a number (not a start's list + lists)
    if obj is np.where and len(value.args) == 3:
        return "array"  # np.where(c, x, y): a new array (np.where(c): a tuple of index arrays)
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__name__", None)
    if (module.split(".")[0] == "numpy" and name in _FRESH_CALLS or isinstance(obj, np.ufunc) or
            isinstance(getattr(obj, "__self__", None), np.ufunc) and name in _FRESH_UFUNC_METHODS) \
            and not any(a.keyword and a.keyword.value == "out" for a in value.args) and \
            _positional_output(obj, value) is None:
        return "array"  # a constructor, a copy, a join, or a ufunc's new result (no out)
    return None


def _positional_output(obj, call: cst.Call):
    """The argument ``call`` passes where numpy's ``obj`` takes its output positionally
    (``np.add(a, b, a)``, ``np.dot(a, b, c)``, ``np.sum(a, 0, None, c)``: written into and
    returned), True where a star argument may pass one, else None."""
    position = _output_position(obj)
    return None if position is None else _argument_at(call, position)


def _argument_at(call: cst.Call, position: int):
    """The positional argument of ``call`` at ``position`` (an output's), True where a star
    argument may stand there, None where there is none."""
    if any(a.star for a in call.args):
        return True
    positional = [a.value for a in call.args if a.keyword is None]
    return positional[position] if position < len(positional) else None


def _output_position(obj) -> int | None:
    """Where numpy's (or CuPy's) ``obj`` takes ``out`` positionally: a ufunc after its
    inputs, else by its signature (None: no such parameter, or not a numpy callable)."""
    if isinstance(obj, np.ufunc):
        return obj.nin
    if not ((getattr(obj, "__module__", None) or "").split(".")[0] in ("numpy", "cupy") or
            isinstance(getattr(obj, "__self__", None), np.ufunc)):
        return None
    try:
        sig = _signature(obj)
    except TypeError:  # (unhashable)
        return None
    for i, param in enumerate(sig.parameters.values() if sig is not None else ()):
        if param.kind is param.VAR_POSITIONAL:
            return None  # (np.einsum(*operands, out=None): out by keyword only)
        if param.name == "out":
            return i if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD) \
                else None
    return None


def returns_new_array(fn) -> bool:
    """Whether every ``return`` of the user's function ``fn`` gives an array a numpy call
    makes there (``return np.log1p(np.exp(z))``): then its result holds nothing it was given.
    Not a product or a method's result (``xs * 2``, ``xs.copy()`` of a list hold its
    elements), not a tuple; False where the source cannot be read or a return is bare."""
    if not (inspect.isfunction(fn) and reads_source(fn)):
        return False
    found = _NEW_ARRAY_RETURNED.get(fn)
    if found is None:
        found = _NEW_ARRAY_RETURNED[fn] = _returns_new_array(fn)
    return found


_NEW_ARRAY_RETURNED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _read_source(fn):
    """``(source, lookup of its globals)`` of the user's function ``fn``, None where its
    source cannot be read."""
    from ..context import Context
    from ..source import get_source  # (the source module reads files; import lazily)

    try:
        source = get_source(fn)
    except Exception:  # noqa: BLE001 - any reason the source cannot be read
        return None
    return source, Context(source=source, params=(), wrt=()).lookup


def _returns_new_array(fn) -> bool:
    read = _read_source(fn)
    if read is None:
        return False
    source, lookup = read
    returns, nested = [], False
    for node in nodes(source.funcdef.body):
        kind = type(node)
        if kind in (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Yield):
            nested = True
        elif kind is cst.Return:
            returns.append(node.value)
    if nested or not returns:
        return False
    local = _assigned(source.funcdef)  # (its parameters too)
    for value in returns:
        if type(value) is not cst.Call:
            return False
        parts = _dotted(value.func)
        if not parts or parts[0] in local:  # (def f(np): … np.tanh(z) is the argument's)
            return False
        obj = resolve_parts(parts, lookup)  # (a.dot(b) of a global a: not numpy's)
        if not ((getattr(obj, "__module__", None) or "").startswith("numpy") and
                _made(value, lookup) == "array"):
            return False
    return True


def _name_of(node) -> str | None:
    return node.value if type(node) is cst.Name else None


# srcdiff's runtime functions that write into what they are given (all others only read)
_RUNTIME_WRITERS = frozenset({"append_in_place", "add_into", "add_at", "scatter_add",
                              "list_add_at", "list_put", "tree_add_at", "tree_put"})


def _read_only(obj) -> bool:
    if isinstance(obj, type) and (issubclass(obj, tuple) and hasattr(obj, "_fields") or
                                  dataclasses.is_dataclass(obj) and
                                  not hasattr(obj, "__post_init__")):
        return True  # a namedtuple or a plain dataclass only stores what it is given
    try:
        if obj in READ_ONLY_BUILTINS or obj in NONDIFFERENTIABLE or obj is no_grad:
            return True
    except TypeError:
        return False
    module = getattr(obj, "__module__", None) or ""
    if module == "math":
        return True
    if module.startswith("srcdiff.runtime"):  # what srcdiff's own stages write (rt.keys, …)
        return getattr(obj, "__name__", None) not in _RUNTIME_WRITERS
    if module.split(".")[0] in ("numpy", "cupy") or isinstance(obj, np.ufunc) or \
            isinstance(getattr(obj, "__self__", None), np.ufunc):
        return getattr(obj, "__name__", None) not in NUMPY_WRITERS
    return rule_for(obj) is not None  # a numpy function with a rule (out= is checked above)


def _assigned(funcdef: cst.FunctionDef) -> frozenset[str]:
    names = _parameters(funcdef)
    for node in nodes(funcdef.body):
        if type(node) in (cst.AssignTarget, cst.For, cst.AugAssign, cst.AnnAssign):
            for n in nodes(node.target):
                if type(n) is cst.Name:
                    names.add(n.value)
    return frozenset(names)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)

