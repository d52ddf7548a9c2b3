"""The harness of the adjoint-rule case tables: tests/runtime/test_rules.py, test_rules_more.py,
test_shaping.py, test_linalg.py, test_scipy_rules.py, and tests/test_duck_array.py on
test_rules.py's table. A table file holds its cases and one-line tests that call the checks
below.

A case is a primitive, its operands and its options. An operand is ``F`` (a Python float), a
shape (a random float64 array), ``U(shape, lo, hi)`` (drawn from an interval), a literal
array, ``Seq(...)`` (a list of operands that is one operand, with one adjoint each;
``kind=tuple`` for a tuple, as scipy.linalg.cho_solve's ``(c, lower)``) or ``Const(value)``
(no adjoint: a condition, a key, subscripts). ``dom`` is the interval of the operands drawn
at random; ``call`` says how to call the primitive where it is not
``fn(*operands, **options)`` (scipy's ``polygamma(n, x)``).

A primitive with several results (a tuple: scipy.linalg.cho_factor's ``(c, lower)``) gets a
cotangent for each floating result and ``None`` for the others; the oracle then
differentiates ``sum_i <g_i, result_i>``.

The checks, one parametrized test each:

- ``check_case_by_finite_differences(case)``: the rule's adjoints against the oracle
  (float64); an operand that is a ``Const`` gets none;
- ``check_float32(case)``: float32 operands get float32 adjoints, with float64's values;
- ``check_on_duck_arrays(case)``: on the duck array (tests/duckarray.py) the rule makes
  nothing on the host and gives numpy's adjoints; ``cotangent=`` a number (grad's seed), its
  numpy adjoints checked against finite differences first.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

from srcdiff.runtime import RULES, helpers, rule_for, shaping
from srcdiff.testing import check_vjp
from tests.duckarray import HOST_SYNCS, DuckArray, on_device, wrap

F = "float"  # a Python float operand
POS, UNIT = (0.5, 2.0), (-0.9, 0.9)

# the shapes the elementwise and reduction tables draw their operands in
UNARY_SHAPES = (F, (), (3,), (2, 3))
BINARY_SHAPES = ((F, F), ((), ()), ((3,), (3,)), ((3, 1), (4,)), ((2, 3), ()), ((2, 3), F),
                 (F, (2, 3)))
REDUCTION_OPTIONS = [((3, 4), {}), ((3, 4), {"axis": 0}), ((3, 4), {"axis": -1, "keepdims": True}),
                     ((2, 3, 4), {"axis": (0, 2)}),
                     ((2, 3, 4), {"axis": (-1, 0), "keepdims": True}),
                     ((3, 4), {"keepdims": True}), ((3,), {}), ((), {}), (F, {})]


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
    kind: type = list

    def __init__(self, *specs, kind=list):
        object.__setattr__(self, "specs", specs)
        object.__setattr__(self, "kind", kind)


@dataclass
class Case:
    fn: object
    operands: tuple
    options: dict = field(default_factory=dict)
    dom: tuple | None = None
    call: Callable | None = None


def name(fn):
    """``np.exp``, ``math.exp``, ``operator.getitem``: a primitive as test ids spell it."""
    module = getattr(fn, "__module__", None) or ("np" if isinstance(fn, np.ufunc) else "")
    module = {"numpy": "np", "_operator": "operator", "builtins": ""}.get(module, module)
    module = "np" if module.startswith("numpy") else module
    return f"{module}.{fn.__name__}".lstrip(".")


def case(fn, *operands, dom=None, **options):
    """A case as a pytest parameter, with an id that spells the primitive, its operands and
    its options."""
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
    label = f"{name(fn)}-{'-'.join(map(show, operands))}" + (f"-{opts}" if opts else "")
    return pytest.param(Case(fn, operands, options, dom), id=label.replace(" ", ""))


def named(param, label):
    """A case with a label of its own (an array option would spell out its values)."""
    return pytest.param(*param.values, id=label)


# ----- running a case -----


def primal(case):
    """How to call the primitive with the case's options (getitem's key is an option)."""
    if case.call is not None:
        return case.call
    return _PRIMALS.get(case.fn, case.fn)


def _getitem(x, key):
    return x[key]


def _setitem(x, value, key):
    return helpers.setitem(x, key, value)


def _full(fill_value, shape, **options):  # the shape is an option, so it comes second
    return np.full(shape, fill_value, **options)


def _average(a, weights, **options):  # weights is the rule's second operand, numpy's third
    return np.average(a, weights=weights, **options)


def _added_at(a, b, indices):
    return shaping.added_at(a, indices, b)


def _bincount(weights, x, minlength=0):  # (numpy's x is positional only)
    return np.bincount(x, weights, minlength)


_PRIMALS = {operator.getitem: _getitem, helpers.setitem: _setitem, np.full: _full,
            np.average: _average, shaping.added_at: _added_at, np.bincount: _bincount}


def setup(case, dtype=None):
    """The case's arguments (drawn with a fixed seed; float64 arrays cast to ``dtype``), the
    primitive's result and a random cotangent of it."""
    rng = np.random.default_rng(0)
    args = [_draw(spec, rng, case.dom) for spec in case.operands]
    if dtype is not None:
        args = [_cast(a, spec, dtype) for a, spec in zip(args, case.operands)]
    ans = primal(case)(*args, **case.options)
    return args, ans, _cotangent(ans, rng)


def arguments(case):
    """The case's arguments as ``setup`` draws them, without calling the primitive (forward
    mode's table, tests/test_tangent_rules.py, calls it through srcdiff.jvp)."""
    rng = np.random.default_rng(0)
    return [_draw(spec, rng, case.dom) for spec in case.operands]


def _draw(spec, rng, dom):
    if isinstance(spec, Const):
        return spec.value
    if isinstance(spec, Seq):
        return spec.kind(_draw(s, rng, dom) for s in spec.specs)
    if isinstance(spec, np.ndarray):
        return spec.copy()
    if isinstance(spec, U):
        spec, dom = spec.shape, (spec.lo, spec.hi)
    shape = () if spec == F else spec
    x = rng.standard_normal(shape) if dom is None else rng.uniform(*dom, size=shape)
    return float(x) if spec == F else x


def _cast(arg, spec, dtype):
    if isinstance(spec, Seq):
        return spec.kind(_cast(a, s, dtype) for a, s in zip(arg, spec.specs))
    if isinstance(arg, np.ndarray) and arg.dtype == np.float64:
        return arg.astype(dtype)
    return arg


def _cotangent(ans, rng):
    if isinstance(ans, tuple):  # several results: a cotangent for each floating one
        return tuple(_cotangent(r, rng) if np.issubdtype(np.result_type(r), np.floating)
                     else None for r in ans)
    g = rng.standard_normal(np.shape(ans))
    if not isinstance(ans, np.ndarray):  # a scalar output gets a scalar adjoint
        return float(g) if isinstance(ans, float) else np.asarray(g, np.result_type(ans))[()]
    return g.astype(ans.dtype)


def run_rule(case, args, g, ans, options=None):
    """The rule's adjoints, one per operand (a tuple even for one)."""
    rule = rule_for(case.fn)
    assert rule is not None, f"no rule for {case.fn}"
    assert len(rule.operands) == len(case.operands)
    options = case.options if options is None else options
    grads = rule.call(g, *([ans] if rule.takes_ans else []), *args, **options)
    return grads if len(rule.operands) > 1 else (grads,)


def flatten(case, args, grads):
    """Flat lists of (argument, adjoint, differentiable?) with Seq operands spread out."""
    flat = []
    for spec, arg, grad in zip(case.operands, args, grads):
        if isinstance(spec, Seq):
            assert isinstance(grad, tuple) and len(grad) == len(arg)
            flat += [(a, d, not isinstance(s, Const)) for s, a, d in zip(spec.specs, arg, grad)]
        else:
            flat.append((arg, grad, not isinstance(spec, Const)))
    return flat


def unflatten(case, flat):
    flat, args = list(flat), []
    for spec in case.operands:
        n = len(spec.specs) if isinstance(spec, Seq) else 1
        args.append(spec.kind(flat[:n]) if isinstance(spec, Seq) else flat[0])
        flat = flat[n:]
    return args


# ----- choosing cases -----


def has_array(spec):
    """Whether an operand is (or holds) an array, which float32 can be about."""
    if isinstance(spec, Seq):
        return any(map(has_array, spec.specs))
    if isinstance(spec, U):
        spec = spec.shape
    return not isinstance(spec, (Const, str))


def float32_cases(cases):
    """The cases with an array operand."""
    return [c for c in cases if any(map(has_array, c.values[0].operands))]


def scalar_output_cases(cases):
    """The cases whose primitive gives one number (a 0-d array, a numpy scalar, a float):
    there a number is a complete cotangent, as grad's seed 1.0 is. (A number never reaches a
    rule of an array output: seed folds a spread number only into inline arithmetic, and vjp
    makes a number cotangent of a device output into a device array.)"""
    return [c for c in cases if one_number_out(c.values[0])]


def one_number_out(case):
    """Whether the case's primitive gives one number (see ``scalar_output_cases``)."""
    with warnings.catch_warnings():  # what a primitive warns of is its tests' business
        warnings.simplefilter("ignore")
        ans = setup(case)[1]
    return not isinstance(ans, tuple) and np.ndim(ans) == 0


def rules_without_a_case(cases, modules, covered=()):
    """The names of the rules defined in ``modules`` whose primitive no case (nor
    ``covered``) has."""
    fns = {c.values[0].fn for c in cases} | set(covered)
    names = {m.__name__ for m in modules}
    return [name(fn) for fn, rule in RULES.items()
            if rule.raw.__module__ in names and fn not in fns]


# ----- the checks -----


def check_case_by_finite_differences(case, cotangent=None):
    """The rule's adjoints for the table's cotangent (or ``cotangent``) match the oracle's;
    an operand that is a constant gets ``None``."""
    args, ans, g = setup(case)
    g = g if cotangent is None else cotangent
    _check_against_the_oracle(case, flatten(case, args, run_rule(case, args, g, ans)), g)


def _check_against_the_oracle(case, flat, g):
    for _, grad, active in flat:
        if not active:
            assert grad is None, "an operand that is a constant (a condition, key, index, " \
                                 "subscripts) has no adjoint"
    argnums = [i for i, (_, _, active) in enumerate(flat) if active]
    call = primal(case)
    if isinstance(g, tuple):  # several results: sum_i <g_i, result_i>, one number
        def f(*xs):
            results = call(*unflatten(case, xs), **case.options)
            return sum(np.sum(gi * r) for gi, r in zip(g, results) if gi is not None)
        cotangent = None
    else:
        def f(*xs):
            return call(*unflatten(case, xs), **case.options)
        cotangent = g
    check_vjp(f, [a for a, _, _ in flat], [flat[i][1] for i in argnums], cotangent=cotangent,
              argnums=argnums)


def check_float32(case, rtol=2e-4, atol=2e-5, even_where_promoted=True):
    """float32 operands get float32 adjoints of their shapes, with the values of float64's;
    ``even_where_promoted=False``: a float32 adjoint only where numpy's result is float32 (an
    operand that meets a Python float in ``np.asarray([1.0, x])`` or ``np.dot(1.0, x)`` gets
    the float64 of the result)."""
    args, ans, g = setup(case, np.float32)
    float32_out = even_where_promoted or np.result_type(ans) == np.float32
    args64, ans64, g64 = setup(case)
    flat = flatten(case, args, run_rule(case, args, g, ans))
    flat64 = flatten(case, args64, run_rule(case, args64, g64, ans64))
    for (arg, grad, active), (_, grad64, _) in zip(flat, flat64):
        if not active or grad is None:
            continue
        assert np.shape(grad) == np.shape(arg)
        if isinstance(arg, np.ndarray) and arg.dtype == np.float32 and float32_out:
            assert grad.dtype == np.float32, f"float32 operand got a {grad.dtype} adjoint"
        np.testing.assert_allclose(grad, grad64, rtol=rtol, atol=atol)


def check_on_duck_arrays(case, cotangent=None, dtype=None, rtol=1e-12, atol=1e-14,
                         ans_from_host=False, number_adjoints=True):
    """The rule on the case's arguments made DuckArrays makes nothing on the host and gives
    numpy's adjoints, on the device where the operand is.

    ``cotangent``: a number (grad's seed) for a primitive of one number out, passed as it is;
    numpy's adjoints from it are checked against finite differences first (in float64). A
    0-d DuckArray operand may then get a host number (``number_adjoints=False``: a DuckArray
    only). ``dtype``: the case's arrays cast to it. ``ans_from_host``: the primitive has no
    device twin here (scipy's functions), so its result is numpy's moved to the device."""
    args, ans, g = setup(case, dtype)
    number = cotangent is not None
    if number:
        g = cotangent
    want = flatten(case, args, run_rule(case, args, g, ans))
    if number and dtype is None:
        _check_against_the_oracle(case, want, g)
    got = _run_on_device(case, args, ans, g, number, ans_from_host)
    for i, ((arg, grad, active), (_, expected, _)) in enumerate(zip(got, want)):
        what = f"operand {i}"
        if not active or expected is None:
            assert grad is None or not active, f"{what}: an adjoint where numpy gives None"
            continue
        if number:
            _check_number_adjoint(arg, grad, expected, what, rtol, atol, number_adjoints)
        else:
            _check_adjoint(arg, grad, expected, what, rtol, atol)


def _run_on_device(case, args, ans, g, number, ans_from_host):
    duck_args = [_device_arg(a) for a in args]
    options = {k: _device_option(k, v) for k, v in case.options.items()}
    if ans_from_host:
        duck_ans = _device_result(ans)
    else:
        duck_ans = on_device(primal(case), case.fn)(*duck_args, **options)
    if not number:  # the table's cotangent, on the device where the result is
        g = _like(g, duck_ans)
    HOST_SYNCS.reset()
    got = run_rule(case, duck_args, g, duck_ans, options)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    return flatten(case, duck_args, got)


def _device_arg(value):
    """An operand on the "device": arrays (conditions and masks too) as DuckArrays, lists
    and tuples element by element; floats, strings and None unchanged."""
    if isinstance(value, (list, tuple)):
        return type(value)(_device_arg(v) for v in value)
    return wrap(value)


def _device_option(key, value):
    # arrays go to the device (a boolean mask key, weights=, prepend=, indices=, b=); an
    # integer index key may stay on the host, which CuPy accepts for indexing (and so does
    # the double)
    if isinstance(value, np.ndarray) and not (key == "key" and value.dtype != bool):
        return wrap(value)
    return value


def _device_result(value):
    """numpy's result as the device library would give it: arrays and numpy scalars (0-d
    arrays there) on the device."""
    if isinstance(value, tuple):
        return tuple(_device_result(v) for v in value)
    return wrap(np.asarray(value)) if isinstance(value, (np.ndarray, np.generic)) else value


def _like(g, ans):
    if isinstance(g, tuple):
        return tuple(_like(gi, a) for gi, a in zip(g, ans))
    return wrap(np.asarray(g)) if type(ans) is DuckArray else g


def _check_adjoint(arg, grad, want, what, rtol, atol):
    if type(arg) is DuckArray:
        assert type(grad) is DuckArray, f"{what}: a {type(grad).__name__} adjoint for a DuckArray"
        assert grad.shape == arg.shape, what
    else:
        assert type(grad) is not DuckArray or grad.shape == (), f"{what}: a DuckArray adjoint " \
                                                                f"for a {type(arg).__name__}"
    values = grad.get() if type(grad) is DuckArray else grad
    np.testing.assert_allclose(values, want, rtol=rtol, atol=atol, err_msg=what)


def _check_number_adjoint(arg, grad, want, what, rtol, atol, number_adjoints):
    """The adjoint of an operand, from a number cotangent: for a DuckArray, a DuckArray of its
    shape and of numpy's dtype, or (for a 0-d one, where ``number_adjoints``) a host number,
    never a numpy array; for a Python float, a host value; either way numpy's values."""
    if type(arg) is DuckArray:
        assert type(grad) is not np.ndarray, f"{what}: a host numpy array for a DuckArray"
        if type(grad) is DuckArray:
            assert grad.shape == arg.shape, what
            assert grad.dtype == np.result_type(want), f"{what}: {grad.dtype}, numpy gives " \
                                                       f"{np.result_type(want)}"
        else:  # a number: a 0-d value every array library broadcasts
            assert number_adjoints and isinstance(grad, (float, int, np.generic)) and \
                arg.ndim == 0, f"{what}: a {type(grad).__name__} adjoint for a DuckArray of " \
                               f"shape {arg.shape}"
    else:
        assert type(grad) is not DuckArray or grad.shape == (), f"{what}: a DuckArray adjoint " \
                                                                f"for a {type(arg).__name__}"
    values = grad.get() if type(grad) is DuckArray else grad
    rtol = max(rtol, 1e-6) if np.result_type(want) == np.float32 else rtol
    np.testing.assert_allclose(values, want, rtol=rtol, atol=atol, err_msg=what)
