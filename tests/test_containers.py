"""Containers ("pytrees") as arguments: dicts, lists, tuples, namedtuples, dataclasses."""

import collections
import dataclasses

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function

rng = np.random.default_rng(5)


@pytest.fixture(scope="module")
def mlp():
    return make_function("""
        def mlp(params, x, y):
            h = np.tanh(x @ params["W1"] + params["b1"])
            for layer in params["layers"]:
                h = np.tanh(h @ layer["W"])
            out = h @ params["W2"]
            return np.mean((out - y) ** 2) + params["steps"] * 0.0
    """)


def _params():
    return {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "steps": 3,
            "layers": [{"W": rng.normal(size=(4, 4)) * 0.5} for _ in range(2)],
            "W2": rng.normal(size=(4, 1))}


def _leaf_check(fn, params, grads, path, rest):
    """Check one leaf of the gradient against the oracle, varying only that leaf."""
    def with_leaf(value):
        p = {**params, "layers": [dict(layer) for layer in params["layers"]]}
        target = p
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return fn(p, *rest)

    leaf, grad = params, grads
    for key in path:
        leaf, grad = leaf[key], grad[key]
    check_grad(with_leaf, (leaf,), (grad,))


def test_mlp_with_a_params_dict(mlp):
    params, x, y = _params(), rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    grads = srcdiff.grad(mlp)(params, x, y)
    assert set(grads) == set(params) and grads["steps"] is None
    assert isinstance(grads["layers"], list) and len(grads["layers"]) == 2
    for path in (("W1",), ("b1",), ("W2",), ("layers", 0, "W"), ("layers", 1, "W")):
        _leaf_check(mlp, params, grads, path, (x, y))


def test_sgd_step_over_the_dict(mlp):
    params, x, y = _params(), rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    dmlp = srcdiff.value_and_grad(mlp)
    first, _ = dmlp(params, x, y)
    for _ in range(50):
        loss, grads = dmlp(params, x, y)
        params = {k: params[k] if grads[k] is None else
                  [{"W": p["W"] - 0.1 * g["W"]} for p, g in zip(params[k], grads[k])]
                  if k == "layers" else params[k] - 0.1 * grads[k] for k in params}
    assert loss < first


def test_namedtuple_and_dataclass_arguments():
    fn = make_function("""
        import collections
        import dataclasses

        P = collections.namedtuple("P", "w b")

        @dataclasses.dataclass
        class D:
            w: np.ndarray
            s: float

        def f(p, q):
            return np.sum(p.w * q.w) + p.b * q.s
    """, name="f")
    P, D = fn.__globals__["P"], fn.__globals__["D"]
    dp, dq = srcdiff.grad(fn, wrt=(0, 1))(P(np.ones(2), 2.0), D(np.arange(2.0), 3.0))
    assert isinstance(dp, P) and isinstance(dq, D)
    np.testing.assert_allclose(dp.w, [0.0, 1.0])
    assert dp.b == 3.0 and dq.s == 2.0
    np.testing.assert_allclose(dq.w, [1.0, 1.0])


def test_tuple_argument_and_vjp_with_containers():
    fn = make_function("""
        def f(pair, scale):
            a, b = pair
            return {"prod": a * b * scale, "sum": np.sum(a + b)}
    """)
    pair = (rng.normal(size=3), rng.normal(size=3))
    out, pullback = srcdiff.vjp(fn, pair, 2.0)
    (da, db), dscale = pullback({"prod": np.ones(3), "sum": 1.0})
    np.testing.assert_allclose(da, pair[1] * 2.0 + 1.0)
    np.testing.assert_allclose(db, pair[0] * 2.0 + 1.0)
    assert dscale == pytest.approx(np.sum(pair[0] * pair[1]))


def test_container_without_floats_is_a_clear_error():
    fn = make_function("""
        def f(p):
            return p["a"] * 2.0
    """)
    with pytest.raises(srcdiff.GradientTypeError, match="no floating-point"):
        srcdiff.grad(fn)({"a": 1})


def test_list_built_with_append_and_read_later():
    fn = make_function("""
        def rnn(W, x):
            hs = []
            h = x[0] * 0.0
            for t in range(len(x)):
                h = np.tanh(W @ h + x[t])
                hs.append(h)
            return np.sum(np.stack(hs) ** 2) + np.sum(hs[-1] * hs[0])
    """)
    W, x = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(4, 3))
    check_grad(fn, (W, x), srcdiff.grad(fn, wrt=(0, 1))(W, x))
    source = srcdiff.grad(fn, wrt=(0, 1)).source  # the lists stage: appends in place, O(steps)
    assert "hs_3 = rt.append_in_place(hs_2, h_3)" in source and "[:-1]" not in source


def test_appending_to_an_argument_list_is_refused():
    fn = make_function("""
        def f(x, xs):
            xs.append(x)
            return np.sum(x)
    """)
    with pytest.raises(srcdiff.InPlaceError, match="append"):
        srcdiff.grad(fn)(np.ones(2), [])


def test_dicts_tuples_and_lists_built_in_the_function():
    fn = make_function("""
        def f(w, x):
            d = {"a": w * 2.0, "b": x}
            t = (d["a"], w)
            l = [t[0] * t[1], x]
            return np.sum(d["a"] * l[0]) + np.sum(t[1] * d["b"])
    """)
    w, x = rng.normal(size=3), rng.normal(size=3)
    check_grad(fn, (w, x), srcdiff.grad(fn, wrt=(0, 1))(w, x))


def test_helper_taking_a_params_dict():
    fn = make_function("""
        def linear(params, x):
            return x @ params["w"] + params["b"]

        def loss(params, x, y):
            return np.mean((linear(params, x) - y) ** 2)
    """, name="loss")
    params = {"w": rng.normal(size=(3, 1)), "b": rng.normal(size=1)}
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    grads = srcdiff.grad(fn)(params, x, y)
    check_grad(lambda w, b: fn({"w": w, "b": b}, x, y), (params["w"], params["b"]),
               (grads["w"], grads["b"]))


@pytest.mark.parametrize("body", [
    'return np.sum(np.tanh(params["w"].T @ x + params["b"]))',     # b broadcast over rows
    'return np.sum(params["w"].T * params["b"][:, None]) * params["w"].shape[1]',
    'w = params["w"]\n    return np.sum((w.T @ x) ** 2) / w.size + w.ndim',
    'return np.sum(params["rows"][1].T * params["b"])',  # a list inside the dict
    'return params["rows"][0][0].T * 2.0 + np.sum(params["w"].T[0])',  # a 0-d row element
])
def test_array_attributes_of_values_read_out_of_a_dict(body):
    fn = make_function(f"def f(params, x):\n    {body}\n")
    params = {"w": rng.normal(size=(2, 3)), "b": rng.normal(size=3),
              "rows": [rng.normal(size=3), rng.normal(size=3)]}
    x = rng.normal(size=(2, 3))
    grads = srcdiff.grad(fn)(params, x)
    check_grad(lambda w, b, r0, r1: fn({"w": w, "b": b, "rows": [r0, r1]}, x),
               (params["w"], params["b"], *params["rows"]),
               tuple(np.zeros(3) if g is None else g for g in
                     (grads["w"], grads["b"], *grads["rows"])))


def test_array_attributes_of_fields_of_a_namedtuple_and_a_dataclass():
    fn = make_function("""
        import collections
        import dataclasses

        P = collections.namedtuple("P", "w b")

        @dataclasses.dataclass
        class D:
            w: np.ndarray
            T: float  # a field named like the array attribute: still a field

        def f(p, q, x):
            return np.sum(p.w.T @ x * q.w.T) + p.b * q.T * q.w.shape[0]
    """, name="f")
    P, D = fn.__globals__["P"], fn.__globals__["D"]
    p, q, x = P(rng.normal(size=(3, 2)), 0.5), D(rng.normal(size=(4, 2)), 1.5), rng.normal(size=(3, 4))
    dp, dq = srcdiff.grad(fn, wrt=(0, 1))(p, q, x)
    assert isinstance(dp, P) and isinstance(dq, D)
    check_grad(lambda pw, pb, qw, qT: fn(P(pw, pb), D(qw, qT), x), (p.w, p.b, q.w, q.T),
               (dp.w, dp.b, dq.w, dq.T))


@pytest.mark.parametrize("body", [
    "hs = [x]\n    return np.sum(hs[-1].T @ np.ones(2))",
    "hs = []\n    for i in range(3):\n        hs.append(np.tanh(x * i))\n"
    "    return np.sum(hs[-1].T * hs[0].T[:, :1]) + hs[1].shape[0]",
    "t = (x, x * 2.0)\n    return np.sum(t[1].T @ t[0])",
    "d = {'w': x, 'v': x[0]}\n    return np.sum(d['v'].T * d['w'])",  # a row broadcast
])
def test_array_attributes_of_values_read_out_of_local_containers(body):
    fn = make_function(f"def f(x):\n    {body}\n")
    x = rng.normal(size=(2, 3))
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
    assert "rt.field(" not in srcdiff.grad(fn).source  # .T is a transpose, not a field


def test_an_array_attribute_without_a_rule_read_out_of_a_container_is_a_clear_error():
    fn = make_function("""
        def f(params):
            return np.sum(params["w"].mT)
    """)
    with pytest.raises(srcdiff.SrcdiffError, match=r"attribute \.mT of an array read out of"):
        srcdiff.grad(fn)({"w": np.ones((2, 3))})


def test_vjp_of_a_dataclass_argument_is_its_gradient_not_none():
    """Fuzz finding O5: vjp took a dataclass for a leaf (optree learns dataclasses on first
    use) and gave None, also where the output reads its fields."""
    fn = make_function("""
        import dataclasses

        @dataclasses.dataclass
        class Model:
            W: object
            c: object

        def f(x, model):
            return np.sum(x * model.W) + model.c * 0.0, x

        def g(x, model):
            return np.sum(x * x), x
    """, name="f")
    model_type = fn.__globals__["Model"]
    x = np.array([0.5, 1.0])
    for name, want_w in (("f", x), ("g", np.zeros(2))):
        func = fn.__globals__[name]
        out, pullback = srcdiff.vjp(func, x, model_type(np.ones(2), 0.5))
        dx, dmodel = pullback((1.0, np.zeros(2)))
        assert isinstance(dmodel, model_type)
        np.testing.assert_allclose(dmodel.W, want_w)
        assert dmodel.c == 0.0


def test_a_list_of_arrays_of_different_shapes_stored_by_key_in_a_loop():
    """``d[k] = [np.sin(p), np.sum(p)]``: the entry's adjoint is the list's (it crashed in
    the rule, which took the list for one array)."""
    from .end_to_end import (check_grad_by_finite_differences, check_gradients_on_duck_arrays,
                             check_value_and_grad)

    fn = make_function("""
        def f(x):
            params = {"a": x, "b": x * 2.0}
            d = {}
            for k, p in params.items():
                d[k] = [np.sin(p), np.sum(p)]
            return np.sum(d["a"][0]) + d["b"][1] * np.sum(d["b"][0])
    """)
    for x in (np.array([0.3, -0.4, 0.5]), np.array([[0.2, 0.1], [-0.6, 0.9]])):
        check_grad_by_finite_differences(fn, (x,))
        check_value_and_grad(fn, (x,))
        check_gradients_on_duck_arrays(fn, (x,))
