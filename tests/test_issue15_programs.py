"""The programs issue 15 opens with, written as a new user writes them, each through grad,
value_and_grad and vjp against finite differences. (The seventh, a function defined in a
Jupyter/IPython cell, is tests/test_lambdas_and_cells.py's, which drives IPython's shell.)"""

from __future__ import annotations

import numpy as np
import optree
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .end_to_end import check_grad_by_finite_differences, check_value_and_grad
from .helpers import make_function

PROGRAMS = {
    "l2_penalty_over_params_values": ("""
        def loss(params, x, y):
            pred = np.tanh(x @ params["W"] + params["b"])
            penalty = 1e-3 * sum(np.sum(p ** 2) for p in params.values())
            return np.mean((pred - y) ** 2) + penalty
        """, "dict"),
    "multi_head_attention_comprehension": ("""
        def attend(q, k, v):
            s = q @ k.T / np.sqrt(q.shape[-1])
            e = np.exp(s - np.max(s, axis=-1, keepdims=True))
            return (e / np.sum(e, axis=-1, keepdims=True)) @ v

        def loss(Wq, Wk, Wv, x):
            heads = [attend(x @ q, x @ k, x @ v) for q, k, v in zip(Wq, Wk, Wv)]
            return np.sum(np.concatenate(heads, axis=-1) ** 2)
        """, "heads"),
    "model_class_with_methods": ("""
        import dataclasses

        @dataclasses.dataclass
        class Model:
            W: object
            b: object

            def predict(self, X):
                return np.tanh(X @ self.W + self.b)

            def nll(self, X, Y):
                return np.mean((self.predict(X) - Y) ** 2)

        def loss(W, b, X, Y):
            model = Model(W, b)
            return model.nll(X, Y)
        """, "model"),
    "rk4_with_the_dynamics_as_an_argument": ("""
        def dynamics(y, theta):
            return -theta * y + np.sin(y)

        def rk4_step(f, y, theta, dt):
            k1 = f(y, theta)
            k2 = f(y + 0.5 * dt * k1, theta)
            k3 = f(y + 0.5 * dt * k2, theta)
            k4 = f(y + dt * k3, theta)
            return y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

        def loss(y0, theta):
            y = y0
            for _ in range(4):
                y = rk4_step(dynamics, y, theta, 0.1)
            return np.sum(y ** 2)
        """, "ode"),
    "reversed_coefficients_and_zip_of_dict_entries": ("""
        def loss(params, x):
            acc = 0.0
            for c in reversed(params["coeffs"]):
                acc = acc * x + c
            total = np.sum(acc ** 2)
            for Wq, Wk in zip(params["Wq"], params["Wk"]):
                total = total + np.sum(np.tanh(x @ Wq) * (x @ Wk))
            return total
        """, "zipdict"),
    "early_tuple_and_dict_returns_from_helpers": ("""
        def split(a):
            if np.sum(a) > 0.0:
                return a * 2.0, np.sin(a)
            return np.cos(a), a * 3.0

        def parts(a):
            for i in range(3):
                if i == 1:
                    return {"u": a * i, "v": np.tanh(a)}
            return {"u": a, "v": a}

        def loss(a):
            u, v = split(a)
            d = parts(a)
            return np.sum(u * v) + np.sum(d["u"] * d["v"])
        """, "early"),
}


def _arguments(kind: str, rng):
    if kind == "dict":
        return ({"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)},
                rng.normal(size=(5, 3)), rng.normal(size=(5, 2))), (0,)
    if kind == "heads":
        return ([rng.normal(size=(3, 2)) for _ in range(2)],
                [rng.normal(size=(3, 2)) for _ in range(2)],
                [rng.normal(size=(3, 2)) for _ in range(2)], rng.normal(size=(4, 3))), (0, 1, 2)
    if kind == "model":
        return (rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(5, 3)),
                rng.normal(size=(5, 2))), (0, 1)
    if kind == "ode":
        return (rng.normal(size=3), 0.7), (0, 1)
    if kind == "zipdict":
        return ({"coeffs": [rng.normal(size=3) for _ in range(3)],
                 "Wq": [rng.normal(size=(3, 2)) for _ in range(2)],
                 "Wk": [rng.normal(size=(3, 2)) for _ in range(2)]}, rng.normal(size=(4, 3))), (0,)
    return (rng.normal(size=4),), (0,)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_issues_programs_differentiate(name):
    """grad, value_and_grad and vjp give the oracle's gradients, leaf by leaf for the
    arguments that are dicts or lists of arrays (the function called with the leaves)."""
    source, kind = PROGRAMS[name]
    fn = make_function(source, name="loss")
    args, wrt = _arguments(kind, np.random.default_rng(len(name)))
    if all(not isinstance(args[i], (dict, list)) for i in wrt):
        check_grad_by_finite_differences(fn, args, wrt=wrt)
        check_value_and_grad(fn, args, wrt=wrt)
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    value, by_vag = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    out, pullback = srcdiff.vjp(fn, *args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    np.testing.assert_allclose(out, fn(*args), rtol=1e-12)
    by_vjp = pullback(1.0)
    by_vjp = by_vjp if isinstance(by_vjp, tuple) else (by_vjp,)
    for got in (grads, by_vag, tuple(by_vjp[i] for i in wrt)):
        got = got if isinstance(got, tuple) else (got,)
        _check_leaves(fn, args, wrt, got)


def _check_leaves(fn, args, wrt, grads):
    """The oracle (srcdiff.testing.check_grad) on the leaves of the ``wrt`` arguments."""
    leaves, specs = [], []
    for i in wrt:
        flat, spec = optree.tree_flatten(args[i])
        leaves.append(flat)
        specs.append(spec)
    sizes = [len(flat) for flat in leaves]

    def on_leaves(*flat):
        rebuilt, start = list(args), 0
        for i, spec, n in zip(wrt, specs, sizes):
            rebuilt[i] = optree.tree_unflatten(spec, list(flat[start:start + n]))
            start += n
        return fn(*rebuilt)

    got = [leaf for g in grads for leaf in optree.tree_flatten(g)[0]]
    check_grad(on_leaves, tuple(leaf for flat in leaves for leaf in flat), tuple(got))
