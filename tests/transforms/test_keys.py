"""The keys stage: a local dict read and written only by constant keys becomes one variable
per key (``cache["z1"]`` → ``cache_z1``); any other use keeps the dict."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import make_function, run_until
from ..test_container_writes import cache_forward

DISPLAY = """
    def f(W1, W2, x):
        p = {"w": W1 * 2.0, "v": W2}
        p["w"] += 1.0
        for i in range(2):
            p["v"] = np.tanh(p["v"]) + i
        return np.sum((x @ p["w"]) @ p["v"])
"""

# the dict is seen as a dict: kept
KEPT = {
    "iterated": """
        def f(W1, W2, x):
            d = {"a": x @ W1}
            d["b"] = np.tanh(d["a"]) @ W2
            return sum(np.sum(v ** 2) for v in d.values()) + np.sum(d["a"])
    """,
    "defined in a branch": """
        def f(W1, W2, x):
            d = {}
            if np.sum(x) > -100.0:
                d["a"] = x @ W1
            d["b"] = W2
            return np.sum(d["a"] @ d["b"])
    """,
    "a key that names no variable": """
        def f(W1, W2, x):
            d = {}
            d["z-1"] = x @ W1
            return np.sum((d["z-1"] @ W2) ** 2)
    """,
    "bound twice": """
        def f(W1, W2, x):
            d = {"a": x @ W1}
            d = {"a": d["a"] * 2.0}
            return np.sum((d["a"] @ W2) ** 2)
    """,
}


def _args(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4)) * 0.5, rng.normal(size=(4, 2)), rng.normal(size=3)


@pytest.mark.parametrize("make", [lambda: cache_forward, lambda: make_function(DISPLAY)],
                         ids=["cache", "display"])
def test_a_dict_of_constant_keys_becomes_variables(make):
    fn = make()
    code = run_until(fn, "keys", wrt=("W1", "W2"))
    statements = [line.strip() for line in code.splitlines() if not line.strip().startswith("#")]
    assert not any('["' in line for line in statements), code
    for seed in (0, 1, 2):
        args = _args(seed)
        check_grad(fn, args, srcdiff.grad(fn, wrt=(0, 1))(*args), argnums=(0, 1))
        value, _ = srcdiff.value_and_grad(fn, wrt=(0, 1))(*args)
        assert value == pytest.approx(fn(*args))


def test_the_variables_are_named_after_the_dict_and_its_keys():
    grad = srcdiff.grad(cache_forward, wrt=(0, 1))
    grad(*_args())
    assert "cache_z1 = x.dot(W1)" in grad.source or "cache_z1 = x @ W1" in grad.source
    assert "dcache_a1" in grad.source
    assert '# adjoint of: cache["z1"] = x @ W1' in grad.source  # the user's line as written


@pytest.mark.parametrize("name", sorted(KEPT))
def test_a_dict_seen_as_a_dict_is_kept(name):
    fn = make_function(KEPT[name])
    code = run_until(fn, "keys", wrt=("W1", "W2"))
    assert '["' in code
    args = _args()
    check_grad(fn, args, srcdiff.grad(fn, wrt=(0, 1))(*args), argnums=(0, 1))


def test_a_key_read_before_it_is_written_raises_as_python_does():
    fn = make_function("""
        def f(W1, W2, x):
            d = {}
            if np.sum(x) > 100.0:
                d["a"] = x @ W1
            return np.sum(d["a"] @ W2)
    """)
    with pytest.raises(KeyError):
        fn(*_args())
    with pytest.raises(KeyError):
        srcdiff.grad(fn, wrt=(0, 1))(*_args())
