"""Every adjoint rule against the finite-difference oracle, over a table of cases.

A case is a primitive, its operands and its options. An operand is ``F`` (a
Python float), a shape (a random float64 array), ``U(shape, lo, hi)`` (drawn
from an interval), a literal array, ``Seq(...)`` (a list of arrays, one
operand) or ``Const(value)`` (no adjoint: a condition, a key, subscripts).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import operator
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pytest

from srcdiff import runtime
from srcdiff.runtime import RULES, creation, helpers, rule_for, rules
from srcdiff.testing import check_vjp

F = "float"  # a Python float operand
POS, UNIT = (0.5, 2.0), (-0.9, 0.9)


@dataclass(frozen=True)
class U:
    shape: object
    lo: float
    hi: float


@dataclass(frozen=True)
class Const:
    value: object


@dataclass(frozen=True)
class Seq:
    specs: tuple

    def __init__(self, *specs):
        object.__setattr__(self, "specs", specs)


@dataclass
class Case:
    fn: object
    operands: tuple
    options: dict = field(default_factory=dict)
    dom: tuple | None = None


def _name(fn):
    module = getattr(fn, "__module__", None) or ("np" if isinstance(fn, np.ufunc) else "")
    module = {"numpy": "np", "_operator": "operator", "builtins": ""}.get(module, module)
    module = "np" if module.startswith("numpy") else module
    return f"{module}.{fn.__name__}".lstrip(".")


def case(fn, *operands, dom=None, **options):
    def show(spec):
        if isinstance(spec, Const):
            return "const"
        if isinstance(spec, Seq):
            return "[" + ",".join(map(show, spec.specs)) + "]"
        if isinstance(spec, U):
            return show(spec.shape)
        if isinstance(spec, np.ndarray):
            return "lit" + str(spec.shape)
        return str(spec)

    opts = ",".join(f"{k}={v}" for k, v in options.items())
    label = f"{_name(fn)}-{'-'.join(map(show, operands))}" + (f"-{opts}" if opts else "")
    return pytest.param(Case(fn, operands, options, dom), id=label.replace(" ", ""))


UNARY_SHAPES = (F, (), (3,), (2, 3))
UNARY = [(np.negative, None), (np.exp, None), (np.expm1, None), (np.log, POS), (np.log1p, POS),
         (np.sqrt, POS), (np.square, None), (np.absolute, None), (np.sin, None), (np.cos, None),
         (np.tan, UNIT), (np.sinh, None), (np.cosh, None), (np.tanh, None), (np.arcsin, UNIT),
         (np.arccos, UNIT), (np.arctan, None), (builtins.abs, None), (operator.neg, None)]
MATH = [(math.exp, None), (math.expm1, None), (math.log, POS), (math.log1p, POS),
        (math.sqrt, POS), (math.fabs, None), (math.sin, None), (math.cos, None), (math.tan, UNIT),
        (math.sinh, None), (math.cosh, None), (math.tanh, None), (math.asin, UNIT),
        (math.acos, UNIT), (math.atan, None)]

BINARY_SHAPES = ((F, F), ((), ()), ((3,), (3,)), ((3, 1), (4,)), ((2, 3), ()), ((2, 3), F),
                 (F, (2, 3)))
BINARY = [(np.add, None), (np.subtract, None), (np.multiply, None), (np.true_divide, POS),
          (np.power, POS), (np.remainder, POS), (np.maximum, None), (np.minimum, None),
          (operator.add, None), (operator.sub, None), (operator.mul, None),
          (operator.truediv, POS), (operator.pow, POS), (operator.mod, POS)]

REDUCTIONS = [np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod, np.var, np.std]
REDUCTION_OPTIONS = [((3, 4), {}), ((3, 4), {"axis": 0}), ((3, 4), {"axis": -1, "keepdims": True}),
                     ((2, 3, 4), {"axis": (0, 2)}),
                     ((2, 3, 4), {"axis": (-1, 0), "keepdims": True}),
                     ((3, 4), {"keepdims": True}), ((3,), {}), ((), {}), (F, {})]

MATMUL_SHAPES = [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)),
                 ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)),
                 ((3,), (5, 3, 2)), ((5, 2, 3), (3,))]

MASK = np.array([[True, False, True], [False, False, True]])
ZEROS = np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [0.5, 1.5, 2.5]])

CASES = [
    *(case(fn, s, dom=d) for fn, d in UNARY for s in UNARY_SHAPES),
    *(case(fn, F, dom=d) for fn, d in MATH),
    *(case(fn, *ss, dom=d) for fn, d in BINARY for ss in BINARY_SHAPES),
    # ----- selection -----
    case(np.where, Const(MASK), (2, 3), (2, 3)),
    case(np.where, Const(MASK[0]), (2, 3), F),
    case(np.where, Const(MASK[:, :1]), (3,), ()),
    case(np.clip, (2, 3), U(F, -0.5, -0.3), U(F, 0.3, 0.5)),
    case(np.clip, (3,), U((2, 1), -1.0, -0.3), U((), 0.3, 1.0)),
    case(np.clip, (2, 3), Const(None), U((3,), 0.2, 0.4)),
    case(np.clip, F, U(F, -3.0, -2.0), Const(None)),
    # ----- constructors with a value (runtime/creation.py) -----
    case(np.full, F, shape=(2, 3)),
    case(np.full, (3,), shape=(2, 3)),
    case(np.full, (), shape=4),
    case(np.full_like, Const(np.ones((2, 3))), F),
    case(np.full_like, Const(np.ones((2, 3))), (2, 1)),
    case(np.full_like, Const(np.ones(3)), F, shape=(2, 2)),
    case(np.linspace, F, F, num=5),
    case(np.linspace, F, F, num=4, endpoint=False),
    case(np.linspace, F, F, num=1),
    case(np.linspace, (3,), (2, 3), num=4, axis=1),
    case(np.linspace, F, (2,), num=3, axis=-1),
    case(np.arange, U(F, 0.1, 0.2), U(F, 3.3, 3.4), U(F, 0.7, 0.75)),  # 5 samples throughout
    case(np.arange, U(F, -1.2, -1.1), U(F, 1.3, 1.4), Const(1)),
    case(np.arange, U(F, 3.2, 3.8), Const(None), Const(1)),  # np.arange(n): 0, 1, 2, 3
    case(np.array, Seq(F, F, F)),
    case(np.array, Seq((3,), (3,))),
    case(np.array, Seq((2,), (2,)), ndmin=3),
    case(np.array, (2, 3)),
    case(np.asarray, Seq(F, ())),
    case(np.asarray, (2, 3)),
    # ----- reductions -----
    *(case(fn, s, dom=(0.5, 1.5), **opts) for fn in REDUCTIONS for s, opts in REDUCTION_OPTIONS
      if not (fn is np.std and s in ((), F))),  # std of one number: no gradient
    case(np.var, (3, 4), axis=1, ddof=1),
    case(np.std, (2, 3, 4), axis=(0, 1), ddof=1, keepdims=True),
    case(np.prod, ZEROS, axis=1),  # rows with one zero, with two zeros, with none
    case(np.prod, ZEROS[[0, 2]]),  # one zero in all
    case(np.prod, ZEROS, axis=0, keepdims=True),
    # ----- shape -----
    case(np.reshape, (2, 3), shape=(3, 2)),
    case(np.reshape, (2, 3), shape=(6,), order="F"),
    case(np.reshape, F, shape=(1, 1)),
    case(np.ravel, (2, 3)),
    case(np.ravel, (2, 3), order="F"),
    case(np.ravel, ()),
    case(np.squeeze, (1, 3, 1)),
    case(np.squeeze, (1, 3, 1), axis=-1),
    case(np.squeeze, (1, 3, 1), axis=(0, 2)),
    case(np.expand_dims, (3,), axis=0),
    case(np.expand_dims, (2, 3), axis=(0, -1)),
    case(np.expand_dims, F, axis=0),
    case(np.transpose, (2, 3)),
    case(np.transpose, (2, 3, 4), axes=(1, 2, 0)),
    case(np.transpose, (2, 3, 4), axes=(-1, 0, 1)),
    case(np.swapaxes, (2, 3, 4), axis1=0, axis2=2),
    case(np.swapaxes, (2, 3, 4), axis1=-1, axis2=1),
    case(np.broadcast_to, (3,), shape=(2, 3)),
    case(np.broadcast_to, (3, 1), shape=(2, 3, 4)),
    *(case(np.copy, s) for s in ((), (3,), (2, 3), F)),
    case(np.copy, (2, 3), order="F"),
    case(np.broadcast_to, F, shape=(2,)),
    case(np.broadcast_to, (), shape=(3,)),
    case(np.concatenate, Seq((2, 3), (1, 3))),
    case(np.concatenate, Seq((2, 3), (2, 1), (2, 2)), axis=-1),
    case(np.concatenate, Seq((2, 2), (3,)), axis=None),
    case(np.stack, Seq((3,), (3,))),
    case(np.stack, Seq((2, 3), (2, 3), (2, 3)), axis=-1),
    case(np.stack, Seq(F, ())),
    # ----- linear algebra -----
    *(case(fn, *ss) for fn in (np.matmul, operator.matmul) for ss in MATMUL_SHAPES),
    case(np.dot, F, (3,)),
    case(np.dot, (2, 3), ()),
    case(np.dot, (3,), (3,)),
    case(np.dot, (2, 3), (3, 4)),
    case(np.dot, (3,), (3, 4)),
    case(np.dot, (2, 3), (3,)),
    case(np.dot, (2, 3, 4), (5, 4, 2)),
    case(np.dot, (2, 4), (3, 4, 5)),
    case(np.inner, F, (2, 3)),
    case(np.inner, (3,), (3,)),
    case(np.inner, (2, 3), (3,)),
    case(np.inner, (2, 3), (4, 3)),
    case(np.inner, (2, 2, 3), (4, 3)),
    case(np.outer, (3,), (4,)),
    case(np.outer, (2, 2), (3,)),
    case(np.outer, F, (3,)),
    case(np.trace, (3, 3)),
    case(np.trace, (3, 4), offset=1),
    case(np.trace, (3, 4), offset=-1),
    case(np.trace, (2, 3, 4), axis1=1, axis2=2),
    case(np.trace, (3, 2, 4), offset=1, axis1=-1, axis2=0),
    # ----- indexing -----
    case(helpers.setitem, (3, 4), (4,), key=1),  # a row, broadcast value
    case(helpers.setitem, (3, 4), (), key=(slice(None), 2)),
    case(helpers.setitem, (5,), (2,), key=slice(1, 3)),
    case(operator.getitem, (2, 3), key=1),
    case(operator.getitem, (4,), key=slice(1, 3)),
    case(operator.getitem, (3, 4), key=(slice(None), 1)),
    case(operator.getitem, (3, 4), key=(1, slice(1, None, 2))),
    case(operator.getitem, (3,), key=np.array([0, 2, 0, 0])),  # duplicates accumulate
    case(operator.getitem, (3, 4), key=([2, 0, 2], slice(None))),
    case(operator.getitem, (2, 3), key=MASK),
    case(operator.getitem, (2, 3), key=(Ellipsis, None, 1)),
]


# ----- drawing operands -----


def _primal(fn):
    """How to call the primitive with the case's options (getitem's key is an option)."""
    if fn is operator.getitem:
        return lambda x, key: x[key]
    if fn is helpers.setitem:
        return lambda x, value, key: helpers.setitem(x, key, value)
    if fn is np.full:  # the shape is an option, so it comes second
        return lambda fill_value, shape, **options: np.full(shape, fill_value, **options)
    return fn


def _draw(spec, rng, dom):
    if isinstance(spec, Const):
        return spec.value
    if isinstance(spec, Seq):
        return [_draw(s, rng, dom) for s in spec.specs]
    if isinstance(spec, np.ndarray):
        return spec.copy()
    if isinstance(spec, U):
        spec, dom = spec.shape, (spec.lo, spec.hi)
    shape = () if spec == F else spec
    x = rng.standard_normal(shape) if dom is None else rng.uniform(*dom, size=shape)
    return float(x) if spec == F else x


def _cotangent(ans, rng):
    g = rng.standard_normal(np.shape(ans))
    if not isinstance(ans, np.ndarray):  # a scalar output gets a scalar adjoint
        return float(g) if isinstance(ans, float) else np.asarray(g, np.result_type(ans))[()]
    return g.astype(ans.dtype)


def _flatten(case, args, grads):
    """Flat lists of (argument, adjoint, differentiable?) with Seq operands spread out."""
    flat = []
    for spec, arg, grad in zip(case.operands, args, grads):
        if isinstance(spec, Seq):
            assert isinstance(grad, tuple) and len(grad) == len(arg)
            flat += [(a, d, True) for a, d in zip(arg, grad)]
        else:
            flat.append((arg, grad, not isinstance(spec, Const)))
    return flat


def _unflatten(case, flat):
    flat, args = list(flat), []
    for spec in case.operands:
        n = len(spec.specs) if isinstance(spec, Seq) else 1
        args.append(flat[:n] if isinstance(spec, Seq) else flat[0])
        flat = flat[n:]
    return args


def _run_rule(case, args, g, ans):
    rule = rule_for(case.fn)
    assert rule is not None, f"no rule for {case.fn}"
    assert len(rule.operands) == len(case.operands)
    grads = rule.call(g, *([ans] if rule.takes_ans else []), *args, **case.options)
    return grads if len(rule.operands) > 1 else (grads,)


def _setup(case, dtype=None):
    rng = np.random.default_rng(0)
    args = [_draw(spec, rng, case.dom) for spec in case.operands]
    if dtype is not None:
        args = [_cast(a, spec, dtype) for a, spec in zip(args, case.operands)]
    ans = _primal(case.fn)(*args, **case.options)
    return args, ans, _cotangent(ans, rng)


def _cast(arg, spec, dtype):
    if isinstance(spec, Seq):
        return [_cast(a, s, dtype) for a, s in zip(arg, spec.specs)]
    if isinstance(arg, np.ndarray) and arg.dtype == np.float64:
        return arg.astype(dtype)
    return arg


# ----- the table against the oracle -----


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    args, ans, g = _setup(case)
    grads = _run_rule(case, args, g, ans)
    flat = _flatten(case, args, grads)
    for arg, grad, active in flat:
        if not active:
            assert grad is None, "an operand that is a condition, key or subscripts has no adjoint"
    argnums = [i for i, (_, _, active) in enumerate(flat) if active]
    check_vjp(lambda *xs: _primal(case.fn)(*_unflatten(case, xs), **case.options),
              [a for a, _, _ in flat], [flat[i][1] for i in argnums], cotangent=g, argnums=argnums)


def _has_array(spec):
    if isinstance(spec, Seq):
        return any(map(_has_array, spec.specs))
    if isinstance(spec, U):
        spec = spec.shape
    return not isinstance(spec, (Const, str))


@pytest.mark.parametrize("case", [c for c in CASES if any(map(_has_array, c.values[0].operands))])
def test_float32_in_float32_out(case):
    args, ans, g = _setup(case, np.float32)
    args64, ans64, g64 = _setup(case)
    flat = _flatten(case, args, _run_rule(case, args, g, ans))
    flat64 = _flatten(case, args64, _run_rule(case, args64, g64, ans64))
    for (arg, grad, active), (_, grad64, _) in zip(flat, flat64):
        if not active or grad is None:
            continue
        assert np.shape(grad) == np.shape(arg)
        if isinstance(arg, np.ndarray) and np.result_type(ans) == np.float32:
            assert grad.dtype == np.float32, f"float32 operand got a {grad.dtype} adjoint"
        np.testing.assert_allclose(grad, grad64, rtol=2e-4, atol=2e-5)


def test_every_rule_is_in_the_table():
    covered = {c.values[0].fn for c in CASES}
    own = [fn for fn, rule in RULES.items() if rule.raw.__module__ in (rules.__name__,
                                                                        creation.__name__)]
    covered |= DEDICATED  # rules whose output is a container have a test of their own
    missing = [_name(fn) for fn in own if fn not in covered]  # users' rules are theirs to test
    assert not missing, f"rules without a test case: {missing}"


# ----- ties, duplicates, masks -----


@pytest.mark.parametrize("fn", [np.max, np.amax, np.min, np.amin])
def test_reduction_ties_split_evenly(fn):
    x = np.array([[3.0, 1.0, 3.0, 3.0], [1.0, 1.0, 2.0, 2.0]])
    x = x if fn in (np.max, np.amax) else -x
    got = rule_for(fn).call(np.array([6.0, 1.0]), fn(x, axis=1), x, axis=1)
    np.testing.assert_allclose(got, [[2.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.5, 0.5]])
    whole = rule_for(fn).call(1.0, fn(x), x)
    np.testing.assert_allclose(whole, np.where(x == fn(x), 1.0 / 3.0, 0.0))


@pytest.mark.parametrize("fn, larger", [(np.maximum, True), (np.minimum, False)])
def test_elementwise_ties_split_evenly(fn, larger):
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])
    dx, dy = rule_for(fn).call(np.ones(3), x, y)
    np.testing.assert_allclose(dx, [0.5, 1.0, 0.0] if larger else [0.5, 0.0, 1.0])
    np.testing.assert_allclose(dy, [0.5, 0.0, 1.0] if larger else [0.5, 1.0, 0.0])


def test_getitem_duplicate_indices_accumulate():
    x = np.zeros(3, dtype=np.float32)
    dx = rule_for(operator.getitem).call(np.ones(4), x, key=np.array([0, 2, 0, 0]))
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, [3.0, 0.0, 1.0])


def test_getitem_boolean_mask():
    x = np.arange(6.0).reshape(2, 3)
    dx = rule_for(operator.getitem).call(np.array([10.0, 20.0, 30.0]), x, key=MASK)
    np.testing.assert_array_equal(dx, [[10.0, 0.0, 20.0], [0.0, 0.0, 30.0]])


def test_prod_gradient_with_zeros():
    x = np.array([2.0, 0.0, 3.0])
    np.testing.assert_array_equal(rule_for(np.prod).call(1.0, x), [0.0, 6.0, 0.0])
    np.testing.assert_array_equal(rule_for(np.prod).call(1.0, np.zeros(3)), [0.0, 0.0, 0.0])


# ----- conventions the compiler relies on -----


_ABSENT = object()


def _rules():
    return sorted({id(r.raw): r for r in RULES.values()}.values(), key=lambda r: r.name)


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.name)
def test_inlinable_body_names_only_parameters_numpy_and_runtime_functions(rule):
    body = ast.parse(textwrap.dedent(inspect.getsource(rule.raw))).body[0].body
    if len(body) != 1 or not isinstance(body[0], ast.Return):
        return  # called as rt.<name>, not inlined
    params = set(inspect.signature(rule.raw).parameters)
    inner = {id(n.value) for n in ast.walk(body[0]) if isinstance(n, ast.Attribute)}
    for node in ast.walk(body[0]):
        assert not isinstance(node, (ast.Lambda, ast.comprehension, ast.NamedExpr))
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            from srcdiff.templates import template_for  # a private helper: called, never inlined

            assert template_for(rule) is None, f"{rule.name} would inline {node.id!r}"
        elif isinstance(node, ast.Name):  # rt.<name> in generated code: what the runtime exports
            value = rule.raw.__globals__.get(node.id, _ABSENT)
            assert node.id in params or node.id == "np" or \
                getattr(runtime, node.id, _ABSENT) is value, \
                f"{rule.name} names {node.id!r}, which inlining cannot see"
        if isinstance(node, ast.Attribute) and id(node) not in inner:  # np.linalg.det, whole
            dotted = ast.unparse(node)
            if dotted.startswith("np."):
                obj = np
                for part in dotted.split(".")[1:]:
                    obj = getattr(obj, part)
                assert callable(obj), f"{dotted} is not a numpy function"


@pytest.mark.parametrize("rule", list(RULES.values()), ids=lambda r: _name(r.primitive))
def test_options_are_the_primitives_parameter_names(rule):
    try:
        params = (rule.signature or inspect.signature(rule.primitive)).parameters  # norm.pdf
    except (TypeError, ValueError):  # math.log: calls are bound by position only
        assert rule.options == (), f"{rule.name}: options need a primitive with a signature"
        return
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values()):
        assert set(rule.options) - set(rule.leading) <= set(params)  # np.einsum's subscripts
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # np.pad(x, 1, constant_values=0): any option may reach the primitive's **kwargs
    names = list(params)
    if rule.primitive in (operator.getitem, helpers.setitem):  # key spelled rt.at[...]
        assert rule.options == ("key",)
        return
    names = names[len(rule.leading):]  # scipy.special.ive(v, z): its order v, then the operand
    assert len(rule.operands) <= len(names)
    # as calls.py binds: an option by its name (np.full's shape, polygamma's n, both first), the
    # operands to the first parameters that are not options
    operands = [n for n in names if n not in rule.options][:len(rule.operands)]
    assert set(rule.options) - set(rule.leading) <= set(names) - set(operands), (
        f"{rule.name} options {rule.options} are not parameters of {_name(rule.primitive)}{names}")


DEDICATED = {helpers.append}


def test_append_rule_matches_finite_differences():
    rng = np.random.default_rng(0)
    xs, value = [rng.normal(size=2), rng.normal(size=3)], rng.normal(size=4)
    g = [rng.normal(size=2), rng.normal(size=3), rng.normal(size=4)]
    dxs, dvalue = rule_for(helpers.append).call(g, xs, value)
    assert isinstance(dxs, list) and len(dxs) == 2

    def weighted(a, b, v):  # <g, append([a, b], v)> as one scalar
        return sum(np.sum(gi * oi) for gi, oi in zip(g, helpers.append([a, b], v)))

    check_vjp(weighted, (*xs, value), (*dxs, dvalue))
