"""The lasts stage: a list read only at its last entry (``hs = [h0]``, ``hs.append(v)``,
``hs[-1]``) is one variable; any other use keeps the list. Gradients (reverse and forward
mode) against finite differences either way."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad, check_jvp


def rnn(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    return np.sum(hs[-1])


def rnn_dot(W, xs, h0):  # np.dot, a row by iteration, the last state read twice
    hs = [h0]
    for x_t in xs:
        hs.append(np.tanh(np.dot(W, hs[-1]) + x_t))
    return np.sum(hs[-1] * hs[-1])


def branches(W, xs, h0):  # appends on some paths only
    hs = [h0]
    for t in range(xs.shape[0]):
        if t % 2 == 0:
            hs.append(np.sin(W @ hs[-1]) + xs[t])
        else:
            hs.append(hs[-1] * xs[t])
    return np.sum(hs[-1] ** 2)


def reset_each_epoch(W, xs, h0):  # the display inside a loop: a new list each time
    total = 0.0
    for epoch in range(2):
        hs = [h0 * (epoch + 1)]
        for t in range(xs.shape[0]):
            hs.append(np.tanh(W @ hs[-1]) + xs[t])
        total = total + np.sum(hs[-1])
    return total


def while_loop(W, xs, h0):
    hs = [h0]
    t = 0
    while t < xs.shape[0]:
        hs.append(np.cos(W @ hs[-1]) * xs[t])
        t += 1
    return np.sum(hs[-1])


QUALIFY = [rnn, rnn_dot, branches, reset_each_epoch, while_loop]


def _args(seed=0, n=3, steps=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n)) * 0.5, rng.normal(size=(steps, n)), rng.normal(size=n)


@pytest.mark.parametrize("fn", QUALIFY, ids=lambda f: f.__name__)
def test_a_list_read_at_its_end_is_a_variable(fn):
    source = compile_derivative(fn, ("W", "xs", "h0"), gradient=True).source
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert "append(hs" not in code and "hs[" not in code and "hs_last" in code
    assert "# adjoint of: hs.append(" in source  # the user's line, as written


@pytest.mark.parametrize("fn", QUALIFY, ids=lambda f: f.__name__)
@pytest.mark.parametrize("steps", [1, 4])
def test_gradients_match_finite_differences(fn, steps):
    args = _args(steps, steps=steps)
    grad = srcdiff.grad(fn, wrt=(0, 1, 2))
    check_grad(fn, args, grad(*args), argnums=(0, 1, 2))
    value, grads = srcdiff.value_and_grad(fn, wrt=(0, 1, 2))(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    tangents = _args(steps + 10, steps=steps)
    _, tangent = srcdiff.jvp(fn, args, tangents)
    check_jvp(fn, args, tangents, tangent)


def measured(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    return np.sum(hs[-1]) * len(hs)


def second_last(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    return np.sum(hs[-1] * hs[-2])


def stacked(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    return np.sum(np.stack(hs))


def overwritten(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
        hs[-1] = hs[-1] * 2.0
    return np.sum(hs[-1])


def two_entries(W, xs, h0):
    hs = [xs[0], h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    return np.sum(hs[-1])


def popped(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    last = hs.pop()
    return np.sum(last * hs[-1])


def iterated(W, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    total = 0.0
    for h in hs:
        total = total + np.sum(h)
    return total + np.sum(hs[-1])


KEEP = [measured, second_last, stacked, overwritten, two_entries, popped, iterated]


@pytest.mark.parametrize("fn", KEEP, ids=lambda f: f.__name__)
def test_other_uses_keep_the_list_and_its_gradient(fn):
    try:
        source = compile_derivative(fn, ("W", "xs", "h0"), gradient=True).source
    except srcdiff.SrcdiffError:
        return  # a refusal names its line; never a list rewritten behind it
    assert "hs_last" not in source
    args = _args(7)
    check_grad(fn, args, srcdiff.grad(fn, wrt=(0, 1, 2))(*args), argnums=(0, 1, 2))


def test_a_parameter_list_is_the_callers():
    def extend(hs, W):
        hs = [hs[-1]]
        hs.append(np.tanh(W @ hs[-1]))
        return np.sum(hs[-1])

    source = compile_derivative(extend, ("W",), gradient=True).source
    assert "hs_last" not in source


def test_a_nested_function_keeps_the_list():
    def nested(W, xs, h0):
        hs = [h0]
        for t in range(xs.shape[0]):
            hs.append(np.tanh(W @ hs[-1] + xs[t]))
        last = lambda: hs[-1]  # noqa: E731
        return np.sum(hs[-1]) + np.sum(last())

    try:
        source = compile_derivative(nested, ("W",), gradient=True).source
    except srcdiff.SrcdiffError:
        return
    assert "hs_last" not in source
