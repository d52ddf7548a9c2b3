"""The steps stage: a tape loop's factors of taped values alone, for every step at once
(``rt.each_step``), in the variant for plain numpy arguments."""

import textwrap

import libcst as cst
import numpy as np
import pytest

import srcdiff
from srcdiff import pipeline
from srcdiff.context import Context
from srcdiff.pipeline import parameters
from srcdiff.runtime import tape
from srcdiff.source import get_source
from srcdiff.testing import check_grad
from srcdiff.transforms import steps

from ..helpers import code_lines, make_function
from ..test_list_loops import rnn_stack as rnn_list  # the states in a list, stacked
from ..test_shape_patterns import rnn, rnn_dot as rnn_iterate  # W @ h; np.dot, rows of xs


def rewritten(before: str, dims=(("W", 2),)) -> list[str]:
    fn = make_function("def f(W, h0):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=("W",), dims=dims)
    return code_lines(steps.rewrite(cst.parse_module(textwrap.dedent(before)), ctx).code)


LOOP = """
    def f_vjp(W, h0):
        _tape1 = rt.Tape()
        _out = 0.0

        def f_pullback(d_out):
            dh = d_out
            # adjoint of: for t in range(3):  (line 3)
            for h_2, h_3 in reversed(_tape1):
                {line}
                dh = rt.matmul_adjoint_x2(d_t1, W, h_2)
            return dh

        return _out, f_pullback
"""


def test_a_factor_of_taped_values_is_made_for_every_step_before_the_loop():
    after = """
        def f_vjp(W, h0):
            _tape1 = rt.Tape()
            _out = 0.0

            def f_pullback(d_out):
                dh = d_out
                # adjoint of: for t in range(3):  (line 3)
                # 1.0 - h_3 * h_3 of every step at once
                h_3_factors = rt.each_step(lambda h_3: 1.0 - h_3 * h_3, _tape1, (1,))
                for (h_2, h_3), h_3_factor in zip(reversed(_tape1), h_3_factors):
                    d_t1 = dh * h_3_factor
                    dh = rt.matmul_adjoint_x2(d_t1, W, h_2)
                return dh

            return _out, f_pullback
    """
    assert rewritten(LOOP.format(line="d_t1 = dh * (1.0 - h_3 * h_3)")) == code_lines(after)


@pytest.mark.parametrize("line", [
    "d_t1 = dh * h_3",                      # no operation
    "d_t1 = dh * (h_3 * h_3)",              # one product
    "d_t1 = 1.0 - h_3 * h_3",               # the whole value: it would be a row of the stack
    "d_t1 = dh * (1.0 - h_3 * dh)",         # an adjoint in it
    "d_t1 = dh * (1.0 - W * W)",            # no taped value (W is not on the tape)
    "d_t1 = dh * (1.0 - np.sum(h_3 * h_3))",  # a reduction: not elementwise
])
def test_other_lines_are_kept(line):
    assert rewritten(LOOP.format(line=line)) == code_lines(LOOP.format(line=line))


def test_a_taped_name_the_loop_binds_again_is_not_a_factor():
    source = LOOP.format(line="h_3 = dh * 2.0\n                d_t1 = dh * (1.0 - h_3 * h_3)")
    assert rewritten(source) == code_lines(source)


def test_without_a_shape_pattern_nothing_changes():
    source = LOOP.format(line="d_t1 = dh * (1.0 - h_3 * h_3)")
    assert rewritten(source, dims=()) == code_lines(source)


def test_one_factor_read_twice_is_made_once_and_several_are_zipped():
    source = LOOP.format(line="d_t1 = dh * (1.0 - h_3 * h_3) + dh * np.exp(-h_2)"
                              " / (1.0 - h_3 * h_3)")
    lines = rewritten(source)
    assert sum("rt.each_step" in line for line in lines) == 2
    lines = [line.strip() for line in lines]
    assert "for (h_2, h_3), h_3_factor, h_2_factor in zip(reversed(_tape1), h_3_factors, " \
           "h_2_factors):" in lines
    assert "d_t1 = dh * h_3_factor + dh * h_2_factor / h_3_factor" in lines


# ----- whole programs: the same gradients, with the factors made at once where they can be -----


def sigmoid_gate(W, U, xs, h0):
    h = h0
    for t in range(len(xs)):
        z = W @ h + U @ xs[t]
        s = 1.0 / (1.0 + np.exp(-z))
        h = s * np.cos(z)
    return np.sum(h)


def growing(W, U, xs, h0):  # the state's length changes: each step on its own
    h = h0
    for t in range(xs.shape[0]):
        h = np.concatenate([np.tanh(W @ h[:3] + U @ xs[t]), h[:1]])
    return np.sum(h)


def scalar_state(W, U, xs, h0):  # numbers on the tape: rt.each_step runs each step on its own
    s = 0.5
    for t in range(xs.shape[0]):
        s = np.tanh(np.sum(W) * s + 0.1 * t)
    return s * np.sum(U)


def _args(rng, n=3, steps=4, dtype=np.float64):
    return (rng.normal(size=(n, n)).astype(dtype) * 0.5, rng.normal(size=(n, 2)).astype(dtype),
            rng.normal(size=(steps, 2)).astype(dtype), rng.normal(size=n).astype(dtype) * 0.1)


def _without_steps(monkeypatch):
    monkeypatch.setattr(pipeline, "PIPELINE",
                        tuple(s for s in pipeline.PIPELINE if s[0] != "steps"))


PROGRAMS = [(rnn, True), (rnn_iterate, True), (rnn_list, True), (sigmoid_gate, True),
            (growing, True), (scalar_state, True)]


@pytest.mark.parametrize("fn, factors", PROGRAMS, ids=[p[0].__name__ for p in PROGRAMS])
@pytest.mark.parametrize("steps_", [0, 1, 5])
def test_gradients_match_finite_differences(fn, factors, steps_):
    rng = np.random.default_rng(steps_)
    args = _args(rng, steps=steps_)
    grad = srcdiff.grad(fn, wrt=("W", "U"))
    check_grad(fn, args, grad(*args), argnums=(0, 1))
    assert ("rt.each_step(" in grad.source) == factors


@pytest.mark.parametrize("fn", [rnn, sigmoid_gate, growing], ids=lambda f: f.__name__)
def test_the_same_gradients_as_without_the_stage(fn, monkeypatch):
    args = _args(np.random.default_rng(1), steps=6)
    with_steps = srcdiff.grad(fn, wrt=("W", "U"))(*args)
    _without_steps(monkeypatch)
    plain = srcdiff.grad(lambda W, U, xs, h0: fn(W, U, xs, h0), wrt=("W", "U"))(*args)
    for a, b in zip(with_steps, plain):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_float32_and_a_batch_of_states():
    def batched(W, U, xs, h0):  # h0: (batch, n); the factors are (batch, n) a step
        h = h0
        for t in range(xs.shape[0]):
            h = np.tanh(h @ W + xs[t] @ U)
        return np.sum(h ** 2)

    rng = np.random.default_rng(2)
    W, U = rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(2, 3))
    xs, h0 = rng.normal(size=(4, 5, 2)), rng.normal(size=(5, 3))
    grad = srcdiff.grad(batched, wrt=("W", "U"))
    check_grad(batched, (W, U, xs, h0), grad(W, U, xs, h0), argnums=(0, 1))
    assert "rt.each_step(" in grad.source
    low = grad(*(a.astype(np.float32) for a in (W, U, xs, h0)))
    assert all(g.dtype == np.float32 for g in low)
    np.testing.assert_allclose(low[0], grad(W, U, xs, h0)[0], rtol=1e-4, atol=1e-5)


def test_jit_and_the_general_variant_read_the_derivative_without_it():
    general = srcdiff.api.derivative(rnn, ("W", "U"), gradient=True)
    assert "each_step" not in general.source


# ----- rt.each_step -----


def _tape(*entries):
    t = tape.Tape()
    for e in entries:
        t.push(e)
    return t


def test_each_step_stacks_small_float_arrays_of_one_shape():
    rng = np.random.default_rng(3)
    entries = [(rng.normal(size=(2, 3)), rng.normal(size=(2, 3))) for _ in range(4)]
    fn = lambda a, b: np.tanh(a) * (1.0 - b * b)  # noqa: E731
    rows = tape.each_step(fn, _tape(*entries), (0, 1))
    assert isinstance(rows, np.ndarray) and rows.shape == (4, 2, 3)
    for row, (a, b) in zip(rows, reversed(entries)):
        np.testing.assert_allclose(row, fn(a, b), rtol=1e-15, atol=0)


class Sub(np.ndarray):  # a subclass (np.matrix's * is a matrix product): not stacked
    pass


@pytest.mark.parametrize("entries", [
    [(0.5,), (0.25,)],                                       # numbers
    [(np.ones(2),), (np.ones(3),)],                          # shapes that differ
    [(np.ones(2),), (np.float64(1.0),)],                     # a numpy number
    [(np.ones(2, dtype=np.int64),), (np.ones(2, dtype=np.int64),)],  # not floats
    [(np.ones(tape.STEP_SIZE + 1),), (np.ones(tape.STEP_SIZE + 1),)],  # large steps
    [(np.ones((1, 2)).view(Sub),), (np.ones((1, 2)),)],      # a subclass, then an array
    [([1.0, 2.0],), (np.ones(2),)],                          # a list, then an array
    [(np.ones((2, 2)),), (np.ones((2, 1)),), (np.ones((2, 2)),)],  # ragged in the middle
], ids=["numbers", "shapes", "numpy-number", "integers", "large", "subclass", "list", "ragged"])
def test_each_step_calls_the_function_once_a_step_otherwise(entries):
    calls = []

    def fn(a):
        calls.append(a)
        return np.multiply(a, 2.0) - 1.0

    rows = list(tape.each_step(fn, _tape(*entries), (0,)))
    assert len(calls) == len(entries)
    for row, (a,) in zip(rows, reversed(entries)):
        np.testing.assert_array_equal(row, np.multiply(a, 2.0) - 1.0)


def test_each_step_of_whole_entries_and_of_an_empty_tape():
    rows = tape.each_step(lambda h: 1.0 - h * h, _tape(np.ones(2), np.zeros(2)), (None,))
    np.testing.assert_array_equal(np.asarray(list(rows)), [[1.0, 1.0], [0.0, 0.0]])
    assert list(tape.each_step(lambda h: h, _tape(), (None,))) == []


def test_shapes_that_differ_between_operands_are_not_stacked():
    # (3,) and (1,) broadcast step by step; stacked, (n, 3) and (n, 1) would too, but (n,)
    # against (n, 3) would not: every operand must have the first one's shape
    entries = [(np.ones(3) * k, np.full(1, 2.0)) for k in range(3)]
    rows = list(tape.each_step(lambda a, b: a * b + 1.0, _tape(*entries), (0, 1)))
    for row, (a, b) in zip(rows, reversed(entries)):
        np.testing.assert_array_equal(row, a * b + 1.0)
