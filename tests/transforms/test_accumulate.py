"""accumulate: indexing adjoints are added in place into an adjoint no other name refers to."""

import re

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad
from srcdiff.transforms import accumulate

from ..helpers import make_function, rewrite_generated

rng = np.random.default_rng(11)


BEFORE = """
def f_vjp(x):
    _out = 0.0

    def f_pullback(d_out):
        dx = rt.zeros_like(x)
        for t, d in reversed(_tape1):
            dx = dx + rt.getitem_adjoint(d, x, key=rt.at[t])
        return dx

    return _out, f_pullback
"""


def test_accumulation_into_an_unshared_adjoint_is_in_place():
    assert "            dx = rt.add_at(dx, d, x, key=rt.at[t])" in rewrite_generated(accumulate.rewrite, BEFORE)


@pytest.mark.parametrize("extra", [
    "dy = dx",                      # another name for the same array
    "print(dx)",                    # read while it is being built
    "dx = d_out",                   # an array that is not the pullback's own
])
def test_a_shared_adjoint_is_left_alone(extra):
    source = BEFORE.replace("        for t, d", f"        {extra}\n        for t, d")
    lines = rewrite_generated(accumulate.rewrite, source)
    assert not any("add_at" in line for line in lines)
    assert "            dx = dx + rt.getitem_adjoint(d, x, key=rt.at[t])" in lines


def test_a_loop_over_elements_is_written_in_place():
    fn = make_function("""
        def f(x, w):
            s = 0.0
            for t in range(x.shape[0]):
                s = s + np.tanh(x[t] * w) * x[t]
            return s
    """)
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert re.search(r"dx = rt\.add_at\(dx, d_t\d+, x, key=rt\.at\[t\]\)", source)
    assert "rt.getitem_adjoint" not in source
    for n in (1, 4, 9):
        x, w = rng.normal(size=n), rng.normal()
        check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w))


CASES = {
    "rows_of_a_matrix": ("""
        def f(x, w):
            s = 0.0
            for t in range(x.shape[0]):
                s = s + np.sum(np.tanh(x[t] * w))
            return s
    """, lambda: (rng.normal(size=(4, 3)), rng.normal(size=3))),
    "an_element_read_twice_per_step": ("""
        def f(x, w):
            s = 0.0
            for t in range(1, x.shape[0]):
                s = s + x[t] * x[t - 1] * w + x[0, 1]
            return np.sum(s)
    """, lambda: (rng.normal(size=(5, 2)), rng.normal())),
    "repeated_integer_array_keys": ("""
        def f(x, w):
            idx = np.array([0, 2, 2, 0])
            s = 0.0
            for t in range(3):
                s = s + np.sum(x[idx] * w[t])
            return s
    """, lambda: (rng.normal(size=3), rng.normal(size=3))),
    "straight_line_reads": ("""
        def f(x, w):
            return x[0] * w + x[1] * x[2] + np.sum(x[1:] * w)
    """, lambda: (rng.normal(size=4), rng.normal())),
    "float32": ("""
        def f(x, w):
            s = 0.0
            for t in range(x.shape[0]):
                s = s + x[t] * w
            return s
    """, lambda: (rng.normal(size=4).astype(np.float32), rng.normal())),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_in_place_accumulation_matches_finite_differences(name):
    source, args = CASES[name]
    fn = make_function(source)
    for _ in range(3):
        x, w = args()
        dx, dw = srcdiff.grad(fn, wrt=(0, 1))(x, w)
        assert dx.dtype == x.dtype
        if x.dtype == np.float64:
            check_grad(fn, (x, w), (dx, dw))
        else:  # float32 stays float32, and agrees with the checked float64 gradient
            x64 = x.astype(np.float64)
            check_grad(fn, (x64, w), srcdiff.grad(fn, wrt=(0, 1))(x64, w))
            np.testing.assert_allclose(dx, srcdiff.grad(fn)(x64, w), rtol=1e-5)


def test_each_call_of_the_pullback_starts_from_zero():
    fn = make_function(CASES["rows_of_a_matrix"][0])
    x, w = CASES["rows_of_a_matrix"][1]()
    out, pullback = srcdiff.vjp(fn, x, w)
    first = pullback(1.0)[0].copy()
    np.testing.assert_array_equal(pullback(1.0)[0], first)


# ----- dx = dx + e into an adjoint that owns a fresh array: rt.add_into -----

SUMS = """
def f_vjp(x):
    a = np.sin(x)

    def f_pullback(d_out):
        d_t2 = d_out * (1.0 - a * a)
        dc = d_t2 * a
        dx = d_t2
        dx = dx + dc * a
        return dx

    return a, f_pullback
"""


def test_a_sum_into_an_adjoint_that_took_over_a_fresh_array_is_in_place():
    lines = rewrite_generated(accumulate.rewrite, SUMS)
    assert "        dx = d_t2" in lines
    assert "        dx = rt.add_into(dx, dc * a)" in lines


@pytest.mark.parametrize("change", [
    ("        return dx", "        y = d_t2 * 2.0\n        return dx, y"),   # read after the move
    ("        return dx", "        return dx, d_t2"),                     # returned as well
    ("        dx = d_t2", "        dx = d_t2\n        dy = dx"),            # another name for it
    ("        dx = d_t2", "        dx = d_t2\n        keep(dx)"),           # kept by a call
    ("        dx = d_t2", "        dx = d_t2\n        dy = dx[1:]"),        # a view of it
    ("        dx = d_t2", "        dx = d_t2\n        _tape1.push(d_t2)"),  # kept by a tape
    ("        dx = d_t2", "        dx = a"),                              # a forward value
    ("        dx = d_t2", "        dx = d_out"),                          # the cotangent
    ("        dx = d_t2", "        dx = rt.unbroadcast(d_t2, x)"),        # may be d_t2 itself
    ("        dx = d_t2", "        dx = d_t2\n        dz = d_t2"),          # taken over twice
    ("        dx = d_t2", "        if a:\n            dx = d_t2"),          # in a branch
    ("        d_t2 = d_out * (1.0 - a * a)", "        d_t2 = rt.sum_adjoint(d_out, a)"),  # a view
])
def test_a_sum_into_an_array_others_may_see_is_left_alone(change):
    lines = rewrite_generated(accumulate.rewrite, SUMS.replace(*change))
    assert not any("add_into" in line for line in lines)
    assert "        dx = dx + dc * a" in lines


def test_sums_in_loops_and_not_into_numbers():
    source = """
def f_vjp(x):
    a = np.sin(x)

    def f_pullback(d_out):
        dx = rt.zeros_like(x)
        ds = 0.0
        for t, d in reversed(_tape1):
            dx = dx + d * a
            ds = ds + np.sum(d)
        return dx, ds

    return a, f_pullback
"""
    lines = rewrite_generated(accumulate.rewrite, source)
    assert "            dx = rt.add_into(dx, d * a)" in lines
    assert "            ds = ds + np.sum(d)" in lines  # ds = 0.0: a number, never an array to add into


ELEMENTWISE = {
    "chain": """
        def f(x, w):
            a = np.sin(x)
            b = a * x * w
            c = np.exp(-b)
            return np.sum((np.tanh(c + x) ** 2 - a) / (1.0 + c))
    """,
    "broadcast_operand": """
        def f(x, w):
            a = np.tanh(x * w)
            return np.sum(a * x + a * w + np.cos(x) * a)
    """,
    "reused_many_times": """
        def f(x, w):
            y = x * w
            return np.sum(y * y * x + np.sin(y) * x - x * w)
    """,
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("xshape, wshape", [((5,), ()), ((4, 3), (3,)), ((4, 1), (1, 3)),
                                            ((), ()), ((3,), (3,))])
def test_in_place_sums_match_finite_differences(name, xshape, wshape):
    fn = make_function(ELEMENTWISE[name])
    x, w = rng.normal(size=xshape), rng.normal(size=wshape)
    if not wshape:
        w = float(w)
    if not xshape:
        x = float(x)
    grad = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, (x, w), grad(x, w))
    assert "rt.add_into(" in grad.source
    if xshape:  # float32 stays float32 and agrees with float64 (a float64 w promotes)
        dx, dw = grad(x.astype(np.float32), w)
        assert dx.dtype == np.float32
        np.testing.assert_allclose(dx, grad(x, w)[0], rtol=1e-4, atol=1e-5)


def test_in_place_sums_leave_the_arguments_alone():
    fn = make_function(ELEMENTWISE["chain"])
    x, w = rng.normal(size=6), rng.normal(size=6)
    x0, w0 = x.copy(), w.copy()
    out, pullback = srcdiff.vjp(fn, x, w)
    first = pullback(1.0)
    np.testing.assert_array_equal(pullback(1.0)[0], first[0])  # no state between calls
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


def test_a_name_node_shared_between_lines_is_judged_where_it_is_read():
    """Generated lines share node objects: the one ``dz`` Name that is an operand of ``*`` in
    one line is also the argument of ``rt.unbroadcast`` (which may return dz itself) in the
    next, so dz is kept there and must not be added into in place."""
    import libcst as cst

    from srcdiff.context import Context
    from srcdiff.source import get_source

    from ..helpers import code_lines

    shared = cst.Name("dz")

    def line(code: str, **holes) -> cst.SimpleStatementLine:
        stmt = cst.parse_statement(code)
        return stmt.visit(_Fill(holes))

    class _Fill(cst.CSTTransformer):
        def __init__(self, holes):
            self.holes = holes

        def leave_Name(self, original, updated):
            return self.holes.get(updated.value, updated)

    body = [
        cst.parse_statement("dz = d_out * 2.0"),
        line("y = HOLE * 3.0", HOLE=shared),
        line("d = rt.unbroadcast(HOLE, x)", HOLE=shared),
        line("dz = HOLE + y", HOLE=shared),
        cst.parse_statement("return dz, d"),
    ]
    pullback = cst.FunctionDef(cst.Name("f_pullback"), cst.Parameters([cst.Param(cst.Name("d_out"))]),
                               cst.IndentedBlock(body))
    vjp = cst.FunctionDef(cst.Name("f_vjp"), cst.Parameters([cst.Param(cst.Name("x"))]),
                          cst.IndentedBlock([cst.parse_statement("_out = 0.0"), pullback,
                                             cst.parse_statement("return _out, f_pullback")]))
    fn = make_function("def f(x):\n    return x\n")
    ctx = Context(source=get_source(fn), params=("x",), wrt=("x",))
    lines = code_lines(accumulate.rewrite(cst.Module(body=[vjp]), ctx).code)
    assert "        dz = dz + y" in lines and not any("add_into" in code for code in lines)


# ----- in order: a fresh adjoint built from slices, then read (an LSTM's gates) -----

SLICES = """
def f_vjp(z):
    _out = 0.0

    def f_pullback(d_out):
        for t, g1, g2, g3 in reversed(_tape1):
            dz = rt.getitem_adjoint(g1, z, key=rt.at[:, :2])
            dz = dz + rt.getitem_adjoint(g2, z, key=rt.at[:, 2:4])
            d_a = rt.unbroadcast(dz, a)
            dz = dz + rt.getitem_adjoint(g3, z, key=rt.at[:, 4:])
            d_b = dz + 1.0
        return d_a, d_b

    return _out, f_pullback
"""


def test_slices_added_into_a_fresh_adjoint_before_any_other_read():
    """After a read that may keep it (rt.unbroadcast may return dz itself), dz is no longer
    the only name for its array: that accumulation makes a new one."""
    out = [line.strip() for line in rewrite_generated(accumulate.rewrite, SLICES)]
    assert "dz = rt.add_at(dz, g2, z, key=rt.at[:, 2:4])" in out
    assert "dz = dz + rt.getitem_adjoint(g3, z, key=rt.at[:, 4:])" in out


def lstm_gates(x, w):
    n = x.shape[1] // 4
    h = x[:, :n] * 0.0
    for t in range(3):
        z = x * w + np.tanh(h @ np.ones((n, 4 * n)))
        i = 1.0 / (1.0 + np.exp(-z[:, :n]))
        f = np.tanh(z[:, n:2 * n])
        o = np.sin(z[:, 2 * n:3 * n])
        g = np.tanh(z[:, 3 * n:])
        h = f * h + i * g * o
    return np.sum(h * h)


@pytest.mark.parametrize("shapes", [((2, 8), (8,)), ((3, 8), (1, 8)), ((1, 12), (12,))])
def test_an_lstms_gate_slices_in_place_against_finite_differences(shapes):
    args = tuple(rng.normal(size=s) * 0.5 for s in shapes)
    g = srcdiff.grad(lstm_gates, wrt=(0, 1))
    check_grad(lstm_gates, args, g(*args), argnums=(0, 1))
    assert g.source.count("dz = rt.slices_adjoint(z_blank, ") == 1  # the gates' chain (tiles stage)
