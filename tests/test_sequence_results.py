"""Values that are lists or tuples made by a call (issue 14 item 2, issue 15's returns):
``np.split`` and the rules registered with ``sequence=True``, and helpers that return a
display, are unpacked, indexed and looped over like the containers srcdiff already knows."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .helpers import make_function

FUNCTIONS = {
    "unpack_split": "a, b = np.split(x, 2)\n    return np.sum(a * np.sin(b))",
    "unpack_one_used": "a, b, c = np.split(x, 3)\n    return np.sum(c * 2.0)",
    "index_split": "parts = np.split(x, 3)\n    return np.sum(parts[0] * parts[2])",
    "index_negative": "parts = np.array_split(x, 2)\n    return np.sum(parts[-1] ** 2) + np.sum(parts[0])",
    "index_call": "return np.sum(np.split(x, 2)[1] * x[:3])",
    "loop_over_split": "s = 0.0\n    for p in np.array_split(x, 2):\n        s = s + np.sum(p ** 2)\n    return s",
    "comprehension_over_split": "return sum(np.sum(np.tanh(p)) for p in np.split(x, 3))",
    "helper_list": "r = pair(x)\n    return np.sum(r[0] * r[1])",
    "helper_tuple_indexed": "r = scaled(x)\n    return np.sum(r[0] * r[1])",
    "helper_dict": "d = named(x)\n    return np.sum(d['w'] * d['b'])",
    "loop_over_helper_list": "s = 0.0\n    for row in pair(x):\n        s = s + np.sum(np.tanh(row))\n    return s",
    "unpack_rows_of_exp": "ls, var, noise = np.exp(x[:3])\n    return ls * var + noise ** 2",
    "unpack_rows_of_matrix": "r0, r1 = np.tanh(np.reshape(x, (2, 3)))\n    return np.sum(r0 * r1)",
    "unpack_rows_of_method": "r0, r1 = (x * 2.0).reshape(2, 3).sum(axis=1)\n    return r0 * r1",
    "unpack_rows_one_used": "a, b, c = np.sin(np.reshape(x, (3, 2)))\n    return np.sum(b ** 2)",
}
HELPERS = """
def pair(a):
    return [a, a * 2.0]


def scaled(a):
    return a * 3.0, np.cos(a)


def named(a):
    return {"w": a * a, "b": a}

"""


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_sequence_results_match_finite_differences(name):
    fn = make_function(HELPERS + f"\ndef f(x):\n    {FUNCTIONS[name]}\n", name="f")
    x = np.array([0.3, -0.7, 1.1, 0.5, 0.2, -0.9])
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
    value, g = srcdiff.value_and_grad(fn)(x)
    assert value == pytest.approx(fn(x))
    check_grad(fn, (x,), (g,))
    out, pullback = srcdiff.vjp(fn, x)
    check_vjp(fn, (x,), pullback(0.5), cotangent=0.5)


def test_the_unpacked_split_reads_as_written():
    fn = make_function("def f(x):\n    a, b = np.split(x, 2)\n    return np.sum(a * np.sin(b))\n")
    source = srcdiff.grad(fn).source
    assert "a, b = np.split(x, 2)" in source
    assert "dx = rt.split_adjoint((da, db), x, indices_or_sections=2)" in source


def test_a_loop_over_a_call_that_is_not_known_to_give_a_sequence_is_refused():
    fn = make_function("def f(x):\n    s = 0.0\n    for v in np.nditer(x):\n        s = s + v\n    return s\n")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="loops over"):
        srcdiff.grad(fn)(np.ones(3))


def test_the_rows_of_a_primitive_result_are_read_by_index():
    fn = make_function("def f(p):\n    ls, var, noise = np.exp(p)\n    return ls * var + noise\n")
    source = srcdiff.grad(fn).source
    assert "_t1 = np.exp(p)\n    rt.unpacked(_t1, 3)\n    ls = _t1[0]\n    var = _t1[1]\n" \
        "    noise = _t1[2]" in source


@pytest.mark.parametrize("p", [np.ones(2), np.ones(4), np.float64(1.0), np.ones(())])
def test_unpacking_rows_checks_the_count_as_python_does(p):
    """The rows are read one by one: Python's ValueError (or TypeError) for another count,
    also where no name is read, not a gradient of the rows that happen to be there."""
    fn = make_function("def f(p, q):\n    a, b, c = np.exp(p)\n    return np.sum(q * a)\n")
    unread = make_function("def f(p, q):\n    a, b, c = np.exp(p)\n    return np.sum(q * 2.0)\n")
    for f in (fn, unread):
        with pytest.raises((ValueError, TypeError)) as python:
            f(p, np.ones(2))
        for call in (srcdiff.grad(f, wrt=(0, 1)), srcdiff.value_and_grad(f, wrt=(0, 1)),
                     lambda p, q: srcdiff.vjp(f, p, q)):
            with pytest.raises(type(python.value)) as ours:
                call(p, np.ones(2))
            if isinstance(python.value, ValueError):
                assert str(ours.value) == str(python.value)
    p3 = np.array([0.1, 0.2, 0.3])  # the right count: the gradient
    grads = srcdiff.grad(fn, wrt=(0, 1))(p3, np.ones(2))
    check_grad(fn, (p3, np.ones(2)), grads, argnums=(0, 1))
