"""Sharing analysis (srcdiff/analysis/sharing.py): writes in place are either followed exactly
(no other reference to the memory is read afterwards) or refused at the line that reads the
stale reference; writes into inputs are InPlaceError."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import make_function

X = np.array([0.5, -0.3, 0.9])

# ----- accepted: each differentiates to the oracle's gradient and gives Python's value

ACCEPTED = {
    "view_read_before_the_write": """
        def f(x):
            y = x * 2.0
            v = y[0:2]
            s = np.sum(v * x[0:2])
            y[0] = 5.0
            return s + np.sum(y * x)
    """,
    "previous_element_read_inline": """
        def f(x):
            out = np.zeros(4)
            out[0] = x[0]
            for i in range(1, 4):
                out[i] = np.tanh(out[i - 1] * x[1] + x[2])
            return np.sum(out)
    """,
    "last_element_of_a_list_kept_across_append": """
        def f(x):
            hs = [x * 1.0]
            for i in range(3):
                prev = hs[-1]
                hs.append(np.tanh(prev * x))
                prev = prev * 2.0
            return np.sum(prev) + np.sum(np.stack(hs))
    """,
    "numbers_are_rebound_not_written": """
        def f(x):
            s = 0.0
            t = s
            for i in range(3):
                s += 1.0
            return np.sum(x) * (t + s)
    """,
    "alias_rebound_before_the_write": """
        def f(x):
            y = x * 2.0
            z = y
            z = z * 3.0
            y += x
            return np.sum(z * y)
    """,
    "boolean_mask_copies": """
        def f(x):
            y = x * 2.0
            h = y[y > 0.0]
            h[0] = 1.0
            return np.sum(h) + np.sum(y * x)
    """,
    "write_into_rows_of_a_fresh_array_while_iterating_another": """
        def f(x):
            m = np.outer(x, x)
            out = np.zeros((3, 3))
            for i, row in enumerate(m):
                out[i] = row * x[i]
            return np.sum(out)
    """,
    "write_on_one_side_of_a_branch_alias_on_the_other_not_read": """
        def f(x):
            y = x * 1.0
            if x[0] > 0.0:
                y[0] = 3.0
            else:
                z = y
                z = z + 1.0
            return np.sum(y * x)
    """,
    "a_new_array_each_iteration_is_not_the_one_stored_before": """
        def f(x):
            hs = [x * 1.0]
            for i in range(2):
                h = np.sinh(x)
                if x[0] > 0.0:
                    hs.append(h[1:])
                else:
                    h[i] += 1.0
                hs.append(h * 2.0)
            t = 0.0
            for item in hs:
                t = t + np.sum(np.tanh(item))
            return t
    """,
    "accumulate_in_place_into_a_local": """
        def f(x):
            acc = np.zeros(3)
            for i in range(3):
                acc += x * x[i]
            return np.sum(acc)
    """,
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
@pytest.mark.parametrize("x", [X, -X], ids=["x", "-x"])
def test_accepted_programs_are_exact(name, x):
    fn = make_function(ACCEPTED[name], "f")
    value, grad = srcdiff.value_and_grad(fn)(x)
    np.testing.assert_allclose(value, fn(x.copy()), rtol=1e-12)
    check_grad(fn, (x,), (grad,))


# ----- refused: a stale read (SrcdiffSyntaxError at the read) or an input written (InPlaceError)

REFUSED = {
    "stale_after_break": ("""
        def f(x):
            y = x * 2.0
            z = y * 1.0
            for i in range(3):
                z = y
                y += x
                if i == 1:
                    break
                z = x * 1.0
            return np.sum(z)
    """, srcdiff.SrcdiffSyntaxError, "return np.sum(z)", ("view of 'y'", "copy")),
    "stale_after_continue": ("""
        def f(x):
            y = x * 2.0
            z = x * 1.0
            s = 0.0
            for i in range(3):
                s = s + np.sum(z)
                z = y
                y += x
                if i == 1:
                    continue
                z = x * 1.0
            return s
    """, srcdiff.SrcdiffSyntaxError, "s = s + np.sum(z)", ("view of 'y'", "line 13")),
    "loop_over_an_array_written_in_the_loop": ("""
        def f(x):
            out = np.outer(x, x)
            s = 0.0
            for row in out:
                out[0] = x
                s = s + 1.0
            return s * np.sum(out)
    """, srcdiff.SrcdiffSyntaxError, "for row in out:", ("this loop iterates over out",
                                                          "out.copy()")),
    "write_after_append_in_a_loop": ("""
        def f(x):
            hs = []
            for i in range(2):
                a = x * 2.0
                hs.append(a)
                a[0] = 1.0
            return np.sum(np.stack(hs))
    """, srcdiff.SrcdiffSyntaxError, "hs.append(a)", ("hs.append(a), line", "'a'", "in place")),
    "write_into_a_global": ("""
        C = np.array([1.0, 2.0, 3.0])

        def f(x):
            C[0] = 5.0
            return np.sum(C * x)
    """, srcdiff.InPlaceError, "C[0] = 5.0", ("C, a global,", "in place", "copy")),
    "write_into_an_argument_a_helper_returned": ("""
        def ident(a):
            return a

        def f(x):
            h = ident(x)
            h[0] = 1.0
            return np.sum(h)
    """, srcdiff.InPlaceError, "h[0] = 1.0", ("the argument x", "in place")),
    "write_into_a_leaf_of_a_dict_argument": ("""
        def f(p):
            w = p["w"]
            w[0] = 1.0
            return np.sum(w)
    """, srcdiff.InPlaceError, "w[0] = 1.0", ("the argument p", "in place")),
    "append_to_a_list_argument": ("""
        def f(xs):
            ys = xs
            ys.append(1.0)
            return 1.0
    """, srcdiff.InPlaceError, "ys.append(1.0)", ("the argument xs", "in place", "list(ys)")),
    "stale_alias_through_a_branch": ("""
        def f(x):
            y = x * 1.0
            if x[0] > 0.0:
                z = y
            else:
                z = y * 1.0
            y[0] = 3.0
            return np.sum(z * x)
    """, srcdiff.SrcdiffSyntaxError, "return np.sum(z * x)", ("view of 'y'", "z = y.copy()")),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_programs_point_at_the_line(name):
    source, cls, line, words = REFUSED[name]
    fn = make_function(source, "f")
    arg = {"p": {"w": X.copy()}, "xs": [X.copy()]}.get(
        fn.__code__.co_varnames[0], X.copy())
    with pytest.raises(cls) as info:
        srcdiff.grad(fn)(arg)
    err = info.value
    assert err.filename == fn.__code__.co_filename
    assert err.text.strip() == line
    for word in words:
        assert word in err.msg, (word, err.msg)
