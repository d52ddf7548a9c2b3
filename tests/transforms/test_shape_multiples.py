"""Lengths that are multiples of one another (``srcdiff/dims.py``) and what the shapes pass
proves with them: a gate ``z[:, n:2 * n]`` of ``n = h.shape[1]`` and the pieces of
``np.split(z, 4, axis=1)`` have ``h``'s shape, so their adjoints need no sums. Gradients
against finite differences for every spelling, proven or not."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff import api, dims
from srcdiff.testing import check_grad


def test_a_length_at_most_eight_times_a_smaller_one_is_its_multiple():
    lstm = (np.ones((32, 256)), np.ones((64, 256)), np.ones(256), np.ones((10, 16, 32)),
            np.ones((16, 64)))
    assert dims.pattern(lstm, api._PLAIN) == (
        ("n0[2*n4]", "n1[8*n0,4*n2]"), ("n2[4*n4,2*n0]", "n1[8*n0,4*n2]"), ("n1[8*n0,4*n2]",),
        ("n3", "n4", "n0[2*n4]"), ("n4", "n2[4*n4,2*n0]"))
    # the same relations, other lengths: the same pattern (one compiled variant)
    smaller = tuple(np.ones(tuple(n // 2 if n in (16, 32, 64, 256) else n for n in a.shape))
                    for a in lstm)
    assert dims.pattern(smaller, api._PLAIN) == dims.pattern(lstm, api._PLAIN)
    # more than eight times: unrelated; 0 and 1 are never multiples
    assert dims.pattern((np.ones(3), np.ones((96, 3))), api._PLAIN) == (("n0",), ("n1", "n0"))
    assert dims.pattern((np.ones((0, 4)), np.ones((1, 8))), api._PLAIN) == (
        ("n0", "n1"), (1, "n2[2*n1]"))
    # a length several others divide names each (12 = 4 * 3 = 3 * 4 = 6 * 2)
    assert dims.pattern((np.ones((3, 12)), np.ones((2, 4))), api._PLAIN) == (
        ("n0", "n1[6*n2,4*n0,3*n3]"), ("n2", "n3[2*n2]"))
    assert dims.multiple("n1[4*n0,3*n2]") == ("n1", {"n0": 4, "n2": 3})
    assert dims.multiple("n3") == ("n3", {}) and dims.multiple(1) is None
    assert dims.name_of("n1[4*n0]") == "n1"


def gates_sliced(W, U, x, h):  # an LSTM step's gates as slices of z
    n = h.shape[1]
    z = x @ W + h @ U
    i = 1.0 / (1.0 + np.exp(-z[:, :n]))
    f = 1.0 / (1.0 + np.exp(-z[:, n:2 * n]))
    o = np.tanh(z[:, 2 * n:3 * n])
    g = np.sin(z[:, 3 * n:])
    c = f * h + i * g
    return np.sum(o * np.tanh(c) * h)


def gates_split(W, U, x, h):  # np.split, the axis by keyword
    zi, zf, zo, zg = np.split(np.dot(x, W) + np.dot(h, U), 4, axis=1)
    c = np.tanh(zf) * h + np.exp(-zi * zi) * zg
    return np.sum(np.cos(zo) * c * h)


def gates_split_last_axis(W, U, x, h):  # three gates (a GRU's), axis -1 positionally
    r, u, m = np.split(x @ W[:, :3 * h.shape[1]] + h @ U[:, :3 * h.shape[1]], 3, -1)
    return np.sum(np.tanh(r) * h + u * m * h)


def heads_from_the_end(W, U, x, h):  # bounds from either end, a length measured twice
    n = h.shape[-1]
    z = x @ W + h @ U
    k = n + n
    return np.sum(z[:, k:k + n] * h[:, :] - z[:, : h.shape[1]] * z[:, n:k])


PROVEN = [gates_sliced, gates_split, heads_from_the_end]


def not_a_multiple(W, U, x, h):  # a bound that is not a multiple of n: unknown, summed
    n = h.shape[1]
    z = x @ W + h @ U
    return np.sum(z[:, 1:n + 1] * h + z[:, ::2][:, :n] + z[:, -n:] * h)


def literal_bounds(W, U, x, h):  # literal bounds: unknown lengths
    z = x @ W + h @ U
    return np.sum(z[:, 0:2] * z[:, 2:4])


def _args(seed=0, batch=2, n=3, n_in=4):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n_in, 4 * n)) * 0.5, rng.normal(size=(n, 4 * n)) * 0.5,
            rng.normal(size=(batch, n_in)), rng.normal(size=(batch, n)))


@pytest.mark.parametrize("fn", PROVEN, ids=lambda f: f.__name__)
def test_gates_of_a_multiple_have_the_states_shape(fn):
    grad = srcdiff.grad(fn, wrt=(0, 1, 2, 3))
    grad(*_args())
    assert "rt.unbroadcast(" not in grad.source


@pytest.mark.parametrize("fn", PROVEN + [gates_split_last_axis, not_a_multiple, literal_bounds],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 2, 3), (3, 1, 2), (5, 2, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_gradients_match_finite_differences(fn, shape):
    batch, n, n_in = shape
    args = _args(sum(shape), batch, n, n_in)
    grads = srcdiff.grad(fn, wrt=(0, 1, 2, 3))(*args)
    check_grad(fn, args, grads, argnums=(0, 1, 2, 3))
    value, again = srcdiff.value_and_grad(fn, wrt=(0, 1, 2, 3))(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    for a, b in zip(grads, again):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_split_that_does_not_divide_raises_as_numpy():
    args = _args(n=3)
    W = args[0][:, :10]  # 10 columns: np.split into 4 fails
    U = args[1][:, :10]
    for fn in (gates_split, srcdiff.grad(gates_split, wrt=(0,))):
        with pytest.raises(ValueError, match="equal division"):
            fn(W, U, *args[2:])


# ----- gates of every count and spelling, generated -----

_GATE_OPS = ["np.tanh({})", "1.0 / (1.0 + np.exp(-{}))", "np.sin({}) * 0.5", "np.exp(-{0} * {0})"]


def _gates_source(k: int, spelling: str, seed: int) -> str:
    """An RNN cell with ``k`` gates cut from ``z = x @ W + h @ U`` (``k * n`` columns)."""
    rng = np.random.default_rng(seed)
    lines = ["import numpy as np", "", "", "def cell(W, U, x, h):", "    n = h.shape[1]",
             "    z = x @ W + h @ U"]
    names = [f"g{j}" for j in range(k)]
    if spelling == "slices":
        bounds = [":n"] + [f"{j} * n:{j + 1} * n" if j > 1 else "n:2 * n" for j in range(1, k - 1)] + \
            [f"{k - 1} * n:" if k > 2 else "n:"]
        pieces = [f"z[:, {b}]" for b in bounds]
    elif spelling == "named":  # the bounds in variables, the last one to the axis's end
        lines += [f"    b{j} = {j} * n" for j in range(1, k)]
        pieces = ["z[:, :n]"] + [f"z[:, b{j}:b{j + 1}]" for j in range(1, k - 1)] + [f"z[:, b{k - 1}:]"]
    else:
        axis = {"split": "axis=1", "split_positional": "1", "split_negative": "axis=-1"}[spelling]
        lines.append(f"    {', '.join(names)} = np.split(z, {k}, {axis})")
        pieces = names
    for name, piece in zip(names, pieces):
        lines.append(f"    {name} = {_GATE_OPS[int(rng.integers(len(_GATE_OPS)))].format(piece)}")
    lines.append(f"    c = {names[0]} * h + {' * '.join(names[1:])}")
    lines.append("    return np.sum(np.tanh(c) * h)")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("spelling", ["slices", "named", "split", "split_positional", "split_negative"])
def test_generated_gates(k, spelling, tmp_path):
    path = tmp_path / f"gates_{k}_{spelling}.py"
    path.write_text(_gates_source(k, spelling, seed=k))
    import importlib.util
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cell = module.cell
    for batch, n, n_in in [(3, 2, 5), (1, 3, 2), (2, 1, 2)]:
        rng = np.random.default_rng(batch * 100 + n)
        args = (rng.normal(size=(n_in, k * n)) * 0.5, rng.normal(size=(n, k * n)) * 0.5,
                rng.normal(size=(batch, n_in)), rng.normal(size=(batch, n)))
        grad = srcdiff.grad(cell, wrt=(0, 1, 2, 3))
        grads = grad(*args)
        check_grad(cell, args, grads, argnums=(0, 1, 2, 3))
        if n > 1 and len({batch, n, n_in, k * n}) == 4:  # z's columns: k times h's
            assert "rt.unbroadcast(" not in grad.source, (batch, n, n_in)


def test_only_functions_that_cut_arrays_get_the_multiples():
    """A function without computed slice bounds or split calls compiles one variant for
    batches of any size (the multiples a batch happens to divide would split the pattern)."""
    def mse(w, X, y):
        return np.mean((X @ w - y) ** 2)

    assert dims.cuts(gates_sliced) and dims.cuts(gates_split) and not dims.cuts(mse)
    assert not dims.cuts(literal_bounds) and dims.cuts(not_a_multiple)
    rng = np.random.default_rng(0)
    grad = srcdiff.grad(mse)
    for batch in (64, 17, 96):  # 64 = 2 * 32 and 96 = 3 * 32 features; 17 unrelated
        grad(rng.normal(size=32), rng.normal(size=(batch, 32)), rng.normal(size=batch))
    assert len(grad._patterns) == 1
    gates = srcdiff.grad(gates_sliced, wrt=(0, 1))
    for args in (_args(batch=2, n=3), _args(batch=5, n=3)):  # 12 = 6 * 2 (or not: 5)
        gates(*args)
    assert len(gates._patterns) == 2
