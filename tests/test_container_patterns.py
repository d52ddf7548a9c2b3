"""Dicts, lists and tuples of arrays as arguments, compiled for their items' shapes
(``dims.Tree``): the items a function reads by literal keys (``params["W1"]``) get their
shapes and float64 kinds, so the derivative is the one of the same function with the items
passed one by one; every spelling against finite differences, leaf by leaf, and what keeps
the general derivative."""

import numpy as np
import pytest

import srcdiff
from srcdiff import dims
from srcdiff.testing import check_grad

from .helpers import code


def mlp_dict(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    return np.mean((h @ params["W2"] + params["b2"] - y) ** 2)


def mlp_list(layers, X, y):
    h = np.tanh(np.dot(X, layers[0]) + layers[1])
    return np.mean((h.dot(layers[2]) + layers[-1] - y) ** 2)


def mlp_nested(params, X, y):
    first, second = params["hidden"], params["out"]
    h = np.tanh(X @ first[0] + first[1])
    return np.sum((h @ second[0] + second[1] - y) ** 2) / len(y)


def mlp_args(W1, b1, W2, b2, X, y):  # the same function, the items passed one by one
    h = np.tanh(X @ W1 + b1)
    return np.mean((h @ W2 + b2 - y) ** 2)


def _weights(rng, n_in=3, n_hidden=5, n_out=2, dtype=np.float64):
    return [(rng.normal(size=s) * 0.5).astype(dtype)
            for s in ((n_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,))]


def _arguments(fn, rng, n=6, dtype=np.float64):
    W1, b1, W2, b2 = _weights(rng, dtype=dtype)
    X, y = rng.normal(size=(n, 3)).astype(dtype), rng.normal(size=(n, 2)).astype(dtype)
    tree = {mlp_dict: {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, mlp_list: [W1, b1, W2, b2],
            mlp_nested: {"hidden": (W1, b1), "out": (W2, b2)}}[fn]
    return tree, X, y


def _leaves(tree, path=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(tree, (list, tuple)):
        for k, v in enumerate(tree):
            yield from _leaves(v, path + (k,))
    else:
        yield path, tree


def _with(tree, path, value):
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(tree, dict):
        return {**tree, key: _with(tree[key], rest, value)}
    items = list(tree)
    items[key] = _with(items[key], rest, value)
    return type(tree)(items)


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def check_leaves(fn, tree, rest, grads):
    """Each leaf's gradient against finite differences, the other leaves held."""
    for path, leaf in _leaves(tree):
        check_grad(lambda v: fn(_with(tree, path, v), *rest), (leaf,), (_get(grads, path),))


SPELLINGS = [mlp_dict, mlp_list, mlp_nested]


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_every_spelling_matches_finite_differences(fn):
    rng = np.random.default_rng(3)
    for n in (6, 1):
        tree, X, y = _arguments(fn, rng, n)
        grad = srcdiff.grad(fn, wrt=0)
        for _ in range(2):
            check_leaves(fn, tree, (X, y), grad(tree, X, y))
        value, grads = srcdiff.value_and_grad(fn, wrt=0)(tree, X, y)
        assert value == fn(tree, X, y)
        check_leaves(fn, tree, (X, y), grads)


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_the_items_have_their_shapes(fn):
    """As for the items passed one by one: no general rule asks a rank, no sum back to a
    shape, and the float64 variant's temporaries take results in place."""
    tree, X, y = _arguments(fn, np.random.default_rng(4))
    grad = srcdiff.grad(fn, wrt=0)
    grad(tree, X, y)
    source = code(grad.source)
    assert "unbroadcast" not in source and "matmul_adjoint" not in source and "dot_adjoint" \
        not in source
    assert " += " in source and " *= " in source  # (the float64 variant's, as mlp_args's)


def test_the_same_numbers_as_the_items_one_by_one():
    rng = np.random.default_rng(5)
    tree, X, y = _arguments(mlp_dict, rng)
    got = srcdiff.grad(mlp_dict, wrt=0)(tree, X, y)
    want = srcdiff.grad(mlp_args, wrt=(0, 1, 2, 3))(*tree.values(), X, y)
    for g, w in zip(got.values(), want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def test_the_pattern_of_a_tree():
    W, b = np.ones((3, 4)), np.ones(4)
    found = dims.pattern(({"W": W, "b": b, "n": 2}, [b, (1.0, W)]), frozenset())
    assert found == (dims.Tree("dict", ("W", "b", "n"), (("n0", "n1"), ("n1",), ())),
                     dims.Tree("list", (0, 1), (("n1",), dims.Tree("tuple", (0, 1),
                                                                   ((), ("n0", "n1"))))))
    # other keys, another order, a value of another kind: another pattern, or none
    assert dims.pattern(({"b": b, "W": W},), frozenset()) != \
        dims.pattern(({"W": W, "b": b},), frozenset())
    assert dims.pattern(({"W": W, "f": len},), frozenset()) is None
    assert dims.pattern(({1: W},), frozenset()) is None


def test_other_shapes_and_dtypes_compile_again():
    rng = np.random.default_rng(6)
    grad = srcdiff.grad(mlp_dict, wrt=0)
    for n, dtype in ((6, np.float64), (4, np.float32), (9, np.float64)):
        tree, X, y = _arguments(mlp_dict, rng, n, dtype)
        grads = grad(tree, X, y)
        assert all(g.dtype == dtype for g in grads.values())
        if dtype == np.float64:
            check_leaves(mlp_dict, tree, (X, y), grads)
    bigger = {**tree, "W1": rng.normal(size=(3, 7)), "b1": rng.normal(size=7),
              "W2": rng.normal(size=(7, 2))}
    check_leaves(mlp_dict, bigger, (X, y), grad(bigger, X, y))


def rebinds(params, X, y):
    """params is rebound: its items' shapes are not known after, so none are taken."""
    h = np.tanh(X @ params["W1"] + params["b1"])
    params = {"W": params["W2"], "b": params["b2"]}
    return np.mean((h @ params["W"] + params["b"] - y) ** 2)


def walks(params, X, y):
    """Read by a loop over its items (computed keys)."""
    total = 0.0
    for key in ("W1", "W2"):
        total = total + np.sum(params[key] ** 2)
    return total + mlp_dict(params, X, y)


@pytest.mark.parametrize("fn", [rebinds, walks], ids=lambda f: f.__name__)
def test_other_uses_of_the_container_keep_their_derivatives(fn):
    tree, X, y = _arguments(mlp_dict, np.random.default_rng(7))
    grad = srcdiff.grad(fn, wrt=0)
    for _ in range(2):
        check_leaves(fn, tree, (X, y), grad(tree, X, y))


def partly_read(params, X, y):
    """b2 and the int "steps" are never read: zeros (None for the int), as before."""
    h = np.tanh(X @ params["W1"] + params["b1"])
    return np.mean((h @ params["W2"] - y) ** 2)


def read_twice(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    return np.mean((h @ params["W2"] + params["b2"] - y) ** 2) + np.sum(params["W1"] ** 2)


def pair(layers, X, y):
    h = np.tanh(X @ layers[0][0] + layers[0][1])
    return np.mean((h @ layers[-1][0] + layers[-1][1] - y) ** 2)


@pytest.mark.parametrize("fn", [mlp_dict, partly_read, read_twice, mlp_list, pair],
                         ids=lambda f: f.__name__)
def test_the_adjoint_of_the_container_is_written_once(fn):
    """Each key's adjoint taken once: the container's adjoint is one display (gather
    stage); a key read twice (read_twice's W1, pair's two items of each tuple) keeps
    rt.tree_add_at's sums."""
    rng = np.random.default_rng(8)
    W1, b1, W2, b2 = _weights(rng)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    tree = {mlp_list: [W1, b1, W2, b2], pair: ((W1, b1), (W2, b2))}.get(
        fn, {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "steps": 3})
    grad = srcdiff.grad(fn, wrt=0)
    for _ in range(2):
        grads = grad(tree, X, y)
        check_leaves(fn, {k: v for k, v in tree.items() if k != "steps"}
                     if type(tree) is dict else tree, (X, y),
                     {k: v for k, v in grads.items() if k != "steps"}
                     if type(grads) is dict else grads)
    if type(tree) is dict:
        assert grads["steps"] is None and list(grads) == list(tree)
    if fn is partly_read:
        np.testing.assert_array_equal(grads["b2"], np.zeros(2))
    source = code(grad.source)
    assert ("tree_add_at" in source) == ("tree_put" in source) == (fn in (read_twice, pair))
