"""shapes: drop ``rt.unbroadcast(g, x)`` where ``g`` provably has the shape of ``x``.

Invariant after this pass: every ``rt.unbroadcast`` left in the pullback sums an adjoint
whose shape may differ from its operand's; the others are gone (each cost a call per
adjoint, and in loops the tape kept values only for their shape). A shape is known only
as a *class*: the shape of a parameter, or ``()``, the shape of a number. Elementwise
operations keep the class of their operands when all of them are of one class or numbers;
everything else (matmul, indexing, a reduction over an axis, a call srcdiff does not
know) has an unknown shape, and its unbroadcast stays, except that a name the forward
pass binds once at its top level is a class of its own: ``b = np.tanh(a)`` after
``a = x @ w`` has the shape of ``a``.

    def f_vjp(x):                              def f_vjp(x):
        a = np.sin(x)                              a = np.sin(x)
        b = a * x                                  b = a * x
        ...                                        ...
            da = rt.unbroadcast(db * x, a)   →         da = db * x
            dx = rt.unbroadcast(db * a, x)             dx = db * a

Where the derivative is specialised for a pattern of argument shapes (``srcdiff/dims.py``:
each array's axes as symbols, equal lengths one symbol), shapes are known axis by axis
instead: through broadcasting, ``@``, indexing by integers, ``None`` and ``:``, transposes,
and reductions over literal axes. Then ``X @ w + b - y`` has the shape of ``y``, and so
does the adjoint that the pass would otherwise have summed back.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from functools import lru_cache, partial

import libcst as cst
import numpy as np

from srcdiff import dims as dims_module
from srcdiff.runtime import creation, helpers, linalg, rules, shaping, trees
from srcdiff.runtime.backend import numpy_twin

from ..analysis.values import (UNKNOWN, Domain, Facts, all_bindings, binding_counts, infer,
                               number, resolve, rewrite_lines_calling, single_assignments,
                               split_pieces, subexpressions, walk)
from ..context import Context
from ..names import children, names_in

__all__ = ["rewrite", "rewrite_lists", "Shape", "shape_facts", "sizes_of", "range_integers",
           "integer_expression", "item_trees", "item_shape", "literal_key", "ELEMENTWISE",
           "Unwrapping"]


@dataclass(frozen=True)
class Shape:
    """All values have the shape of ``of`` (a parameter's name, ``()``, ``("=", name)`` for
    the value of a local ``name`` bound once, or ``("dims", *axes)``: axes as symbols of the
    argument pattern, see :func:`dims`); with ``exact=False`` they only broadcast into it (a
    ``keepdims`` reduction, a guard)."""

    of: object
    exact: bool = True


SCALAR = Shape(())
SHAPE_TUPLE = Shape(("shape",))  # x.shape: a tuple of ints, whose items are numbers
# a value no binding has reached yet while the facts are inferred (the element of a list
# with no element yet): below every fact, and never left in the facts inferred
BOTTOM = Shape(("bottom",), exact=False)
EMPTY_LIST = Shape(("list", None))  # a list with no element yet; ("list", shape): every
                                    # element has that shape (a list of hidden states)


def dims(axes: tuple) -> Shape:
    """The shape of ``axes`` (symbols of the argument pattern, or 1)."""
    return Shape(("dims", *axes)) if axes else SCALAR


def axes_of(shape) -> tuple | None:
    """The axes of an exact ``("dims", ...)`` shape (``()`` for a number), else None."""
    if shape == SCALAR:
        return ()
    if shape is UNKNOWN or not shape.exact or type(shape.of) is not tuple or \
            not shape.of or shape.of[0] != "dims":
        return None
    return shape.of[1:]

# elementwise: the result has the broadcast shape of the (array) operands
ELEMENTWISE = {np.negative, np.positive, np.exp, np.expm1, np.log, np.log1p, np.log2, np.log10,
          np.sqrt, np.square, np.absolute, np.sign, np.sin, np.cos, np.tan, np.sinh, np.cosh,
          np.tanh, np.arcsin, np.arccos, np.arctan, np.arcsinh, np.arccosh, np.arctanh,
          np.floor, np.ceil, np.rint, np.reciprocal, builtins.abs}
_NARY = {np.add, np.subtract, np.multiply, np.true_divide, np.power, np.remainder,
         np.maximum, np.minimum, np.heaviside, np.where, np.arctan2, np.hypot, np.clip,
         helpers.where_positive}
_MATH = {getattr(math, name) for name in (
    "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "fabs", "sin", "cos", "tan",
    "sinh", "cosh", "tanh", "asin", "acos", "atan", "atan2", "pow", "hypot", "floor", "ceil",
    "erf", "erfc", "gamma", "lgamma")}
_REDUCTIONS = {np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod}
# runtime helpers whose result always has the shape of one argument (its position); the
# adjoints of x1 @ x2 have the shapes of x1 and x2 (a valid product: 1-d operands included)
_SHAPE_OF_ARGUMENT = {rules.sum_adjoint: 1, rules.mean_adjoint: 2, helpers.zeros_like: 0,
                      helpers.unbroadcast: 1, rules.getitem_adjoint: 1,
                      rules.matmul_adjoint_x1: 1, rules.matmul_adjoint_x2: 2,
                      rules.matmul_adjoint_x1_spread: 1, rules.matmul_adjoint_x2_spread: 2,
                      rules.dot_adjoint_a: 1, rules.dot_adjoint_b: 2,
                      rules.max_adjoint: 2, rules.min_adjoint: 2,
                      linalg.cholesky_log_diagonal_adjoint: 1, linalg.slogdet_spd_adjoint: 1,
                      shaping.split_adjoint: 1, rules.slices_adjoint: 0,
                      helpers.blank_like: 0}
_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.Modulo,
              cst.FloorDivide)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    return rewrite_lines_calling(module, ctx, "unbroadcast", shape_facts,
                                 _droppable, _Drop)


def rewrite_lists(module: cst.Module, ctx: Context) -> cst.Module:
    """The pass again, under a shape pattern, once the ``lists`` stage has written the
    adjoint of a list's element as ``rt.pop_adjoint(dhs, hs)``: an adjoint of an element of
    a list of known elements has their shape (or is a zero)."""
    if not ctx.dims:
        return module
    return rewrite(module, ctx)


def shape_facts(vjp: cst.FunctionDef, ctx: Context) -> Facts:
    """The shape class of every name of the generated function ``vjp``."""
    given = {p: Shape(p) for p in ctx.params if p not in ctx.containers}
    given.update((p, dims(axes)) for p, axes in ctx.dims if type(axes) is tuple)
    given.update((p, Shape(("tree", tree))) for p, tree in item_trees(ctx).items())
    own = {n: Shape(("=", n)) for n in single_assignments(vjp) if n not in ctx.params}
    aliases = _seed(vjp)
    if not ctx.dims:
        return infer(vjp, ctx, Domain(_evaluate, _join), given, aliases, own)
    lists = _lists(vjp, ctx)
    for group in set(lists.values()):  # one list object: each name has the facts of all
        for name, after in zip(group, group[1:] + group[:1]):
            aliases.setdefault(name, cst.Name(after))
    lengths = _lengths(vjp, ctx)
    evaluate = partial(_evaluate_axes, integers=range_integers(vjp, ctx), lists=frozenset(lists),
                       lengths=lengths, sizes=_sizes(vjp, ctx, lengths))
    facts = infer(vjp, ctx, Domain(evaluate, _join), given, aliases, own, split_pieces(vjp, ctx))
    for name, fact in facts.names.items():
        if fact == BOTTOM:  # a list's element never appended
            facts.names[name] = UNKNOWN
    return facts


def _lengths(vjp: cst.FunctionDef, ctx: Context) -> dict[str, object]:
    """Names bound once, at the forward pass's top level, to the length of an axis of a
    parameter of the pattern: ``n = len(y)``, ``n = X.shape[0]`` (or ``_t3 = X.shape`` and
    ``n = _t3[0]``), each with that axis's symbol (or 1)."""
    given = {p: axes for p, axes in ctx.dims if type(axes) is tuple}
    single = single_assignments(vjp)
    shapes, found = {}, {}
    for stmt in vjp.body.body:
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
                type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1 and
                isinstance(stmt.body[0].targets[0].target, cst.Name)):
            continue
        name, value = stmt.body[0].targets[0].target.value, stmt.body[0].value
        if name not in single:
            continue
        if type(value) is cst.Attribute and value.attr.value == "shape" and \
                type(value.value) is cst.Name and given.get(value.value.value):
            shapes[name] = given[value.value.value]
            continue
        axis = _axis_length(value, given, shapes, ctx)
        if axis is not None:
            found[name] = axis
    return found


def _axis_length(value, given: dict, shapes: dict, ctx: Context):
    """The symbol of the axis ``value`` measures: ``len(P)``, ``P.shape[i]``, ``s[i]`` of a
    name ``s`` bound to ``P.shape``, for a parameter ``P`` of the pattern; else None."""
    if type(value) is cst.Call and type(value.func) is cst.Name and \
            value.func.value == "len" and ctx.lookup("len") is builtins.len and \
            len(value.args) == 1 and type(value.args[0].value) is cst.Name and \
            not value.args[0].keyword and not value.args[0].star:
        axes = given.get(value.args[0].value.value)
        return axes[0] if axes else None
    if not (type(value) is cst.Subscript and len(value.slice) == 1 and
            type(value.slice[0].slice) is cst.Index):
        return None
    i, base = number(value.slice[0].slice.value), value.value
    if type(base) is cst.Attribute and base.attr.value == "shape" and \
            type(base.value) is cst.Name:
        axes = given.get(base.value.value)
    elif type(base) is cst.Name:
        axes = shapes.get(base.value)
    else:
        return None
    if not axes or type(i) is not int or not -len(axes) <= i < len(axes):
        return None
    return axes[i]


def _length(expr, lengths: dict):
    """The axis symbol a length ``expr`` is (a name of ``lengths``), else None."""
    return lengths.get(expr.value) if type(expr) is cst.Name else None


def _evaluate_axes(expr: cst.BaseExpression, facts: Facts, integers: frozenset,
                   lists: frozenset, lengths: dict, sizes: "Sizes"):
    """``_evaluate`` under a shape pattern; an expression over a value not reached yet (an
    element of a list before the append that gives it one) is not reached yet either."""
    found = _evaluate(expr, facts, integers, lists, lengths, sizes)
    if found is UNKNOWN and any(type(n) is cst.Name and facts[n.value] == BOTTOM
                                for n in subexpressions(expr)):
        return BOTTOM
    return found


def range_integers(vjp: cst.FunctionDef, ctx: Context) -> frozenset:
    """Names that hold Python ints: bound only as the targets of ``for name in range(...)``
    loops, or bound once to ``len(...)`` or to ``+ - * // %`` of such ints (``_t1 = i + 1``
    of ``x[i + 1]``, after ``normalize``)."""
    loops: dict[str, int] = {}
    for stmt in walk(vjp.body.body):
        if type(stmt) is cst.For and type(stmt.target) is cst.Name and \
                type(stmt.iter) is cst.Call and type(stmt.iter.func) is cst.Name and \
                stmt.iter.func.value == "range" and ctx.lookup("range") is builtins.range:
            loops[stmt.target.value] = loops.get(stmt.target.value, 0) + 1
    counts = binding_counts(vjp)
    found = {n for n, k in loops.items() if counts.get(n) == k}
    single = [(n, e) for n, e, _ in all_bindings(vjp) if e is not None and counts.get(n) == 1]
    lengths = ctx.lookup("len") is builtins.len
    grew = True
    while grew:
        grew = False
        for name, expr in single:
            if name not in found and (integer_expression(expr, found) or lengths and
                                      type(expr) is cst.Call and type(expr.func) is cst.Name
                                      and expr.func.value == "len" and len(expr.args) == 1):
                found.add(name)
                grew = True
    return frozenset(found)


def _seed(vjp: cst.FunctionDef) -> dict:
    """The pullback's parameter has the shape of the output (the API checks cotangents)."""
    final = vjp.body.body[-1]
    if not (type(final) is cst.SimpleStatementLine and type(final.body[0]) is cst.Return):
        return {}
    value = final.body[0].value
    if not (type(value) is cst.Tuple and len(value.elements) == 2):
        return {}
    out, pullback = (e.value for e in value.elements)
    if not (type(out) is cst.Name and type(pullback) is cst.Name):
        return {}
    for stmt in vjp.body.body:
        if type(stmt) is cst.FunctionDef and stmt.name.value == pullback.value and \
                len(stmt.params.params) == 1:
            return {stmt.params.params[0].name.value: out}
    return {}


def _join(a, b):
    if a == b or b is UNKNOWN or a == BOTTOM:
        return b
    if a is UNKNOWN or b == BOTTOM:
        return a
    if _is_list(a) or _is_list(b):  # lists join only lists: their elements' shapes
        if not (_is_list(a) and _is_list(b)):
            return UNKNOWN
        if EMPTY_LIST in (a, b):
            return b if a == EMPTY_LIST else a
        element = _join(a.of[1], b.of[1])
        return UNKNOWN if element is UNKNOWN else Shape(("list", element))
    if a.of == b.of:
        return Shape(a.of, exact=False)
    if a == SCALAR or b == SCALAR:  # () broadcasts into every shape
        return Shape((b if a == SCALAR else a).of, exact=False)
    return UNKNOWN


def _broadcast(shapes):
    """The shape of an elementwise result of operands of ``shapes``."""
    result, reached = SCALAR, True
    for s in shapes:
        if s is UNKNOWN:
            return UNKNOWN
        if s == BOTTOM:
            reached = False
            continue
        if s == SCALAR:
            continue
        if result == SCALAR:
            result = s
        elif s.of != result.of:
            a, b = axes_of(result), axes_of(s)
            axes = None if a is None or b is None else _broadcast_axes(a, b)
            if axes is None:
                return UNKNOWN
            result = dims(axes)
        elif s.exact:
            result = s
    if not reached:
        return BOTTOM
    if result.of == ():  # only () broadcasts into ()
        return SCALAR
    return result


def _broadcast_axes(a: tuple, b: tuple) -> tuple | None:
    """The axes of a broadcast of ``a`` and ``b``; None where two different symbols meet
    (different lengths: numpy raises)."""
    if len(a) < len(b):
        a, b = b, a
    b = (1,) * (len(a) - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


def _is_list(shape) -> bool:
    return shape is not UNKNOWN and type(shape.of) is tuple and len(shape.of) == 2 and \
        shape.of[0] == "list"


def _evaluate(expr: cst.BaseExpression, facts: Facts, integers: frozenset | None = None,
              lists: frozenset = frozenset(), lengths: dict | None = None, sizes=None):
    """The shape of ``expr``; ``integers`` (names that hold ints) where the derivative is
    specialised for a pattern of argument shapes, else None; ``lists``: the names of list
    objects whose elements are known (see :func:`_lists`)."""
    if number(expr) is not None:
        return SCALAR
    kind = type(expr)  # (type tests: these kinds have no subclasses; isinstance is slow)
    if kind is cst.Name:
        return facts[expr.value]
    if kind is cst.UnaryOperation:
        if type(expr.operator) in (cst.Minus, cst.Plus, cst.BitInvert):
            return facts.of(expr.expression)
        return UNKNOWN
    if kind is cst.BinaryOperation:
        if type(expr.operator) in _OPERATORS:
            return _broadcast([facts.of(expr.left), facts.of(expr.right)])
        if integers is not None and type(expr.operator) is cst.MatrixMultiply:
            return _matmul(axes_of(facts.of(expr.left)), axes_of(facts.of(expr.right)))
        return UNKNOWN  # the bitwise operators
    if kind is cst.IfExp:
        a, b = facts.of(expr.body), facts.of(expr.orelse)
        return a if a == b else UNKNOWN
    if kind is cst.BooleanOperation:  # a mean's count, (r.size or 1): one side or the other
        a, b = facts.of(expr.left), facts.of(expr.right)
        return a if a == b else UNKNOWN
    if kind is cst.Call:
        if integers is not None:  # axis by axis first: np.sum(e, axis=-1, keepdims=True)
            found = _call_axes(expr, facts, lists, lengths)
            if found is not UNKNOWN:
                return found
        return _call(expr, facts)
    if integers is None:
        return UNKNOWN
    if kind is cst.Subscript:
        return _subscript(expr, facts, integers, lists, sizes)
    if kind is cst.List:
        return _list(expr, facts)
    if kind is cst.Comparison and len(expr.comparisons) == 1 and \
            type(expr.comparisons[0].operator) in _COMPARISONS:
        a = axes_of(facts.of(expr.left))  # arrays or numbers: elementwise (not lists, not None)
        b = axes_of(facts.of(expr.comparisons[0].comparator))
        axes = None if a is None or b is None else _broadcast_axes(a, b)
        return UNKNOWN if axes is None else dims(axes)
    if kind is cst.Attribute and facts.resolve(expr) is None:  # an attribute of a local value
        axes = axes_of(facts.of(expr.value))
        if expr.attr.value == "shape" and axes is not None:
            return SHAPE_TUPLE
        if expr.attr.value in ("size", "ndim") and axes is not None:
            return SCALAR  # an int
        if expr.attr.value == "T" and axes is not None:
            return dims(axes[::-1])
    return UNKNOWN


_COMPARISONS = (cst.LessThan, cst.LessThanEqual, cst.GreaterThan, cst.GreaterThanEqual,
                cst.Equal, cst.NotEqual)


def _matmul(a: tuple | None, b: tuple | None):
    """The shape of ``x1 @ x2`` for operands of axes ``a`` and ``b`` (numpy's rules: a 1-d
    operand gains an axis that the result drops; batch axes broadcast)."""
    if not a or not b:  # unknown, or a number: numpy refuses a 0-d operand
        return UNKNOWN
    left = (1,) + a if len(a) == 1 else a
    right = b + (1,) if len(b) == 1 else b
    if left[-1] != right[-2]:
        return UNKNOWN
    batch = _broadcast_axes(left[:-2], right[:-2])
    if batch is None:
        return UNKNOWN
    return dims(batch + (left[-2],) * (len(a) > 1) + (right[-1],) * (len(b) > 1))


_INT_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.FloorDivide, cst.Modulo)


def item_trees(ctx: Context) -> dict:
    """The parameters passed as a dict, list or tuple of arrays and numbers
    (:class:`dims.Tree`) that the function reads only as items of literal keys,
    ``params["W"]``, ``layers[0]``: never rebinds, writes into, passes on or walks. Their
    items then have their patterns' shapes. (Another use of the container, which might
    change an item or read it by a computed key, gives them none.)"""
    trees = {p: entry for p, entry in ctx.dims if type(entry) is dims_module.Tree}
    if not trees:
        return {}
    return {p: entry for p, entry in trees.items()
            if _items_only(ctx.source.funcdef, p)}


@lru_cache(maxsize=256)  # (the user's function, parsed once: every shape_facts asks)
def _items_only(funcdef: cst.FunctionDef, name: str) -> bool:
    """Whether every use of ``name`` in ``funcdef``'s body is ``name[k]`` read, ``k`` a string
    or an integer literal."""
    written = []
    stack = [(stmt, None) for stmt in funcdef.body.body]
    while stack:
        node, parent = stack.pop()
        kind = type(node)
        if kind in (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Del, cst.For):
            targets = [t.target for t in node.targets] if kind is cst.Assign else [node.target]
            written += targets
        elif kind is cst.Name and node.value == name:
            if not (type(parent) is cst.Subscript and parent.value is node and
                    literal_key(parent) is not None):
                return False
        stack += ((child, node) for child in children(node))
    return not any(name in names_in(target) for target in written)


def literal_key(subscript: cst.Subscript):
    """``k`` of ``x[k]`` for one string or integer literal ``k``, else None."""
    if len(subscript.slice) != 1 or type(subscript.slice[0].slice) is not cst.Index:
        return None
    key = subscript.slice[0].slice.value
    if type(key) is cst.SimpleString:
        return key.evaluated_value
    value = number(key)
    return value if type(value) is int else None


def item_shape(tree, expr: cst.Subscript):
    """The shape of ``p[k]`` of a parameter ``p`` of the pattern ``tree``."""
    key = literal_key(expr)
    if type(key) is int and tree.kind != "dict" and -len(tree.keys) <= key < 0:
        key += len(tree.keys)
    item = None if key is None else tree.item(key)
    if type(item) is dims_module.Tree:
        return Shape(("tree", item))
    return UNKNOWN if item is None else dims(item)


def integer_expression(expr, integers: frozenset) -> bool:
    """Whether ``expr`` is a Python int: a literal, one of ``integers``, or ``+ - * // %`` of
    those (``x[i + 1]``)."""
    value = number(expr)
    if value is not None:
        return type(value) is int
    if type(expr) is cst.BinaryOperation:
        return type(expr.operator) in _INT_OPERATORS and \
            integer_expression(expr.left, integers) and integer_expression(expr.right, integers)
    return type(expr) is cst.Name and expr.value in integers


def _list(expr: cst.List, facts: Facts):
    """``[h0]``: a list whose elements have the shape of its items (all one shape)."""
    found = EMPTY_LIST
    for element in expr.elements:
        if type(element) is not cst.Element:
            return UNKNOWN  # [*xs]
        found = _join(found, Shape(("list", facts.of(element.value))))
        if found is UNKNOWN or found.of[1] is UNKNOWN:
            return UNKNOWN
    return found


def _subscript(expr: cst.Subscript, facts: Facts, integers: frozenset, lists: frozenset,
               sizes: "Sizes | None" = None):
    """``x[t]``, ``x[:, None]``, ``x[0, :]``: integers take an axis, ``:`` keeps one, None
    adds one; ``x.shape[i]`` is a number; ``hs[-1]`` is an element of a list of known
    elements; ``z[:, n:2 * n]`` of an axis that is a multiple of ``n``'s (``sizes``) keeps
    an axis of ``n``'s symbol. Anything else (other slices, arrays, ``...``) has an unknown
    shape."""
    part = _result_part(expr, facts)
    if part is not None:
        return part
    if type(expr.value) is cst.Name:
        of = getattr(facts.of(expr.value), "of", None)  # (None: a name no binding reached yet)
        if type(of) is tuple and of and of[0] == "tree":
            return item_shape(of[1], expr)
    if sizes is not None and type(expr.value) is cst.Call:
        piece = _split_piece(expr, facts, sizes)
        if piece is not UNKNOWN:
            return piece
    base = facts.of(expr.value)
    if _is_list(base):
        ok = type(expr.value) is cst.Name and expr.value.value in lists and \
            len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Index and \
            integer_expression(expr.slice[0].slice.value, integers)
        return UNKNOWN if not ok else BOTTOM if base == EMPTY_LIST else base.of[1]
    if base == SHAPE_TUPLE:
        ok = len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Index and \
            integer_expression(expr.slice[0].slice.value, integers)
        return SCALAR if ok else UNKNOWN
    axes = axes_of(base)
    if axes is None:
        return UNKNOWN
    out, rest = [], list(axes)
    for element in expr.slice:
        item = element.slice
        if type(item) is cst.Index:
            if integer_expression(item.value, integers) and rest:
                rest.pop(0)
            elif type(item.value) is cst.Name and item.value.value == "None":
                out.append(1)
            else:
                return UNKNOWN
        elif type(item) is cst.Slice and item.lower is None and item.upper is None and \
                item.step is None and rest:
            out.append(rest.pop(0))
        elif type(item) is cst.Slice and rest and sizes is not None:
            length = sizes.slice_length(rest.pop(0), item)
            if length is None:
                return UNKNOWN
            out.append(length)
        else:
            return UNKNOWN
    return dims(tuple(out + rest))


def _split_piece(expr: cst.Subscript, facts: Facts, sizes: "Sizes"):
    """The shape of ``np.split(x, k, axis=a)[i]`` (literal ``k`` and ``a``) where the axis is
    ``k`` times a length of the pattern, else UNKNOWN."""
    call = expr.value
    if facts.resolve(call.func) is not np.split or len(expr.slice) != 1 or \
            type(expr.slice[0].slice) is not cst.Index:
        return UNKNOWN
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if len(positional) + len(keywords) != len(call.args) or not 2 <= len(positional) <= 3 or \
            set(keywords) - {"axis"} or len(positional) == 3 and keywords:
        return UNKNOWN
    k = number(positional[1])
    axis = number(positional[2] if len(positional) == 3 else keywords.get("axis", cst.Integer("0")))
    axes = axes_of(facts.of(positional[0]))
    if type(k) is not int or k < 1 or type(axis) is not int or not axes or \
            not -len(axes) <= axis < len(axes):
        return UNKNOWN
    whole = dims_module.multiple(axes[axis])
    if whole is None:
        return UNKNOWN
    base = next((b for b, m in whole[1].items() if m == k), whole[0] if k == 1 else None)
    piece = None if base is None else sizes.length(1, base, axes[axis], k)
    if piece is None:
        return UNKNOWN
    return dims(axes[:axis % len(axes)] + (piece,) + axes[axis % len(axes) + 1:])


@dataclass(frozen=True)
class Sizes:
    """Integers known as multiples of an axis's length (``srcdiff/dims.py``): each name's
    ``(m, name of the axis's symbol)`` (None for a plain int), and the pattern's symbols by
    name."""

    names: dict
    symbols: dict
    multiples: dict  # (name, m) -> the symbol of m times that name's length

    def of(self, expr):
        """``(m, base)`` of an integer expression: a literal, a name of ``names``, ``k * a``,
        ``a + b``, ``a - b`` of one base; else None."""
        return _size(expr, self.names)

    def slice_length(self, axis, item: cst.Slice):
        """The symbol of the length ``lower:upper`` takes of an axis of symbol ``axis``, where
        the bounds are multiples of a length the axis is a multiple of; else None."""
        whole = dims_module.multiple(axis)
        if whole is None or item.step is not None and number(item.step) != 1:
            return None
        name, relations = whole
        bounds = [None if b is None else self.of(b) for b in (item.lower, item.upper)]
        if any(b is None for b, given in zip(bounds, (item.lower, item.upper)) if given is not None):
            return None
        bases = {b[1] for b in bounds if b is not None and b[0] != 0}
        if len(bases) != 1:
            return None
        base = bases.pop()
        total = 1 if base == name else relations.get(base)
        if total is None:
            return None
        lower = 0 if bounds[0] is None else bounds[0][0]
        upper = total if bounds[1] is None else bounds[1][0]
        if not 0 <= lower < upper <= total:
            return None
        return self.length(upper - lower, base, axis, total)

    def length(self, m: int, base: str, axis, total: int):
        """The symbol of ``m`` times the length named ``base`` (``axis`` if that is ``total``
        times it), if the pattern has one; else None."""
        if m == total:
            return axis
        if m == 1:
            return self.symbols.get(base)
        return self.multiples.get((base, m))


def _size(expr, names: dict):
    value = number(expr)
    if value is not None:
        return (value, None) if type(value) is int else None
    if type(expr) is cst.Name:
        return names.get(expr.value)
    if type(expr) is cst.BinaryOperation:
        a, b = _size(expr.left, names), _size(expr.right, names)
        if a is None or b is None:
            return None
        op = type(expr.operator)
        if op is cst.Multiply and (a[1] is None or b[1] is None):
            return (a[0] * b[0], a[1] or b[1])
        if op in (cst.Add, cst.Subtract) and (a[1] == b[1] or 0 in (a[0], b[0])):
            sign = 1 if op is cst.Add else -1
            return (a[0] + sign * b[0], a[1] if a[0] else b[1])
    return None


def sizes_of(vjp: cst.FunctionDef, ctx: Context) -> Sizes:
    """The integers of ``vjp`` known as multiples of an axis's length (under a pattern)."""
    return _sizes(vjp, ctx, _lengths(vjp, ctx))


def _sizes(vjp: cst.FunctionDef, ctx: Context, lengths: dict) -> Sizes:
    """The names bound once (anywhere) to integers known as multiples of an axis's length:
    an axis's length (``_lengths``), then ``k * n``, ``n + m`` of those."""
    known = {name: (1, dims_module.name_of(symbol)) for name, symbol in lengths.items()}
    counts = binding_counts(vjp)
    candidates = [(name, expr) for name, expr, param in all_bindings(vjp)
                  if expr is not None and not param and counts.get(name) == 1 and name not in known]
    grew = True
    while grew:
        grew = False
        for name, expr in candidates:
            if name not in known:
                found = _size(expr, known)
                if found is not None:
                    known[name] = found
                    grew = True
    symbols = {dims_module.name_of(a): a for _, entry in ctx.dims
               for axes in dims_module.shapes_in(entry) for a in axes if a != 1}
    multiples = {(base, m): symbol for symbol in symbols.values()
                 for base, m in dims_module.multiple(symbol)[1].items()}
    return Sizes(known, symbols, multiples)


# solves of a square matrix: the keywords that do not change the result's shape
_SOLVES = {np.linalg.solve: set(), linalg.cholesky_solve: {"factor", "swapped", "clean"},
           linalg.solve_spd: {"factor"}}
# adjoint rules of several operands: the position of the operand each result has the shape of
# (each rule sums its adjoints back to its operands' shapes)
_RESULT_SHAPES = {linalg.solve_adjoint: {0: 2, 1: 3}, linalg.cholesky_solve_adjoint: {0: 2},
                  linalg.solve_spd_adjoint: {0: 2, 1: 3}}


def _result_part(expr: cst.Subscript, facts: Facts):
    """The fact of ``rule(...)[k]`` for a rule of ``_RESULT_SHAPES``: its operand's, else None."""
    call = expr.value
    if not (type(call) is cst.Call and len(expr.slice) == 1 and
            type(expr.slice[0].slice) is cst.Index and
            type(expr.slice[0].slice.value) is cst.Integer):
        return None
    fn = facts.resolve(call.func)
    if not _known(fn, _RESULT_SHAPES):
        return None
    position = _RESULT_SHAPES[fn].get(int(expr.slice[0].slice.value.value))
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    if position is None or position >= len(positional) or \
            len(positional) != len([a for a in call.args if not a.keyword]):
        return None
    return facts.of(positional[position])


def _axis_list(node, ndim: int) -> list | None:
    """The axes a literal ``axis=`` names, made non-negative; None if not literal ints."""
    items = [e.value for e in node.elements] if type(node) is cst.Tuple else [node]
    found = []
    for item in items:
        value = number(item)
        if type(value) is not int or not -ndim <= value < ndim:
            return None
        found.append(value % ndim)
    return found if len(set(found)) == len(found) else None


def _call_axes(call: cst.Call, facts: Facts, lists: frozenset = frozenset(),
               lengths: dict | None = None):
    """Shapes the axis-by-axis facts give beyond ``_call``'s: reductions over literal axes,
    transposes, swapped axes, and the batch pass's products of a matrix with rows."""
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if len(positional) + len(keywords) != len(call.args):
        return UNKNOWN
    fn = facts.resolve(call.func)
    if fn is None and type(call.func) is cst.Attribute:  # a method of a local array
        method, receiver = call.func.attr.value, call.func.value
        axes = axes_of(facts.of(receiver))
        if axes is None or not axes:
            return UNKNOWN
        if method in _FULL_METHODS and (not positional or len(positional) == 1 and
                                        "axis" not in keywords):
            # an array's method (the receiver has axes): its first parameter is axis
            return _reduced(axes, {**keywords, **({"axis": positional[0]} if positional else {})})
        if method == "swapaxes" and len(positional) == 2 and not keywords:
            return _swapped(axes, positional)
        if method == "transpose" and not keywords:
            return _transposed(axes, positional)
        if method == "dot" and len(positional) == 1 and not keywords:  # a.dot(b): np.dot(a, b)
            b = axes_of(facts.of(positional[0]))
            return _matmul(axes, b) if b and len(axes) <= 2 and len(b) <= 2 else UNKNOWN
        return UNKNOWN
    fn = numpy_twin(fn) or fn
    if fn in (builtins.len, helpers.count, np.size, np.ndim):
        return SCALAR  # an int, whatever it measures
    if fn is rules.spread_number:
        return SCALAR  # one number (or a 0-d array)
    if fn in _APPENDS and len(positional) == 2 and not keywords:
        return _join(facts.of(positional[0]), Shape(("list", facts.of(positional[1]))))
    if fn is trees.pop_adjoint and len(positional) == 2 and not keywords:
        xs = positional[1]  # the adjoint of an element: its shape, or a zero that broadcasts
        element = facts.of(xs)
        if not (type(xs) is cst.Name and xs.value in lists and _is_list(element)):
            return UNKNOWN
        if element == EMPTY_LIST or element.of[1] == BOTTOM:
            return BOTTOM
        return UNKNOWN if element.of[1] is UNKNOWN else Shape(element.of[1].of, exact=False)
    if (fn in _MASKS and len(positional) in (2, 3) or fn in _CLIPS and len(positional) == 4) \
            and not keywords:
        return _broadcast([facts.of(p) for p in positional])  # g where a mask holds
    if fn in _ROWS and len(positional) == 2 and not keywords:
        return _rows(fn, *(axes_of(facts.of(p)) for p in positional))
    if fn in (np.eye, np.identity) and len(positional) == 1 and set(keywords) <= {"dtype"}:
        n = _length(positional[0], lengths or {})  # np.eye(len(y)): n x n
        return UNKNOWN if n is None else dims((n, n))
    if not positional:
        return UNKNOWN
    axes = axes_of(facts.of(positional[0]))
    if not axes:
        return UNKNOWN
    if _known(fn, _REDUCTIONS) and len(positional) == 1:
        return _reduced(axes, keywords)
    if fn is np.swapaxes and len(positional) == 3 and not keywords:
        return _swapped(axes, positional[1:])
    if fn is np.transpose and len(positional) <= 2 and set(keywords) <= {"axes"}:
        given = positional[1:] or list(keywords.values())
        return _transposed(axes, [given[0]] if given else [])
    if fn is np.dot and len(positional) == 2 and not keywords:
        b = axes_of(facts.of(positional[1]))
        return _matmul(axes, b) if b and len(axes) <= 2 and len(b) <= 2 else UNKNOWN
    if fn in (np.inner, np.vdot) and len(positional) == 2 and not keywords:
        b = axes_of(facts.of(positional[1]))  # two vectors of one length: one number (vdot
        return SCALAR if b and len(axes) == len(b) == 1 and axes == b else UNKNOWN  # flattens)
    square = len(axes) == 2 and axes[0] == axes[1]  # a matrix of n x n
    if fn in (np.linalg.cholesky, np.linalg.inv) and len(positional) == 1 and not keywords:
        return dims(axes) if square else UNKNOWN
    if fn is linalg.cholesky_log_diagonal and len(positional) == 1 and square:
        return SCALAR
    if _known(fn, _SOLVES) and len(positional) == 2 and set(keywords) <= _SOLVES[fn] and square:
        b = axes_of(facts.of(positional[1]))  # a vector or the columns of a matrix
        return dims(b) if b and len(b) <= 2 and b[0] == axes[0] else UNKNOWN
    if fn is np.diag and len(positional) == 1 and not keywords:
        if len(axes) == 1:
            return dims((axes[0], axes[0]))
        return dims(axes[:1]) if square else UNKNOWN
    if fn in (np.trace, np.linalg.det) and len(positional) == 1 and not keywords and square:
        return SCALAR
    return UNKNOWN


# the batch pass's products of a matrix with every row of a stack (as a stack of results
# where the ranks allow, else a list): the stacked operand's position, and the most axes
# of a row for which np.dot is @
_ROWS = {helpers.matmul_rows: (1, None), helpers.rows_matmul: (0, None),
         helpers.dot_rows: (1, 2), helpers.rows_dot: (0, 2)}


def _rows(fn, a: tuple | None, b: tuple | None):
    """The shape of ``matmul_rows(a, xs)`` and its kin: ``xs``'s first axis, then the shape
    of one product (``a @ xs[t]``)."""
    stacked, most = _ROWS[fn]
    xs, matrix = (b, a) if stacked == 1 else (a, b)
    if xs is None or matrix is None or len(matrix) not in (1, 2) or len(xs) < 2 or \
            most is not None and len(xs) > most + 1:
        return UNKNOWN
    row = axes_of(_matmul(matrix, xs[1:]) if stacked == 1 else _matmul(xs[1:], matrix))
    return UNKNOWN if row is None else dims(xs[:1] + row)


_APPENDS = (helpers.append, helpers.append_in_place)
# rules whose result is their operands broadcast: the adjoint where a mask holds (np.where's
# branches, the larger operand of np.maximum/np.minimum)
_MASKS = (rules.where_adjoint_x, rules.where_adjoint_y, rules.larger_adjoint)
# the same for np.clip's operands: (g, a, a_min, a_max), g of the three broadcast
_CLIPS = (rules.clip_adjoint_a, rules.clip_adjoint_min, rules.clip_adjoint_max)
# where a list object's name may be read without the list changing in a way the facts miss:
# the callee -> the positions of such arguments (None: all)
_LIST_READERS = {helpers.append: (0,), helpers.append_in_place: (0,), trees.pop_adjoint: (1,),
                 np.stack: None, np.array: None, np.sum: None, builtins.len: None,
                 rules.stack_adjoint: (1,), creation.array_adjoint: (1,), rules.sum_adjoint: (1,),
                 rules.spread_number: (1,), helpers.blank: (1,), trees.list_put: (0,),
                 trees.list_nones: None}


def _lists(vjp: cst.FunctionDef, ctx: Context) -> dict[str, tuple]:
    """The names of the lists whose elements' shapes can be tracked, each with the names of
    its list object (``hs``, ``hs_1 = hs``, ``hs_3 = rt.append_in_place(hs_2, h)``): bound
    only to list displays, appends and one another, and read only where nothing else can
    put an element in (an index, ``len``, ``np.stack``, the runtime's list adjoints, a
    tape). ``rt.append_in_place`` changes the object every name of it holds, so they share
    one fact."""
    local = {name for name, _, _ in all_bindings(vjp)} | {p.name.value for p in vjp.params.params}
    callee = lambda call: resolve(call.func, ctx, local)  # noqa: E731
    bindings = [(n, e) for n, e, _ in all_bindings(vjp)]
    names: set = set()
    while True:  # the names bound to list displays, appends to such names, or their aliases
        more = {n for n, e in bindings if n not in names and e is not None and _listy(e, names, callee)}
        if not more:
            break
        names |= more
    if not names:
        return {}  # (most functions: no list to walk the function's reads for)
    parent = {n: n for n in names}

    def root(n):
        while parent[n] != n:
            n = parent[n]
        return n

    bad = set()
    for name, expr in bindings:
        if name not in names:
            continue
        if expr is None or not _listy(expr, names, callee):
            bad.add(name)
            continue
        other = expr if type(expr) is cst.Name else expr.args[0].value if \
            type(expr) is cst.Call else None
        if other is not None:
            parent[root(name)] = root(other.value)
    allowed = _allowed_reads(vjp, names, callee)
    seen: set = set()
    for node in subexpressions(vjp.body):
        if type(node) is cst.Name and node.value in names:
            if id(node) not in allowed or id(node) in seen:  # (one node at two places, as
                bad.add(node.value)  # generated lines may share them: the ids allowed
            seen.add(id(node))  # judge one place, so neither is trusted)
    poisoned = {root(n) for n in bad}
    groups: dict = {}
    for n in sorted(names):
        if root(n) not in poisoned:
            groups.setdefault(root(n), []).append(n)
    return {n: tuple(group) for group in groups.values() for n in group}


def _listy(expr, names: set, callee) -> bool:
    if type(expr) is cst.List:
        return True
    if type(expr) is cst.Name:
        return expr.value in names
    return type(expr) is cst.Call and callee(expr) in _APPENDS and len(expr.args) == 2 and \
        type(expr.args[0].value) is cst.Name and expr.args[0].value.value in names


def _allowed_reads(vjp: cst.FunctionDef, names: set, callee) -> set:
    """The ids of the Name nodes of ``names`` that bind them or read them harmlessly."""
    allowed = set()
    for stmt in walk(vjp.body.body):
        if type(stmt) is cst.For:
            allowed |= {id(n) for n in subexpressions(stmt.target) if type(n) is cst.Name}
        if type(stmt) is not cst.SimpleStatementLine:
            continue
        for small in stmt.body:
            if type(small) is cst.Assign:
                for target in small.targets:
                    if type(target.target) is cst.Name:
                        allowed.add(id(target.target))
                if type(small.value) is cst.Name:
                    allowed.add(id(small.value))  # an alias
            elif type(small) is cst.Del:
                allowed |= {id(n) for n in subexpressions(small.target) if type(n) is cst.Name}
    for node in subexpressions(vjp.body):
        if type(node) is cst.Subscript and type(node.value) is cst.Name:
            allowed.add(id(node.value))  # hs[-1] (a write hs[i] = v is an Assign target: not here)
        elif type(node) is cst.Call:
            func = node.func
            if type(func) is cst.Attribute and func.attr.value == "push" and \
                    len(node.args) == 1 and type(node.args[0].value) is cst.Tuple:
                allowed |= {id(e.value) for e in node.args[0].value.elements}  # onto a tape
                continue
            positions = _LIST_READERS.get(callee(node), ()) if callee(node) is not None else ()
            for i, arg in enumerate(node.args):
                if arg.keyword is None and not arg.star and (positions is None or i in positions):
                    allowed.add(id(arg.value))
    for stmt in walk(vjp.body.body):  # a subscript assigned to writes into the list: not allowed
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) in (cst.Assign, cst.AugAssign, cst.AnnAssign):
                    targets = [t.target for t in small.targets] if type(small) is cst.Assign \
                        else [small.target]
                    for t in targets:
                        for n in subexpressions(t):
                            if type(n) is cst.Subscript and type(n.value) is cst.Name:
                                allowed.discard(id(n.value))
    return allowed


def _reduced(axes: tuple, keywords: dict):
    if not set(keywords) <= {"axis", "keepdims"}:
        return UNKNOWN
    keepdims = keywords.get("keepdims")
    keep = keepdims is not None and type(keepdims) is cst.Name and keepdims.value == "True"
    if keepdims is not None and not keep and not (
            type(keepdims) is cst.Name and keepdims.value == "False"):
        return UNKNOWN
    axis = keywords.get("axis")
    if axis is None or type(axis) is cst.Name and axis.value == "None":
        chosen = range(len(axes))
    else:
        chosen = _axis_list(axis, len(axes))
        if chosen is None:
            return UNKNOWN
    if keep:
        return dims(tuple(1 if i in chosen else n for i, n in enumerate(axes)))
    return dims(tuple(n for i, n in enumerate(axes) if i not in chosen))


def _swapped(axes: tuple, given: list):
    pair = [number(g) for g in given]
    if any(type(p) is not int or not -len(axes) <= p < len(axes) for p in pair):
        return UNKNOWN
    i, j = (p % len(axes) for p in pair)
    out = list(axes)
    out[i], out[j] = out[j], out[i]
    return dims(tuple(out))


def _transposed(axes: tuple, given: list):
    """``np.transpose(x)``/``x.transpose()`` reverse the axes; ``x.transpose(0, 2, 1)`` and
    ``axes=(0, 2, 1)`` permute them."""
    if not given:
        return dims(axes[::-1])
    items = given[0].elements if len(given) == 1 and type(given[0]) is cst.Tuple else \
        [cst.Element(g) for g in given]
    order = [number(e.value) for e in items]
    if sorted(o if type(o) is int and o >= 0 else -1 for o in order) != list(range(len(axes))):
        return UNKNOWN
    return dims(tuple(axes[o] for o in order))


_FULL_METHODS = ("sum", "mean", "max", "min", "prod")  # a.sum(): one number


def _call(call: cst.Call, facts: Facts):
    if not call.args and type(call.func) is cst.Attribute and \
            call.func.attr.value in _FULL_METHODS and facts.resolve(call.func) is None:
        return SCALAR  # a method of a local array, reducing all of it
    fn = facts.resolve(call.func)
    if fn is None:
        return UNKNOWN
    fn = numpy_twin(fn) or fn  # cupy.tanh keeps shapes as np.tanh does
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if len(positional) + len(keywords) != len(call.args):
        return UNKNOWN  # *args or **kwargs
    if _known(fn, ELEMENTWISE) and len(positional) == 1 and not keywords:
        return facts.of(positional[0])
    if fn in (helpers.softmax, helpers.log_softmax, helpers.sigmoid) and len(positional) == 1:
        return facts.of(positional[0])
    if fn in (helpers.squared_norm, np.linalg.norm) and len(positional) == 1 and not keywords:
        return SCALAR  # the 2-norm of all of an array (numpy flattens it), or its square
    if _known(fn, _NARY) and len(positional) >= 2 and not keywords:
        return _broadcast([facts.of(a) for a in positional])
    if _known(fn, _MATH):
        return SCALAR  # Python numbers
    if _known(fn, _REDUCTIONS) and len(positional) == 1 and set(keywords) <= {"axis", "keepdims"}:
        keepdims = keywords.get("keepdims")
        axis = keywords.get("axis")
        if keepdims is not None and type(keepdims) is cst.Name and keepdims.value == "True":
            x = facts.of(positional[0])
            return UNKNOWN if x is UNKNOWN else _broadcast([Shape(x.of, exact=False)])
        if (keepdims is None or type(keepdims) is cst.Name and keepdims.value == "False") \
                and (axis is None or type(axis) is cst.Name and axis.value == "None"):
            return SCALAR  # a reduction of everything: one number
        return UNKNOWN
    if fn is helpers.row_dots and len(positional) == 2 and not keywords:  # keepdims sums
        s = _broadcast([facts.of(a) for a in positional])
        return UNKNOWN if s is UNKNOWN else _broadcast([Shape(s.of, exact=False)])
    if fn is helpers.dot_all and len(positional) == 2 and not keywords:
        return SCALAR  # a whole array's sum
    if fn is helpers.guard and len(positional) == 2 and not keywords:
        s = _broadcast([facts.of(a) for a in positional])  # value, or 1 where g == 0
        return UNKNOWN if s is UNKNOWN else _broadcast([Shape(s.of, exact=False)])
    position = _position(fn)
    if position is not None and len(positional) > position:
        return facts.of(positional[position])
    return UNKNOWN


def _known(fn, table) -> bool:
    try:
        return fn in table
    except TypeError:  # unhashable
        return False


def _position(fn):
    try:
        return _SHAPE_OF_ARGUMENT.get(fn)
    except TypeError:
        return None


def _is_unbroadcast(call: cst.Call, facts: Facts) -> bool:
    return facts.resolve(call.func) is helpers.unbroadcast and len(call.args) == 2 and \
        all(a.keyword is None and a.star == "" for a in call.args)


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.BaseNumber, cst.BaseString)


def _droppable(call: cst.Call, facts: Facts) -> bool:
    """Whether ``call`` is ``rt.unbroadcast(g, x)`` with ``g`` and ``x`` of one exact shape."""
    if not _is_unbroadcast(call, facts):
        return False
    g, x = (facts.of(a.value) for a in call.args)
    return g is not UNKNOWN and g.exact and g == x


class Unwrapping(cst.CSTTransformer):
    """A rewrite that parenthesises what it puts in place of a call (:meth:`wrap`) and drops
    those parentheses where the value stands alone: assigned, an argument, an element,
    returned. Subclasses decide within expressions (this pass, ``factor``)."""

    def __init__(self):
        # id -> (the wrapped node itself, what the subclass attaches to it). The node is held:
        # an id names an object only while it lives, and a node freed mid-rewrite (replaced
        # by a bare copy) would lend its id to a new one; a lookup also checks identity
        self._wrapped: dict[int, tuple[cst.CSTNode, object]] = {}

    def wrap(self, node, attached=None):
        """``node``, recorded as a replacement given its parentheses here."""
        self._wrapped[id(node)] = (node, attached)
        return node

    def is_wrapped(self, node) -> bool:
        entry = self._wrapped.get(id(node))
        return entry is not None and entry[0] is node

    def attached(self, node):
        """What :meth:`wrap` attached to ``node``; None for a node not wrapped here."""
        entry = self._wrapped.get(id(node))
        return entry[1] if entry is not None and entry[0] is node else None

    def _bare(self, node):
        if self.is_wrapped(node):
            return node.with_changes(lpar=[], rpar=[])
        return node

    def leave_Assign(self, original, updated: cst.Assign):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_Arg(self, original, updated: cst.Arg):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_Element(self, original, updated: cst.Element):
        return updated.with_changes(value=self._bare(updated.value))

    def leave_Return(self, original, updated: cst.Return):
        return updated.with_changes(value=self._bare(updated.value))


class _Drop(Unwrapping):
    """``rt.unbroadcast(g, x)`` → ``g`` where both have one exact shape class."""

    def __init__(self, facts: Facts):
        super().__init__()
        self.facts = facts

    def leave_Call(self, original: cst.Call, updated: cst.Call):
        if not _droppable(original, self.facts):
            return updated
        value = updated.args[0].value
        if isinstance(value, _ATOMS) or value.lpar:
            return value
        # kept where it is an operand; dropped below otherwise
        return self.wrap(value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]))

    def leave_BinaryOperation(self, original, updated: cst.BinaryOperation):
        left, right = updated.left, updated.right
        level = _precedence(updated)
        if self.is_wrapped(left) and _precedence(left) >= level and level != _POWER:
            left = self._bare(left)  # (a * b) + c → a * b + c; (a - b) - c → a - b - c
        if self.is_wrapped(right):
            inner = self._bare(right)
            if type(updated.operator) is cst.Add and type(inner) is cst.UnaryOperation \
                    and type(inner.operator) is cst.Minus:
                return updated.with_changes(left=left, operator=cst.Subtract(
                    whitespace_before=updated.operator.whitespace_before,
                    whitespace_after=updated.operator.whitespace_after), right=inner.expression)
            if _precedence(right) > level and level != _POWER:
                right = inner  # a + b * c; a - (b - c) keeps its parentheses
        return updated.with_changes(left=left, right=right)


_POWER = 4


def _precedence(node) -> int:
    """Python's binding strength of an expression (higher binds tighter); atoms are 9."""
    if type(node) is cst.BinaryOperation:
        op = node.operator
        if type(op) is cst.Power:
            return _POWER
        if isinstance(op, (cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo,
                           cst.MatrixMultiply)):
            return 2
        if type(op) in (cst.Add, cst.Subtract):
            return 1
        return 0  # shifts and bitwise operators
    if type(node) is cst.UnaryOperation:
        return 3
    if isinstance(node, _ATOMS):
        return 9
    return -1  # comparisons, boolean operators, conditional expressions
