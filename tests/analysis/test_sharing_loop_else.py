"""The ``else`` block of a ``for`` or ``while`` loop is read by the memory-sharing analysis
(``analysis/sharing.py``) like any other block: a view taken there and read after a write
into its base is refused (it gave a wrong value and gradient: the block was skipped), and a
name rebound there to new memory may be written in place after the loop."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..end_to_end import check_grad_by_finite_differences, check_value_and_grad
from ..helpers import make_function

VIEW_IN_ELSE = {
    "for": """
        def f(w, n):
            for i in range(n):
                s = 1.0
            else:
                h = np.tanh(w)
                a = h[::-1]
                h[0:2] = h[2]
            return np.sum(a) + np.sum(h)
        """,
    "while": """
        def f(w, n):
            k = 0
            while k < n:
                k = k + 1
            else:
                h = np.tanh(w)
                a = h[::-1]
                h[0:2] = h[2]
            return np.sum(a) + np.sum(h)
        """,
}


@pytest.mark.parametrize("loop", sorted(VIEW_IN_ELSE))
def test_a_view_taken_in_an_else_block_then_written_through_its_base_is_refused(loop):
    fn = make_function(VIEW_IN_ELSE[loop], name="f")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="'a' is a view of 'h'") as info:
        srcdiff.vjp(fn, np.array([0.7, -1.2, 0.6]), 0)
    assert "return np.sum(a) + np.sum(h)" in info.value.text


def test_a_name_rebound_in_an_else_block_may_be_written_after_the_loop():
    fn = make_function("""
        def f(x, w):
            for i in range(2):
                if np.sum(x) > 100.0:
                    continue
                x = x * 0.5
            else:
                w = np.tanh(w) * 1.0
            w *= np.sin(x)
            return np.sum(w ** 2)
        """, name="f")
    args = (np.array([0.3, -0.7]), np.array([0.5, 1.5]))
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)


def test_a_break_path_that_keeps_the_argument_is_still_refused():
    fn = make_function("""
        def f(x, w):
            for i in range(2):
                if np.sum(x) < 100.0:
                    break
            else:
                w = np.tanh(w) * 1.0
            w *= np.sin(x)
            return np.sum(w ** 2)
        """, name="f")
    with pytest.raises(srcdiff.InPlaceError, match="w"):
        srcdiff.grad(fn, wrt=(0, 1))(np.array([0.3, -0.7]), np.array([0.5, 1.5]))
