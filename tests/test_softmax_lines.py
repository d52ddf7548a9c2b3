"""The lines of a softmax become one ``rt.softmax`` (transforms/softmax.py): its adjoint is
one product instead of five adjoints (the maximum's is zero in exact arithmetic). Every
spelling is checked against finite differences, its value against the function's own to the
bit, and the source says whether the lines were lowered; where anything else reads an
intermediate value, they are not."""

import os

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_jvp


def keyword_axis(s, w):
    z = s * w
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(p * w)


def methods(s, w):
    z = s * w
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return np.sum(np.log(p) * w)


def positional_axis(s, w):
    z = s * w
    e = np.exp(z - np.amax(z, -1, keepdims=True))
    return np.sum(w * (e / np.sum(e, -1, keepdims=True)))


def unshifted(s, w):
    e = np.exp(s * w)
    p = e / np.sum(e, axis=0, keepdims=True)
    return np.sum(p ** 2)


def two_exponentials(s, w):
    z = s * w
    return np.sum(w * (np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True)))


def two_exponentials_whole(s, w):
    z = s * w
    p = np.exp(z) / np.exp(z).sum()
    return np.sum(w * p)


def whole(s, w):
    z = s * w
    e = np.exp(z - np.max(z))
    p = e / np.sum(e)
    return np.sum(p * np.cos(w))


def in_a_loop(s, w):
    h = s
    for _ in range(3):
        z = h * w
        e = np.exp(z - np.max(z, axis=-1, keepdims=True))
        h = e / np.sum(e, axis=-1, keepdims=True) + 0.5 * h
    return np.sum(h * h)


def other_axes(s, w):  # shifted along axis 0, normalised along 1: an unshifted softmax of z
    z = s * w
    z = z - np.max(z, axis=0, keepdims=True)
    e = np.exp(z)
    p = e / np.sum(e, axis=1, keepdims=True)
    return np.sum(p * w)


LOWERED = [keyword_axis, methods, positional_axis, unshifted, two_exponentials,
           two_exponentials_whole, whole, in_a_loop, other_axes]
SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((1, 5), (2, 5)), ((2, 1), (2, 3))]


@pytest.mark.parametrize("fn", LOWERED)
@pytest.mark.parametrize("shapes", SHAPES)
def test_gradients_and_values(fn, shapes):
    _check_lowered(fn, shapes, "rt.softmax(")


def _check_lowered(fn, shapes, call):
    """grad against finite differences, the lines lowered to ``call``, value_and_grad's value
    the function's own to the bit and its gradients grad's."""
    rng = np.random.default_rng(3)
    args = tuple(rng.uniform(-1.5, 1.5, s) for s in shapes)
    g = srcdiff.grad(fn, wrt=(0, 1))
    grads = g(*args)
    check_grad(fn, args, grads, argnums=(0, 1))
    assert call in g.source
    value, again = srcdiff.value_and_grad(fn, wrt=(0, 1))(*args)
    assert value == fn(*args)  # the same operations: the same value, to the bit
    for a, b in zip(again, grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_a_vector_and_a_number():
    x = np.array([0.3, -1.2, 2.0])
    for fn, args in ((whole, (x, 0.7)), (whole, (0.4, 1.3)), (keyword_axis, (x, x[::-1]))):
        g = srcdiff.grad(fn, wrt=(0, 1))
        grads = g(*args)
        check_grad(fn, args, grads, argnums=(0, 1))
        for a, gi in zip(args, grads):
            assert np.shape(gi) == np.shape(a)


def test_the_adjoint_is_one_product():
    s, w = np.ones((2, 3)), np.linspace(0, 1, 3)
    g = srcdiff.grad(keyword_axis, wrt=(0, 1))
    g(s, w)
    assert "p = rt.softmax(z, axis=-1)" in g.source
    code = "\n".join(line.split("#")[0] for line in g.source.splitlines())  # no comments
    assert "max_adjoint" not in code and "np.exp" not in code
    assert "# adjoint of: e = np.exp(z - np.max(z, axis=-1, keepdims=True)); " \
           "p = e / np.sum(e, axis=-1, keepdims=True)" in g.source


def e_read_again(s, w):
    z = s * w
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(p * w) + np.sum(e)


def total_read_again(s, w):  # log-sum-exp beside the softmax
    z = s * w
    e = np.exp(z)
    t = np.sum(e, axis=-1, keepdims=True)
    p = e / t
    return np.sum(p * w) + np.sum(np.log(t))


def no_keepdims(s, w):  # square: e / (row sums) broadcasts along the other axis
    e = np.exp(s * w)
    p = e / np.sum(e, axis=-1)
    return np.sum(p * w)


def whole_keepdims(s, w):
    e = np.exp(s * w)
    p = e / np.sum(e, keepdims=True)
    return np.sum(p * w)


def input_is_overwritten(s, w):
    z = s * w
    m = np.max(z, axis=-1, keepdims=True)
    z = z - m  # z is assigned twice: the shifted form is not matched, the unshifted one is
    e = np.exp(z)
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(p * w)


@pytest.mark.parametrize("fn, lowered", [(e_read_again, False), (total_read_again, False),
                                         (no_keepdims, False), (whole_keepdims, False),
                                         (input_is_overwritten, True)])
def test_what_is_read_elsewhere_keeps_its_lines(fn, lowered):
    rng = np.random.default_rng(5)
    args = (rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, (3, 3)))
    g = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, args, g(*args), argnums=(0, 1))
    assert ("rt.softmax(" in g.source) == lowered


def test_forward_mode_and_hessian():
    x = np.array([[0.2, -0.4, 1.1], [0.5, 0.0, -0.3]])
    w = np.array([1.0, -0.5, 0.25])
    dx, dw = np.ones_like(x) * 0.3, np.array([0.2, 1.0, -0.7])
    value, tangent = srcdiff.jvp(keyword_axis, (x, w), (dx, dw))
    assert value == pytest.approx(keyword_axis(x, w))
    check_jvp(keyword_axis, (x, w), (dx, dw), tangent)
    _check_hessian_in_w(keyword_axis, x, w)


def _check_hessian_in_w(fn, x, w):
    """srcdiff.hessian of ``fn`` in ``w`` against central differences of its gradient."""
    h = srcdiff.hessian(lambda w, x: fn(x, w), wrt=0)(w, x)
    eps = 1e-5
    grad = srcdiff.grad(fn, wrt=1)
    numeric = np.stack([(grad(x, w + eps * e) - grad(x, w - eps * e)) / (2 * eps)
                        for e in np.eye(w.size)], axis=1)
    np.testing.assert_allclose(h, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long (numba compiles the "
                    "derivative, ~10 s): set SRCDIFF_SLOW=1; the twin is in test_jit_twins.py")
def test_compiled_path_agrees():
    pytest.importorskip("numba")
    x = np.array([[0.2, -0.4, 1.1], [0.5, 0.0, -0.3]])
    w = np.array([1.0, -0.5, 0.25])
    g = srcdiff.grad(keyword_axis, wrt=(0, 1))
    for a, b in zip(srcdiff.jit(g)(x, w), g(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


# ----- log-softmax: z - log(sum(exp(z))), a cross-entropy's -----


def cross_entropy(s, w):
    logits = s * w
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(np.cos(w) * (z - lse), axis=1))


def log_softmax_methods(s, w):
    z = s * w - (s * w).max(axis=-1, keepdims=True)
    return np.sum(w * (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))))


def log_softmax_unshifted(s, w):
    x = s * w
    return np.sum((x - np.log(np.sum(np.exp(x), axis=0, keepdims=True))) ** 2)


def log_softmax_whole(s, w):
    x = s * w
    return np.sum(np.sin(x - np.log(np.sum(np.exp(x)))))


LOG_LOWERED = [cross_entropy, log_softmax_methods, log_softmax_unshifted, log_softmax_whole]


@pytest.mark.parametrize("fn", LOG_LOWERED)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 5), (1, 5))])
def test_log_softmax_gradients_and_values(fn, shapes):
    _check_lowered(fn, shapes, "rt.log_softmax(")


def lse_read_again(s, w):
    x = s * w
    lse = np.log(np.sum(np.exp(x), axis=1, keepdims=True))
    return np.sum(w * (x - lse)) + np.sum(lse)


def rebound_between(s, w):
    x = s * w
    lse = np.log(np.sum(np.exp(x), axis=1, keepdims=True))
    x = x * 2.0  # x - lse reads another x: not a log-softmax of either
    return np.sum(w * (x - lse))


@pytest.mark.parametrize("fn", [lse_read_again, rebound_between])
def test_a_log_sum_exp_read_elsewhere_keeps_its_lines(fn):
    rng = np.random.default_rng(8)
    args = (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)))
    g = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, args, g(*args), argnums=(0, 1))
    assert "rt.log_softmax(" not in g.source


def test_log_softmax_forward_mode_and_hessian():
    x = np.array([[0.2, -0.4, 1.1, 0.3], [0.5, 0.0, -0.3, 0.9], [1.0, -1.0, 0.2, 0.1]])
    w = np.array([1.0, -0.5, 0.25, 0.7])
    dx, dw = np.full_like(x, 0.3), np.array([0.2, 1.0, -0.7, 0.1])
    value, tangent = srcdiff.jvp(cross_entropy, (x, w), (dx, dw))
    assert value == pytest.approx(cross_entropy(x, w))
    check_jvp(cross_entropy, (x, w), (dx, dw), tangent)
    _check_hessian_in_w(cross_entropy, x, w)
