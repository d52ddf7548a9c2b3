"""tapes: a loop's tape keeps only what its pullback reads, and never an array for its shape."""

import re

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad
from srcdiff.transforms import tapes

from ..helpers import make_function, rewrite_generated

rng = np.random.default_rng(5)


BEFORE = """
def f_vjp(x):
    out = np.zeros(3)
    out_1 = out
    _tape1 = rt.Tape()
    for t in range(3):
        out_2 = out_1
        u = None
        if t > 0:
            u = x[t]
        _t1 = x[t] * 2.0
        out_3 = rt.setitem(out_2, rt.at[t], _t1)
        _t2 = out_3[t]
        out_1 = out_3
        # kept for the pullback: t, u, _t1, out_3, _t2
        _tape1.push((t, u, _t1, out_3, _t2))
    _out = np.sum(out_1)

    def f_pullback(d_out):
        dout_1 = rt.sum_adjoint(d_out, out_1)
        for t, u, _t1, out_3, _t2 in reversed(_tape1):
            dout_3 = dout_1 + rt.getitem_adjoint(d_out * _t1, out_3, key=rt.at[t])
            dout_1 = rt.setitem(dout_3, rt.at[t], 0.0)
        return dout_1

    return _out, f_pullback
"""


def test_shape_only_versions_and_unread_names_leave_the_tape():
    lines = rewrite_generated(tapes.rewrite, BEFORE)
    assert "        # kept for the pullback: t, _t1" in lines
    assert "        _tape1.push((t, _t1))" in lines
    assert "        for t, _t1 in reversed(_tape1):" in lines
    assert "            dout_3 = dout_1 + rt.getitem_adjoint(d_out * _t1, out, key=rt.at[t])" in lines
    assert "        u = None" not in lines  # the placeholder of a dropped name goes too
    assert "            u = x[t]" in lines  # what computes it is dce's to remove


def test_a_version_whose_shape_may_change_keeps_its_tape_entry():
    source = BEFORE.replace("        out_1 = out_3\n", "        out_4 = out_3 * x\n        out_1 = out_4\n")
    lines = rewrite_generated(tapes.rewrite, source)  # no stable version: the tape keeps a blank
    assert "        out_3_blank = rt.blank_like(out_3)" in lines
    assert "        _tape1.push((t, _t1, out_3_blank))" in lines
    assert "            dout_3 = dout_1 + rt.getitem_adjoint(d_out * _t1, out_3_blank, key=rt.at[t])" in lines


def test_a_version_made_in_a_branch_is_no_anchor():
    source = BEFORE.replace("    out = np.zeros(3)\n    out_1 = out\n",
                            "    if x[0] > 0:\n        out = np.zeros(3)\n    out_1 = out\n")
    lines = rewrite_generated(tapes.rewrite, source)  # out may be unbound, and out_1 changes: no stable version
    assert "        _tape1.push((t, _t1, out_3_blank))" in lines


def test_a_version_read_for_its_values_too_is_kept_whole():
    source = BEFORE.replace("        out_1 = out_3\n", "        out_4 = out_3 * x\n        out_1 = out_4\n")
    for read in ("rt.getitem_adjoint(d_out * _t1, out_3, key=rt.at[t]) * out_3",  # its values
                 "rt.getitem_adjoint(d_out * out_3, out_3, key=rt.at[t])"):
        lines = rewrite_generated(tapes.rewrite, source.replace(
            "rt.getitem_adjoint(d_out * _t1, out_3, key=rt.at[t])", read))
        assert "        _tape1.push((t, _t1, out_3))" in lines or \
            "        _tape1.push((t, out_3))" in lines, lines
        assert not any("blank" in line for line in lines)
    after = source.replace("        return dout_1\n", "        return dout_1 + out_3\n")  # after the loop
    lines = rewrite_generated(tapes.rewrite, after)
    assert "        _tape1.push((t, _t1, out_3))" in lines
    assert not any("blank" in line for line in lines)


FILLS = {
    "vector": ("""
        def f(x, w):
            out = np.zeros(x.shape[0])
            s = 0.0
            for t in range(x.shape[0]):
                out[t] = np.tanh(x[t] * w)
                s = s + x[t] * out[t]
            return s + np.sum(out * out)
    """, lambda n: (rng.normal(size=n), rng.normal())),
    "rows_reading_the_previous_row": ("""
        def f(x, w):
            out = np.zeros((x.shape[0], 2))
            out[0] = x[0] * w
            for t in range(1, x.shape[0]):
                out[t] = np.tanh(out[t - 1] * w + x[t])
            return np.sum(out ** 2)
    """, lambda n: (rng.normal(size=(n, 2)), rng.normal(size=2))),
    "array_rebound_with_a_new_shape": ("""
        def f(x, w):
            out = w * 1.0
            for t in range(x.shape[0]):
                out[0] = x[t]
                out = out * x[t] + w
            return np.sum(out)
    """, lambda n: (rng.normal(size=n), rng.normal(size=(2, 3)))),
}


@pytest.mark.parametrize("name", sorted(FILLS))
def test_array_writes_in_loops_tape_no_array_versions(name):
    source, args = FILLS[name]
    fn = make_function(source)
    text = srcdiff.grad(fn, wrt=(0, 1)).source
    pushes = re.findall(r"_tape\d+\.push\((.*)\)", text)
    if name != "array_rebound_with_a_new_shape":
        assert pushes and not any(re.search(r"\bout_\d+\b", p) for p in pushes), text
    for n in (1, 3, 6):
        x, w = args(n)
        check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w))


# ----- a version read back for its shape alone: the tape keeps its blank -----

GATES = {
    "slices": """
        def f(Wx, Wh, b, xs, h0):
            h, c = h0, h0 * 0.5
            n = h0.shape[1]
            for t in range(xs.shape[0]):
                z = xs[t] @ Wx + h @ Wh + b
                i = 1.0 / (1.0 + np.exp(-z[:, :n]))
                f = 1.0 / (1.0 + np.exp(-z[:, n:2 * n]))
                g = np.tanh(z[:, 2 * n:])
                c = f * c + i * g
                h = np.tanh(c) * i
            return np.sum(h * h)
    """,
    "split": """
        def f(Wx, Wh, b, xs, h0):
            h, c = h0, h0 * 0.5
            for x_t in xs:
                zi, zf, zg = np.split(np.dot(x_t, Wx) + np.dot(h, Wh) + b, 3, axis=1)
                c = np.tanh(zf) * c + np.tanh(zi) * zg
                h = np.tanh(c)
            return np.sum(h * h)
    """,
}


@pytest.mark.parametrize("spelling", sorted(GATES))
@pytest.mark.parametrize("batch", [1, 4, 16])  # z of 384 bytes (kept itself), 1.5 KiB, 6 KiB
def test_gates_cut_from_one_array_keep_its_blank(spelling, batch):
    fn = make_function(GATES[spelling])
    n, n_in = 16, 5
    args = (rng.normal(size=(n_in, 3 * n)) / 3, rng.normal(size=(n, 3 * n)) / 4,
            0.1 * rng.normal(size=3 * n), rng.normal(size=(4, batch, n_in)),
            0.1 * rng.normal(size=(batch, n)))
    grad = srcdiff.grad(fn, wrt=(0, 1, 2))
    first = grad(*args)
    check_grad(fn, args, first, argnums=(0, 1, 2))
    for again, want in zip(grad(*args), first):  # a second call: fresh tapes, the same bits
        np.testing.assert_array_equal(again, want)
    pushes = re.findall(r"_tape\d+\.push\((.*)\)", grad.source)
    assert len(pushes) == 1 and "_blank" in pushes[0], grad.source
    assert re.search(r"\w+_blank = rt\.blank_like\(\w+\)", grad.source)


def test_blank_like_keeps_shape_and_dtype_and_no_memory():
    from srcdiff.runtime import blank_like

    for x in (np.ones((16, 256)), np.ones(512), np.ones((2, 1024), dtype=np.float32),
              np.ones((8, 64), dtype=np.complex128)):
        b = blank_like(x)
        assert type(b) is np.ndarray and b.shape == x.shape and b.dtype == x.dtype
        assert not b.flags.writeable and all(s == 0 for s in b.strides) and not b.any()
        np.testing.assert_array_equal(np.zeros_like(b), np.zeros_like(x))
    for x in (np.ones(511), np.ones((4, 0, 2048)), np.ones(3, dtype=object), 2.0, [1.0] * 1000, np.float64(1.0),
              np.ones((64, 64)).view(np.matrix)):  # small, objects, not a plain numpy array
        assert blank_like(x) is x
