"""Calls to the user's own functions: transformed once, linked, recursion, against the oracle."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function

rng = np.random.default_rng(11)

PROGRAMS = """
    def layer(x, w, scale=2.0):  # two lines: a call (one-expression helpers are inlined)
        y = np.tanh(x @ w)
        return y * scale

    def two_layers(x, w1, w2):
        return layer(layer(x, w1), w2, scale=1.0)

    def power(x, n):
        if n == 0:
            r = x * 0.0 + 1.0
        else:
            r = x * power(x, n - 1)
        return r

    def halve_until_small(x):
        if np.max(np.abs(x)) < 1.0:
            r = x
        else:
            r = halve_until_small(x * 0.5) * 3.0
        return r

    def gated(x, w):
        if np.sum(x) > 0:
            y = x * w
        else:
            y = x - w
        return y

    def rnn_step(h, x, W, U):
        return np.tanh(W @ h + U @ x)

    def model(w1, w2, x):
        out = two_layers(x, w1, w2)
        for i in range(3):
            out = layer(out, w2, scale=0.5)
            out = gated(out, w1[0])
        return np.sum(out ** 2) + np.sum(power(w1, 3))

    def rnn(W, U, xs, h):
        for t in range(len(xs)):
            h = rnn_step(h, xs[t], W, U)
        return np.sum(h)

    def recursive(x):
        return np.sum(halve_until_small(x))
"""


@pytest.fixture(scope="module")
def programs():
    module_fn = make_function(PROGRAMS, name="model")
    return module_fn.__globals__


def test_helpers_in_a_loop_with_branches_and_recursion(programs):
    model = programs["model"]
    args = (rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(4, 3)))
    check_grad(model, args, srcdiff.grad(model, wrt=(0, 1, 2))(*args))


def test_rnn_over_a_list_of_inputs(programs):
    rnn = programs["rnn"]
    xs = [rng.normal(size=2) for _ in range(4)]
    W, U, h = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(3, 2)), rng.normal(size=3)
    dW, dU, dh = srcdiff.grad(rnn, wrt=("W", "U", "h"))(W, U, xs, h)
    check_grad(lambda W, U, h: rnn(W, U, xs, h), (W, U, h), (dW, dU, dh))


def test_recursion_with_data_dependent_depth(programs):
    recursive = programs["recursive"]
    for scale in (0.5, 3.0, 40.0):  # depth 0, 2 and 6
        x = rng.normal(size=3) * scale
        check_grad(recursive, (x,), (srcdiff.grad(recursive)(x),))


def test_each_callee_is_transformed_once(programs, monkeypatch):
    import srcdiff.api as api

    calls = []
    original = api.compile_derivative
    monkeypatch.setattr(api, "compile_derivative",
                        lambda fn, wrt, *a, **k: calls.append((fn.__name__, wrt))
                        or original(fn, wrt, *a, **k))
    fresh = make_function(PROGRAMS, name="model")
    args = (rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=(2, 3)))
    for _ in range(3):
        srcdiff.grad(fresh, wrt=(0, 1))(*args)
    assert len(calls) == len(set(calls)), calls  # no (function, wrt) compiled twice
    assert {"layer", "power", "gated"} <= {name for name, _ in calls}


def test_generated_source_links_the_callee(programs):
    source = srcdiff.grad(programs["two_layers"], wrt=("w1",)).source
    assert "layer_vjp = rt.derivative_of(layer, ('x',))" in source.replace('"', "'") or \
        "rt.derivative_of(layer" in source
    assert "_pullback(" in source.split("def two_layers_pullback")[1]


def test_closure_variables_are_constants():
    make = make_function("""
        def make(scale):
            def inner(x):
                return x * scale

            def outer(x):
                return np.sum(inner(x) ** 2)
            return outer
    """, name="make")
    outer = make(3.0)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(srcdiff.grad(outer)(x), 2 * 9.0 * x)


@pytest.mark.parametrize("expr", [
    "C.dot(x)",                                  # matrix . vector
    "C.dot(x) * C.sum(axis=0) + C.max()",        # methods of the constant alongside
    "x.dot(C) + C.T.dot(x)",                     # the constant on either side, transposed
    "C.dot(np.outer(x, x)).reshape(4) * S.clip(0.0, 1.0)",  # a reshape, a numpy scalar
    "C.dot(x).clip(-1.0, 1.0) + C.argmax()",     # a non-differentiable method
])
def test_methods_of_module_level_and_closure_arrays(expr):
    fn = make_function(f"""
        C = np.array([[1.0, 2.0], [3.0, -4.0]])
        S = np.float64(1.5)

        def f(x):
            return np.sum(np.tanh({expr}))

        def make(C):
            def g(x):
                return np.sum(np.tanh({expr}))
            return g
    """, name="f")
    x = np.array([0.5, -0.3])
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
    closure = fn.__globals__["make"](np.array([[0.5, -1.0], [2.0, 1.5]]))
    check_grad(closure, (x,), (srcdiff.grad(closure)(x),))
    assert "dot_adjoint" in srcdiff.grad(fn).source  # like the method of a local array


def test_a_call_leaving_out_an_array_default_passes_the_default():
    fn = make_function("""
        DEFAULT = np.array([2.0, -1.0])

        def helper(x, w=DEFAULT):
            return x * w

        def f(x):
            return np.sum(helper(x) * x)
    """, name="f")
    x = np.array([0.5, 1.5])
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
    assert 'rt.default_of(helper, "w")' in srcdiff.value_and_grad(fn).source or \
        "rt.default_of(helper, 'w')" in srcdiff.value_and_grad(fn).source


def test_inactive_calls_stay_plain_calls(programs):
    fn = make_function("""
        def helper(n):
            return n * 2.0

        def f(x, n):
            return np.sum(x * helper(n))
    """, name="f")
    source = srcdiff.grad(fn).source
    assert "derivative_of" not in source and "helper(n)" in source
    np.testing.assert_allclose(srcdiff.grad(fn)(np.ones(2), 3.0), [6.0, 6.0])


UNPACKING = """
    def stats(x, w):
        m = np.mean(x * w)
        return m, np.sum((x - m) ** 2)

    def f(x, w):
        a, b = x * 2.0, w
        a, b = b, a
        m, v = stats(a, b)
        _, v2 = stats(x, w)
        r0, r1 = x
        return m * v + v2 + np.sum(r0 * r1)
"""


def test_tuple_unpacking_swaps_rows_and_helper_results():
    fn = make_function(UNPACKING, name="f")
    x, w = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w))
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "(m, v), m_pullback = stats_vjp(a_1, b_1)" in source
    assert "m_pullback((dm, dv))" in source and "rt.tree_zeros(_)" in source  # a helper result may be a container


def test_indexing_into_a_returned_tuple():
    fn = make_function("""
        def pair(x):
            return x * 2.0, x * 3.0

        def f(x):
            p = pair(x)
            return np.sum(p[0] * p[1])
    """, name="f")
    x = np.array([0.5, -1.5])
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


def test_helper_imported_from_another_module():
    helper = make_function("""
        def scaled_tanh(x, w):
            return np.tanh(x * w) * 2.0
    """)
    module_name = helper.__module__
    fn = make_function(f"""
        import {module_name} as lib
        from {module_name} import scaled_tanh

        def f(x, w):
            return np.sum(lib.scaled_tanh(x, w) + scaled_tanh(w, x))
    """, name="f")
    x, w = rng.normal(size=3), rng.normal(size=3)
    check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w))
    assert "rt.derivative_of(lib.scaled_tanh" in srcdiff.grad(fn, wrt=(0, 1)).source \
        or "rt.derivative_of(scaled_tanh" in srcdiff.grad(fn, wrt=(0, 1)).source
