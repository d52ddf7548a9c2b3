"""What a right-hand side computes: resolve callees by identity and bind their arguments.

A callee resolves to (a) an array primitive with an adjoint rule, (b) a
non-differentiable function from the runtime's table, or (c) something unknown,
which is fine as long as no active value flows into it. ``np.tanh``,
``numpy.tanh`` and ``from numpy import tanh as th`` are the same object and so
the same rule. Methods and attributes of local arrays (``x.sum(0)``, ``x.T``)
resolve through a table of the numpy functions they stand for.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import operator
import sys
import sysconfig
import types
from dataclasses import dataclass
from functools import lru_cache

import libcst as cst
import numpy as np

from srcdiff.runtime import NONDIFFERENTIABLE, NONDIFFERENTIABLE_METHODS, Rule, rule_for
from srcdiff.runtime.options import refusal
from srcdiff.runtime.backend import array_module, numpy_twin
from srcdiff.runtime.link import call_jvp, is_gradient, tangent_of
from srcdiff.runtime.nondiff import NONDIFFERENTIABLE_ATTRIBUTES
from srcdiff.runtime.nondiff import keys as nondiff_keys
from srcdiff.runtime.nondiff import outer_shape

from ..context import MISSING, Context
from ..templates import literal
from .values import subexpressions

__all__ = ["Op", "classify", "BINARY", "UNARY", "reads", "resolve", "is_user_function", "installed",
           "call_on_one_name"]

BINARY = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.Divide: operator.truediv, cst.Power: operator.pow, cst.MatrixMultiply: operator.matmul,
    cst.Modulo: operator.mod, cst.FloorDivide: operator.floordiv,
}
UNARY = {cst.Minus: operator.neg, cst.Not: operator.not_, cst.BitInvert: operator.invert}

# operators whose results carry no gradient (a quotient rounded down, a truth value, the
# bits of an integer or a mask), and generated code's own constants (rt.keys, rt.outer_shape)
_NONDIFF_OPERATORS = {operator.floordiv, operator.not_, operator.invert, nondiff_keys,
                      outer_shape}

# array methods: name -> (numpy function, pack extra positional arguments into one tuple)
METHODS = {
    "sum": (np.sum, False), "mean": (np.mean, False), "max": (np.max, False),
    "min": (np.min, False), "prod": (np.prod, False), "var": (np.var, False),
    "std": (np.std, False), "reshape": (np.reshape, True), "transpose": (np.transpose, True),
    "swapaxes": (np.swapaxes, False), "squeeze": (np.squeeze, False), "ravel": (np.ravel, False),
    "flatten": (np.ravel, False), "dot": (np.dot, False), "clip": (np.clip, False),
    "trace": (np.trace, False), "copy": (np.copy, False), "cumsum": (np.cumsum, False),
    "cumprod": (np.cumprod, False), "conjugate": (np.conjugate, False),
    "conj": (np.conjugate, False),
    "repeat": (np.repeat, False), "take": (np.take, False), "diagonal": (np.diagonal, False),
    "choose": (np.choose, False), "astype": (np.astype, False),
}
ATTRIBUTES = {"T": np.transpose, "real": np.real, "imag": np.imag}


@dataclass(frozen=True)
class Op:
    """One primitive operation: ``kind`` is rule, nondiff, copy, constant, project, pack,
    function (a user function known now), dynamic (one known when it runs) or unknown."""

    kind: str
    spelled: cst.CSTNode  # the right-hand side as the user wrote it (see text)
    rule: Rule | None = None
    primitive: object = None
    operands: tuple[cst.BaseExpression, ...] = ()
    options: tuple[tuple[str, cst.BaseExpression], ...] = ()
    params: tuple[str, ...] = ()  # for a user function: the parameter each operand binds
    problem: str = ""  # for unknown: why it cannot be differentiated
    unchecked: tuple[str, ...] = ()  # options of rule.allowed the rule checks when it runs

    @property
    def text(self) -> str:
        """How the user spelled the operation, for messages (generated only for one)."""
        return _code(self.spelled)


def reads(node: cst.CSTNode, local_names) -> tuple[str, ...]:
    """The local variables an expression reads (attribute names and keywords excluded)."""
    found: dict[str, None] = {}
    for n in subexpressions(node):
        if type(n) is cst.Name and n.value in local_names:  # a fast walk, in source order
            found[n.value] = None
    return tuple(found)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _dotted(node: cst.BaseExpression) -> list[str] | None:
    if type(node) is cst.Name:
        return [node.value]
    if type(node) is cst.Attribute:
        head = _dotted(node.value)
        return None if head is None else head + [node.attr.value]
    return None


def resolve(node: cst.BaseExpression, ctx: Context, local_names) -> object:
    """The object a global dotted name (``np.linalg.norm``) refers to, or MISSING."""
    parts = _dotted(node)
    if parts is None or parts[0] in local_names:
        return MISSING
    return resolve_parts(parts, ctx.lookup)


def resolve_parts(parts, lookup) -> object:
    """The object ``a.b.c`` (``parts``) refers to, ``lookup`` finding ``a``; MISSING if none."""
    if parts is None:
        return MISSING
    obj = lookup(parts[0])
    for part in parts[1:]:
        if obj is MISSING:
            break
        obj = getattr(obj, part, MISSING)
    return obj


def _is_nondiff(obj) -> bool:
    try:
        return obj in NONDIFFERENTIABLE or obj in _NONDIFF_OPERATORS
    except TypeError:
        return False


def classify(rhs: cst.BaseExpression, ctx: Context, local_names, containers=frozenset(),
             sequences=frozenset()) -> Op:
    """Describe the single operation ``rhs`` performs (``rhs`` is normalized: atoms inside).

    ``containers``: names that may hold a dict/list/tuple/dataclass of arrays; reading
    from one (``params["W"]``, ``p.W``) is a *projection*, whose adjoint is a container.
    ``sequences``: names bound to a list or tuple the function built (``xs = [a]``), on
    which ``+`` and ``*`` are not arithmetic.
    """
    base = getattr(rhs, "value", None)
    if type(rhs) in (cst.Subscript, cst.Attribute) and type(base) is cst.Name and \
            base.value in containers and not _array_attribute(rhs, ctx):
        if type(rhs) is cst.Subscript:
            key = _key(rhs, ctx.rt)
            if len(rhs.slice) == 1 and type(rhs.slice[0].slice) is cst.Index:
                key = rhs.slice[0].slice.value
        else:
            key = cst.Call(cst.Attribute(cst.Name(ctx.rt), cst.Name("field")),
                           [cst.Arg(cst.SimpleString(repr(rhs.attr.value)))])
        return Op("project", rhs, operands=(base,), options=(("key", key),))
    if type(rhs) is cst.Name:
        return Op("copy" if rhs.value in local_names else "constant", rhs, operands=(rhs,))
    if isinstance(rhs, (cst.BaseNumber, cst.BaseString, cst.Ellipsis)):
        return Op("constant", rhs)
    if type(rhs) is cst.BinaryOperation:
        if any(type(e) in (cst.List, cst.Tuple) or type(e) is cst.Name and e.value in
               sequences for e in (rhs.left, rhs.right)):  # [a] + [b]: no array arithmetic
            return Op("unknown", rhs, problem="an operator on lists or tuples (their "
                      "concatenation or repetition); build the list with append instead")
        return _primitive_op(BINARY.get(type(rhs.operator)), (rhs.left, rhs.right), {}, rhs)
    if type(rhs) is cst.UnaryOperation:
        if type(rhs.operator) is cst.Plus:
            return Op("copy", rhs, operands=(rhs.expression,))
        return _primitive_op(UNARY.get(type(rhs.operator)), (rhs.expression,), {}, rhs)
    if type(rhs) in (cst.Comparison, cst.BooleanOperation):
        kind = "nondiff" if type(rhs) is cst.Comparison else "unknown"
        return Op(kind, rhs, problem="'and'/'or' on differentiated values")
    if type(rhs) is cst.Subscript:
        return _primitive_op(operator.getitem, (rhs.value,), {"key": _key(rhs, ctx.rt)}, rhs,
                             bind=False)
    if type(rhs) is cst.Attribute:
        return _attribute_op(rhs, ctx, local_names, rhs)
    if type(rhs) is cst.Call:
        return _allowed_options(_call_op(rhs, ctx, local_names, rhs, containers, sequences),
                                ctx, local_names)
    if type(rhs) in (cst.Tuple, cst.List, cst.Dict):  # a container of atoms
        keys = [cst.Integer(str(i)) for i in range(len(rhs.elements))] \
            if type(rhs) is not cst.Dict else [e.key for e in rhs.elements]
        return Op("pack", rhs, operands=tuple(e.value for e in rhs.elements),
                  options=tuple(("key", k) for k in keys))
    return Op("unknown", rhs, problem=f"the expression {_code(rhs)}")


def _array_attribute(rhs: cst.BaseExpression, ctx: Context) -> bool:
    """``.T``, ``.shape``... of a value read out of a container (``params["w"].T``): taken for
    the array's attribute, not a field; only a ``wrt`` container itself has fields by those
    names (a dataclass nested in a container with a field ``T`` is not supported)."""
    return type(rhs) is cst.Attribute and rhs.value.value not in ctx.containers and (
        rhs.attr.value in ATTRIBUTES or rhs.attr.value in NONDIFFERENTIABLE_ATTRIBUTES)


def _key(sub: cst.Subscript, rt: str) -> cst.BaseExpression:
    """The key of ``x[...]`` as one expression: ``rt.at[...]`` keeps slice syntax readable."""
    return cst.Subscript(value=cst.Attribute(cst.Name(rt), cst.Name("at")), slice=sub.slice)


def _attribute_op(rhs: cst.Attribute, ctx, local_names, spelled) -> Op:
    base = _dotted(rhs.value)
    is_local = base is not None and base[0] in local_names or not isinstance(
        rhs.value, (cst.Name, cst.Attribute))
    if not is_local:
        return Op("constant", spelled)
    name = rhs.attr.value
    if name in NONDIFFERENTIABLE_ATTRIBUTES:
        return Op("nondiff", spelled)
    if name in ATTRIBUTES:
        return _primitive_op(ATTRIBUTES[name], (rhs.value,), {}, spelled)
    return Op("unknown", spelled, problem=f"the attribute .{name} (of an array, or of a record "
              "a call returned: srcdiff reads the fields of a record passed in or built in the "
              "function, Params(w, b))")


def _call_op(call: cst.Call, ctx, local_names, spelled, containers=frozenset(),
             sequences=frozenset()) -> Op:
    positional = [a.value for a in call.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    func = call.func
    if type(func) is cst.Name and func.value in local_names:  # f(y): a function passed in
        return _dynamic_op(func, positional, keywords, spelled)
    if type(func) is cst.Attribute and (resolve(func, ctx, local_names) is MISSING or
                                            _is_array(resolve(func.value, ctx, local_names))):
        method = func.attr.value
        if method in NONDIFFERENTIABLE_METHODS:
            return Op("nondiff", spelled)
        if method not in METHODS and not hasattr(np.ndarray, method) and \
                resolve(func, ctx, local_names) is MISSING and not (
                    type(func.value) is cst.Name and func.value.value in sequences):
            return _dynamic_op(func, positional, keywords, spelled)  # model.nll(X): a method
        if method not in METHODS:
            return Op("unknown", spelled, problem=f"the method .{method}()")
        primitive, pack = METHODS[method]
        args = [func.value, *positional]
        if pack and len(positional) > 1:
            args = [func.value, cst.Tuple([cst.Element(a) for a in positional])]
        return _primitive_op(primitive, args, keywords, spelled)
    obj = resolve(func, ctx, local_names)
    if obj is MISSING:
        return Op("unknown", spelled, problem=f"{_code(func)}, which srcdiff cannot resolve")
    if _class_function(func, obj, ctx, local_names) or any(  # Model.act(x), Model.make(w),
            obj is f for _, f in ctx.source.lifted):  # a nested def or lambda (nested.py)
        return _dynamic_op(func, positional, keywords, spelled)
    if isinstance(obj, tangent_of):  # forward mode's link, in second order: its function
        obj = obj.function()
    elif obj is call_jvp:
        return Op("unknown", spelled, problem="a third derivative (reverse mode over forward "
                  "mode's call of a function known only when it runs, rt.call_jvp)")
    elif is_gradient(obj):  # a call of srcdiff.grad(f): differentiated when it runs, by
        return _dynamic_op(func, positional, keywords, spelled)  # its Hessian (link.py)
    if is_user_function(obj):
        return _function_op(obj, positional, keywords, spelled, ctx.rt)
    if _is_record(obj) or obj is dict and not positional:
        return _record_op(obj, positional, keywords, spelled, ctx.rt)
    if obj in (list, tuple) and len(positional) == 1 and not keywords and \
            type(positional[0]) is cst.Name and positional[0].value in containers:
        return Op("copy", spelled, operands=(positional[0],))  # list(xs): the same items
    return _primitive_op(obj, positional, keywords, spelled)


def _class_function(func, obj, ctx, local_names) -> bool:
    """``Model.act`` or ``Model.make`` of a user class: a ``@staticmethod`` (a plain function)
    or a ``@classmethod`` (bound to the class), called through the class. Generated code names
    it as the user did and differentiates it when it runs (``rt.call_vjp(Model.act, x)``)."""
    if type(func) is not cst.Attribute or not isinstance(
            resolve(func.value, ctx, local_names), type):
        return False
    if inspect.ismethod(obj) and isinstance(obj.__self__, type):
        obj = obj.__func__
    return is_user_function(obj)


def _dynamic_op(func, positional, keywords, spelled) -> Op:
    """A call of a function known only when it runs (``f(y)`` with ``f`` an argument,
    ``model.nll(X)``): its derivative is found then, by identity (``rt.call_vjp``).
    ``operands`` are the receiver of a method (or None) and the positional arguments."""
    receiver = func.value if type(func) is cst.Attribute else None
    return Op("dynamic", spelled, primitive=func, operands=(receiver, *positional),
              options=tuple(keywords.items()))


def _is_record(obj) -> bool:
    """A dataclass or namedtuple class: calling it packs its arguments into fields."""
    return isinstance(obj, type) and (dataclasses.is_dataclass(obj) or
                                      issubclass(obj, tuple) and hasattr(obj, "_fields"))


def _record_op(cls, positional, keywords, spelled, rt: str) -> Op:
    """``P(w, b)`` of a dataclass or namedtuple, ``dict(a=a, b=b)``: a pack whose keys are
    fields (``rt.field("w")``) or the dict's string keys; defaults left out are constants."""
    if cls is dict:
        keys = [cst.SimpleString(repr(k)) for k in keywords]
        return Op("pack", spelled, operands=tuple(keywords.values()),
                  options=tuple(("key", k) for k in keys))
    sig = _signature(cls)
    try:
        bound = sig.bind(*positional, **keywords)
    except (TypeError, AttributeError) as exc:
        return Op("unknown", spelled, problem=f"this call of {cls.__name__} ({exc})")
    keys = [cst.Call(cst.Attribute(cst.Name(rt), cst.Name("field")),
                     [cst.Arg(cst.SimpleString(repr(name)))]) for name in bound.arguments]
    return Op("pack", spelled, primitive=cls, operands=tuple(bound.arguments.values()),
              options=tuple(("key", k) for k in keys))


def is_user_function(obj) -> bool:
    """A Python function without a rule, of the user's own code: srcdiff differentiates its
    source (``helper(x)``). A function of an installed package or of the standard library
    (``scipy.special.logsumexp``) is not read: it has a rule or is refused."""
    return inspect.isfunction(obj) and rule_for(obj) is None and not _is_nondiff(obj) and \
        reads_source(obj)


def reads_source(fn) -> bool:
    """Whether srcdiff reads ``fn``'s source (to differentiate it, or to see what it writes):
    the user's own code, and srcdiff's runtime functions that second order differentiates, the
    same in an editable install and a regular one; never another installed package's."""
    module = getattr(fn, "__module__", None) or ""
    if module.startswith("srcdiff."):
        return module.startswith(_READ_FROM_SOURCE)
    return not installed(fn)


# srcdiff's own runtime functions that are differentiated from their source wherever srcdiff
# is installed: forward mode's tangent rules (and the adjoint rules some of them call), which
# second order (hvp) runs in reverse mode
_READ_FROM_SOURCE = tuple(f"srcdiff.runtime.{m}" for m in (  # module name prefixes
    "tangent", "rules", "helpers", "elementwise", "reductions", "scalar_math", "shaping",
    "creation", "linalg", "building", "statistics", "fft", "grids", "scipy_rules"))


def installed(fn) -> bool:
    """Whether ``fn`` lives in an installed package or the standard library."""
    filename = getattr(getattr(fn, "__code__", None), "co_filename", "")
    return bool(filename) and filename.startswith(_LIBRARY_PATHS)


_LIBRARY_PATHS = tuple(sorted({p for key in ("stdlib", "platstdlib", "purelib", "platlib")
                               if (p := sysconfig.get_paths().get(key))} |
                              {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}))


def _is_array(obj) -> bool:
    """A module-level or closure array (``C.dot(x)``): its methods resolve like a local's."""
    return isinstance(obj, (np.ndarray, np.generic)) or obj is not MISSING and \
        not isinstance(obj, (type, types.ModuleType)) and array_module(obj) is not np


_LITERALS = (int, float, complex, str, bytes, bool, type(None))


def _function_op(fn, positional, keywords, spelled, rt: str = "rt") -> Op:
    """A call of the user's own function: its derivative is generated and called in turn."""
    name = fn.__qualname__
    sig = _signature(fn)
    kinds = {p.kind for p in sig.parameters.values()} if sig else set()
    if inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD not in \
            kinds and not keywords and fn.__name__ != "<lambda>":  # total(x, y) of total(*xs)
        return _dynamic_op(spelled.func, positional, keywords, spelled)
    if sig is None or inspect.Parameter.VAR_POSITIONAL in kinds or \
            inspect.Parameter.VAR_KEYWORD in kinds or fn.__name__ == "<lambda>":
        return Op("unknown", spelled, primitive=fn, problem=f"{name} (srcdiff differentiates "
                  "calls of 'def' functions with named parameters)")
    try:
        bound = sig.bind(*positional, **keywords)
    except TypeError as exc:
        return Op("unknown", spelled, primitive=fn, problem=f"this call of {name} ({exc})")
    params, operands = [], []
    for param in sig.parameters.values():
        if param.name in bound.arguments:
            value = bound.arguments[param.name]
        elif isinstance(param.default, _LITERALS):
            value = cst.parse_expression(repr(param.default))
        elif param.default is not inspect.Parameter.empty:  # an array default: read it off
            value = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("default_of")), [  # the function
                cst.Arg(spelled.func), cst.Arg(cst.SimpleString(repr(param.name)))])
        else:
            return Op("unknown", spelled, primitive=fn,
                      problem=f"{name} without its argument {param.name}= (pass it explicitly)")
        params.append(param.name)
        operands.append(value)
    return Op("function", spelled, primitive=fn, operands=tuple(operands), params=tuple(params))


@lru_cache(maxsize=None)
def _signature(primitive):
    try:
        return inspect.signature(primitive)
    except (TypeError, ValueError):
        return None


def _primitive_op(primitive, positional, keywords, spelled, bind=True) -> Op:
    if primitive is None:
        return Op("unknown", spelled, problem=f"the operator in {_code(spelled)}")
    if _is_nondiff(primitive):
        return Op("nondiff", spelled, primitive=primitive)
    rule = rule_for(primitive)
    name = getattr(primitive, "__name__", repr(primitive))
    if rule is None:
        return Op("unknown", spelled, primitive=primitive,
                  problem=f"{getattr(primitive, '__module__', '') or ''}.{name}".lstrip("."))
    # the rule's signature where the primitive's says (x, *args, **kwds): scipy.stats.norm.pdf
    sig = (rule.signature or _signature(primitive)) if bind else None
    fixed = len(rule.leading) + len(rule.operands)  # np.einsum: its subscripts, then any number
    if sig is None:
        ordered, extra = list(positional), dict(keywords)
    else:
        try:
            bound = sig.bind(*positional, **keywords)
        except TypeError as exc:
            return Op("unknown", spelled, primitive=primitive, problem=f"this call of {name} ({exc})")
        ordered, extra = [], {}
        options_begun = False  # a variadic rule takes operands only before its options
        for param in sig.parameters.values():
            options_begun = options_begun or param.name in rule.options
            if param.name not in bound.arguments:
                if len(ordered) < fixed and param.name not in rule.options and \
                        param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD) and \
                        isinstance(param.default, _LITERALS):
                    ordered.append(literal(param.default))  # np.arange(a, b): step=1
                continue
            value = bound.arguments[param.name]
            if param.kind is param.VAR_POSITIONAL:
                ordered.extend(value)
            elif param.kind is param.VAR_KEYWORD:
                extra.update(value)
            elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD) and \
                    (len(ordered) < fixed or rule.variadic) and param.name not in rule.options:
                if len(ordered) >= fixed and options_begun:  # np.cov(x, fweights=w), unnamed
                    return Op("unknown", spelled, primitive=primitive,
                              problem=f"the argument {param.name}= of {name}")
                ordered.append(value)
            else:
                extra[param.name] = value
    leading, ordered = ordered[:len(rule.leading)], ordered[len(rule.leading):]
    if len(leading) < len(rule.leading) or not rule.takes(len(ordered)):
        takes = f"{len(rule.operands)} or more" if rule.variadic else len(rule.operands)
        return Op("unknown", spelled, primitive=primitive,
                  problem=f"{name} with {len(ordered)} array arguments (srcdiff's rule takes "
                          f"{takes})")
    extra = {**dict(zip(rule.leading, leading)), **extra}
    options = []
    for key, value in extra.items():
        if key in rule.options:
            options.append((key, value))
        elif not (type(value) is cst.Name and value.value == "None"):
            return Op("unknown", spelled, primitive=primitive,
                      problem=f"the argument {key}= of {name}")
    spelling = _SPELLINGS.get(rule.primitive)
    problem = spelling(ordered, dict(options)) if spelling else ""
    if problem:
        return Op("unknown", spelled, primitive=primitive, problem=problem)
    return Op("rule", spelled, rule, primitive, tuple(ordered), tuple(options))


def _allowed_options(op: Op, ctx, local_names) -> Op:
    """``op``, or an unknown op where a constant option value is one its rule does not
    differentiate (``np.linalg.qr(a, mode="r")``, the rule's ``allowed`` table); an option
    whose value is known only when the code runs is left to the rule to check then."""
    if op.kind != "rule" or not op.rule.allowed:
        return op
    unchecked = []
    for key, node in op.options:
        if key not in dict(op.rule.allowed):
            continue
        value = _constant(node, ctx, local_names)
        if value is MISSING:
            unchecked.append(key)
        elif problem := refusal(op.rule, key, value):
            return Op("unknown", op.spelled, primitive=op.primitive, problem=problem)
    return dataclasses.replace(op, unchecked=tuple(unchecked)) if unchecked else op


def _constant(node: cst.BaseExpression, ctx, local_names) -> object:
    """The value of a constant expression (a literal, ``int``: a class), or MISSING (a
    variable, and ``np.inf``, which normalize has made one)."""
    if type(node) is cst.Name and isinstance(resolve(node, ctx, local_names), type):
        return resolve(node, ctx, local_names)
    return _literal(node)


def _einsum_spelling(operands, options) -> str:
    """Why srcdiff's einsum rule cannot read this call ('' if it can): numpy's sublist form
    (``np.einsum(a, [0, 1], b, [1, 2])``), or subscripts naming another count of arrays."""
    subscripts = options["subscripts"]  # a literal is read now, a name when the code runs
    if isinstance(subscripts, (cst.SimpleString, cst.ConcatenatedString, cst.BaseNumber,
                               cst.List, cst.Tuple)):
        try:
            subscripts = ast.literal_eval(_code(subscripts))
        except (ValueError, SyntaxError):
            return ""
    sublists = any(type(e) in (cst.List, cst.Tuple) for e in operands)
    if sublists or not isinstance(subscripts, (str, cst.BaseExpression)):
        return ("np.einsum in numpy's sublist form; write the subscripts as a string: "
                "np.einsum('ij,jk->ik', a, b)")
    count = subscripts.split("->")[0].count(",") + 1 if isinstance(subscripts, str) else None
    if count not in (None, len(operands)):
        return f"np.einsum({subscripts!r}) of {len(operands)} arrays (its subscripts name {count})"
    return ""


def _norm_spelling(operands, options) -> str:
    """Why ``np.linalg.norm``'s ``ord`` cannot go with its constant ``axis`` ('' if it can):
    ``'fro'``/``'nuc'`` of vectors (one axis), a number other than 1, 2, inf (or their
    negatives) of matrices (two axes): numpy refuses these too, but only when it runs. Without
    ``axis``, whether ``x`` is a vector or a matrix is known only then."""
    ord_, axis = (_literal(options.get(key)) for key in ("ord", "axis"))
    if ord_ is MISSING or axis is MISSING or axis is None:
        return ""
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) == 1 and isinstance(ord_, str):
        return (f"np.linalg.norm with ord={ord_!r} along one axis (a vector norm: ord= a "
                "number; 'fro' and 'nuc' take axis= two axes)")
    if len(axes) == 2 and ord_ not in _MATRIX_ORDS:
        return (f"np.linalg.norm with ord={ord_!r} over two axes (a matrix norm: ord= None, "
                "'fro', 'nuc', 1, -1, 2, -2, np.inf or -np.inf)")
    return ""


_MATRIX_ORDS = (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)


def _literal(node: cst.BaseExpression | None) -> object:
    """The value of a literal option (None where it is not given), or MISSING."""
    if node is None:
        return None
    try:
        return ast.literal_eval(_code(node))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return MISSING


_SPELLINGS = {np.einsum: _einsum_spelling,  # primitive -> why a call is beyond its rule
              np.linalg.norm: _norm_spelling}


def call_on_one_name(call, ctx: Context, local: set, functions, axis_needed=True):
    """``(array name, axis, keepdims)`` of a call of one of ``functions`` (numpy's, or their
    twins') on one name, however it is spelled (``np.max(s, axis=-1, keepdims=True)``,
    ``s.max(1)``, ``np.exp(d)``: :func:`classify`), with ``axis=`` and ``keepdims=`` only
    (``axis`` required unless ``axis_needed`` is false; the axis as written, keepdims a
    bool); None otherwise. The guards and softmax stages read reductions with it."""
    if type(call) is not cst.Call:
        return None
    op = classify(call, ctx, frozenset(local))
    fn = numpy_twin(op.primitive) or op.primitive if op.kind == "rule" else None
    try:
        known = fn in functions
    except TypeError:
        return None
    if not known or len(op.operands) != 1 or type(op.operands[0]) is not cst.Name:
        return None
    options = dict(op.options)
    axis = options.get("axis")
    if set(options) - {"axis", "keepdims"} or axis_needed and axis is None:
        return None
    keepdims = options.get("keepdims")
    return op.operands[0].value, axis, type(keepdims) is cst.Name and keepdims.value == "True"
