import textwrap

import libcst as cst
import numpy as np
import pytest

import srcdiff
from srcdiff.context import Context
from srcdiff.pipeline import parameters
from srcdiff.source import get_source
from srcdiff.testing import check_grad
from srcdiff.transforms import shapes

from ..helpers import code_lines, make_function


def rewritten(before: str, params=("x",), containers=()) -> list[str]:
    """``shapes.rewrite`` of a generated module, for a function with ``params``."""
    fn = make_function(f"def f({', '.join(params)}):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=params[:1],
                  containers=frozenset(containers))
    module = cst.parse_module(textwrap.dedent(before))
    return code_lines(shapes.rewrite(module, ctx).code)


def test_elementwise_values_of_one_argument_share_its_shape():
    before = """
        def f_vjp(x):
            a = np.sin(x)
            b = a * x
            c = 2.0 * b - 1
            _out = np.sum(c)

            def f_pullback(d_out):
                dc = rt.sum_adjoint(d_out, c)
                db = rt.unbroadcast(dc * 2.0, b)
                da = rt.unbroadcast(db * x, a)
                dx = rt.unbroadcast(db * a, x)
                dx = dx + rt.unbroadcast(-da, x) * 3.0
                dx = dx + rt.unbroadcast(-da, x)
                dx = dx + rt.unbroadcast(da + db, x) * 2.0
                dx = dx - rt.unbroadcast(da - db, x)
                return dx

            return _out, f_pullback
    """
    after = """
        def f_vjp(x):
            a = np.sin(x)
            b = a * x
            c = 2.0 * b - 1
            _out = np.sum(c)

            def f_pullback(d_out):
                dc = rt.sum_adjoint(d_out, c)
                db = dc * 2.0
                da = db * x
                dx = db * a
                dx = dx + -da * 3.0
                dx = dx - da
                dx = dx + (da + db) * 2.0
                dx = dx - (da - db)
                return dx

            return _out, f_pullback
    """
    assert rewritten(before) == code_lines(after)


@pytest.mark.parametrize("forward, kept", [
    ("y = x + w", "rt.unbroadcast(d, x)"),                   # two arguments: may broadcast
    ("y = x @ w", "rt.unbroadcast(d, x)"),                   # matmul: unknown shape
    ("y = np.sum(x, axis=0) + x", "rt.unbroadcast(d, x)"),   # a reduction over an axis
    ("y = np.max(x, keepdims=True) * 1.0", "rt.unbroadcast(d, x)"),  # only broadcasts into x
    ("y = x[0] * x", "rt.unbroadcast(d, x)"),                # indexing
    ("y = np.outer(x, x)", "rt.unbroadcast(d, x)"),          # a function it does not know
    ("y = x.T * 2.0", "rt.unbroadcast(d, x)"),               # attributes
    ("y = math.exp(x) * 1.0", "rt.unbroadcast(d, x)"),       # a number, x may be an array
])
def test_an_unbroadcast_stays_where_shapes_may_differ(forward, kept):
    before = f"""
        def f_vjp(x, w):
            {forward}
            _out = np.sum(y)

            def f_pullback(d_out):
                d = rt.sum_adjoint(d_out, y)
                dx = rt.unbroadcast(d, x)
                return dx

            return _out, f_pullback
    """
    assert f"        dx = {kept}" in rewritten(before, params=("x", "w"))


def test_keepdims_reductions_broadcast_back_into_their_operand():
    before = """
        def f_vjp(x):
            m = np.max(x, axis=1, keepdims=True)
            z = x - m
            _out = np.sum(z)

            def f_pullback(d_out):
                dz = rt.sum_adjoint(d_out, z)
                dx = rt.unbroadcast(dz, x)
                dm = rt.unbroadcast(-dz, m)
                return dx

            return _out, f_pullback
    """
    lines = rewritten(before)
    assert "        dx = dz" in lines and "        dm = rt.unbroadcast(-dz, m)" in lines


def test_the_seed_has_the_shape_of_the_output_and_numbers_are_scalars():
    before = """
        def f_vjp(x):
            y = x * 2.0
            _out = y

            def f_pullback(dy):
                dx = rt.unbroadcast(dy * 2.0, x)
                dz = rt.unbroadcast(dy, 1.5)
                return dx

            return _out, f_pullback
    """
    lines = rewritten(before)
    assert "        dx = dy * 2.0" in lines and "        dz = rt.unbroadcast(dy, 1.5)" in lines


def test_a_name_whose_shape_changes_in_a_loop_keeps_its_unbroadcast():
    before = """
        def f_vjp(x, h0):
            h = h0
            _tape1 = rt.Tape()
            for t in range(3):
                h_2 = h
                h_3 = h_2 * x
                h = h_3
                _tape1.push((h_2, h_3))
            _out = np.sum(h)

            def f_pullback(d_out):
                dh = rt.sum_adjoint(d_out, h)
                for h_2, h_3 in reversed(_tape1):
                    dh_2 = rt.unbroadcast(dh * x, h_2)
                    dx = rt.unbroadcast(dh * h_2, x)
                    dh = dh_2
                return dx

            return _out, f_pullback
    """
    lines = rewritten(before, params=("x", "h0"))
    assert "            dh_2 = rt.unbroadcast(dh * x, h_2)" in lines
    assert "            dx = rt.unbroadcast(dh * h_2, x)" in lines


def test_a_loop_that_keeps_the_shape_drops_it():
    before = """
        def f_vjp(x):
            h = x
            _tape1 = rt.Tape()
            for t in range(3):
                h_2 = h
                h_3 = np.tanh(h_2) * x
                h = h_3
                _tape1.push((h_2, h_3))
            _out = np.sum(h)

            def f_pullback(d_out):
                dh = rt.sum_adjoint(d_out, h)
                for h_2, h_3 in reversed(_tape1):
                    dx = rt.unbroadcast(dh * h_2, x)
                    dh = dh * x
                return dx

            return _out, f_pullback
    """
    assert "            dx = dh * h_2" in rewritten(before)


def test_container_parameters_have_no_shape():
    before = """
        def f_vjp(x):
            y = x * 2.0
            _out = np.sum(y)

            def f_pullback(d_out):
                dy = rt.sum_adjoint(d_out, y)
                dx = rt.unbroadcast(dy, x)
                return dx

            return _out, f_pullback
    """
    assert "        dx = rt.unbroadcast(dy, x)" in rewritten(before, containers=("x",))
    assert "        dx = dy" in rewritten(before)


# ----- end to end: the gradients stay right where shapes broadcast -----

BROADCASTING = [
    ("def f(x, y):\n    return np.sum(np.sin(x) * y + x / (1.0 + y * y))\n",
     [(np.ones((4, 3)) * 0.3, np.linspace(0.1, 0.9, 3)), (0.7, np.linspace(0.1, 0.9, 3)),
      (np.linspace(-1, 1, 3), 0.25), (np.ones((2, 1)) * 0.5, np.ones((1, 3)) * 0.2)]),
    ("def f(x, y):\n    a = x * x\n    b = a - y\n    return np.mean(b * a + 2.0 * x)\n",
     [(np.linspace(-1, 1, 6).reshape(2, 3), np.ones(3)), (np.linspace(-1, 1, 3), 1.5)]),
    ("def f(x, h0):\n    h = h0\n    for t in range(3):\n        h = np.tanh(h * x + 0.1)\n"
     "    return np.sum(h)\n",
     [(np.linspace(-1, 1, 3), 0.5), (np.linspace(-1, 1, 3), np.ones((2, 1)) * 0.3),
      (0.4, np.linspace(-1, 1, 4))]),
    ("def f(x, y):\n    m = np.max(x, axis=1, keepdims=True)\n    z = x - m\n"
     "    return np.sum(np.exp(z) * y)\n",
     [(np.linspace(-1, 1, 6).reshape(2, 3), np.ones(3) * 0.5),
      (np.linspace(-1, 1, 6).reshape(2, 3), np.ones((2, 1)) * 0.5)]),
]


@pytest.mark.parametrize("source, cases", BROADCASTING)
def test_gradients_with_broadcasting_and_scalars(source, cases):
    fn = make_function(source)
    for args in cases:
        grads = srcdiff.grad(fn, wrt=(0, 1))(*args)
        for g, a in zip(grads, args):
            assert np.shape(g) == np.shape(a)
        check_grad(fn, args, grads, argnums=(0, 1))


def test_elementwise_chain_has_no_unbroadcast_left():
    fn = make_function("def f(x):\n    a = np.sin(x) * x\n    return np.sum(np.exp(0.1 * a) - x)\n")
    source = srcdiff.grad(fn).source
    assert "unbroadcast" not in source
    x = np.linspace(-1, 1, 5)
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


def test_a_negated_adjoint_is_negated_after_it_is_summed():
    fn = make_function("def f(x, b):\n    return np.sum(np.sin(x - b) - b * x)\n")
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "-rt.unbroadcast(d_t" in source and "rt.unbroadcast(-" not in source
    for args in ((np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0.1, 0.3, 3)),
                 (np.linspace(-1, 1, 3), 0.4), (0.3, np.linspace(0.1, 0.3, 3))):
        check_grad(fn, args, srcdiff.grad(fn, wrt=(0, 1))(*args), argnums=(0, 1))


def huber_clip(r, d):
    c = np.clip(r, -d, d)
    return np.sum(c * (r - 0.5 * c))


def clip_rows(r, lo):
    return np.sum(np.clip(r, lo, 1.0) ** 2)


@pytest.mark.parametrize("fn, args", [
    (huber_clip, (np.array([-2.5, -0.3, 0.4, 1.7, 3.0]), 1.0)),
    (huber_clip, (np.array([[-2.5, 0.3], [0.4, 1.7]]), 1.0)),
    (clip_rows, (np.array([[-2.5, 0.3, 0.9], [0.4, 1.7, -0.2]]), np.array([-1.0, 0.0, 0.5]))),
], ids=["vector", "matrix", "broadcast-bound"])
def test_np_clip_has_the_broadcast_shape_of_its_operands(fn, args):
    """np.clip(a, lo, hi) broadcasts its three operands: with number bounds the result has
    a's shape and the adjoints after it need no rt.unbroadcast (a row of bounds, clip_rows:
    the clip's rule sums lo's adjoint over the rows itself)."""
    grad = srcdiff.grad(fn, wrt=(0, 1))
    for _ in range(2):
        check_grad(fn, args, grad(*args), argnums=(0, 1))
    assert "rt.unbroadcast(" not in grad.source
