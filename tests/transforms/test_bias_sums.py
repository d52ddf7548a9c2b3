"""batch: a bias's adjoint in a tape loop (``db = db + rt.unbroadcast(dz, b)`` each step) is
summed once after the loop from the terms ``rt.Terms`` keeps for ``dW`` (``rt.terms_sum``)."""

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import rules
from srcdiff.runtime.helpers import unbroadcast
from srcdiff.runtime.tape import Terms
from srcdiff.testing import check_grad

from ..helpers import make_function

rng = np.random.default_rng(33)

CELLS = {  # name -> (source, how many bias sums the pullback should make after the loop)
    "plain": ("""
        def f(W, U, b, xs, h):
            for x_t in xs:
                h = np.tanh(x_t @ W + h @ U + b)
            return np.sum(h * h)
    """, 1),
    "dot_and_row_bias": ("""
        def f(W, U, b, xs, h):
            for t in range(xs.shape[0]):
                h = np.tanh(np.dot(xs[t], W) + np.dot(h, U) + b.reshape(1, -1))
            return np.sum(h)
    """, None),
    "two_biases": ("""
        def f(W, U, b, xs, h):
            for x_t in xs:
                h = np.tanh(x_t @ W + b + h @ U + 0.5 * b)
            return np.sum(h * h)
    """, None),
    "scaled_bias": ("""
        def f(W, U, b, xs, h):
            for t in range(xs.shape[0]):
                h = np.tanh(xs[t] @ W + h @ U + b * (t + 1.0))  # db: not dz's sum
            return np.sum(h * h)
    """, 0),
    "gates": ("""
        def f(W, U, b, xs, h):
            n = h.shape[1]
            c = h * 0.0
            for x_t in xs:
                z = x_t @ W + h @ U + b
                c = c * np.tanh(z[:, :n]) + np.tanh(z[:, n:])
                h = np.tanh(c)
            return np.sum(h * h)
    """, 1),
}


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("batch", [1, 16])  # adjoints under a page (a list) and over (rows)
def test_bias_adjoints_of_a_loop_against_finite_differences(name, batch):
    source, sums = CELLS[name]
    fn = make_function(source)
    n_in, n = 5, 32
    width = 2 * n if name == "gates" else n
    args = (rng.normal(size=(n_in, width)) / 3, rng.normal(size=(n, width)) / 6,
            0.1 * rng.normal(size=width), rng.normal(size=(4, batch, n_in)),
            0.1 * rng.normal(size=(batch, n)))
    grad = srcdiff.grad(fn, wrt=(0, 1, 2))
    first = grad(*args)
    check_grad(fn, args, first, argnums=(0, 1, 2))
    for again, want in zip(grad(*args), first):  # a second call: fresh terms, the same bits
        np.testing.assert_array_equal(again, want)
    # value_and_grad's variant (its own stages' choices: the same numbers to rounding)
    value, also = srcdiff.value_and_grad(fn, wrt=(0, 1, 2))(*args)
    assert value == pytest.approx(fn(*args), rel=1e-12)
    for got, want in zip(also, first):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if sums is not None:
        assert grad.source.count("rt.terms_sum(") == sums, grad.source
    if sums:
        assert "db = rt.zeros_like(b)" not in grad.source


def _steps(gs, like, axis):
    total = np.zeros_like(like)
    for g in gs[::-1]:  # the pullback's order: last step first
        total = total + (unbroadcast(g, like) if axis is None else g.sum(axis=axis))
    return total


@pytest.mark.parametrize("shape,like,axis", [
    ((16, 64), (64,), None), ((16, 64), (1, 64), None), ((16, 64), (16, 64), None),
    ((16, 64), (), None), ((600,), (600,), None), ((8, 4, 32), (4, 1), None),
    ((16, 64), (64,), 0), ((16, 64), (16,), 1), ((16, 64), (16,), -1), ((8, 4, 32), (8, 32), 1),
])
@pytest.mark.parametrize("rows", [True, False])
def test_terms_sum_is_the_steps_sum(shape, like, axis, rows):
    gs = [rng.normal(size=shape) for _ in range(5)]
    like = rng.normal(size=like)
    terms = Terms(5) if rows else []
    for g in gs[::-1]:
        terms.append((g.copy(), "v"))
    assert (rows and terms.joined() is not None) == (rows and gs[0].nbytes >= 4096)
    got, want = rules.terms_sum(terms, like, axis), _steps(gs, like, axis)
    assert np.shape(got) == np.shape(want) and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_terms_sum_of_no_step_and_of_mixed_dtypes():
    like = rng.normal(size=64)
    assert rules.terms_sum(Terms(0), like).tolist() == [0.0] * 64
    for g_dtype, like_dtype in [(np.float32, np.float64), (np.float64, np.float32)]:
        gs = [rng.normal(size=(16, 64)).astype(g_dtype) for _ in range(3)]
        terms = Terms(3)
        for g in gs[::-1]:
            terms.append(g)
        got, want = rules.terms_sum(terms, like.astype(like_dtype)), _steps(gs, like.astype(like_dtype), None)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())  # float32 sums, another order
