"""The sigmoid stage: ``1.0 / (1.0 + np.exp(-z))`` becomes ``rt.sigmoid(z)``, the same values
with one adjoint ``g * s * (1 - s)``; every spelling against finite differences (shapes with
broadcasting, a number), forward mode and second order through it, and lines that stay."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import code


def plain(x, w):
    return np.sum(1.0 / (1.0 + np.exp(-(x * w))) * x)


def integers(x, w):
    z = x * w
    return np.sum(w * (1 / (1 + np.exp(-z))))


def added_after(x, w):
    return np.sum(1.0 / (np.exp(-x) + 1.0) + w)


def negative(x, w):
    return np.sum(1.0 / (1.0 + np.exp(np.negative(x))) * w)


def logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


def helper(x, w):
    return np.sum(logistic(x + w) ** 2)


def exp_read_again(x, w):
    """e is read twice: the lines stay as written."""
    e = np.exp(-x)
    s = 1.0 / (1.0 + e)
    return np.sum(s * w + e)


SPELLINGS = [plain, integers, added_after, negative, helper]


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((), ())],
                         ids=["vector", "broadcast-row", "outer", "numbers"])
@pytest.mark.parametrize("fn", SPELLINGS + [exp_read_again], ids=lambda f: f.__name__)
def test_every_spelling_matches_finite_differences(fn, shapes):
    rng = np.random.default_rng(len(shapes[0]))
    x, w = (rng.normal(size=s) * 2.0 if s else float(rng.normal()) for s in shapes)
    grad = srcdiff.grad(fn, wrt=("x", "w"))
    for _ in range(2):
        check_grad(fn, (x, w), grad(x, w), argnums=(0, 1))
    value, _ = srcdiff.value_and_grad(fn, wrt=("x", "w"))(x, w)
    assert value == fn(x, w)  # the same operations: the same value, to the bit
    if fn is not exp_read_again and fn is not helper:
        assert "rt.sigmoid(" in grad.source and "np.exp" not in code(grad.source)


def test_lines_read_elsewhere_stay():
    grad = srcdiff.grad(exp_read_again, wrt=("x",))
    grad(np.ones(3), np.ones(3))
    assert "rt.sigmoid(" not in grad.source


def test_a_large_negative_input_has_the_limits_gradient():
    """exp(-z) overflows below z ~ -709: the lines' own chain gives 0 * inf = NaN there; the
    sigmoid's adjoint s * (1 - s) gives the limit, 0."""
    x = np.array([-800.0, -5.0, 0.0, 5.0, 800.0])
    with np.errstate(over="ignore"):
        got, = srcdiff.grad(plain, wrt=("x",))(x, np.ones(5))
        s = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(got, s + x * s * (1.0 - s))
    assert np.all(np.isfinite(got))


def test_forward_mode_and_second_order():
    rng = np.random.default_rng(5)
    x, w, v = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    value, tangent = srcdiff.jvp(plain, (x, w), (v, None))
    np.testing.assert_allclose(tangent, srcdiff.grad(plain, wrt="x")(x, w) @ v, rtol=1e-10)
    hv = srcdiff.hvp(plain, x, v, w)
    eps = 1e-6
    g = srcdiff.grad(plain, wrt="x")
    np.testing.assert_allclose(hv, (g(x + eps * v, w) - g(x - eps * v, w)) / (2 * eps),
                               rtol=1e-5, atol=1e-7)


def logistic_loss(w, X, y):
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def logistic_loss_dot(w, X, y):
    p = 1 / (1 + np.exp(-np.dot(X, w)))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()


@pytest.mark.parametrize("fn", [logistic_loss, logistic_loss_dot], ids=lambda f: f.__name__)
def test_the_sigmoid_keeps_its_inputs_shape(fn):
    """Under a shape pattern, rt.sigmoid(z) has z's shape (and dtype): the logistic loss's
    adjoints need no rt.unbroadcast, and its temporaries take results in place."""
    rng = np.random.default_rng(7)
    X, y, w = rng.normal(size=(20, 3)), (rng.random(20) > 0.5) * 1.0, rng.normal(size=3)
    grad = srcdiff.grad(fn, wrt="w")
    for _ in range(2):
        check_grad(fn, (w, X, y), (grad(w, X, y),), argnums=(0,))
    assert "rt.sigmoid(" in grad.source and "unbroadcast" not in grad.source
    assert " *= " in grad.source
