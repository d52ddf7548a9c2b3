"""has_aux, and vjp for non-scalar, tuple and dict outputs."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .helpers import make_function

X, W = np.array([0.3, -0.2, 0.9]), np.array([1.5, 0.5, -0.7])


def test_has_aux_returns_aux_untouched():
    fn = make_function("""
        def f(w, x):
            pred = x * w
            return np.sum(pred ** 2), pred
    """)
    grads, aux = srcdiff.grad(fn, has_aux=True)(W, X)
    np.testing.assert_allclose(aux, X * W)
    check_grad(lambda w, x: fn(w, x)[0], (W, X), [grads], argnums=(0,))
    (loss, aux2), grads2 = srcdiff.value_and_grad(fn, has_aux=True)(W, X)
    assert loss == pytest.approx(np.sum((X * W) ** 2))
    np.testing.assert_array_equal(grads, grads2)


def test_has_aux_needs_a_pair():
    fn = make_function("""
        def f(w):
            return np.sum(w)
    """)
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="has_aux"):
        srcdiff.grad(fn, has_aux=True)(W)


def test_vjp_of_tuple_output():
    fn = make_function("""
        def f(x, w):
            a = np.tanh(x * w)
            return a, np.sum(a * x), x
    """)
    out, pullback = srcdiff.vjp(fn, X, W)
    v = (np.array([1.0, 2.0, -1.0]), 0.5, np.array([0.1, 0.2, 0.3]))
    grads = pullback(v)

    def weighted(x, w):
        a, s, xx = fn(x, w)
        return np.sum(a * v[0]) + s * v[1] + np.sum(xx * v[2])

    check_grad(weighted, (X, W), grads)
    zero_first = pullback((None, 1.0, None))
    check_grad(lambda x, w: fn(x, w)[1], (X, W), zero_first)


def test_vjp_of_dict_output():
    fn = make_function("""
        def f(x):
            return {"square": x ** 2, "total": np.sum(x)}
    """)
    _, pullback = srcdiff.vjp(fn, X)
    (dx,) = pullback({"square": np.ones(3), "total": 2.0})
    np.testing.assert_allclose(dx, 2 * X + 2.0)


def test_vjp_of_matrix_output_against_the_oracle():
    fn = make_function("""
        def f(a, b):
            return np.tanh(a @ b)
    """)
    rng = np.random.default_rng(0)
    a, b, v = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    out, pullback = srcdiff.vjp(fn, a, b)
    check_vjp(fn, (a, b), pullback(v), cotangent=v)


@pytest.mark.parametrize("bad, message", [
    ((1.0, 2.0), "tuple of 3"),
    ([np.ones(3), 1.0, np.ones(2)], "shape"),
    (np.ones(3), "tuple of 3"),
])
def test_mismatched_cotangents_are_clear_errors(bad, message):
    fn = make_function("""
        def f(x):
            return x * 2.0, np.sum(x), x
    """)
    _, pullback = srcdiff.vjp(fn, X)
    with pytest.raises(srcdiff.GradientTypeError, match=message):
        pullback(bad)


def test_dict_cotangent_keys_must_match():
    fn = make_function("""
        def f(x):
            return {"a": x * 2.0}
    """)
    _, pullback = srcdiff.vjp(fn, X)
    with pytest.raises(srcdiff.GradientTypeError, match="same keys"):
        pullback({"b": np.ones(3)})
