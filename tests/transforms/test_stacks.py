"""The stacks stage: a list summed whole (``np.sum(np.stack(hs))``, ``np.array``, ``np.sum(hs)``,
``np.mean``) gives each entry one number as its adjoint, and a stack read only for its shape is
``rt.blank``. Gradients against finite differences, values and dtypes against the variant
without the stage, numpy's errors kept; the forms that do not qualify keep the list's adjoint."""

from __future__ import annotations

import types

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import helpers, rules
from srcdiff.testing import check_grad
from srcdiff.transforms import stacks


def stack_sum(W, xs, h0):
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        hs.append(h)
    return np.sum(np.stack(hs))


def array_sum(W, xs, h0):
    h = h0
    hs = []
    for x_t in xs:
        h = np.tanh(np.dot(W, h) + x_t)
        hs.append(h)
    return np.sum(np.array(hs))


def list_sum(W, xs, h0):  # np.sum of the list itself
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.sin(W @ h) + xs[t]
        hs.append(h)
    return np.sum(hs)


def stack_mean(W, xs, h0):
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        hs.append(h)
    return np.mean(np.stack(hs))


def method_sum_scaled(W, xs, h0):  # .sum(), scaled, beside another term of the last state
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        hs.append(h * h)
    return 0.5 * np.stack(hs).sum() + np.sum(h)


def loop_branches(W, xs, h0):  # appends on some paths, one of them a function of the state
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        if t % 2 == 0:
            hs.append(h)
        else:
            hs.append(0.5 * h)
    return np.sum(np.stack(hs))


def batched(W, xs, h0):  # rows of a batch: h (B, n), xs (steps, B, n), entries 2-d
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(h @ W + xs[t])
        hs.append(h)
    return np.sum(np.stack(hs))


QUALIFY = [stack_sum, array_sum, list_sum, stack_mean, method_sum_scaled, loop_branches, batched]


def first_entry_given(W, xs, h0):  # hs = [h0]: h0's adjoint is read from the list
    hs = [h0]
    for t in range(xs.shape[0]):
        hs.append(np.tanh(W @ hs[-1] + xs[t]))
    return np.sum(np.stack(hs))


def summed_over_steps(W, xs, h0):  # a sum over the stacking axis: rows, not one number
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        hs.append(h)
    return np.sum(np.sum(np.stack(hs), axis=0) ** 2)


def entry_read_too(W, xs, h0):  # the list's adjoint gets more than the sum's number
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        hs.append(h)
    return np.sum(np.stack(hs)) + np.sum(hs[0] ** 3)


def weighted(W, xs, h0):  # the stack's values are read
    h = h0
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + xs[t])
        hs.append(h)
    return np.sum(np.stack(hs) * xs)


KEEP = [first_entry_given, summed_over_steps, entry_read_too, weighted]


def _args(steps=4, n=3, seed=0, dtype=np.float64, fn=None):
    rng = np.random.default_rng(seed)
    batch = (2,) if fn is batched else ()
    return tuple(a.astype(dtype) for a in (rng.normal(size=(n, n)) * 0.5,
                                           rng.normal(size=(steps, *batch, n)),
                                           rng.normal(size=(*batch, n))))


def _specialised_source(fn, args):
    grad = srcdiff.grad(fn, wrt=(0, 1, 2))
    grad(*args)  # compiled for the arguments' shapes: the stage runs
    return grad.source


def _code(source: str) -> str:
    return "\n".join(line.split("#")[0] for line in source.splitlines())


@pytest.mark.parametrize("fn", QUALIFY, ids=lambda f: f.__name__)
def test_each_entry_gets_one_number(fn):
    source = _specialised_source(fn, _args(fn=fn))
    code = _code(source)
    assert "rt.spread_number(" in code and "pop_adjoint" not in code and "stack_adjoint" not in code
    assert "# each entry of hs: the same adjoint, one number" in source
    if fn is not list_sum:  # the stack is made only for its shape: no copy of the entries
        assert "rt.blank(np." in code and "= np.stack(" not in code and "= np.array(" not in code


@pytest.mark.parametrize("fn", QUALIFY + KEEP, ids=lambda f: f.__name__)
@pytest.mark.parametrize("steps,n", [(4, 3), (1, 1)])
def test_gradients_match_finite_differences(fn, steps, n):
    args = _args(steps, n, seed=steps + n, fn=fn)
    grads = srcdiff.grad(fn, wrt=(0, 1, 2))(*args)
    check_grad(fn, args, grads, argnums=(0, 1, 2))
    value, again = srcdiff.value_and_grad(fn, wrt=(0, 1, 2))(*args)
    assert value == fn(*args)  # the value with its own stack: numpy's sum, to the bit
    for a, b in zip(grads, again):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fn", QUALIFY, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_numbers_and_dtypes_as_without_the_stage(fn, dtype, monkeypatch):
    args = _args(dtype=dtype, fn=fn)
    grads = srcdiff.grad(fn, wrt=(0, 1, 2))(*args)
    monkeypatch.setattr(stacks._Spread, "rewrite", lambda self: None)
    monkeypatch.setattr(stacks, "_read_for_shape_only", lambda *a: False)
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__)  # compiled anew
    without = srcdiff.grad(twin, wrt=(0, 1, 2))
    expected = without(*args)
    assert "spread_number" not in without.source and "blank" not in without.source
    for a, b in zip(grads, expected):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fn", KEEP, ids=lambda f: f.__name__)
def test_other_uses_keep_the_lists_adjoint(fn):
    code = _code(_specialised_source(fn, _args()))
    assert "spread_number" not in code


def test_numpys_errors_stay():
    def ragged(x):  # entries of different shapes: np.stack refuses
        hs = []
        for t in range(x.shape[0]):
            hs.append(np.sin(x[: t + 1]))
        return np.sum(np.stack(hs))

    grad = srcdiff.grad(ragged)
    for fn in (ragged, grad):
        with pytest.raises(ValueError, match="same shape"):
            fn(np.ones(3))
    with pytest.raises(ValueError, match="at least one array"):  # nothing stacked
        srcdiff.grad(stack_sum, wrt=(0,))(*_args(steps=0))
    with pytest.raises(ValueError, match="at least one array"):
        stack_sum(*_args(steps=0))


# ----- the runtime functions -----


@pytest.mark.parametrize("with_c", [True, False], ids=["C", "python"])
def test_blank_has_the_stacks_shape_and_dtype(with_c, monkeypatch):
    if with_c and helpers._kernels is None:
        pytest.skip("runtime/_kernels.c not built")
    if not with_c:
        monkeypatch.setattr(helpers, "_kernels", None)
    cases = [[np.ones(3), np.zeros(3)], (np.ones((2, 2), np.float32),) * 3, [np.array(2.0)] * 4,
             [np.ones(2, np.complex128)], [np.arange(3), np.arange(3)], [np.array(["ab", "c"])] * 2]
    for xs in cases:
        for make in (np.stack, np.array):
            blank, made = helpers.blank(make, xs), make(xs)
            assert blank.shape == made.shape and blank.dtype == made.dtype
            assert not blank.flags.writeable and not np.any(blank.astype(bool))
    others = [[np.ones(2), np.ones(2, np.float32)], [np.ones(2), [1.0, 2.0]], [np.ones(2), np.ma.ones(2)],
              [np.array([1], dtype=object)] * 2]
    for xs in others:  # make(xs) itself
        assert helpers.blank(np.stack, xs).flags.writeable
        np.testing.assert_array_equal(helpers.blank(np.stack, xs), np.stack(xs))
    for xs, message in (([], "at least one array"), ([np.ones(2), np.ones(3)], "same shape")):
        with pytest.raises(ValueError, match=message):
            helpers.blank(np.stack, xs)
    with pytest.raises(ValueError):
        helpers.blank(np.array, [np.ones(2), np.ones(3)])


@pytest.mark.parametrize("x_dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("a_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("g", [1.0, 0.25, 3, np.float32(2.5), np.float64(-1.5), np.array(0.5)],
                         ids=lambda g: f"{type(g).__name__}({g})")
def test_spread_number_adds_as_the_spread_array(x_dtype, a_dtype, g):
    x = np.arange(6).reshape(2, 3).astype(x_dtype)
    a = np.linspace(-1, 1, 3).astype(a_dtype)  # an adjoint of one entry's shape
    for stacked in (x, [row for row in x]):  # the stack, and the list np.sum(hs) sums
        spread = rules.sum_adjoint(g, stacked)
        number = rules.spread_number(g, stacked)
        assert np.ndim(number) == 0
        for row in spread:
            expected = a + row
            got = a + number
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


def test_spread_number_of_a_ragged_list_raises_as_np_sum():
    with pytest.raises(ValueError):
        rules.spread_number(1.0, [np.ones(2), np.ones(3)])


C23 = np.array([[0.2, -0.4, 0.6], [-0.1, 0.3, 0.5]])


def summed_along_an_axis(x, w):
    """Program fuzzer seed 114 (a silent wrong gradient, 0 where finite differences give
    -0.094): np.sum(np.stack(hs), axis=0) reads the stack's values, but its Name node is
    also rt.sum_adjoint's operand, whose read is its shape's alone; the blanks stage judged
    reads by node identity and wrote np.stack(hs) as a blank of zeros. The comprehension
    over the list in the loop is what made the generated lines share that node."""
    hs = []
    for i in range(2):
        hs.append(np.square(np.swapaxes((x * C23).T, 0, 1)))
        for j in range(w.shape[0]):
            with srcdiff.no_grad():
                s = sum([1.0 for item, row in zip(hs, hs)], 0.0)
    a = np.tanh(np.sum(np.stack(hs), axis=0))
    return np.sum(a ** 2)


@pytest.mark.parametrize("x", [-0.29605125689737255,
                               np.array([[0.4, -1.2, 0.7], [1.1, 0.2, -0.3]])],
                         ids=["number", "matrix"])
def test_a_stack_summed_along_an_axis_is_not_a_blank(x):
    w = np.array([-0.5811, -0.6816, 0.0295])
    grad = srcdiff.grad(summed_along_an_axis, wrt=0)
    for _ in range(2):
        check_grad(summed_along_an_axis, (x, w), (grad(x, w),), argnums=(0,))
    assert "rt.blank(" not in grad.source
