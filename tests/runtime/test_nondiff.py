"""Every entry of the non-differentiable tables, and why its result is a constant.

An entry is allowed only where its output cannot depend differentiably on a float argument:
it is a shape, dtype, count, index or boolean; it is piecewise constant (rounding, sign);
or it is made from shapes alone (``np.zeros_like(x)`` has the same values whatever ``x``
holds). Each row below calls the entry on values made from a float array ``x`` and the test
checks that the output does not move when ``x`` does (central differences would be zero),
at random points away from any step. Constructors that take a value (``np.full``,
``np.linspace``, ``np.arange``, ...) have adjoint rules instead: the last tests show them
differentiated.
"""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import nondiff
from srcdiff.runtime.nondiff import (NONDIFFERENTIABLE, NONDIFFERENTIABLE_ATTRIBUTES,
                                     NONDIFFERENTIABLE_METHODS)
from srcdiff.runtime.tangents import zero_tangent
from srcdiff.testing import check_grad

from tests.helpers import make_function

# entry -> (why its result is constant, a call of it on values made from x of shape (2, 3))

FUNCTIONS = {
    np.shape: ("a shape", lambda x: np.shape(x)),
    np.ndim: ("a count", lambda x: np.ndim(x)),
    np.size: ("a count", lambda x: np.size(x)),
    np.argmax: ("an index", lambda x: np.argmax(x, axis=1)),
    np.argmin: ("an index", lambda x: np.argmin(x)),
    np.argsort: ("indices", lambda x: np.argsort(x, axis=0)),
    np.argwhere: ("indices", lambda x: np.argwhere(x > 0)),
    np.nonzero: ("indices", lambda x: np.nonzero(x > 0)),
    np.flatnonzero: ("indices", lambda x: np.flatnonzero(x > 0)),
    np.searchsorted: ("indices", lambda x: np.searchsorted(np.sort(x[0]), x[1])),
    np.floor: ("piecewise constant", lambda x: np.floor(4 * x)),
    np.ceil: ("piecewise constant", lambda x: np.ceil(4 * x)),
    np.round: ("piecewise constant", lambda x: np.round(x, 1)),
    np.rint: ("piecewise constant", lambda x: np.rint(4 * x)),
    np.trunc: ("piecewise constant", lambda x: np.trunc(4 * x)),
    np.fix: ("piecewise constant", lambda x: np.fix(4 * x)),
    np.sign: ("piecewise constant", lambda x: np.sign(x)),
    np.floor_divide: ("piecewise constant", lambda x: np.floor_divide(4 * x, x[0] + 3.0)),
    np.greater: ("a boolean", lambda x: np.greater(x, 0.1)),
    np.greater_equal: ("a boolean", lambda x: np.greater_equal(x, x[0])),
    np.less: ("a boolean", lambda x: np.less(x, 0.1)),
    np.less_equal: ("a boolean", lambda x: np.less_equal(x[1], x[0])),
    np.equal: ("a boolean", lambda x: np.equal(x, x[0])),
    np.not_equal: ("a boolean", lambda x: np.not_equal(x, 0.5)),
    np.logical_and: ("a boolean", lambda x: np.logical_and(x > 0, x < 1)),
    np.logical_or: ("a boolean", lambda x: np.logical_or(x > 0, x < -1)),
    np.logical_not: ("a boolean", lambda x: np.logical_not(x > 0)),
    np.logical_xor: ("a boolean", lambda x: np.logical_xor(x > 0, x[0] > 0)),
    np.isnan: ("a boolean", lambda x: np.isnan(np.log(x))),
    np.isinf: ("a boolean", lambda x: np.isinf(1.0 / x)),
    np.isfinite: ("a boolean", lambda x: np.isfinite(x)),
    np.isclose: ("a boolean", lambda x: np.isclose(x, x[0])),
    np.allclose: ("a boolean", lambda x: np.allclose(x, x[::-1])),
    np.array_equal: ("a boolean", lambda x: np.array_equal(x, x[::-1])),
    np.all: ("a boolean", lambda x: np.all(x > 0, axis=0)),
    np.any: ("a boolean", lambda x: np.any(x > 0.5)),
    np.count_nonzero: ("a count", lambda x: np.count_nonzero(x > 0)),
    np.zeros: ("made from a shape", lambda x: np.zeros(x.shape)),
    np.ones: ("made from a shape", lambda x: np.ones(len(x))),
    np.empty: ("made from a shape (its values are never read)", lambda x: np.empty(0)),
    np.zeros_like: ("made from a shape", lambda x: np.zeros_like(x)),
    np.ones_like: ("made from a shape", lambda x: np.ones_like(x)),
    np.empty_like: ("made from a shape (its values are never read)",
                    lambda x: np.empty_like(x).shape),
    np.eye: ("made from a shape", lambda x: np.eye(x.shape[1], k=1)),
    np.identity: ("made from a shape", lambda x: np.identity(x.shape[0])),
    np.result_type: ("a dtype", lambda x: np.result_type(x, 1.0)),
    np.can_cast: ("a boolean", lambda x: np.can_cast(x.dtype, np.float32)),
    builtins.len: ("a count", lambda x: len(x)),
    builtins.any: ("a boolean", lambda x: any(v > 0.5 for v in x.ravel())),
    builtins.all: ("a boolean", lambda x: all(v > 0.5 for v in x.ravel())),
    builtins.range: ("integers", lambda x: list(range(len(x)))),
    builtins.print: ("None (printing is not a value)", lambda x: print(x, end="\r")),
    builtins.isinstance: ("a boolean", lambda x: isinstance(x[0, 0], float)),
    builtins.int: ("piecewise constant", lambda x: int(4 * x[0, 0])),
    builtins.bool: ("a boolean", lambda x: bool(x[0, 0] > 0)),
    builtins.round: ("piecewise constant", lambda x: round(float(x[0, 0]), 1)),
    math.floor: ("piecewise constant", lambda x: math.floor(4 * x[0, 0])),
    math.ceil: ("piecewise constant", lambda x: math.ceil(4 * x[0, 0])),
    math.trunc: ("piecewise constant", lambda x: math.trunc(4 * x[0, 0])),
    math.isnan: ("a boolean", lambda x: math.isnan(x[0, 0])),
    math.isinf: ("a boolean", lambda x: math.isinf(x[0, 0])),
    math.isfinite: ("a boolean", lambda x: math.isfinite(x[0, 0])),
    zero_tangent: ("made from a shape (forward mode's zero tangent)",
                   lambda x: zero_tangent(x)),
}
# srcdiff.stop_gradient is constant by the user's own request: it is the table's one entry
# whose value does move with its argument
REQUESTED = {nondiff.stop_gradient}

METHODS = {
    "argmax": lambda x: x.argmax(axis=0), "argmin": lambda x: x.argmin(),
    "argsort": lambda x: x.argsort(), "nonzero": lambda x: (x > 0).nonzero(),
    "round": lambda x: x.round(1), "all": lambda x: (x > 0).all(), "any": lambda x: (x > 0).any(),
}
ATTRIBUTES = {name: (lambda x, n=name: getattr(x, n)) for name in NONDIFFERENTIABLE_ATTRIBUTES}


def _unmoved(call) -> None:
    """``call``'s output is the same at random points ``x`` and ``x`` moved a little."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.uniform(0.1, 2.0, size=(2, 3))
        for step in (1e-7, -1e-7):
            moved = x + step * rng.standard_normal(x.shape)
            a, b = call(x), call(moved)
            assert type(a) is type(b)
            flat_a = a if isinstance(a, tuple) else (a,)
            flat_b = b if isinstance(b, tuple) else (b,)
            for u, v in zip(flat_a, flat_b):
                assert np.array_equal(np.asarray(u), np.asarray(v)), (u, v)
                assert np.asarray(u).dtype.kind != "f" or np.all(np.asarray(u) == np.asarray(v))


def test_every_entry_has_a_reason():
    entries = set(NONDIFFERENTIABLE)
    assert entries == set(FUNCTIONS) | REQUESTED, sorted(map(str, entries ^ (set(FUNCTIONS) | REQUESTED)))
    assert set(METHODS) == set(NONDIFFERENTIABLE_METHODS)


@pytest.mark.parametrize("fn", list(FUNCTIONS), ids=lambda f: getattr(f, "__name__", str(f)))
def test_a_table_function_does_not_move_with_its_float_arguments(fn):
    why, call = FUNCTIONS[fn]
    assert why
    _unmoved(call)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_table_method_does_not_move_with_the_array(name):
    _unmoved(METHODS[name])


@pytest.mark.parametrize("name", sorted(ATTRIBUTES))
def test_a_table_attribute_does_not_move_with_the_array(name):
    _unmoved(ATTRIBUTES[name])


@pytest.mark.parametrize("fn", [np.full, np.full_like, np.linspace, np.arange, np.array,
                                np.asarray])
def test_constructors_that_take_a_value_are_not_in_the_table(fn):
    assert fn not in NONDIFFERENTIABLE


CONSTRUCTED = {  # a function of (s, x): s a float, x of shape (3,)
    "full": "return np.sum(np.full(3, s) * x)",
    "full_shape": "return np.sum(np.full((2, 3), s) ** 2 * x)",
    "full_array": "return np.sum(np.full((2, 3), x * s) ** 2)",
    "full_like": "return np.sum(np.full_like(x, s) * x)",
    "full_like_array": "return np.sum(np.full_like(np.ones((2, 3)), x) * s)",
    "ones_like_times": "return np.sum(np.ones_like(x) * s * x)",
    "linspace": "return np.sum(np.linspace(0.0, s, 4) ** 2)",
    "linspace_both": "return np.sum(np.linspace(s, s * s, 5) * np.sin(s))",
    "linspace_rows": "return np.sum(np.linspace(x, 2.0 * x, 3, axis=1) ** 2) + s",
    "linspace_open": "return np.sum(np.linspace(s, 1.0, 4, endpoint=False) ** 3)",
    "arange": "return np.sum(np.arange(s, s + 3.0) * np.sin(s))",
    "arange_step": "return np.sum(np.arange(0.0, 2.9, s) ** 2)",
    "arange_stop": "return np.sum(np.arange(s + 3.5) * s)",
    "array": "return np.sum(np.array([s, s * s, 2.0]) * x)",
    "array_rows": "return np.sum(np.array([x, s * x]) ** 2)",
    "array_nested": "return np.sum(np.array([[s, 1.0], [2.0, s * s]]) @ x[:2])",
    "asarray": "return np.sum(np.asarray([s, 2.0 * s, 3.0]) * x)",
    "array_of_list": "xs = [s, np.sin(s), 1.0]\n    return np.sum(np.array(xs) * x)",
    "setitem_full": ("out = np.zeros((2, 3))\n    for i in range(2):\n"
                     "        out[i] += np.full(3, s * (i + 1.0))\n    return np.sum(out * x)"),
}


@pytest.mark.parametrize("s", [0.3, 0.7, 1.1])
@pytest.mark.parametrize("name", sorted(CONSTRUCTED))
def test_constructors_with_an_active_value_match_finite_differences(name, s):
    f = make_function(f"def f(s, x):\n    {CONSTRUCTED[name]}\n")
    x = np.array([0.4, -0.8, 1.3])
    check_grad(f, (s, x), srcdiff.grad(f, wrt=(0, 1))(s, x))
    value, (ds, dx) = srcdiff.value_and_grad(f, wrt=(0, 1))(s, x)
    assert value == f(s, x)
    check_grad(f, (s, x), (ds, dx))
