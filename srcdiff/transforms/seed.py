"""seed: ``srcdiff.grad`` seeds the pullback with 1 and never shows the value; fold both.

Runs only for ``grad`` and ``value_and_grad`` (not ``has_aux``), and only where the output
is provably one real number, so that the API has nothing left to check on it: a reduction of
a whole array (``np.sum(v)``, ``np.mean(v)``, ``v.sum()``, ...), or ``+ - * /`` of such and
of numbers. Then, invariant after this pass:

- the pullback takes no parameter: its seed is the number ``1.0``, and names bound to a
  number in the pullback's top level are replaced by that number;
- for ``grad``, the generated function returns the pullback alone, so what only the value
  needed (the final ``np.mean``, a square only the mean read) is dead, and ``dce`` removes
  it; ``value_and_grad`` returns ``_out, f_pullback`` (option ``WITH_VALUE``);
- the adjoint of a reduction of all of ``v`` under a number seed, one number spread over
  ``v``'s shape, is that number wherever it is an operand of elementwise arithmetic that
  also has an operand of ``v``'s exact shape (which gives the result its shape); its array
  is made only for the reads left, if any. Under a pattern of argument shapes, where ``v``
  is a product ``a @ b`` the pattern proves valid, the matmul rules take the number too:
  ``rt.matmul_adjoint_x1_spread(c, a, b)`` is ``c`` times ``b``'s row sums, and the
  product itself is computed only if something else reads it.

    def f_vjp(x, y):                               def f_vjp(x, y):
        _t1 = x - y                                    _t1 = x - y
        _t2 = _t1 ** 2                     →
        _out = np.mean(_t2)

        def f_pullback(d_out):                         def f_pullback():
            d_t2 = rt.mean_adjoint(d_out, _out, _t2)
            d_t1 = d_t2 * 2 * _t1                          d_t1 = (1.0 / rt.count(_t1)) * 2 * _t1
            ...                                            ...
        return _out, f_pullback                        return f_pullback
"""

from __future__ import annotations

import libcst as cst
import numpy as np

from srcdiff.runtime import helpers, linalg, rules
from srcdiff.runtime.backend import numpy_twin

from ..analysis.values import (Facts, all_bindings, binding_counts, bound_names, map_statements,
                               number, reads, resolve, single_assignments, subexpressions, walk)
from ..context import Context
from .shapes import ELEMENTWISE, SCALAR, axes_of, shape_facts
from .simplify import simplify_line

__all__ = ["rewrite", "applied", "GRADIENT", "WITH_VALUE"]

GRADIENT = "gradient"  # the Context option that asks for this pass
WITH_VALUE = "with_value"  # with GRADIENT: value_and_grad, the value returned with the pullback

_REDUCTIONS = {np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod, np.linalg.norm}
# the factors stage's calls that are one number whatever their arguments (a sum of logs)
_NUMBER_CALLS = {linalg.cholesky_log_diagonal, helpers.squared_norm}
_METHODS = ("sum", "mean", "max", "min", "prod")
_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide)
_ELEMENTWISE_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power)


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    if GRADIENT not in ctx.options:
        return module
    vjp = module.body[-1]  # after the module-level links, if any
    parts = _parts(vjp)
    if parts is None:
        return module
    out, pullback, seed = parts
    original = pullback
    forward = {t: s.body[0].value for s in vjp.body.body if (t := _target(s)) is not None}
    single = single_assignments(vjp)
    facts = shape_facts(vjp, ctx) if ctx.dims else None
    proved = _scalar_products(forward, single, facts, ctx) | _log_determinants(vjp, facts, ctx) \
        | _items(vjp, facts, ctx) if facts is not None else set()
    if not (out in single and _real_scalar(forward[out], forward, single, ctx, set(), proved)) \
            and out not in _numbers(vjp, forward, single, ctx, proved):
        return module  # the API checks the value: keep it
    if seed not in reads(pullback.body):
        return module  # the output does not depend on wrt: the general path says so
    if any(type(n) is cst.Imaginary for n in subexpressions(vjp)):
        return module  # a complex number may make the value complex: the API checks it
    facts = facts if facts is not None else shape_facts(vjp, ctx)
    body = list(pullback.body.body)
    if seed in _counts(body):  # a running sum's adjoint, rebound in the loop: bound to 1.0 first
        body.insert(0, cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(cst.Name(seed))], cst.Float("1.0"))],
            trailing_whitespace=cst.TrailingWhitespace(
                whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment("# the seed"))))
    else:
        adjoints = _assigned(body)
        body = [_replaced(s, {seed: cst.Float("1.0")}, adjoints) for s in body]
    body = _constants(body, _assigned(body))
    scalars = _scalar_names(body, forward, single, ctx)
    # products a @ b whose shape the pattern proves (so a valid product, which no call of
    # this pattern can make raise: the fold below may leave it uncomputed)
    products = {t: (v.left.value, v.right.value) for t, v in forward.items()
                if ctx.dims and t in single and type(v) is cst.BinaryOperation and
                type(v.operator) is cst.MatrixMultiply and type(v.left) is cst.Name and
                type(v.right) is cst.Name and axes_of(facts[t]) is not None}
    body = _folded(_scalar_unbroadcasts(body, scalars, ctx), facts, ctx.rt, scalars, products,
                   _assigned(body), tuple(p for p in ctx.params if p not in ctx.containers))
    local = set(binding_counts(vjp)) | set(ctx.params)  # (not numpy's, whatever their names)
    body = map_statements(body, lambda line: _unit_product(line, ctx, local))
    pullback = pullback.with_changes(params=cst.Parameters([]),
                                     body=pullback.body.with_changes(body=body))
    final = vjp.body.body[-1]
    if WITH_VALUE not in ctx.options:  # grad: the value is not shown
        final = final.with_changes(body=[cst.Return(cst.Name(pullback.name.value))])
    statements = [pullback if s is original else s for s in vjp.body.body[:-1]]
    vjp = vjp.with_changes(body=vjp.body.with_changes(body=[*statements, final]))
    return module.with_changes(body=[*module.body[:-1], vjp])


_INEXACT = set("efdgFDGO")  # a ufunc loop's outputs: floats, complex numbers, objects


def _unit_product(line, ctx: Context, local: set):
    """``d = 1.0 * np.cos(x)`` (the seed 1.0 folded into a rule's product) as ``d =
    np.cos(x)``: a numpy ufunc none of whose loops makes integers or booleans gives a float
    (or complex) array, which ``1.0 *`` copies unchanged, dtype and values (NEP 50: a Python
    float keeps float32 float32). Kept where the other factor may be a mask or integers."""
    small = line.body[0] if len(line.body) == 1 else None
    if not (type(small) is cst.Assign and type(small.value) is cst.BinaryOperation and
            type(small.value.operator) is cst.Multiply):
        return line
    value = small.value
    for one, other in ((value.left, value.right), (value.right, value.left)):
        if number(one) == 1.0 and type(number(one)) is float and type(other) is cst.Call \
                and not other.lpar and all(a.keyword is None and not a.star for a in other.args):
            fn = resolve(other.func, ctx, local)
            if isinstance(fn, np.ufunc) and all(
                    set(t.split("->")[1]) <= _INEXACT for t in fn.types):
                return line.with_changes(body=[small.with_changes(value=other)])
    return line


def applied(module: cst.Module) -> bool:
    """Whether this pass changed the generated function: it returns its pullback, which takes
    no parameter, alone (``grad``) or after the value (``value_and_grad``)."""
    vjp = module.body[-1]
    final = vjp.body.body[-1]
    if not (type(final) is cst.SimpleStatementLine and type(final.body[0]) is cst.Return):
        return False
    value = final.body[0].value
    if type(value) is cst.Name:
        return True
    if not (type(value) is cst.Tuple and len(value.elements) == 2 and
            type(value.elements[1].value) is cst.Name):
        return False
    name = value.elements[1].value.value
    return any(type(stmt) is cst.FunctionDef and stmt.name.value == name and
               not stmt.params.params for stmt in vjp.body.body)


def _parts(vjp: cst.FunctionDef):
    """``(output name, the pullback's def, its seed parameter)`` of ``return _out, f_pullback``."""
    final = vjp.body.body[-1]
    if not (type(final) is cst.SimpleStatementLine and type(final.body[0]) is cst.Return):
        return None
    value = final.body[0].value
    if not (type(value) is cst.Tuple and len(value.elements) == 2 and
            all(type(e.value) is cst.Name for e in value.elements)):
        return None
    out, name = (e.value.value for e in value.elements)
    for stmt in vjp.body.body:
        if type(stmt) is cst.FunctionDef and stmt.name.value == name and \
                len(stmt.params.params) == 1:
            return out, stmt, stmt.params.params[0].name.value
    return None


def _target(stmt) -> str | None:
    """The name a top-level ``name = value`` line binds, else None."""
    if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.Assign and \
            len(stmt.body[0].targets) == 1 and isinstance(stmt.body[0].targets[0].target, cst.Name):
        return stmt.body[0].targets[0].target.value
    return None


def _scalar_products(forward: dict, single: set, facts: Facts, ctx: Context) -> set[str]:
    """The forward pass's names bound once to a product the shapes pass proves one number
    under the derivative's pattern: ``y @ alpha`` of two vectors, ``np.dot`` of them, a
    matrix's ``np.trace`` or ``np.linalg.det`` (a GP's or a quadratic form's loss)."""
    local = set(forward) | set(ctx.params)
    found = set()
    for name, value in forward.items():
        if name not in single or facts[name] != SCALAR:
            continue
        if type(value) is cst.BinaryOperation and type(value.operator) is cst.MatrixMultiply:
            found.add(name)
        elif type(value) is cst.Call and \
                resolve(value.func, ctx, local) in (np.dot, np.inner, np.vdot, np.trace,
                                                    np.linalg.det):
            found.add(name)
    return found


def _items(vjp, facts: Facts, ctx: Context) -> set[str]:
    """The names every binding of which is an item ``x[i]`` the shapes pass proves one
    number (an element of a vector under the pattern: a loop's ``(x[i] - mu) ** 2``), and
    the parameters the pattern takes to be numbers (``mu``: a real one, or the API refused
    the call)."""
    values = _bound_values(vjp)
    return {name for name, vs in values.items()
            if all(type(v) is cst.Subscript and facts.of(v) == SCALAR for v in vs)} | \
        {p for p in ctx.params if p not in values and facts.of(cst.Name(p)) == SCALAR}


# calls that give (sign, log |det|) of a matrix: two numbers where it is one square matrix
_SLOGDETS = (np.linalg.slogdet, linalg.slogdet_spd)


def _log_determinants(vjp, facts: Facts, ctx: Context) -> set[str]:
    """The names of ``sign, logdet = np.linalg.slogdet(K)`` (or ``rt.slogdet_spd``, the
    ``factors`` stage's), each bound once at the top level, where the pattern proves ``K`` one
    square matrix: two numbers (a GP likelihood's ``0.5 * logdet``)."""
    counts = binding_counts(vjp)
    local = set(counts) | set(ctx.params)
    found = set()
    for statement in vjp.body.body:
        if not (type(statement) is cst.SimpleStatementLine and
                type(statement.body[0]) is cst.Assign and
                len(statement.body[0].targets) == 1):
            continue
        assign = statement.body[0]
        target, value = assign.targets[0].target, assign.value
        if not (type(target) is cst.Tuple and len(target.elements) == 2 and
                all(type(e.value) is cst.Name and counts.get(e.value.value) == 1
                    for e in target.elements) and type(value) is cst.Call and value.args
                and value.args[0].keyword is None and not value.args[0].star):
            continue
        if not any(resolve(value.func, ctx, local) is f for f in _SLOGDETS):
            continue
        axes = axes_of(facts.of(value.args[0].value))
        if axes is not None and len(axes) == 2 and axes[0] == axes[1]:
            found |= {e.value.value for e in target.elements}
    return found


def _numbers(vjp, forward: dict, single: set, ctx: Context, proved=frozenset()) -> set[str]:
    """The forward pass's names every binding of which is one number where the others are:
    the greatest such set, so that a running sum bound in a loop (``total_3 = total_2 + _t5``,
    ``total_1 = total_3``, ``total_1 = total`` before the loop) or in both branches of an
    ``if`` counts. A name bound any other way (a loop or tuple target) is not one."""
    values = _bound_values(vjp)
    proved = set(proved)  # (parameters among them: bound by no statement)
    numbers = {n for n, vs in values.items() if all(v is not None for v in vs)} | proved
    local = set(values) | set(ctx.params)
    changed = True
    while changed:
        changed = False
        for name in sorted(numbers - proved):  # (a proved product is one by its shape)
            if not all(_real_scalar(v, forward, single, ctx, set(), numbers, local)
                       for v in values[name]):
                numbers.discard(name)
                changed = True
    return numbers


def _bound_values(vjp) -> dict[str, list]:
    """Each name's bound values (None: bound otherwise, a loop or tuple target), the
    pullback's too but not its tape loop's (``all_bindings``)."""
    values: dict[str, list] = {}
    for name, value, _ in all_bindings(vjp):
        values.setdefault(name, []).append(value)
    return values


def _real_scalar(expr, forward: dict, single: set, ctx: Context, seen: set,
                 numbers: frozenset | set = frozenset(), local: set | None = None) -> bool:
    """Whether ``expr`` is one number whatever the arguments: a reduction of everything, or
    arithmetic of those and literals (and of ``numbers``, names taken to hold one).
    ``local``: the function's own names (``h.sum()`` of one), where not only its top level's."""
    if number(expr) is not None:
        return True
    if type(expr) is cst.Name:
        name = expr.value
        if name in numbers:
            return True
        if name in seen or name not in single or name not in forward:
            return False
        return _real_scalar(forward[name], forward, single, ctx, seen | {name}, numbers, local)
    if type(expr) is cst.UnaryOperation:
        return type(expr.operator) in (cst.Minus, cst.Plus) and \
            _real_scalar(expr.expression, forward, single, ctx, seen, numbers, local)
    if type(expr) is cst.BinaryOperation:
        if type(expr.operator) is cst.Power:  # a whole power of a real number is one
            return type(number(expr.right)) is int and \
                _real_scalar(expr.left, forward, single, ctx, seen, numbers, local)
        return isinstance(expr.operator, _ARITHMETIC) and \
            _real_scalar(expr.left, forward, single, ctx, seen, numbers, local) and \
            _real_scalar(expr.right, forward, single, ctx, seen, numbers, local)
    if type(expr) is cst.Call:
        local = local or set(forward) | set(ctx.params)
        return _full_reduction(expr, ctx, local) or _count(expr, ctx, forward) or \
            _elementwise(expr, ctx, local) and _real_scalar(
                expr.args[0].value, forward, single, ctx, seen, numbers, local)
    if type(expr) is cst.Subscript:  # y.shape[0]: an int
        base = expr.value.value if type(expr.value) is cst.Name else None
        shape = forward.get(base) if base in single else None
        return type(shape) is cst.Attribute and shape.attr.value == "shape" and \
            len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Index and \
            number(expr.slice[0].slice.value) is not None
    if type(expr) is cst.Attribute:  # y.size, y.ndim: ints
        return expr.attr.value in ("size", "ndim") and type(expr.value) is cst.Name
    return False


def _elementwise(call: cst.Call, ctx: Context, local: set) -> bool:
    """``np.tanh(v)`` (one argument, a real function of it: a number's is a real number)."""
    return len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star \
        and resolve(call.func, ctx, local) in ELEMENTWISE


def _count(call: cst.Call, ctx: Context, forward: dict) -> bool:
    """``len(y)``, ``np.size(y)``, ``np.ndim(y)``: an int whatever ``y`` holds."""
    if len(call.args) != 1 or call.args[0].keyword is not None:
        return False
    fn = resolve(call.func, ctx, set(forward) | set(ctx.params))
    return fn is len or fn is np.size or fn is np.ndim


def _full_reduction(call: cst.Call, ctx: Context, local: set) -> bool:
    """``np.sum(v)`` (any whole-array reduction, one positional argument), ``v.sum()``, or a
    call of ``_NUMBER_CALLS``."""
    func = call.func
    if not call.args and type(func) is cst.Attribute and type(func.value) is cst.Name \
            and func.value.value in local and func.attr.value in _METHODS:
        return True
    fn = resolve(func, ctx, local)
    fn = numpy_twin(fn) or fn if fn is not None else None
    try:
        known = fn in _REDUCTIONS
        if fn in _NUMBER_CALLS:
            return True
    except TypeError:
        return False
    return known and len(call.args) == 1 and call.args[0].keyword is None and not call.args[0].star


# ----- numbers in the pullback -----


def _constants(body: list, adjoints: frozenset) -> list:
    """Names the pullback's top level binds once to a number, replaced by that number."""
    counts = _counts(body)
    while True:
        known = {}
        for stmt in body:
            name = _target(stmt)
            if name is not None and counts.get(name) == 1 and number(stmt.body[0].value) is not None:
                known[name] = stmt.body[0].value
        read = set().union(*(reads(s) for s in body if _target(s) not in known))
        used = set(known) & read
        if not used:
            return body
        body = [_replaced(s, {n: known[n] for n in used}, adjoints) for s in body]


def _assigned(body: list) -> frozenset:
    """The names the pullback's statements ``body`` assign (not loop targets: a loop over a
    tape binds primal values): adjoints, and the rules' results, all floats. A primal value
    (a mask ``m``) is none of them, so ``1.0 * m`` is not simplified to ``m``."""
    found = set()
    for stmt in walk(body):
        if type(stmt) is cst.SimpleStatementLine:
            for small in stmt.body:
                if type(small) is cst.Assign:
                    for target in small.targets:
                        found.update(bound_names(target.target))
                elif type(small) is cst.AugAssign:
                    found.update(bound_names(small.target))
    return frozenset(found)


def _counts(body: list) -> dict[str, int]:
    """How many times the pullback's statements ``body`` bind each name."""
    return binding_counts(cst.FunctionDef(cst.Name("_"), cst.Parameters(), cst.IndentedBlock(body)))


def _replaced(stmt, values: dict, adjoints: frozenset):
    """``stmt`` with its reads of the names in ``values`` replaced, and the arithmetic on
    numbers this makes folded (``1.0 * 0.5``, ``d * 1.0``; ``1.0 * m`` of a primal ``m``
    kept, see ``simplify_line``); the same object where it reads none of them (libcst's
    visitors are slow: most lines are not visited)."""
    if not reads(stmt).intersection(values):
        return stmt
    return map_statements([stmt.visit(_Replace(values))],
                          lambda line: simplify_line(line, adjoints))[0]


class _Replace(cst.CSTTransformer):
    """Reads of the given names replaced by expressions (assignment targets left alone)."""

    def __init__(self, values: dict):
        self.values = values

    def visit_AssignTarget(self, node) -> bool:
        return False

    def leave_Attribute(self, original, updated: cst.Attribute):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated: cst.Arg):
        return updated.with_changes(keyword=original.keyword)

    def leave_Name(self, original, updated: cst.Name):
        value = self.values.get(updated.value)
        if value is None:
            return updated
        if type(value) in (cst.UnaryOperation, cst.BinaryOperation) and not value.lpar:
            return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return value


# ----- names that hold one number: counts, whole reductions, arithmetic of those -----


def _scalar_names(body: list, forward: dict, single: set, ctx: Context) -> set[str]:
    """The names that provably hold one number: the forward pass's whole reductions and
    counts (``_t6 = y.shape[0]``) and arithmetic of those, and the pullback's top-level
    names bound once to arithmetic of numbers and those (``d_t4 = 1.0 / rt.guard(_t6, 1.0)``)."""
    scalars = {n for n in forward if n in single and
               _real_scalar(forward[n], forward, single, ctx, set())}
    counts = _counts(body)
    grown = True
    while grown:
        grown = False
        for stmt in body:
            name = _target(stmt)
            if name and name not in scalars and counts.get(name) == 1 and \
                    _scalar(stmt.body[0].value, scalars, ctx):
                scalars.add(name)
                grown = True
    return scalars


def _scalar(expr, scalars: set, ctx: Context) -> bool:
    """Whether ``expr`` is one number given the names ``scalars`` that are: numbers,
    ``+ - * / **`` of numbers, ``rt.guard(a, b)`` and ``rt.unbroadcast(a, b)`` of numbers."""
    if number(expr) is not None or type(expr) is cst.Name and expr.value in scalars:
        return True
    if type(expr) is cst.UnaryOperation:
        return type(expr.operator) in (cst.Minus, cst.Plus) and _scalar(expr.expression, scalars, ctx)
    if type(expr) is cst.BinaryOperation:
        return isinstance(expr.operator, _ELEMENTWISE_OPERATORS) and \
            _scalar(expr.left, scalars, ctx) and _scalar(expr.right, scalars, ctx)
    if type(expr) is cst.Call and len(expr.args) == 2 and \
            all(a.keyword is None and not a.star for a in expr.args):
        return resolve(expr.func, ctx, set()) in (helpers.guard, helpers.unbroadcast) and \
            all(_scalar(a.value, scalars, ctx) for a in expr.args)
    return False


def _scalar_unbroadcasts(body: list, scalars: set, ctx: Context) -> list:
    """``d = rt.unbroadcast(c, v)`` of a number ``c`` onto a number ``v`` is ``d = c``."""
    out = []
    for stmt in body:
        value = stmt.body[0].value if _target(stmt) is not None else None
        if type(value) is cst.Call and resolve(value.func, ctx, set()) is helpers.unbroadcast \
                and _scalar(value, scalars, ctx):
            stmt = stmt.with_changes(body=[stmt.body[0].with_changes(value=value.args[0].value)])
        out.append(stmt)
    return out


# ----- a spread number where the arithmetic around it has the shape -----


def _folded(body: list, facts: Facts, rt: str, scalars: set, products: dict,
            adjoints: frozenset, params: tuple = ()) -> list:
    """Each adjoint ``d = rt.sum_adjoint(c, v)`` / ``rt.mean_adjoint(c, ans, v)`` with a
    number ``c``, read as an operand of elementwise arithmetic with an operand of ``v``'s
    exact shape, replaced there by ``c`` (``c / rt.count(v)`` for a mean). A mean's spread
    left as an array is made as a sum's, ``rt.sum_adjoint(c / rt.count(v), v)``, which
    does not read the mean. Where ``v = a @ b`` (``products``: v -> (a, b)), the matmul
    rules given the spread take the number instead: ``rt.matmul_adjoint_x1_spread(c, a, b)``
    is ``c`` times ``b``'s row sums, no array of ``c``'s and no product with it."""
    spreads, sources = {}, {}
    counts = _counts(body)  # a spread bound once: every read of the name reads the spread
    for i, stmt in enumerate(body):
        name = _target(stmt)
        found = name and counts[name] == 1 and _spread(stmt.body[0].value, facts, scalars)
        if found:
            spreads[name] = found[:3]
            c, v, mean = found[0], found[3], found[2]
            sources[name] = v.value
            if mean:
                call = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("sum_adjoint")),
                                [cst.Arg(_mean_of(c, v, rt)), cst.Arg(v)])
                body[i] = stmt.with_changes(body=[stmt.body[0].with_changes(value=call)])
    if not spreads:
        return body
    transformer = _Fold(spreads, facts, rt, {n: (v, *products[v]) for n, v in sources.items()
                                             if v in products})  # then 2 * 1.0 * r: 2.0 * r
    # a mean's count, of a parameter of the spread's shape where there is one: the forward
    # pass then need not keep the reduced value for its size alone
    counted = {n: next((p for p in params if facts[p] == spreads[n][1]), v)
               for n, v in sources.items()}
    for stmt in body:  # d_t2 = d_t3 * 3.0 of a spread d_t3: the number 3.0 * c, spread too
        name = _target(stmt)
        if name and counts[name] == 1 and name not in spreads:
            derived = transformer.spread_of(stmt.body[0].value, scalars, counted)
            if derived is not None:
                spreads[name] = derived
    return [map_statements([s.visit(transformer)], lambda line: simplify_line(line, adjoints))[0]
            if _target(s) not in spreads and reads(s).intersection(spreads) else s for s in body]


def _mean_of(c, v, rt: str) -> cst.BinaryOperation:
    """``c / rt.count(v)``: the seed ``c`` of a mean, shared among ``v``'s elements."""
    count = cst.Call(cst.Attribute(cst.Name(rt), cst.Name("count")), [cst.Arg(v)])
    return cst.BinaryOperation(c, cst.Divide(), count)


def _spread(value, facts: Facts, scalars: set):
    """``(c, v, mean?)`` for ``rt.sum_adjoint(c, v)`` or ``rt.mean_adjoint(c, ans, v)``."""
    if type(value) is not cst.Call or any(a.keyword is not None or a.star for a in value.args):
        return None
    fn = facts.resolve(value.func)
    args = [a.value for a in value.args]
    if fn is rules.sum_adjoint and len(args) == 2:
        c, v, mean = args[0], args[1], False
    elif fn is rules.mean_adjoint and len(args) == 3:
        c, v, mean = args[0], args[2], True
    else:
        return None
    if not (number(c) is not None or type(c) is cst.Name and c.value in scalars) or \
            type(v) is not cst.Name:
        return None
    shape = facts[v.value]
    if shape is None or not shape.exact:
        return None
    return c, shape, mean, v


_SPREAD_MATMULS = {rules.matmul_adjoint_x1: "matmul_adjoint_x1_spread",
                   rules.matmul_adjoint_x2: "matmul_adjoint_x2_spread"}


class _Fold(cst.CSTTransformer):
    def __init__(self, spreads: dict, facts: Facts, rt: str, products: dict):
        self.spreads, self.facts, self.rt = spreads, facts, rt
        self.products = products  # a spread over a product -> (the product, its operands)

    def _matmul(self, original: cst.Call, updated: cst.Call):
        """``rt.matmul_adjoint_x1(d, a, b)`` → ``rt.matmul_adjoint_x1_spread(c, a, b)`` where
        ``d`` spreads the number ``c`` over ``a @ b``; else None."""
        args = original.args
        if len(args) != 3 or any(a.keyword is not None or a.star for a in args) or \
                not all(type(a.value) is cst.Name for a in args) or \
                type(updated.func) is not cst.Attribute:
            return None
        name = _SPREAD_MATMULS.get(self.facts.resolve(original.func))
        g, a, b = (arg.value.value for arg in args)
        product = self.products.get(g)
        if name is None or product is None or product[1:] != (a, b):
            return None
        c, _, mean = self.spreads[g]
        value = _mean_of(c, cst.Name(product[0]), self.rt) if mean else c
        return updated.with_changes(func=updated.func.with_changes(attr=cst.Name(name)),
                                    args=[cst.Arg(value), *updated.args[1:]])

    def spread_of(self, value, scalars: set, counted: dict):
        """``(c, shape, False)`` where ``value`` is elementwise arithmetic of spreads of one
        shape and numbers alone: one number ``c`` (the spreads' numbers in their place, a
        mean's shared out among the elements of ``counted[name]``) over that shape; else None."""
        if not self._elementwise(value):
            return None
        leaves = self._leaves(value, [])
        spread = [n.value for n in leaves if type(n) is cst.Name and n.value in self.spreads]
        if not spread or len({self.spreads[n][1] for n in spread}) != 1 or not all(
                number(n) is not None or type(n) is cst.Name and (
                    n.value in self.spreads or n.value in scalars) for n in leaves):
            return None
        replace = {}
        for n in spread:
            c, _, mean = self.spreads[n]
            if mean and n not in counted:
                return None  # (a mean's spread is shared out over a value of its shape)
            replace[n] = _mean_of(c, cst.Name(counted[n]), self.rt) if mean else c
        return _replace_leaves(value, replace, self), self.spreads[spread[0]][1], False

    def _elementwise(self, node) -> bool:
        if type(node) is cst.BinaryOperation:
            return isinstance(node.operator, _ELEMENTWISE_OPERATORS)
        if type(node) is cst.UnaryOperation:
            return type(node.operator) in (cst.Minus, cst.Plus)
        if type(node) is cst.Call and all(a.keyword is None and not a.star for a in node.args):
            fn = self.facts.resolve(node.func)
            return fn is helpers.guard or _unary(fn)
        return False

    def _leaves(self, node, found: list) -> list:
        """The operands of the elementwise arithmetic rooted at ``node``."""
        if self._elementwise(node):
            parts = [node.left, node.right] if type(node) is cst.BinaryOperation else \
                [node.expression] if type(node) is cst.UnaryOperation else [a.value for a in node.args]
            for part in parts:
                self._leaves(part, found)
        else:
            found.append(node)
        return found

    def on_leave(self, original, updated):
        if type(original) is cst.Call and self.products:
            folded = self._matmul(original, updated)
            if folded is not None:
                return folded
        if not isinstance(original, cst.BaseExpression) or not self._elementwise(original):
            return updated
        leaves = self._leaves(original, [])
        names = [n.value for n in leaves if type(n) is cst.Name]
        replace = {}
        for name in names:
            if name not in self.spreads:
                continue
            c, shape, mean = self.spreads[name]
            others = [n for n in names if n != name and n not in self.spreads and
                      self.facts[n] == shape]
            if not others:
                continue
            if mean:
                replace[name] = _mean_of(c, cst.Name(others[0]), self.rt)
            else:
                replace[name] = c
        if not replace:
            return updated
        return _replace_leaves(updated, replace, self)


def _unary(fn) -> bool:
    """Whether ``fn`` is an elementwise function of one operand (``np.tanh``, ``cupy.exp``)."""
    fn = numpy_twin(fn) or fn if fn is not None else None
    try:
        return fn in ELEMENTWISE
    except TypeError:
        return False


def _replace_leaves(node, replace: dict, fold: _Fold):
    """``node`` with the leaf names in ``replace`` replaced, only among its elementwise operands."""
    if fold._elementwise(node):
        if type(node) is cst.BinaryOperation:
            return node.with_changes(left=_replace_leaves(node.left, replace, fold),
                                     right=_replace_leaves(node.right, replace, fold))
        if type(node) is cst.UnaryOperation:
            return node.with_changes(expression=_replace_leaves(node.expression, replace, fold))
        return node.with_changes(args=[a.with_changes(value=_replace_leaves(a.value, replace, fold))
                                       for a in node.args])
    if type(node) is cst.Name and node.value in replace:
        value = replace[node.value]
        if type(value) in (cst.UnaryOperation, cst.BinaryOperation):
            return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return value
    return node
