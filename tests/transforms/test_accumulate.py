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
