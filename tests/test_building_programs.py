"""End to end: the functions of runtime/building.py (append, insert, delete, block, resize,
compress, extract, diagflat, rollaxis, matrix_transpose, unstack, the conversions, logspace,
geomspace, the polynomials, i0, gradient, select) through grad, value_and_grad and vjp, on
several shapes (0-d arrays and Python floats where numpy takes them), float32, and on the
duck array; and what srcdiff refuses of them, at the user's line where the compiler can
tell."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff

from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_a_number, check_vjp_of_array_output, draw, shape_cases)
from .helpers import make_function

# name: (source, the arguments' shapes: one tuple per case); one number out
FUNCTIONS = {
    "append": ("""
        def f(x, y):
            return np.sum(np.append(x, y * 2.0) ** 3) + np.sum(np.append(y, x) * 0.5)
        """, [((3,), (2,)), ((2, 3), (3,)), (F, (2,)), ((), F)]),
    "append_axis": ("""
        def f(x, y):
            return np.sum(np.append(x, x * y, axis=-1) ** 3)
        """, [((2, 3), (2, 3)), ((2, 3), (3,))]),
    "insert": ("""
        def f(x, y):
            return np.sum(np.insert(x, 1, y) ** 3) + np.sum(np.insert(x, [0, 0], y * x[0]) ** 2)
        """, [((4,), F), ((4,), ()), ((5,), ())]),
    "insert_axis": ("""
        def f(x, y):
            return np.sum(np.insert(x, [2, 0], y, axis=1) ** 3)
        """, [((3, 4), (3, 2)), ((3, 4), (2,)), ((3, 4), ())]),
    "delete": ("""
        def f(x):
            return np.sum(np.delete(x, [0, 2], axis=0) ** 3) + np.sum(np.delete(x, 1) ** 2)
        """, [((4,),), ((3, 2),)]),
    "block": ("""
        def f(x, y):
            return np.sum(np.block([[x, y], [y, x]]) ** 3) + np.sum(np.block([x, 2.0 * y]) ** 2)
        """, [((2, 2), (2, 2)), ((3,), (3,))]),
    "resize": ("""
        def f(x):
            return np.sum(np.resize(x, (3, 4)) ** 3) + np.sum(np.resize(x * 2.0, 2) ** 2)
        """, [((5,),), ((2, 3),), (F,), ((),)]),
    "compress_extract": ("""
        def f(x, y):
            m = x > 0.0
            return np.sum(np.compress(m[0], x * y, axis=-1) ** 3) + np.sum(np.extract(m, y) ** 2)
        """, [((2, 4), (2, 4)), ((3, 3), (3, 3))]),
    "diagflat": ("""
        def f(x):
            return np.sum(np.diagflat(x) ** 3) + np.sum(np.diagflat(x, -1) * 2.0)
        """, [((3,),), ((2, 2),), (F,), ((),)]),
    "rollaxis_transpose": ("""
        def f(x):
            return np.sum(np.rollaxis(x, -1) ** 3 * np.rollaxis(x, -1, 0)) \\
                + np.sum(np.matrix_transpose(x)[..., 0] ** 3)
        """, [((2, 3),), ((2, 3, 4),)]),
    "unstack": ("""
        def f(x):
            a, b = np.unstack(x[:2], axis=0)
            parts = np.unstack(x, axis=-1)
            return np.sum(a ** 3 * b) + np.sum(np.sin(parts[-1]))
        """, [((2, 3),), ((3, 2, 2),)]),
    "conversions": ("""
        def f(x):
            return np.sum(np.asanyarray(x) ** 3) + np.sum(np.ascontiguousarray(x * 2.0) ** 2) \\
                + np.sum(np.asfortranarray(x, dtype=np.float64) ** 3) \\
                + np.sum(np.astype(x, np.float64) * x) + np.sum(np.real_if_close(x) ** 3)
        """, [((2, 3),), ((3,),), ((),)]),
    "conversions_of_lists": ("""
        def f(a, b):
            return np.sum(np.asanyarray([a, b * a]) ** 3)
        """, [(F, F), ((2,), (2,))]),
    "logspace": ("""
        def f(a, b):
            return np.sum(np.logspace(a, b, 5) ** 0.5) + np.sum(np.logspace(a, 1.0, 4, base=2.0) ** 2)
        """, [(F, F), ((), ()), ((3,), F)]),
    "geomspace": ("""
        def f(a, b):
            return np.sum(np.geomspace(a * a + 1.0, b * b + 2.0, 4) ** 2) \\
                + np.sum(np.geomspace(a * a + 1.0, 3.0, 3, endpoint=False))
        """, [(F, F), ((), ()), ((2,), (2,))]),
    "polynomials": ("""
        def f(p, q):
            s = np.polyadd(p, q) * np.polysub(q, p)
            return np.sum(np.polymul(p, s) ** 2) + np.sum(np.polyder(s, 2) ** 3) \\
                + np.sum(np.polyint(p, 2) ** 3)
        """, [((3,), (3,)), ((4,), (2,))]),
    "polyval": ("""
        def f(p, x):
            return np.sum(np.polyval(p, x) ** 2) + np.sum(np.polyval([p[0], 2.0, p[-1]], x))
        """, [((3,), (4,)), ((4,), F), ((2,), (2, 3)), ((3,), ())]),
    "vander": ("""
        def f(x):
            return np.sum(np.vander(x) ** 2) + np.sum(np.vander(x, 3, increasing=True) * 2.0)
        """, [((3,),), ((5,),)]),
    "polyfit": ("""
        def f(y):
            c = np.polyfit(np.linspace(-1.0, 2.0, 6), y, 2)
            return np.sum(c ** 2) + np.sum(np.polyfit(np.arange(6.0), y, 1, w=np.ones(6) * 2.0))
        """, [((6,),), ((6, 2),)]),
    "i0": ("""
        def f(x):
            return np.sum(np.i0(x) * x) + np.sum(np.i0(x * 5.0))
        """, [((4,),), ((2, 3),), (F,), ((),)]),
    "gradient": ("""
        def f(x, h):
            return np.sum(np.gradient(x, axis=-1) ** 3) + np.sum(np.gradient(x, h, axis=0) ** 2) \\
                + np.sum(np.gradient(x, 0.5, axis=0, edge_order=2) ** 3)
        """, [((4,), F), ((3, 4), F), ((5, 3), ())]),
    "select": ("""
        def f(x, y):
            return np.sum(np.select([x > 0.5, x < -0.5], [x ** 2, y * x], -y) ** 3) \\
                + np.sum(np.select([x > 0.0], [y]))
        """, [((5,), (5,)), ((2, 3), (3,)), ((2, 3), F)]),
}

CASES = shape_cases((name, all_shapes) for name, (_, all_shapes) in FUNCTIONS.items())
# positive operands for the logarithms
DOMAINS = {"logspace": None, "geomspace": None}


def _setup(name, shapes, seed=0):
    return make_function(FUNCTIONS[name][0], "f"), draw(shapes, seed)


@pytest.mark.parametrize("name, shapes", CASES)
def test_grad_matches_finite_differences(name, shapes):
    check_grad_by_finite_differences(*_setup(name, shapes))


@pytest.mark.parametrize("name, shapes", CASES)
def test_value_and_grad(name, shapes):
    check_value_and_grad(*_setup(name, shapes, seed=1))


@pytest.mark.parametrize("name, shapes", CASES)
def test_vjp_of_the_number(name, shapes):
    check_vjp_of_a_number(*_setup(name, shapes, seed=2))


@pytest.mark.parametrize("name, shapes", CASES)
def test_float32_in_float32_out(name, shapes):
    check_float32_gradients(*_setup(name, shapes))


# numpy's asanyarray and its kin do not dispatch to another array library (CuPy has its own);
# polyfit's x here is a host array (tests/runtime/test_building.py runs its rule on the device)
DUCK_CASES = [c for c in CASES if F not in c.values[1] and
              c.values[0] not in ("conversions", "conversions_of_lists", "polyfit")]


@pytest.mark.parametrize("name, shapes", DUCK_CASES)
def test_gradients_on_duck_arrays(name, shapes):
    check_gradients_on_duck_arrays(*_setup(name, shapes), rtol=1e-11)


# ----- vjp of array outputs -----

ARRAY_OUTPUTS = {
    "append_insert": "def f(x, y):\n    return np.insert(np.append(x, y[0]), 2, x[0, 0] * y[1]) * 2.0\n",
    "block_delete": "def f(x, y):\n    return np.delete(np.block([[x, y], [y, x]]), 1, axis=0) ** 2\n",
    "poly": "def f(x, y):\n    return np.polyval(np.polymul(x[0], y[0]), x) + np.vander(y[1], 3)\n",
    "gradient_select": ("def f(x, y):\n"
                        "    return np.gradient(np.select([x > 0.0], [x * y], y), axis=1)\n"),
    "unstack_rollaxis": ("def f(x, y):\n"
                         "    a, b, c = np.unstack(np.rollaxis(x[..., None] * y, 2, 1))\n"
                         "    return a * b + c\n"),
}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
def test_vjp_of_array_outputs(name):
    rng = np.random.default_rng(2)
    args = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    check_vjp_of_array_output(make_function(ARRAY_OUTPUTS[name], "f"), args, rng, rtol=1e-11)


# ----- what srcdiff refuses -----

REFUSED_AT_THE_LINE = {
    "polyfit of a differentiated x": (
        "c = np.polyfit(x, y, 1)", "with respect to 'x'"),
    "polyfit's weights": (
        "c = np.polyfit(np.arange(3.0), y, 1, w=x)", "argument w="),
    "polyfit with full=True": (
        "c = np.polyfit(np.arange(3.0), y, 1, full=True)[0]", "full=True"),
    "polyfit with cov=True": (
        "c = np.polyfit(np.arange(3.0), y, 1, cov=True)[0]", "cov=True"),
    "a differentiated logspace base": (
        "c = np.logspace(y[0], 1.0, 3, base=x[0])", "argument base="),
    "polyint's constants": (
        "c = np.polyint(y, k=x[0])", "argument k="),
    "gradient of edge order 3": (
        "c = np.gradient(y, axis=0, edge_order=3)", "edge_order=3"),
}


@pytest.mark.parametrize("line, message", REFUSED_AT_THE_LINE.values(), ids=list(REFUSED_AT_THE_LINE))
def test_refused_at_the_users_line(line, message):
    fn = make_function(f"def f(x, y):\n    {line}\n    return np.sum(c ** 2)\n", "f")
    with pytest.raises(srcdiff.NotDifferentiableError, match=message) as info:
        srcdiff.grad(fn, wrt=(0, 1))(np.ones(3), np.arange(3.0))
    assert info.value.text.strip() == line


REFUSED_WHEN_IT_RUNS = {
    "gradient over several axes": ("c = np.sum(np.gradient(x * y))", "along one axis"),
    "gradient at coordinates": ("c = np.gradient(y[0] * x[0], np.array([0.0, 1.0, 3.0]))",
                                "number spacing"),
    "an array base of logspace": ("c = np.logspace(y[0, 0], 1.0, 3, base=np.array([2.0, 3.0]))",
                                  "base="),
    "real_if_close of a complex array": ("c = np.real_if_close(x + 0j).real", "complex numbers"),
}


@pytest.mark.parametrize("line, message", REFUSED_WHEN_IT_RUNS.values(), ids=list(REFUSED_WHEN_IT_RUNS))
def test_refused_with_an_error_never_a_gradient(line, message):
    fn = make_function(f"def f(x, y):\n    {line}\n    return np.sum(c ** 2)\n", "f")
    with pytest.raises(srcdiff.SrcdiffError, match=message):
        srcdiff.grad(fn, wrt=(0, 1))(np.ones((3, 3)), np.arange(9.0).reshape(3, 3))


# ----- results that are their argument itself (a view, or the same array) -----

SAME_MEMORY = ["np.rollaxis(y, 1)", "np.matrix_transpose(y)", "np.ascontiguousarray(y)",
               "np.asfortranarray(y.T)", "np.real_if_close(y)", "np.asanyarray(y)",
               "np.astype(y, np.float64, copy=False)", "np.polyder(y[0], 0)",
               "np.polyint(y[0], m=0)", "np.unstack(y)[0]", "y.astype(np.float64, copy=False)",
               "np.array(y, copy=False)", "np.array(y, copy=None)"]
NEW_MEMORY = ["np.astype(y, np.float64)", "np.astype(y, np.float64, copy=True)",
              "np.polyder(y[0])", "np.polyint(y[0], 1)", "np.resize(y, (3, 3))",
              "np.diagflat(y[0])[:3]", "np.block([[y]])", "np.delete(y, 1, axis=0)",
              "np.array(y)", "np.array([y[0], y[1]], copy=None)"]


@pytest.mark.parametrize("call", SAME_MEMORY)
def test_a_write_into_a_result_that_shares_its_arguments_memory_is_refused(call):
    fn = make_function(f"def f(x):\n    y = x * 2.0\n    v = {call}\n    v[0] = 0.0\n"
                       "    return np.sum(y * x)\n", "f")
    with pytest.raises(srcdiff.SrcdiffError, match="may share memory"):
        srcdiff.grad(fn)(np.random.default_rng(0).standard_normal((3, 3)))


@pytest.mark.parametrize("call", NEW_MEMORY)
def test_a_write_into_a_new_array_is_differentiated(call):
    fn = make_function(f"def f(x):\n    y = x * 2.0\n    v = {call}\n    v[0] = x[0, 0]\n"
                       "    return np.sum(y * x) + np.sum(v ** 3)\n", "f")
    check_grad_by_finite_differences(fn, (np.random.default_rng(0).standard_normal((3, 3)),))


@pytest.mark.parametrize("body", ["np.sum(np.sin(x.astype(np.float32)) * x)",
                                  "np.sum(x.astype(np.float64) ** 2)",
                                  "np.sum(x.astype('float64', copy=True) * x)"])
def test_the_astype_method_uses_np_astypes_rule(body):
    """``x.astype(t)`` is ``np.astype(x, t)`` (calls.METHODS): a float dtype passes the
    gradient through, cast back to x's dtype; an integer one is refused at its line."""
    fn = make_function(f"def f(x):\n    return {body}\n")
    args = (np.array([0.3, -0.2, 0.5]),)
    if "float32" in body:  # the float32 round trip: the oracle's tolerance of float32
        check_float32_gradients(fn, args)
    else:
        check_grad_by_finite_differences(fn, args)
    refused = make_function("def f(x):\n    return np.sum(x.astype(int) * x)\n")
    with pytest.raises(srcdiff.NotDifferentiableError, match="dtype=") as info:
        srcdiff.grad(refused)(*args)
    err = info.value
    assert "x.astype(int)" in open(err.filename).read().splitlines()[err.lineno - 1]
