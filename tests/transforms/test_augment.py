"""The augment stage: in the variant for float64 arrays of one shape pattern, a temporary read
for the last time takes the result of its arithmetic (``r -= y``). Every program here is
checked against finite differences and against the variant without the stage (float32
arguments, or float64 ones of a pattern not yet specialised), its arguments untouched."""

import numpy as np
import pytest

import srcdiff
from srcdiff import dims
from srcdiff.runtime import inplace
from srcdiff.analysis.dtypes import float64_call
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad

from ..helpers import code
from ..test_benchmarks_spellings import sp


def least_squares(w, b, X, y):
    r = X @ w + b - y
    return np.sum(r ** 2) / len(y)


def chain(x, y):
    a = np.tanh(x) * 2.0
    b = a + y          # y broadcasts into a's shape: a += y
    c = b / 3.0
    d = 1.0 - c        # c on the right of a subtraction: a new array
    return np.sum(d * d)


def widened(x, y):
    """x of shape (3,), y of (2, 3): x + y is larger than x, never written into it."""
    a = x * 2.0
    b = a + y
    return np.sum(b ** 3)


def powers(x):
    a = x - 0.5
    b = a ** 2
    c = 2.0 * b        # a product with the temporary on the right
    return np.sum(c ** 0.5 + c)


def reused(x):
    """a is read after b is made: b cannot take its memory."""
    a = np.exp(x)
    b = a * 3.0
    return np.sum(b * a)


def value_read_later(x, W):
    h = np.tanh(W @ x)
    z = h + 1.0
    return np.sum(z ** 2) + np.sum(h)


def rnn(W, U, xs, h):
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h * h)


def gates(W, U, b, xs, h):
    n, c = h.shape[1], h * 0.5
    for x_t in xs:
        z = x_t @ W + h @ U + b
        c = np.tanh(z[:, n:]) * c + np.tanh(z[:, :n])
        h = np.tanh(c) * 2.0
    return np.sum(h)


def split_cell(W, U, b, xs, h):
    c = h * 0.5
    for x_t in xs:
        zi, zf, zg, zo = np.split(np.dot(x_t, W) + np.dot(h, U) + b, 4, axis=1)
        c = np.tanh(zf) * c + np.tanh(zi) * np.tanh(zg)
        h = np.tanh(c) * np.tanh(zo)
    return np.sum(h * h)


def carried(x, w):
    """b is made in each step and read in the next one (through a): never written into."""
    a = x * 1.0
    s = 0.0
    for k in range(3):
        b = a * w
        a = b + 1.0
        s = s + np.sum(a * b)
    return s


PROGRAMS = {
    "least_squares": (least_squares, lambda r: (r.normal(size=3), 0.3, r.normal(size=(6, 3)),
                                                r.normal(size=6)), (0, 1)),
    "chain": (chain, lambda r: (r.normal(size=(4, 3)), r.normal(size=3)), (0, 1)),
    "chain_row": (chain, lambda r: (r.normal(size=(4, 3)), r.normal(size=(1, 3))), (0, 1)),
    "chain_scalar_y": (chain, lambda r: (r.normal(size=5), 0.7), (0, 1)),
    "widened": (widened, lambda r: (r.normal(size=3), r.normal(size=(2, 3))), (0, 1)),
    "powers": (powers, lambda r: (r.normal(size=(2, 5)),), (0,)),
    "reused": (reused, lambda r: (r.normal(size=7),), (0,)),
    "value_read_later": (value_read_later, lambda r: (r.normal(size=4), r.normal(size=(5, 4))),
                         (0, 1)),
    "rnn": (rnn, lambda r: (r.normal(size=(4, 4)) / 2, r.normal(size=(4, 3)), r.normal(size=(5, 3)),
                            r.normal(size=4)), (0, 1)),
    "gates": (gates, lambda r: (r.normal(size=(3, 8)) / 2, r.normal(size=(4, 8)) / 2,
                                r.normal(size=8), r.normal(size=(3, 2, 3)), r.normal(size=(2, 4))),
              (0, 1, 2)),
    "carried": (carried, lambda r: (r.normal(size=4), r.normal(size=4) / 2), (0, 1)),
}


def _names(fn, argnums):
    params = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    return tuple(params[i] for i in argnums)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_gradients_match_finite_differences_and_the_variant_without_the_stage(name):
    fn, make, argnums = PROGRAMS[name]
    args = make(np.random.default_rng(len(name)))
    copies = [np.array(a, copy=True) for a in args]
    grad = srcdiff.grad(fn, wrt=_names(fn, argnums))
    vgrad = srcdiff.value_and_grad(fn, wrt=_names(fn, argnums))
    pattern = dims.pattern(args, frozenset())
    plain = compile_derivative(fn, _names(fn, argnums), gradient=True, dims=pattern).function
    single = len(argnums) == 1
    for _ in range(3):  # the general call, then the written-out one
        got = grad(*args)
        value, again = vgrad(*args)
        check_grad(fn, args, got, argnums=argnums)
        np.testing.assert_allclose(value, fn(*args), rtol=1e-13)
        want = (plain(*args),) if single else plain(*args)
        for g, h, p in zip(got, again, want):
            np.testing.assert_array_equal(g, p)  # the same arithmetic, to the bit
            np.testing.assert_array_equal(h, p)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)


def test_least_squares_reads_as_a_hand_written_gradient():
    args = PROGRAMS["least_squares"][1](np.random.default_rng(0))
    grad = srcdiff.grad(least_squares, wrt=("w", "b"))
    grad(*args)
    lines = [line.strip() for line in code(grad.source).splitlines() if line.strip()]
    assert lines[lines.index("r = X.dot(w)"):][:3] == ["r = X.dot(w)", "r += b", "r -= y"]
    assert "dr = r" in lines and any(line.startswith("dr *= ") for line in lines)
    assert not any(line.startswith("del ") and "r" in line[4:].split(", ") for line in lines)


def test_a_forward_loop_writes_its_sums_in_place_as_a_hand_written_step(monkeypatch):
    for name, written in [("rnn", ["_t4 = W.dot(h_2)", "_t3 = U_xs[t]", "_t4 += _t3",
                                   "h_3 = np.tanh(_t4)"]),
                          ("gates", ["z = h_2.dot(U)", "z += _t4", "z += b"])]:
        fn, make, argnums = PROGRAMS[name]
        args = make(np.random.default_rng(2))
        grad = srcdiff.grad(fn, wrt=_names(fn, argnums))
        grad(*args)
        lines = [line.strip() for line in code(grad.source).splitlines()]
        start = lines.index(written[0]) if written[0] in lines else None
        assert start is not None and lines[start:start + len(written)] == written, grad.source
    # np.dot in the variant for large arrays (which keeps it: no products stage's .dot; every
    # call runs it here, so that the oracle's arrays stay small), and np.split's pieces
    # (float64 as what they were cut from): the split spelling's step as the slices spelling's
    monkeypatch.setattr(inplace, "LARGE", 0)
    rng = np.random.default_rng(3)
    args = (rng.normal(size=(5, 16)) / 3, rng.normal(size=(4, 16)) / 2, 0.1 * rng.normal(size=16),
            rng.normal(size=(3, 2, 5)), 0.1 * rng.normal(size=(2, 4)))
    grad = srcdiff.grad(split_cell, wrt=("W", "U", "b"))
    check_grad(split_cell, args, grad(*args), argnums=(0, 1, 2))
    lines = [line.strip() for line in code(grad.source).splitlines()]
    start = next(k for k, line in enumerate(lines) if line.endswith("= np.dot(h_2, U)"))
    target = lines[start].split(" = ")[0]
    assert lines[start + 1].startswith(f"{target} += _t") and \
        lines[start + 2] == f"{target} += b", grad.source
    assert any(line.startswith("c_3 += ") for line in lines), grad.source
    grad = srcdiff.grad(carried, wrt=("x", "w"))
    grad(*PROGRAMS["carried"][1](np.random.default_rng(2)))
    assert "+=" not in code(grad.source) and "*=" not in code(grad.source), grad.source


def test_a_larger_result_a_reused_value_and_a_right_operand_stay_new_arrays():
    for name, kept in [("widened", "b = a + y"), ("reused", "b = a * 3.0"),
                       ("chain", "d = 1.0 - c")]:
        fn, make, argnums = PROGRAMS[name]
        args = make(np.random.default_rng(1))
        grad = srcdiff.grad(fn, wrt=_names(fn, argnums))
        grad(*args)
        assert kept in code(grad.source), name
    grad = srcdiff.grad(chain, wrt=("x", "y"))
    grad(*PROGRAMS["chain"][1](np.random.default_rng(1)))
    assert "b = a\n" in code(grad.source) and "b += y" in code(grad.source)  # user's names
    assert "c /= 3.0" in code(grad.source)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_other_float_dtypes_take_the_variant_without_the_stage(dtype):
    """float32 arguments run no in-place line: ``r -= y`` with a float64 y would round into
    float32 where ``r - y`` is float64."""
    rng = np.random.default_rng(2)
    w, X = rng.normal(size=3).astype(dtype), rng.normal(size=(6, 3)).astype(dtype)
    y = rng.normal(size=6)  # float64: the difference is float64
    for first in (np.float64, dtype):  # either variant first: the other is never taken for it
        grad = srcdiff.grad(least_squares, wrt=("w", "b"))
        grad(*(w.astype(first), 0.3, X.astype(first), y))
        for args in [(w, 0.3, X, y), (w.astype(np.float64), 0.3, X.astype(np.float64), y),
                     (w, 0.3, X, y)]:
            _least_squares_in(grad, args, y, in_place=first is np.float64 and
                              args[0].dtype == np.float64)


def _least_squares_in(grad, args, y, in_place):
    got = grad(*args)
    r = args[2] @ args[0] + 0.3 - y
    want_w = 2 * (r @ args[2]) / len(y)
    assert got[0].dtype == args[0].dtype
    np.testing.assert_allclose(got[0], want_w.astype(args[0].dtype), rtol=2e-3)
    assert (" += " in grad.source) == in_place


def test_numpy_scalar_and_int_arguments():
    """A numpy float64 b, and an int argument, keep the variant; a float32 scalar does not."""
    rng = np.random.default_rng(3)
    X, y, w = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=3)

    def scaled(w, b, X, y, k):
        r = (X @ w + b - y) * k
        return np.sum(r * r)

    grad = srcdiff.grad(scaled, wrt=("w", "b"))
    for b, k in [(np.float64(0.3), 2), (0.3, 2.0), (np.float32(0.3), 2)]:
        got = grad(w, b, X, y, k)
        check_grad(scaled, (w, b, X, y, k), got, argnums=(0, 1))
        assert (" += " in grad.source) == (type(b) is not np.float32)


@pytest.mark.parametrize("args, ok", [
    ((np.ones(3), 1.0, 2, True, None, "s"), True),
    ((np.ones(3), np.float64(1.0)), True),
    ((np.ones(3, np.float32),), False),
    ((np.ones(3), np.float32(1.0)), False),
    ((np.ones(3), np.int64(1)), False),
    ((np.ones(3), 1j), False),
    ((np.ones(3).astype(">f8"),), False),  # another byte order: not numpy's float64 dtype
])
def test_which_calls_take_the_float64_variant(args, ok):
    assert float64_call(args) is ok


@pytest.mark.parametrize("label", sorted(sp.LSQ))
def test_every_least_squares_spelling_writes_in_place(label):
    fn = sp.LSQ[label]
    args = sp.lsq_args(np.random.default_rng(4), small=True)
    grad = srcdiff.grad(fn, wrt=("w", "b"))
    for _ in range(2):
        got = grad(*args)
        check_grad(fn, args, got, argnums=(0, 1))
    assert "-= y" in code(grad.source), label


def test_other_shapes_find_their_float64_variant_by_lookup():
    """The first call's shapes are tested first; other float64 shapes (another pattern, the
    written-out call's dictionary lookup, whose key ends with the float64 flag) take their
    own in-place variant, float32 ones the variant without it."""
    rng = np.random.default_rng(6)
    grad = srcdiff.grad(least_squares, wrt=("w", "b"))
    calls = [(rng.normal(size=3), 0.3, rng.normal(size=(6, 3)), rng.normal(size=6)),
             (rng.normal(size=1), 0.1, rng.normal(size=(5, 1)), rng.normal(size=5)),
             (rng.normal(size=3).astype(np.float32), 0.3,
              rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=6).astype(np.float32))]
    for _ in range(2):
        for args in calls:
            got = grad(*args)
            assert got[0].dtype == args[0].dtype
            if args[0].dtype == np.float64:
                check_grad(least_squares, args, got, argnums=(0, 1))
            assert ("r -= y" in code(grad.source)) is (args[0].dtype == np.float64)
