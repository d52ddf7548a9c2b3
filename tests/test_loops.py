"""for and while loops: the tape, loop-carried adjoints, nesting, against the oracle."""

import time

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function, vjp_source

rng = np.random.default_rng(7)

LOOPS = {
    "rnn_range": ("""
        def f(W, U, x, h):
            for t in range(3):
                h = np.tanh(W @ h + U @ x[t])
            return np.sum(h)
    """, lambda: (rng.normal(size=(4, 4)) * 0.5, rng.normal(size=(4, 2)), rng.normal(size=(3, 2)),
                  rng.normal(size=4))),
    "rows_of_an_array": ("""
        def f(x, w):
            s = 0.0
            for row in x:
                s = s + np.sum(np.sin(row * w))
            return s
    """, lambda: (rng.normal(size=(4, 3)), rng.normal(size=3))),
    "enumerate_and_zip": ("""
        def f(x, y):
            acc = x[0] * 0.0
            for i, row in enumerate(x):
                acc = acc + row * (i + 1.0)
            for a, b in zip(x, y):
                acc = acc * 0.5 + a * b
            return np.sum(acc ** 2)
    """, lambda: (rng.normal(size=(3, 2)), rng.normal(size=(4, 2)))),
    "while_data_dependent": ("""
        def f(x, w):
            h = x
            n = 0
            while np.sum(h * h) < 50.0 and n < 20:
                h = h * w + 0.1
                n += 1
            return np.sum(h)
    """, lambda: (rng.uniform(0.5, 1.0, 3), rng.uniform(1.2, 1.5, 3))),
    "nested_loops": ("""
        def f(w, x):
            total = 0.0
            for i in range(3):
                h = x * (i + 1.0)
                for j in range(2):
                    h = np.tanh(h * w)
                total = total + np.sum(h)
            return total
    """, lambda: (rng.normal(size=3), rng.normal(size=3))),
    "branch_in_loop": ("""
        def f(x, w):
            s = x * 1.0
            for k in range(4):
                if np.sum(s) > 0:
                    s = s * w
                else:
                    s = s - w * 0.5
            return np.sum(s ** 2)
    """, lambda: (rng.normal(size=3), rng.normal(size=3))),
    "loop_in_branch": ("""
        def f(x, w):
            y = x
            if w[0] > 0:
                for k in range(3):
                    y = y * w
            return np.sum(y)
    """, lambda: (rng.normal(size=3), rng.normal(size=3))),
    "defined_in_loop_used_after": ("""
        def f(x):
            for k in range(3):
                last = x * (k + 1.0)
            return np.sum(last ** 2) + k
    """, lambda: (rng.normal(size=3),)),
    "index_read_in_and_after_the_loop": ("""
        def f(x):
            s = x * 0.0
            for t in range(4):
                s = s + np.sin(x * t)
            return np.sum(s) * t
    """, lambda: (rng.normal(size=3),)),  # the adjoint reads each iteration's t, not the last
    "no_grad_in_loop": ("""
        def f(x):
            s = x * 1.0
            for k in range(3):
                with srcdiff.no_grad():
                    scale = np.max(np.abs(s))
                s = s / scale
            return np.sum(s * x)
    """, None),
}


@pytest.mark.parametrize("name", sorted(set(LOOPS) - {"no_grad_in_loop"}))
def test_loops_match_finite_differences(name):
    source, make_args = LOOPS[name]
    fn = make_function(source)
    for _ in range(5):
        args = make_args()
        grads = srcdiff.grad(fn, wrt=tuple(range(len(args))))(*args)
        check_grad(fn, args, grads)


def test_no_grad_inside_a_loop_against_a_hand_derivation():
    fn = make_function(LOOPS["no_grad_in_loop"][0])
    x = np.array([1.0, -2.0, 0.5])
    # s = x / (2 * 1 * 1) after three normalisations by constants 2, 1, 1: f = sum(x^2) / 2
    np.testing.assert_allclose(srcdiff.grad(fn)(x), x)


def test_loop_source_reads_as_primal_then_reversed_tape():
    fn = make_function(LOOPS["rnn_range"][0])
    # the vjp form: a forward function and its pullback (grad runs the pullback in line)
    source = vjp_source(fn, wrt=(0, 1))
    forward, pullback = source.split("_pullback(")
    assert "_tape1 = rt.Tape()" in forward and "_tape1.push(" in forward
    assert "in reversed(_tape1):" in pullback
    # dW's terms are summed after the loop, and that sum starts dW (no zeros to add to)
    assert "dW_terms.append(" in pullback and "dW = rt.matmul_adjoint_x1_sum(dW_terms, W)" in pullback
    assert "rt.zeros_like(W)" not in pullback


def test_only_what_the_adjoint_reads_is_taped():
    fn = make_function("""
        def f(x, w):
            for k in range(5):
                x = x * w + 1.0
            return np.sum(x)
    """)
    source = srcdiff.grad(fn, wrt=(0,)).source
    push = next(line for line in source.splitlines() if ".push(" in line)
    assert "k" not in push.split("push")[1]  # the loop index is not needed by the adjoint
    np.testing.assert_allclose(srcdiff.grad(fn)(np.ones(2), np.full(2, 2.0)), [32.0, 32.0])


def test_loop_with_no_differentiated_values_has_no_tape():
    fn = make_function("""
        def f(x, n):
            k = 0.0
            for i in range(n):
                k = k + 1.0
            return np.sum(x * k)
    """)
    source = srcdiff.grad(fn).source
    assert "Tape" not in source
    np.testing.assert_allclose(srcdiff.grad(fn)(np.ones(2), 3), [3.0, 3.0])


def test_pullback_of_a_loop_can_run_twice():
    fn = make_function(LOOPS["rnn_range"][0])
    args = LOOPS["rnn_range"][1]()
    out, pullback = srcdiff.vjp(fn, *args)
    first, second = pullback(1.0), pullback(1.0)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_long_scalar_loop_is_linear_in_its_length():
    fn = make_function("""
        def f(a, n):
            s = 0.0
            for i in range(n):
                s = s * 0.5 + a
            return s
    """)
    dfn = srcdiff.grad(fn)
    assert dfn(1.0, 10) == pytest.approx(sum(0.5 ** k for k in range(10)))
    timings = {}
    for n in (10_000, 100_000):
        start = time.perf_counter()
        value = dfn(0.3, n)
        timings[n] = time.perf_counter() - start
        assert value == pytest.approx(2.0)
    # ten times the iterations in well under a hundred times the time (linear, not quadratic)
    assert timings[100_000] < 30 * timings[10_000] + 0.05


JUMPS = {
    "break_and_continue": ("""
        def f(x, w):
            h = x
            for t in range(6):
                h = np.tanh(h * w)
                if np.sum(h) > 1.5:
                    break
                if h[0] < 0:
                    continue
                h = h + 0.1
            return np.sum(h ** 2)
    """, lambda: (rng.normal(size=3), rng.normal(size=3) * 2)),
    "return_inside_a_loop": ("""
        def f(x, w):
            for i in range(len(x)):
                v = x[i] * w
                if v > 1.0:
                    return v * 2.0
            return np.sum(x) * w
    """, lambda: (rng.normal(size=4), float(rng.normal() * 2))),
    "while_true_with_break": ("""
        def f(x):
            s = x * 1.0
            n = 0
            while True:
                s = s * 1.5
                n += 1
                if np.sum(s) > 10.0 or n > 20:
                    break
            return np.sum(s)
    """, lambda: (rng.uniform(0.5, 1.0, 3),)),
    "loop_over_a_tuple_of_arrays": ("""
        def f(w1, w2, x):
            h = x
            for w in (w1, w2):
                h = np.tanh(h * w)
            return np.sum(h)
    """, lambda: (rng.normal(size=3), rng.normal(size=3), rng.normal(size=3))),
}


@pytest.mark.parametrize("name", sorted(JUMPS))
def test_jumps_match_finite_differences(name):
    source, make_args = JUMPS[name]
    fn = make_function(source)
    for _ in range(25):  # random inputs take the jumps at different iterations
        args = make_args()
        grads = srcdiff.grad(fn, wrt=tuple(range(len(args))))(*args)
        check_grad(fn, args, grads)


def test_value_carried_to_the_next_iteration_then_replaced():
    """Found by the fuzzer: b reads last iteration's x, then x is replaced by a function of w.
    One dry run of the loop body missed the path to w (dw came back zero)."""
    fn = make_function("""
        def f(x, w, n):
            for i in range(n):
                b = x * 2.0
                x = w * 3.0
            return np.sum(b)
    """)
    x, w = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    dx, dw = srcdiff.grad(fn, wrt=(0, 1))(x, w, 2)
    np.testing.assert_allclose(dx, 0.0)
    np.testing.assert_allclose(dw, 6.0)
    for n in (1, 2, 3):
        check_grad(lambda x, w: fn(x, w, n), (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w, n))


THREE_DEEP = {  # loops three deep: each iteration's inner tape must be its own
    "numbers": """
        def f(x, w):
            for i in range(2):
                for j in range(2):
                    s = 0.0
                    for k in range(2):
                        s = s + np.min(w) * x[k]
                    w = np.tanh(s)
            return np.sum(w)
        """,
    "lists": """
        def f(x, w):
            for i in range(2):
                for j in range(2):
                    items = []
                    for r in x:
                        items.append(np.min(w) * r)
                    w = np.tanh(np.stack(items))
            return np.sum(w)
        """,
    "comprehension": """
        def f(x, w):
            for i in range(2):
                for j in range(3):
                    w = np.tanh(np.stack([np.min(w) + np.sin(r) for r in x]))
                    w = w * (1.0 + 0.1 * j)
            return np.sum(w * w)
        """,
    "while_inside": """
        def f(x, w):
            for i in range(2):
                k = 0
                while k < 2:
                    for r in x:
                        w = np.tanh(w * r + np.max(w))
                    k += 1
            return np.sum(w)
        """,
}


@pytest.mark.parametrize("name", sorted(THREE_DEEP))
def test_loops_three_deep_keep_each_iterations_tape(name):
    """A loop's dry runs wrote the loops inside it twice, and the middle loop then left its
    inner loop's tape off its own: the pullback read the last iteration's tape for every one
    (a NaN gradient from np.min's tie count, or a wrong one). Found by the fuzzer (run 15)."""
    fn = make_function(THREE_DEEP[name], name="f")
    x = np.array([[-1.0296, 0.8002, -0.0141], [1.3191, 0.8973, -0.6559]])
    w = np.array([0.0019, 0.3041, 0.2])
    grads = srcdiff.grad(fn, wrt=(0, 1))(x, w)
    check_grad(fn, (x, w), grads)
    out, pullback = srcdiff.vjp(fn, x, w)
    first, second = pullback(1.0), pullback(1.0)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


RESHAPED = {  # a step overwrites a variable without reading it, with a value of another shape
    "parameter_by_a_polynomial": """
        def f(x, w):
            for j in range(2):
                x = np.polymul(np.tanh(w), np.tanh(w * 0.5))
            return np.sum(np.sinh(x))
        """,
    "parameter_growing_each_step": """
        def f(x, w):
            for j in range(3):
                x = np.sin(w[:j + 1]) * 2.0
            return np.sum(x * x)
        """,
    "local_by_a_while_loop": """
        def f(x, w):
            h = x * 1.0
            k = 0
            while k < 2:
                h = np.outer(w, w)[0]
                k += 1
            return np.sum(np.exp(h)) + np.sum(x)
        """,
    "inside_a_loop": """
        def f(x, w):
            total = 0.0
            for i in range(2):
                h = x * (i + 1.0)
                for j in range(2):
                    h = np.concatenate([w, np.tanh(w)]) * (j + 1.0)
                total = total + np.sum(h * h)
            return total
        """,
    "bound_only_in_the_loop": """
        def f(x, w):
            for j in range(3):
                y = np.sin(w[:j + 1]) * x[0]
            return np.sum(y * y)
        """,
}


@pytest.mark.parametrize("name", sorted(RESHAPED))
def test_a_step_overwriting_a_value_of_another_shape(name):
    """Found by the program fuzzer (run 99, O40): the adjoint of the value a step overwrites
    without reading it is zero, and was made like the value after the loop, whose shape the
    value at the start of the step need not have (a broadcast error in the gradient). It is
    made like the value the step started from, which the body copies first."""
    fn = make_function(RESHAPED[name])
    for size in (4, 2):  # x longer, then shorter, than what the loop writes into it
        x, w = rng.normal(size=size) + 3.0, rng.normal(size=3) * 0.5
        grads = srcdiff.grad(fn, wrt=(0, 1))(x, w)
        check_grad(fn, (x, w), grads)
        assert grads[0].shape == x.shape
        check_grad(fn, (x, w), srcdiff.value_and_grad(fn, wrt=(0, 1))(x, w)[1])


def test_the_value_a_step_starts_from_is_kept_for_its_shape_alone():
    """O40's fix keeps what the step overwrote for its shape: a blank (zero strides, no
    memory of its own) where it is a large array, not each step's array till the pullback."""
    fn = make_function("""
        def f(x, w):
            for j in range(3):
                x = w * (j + 1.0)
            return np.sum(np.sinh(x))
        """)
    x, w = rng.normal(size=1000), rng.normal(size=1000) * 0.1
    grad = srcdiff.grad(fn, wrt=(0, 1))
    dx, dw = grad(x, w)
    assert not dx.any()
    np.testing.assert_allclose(dw, 3.0 * np.cosh(3.0 * w))
    assert "x_1_start = rt.blank_like(x_1)" in grad.source, grad.source
    small = (rng.normal(size=4), rng.normal(size=4))
    check_grad(fn, small, srcdiff.grad(fn, wrt=(0, 1))(*small))
