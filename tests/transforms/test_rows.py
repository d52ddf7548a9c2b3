"""The rows stage: a loop's matmul terms that are rows ``xs[t]`` of the array it walks read
``xs`` after the backward loop, not the tape; and the runtime sums that take them."""

import numpy as np
import pytest

import srcdiff
from srcdiff import runtime as rt
from srcdiff.testing import check_grad

from ..test_benchmarks_spellings import sp

rnn_range = sp.rnn_matmul_op  # for t in range(xs.shape[0]): h = np.tanh(W @ h + U @ xs[t])


def rnn_len_dot(W, U, xs, h0):
    h = h0
    for t in range(len(xs)):
        h = np.tanh(np.dot(W, h) + np.dot(U, xs[t]))
    return np.sum(h * h)


def rnn_iterate(W, U, xs, h0):
    h = h0
    for x_t in xs:
        h = np.tanh(W.dot(h) + U.dot(x_t))
    return np.sum(h)


def rnn_running_sum(W, U, xs, h0):
    h, total = h0, 0.0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
        total = total + np.sum(h)
    return total


def row_read_again(W, U, xs, h0):  # the row is also a factor: it stays on the tape
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t]) * np.sum(np.cos(xs[t]))
    return np.sum(h)


def rows_on_the_left(W, U, xs, h0):  # xs[t] @ U: the other side of the product
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(h @ W + xs[t] @ U)
    return np.sum(h)


def fewer_rows(W, U, xs, h0):  # not every row: the tape keeps them
    h = h0
    for t in range(xs.shape[0] - 1):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h)


def args(rng, steps=4, n=3, m=2):
    return (rng.normal(size=(n, n)) * 0.5, rng.normal(size=(n, m)),
            rng.normal(size=(steps, m)), 0.1 * rng.normal(size=n))


@pytest.mark.parametrize("fn", [rnn_range, rnn_len_dot, rnn_iterate, rnn_running_sum],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("steps", [1, 5])
def test_the_rows_are_read_from_the_array(fn, steps):
    rng = np.random.default_rng(steps)
    a = args(rng, steps)
    grad = srcdiff.grad(fn, wrt=(0, 1))
    for _ in range(2):
        got = grad(*a)
        check_grad(fn, a, got, argnums=(0, 1))
    source = grad.source
    assert "_sum, U, xs)" in source and "rt.carried(_tape1, None, h)" in source, source
    assert "= xs[" not in source and "kept for the pullback: h_3" in source


def test_a_row_read_elsewhere_stays_on_the_tape():
    rng = np.random.default_rng(3)
    a = args(rng, 4)
    grad = srcdiff.grad(row_read_again, wrt=(0, 1))
    check_grad(row_read_again, a, grad(*a), argnums=(0, 1))
    assert "_sum, U, xs)" in grad.source and "= xs[t]" in grad.source


def test_rows_on_the_left_of_the_product():
    rng = np.random.default_rng(4)
    W, _, xs, h0 = args(rng, 4)
    U = rng.normal(size=(2, 3))
    grad = srcdiff.grad(rows_on_the_left, wrt=(0, 1))
    check_grad(rows_on_the_left, (W, U, xs, h0), grad(W, U, xs, h0), argnums=(0, 1))




def test_a_batch_of_rows_takes_the_terms_one_by_one():
    """``xs`` of shape (steps, batch, m): each row a matrix, summed term by term."""
    rng = np.random.default_rng(6)
    W, U, h0 = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(2, 3)), rng.normal(size=(4, 3))
    xs = rng.normal(size=(5, 4, 2))
    grad = srcdiff.grad(rows_on_the_left, wrt=(0, 1))
    check_grad(rows_on_the_left, (W, U, xs, h0), grad(W, U, xs, h0), argnums=(0, 1))


@pytest.mark.parametrize("rule", [rt.matmul_adjoint_x1_sum, rt.dot_adjoint_a_sum])
def test_a_sum_of_rows_is_the_sum_of_its_terms(rule):
    rng = np.random.default_rng(7)
    U, xs = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    gs = [rng.normal(size=3) for _ in range(4)]  # appended last step first
    pairs = [(g, xs[3 - k]) for k, g in enumerate(gs)]
    want = sum(np.outer(g, x) for g, x in pairs)
    np.testing.assert_allclose(rule(gs, U, rows=xs), want, rtol=1e-12)
    np.testing.assert_allclose(rule(pairs, U), want, rtol=1e-12)
    shared_u, shared_w = rt.matmul_adjoint_sums(
        [(g, h) for g, h in zip(gs, xs[::-1] * 2.0)], (rt.matmul_adjoint_x1_sum, U, xs),
        (rt.matmul_adjoint_x1_sum, U))
    np.testing.assert_allclose(shared_u, want, rtol=1e-12)
    np.testing.assert_allclose(shared_w, 2.0 * want, rtol=1e-12)
    with pytest.raises(ValueError, match="rows"):
        rule(gs[:3], U, rows=xs)


def rebound_rows(W, U, xs, h0):  # xs rebound before the loop: the loop walks another array
    h = h0
    xs = xs * 2.0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h)


@pytest.mark.parametrize("fn", [fewer_rows, rebound_rows], ids=lambda f: f.__name__)
def test_rows_not_walked_from_an_argument_stay_on_the_tape(fn):
    """A loop over fewer rows than the array has, or over an array the function rebound:
    the sum takes the taped rows."""
    rng = np.random.default_rng(5)
    a = args(rng, 4)
    grad = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, a, grad(*a), argnums=(0, 1))
    assert "_sum, U, xs)" not in grad.source


def test_rows_differentiated_too():
    """d/dxs: each row's adjoint (``g @ U`` into row t) reads no row; the sum of U's adjoint
    reads xs, W's the states."""
    rng = np.random.default_rng(9)
    a = args(rng, 4)
    grad = srcdiff.grad(rnn_len_dot, wrt=(0, 1, 2))
    check_grad(rnn_len_dot, a, grad(*a), argnums=(0, 1, 2))
    assert "_sum, U, xs)" in grad.source and "rt.carried(" in grad.source


def reset_state(W, U, xs, h0):  # the state is not carried from the step before
    h = h0
    for t in range(xs.shape[0]):
        g = h0 * 0.5
        h = np.tanh(W @ g + U @ xs[t]) + h
    return np.sum(h)


def state_from_a_product(W, U, xs, h0):  # carried, from a value made before the loop
    h = np.tanh(h0 * 2.0)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h * h)


@pytest.mark.parametrize("fn", [reset_state, state_from_a_product], ids=lambda f: f.__name__)
def test_states_that_are_and_are_not_carried(fn):
    rng = np.random.default_rng(10)
    a = args(rng, 3)
    grad = srcdiff.grad(fn, wrt=(0, 1, 3))
    for _ in range(2):
        check_grad(fn, a, grad(*a), argnums=(0, 1, 3))
    assert ("rt.carried(" in grad.source) == (fn is state_from_a_product)


def test_carried_states_with_and_without_the_stacked_column():
    from srcdiff.runtime.tape import Tape, carried, each_step

    rng = np.random.default_rng(11)
    first, states = rng.normal(size=3), [rng.normal(size=3) for _ in range(4)]
    want = np.array([first, *states[:-1]])
    for position in (None, 1):
        tape = Tape()
        for h in states:
            tape.push(h if position is None else (None, h))
        np.testing.assert_array_equal(carried(tape, position, first), want)  # stacked here
        factors = each_step(lambda h: 1.0 - h * h, tape, (position,))
        np.testing.assert_allclose(factors, 1.0 - np.array(states[::-1]) ** 2)
        np.testing.assert_array_equal(carried(tape, position, first), want)  # each_step's
    plain = [(None, 2.0), (None, 3.0)]  # numbers: a list, not an array
    assert carried(plain, 1, 1.0) == [1.0, 2.0]
