"""Lists built by appends in loops (the ``lists`` stage): in place, O(steps), same gradients.

Each function goes through grad, value_and_grad and vjp against finite differences; the
main patterns also check that the fast path was taken (``rt.append_in_place`` in the source),
and one test that the tape no longer grows with the square of the number of steps."""

import tracemalloc

import numpy as np
import pytest

import srcdiff

from .end_to_end import check_grad_by_finite_differences, check_value_and_grad, check_vjp_of_a_number


def rnn_last(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    return np.sum(hs[-1] ** 2)


def rnn_by_t(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[t] + U @ xs[t]))
    return np.sum(hs[-1] * hs[1])


def rnn_stack(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    return np.sum(np.stack(hs) ** 2)


def rnn_sum(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    return sum(np.sum(h) for h in hs)


def _total(items):
    s = 0.0
    for h in items:
        s = s + np.sum(np.sin(h))
    return s


def rnn_helper(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    return _total(hs)


def rnn_alias(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    zs = hs
    return np.sum(zs[-1]) + np.sum(zs[0] * hs[1])


def rnn_branches(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        if t % 2 == 0:
            hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
        else:
            hs.append(hs[-1] * 0.5 + U @ xs[t])
    return np.sum(hs[-1] ** 2)


def two_lists(W, U, xs, h0):
    hs = [h0]
    cs = []
    for t in range(xs.shape[0]):
        c = U @ xs[t]
        cs.append(c)
        hs.append(np.tanh(W @ hs[-1] + cs[-1]))
    return np.sum(hs[-1]) + np.sum(np.stack(cs) ** 2)


def nested_loops(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        for k in range(2):
            hs.append(np.tanh(W @ hs[-1] + U @ xs[t] * k))
    return np.sum(hs[-1] ** 2)


def lists_of_lists(W, U, xs, h0):
    rows = []
    for t in range(xs.shape[0]):
        row = [np.tanh(U @ xs[t])]
        row.append(W @ row[0] + h0)
        rows.append(row)
    return sum(np.sum(r[0] * r[1]) for r in rows)


def unread_entries(W, U, xs, h0):
    hs = [h0, U @ xs[0]]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1]))
    return np.sum(hs[1] ** 2)


def appends_after_loop(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    a = np.sum(np.stack(hs))
    hs.append(W @ hs[-1])
    return a * np.sum(hs[-1])


# the state is also a variable of its own: the appended value's adjoint adds to the one
# the next step gave it (dh_3 = dh_3 + rt.pop_adjoint(...))
def state_kept_and_stacked(W, U, xs, h0):
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
        hs.append(h)
    return np.sum(np.stack(hs) ** 2)


def state_kept_np_dot_rows(W, U, xs, h0):
    h = h0
    hs = [h]
    for x_t in xs:
        h = np.tanh(np.dot(W, h) + np.dot(U, x_t))
        hs.append(h)
    return np.sum(np.sin(np.stack(hs)))


def state_kept_read_back(W, U, xs, h0):
    h = h0
    hs = []
    for t in range(len(xs)):
        h = np.tanh(np.matmul(W, h) + U.dot(xs[t]))
        hs.append(h)
    return np.sum(hs[-1] * hs[0]) + np.sum(h)


FUNCTIONS = [rnn_last, rnn_by_t, rnn_stack, rnn_sum, rnn_helper, rnn_alias, rnn_branches,
             two_lists, nested_loops, lists_of_lists, unread_entries, appends_after_loop,
             state_kept_and_stacked, state_kept_np_dot_rows, state_kept_read_back]
FAST = [rnn_last, rnn_by_t, rnn_stack, rnn_sum, rnn_helper, rnn_alias, rnn_branches, two_lists,
        nested_loops, unread_entries, state_kept_and_stacked, state_kept_np_dot_rows,
        state_kept_read_back]


def _args(n, steps, seed=0, scalar_state=False):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) * 0.4
    U = rng.standard_normal((n, 2))
    xs = rng.standard_normal((steps, 2))
    h0 = rng.standard_normal(n)
    return W, U, xs, h0


CASES = [(3, 4), (1, 3), (4, 1)]  # (state size, steps): a 1-vector state broadcasts in U @ x


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n, steps", CASES)
def test_grad(fn, n, steps):
    check_grad_by_finite_differences(fn, _args(n, steps))


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n, steps", CASES)
def test_value_and_grad(fn, n, steps):
    check_value_and_grad(fn, _args(n, steps, seed=1), wrt=(0, 1, 3))


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_vjp(fn):
    check_vjp_of_a_number(fn, _args(3, 3, seed=2))


# lists read only at their end (hs[-1]): one variable from the start (the lasts stage)
LASTS = [rnn_last, rnn_branches, nested_loops]


@pytest.mark.parametrize("fn", FAST, ids=lambda f: f.__name__)
def test_fast_path_taken(fn):
    source = srcdiff.grad(fn, wrt=(0, 1, 3)).source
    if fn in LASTS:
        code = "\n".join(line.split("#")[0] for line in source.splitlines())  # no quoted lines
        assert "hs_last" in code and "append(" not in code.replace("_terms.append(", "")
        return
    assert "rt.append_in_place(" in source and "rt.append(" not in source
    assert "rt.tree_put(" not in source and "[:-1]" not in source


def rnn_scalar_state(w, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(w * hs[-1] + xs[t]))
    return hs[-1] * hs[1]


def test_python_float_state():
    args = (0.7, np.array([0.3, -0.2, 0.5]), 0.4)
    check_grad_by_finite_differences(rnn_scalar_state, args, wrt=(0, 2))
    check_value_and_grad(rnn_scalar_state, args, wrt=(0, 2))


def rnn_states(W, h0):
    hs = [h0]
    for t in range(3):
        hs.append(np.tanh(W @ hs[-1]))
    return hs


def test_vjp_of_the_list_itself():
    """A list output: the caller's cotangent is copied, not changed."""
    rng = np.random.default_rng(3)
    W, h0 = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3)
    out, pullback = srcdiff.vjp(rnn_states, W, h0)
    cot = [rng.standard_normal(3) for _ in out]
    kept = list(cot)
    dW, dh0 = pullback(cot)
    assert len(cot) == len(kept) and all(a is b for a, b in zip(cot, kept))
    from srcdiff.testing import check_vjp
    check_vjp(lambda W, h0: np.stack(rnn_states(W, h0)), (W, h0), (dW, dh0),
              cotangent=np.stack(cot))


def _peak(steps):
    W, U, xs, h0 = _args(2, steps)
    g = srcdiff.grad(rnn_last, wrt=(0, 1))
    g(W, U, xs, h0)
    tracemalloc.start()
    g(W, U, xs, h0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_grows_linearly():
    """Twice the steps, about twice the memory: each version of the list used to be kept
    (O(steps²) pointers, 3.2x here)."""
    assert _peak(800) / _peak(400) < 2.3


# ----- where the fast path must not change what is read -----

def helper_reads_each_step(W, U, xs, h0):
    hs = [h0]
    s = 0.0
    for t in range(xs.shape[0]):
        s = s + _total(hs)
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
    return s + np.sum(hs[-1])


def stored_in_a_dict(W, U, xs, h0):
    hs = [h0]
    state = {"hs": hs, "w": W}
    for t in range(xs.shape[0]):
        hs.append(np.tanh(state["w"] @ hs[-1] + U @ xs[t]))
    return np.sum(hs[-1] ** 2)


def slices_and_len(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]) * len(hs))
    tail = hs[1:]
    return np.sum(np.stack(tail) ** 2) + np.sum(hs[0])


def while_loop(W, U, xs, h0):
    hs = [h0]
    t = 0
    while t < xs.shape[0]:
        hs.append(np.tanh(W @ hs[-1] + U @ xs[t]))
        t = t + 1
    return np.sum(hs[-1] ** 2)


def two_reads_per_step(W, U, xs, h0):
    hs = [h0]
    for t in range(xs.shape[0]):
        h = np.tanh(W @ hs[-1] + U @ xs[t])
        hs.append(h + hs[0] * hs[-1])
    return np.sum(hs[-1]) + np.sum(hs[len(hs) // 2])


MORE = [helper_reads_each_step, slices_and_len, while_loop, two_reads_per_step]


def test_a_list_shared_with_a_dict_is_refused_at_its_line():
    """``state`` would see the appends in Python: refused (sharing analysis), never wrong."""
    with pytest.raises(srcdiff.SrcdiffError, match="'state' may share memory with 'hs'"):
        srcdiff.grad(stored_in_a_dict)(*_args(3, 2))


@pytest.mark.parametrize("fn", MORE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n, steps", CASES)
def test_more_forms(fn, n, steps):
    args = _args(n, steps, seed=4)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args, wrt=(0, 3))
    check_vjp_of_a_number(fn, args)


def test_pullback_called_twice():
    rng = np.random.default_rng(5)
    W, h0 = rng.standard_normal((3, 3)) * 0.5, rng.standard_normal(3)
    out, pullback = srcdiff.vjp(rnn_states, W, h0)
    cot = [rng.standard_normal(3) for _ in out]
    first = pullback(cot)
    second = pullback(cot)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def snapshots(w, x):
    hs = [x]
    keep = []
    for t in range(3):
        keep.append(hs)
        hs.append(np.sin(w * hs[-1]))
    return sum(np.sum(k[-1]) for k in keep)


def alias_inside_the_loop(w, x):
    ys = [x]
    total = 0.0
    for t in range(3):
        zs = ys
        zs.append(w * zs[-1])
        total = total + np.sum(np.stack(zs))
    return total


@pytest.mark.parametrize("fn", [snapshots, alias_inside_the_loop], ids=lambda f: f.__name__)
def test_a_list_that_grows_under_another_name_is_refused(fn):
    """In Python the other name sees every append; srcdiff refuses at the line, never wrong."""
    with pytest.raises(srcdiff.SrcdiffError, match="may share memory"):
        srcdiff.grad(fn, wrt=(0, 1))(0.7, np.array([0.3, -0.4]))
