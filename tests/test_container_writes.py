"""Local dicts and lists filled and changed by item writes (``cache = {}``,
``cache["z1"] = x @ W1``, ``hs[1] = …``), then read: each write makes a new version whose
adjoint is a container, summed leaf by leaf (never ``+`` of two lists, which concatenates)."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_jvp


def stats_dict(x):
    stats = {}
    stats["m"] = x.mean()
    stats["s"] = x.std()
    return stats["m"] * stats["s"]


def cache_forward(W1, W2, x):
    cache = {}
    cache["z1"] = x @ W1
    cache["a1"] = np.tanh(cache["z1"])
    cache["z2"] = cache["a1"] @ W2
    loss = np.sum(cache["z2"] ** 2)
    if loss > 1.0:  # a write in one branch
        cache["a1"] = cache["a1"] * 0.5
    return loss + np.sum(cache["a1"])


def overwritten(x, W1, W2):
    d = {"a": x, "b": x * 2.0}
    d["a"] = d["b"] + 1.0
    d["c"] = np.sin(d["a"])
    return np.sum(d["a"] * d["c"]) + np.sum(W1) * np.sum(W2)


def list_writes(x, W1, W2):
    hs = [x, x]
    hs[1] = hs[0] * 3.0
    hs[0] = np.cos(hs[1])
    return np.sum(hs[0] + hs[1] ** 2) + np.sum(W1 * W2[0, 0])


def stacked_after_writes(x, W1, W2):
    hs = [x, x * 2.0, x * 3.0]
    hs[1] = np.tanh(hs[2])
    return np.sum(np.stack(hs) ** 2) + np.sum(W1) * np.sum(W2)


def filled_in_a_loop(x, W1, W2):
    acc = {}
    for i in range(3):
        acc[i] = x * (i + 1.0)
    return sum(np.sum(v ** 2) for v in acc.values()) + np.sum(W1) * np.sum(W2)


def _args(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(4, 2)), rng.normal(size=3)


@pytest.mark.parametrize("fn", [cache_forward, overwritten, list_writes, stacked_after_writes,
                                filled_in_a_loop], ids=lambda f: f.__name__)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_writes_into_local_containers_match_finite_differences(fn, seed):
    W1, W2, x = _args(seed)
    args = (W1, W2, x) if fn is cache_forward else (x, W1, W2)
    if fn is cache_forward and seed == 2:
        args = (W1 * 0.01, W2, x)  # the other branch
    value, grads = srcdiff.value_and_grad(fn, wrt=(0, 1, 2))(*args)
    assert value == pytest.approx(fn(*args))
    check_grad(fn, args, grads, argnums=(0, 1, 2))
    out, pullback = srcdiff.vjp(fn, *args)
    check_grad(fn, args, pullback(1.0), argnums=(0, 1, 2))
    tangents = tuple(np.ones_like(a) for a in args)
    _, tangent = srcdiff.jvp(fn, args, tangents)
    check_jvp(fn, args, tangents, tangent)


@pytest.mark.parametrize("shape", [(4,), (2, 3)], ids=str)
def test_a_dict_of_statistics(shape):
    x = np.random.default_rng(3).normal(size=shape)
    check_grad(stats_dict, (x,), (srcdiff.grad(stats_dict)(x),))


def test_list_adjoints_are_summed_leaf_by_leaf():
    grad = srcdiff.grad(list_writes, wrt=0)
    W1, W2, x = _args(0)
    grad(x, W1, W2)
    assert "rt.tree_add_at(dhs_1, hs_1, 1, d_t3)" in grad.source
