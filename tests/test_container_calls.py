"""Calls with containers of arrays (a model's parameters in a dict, a list of layers): the
second call of the same kinds, shapes and dtypes skips the general call's checks
(``GradFunction._tree_call``), and must give what the general call gives, owned by the
caller, and refuse what it refuses."""

import numpy as np
import pytest

import srcdiff
from srcdiff import GradientTypeError
from srcdiff.testing import check_grad


def mlp_dict(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    return np.mean((h @ params["W2"] + params["b2"] - y) ** 2)


def mlp_layers(layers, X, y):
    h = X
    for W, b in layers[:-1]:
        h = np.tanh(h @ W + b)
    W, b = layers[-1]
    return np.mean((h @ W + b - y) ** 2)


def shared_sum(p):
    return np.sum(np.sin(p["a"] + p["b"]))  # d/da and d/db: one array in the derivative


def product(p):
    return np.sum(p["a"] * p["b"])  # d/da is b itself


def _model(rng, n_in=3, n_hidden=4, n_out=2, dtype=np.float64):
    w = [rng.normal(size=s).astype(dtype) for s in ((n_in, n_hidden), (n_hidden,),
                                                   (n_hidden, n_out), (n_out,))]
    return w, rng.normal(size=(5, n_in)).astype(dtype), rng.normal(size=(5, n_out)).astype(dtype)


def _flat_check(fn, pack, leaves, rest):
    """Finite differences of ``fn`` over each leaf of the container ``pack(leaves)``."""
    grads = srcdiff.grad(fn)(pack(leaves), *rest)
    flat = _leaves(grads)

    def by_leaves(*ls):
        return fn(pack(list(ls)), *rest)

    check_grad(by_leaves, tuple(leaves), tuple(flat), argnums=tuple(range(len(leaves))))


def _leaves(tree):
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _leaves(v)]
    if isinstance(tree, (list, tuple)):
        return [leaf for v in tree for leaf in _leaves(v)]
    return [tree]


def _as_dict(ls):
    return dict(zip(("W1", "b1", "W2", "b2"), ls))


def _as_layers(ls):
    return [(ls[0], ls[1]), (ls[2], ls[3])]


@pytest.mark.parametrize("fn, pack", [(mlp_dict, _as_dict), (mlp_layers, _as_layers)],
                         ids=["dict", "list-of-tuples"])
def test_every_call_matches_finite_differences(fn, pack):
    rng = np.random.default_rng(0)
    leaves, X, y = _model(rng)
    grad = srcdiff.grad(fn)
    first = grad(pack(leaves), X, y)
    for _ in range(2):  # the calls after the first take the checked path
        again = grad(pack(leaves), X, y)
        for a, b in zip(_leaves(first), _leaves(again)):
            np.testing.assert_array_equal(a, b)
    _flat_check(fn, pack, leaves, (X, y))
    # another shape: another derivative, checked again
    leaves, X, y = _model(rng, n_in=2, n_hidden=3)
    _flat_check(fn, pack, leaves, (X, y))
    assert len(grad._trees) >= 1


def test_gradients_are_the_callers_own():
    rng = np.random.default_rng(1)
    p = {"a": rng.normal(size=3), "b": rng.normal(size=3)}
    for fn in (shared_sum, product):
        grad = srcdiff.grad(fn)
        for _ in range(3):
            g = grad(p)
            assert not np.shares_memory(g["a"], g["b"])
            for leaf in g.values():
                assert not any(np.shares_memory(leaf, a) for a in p.values())
            check_grad(lambda a, b: fn({"a": a, "b": b}), (p["a"], p["b"]), (g["a"], g["b"]),
                       argnums=(0, 1))


def test_dtypes_and_kinds_pick_their_own_derivative():
    rng = np.random.default_rng(2)
    leaves, X, y = _model(rng)
    grad = srcdiff.value_and_grad(mlp_dict)
    grad(_as_dict(leaves), X, y)
    leaves32, X32, y32 = _model(rng, dtype=np.float32)
    for _ in range(2):
        value, g = grad(_as_dict(leaves32), X32, y32)
        assert all(leaf.dtype == np.float32 for leaf in g.values())
    np.testing.assert_allclose(value, mlp_dict(_as_dict(leaves32), X32, y32), rtol=1e-6)
    # a leaf of an integer dtype is not a gradient: None, as in the general call
    p = {"a": np.ones(3), "n": np.arange(3)}
    grad = srcdiff.grad(lambda p: np.sum(p["a"] * p["n"]))
    for _ in range(2):
        g = grad(p)
        assert g["n"] is None
        np.testing.assert_array_equal(g["a"], np.arange(3.0))


def test_a_complex_leaf_is_refused_on_every_call():
    grad = srcdiff.grad(product)
    grad({"a": np.ones(2), "b": np.ones(2)})
    grad({"a": np.ones(2), "b": np.ones(2)})
    with pytest.raises(GradientTypeError, match="complex"):
        grad({"a": np.ones(2), "b": np.ones(2) * 1j})
    with pytest.raises(GradientTypeError, match="floating-point"):
        srcdiff.grad(product)({"a": np.arange(2), "b": np.arange(2)})
