"""The tiles stage: an adjoint built from several slices of one value is one
rt.slices_adjoint call, which joins the slices' adjoints where they tile an axis and
otherwise adds them as the chain did. Gradients against finite differences; the runtime
against the chain it replaces."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff import runtime as rt
from srcdiff.runtime import rules
from srcdiff.testing import check_grad


def gates(W, x):  # an LSTM cell's gates, columns of one array
    n = x.shape[1]
    z = x @ W
    i = 1.0 / (1.0 + np.exp(-z[:, :n]))
    f = np.tanh(z[:, n:2 * n])
    o = np.sin(z[:, 2 * n:])
    return np.sum(i * f + o * o)


def gates_dot(W, x):  # the same gates with np.dot and .sum(): one chain all the same
    n = x.shape[1]
    z = np.dot(x, W)
    i = np.tanh(z[:, :n])
    f = np.sin(z[:, n:2 * n])
    o = np.cos(z[:, 2 * n:])
    return (i * f).sum() + (o * o).sum()


def rows_in_a_loop(a):  # rows of each step's array, in another order
    total = 0.0
    for t in range(2):
        b = a * (t + 1.0)
        top = np.tanh(b[1:])
        first = b[:1]
        total = total + np.sum(top * top) + np.sum(np.exp(first))
    return total


def overlapping(a):  # slices that overlap and leave a gap: the additions, as before
    return np.sum(np.sin(a[:, :3]) * np.cos(a[:, 2:5])) + np.sum(a[:, 6:] ** 2)


def strided(a):
    return np.sum(np.sin(a[::2]) + np.cos(a[1::2]) ** 2)


@pytest.mark.parametrize("fn, shapes, joined", [
    (gates, [(3, 9), (4, 3)], True),
    (gates_dot, [(3, 9), (4, 3)], True),
    (rows_in_a_loop, [(5, 2)], True),
    (overlapping, [(2, 7)], True),
    (strided, [(6,)], True),
], ids=lambda v: getattr(v, "__name__", ""))
def test_gradients_match_finite_differences(fn, shapes, joined):
    rng = np.random.default_rng(len(shapes))
    args = tuple(rng.normal(size=s) * 0.5 for s in shapes)
    grad = srcdiff.grad(fn, wrt=0)
    check_grad(fn, args, (grad(*args),), argnums=(0,))
    assert any(f"rt.{call}(" in grad.source for call in ("slices_adjoint", "slices_joined")) == joined
    assert "rt.add_at(" not in grad.source or fn is not gates


def test_the_gates_adjoint_is_one_call_of_every_slice():
    """Under the arguments' pattern of shapes (9 = 3 * 3) the keys are proved to tile z's
    columns: rt.slices_joined, the slices in the order they stand."""
    grad = srcdiff.grad(gates, wrt=0)
    rng = np.random.default_rng(0)
    grad(rng.normal(size=(3, 9)), rng.normal(size=(4, 3)))
    line = next(text for text in grad.source.splitlines() if "slices_joined" in text)
    assert line.strip().startswith("dz = rt.slices_joined(z, 1, ")
    keys = [line.index(k) for k in ("rt.at[:, :n]", "rt.at[:, n:", "rt.at[:, _t")]
    assert keys == sorted(keys) and line.count("rt.at[") == 3
    assert "getitem_adjoint" not in grad.source and "slices_adjoint" not in grad.source
    # without a pattern (a first call's general variant): the check when it runs
    general = srcdiff.grad(gates, wrt=0).source
    assert "dz = rt.slices_adjoint(z, " in general and "slices_joined" not in general


def test_slices_joined_is_the_chain():
    pieces = [(np.arange(6.0).reshape(2, 3), np.s_[:, :3]), (-np.ones((2, 2)), np.s_[:, 3:])]
    x = np.zeros((2, 5))
    for dtype in (np.float64, np.float32):  # of x's dtype: joined
        cast = [(g.astype(dtype), k) for g, k in pieces]
        out = rules.slices_joined(x.astype(dtype), 1, *cast)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, _chain(x.astype(dtype), cast))
    # another dtype (float32 adjoints of a float64 x), a number: the chain's values
    for x_other, gs in ((x, [(g.astype(np.float32), k) for g, k in pieces]),
                        (x, [(2.0, np.s_[:, :3]), pieces[1]])):
        out = rules.slices_joined(x_other, 1, *gs)
        expected = _chain(x_other, gs)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out, expected)


def _chain(x, pieces):
    acc = rules.getitem_adjoint(pieces[0][0], x, pieces[0][1])
    for g, key in pieces[1:]:
        acc = rules.add_at(acc, g, x, key)
    return acc


_X = np.zeros((3, 6))
_R = np.random.default_rng(4)


def _g(*shape, dtype=np.float64):
    return _R.normal(size=shape).astype(dtype)


@pytest.mark.parametrize("x, pieces, joined", [
    (_X, [(_g(3, 2), np.s_[:, 4:]), (_g(3, 4), np.s_[:, :4])], True),
    (_X, [(_g(3, 1), np.s_[:, -1:]), (_g(3, 5), np.s_[:, :-1])], True),        # negative bounds
    (_X, [(_g(1, 6), np.s_[2:]), (_g(2, 6), np.s_[:2])], True),                 # axis 0, one key
    (_X, [(_g(1, 6), np.s_[2:, :]), (_g(2, 6), np.s_[0:2, :])], True),
    (np.zeros((2, 3, 4)), [(_g(2, 3, 1), np.s_[:, :, 3:]), (_g(2, 3, 3), np.s_[:, :, :3])], True),
    (_X, [(_g(3, 3), np.s_[:, :3]), (_g(3, 3), np.s_[:, 2:5])], False),        # overlap and gap
    (_X, [(_g(3, 3), np.s_[:, ::2]), (_g(3, 3), np.s_[:, 1::2])], False),      # steps
    (_X, [(_g(6), np.s_[0]), (_g(2, 6), np.s_[1:])], False),                    # an integer
    (_X, [(_g(1, 2), np.s_[:, 4:]), (_g(3, 4), np.s_[:, :4])], False),          # broadcast g
    (_X, [(2.0, np.s_[:, 4:]), (_g(3, 4), np.s_[:, :4])], False),               # a number
    (_X, [(_g(3, 2, dtype=np.float32), np.s_[:, 4:]), (_g(3, 4), np.s_[:, :4])], False),
    (_X, [(_g(2, 2), np.s_[1:, 4:]), (_g(3, 4), np.s_[:, :4])], False),         # two axes
    (_X.astype(np.float32), [(_g(3, 2, dtype=np.float32), np.s_[:, 4:]),
                             (_g(3, 4, dtype=np.float32), np.s_[:, :4])], True),
    (_X, [(_g(3, 0), np.s_[:, 6:]), (_g(3, 6), np.s_[:, :6])], True),          # an empty slice
    (_X, [(_g(3, 0), np.s_[:, 6:]), (_g(3, 6), np.s_[:, :])], False),          # a whole key
])
def test_slices_adjoint_is_the_chain(x, pieces, joined):
    want = _chain(x, pieces)
    got = rules.slices_adjoint(x, *pieces)
    assert (rules._tiled(x, pieces) is not None) == joined
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_a_mismatched_slice_still_raises_as_the_chain_does():
    with pytest.raises(ValueError):
        rules.slices_adjoint(_X, (_g(3, 3), np.s_[:, 4:]), (_g(3, 4), np.s_[:, :4]))


def test_keys_spelled_with_rt_at():
    got = rt.slices_adjoint(np.zeros(4), (np.ones(1), rt.at[3:]), (2 * np.ones(3), rt.at[:3]))
    np.testing.assert_array_equal(got, [2.0, 2.0, 2.0, 1.0])
