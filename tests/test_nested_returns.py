"""Returns whose items are displays of names (``return (s, x), x``, ``return {"a": (s, x)}``):
before normalize bound each such display to a temporary, the pullback seeded only items that
were names, and these gave a gradient missing the inner items' terms (or zero), silently."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_vjp


def tuple_in_tuple(x):
    s = np.sin(x)
    return (s, x), x


def tuple_in_dict(x):
    s = np.sin(x)
    return {"a": (s, x), "b": s}


def list_in_tuple(x, w):
    s = np.tanh(x * w)
    return [s, w], s * 2.0


def _flat(out):
    if isinstance(out, dict):
        return np.concatenate([_flat(out[k]) for k in sorted(out)])
    if isinstance(out, (tuple, list)):
        return np.concatenate([_flat(v) for v in out])
    return np.ravel(out)


@pytest.mark.parametrize("fn, args", [
    (tuple_in_tuple, (np.array([0.3, -0.5, 1.1]),)),
    (tuple_in_dict, (np.array([0.3, -0.5]),)),
    (list_in_tuple, (np.array([0.3, -0.5]), np.array([1.5, 0.7]))),
])
def test_nested_displays_in_returns(fn, args):
    out, pullback = srcdiff.vjp(fn, *args)
    rng = np.random.default_rng(0)
    cotangent = srcdiff.runtime.trees.tree_map(lambda v: rng.normal(size=np.shape(v)), out)
    grads = pullback(cotangent)
    flat_cotangent = _flat(cotangent)
    check_vjp(lambda *a: _flat(fn(*a)), args, grads, cotangent=flat_cotangent)


def two_parts(x):
    return (np.sin(x), x[:2] * 2.0), x * x


def second_only(x):
    p, q = two_parts(x)
    return np.sum(q)


def test_an_unused_container_result_of_a_helper_gets_a_containers_zeros():
    # before, the pullback got rt.zeros_like(p) for p = (array(3), array(2)): a ValueError
    x = np.array([0.3, 1.0, -0.5])
    check_vjp(second_only, (x,), (srcdiff.grad(second_only)(x),))
