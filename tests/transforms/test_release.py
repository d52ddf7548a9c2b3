"""The release stage: in the variant for plain numpy arguments, a forward loop's step ends by
deleting the arrays it made that nothing reads after it (not the next step, not the code
after the loop, not the pullback), so that the backward pass reuses their memory. Every
program here is checked against finite differences; a name the stage got wrong would raise
NameError, never give a wrong value."""

import collections

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import code, make_function

rng = np.random.default_rng(11)


def _released(grad) -> list[list[str]]:
    """The names each ``del … # not read after this step`` line of ``grad``'s source deletes."""
    found = []
    for line in grad.source.splitlines():
        if line.strip().startswith("del ") and line.endswith("  # not read after this step"):
            found.append(line.strip()[4:].split("  #")[0].split(", "))
    return found


def _checked(fn, args, wrt):
    grad = srcdiff.grad(fn, wrt=wrt)
    check_grad(fn, args, grad(*args), argnums=wrt)
    value, grads = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    check_grad(fn, args, grads, argnums=wrt)
    assert np.isclose(value, fn(*args))
    return grad


GATES = {  # one LSTM-like step, its input product hoisted: each spelling keeps a row view
    "slices": """
        def f(Wx, Wh, b, xs, h0):
            h = h0
            n = h0.shape[1]
            for t in range(xs.shape[0]):
                z = xs[t] @ Wx + h @ Wh + b
                i = 1.0 / (1.0 + np.exp(-z[:, :n]))
                g = np.tanh(z[:, n:])
                h = i * g
            return np.sum(h * h)
        """,
    "np.dot and a walked row": """
        def f(Wx, Wh, b, xs, h0):
            h = h0
            for x_t in xs:
                zi, zg = np.split(np.dot(x_t, Wx) + np.dot(h, Wh) + b, 2, axis=1)
                h = np.tanh(zg) / (1.0 + np.exp(-zi))
            return np.sum(h * h)
        """,
}


def _gate_args():
    return (rng.normal(size=(3, 8)) / 2, rng.normal(size=(4, 8)) / 2, 0.1 * rng.normal(size=8),
            rng.normal(size=(5, 2, 3)), 0.1 * rng.normal(size=(2, 4)))


@pytest.mark.parametrize("name", sorted(GATES))
def test_a_step_deletes_its_temporaries_and_the_row_view(name):
    fn = make_function(GATES[name])
    grad = _checked(fn, _gate_args(), (0, 1, 2))
    released = _released(grad)
    assert len(released) == 1, grad.source
    source = code(grad.source)
    # the row of the hoisted product: a view that kept all of its rows alive
    row = next(line.split(" = ")[0].strip() for line in source.splitlines()
               if " = " in line and "_Wx[" in line.split(" = ")[1])
    assert row in released[0], grad.source
    # what the tape keeps, or the next step reads, stays
    push = next(line for line in source.splitlines() if ".push(" in line)
    assert not set(released[0]) & set(push.split("push(")[1].strip("()").split(", "))
    assert "h_1" not in released[0] and "h_3" not in released[0]


def test_values_read_after_the_step_stay():
    """The next step (a carried value), the code after the loop, the loop's test, and a
    number: none is deleted; a temporary read only in the step is."""
    fn = make_function("""
        def f(x, w):
            h = x * 1.0
            k = 0
            s = 0.0
            last = x
            while np.sum(h * h) < 40.0 and k < 6:
                a = np.sin(h) * w
                b = a + 1.0
                last = b * 2.0
                s = s + np.sum(b)
                h = h * w + b
                k += 1
            return s + np.sum(last * h)
        """)
    args = (rng.uniform(0.5, 1.0, 3), rng.uniform(1.1, 1.3, 3))
    grad = _checked(fn, args, (0, 1))
    released = [n for names in _released(grad) for n in names]
    assert released, grad.source
    assert not {"h_1", "k", "s_1", "last_1", "x", "w"} & set(released), grad.source
    assert not any(name.startswith("k") for name in released), grad.source


@pytest.mark.parametrize("steps", [0, 1, 4])
def test_a_loop_of_any_length(steps):
    """No step: the del never runs; one step: it runs once, before the backward pass."""
    fn = make_function(GATES["slices"])
    Wx, Wh, b, xs, h0 = _gate_args()
    xs = rng.normal(size=(steps, 2, 3))
    grad = _checked(fn, (Wx, Wh, b, xs, h0), (0, 1, 2))
    assert _released(grad), grad.source


def test_a_branch_and_a_break_leave_only_certain_names():
    """A name bound on one side of a branch may be unbound at the step's end: not deleted;
    a break (a flag after the jumps stage) leaves the names bound before it certain."""
    fn = make_function("""
        def f(x, w):
            h = x
            for t in range(4):
                a = np.tanh(h * w)
                if np.sum(a) > 0.0:
                    c = a * 2.0
                    h = c + h
                else:
                    h = a - h
                if np.sum(h * h) > 50.0:
                    break
            return np.sum(h ** 2)
        """)
    for args in [(rng.normal(size=3), rng.normal(size=3)),
                 (rng.uniform(1.0, 2.0, 3), rng.uniform(2.0, 3.0, 3))]:
        grad = _checked(fn, args, (0, 1))
        released = [n for names in _released(grad) for n in names]
        assert not any(name == "c" or name.startswith("c_") for name in released), grad.source


def test_only_in_the_variant_for_plain_numpy_arguments():
    """A deque argument (no shape pattern: a list of arrays has one, dims.Tree) keeps the
    general derivative, which deletes none."""
    fn = make_function("""
        def f(w, xs):
            h = w * 0.0
            for x in xs:
                a = np.tanh(w * x + h)
                h = a * 0.5
            return np.sum(h)
        """)
    w, xs = rng.normal(size=3), collections.deque(rng.normal(size=3) for _ in range(3))
    grad = srcdiff.grad(fn, wrt=0)
    check_grad(lambda w: fn(w, xs), (w,), (grad(w, xs),))
    assert not _released(grad), grad.source
    grad = srcdiff.grad(fn, wrt=0)
    check_grad(lambda w: fn(w, np.stack(xs)), (w,), (grad(w, np.stack(xs)),))
    assert _released(grad), grad.source
