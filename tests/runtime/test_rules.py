"""Every adjoint rule against the finite-difference oracle, over a table of cases (the
operand specs and the checks: tests/runtime/rule_table.py)."""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import operator
import textwrap

import numpy as np
import pytest

from srcdiff import runtime
from srcdiff.runtime import RULES, creation, helpers, rule_for, rules
from srcdiff.testing import check_vjp
from tests.runtime.rule_table import (BINARY_SHAPES, F, POS, REDUCTION_OPTIONS, UNARY_SHAPES,
                                      UNIT, Const, Seq, U, case, check_case_by_finite_differences,
                                      check_float32, float32_cases, name, rules_without_a_case)

UNARY = [(np.negative, None), (np.exp, None), (np.expm1, None), (np.log, POS), (np.log1p, POS),
         (np.sqrt, POS), (np.square, None), (np.absolute, None), (np.sin, None), (np.cos, None),
         (np.tan, UNIT), (np.sinh, None), (np.cosh, None), (np.tanh, None), (np.arcsin, UNIT),
         (np.arccos, UNIT), (np.arctan, None), (builtins.abs, None), (operator.neg, None)]
MATH = [(math.exp, None), (math.expm1, None), (math.log, POS), (math.log1p, POS),
        (math.sqrt, POS), (math.fabs, None), (math.sin, None), (math.cos, None), (math.tan, UNIT),
        (math.sinh, None), (math.cosh, None), (math.tanh, None), (math.asin, UNIT),
        (math.acos, UNIT), (math.atan, None)]

BINARY = [(np.add, None), (np.subtract, None), (np.multiply, None), (np.true_divide, POS),
          (np.power, POS), (np.remainder, POS), (np.maximum, None), (np.minimum, None),
          (operator.add, None), (operator.sub, None), (operator.mul, None),
          (operator.truediv, POS), (operator.pow, POS), (operator.mod, POS)]

REDUCTIONS = [np.sum, np.mean, np.max, np.amax, np.min, np.amin, np.prod, np.var, np.std]

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
    case(np.clip, (2, 3), U((3,), 0.5, 0.6), U((2, 1), -0.6, 0.4)),  # a_min > a_max: a_max
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


# ----- the table against the oracle -----


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    check_case_by_finite_differences(case)


@pytest.mark.parametrize("case", float32_cases(CASES))
def test_float32_in_float32_out(case):
    check_float32(case, even_where_promoted=False)


def test_every_rule_is_in_the_table():
    # rules whose output is a container have a test of their own; users' rules are theirs
    missing = rules_without_a_case(CASES, (rules, creation), covered=DEDICATED)
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


@pytest.mark.parametrize("rule", list(RULES.values()), ids=lambda r: name(r.primitive))
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
        f"{rule.name} options {rule.options} are not parameters of {name(rule.primitive)}{names}")


DEDICATED = {helpers.append, helpers.where_positive, helpers.softmax, helpers.log_softmax,
             helpers.sigmoid, helpers.squared_norm}


@pytest.mark.parametrize("x, zero", [(np.array([[0.7, -0.4, 1.3], [-1.1, 0.2, -0.6]]), 0.0),
                                     (np.array([2.0, -0.5, 0.1]), 0), (1.5, 0.0), (-0.5, 0)])
def test_where_positive_rule_matches_finite_differences(x, zero):
    # only ever written for c = x > 0 and a literal zero (transforms/canonical.py): x alone
    # varies, the condition is computed from it
    g = np.cos(np.arange(np.size(x)) + 1.0).reshape(np.shape(x))
    rule = rule_for(helpers.where_positive)
    _, dx, _ = rule.call(g, x > 0, x, zero)
    check_vjp(lambda x: helpers.where_positive(x > 0, x, zero), (x,), (dx,), cotangent=g)


@pytest.mark.parametrize("shape, options", [((2, 3), {"axis": -1}), ((2, 3, 4), {"axis": 1}),
                                            ((3, 2), {"axis": 0, "shifted": False}),
                                            ((4,), {"axis": None}), ((), {"axis": None}),
                                            ((1, 5), {"axis": 0})])
@pytest.mark.parametrize("fn", [helpers.softmax, helpers.log_softmax])
def test_softmax_rule_matches_finite_differences(shape, options, fn):
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape) if shape else float(rng.normal())
    g = rng.normal(size=shape) if shape else float(rng.normal())
    ans = fn(x, **options)
    dx = rule_for(fn).call(g, ans, x, **options)
    check_vjp(lambda x: fn(x, **options), (x,), (dx,), cotangent=g)


@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3)])
def test_sigmoid_rule_matches_finite_differences(shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape) * 3.0 if shape else float(rng.normal())
    g = rng.normal(size=shape) if shape else float(rng.normal())
    ans = helpers.sigmoid(x)
    np.testing.assert_array_equal(ans, 1.0 / (1.0 + np.exp(-np.asarray(x))))  # the same operations
    check_vjp(helpers.sigmoid, (x,), (rule_for(helpers.sigmoid).call(g, ans, x),), cotangent=g)


@pytest.mark.parametrize("shape", [(), (1,), (5,), (2, 3), (2, 1, 3)])
def test_squared_norm_rule_matches_finite_differences(shape):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape) if shape else float(rng.normal())
    g = float(rng.normal())
    ans = helpers.squared_norm(x)
    assert ans == np.linalg.norm(x) ** 2  # the same operations
    check_vjp(helpers.squared_norm, (x,), (rule_for(helpers.squared_norm).call(g, x),),
              cotangent=g)


def test_append_rule_matches_finite_differences():
    rng = np.random.default_rng(0)
    xs, value = [rng.normal(size=2), rng.normal(size=3)], rng.normal(size=4)
    g = [rng.normal(size=2), rng.normal(size=3), rng.normal(size=4)]
    dxs, dvalue = rule_for(helpers.append).call(g, xs, value)
    assert isinstance(dxs, list) and len(dxs) == 2

    def weighted(a, b, v):  # <g, append([a, b], v)> as one scalar
        return sum(np.sum(gi * oi) for gi, oi in zip(g, helpers.append([a, b], v)))

    check_vjp(weighted, (*xs, value), (*dxs, dvalue))


def test_a_rule_whose_file_changed_since_import_is_called_not_inlined(monkeypatch):
    """Inlining reads a rule's source from its file (inspect); where that file changed after
    it was imported, the lines at the rule's old place are another function's: the template
    is refused and the rule is called, never another body inlined under its name."""
    from srcdiff import templates
    from srcdiff.runtime import rules, rule_for

    rule = rule_for(np.sin)
    assert templates.template_for(rule) is not None  # as imported: inlined
    other = inspect.getsource(rules.cos_adjoint)
    monkeypatch.setattr(templates.inspect, "getsource", lambda fn: other)
    assert templates.template_for.__wrapped__(rule) is None  # (template_for caches per rule)
