"""canonical: one spelling for each matrix product, before any pass looks for one.

Users write the same product many ways; every later pass (``reverse``'s rule choice,
``shapes``, ``tapes``, ``batch``) looks for one form only. After ``normalize`` (one
operation per line, atoms inside) this pass lowers, where numpy's semantics are provably
the same for every input:

- ``np.matmul(a, b)`` and ``np.linalg.matmul(a, b)`` → ``a @ b`` (the same function);
- ``list((a, b))``, ``tuple([a, b])`` → the display ``[a, b]``, ``(a, b)`` (what they make);
- ``a.dot(b)`` → ``np.dot(a, b)`` (the method is the function); ``np.dot`` stays itself —
  for one- and two-dimensional operands it is ``a @ b``, but not for numbers or more axes,
  which only the runtime sees: its rules (``rt.dot_adjoint_a/_b``) and the batch pass's
  helpers check the ``ndim`` and take the matmul path where it holds;
- ``np.linalg.multi_dot([a, b, c])`` → ``a @ b``, then ``@ c`` (left to right; values the
  same up to rounding — multi_dot only picks a faster order, and refuses operands of more
  than two axes that ``@`` would broadcast);
- ``np.add.reduce(x)`` (and ``multiply``, ``maximum``, ``minimum``) → ``np.sum(x, axis=0)``
  (``np.prod``, ``np.max``, ``np.min``): a ufunc's reduce is the reduction over the first
  axis unless ``axis=`` says otherwise;
- ``np.add.accumulate(x)`` (and ``multiply``) → ``np.cumsum(x, axis=0)`` (``np.cumprod``);
- ``np.subtract.outer(a, b)`` (any ufunc of two operands) → ``a`` reshaped to its shape and
  a 1 per axis of ``b`` (``rt.outer_shape``), then ``np.subtract(…, b)``: numpy's own
  broadcasting makes every pair, and the ufunc's elementwise rule differentiates it;
- the builtin ``pow(a, b)`` of two arguments → ``a ** b`` (``pow(a, b, m)`` is modular: kept);
- a reduction's axis given by position, ``np.sum(e, -1, keepdims=True)`` (``np.mean``,
  ``np.max``, ``np.amax``, ``np.min``, ``np.amin``, ``np.prod``) → ``axis=-1``, as the
  passes that read axes expect;
- ``np.where(c, x, 0)`` (or ``0.0``) right after ``c = x > 0`` (or ``0 < x``): a ReLU →
  ``rt.where_positive(c, x, 0)``, np.where's values without numpy's per-element branch
  (``np.fmax``, ~25x faster on a random mask), with np.where's adjoint;
- a two-operand ``np.einsum`` whose subscripts spell a (batched) matrix product —
  ``'ij,jk->ik'``, ``'ij,j->i'``, ``'bid,bjd->bij'``, ``'bij,bjd->bid'``, ``'i,i->'`` — →
  the operands' axes put in matmul order with ``np.swapaxes`` / ``np.transpose``, then
  ``@``, then the result's axes put in the order the subscripts ask. The subscripts fix
  every operand's ``ndim``, so this holds for every input einsum accepts; the values are
  the same up to rounding (BLAS adds in another order than einsum's loop);
- an ``np.einsum`` of three operands or more, with an explicit output and no index twice in
  one operand, → its operands contracted two at a time, left to right (``'i,ij,j->'`` is
  ``'i,ij->j'`` then ``'j,j->'``), each pair lowered as above where it is a matrix product:
  never more multiplications than numpy's own loop over every index.

    _t1 = np.einsum('bid,bjd->bij', q, k)   →   _t2 = np.swapaxes(k, -1, -2)
                                                _t1 = q @ _t2
    r = np.matmul(s, v)                     →   r = s @ v
    r = x.dot(w)                            →   r = np.dot(x, w)

The line markers stay where they were, so each adjoint block still quotes the user's line
as written. The numpy functions it writes are spelled as the module spells numpy (``np``),
``rt.np`` where no global name does (``templates.runtime_spelling``, as the rules' own).

Invariant after this pass: no ``np.matmul(a, b)`` call; no ``x.dot(y)`` method call of a
local array; no two-operand einsum of a matrix-product spelling; no einsum of more operands
with an explicit output of letters, each once per operand.
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from ..analysis.calls import resolve
from ..context import Context
from ..names import Namer, names_in, with_blocks
from ..templates import runtime_spelling
from .desugar import parenthesized
from .normalize import local_variables

__all__ = ["rewrite", "matmul_plan"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    funcdef = module.body[0]
    local_names = local_variables(funcdef)
    numpy = runtime_spelling("np", np, ctx.rt, ctx.fn.__globals__, local_names)
    lowering = _Lowering(ctx, local_names, Namer(names_in(module) | {ctx.rt}), numpy)
    return module.with_changes(body=[funcdef.with_changes(body=lowering.block(funcdef.body)),
                                     *module.body[1:]])


class _Lowering:
    def __init__(self, ctx: Context, local_names, namer: Namer, numpy: cst.BaseExpression):
        self.ctx, self.local_names, self.namer, self.numpy = ctx, local_names, namer, numpy

    def block(self, block):
        body, self.previous = [], None
        for stmt in block.body:
            body.extend(self.statement(stmt))
            self.previous = stmt
        return block.with_changes(body=body)

    def statement(self, stmt) -> list:
        if type(stmt) in (cst.If, cst.For, cst.While, cst.With):
            return [with_blocks(stmt, self.block)]
        if not (type(stmt) is cst.SimpleStatementLine and len(stmt.body) == 1 and
                type(stmt.body[0]) is cst.Assign and len(stmt.body[0].targets) == 1):
            return [stmt]
        assign = stmt.body[0]
        lowered = self.value(assign.value, assign.targets[0].target)
        if lowered is None:
            return [stmt]
        *before, value = lowered
        lines = [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], expr)])
                 for target, expr in before]
        lines.append(stmt.with_changes(body=[assign.with_changes(value=value)]))
        if len(lines) > 1:  # the line marker stays on the group's first statement
            lines[0] = lines[0].with_changes(leading_lines=stmt.leading_lines)
            lines[-1] = lines[-1].with_changes(leading_lines=())
        return lines

    def value(self, value, target):
        """``[(temp, expr), …, final expr]`` for a lowered ``value``; None to keep it."""
        if type(value) is not cst.Call or any(a.star for a in value.args):
            return None
        func = value.func
        args = value.args
        obj = resolve(func, self.ctx, self.local_names)
        if obj in (list, tuple) and len(args) == 1 and args[0].keyword is None and \
                type(args[0].value) in (cst.List, cst.Tuple):
            return [_display(obj, args[0].value.elements)]
        if obj in _MATMULS and len(args) == 2 and all(a.keyword is None for a in args):
            return [_matmul(args[0].value, args[1].value)]
        if type(func) is cst.Attribute and func.attr.value == "dot" and \
                type(func.value) is cst.Name and func.value.value in self.local_names and \
                len(args) == 1 and args[0].keyword is None:
            return [value.with_changes(func=self._np("dot"), args=[
                cst.Arg(func.value, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)])]
        if obj is np.einsum:
            return self.einsum(args)
        clipped = _clip_operands(func, obj, args, self.local_names)
        if clipped is not None:  # x.clip(min=0), np.clip(x, max=1.0): numpy's both spellings
            return [_call(self._np("clip"), *clipped)]
        if obj is np.where and _positive_part(args, self.previous):
            return [value.with_changes(func=cst.Attribute(cst.Name(self.ctx.rt),
                                                          cst.Name("where_positive")))]
        if obj is np.linalg.multi_dot and len(args) == 1 and args[0].keyword is None and \
                type(args[0].value) in (cst.List, cst.Tuple) and \
                len(args[0].value.elements) >= 2 and \
                not any(type(e) is cst.StarredElement for e in args[0].value.elements):
            return self.chain([e.value for e in args[0].value.elements])
        reduction = _UFUNC_REDUCTIONS.get(_ufunc_of(func, "reduce", self.ctx, self.local_names))
        if reduction and _reduce_arguments(args):
            return [self.reduction(reduction, args)]
        accumulation = _UFUNC_ACCUMULATIONS.get(_ufunc_of(func, "accumulate", self.ctx,
                                                          self.local_names))
        if accumulation and _reduce_arguments(args, keepdims=False):
            return [self.reduction(accumulation, args)]
        ufunc = _ufunc_of(func, "outer", self.ctx, self.local_names)
        if ufunc is not None and ufunc.nin == 2 and len(args) == 2 and \
                all(a.keyword is None for a in args):
            return self.outer(func.value, args[0].value, args[1].value)
        if obj is pow and len(args) == 2 and all(a.keyword is None for a in args):
            return [cst.BinaryOperation(parenthesized(args[0].value), cst.Power(),
                                        parenthesized(args[1].value))]
        if obj in _AXIS_SECOND and len(args) >= 2 and args[0].keyword is None and \
                args[1].keyword is None and all(a.keyword is not None for a in args[2:]) and \
                not any(a.keyword.value == "axis" for a in args[2:]):
            axis = args[1].with_changes(keyword=cst.Name("axis"), equal=cst.AssignEqual(
                cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
            return [value.with_changes(args=[args[0], axis, *args[2:]])]
        return None

    def chain(self, operands):
        """``np.linalg.multi_dot([a, b, c])`` → ``a @ b`` then ``… @ c``, one product per
        line (multi_dot's order is only faster: the values are the same up to rounding)."""
        steps, left = [], operands[0]
        for right in operands[1:-1]:
            temp = cst.Name(self.namer.temp())
            steps.append((temp, _matmul(left, right)))
            left = temp
        return [*steps, _matmul(left, operands[-1])]

    def outer(self, ufunc, a, b):
        """``np.subtract.outer(a, b)`` → ``a`` reshaped to its shape and a 1 per axis of
        ``b``, then ``np.subtract(…, b)``: the ufunc's own broadcasting makes every pair, so
        each ufunc's elementwise rule differentiates its outer."""
        base = a.value if type(a) is cst.Name else "_t"
        shape = cst.Name(self.namer.fresh(f"{base}_outer_shape"))
        expanded = cst.Name(self.namer.fresh(f"{base}_outer"))
        return [(shape, _call(cst.Attribute(cst.Name(self.ctx.rt), cst.Name("outer_shape")), a, b)),
                (expanded, _call(self._np("reshape"), a, shape)),
                _call(ufunc, expanded, b)]

    def reduction(self, name: str, args) -> cst.Call:
        """``np.add.reduce(x)`` → ``np.sum(x, axis=0)``: a ufunc's reduce is the reduction
        over its first axis unless ``axis`` says otherwise (``axis=None``: all of them)."""
        x, *rest = args
        axis = [a for a in rest if a.keyword is None or a.keyword.value == "axis"]
        keepdims = [a for a in rest if a.keyword is not None and a.keyword.value == "keepdims"]
        axis_value = axis[0].value if axis else cst.Integer("0")
        new = [cst.Arg(x.value), cst.Arg(axis_value, keyword=cst.Name("axis"),
                                         equal=cst.AssignEqual(cst.SimpleWhitespace(""),
                                                               cst.SimpleWhitespace("")))]
        new += [cst.Arg(a.value, keyword=cst.Name("keepdims"), equal=cst.AssignEqual(
            cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))) for a in keepdims]
        return cst.Call(self._np(name), _commas(new))

    def einsum(self, args):
        keywords = [a for a in args if a.keyword is not None]
        positional = [a.value for a in args if a.keyword is None]
        if any(a.keyword.value != "optimize" for a in keywords) or len(positional) < 3 or \
                type(positional[0]) is not cst.SimpleString:
            return None
        if len(positional) > 3:
            return self.einsum_chain(positional[0], positional[1:])
        plan = matmul_plan(positional[0].evaluated_value)
        if plan is None:
            return None
        perm_a, perm_b, perm_out = plan
        steps = []
        operands = []
        for operand, perm in ((positional[1], perm_a), (positional[2], perm_b)):
            if perm is None:
                operands.append(operand)
                continue
            base = operand.value if type(operand) is cst.Name else "_t"
            swap = perm == _last_two_swapped(len(perm))
            temp = cst.Name(self.namer.fresh(f"{base}_T" if swap else f"{base}_axes"))
            steps.append((temp, self._axes(operand, perm)))
            operands.append(temp)
        product = _matmul(*operands)
        if perm_out is None:
            return [*steps, product]
        temp = cst.Name(self.namer.temp())
        return [*steps, (temp, product), self._axes(temp, perm_out)]

    def einsum_chain(self, spelled: cst.SimpleString, operands):
        """``np.einsum('i,ij,j->', x, A, x)`` → its operands contracted two at a time, left
        to right (``'i,ij->j'``, then ``'j,j->'``), each pair lowered as above where it is a
        matrix product and an ``np.einsum`` of two otherwise: never more multiplications than
        numpy's own loop over every index (its default, ``optimize=False``), the values the
        same up to rounding. Only for an explicit output, letters alone, no index repeated
        within an operand (a diagonal)."""
        pairs = _einsum_pairs(spelled.evaluated_value, len(operands))
        if pairs is None:
            return None
        steps, left = [], operands[0]
        for i, pair in enumerate(pairs):  # (in the user's quotes)
            pair_args = [cst.Arg(cst.SimpleString(f"{spelled.quote}{pair}{spelled.quote}")),
                         cst.Arg(left),
                         cst.Arg(operands[i + 1])]
            lowered = self.einsum(pair_args) or [cst.Call(self._np("einsum"),
                                                          _commas(pair_args))]
            *before, value = lowered
            steps += before
            if i == len(pairs) - 1:
                return [*steps, value]
            left = cst.Name(self.namer.temp())
            steps.append((left, value))
        return None

    def _axes(self, operand, perm) -> cst.Call:
        """``np.swapaxes(x, -1, -2)`` for the swap of the last two axes, else
        ``np.transpose(x, perm)``."""
        if perm == _last_two_swapped(len(perm)):
            return _call(self._np("swapaxes"), operand, _int(-1), _int(-2))
        return _call(self._np("transpose"), operand,
                     cst.Tuple([cst.Element(_int(i)) for i in perm]))

    def _np(self, name: str) -> cst.Attribute:
        return cst.Attribute(self.numpy, cst.Name(name))


# np.matmul, and numpy 2's array-API np.linalg.matmul: the same product as @
_MATMULS = tuple(f for f in (np.matmul, getattr(np.linalg, "matmul", None)) if f is not None)

# a ufunc's reduce -> the numpy reduction it is (np.add.reduce(x, axis=a) is np.sum(x, axis=a))
_UFUNC_REDUCTIONS = {np.add: "sum", np.multiply: "prod", np.maximum: "max", np.minimum: "min"}
# a ufunc's accumulate -> the numpy function it is (np.add.accumulate(x) is np.cumsum(x, axis=0))
_UFUNC_ACCUMULATIONS = {np.add: "cumsum", np.multiply: "cumprod"}


# reductions whose second parameter is ``axis``
_AXIS_SECOND = frozenset({np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod})


def _einsum_pairs(subscripts, n: int) -> list | None:
    """The two-operand subscripts that contract ``n`` operands left to right, else None."""
    if not isinstance(subscripts, str):
        return None
    inputs, arrow, out = subscripts.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if not arrow or len(terms) != n or not all(t.isalpha() for t in terms) or \
            not (out.isalpha() or out == "") or \
            any(len(set(t)) != len(t) for t in (*terms, out)) or \
            not set(out) <= set("".join(terms)):
        return None
    pairs, left = [], terms[0]
    for k in range(1, n):
        later = set("".join(terms[k + 1:])) | set(out)
        right = terms[k]
        kept = "".join(c for c in dict.fromkeys(left + right) if c in later)
        if k == n - 1:
            kept = out
        pairs.append(f"{left},{right}->{kept}")
        left = kept
    return pairs


def _ufunc_of(func, method: str, ctx: Context, local_names):
    """The ufunc ``u`` of a call ``u.<method>(…)`` (``np.add.reduce``), else None."""
    if type(func) is cst.Attribute and func.attr.value == method:
        ufunc = resolve(func.value, ctx, local_names)
        return ufunc if isinstance(ufunc, np.ufunc) else None
    return None


def _reduce_arguments(args, keepdims: bool = True) -> bool:
    """``(x)``, ``(x, axis)`` or ``(x, axis=…, keepdims=…)``: what ``reduction`` rewrites
    (``dtype=``, ``out=``, ``initial=``, ``where=`` keep the ufunc's own spelling; an
    accumulation has no ``keepdims``)."""
    positional = [a for a in args if a.keyword is None]
    keywords = [a.keyword.value for a in args if a.keyword is not None]
    allowed = {"axis", "keepdims"} if keepdims else {"axis"}
    return 1 <= len(positional) <= 2 and args[:len(positional)] == positional and \
        set(keywords) <= allowed and len(set(keywords)) == len(keywords) and \
        not (len(positional) == 2 and "axis" in keywords)


def _clip_operands(func, obj, args, local_names) -> tuple | None:
    """``(a, a_min, a_max)``, ``None`` for a bound left out, of the clips whose bounds the
    rule's ``np.clip(a, a_min, a_max)`` does not read as written: the method's
    ``x.clip(min=0)``, ``x.clip(lo)`` (its bounds are ``min`` and ``max``, each optional), and
    the function's ``np.clip(x, min=0)`` (numpy 2.1's other names, where numpy takes them:
    without ``a_min``/``a_max`` and without bounds by position); else None."""
    if any(a.star for a in args):
        return None
    positional = [a.value for a in args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in args if a.keyword is not None}
    none = cst.Name("None")
    if type(func) is cst.Attribute and func.attr.value == "clip" and \
            type(func.value) is cst.Name and func.value.value in local_names:
        bound = dict(zip(("min", "max"), positional))
        if len(positional) > 2 or set(keywords) - {"min", "max"} or set(keywords) & set(bound) \
                or len(bound) == 2 or not bound and not keywords:
            return None
        bound |= keywords
        return func.value, bound.get("min", none), bound.get("max", none)
    if obj is np.clip and len(positional) == 1 and keywords and \
            set(keywords) <= {"min", "max"}:
        return positional[0], keywords.get("min", none), keywords.get("max", none)
    return None


def _display(kind, elements) -> cst.BaseExpression:
    """``[a, b]`` (``kind`` list) or ``(a, b)`` (tuple) of ``elements``: what ``list((a, b))``
    and ``tuple([a, b])`` make."""
    elements = list(elements)
    if kind is tuple:
        if len(elements) == 1:  # (a,): a tuple of one keeps its comma
            elements = [elements[0].with_changes(comma=cst.Comma())]
        return cst.Tuple(elements, lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    if elements:
        elements[-1] = elements[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return cst.List(elements)


def _commas(args: list) -> list:
    """``args`` separated by ``, ``."""
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [a.with_changes(comma=comma) for a in args[:-1]] + args[-1:]


def matmul_plan(subscripts):
    """How ``np.einsum(subscripts, a, b)`` is ``a @ b``: ``(perm_a, perm_b, perm_out)``, the
    axes orders to give ``a`` and ``b`` first and the result after (None: as it is), or None
    where the subscripts are not a (batched) matrix product.

    >>> matmul_plan('ij,jk->ik'), matmul_plan('bid,bjd->bij')
    ((None, None, None), (None, (0, 2, 1), None))
    >>> matmul_plan('ij,kj->ki'), matmul_plan('ij,jk'), matmul_plan('ii,i->i')
    ((None, (1, 0), (1, 0)), None, None)
    """
    if not isinstance(subscripts, str):
        return None
    spec = subscripts.replace(" ", "")
    inputs, arrow, out = spec.partition("->")
    terms = inputs.split(",")
    if not arrow or len(terms) != 2 or not all(t.isalpha() for t in (*terms, out) if t):
        return None
    a, b = terms
    if any(len(set(t)) != len(t) for t in (a, b, out)) or not set(out) <= set(a) | set(b):
        return None
    batch = [c for c in out if c in a and c in b]
    summed = [c for c in a if c in b and c not in out]
    free_a = [c for c in a if c not in b]
    free_b = [c for c in b if c not in a]
    if len(summed) != 1 or len(free_a) > 1 or len(free_b) > 1 or \
            not set(free_a + free_b) <= set(out) or batch and not (free_a and free_b):
        return None
    order_a = batch + free_a + summed
    order_b = batch + summed + free_b
    order_out = batch + free_a + free_b
    perm_out = tuple(order_out.index(c) for c in out)
    return (_perm(a, order_a), _perm(b, order_b),
            None if perm_out == tuple(range(len(out))) else perm_out)


def _last_two_swapped(n: int) -> tuple:
    return (*range(n - 2), n - 1, n - 2) if n >= 2 else ()


def _perm(term, order):
    perm = tuple(term.index(c) for c in order)
    return None if perm == tuple(range(len(term))) else perm


def _matmul(a, b) -> cst.BinaryOperation:
    return cst.BinaryOperation(a, cst.MatrixMultiply(), b)


def _int(i: int) -> cst.BaseExpression:
    return cst.UnaryOperation(cst.Minus(), cst.Integer(str(-i))) if i < 0 else cst.Integer(str(i))


def _call(func, *args) -> cst.Call:
    return cst.Call(func, [cst.Arg(a) for a in args])


def _positive_part(args, previous) -> bool:
    """Whether ``np.where(args)`` is ``np.where(c, x, 0)`` (or ``0.0``) right after ``c = x > 0``
    (or ``0 < x``) in the same block: a ReLU, which ``rt.where_positive`` computes without
    numpy's per-element branch."""
    if len(args) != 3 or any(a.keyword is not None or a.star for a in args) or not (
            type(previous) is cst.SimpleStatementLine and len(previous.body) == 1):
        return False
    condition, x, zero = (a.value for a in args)
    assign = previous.body[0]
    if not (type(condition) is cst.Name and type(x) is cst.Name and _zero(zero) and
            type(assign) is cst.Assign and len(assign.targets) == 1 and
            type(assign.targets[0].target) is cst.Name and
            assign.targets[0].target.value == condition.value != x.value):
        return False
    compared = assign.value
    if not (type(compared) is cst.Comparison and len(compared.comparisons) == 1):
        return False
    operator, right = compared.comparisons[0].operator, compared.comparisons[0].comparator
    left = compared.left
    if type(operator) is cst.GreaterThan:
        return type(left) is cst.Name and left.value == x.value and _zero(right)
    if type(operator) is cst.LessThan:
        return type(right) is cst.Name and right.value == x.value and _zero(left)
    return False


def _zero(node) -> bool:
    """A literal 0 or 0.0 (not -0.0, a unary minus of one)."""
    return type(node) in (cst.Integer, cst.Float) and not node.lpar and \
        float(node.value.replace("_", "")) == 0.0
