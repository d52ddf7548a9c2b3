"""Bugs the differential fuzzer (tests/fuzz/programs.py) found, each as its smallest program.

A test marked ``xfail(strict=True)`` is a bug still present: the suite stays green and the bug
stays visible; when it is fixed the test passes, strict xfail turns that into a failure, and
the marker (and the matching entry of ``programs.TOLERATED``, which makes the generator avoid
or tolerate the bug meanwhile) should be removed.
"""

import numpy as np
import pytest

import srcdiff
from srcdiff.api import InternalError
from srcdiff.testing import check_grad

from ..helpers import make_function
from .programs import TOLERATED


def value_and_check(source, *args, wrt=0, name=None):
    """srcdiff's value equals Python's and its gradient the oracle's."""
    fn = make_function(source, name)
    value, grad = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12,
                               err_msg="srcdiff's forward value differs from Python's")
    check_grad(fn, args, (grad,), argnums=(wrt,))


# ----- wrong values and gradients


# fixed (was: bug: rebinding the array a for loop iterates over makes  the loop read rows of the new array (r = x_2[_i]); Python iterates over the  object the loop )
def test_rebinding_the_iterated_array_inside_the_loop():
    value_and_check("""
        def f(x):
            for r in x:
                x = x * r
            return np.sum(x)
    """, np.array([2.0, 3.0]))


# fixed (was: bug, found by the 10 000-program soak: rebinding an array that zip() or
# enumerate() iterates over made the loop read rows of the new array, a wrong value; the
# earlier fix covered only `for r in x`)
@pytest.mark.parametrize("head", ["for row, col in zip(x, h):", "for col, row in zip(h, x):",
                                  "for i, row in enumerate(x):"])
def test_rebinding_an_array_zip_or_enumerate_iterates_over(head):
    value_and_check(f"""
        def f(x, h):
            {head}
                x = x * 2.0 + row
                h = h + x
            return np.sum(x) + np.sum(h)
    """, np.array([[1.0, 2.0], [3.0, -4.0]]), np.ones((2, 2)))


# fixed (was: bug, found by the soak: a field of a container argument outside wrt (wts.c)
# assigned on one side of a branch to a name that is active on the other was refused with
# NotDifferentiableError 'cannot differentiate the array attribute .c'; a value made from
# constants only needs no rule)
def test_field_of_a_container_outside_wrt_merged_with_an_active_value():
    fn = make_function("""
        def f(x, wts):
            s = np.sum(x)
            if s > 0.2:
                s = wts.c
            h = x * 2.0 if s > 0.0 else wts.W
            return s * np.sum(x) + np.sum(h)
    """)
    from collections import namedtuple

    w = namedtuple("W", "W c")(np.array([1.0, -2.0, 0.5]), 0.5)
    for x in (np.array([0.5, 0.3, 0.9]), np.array([-0.5, 0.3, -0.9])):
        check_grad(lambda x: fn(x, w), (x,), (srcdiff.grad(fn)(x, w),))


# fixed (was: bug: the parentheses of a negative literal base are  dropped, (-0.5) ** 2 becomes -0.5 ** 2 = -0.25: wrong value and gradient)
def test_negative_literal_base_of_a_power():
    value_and_check("""
        def f(x):
            return np.sum(x * (-0.5) ** 2)
    """, np.array([0.5, -0.3]))


# fixed (was: bug: (-0.4) ** 2 as a constant term of the output:  srcdiff's value uses -0.16 instead of 0.16)
def test_negative_literal_base_of_a_power_in_a_constant_term():
    value_and_check("""
        def f(x):
            return np.sum(x) + (-0.4) ** 2
    """, np.array([1.0, 2.0]))


def refuse_or_match(source, *args, name=None):
    """srcdiff refuses the program with a SrcdiffError, or gets Python's value and the oracle's
    gradient; a silently different answer is the bug."""
    fn = make_function(source, name)
    try:
        value, grad = srcdiff.value_and_grad(fn)(*args)
    except srcdiff.SrcdiffError:
        return
    np.testing.assert_allclose(value, fn(*(np.copy(a) for a in args)), rtol=1e-12,
                               err_msg="srcdiff's forward value differs from Python's")
    check_grad(fn, args, (grad,), argnums=(0,))


ALIASED_WRITES = {
    # Tangent's bug: an augmented assignment on an array another name still refers to
    "aug_assign_with_an_alias": """
        def f(x):
            y = x * 2.0
            z = y
            y += x
            return np.sum(z)
    """,
    "aug_assign_with_a_view": """
        def f(x):
            y = x * 2.0
            z = y[0:2]
            y += x
            return np.sum(z)
    """,
    "write_through_a_view_read_the_base": """
        def f(x):
            out = np.outer(x, x)
            h = out[0]
            h[1] = 5.0
            return np.sum(out * x[0])
    """,
    "aug_assign_through_a_view_read_the_base": """
        def f(x):
            out = np.outer(x, x)
            h = out[0]
            h += 1.0
            return np.sum(out * x[0])
    """,
    "write_after_storing_in_a_list": """
        def f(x):
            out = x * 2.0
            hs = [out]
            out[0] = 5.0
            return np.sum(hs[0] * x)
    """,
    "rnn_appends_then_updates_in_place": """
        def f(x):
            h = x * 1.0
            hs = []
            for i in range(3):
                hs.append(h)
                h += np.tanh(h)
            return np.sum(np.stack(hs))
    """,
    "write_after_storing_in_a_dict": """
        def f(x):
            out = x * 2.0
            d = {"a": out}
            out *= x
            return np.sum(d["a"])
    """,
    "write_through_a_list_element": """
        def f(x):
            hs = [x * 1.0]
            h = hs[0]
            h[0] = 3.0
            return np.sum(hs[0] * x)
    """,
    "write_after_unpacking_rows": """
        def f(x):
            out = np.outer(x, x)
            r0, r1, r2 = out
            out[0] = 0.0
            return np.sum(r0 * x)
    """,
    "write_while_iterating_rows": """
        def f(x):
            out = np.outer(x, x)
            s = 0.0
            for row in out:
                out[1] = out[1] * 2.0
                s = s + np.sum(row * x)
            return s
    """,
    "write_into_what_a_helper_returned": """
        def ident(a):
            return a

        def f(x):
            out = x * 2.0
            h = ident(out)
            h[0] = 1.0
            return np.sum(out * x)
    """,
}


# fixed (was: bug: a write through one name (augmented assignment, out[i] = ..., through a view,
# a list/dict element, unpacked or iterated rows, a helper's result) was not seen through the
# other names of the same array: srcdiff neither refused the program nor got its value and
# gradient right). srcdiff cannot follow such a write, so it must refuse it, at the read.
@pytest.mark.parametrize("name", sorted(ALIASED_WRITES))
def test_writes_through_aliases_are_refused(name):
    fn = make_function(ALIASED_WRITES[name], "f")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="in place|view") as info:
        srcdiff.grad(fn)(np.array([0.5, 0.3, 0.9]))
    assert "copy" in info.value.msg and info.value.filename == fn.__code__.co_filename
    refuse_or_match(ALIASED_WRITES[name], np.array([0.5, 0.3, 0.9]), name="f")


# ----- internal crashes (exceptions from srcdiff's own modules that are not SrcdiffError)


@pytest.mark.parametrize("body", [
    'w = params["w"]\n    return np.sum(w.T @ np.ones(2))',
    'return np.sum(params["w"].T)',
    'return np.sum(params["w"][0:1].T)',
    'return np.sum(params["w"]) * params["w"].shape[0]',
])
# fixed (was: bug: an attribute (.T, .shape) of an array read out of a container argument is
# taken for a container field: IndexError in rt.tree_put / getitem_adjoint in the pullback)
def test_attribute_of_an_array_read_out_of_a_dict_argument(body):
    fn = make_function(f"def f(params):\n    {body}\n")
    params = {"w": np.arange(6.0).reshape(2, 3)}
    check_grad(lambda w: fn({"w": w}), (params["w"],), (srcdiff.grad(fn)(params)["w"],))


@pytest.mark.parametrize("body", [
    "hs = [x]\n    return np.sum(hs[-1].T @ np.ones(2))",
    "hs = []\n    hs.append(x * 2.0)\n    return np.sum(hs[-1].T @ np.ones(2))",
    "t = (x, x)\n    return np.sum(t[0].T @ np.ones(2))",
    "d = {'w': x}\n    return np.sum(d['w'].T @ np.ones(2))",
])
# fixed (was: bug: .T of an element of a local list, tuple or dict: IndexError in
# rt.tree_put / getitem_adjoint in the pullback)
def test_attribute_of_an_array_read_out_of_a_local_container(body):
    fn = make_function(f"def f(x):\n    {body}\n")
    x = np.arange(6.0).reshape(2, 3)
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


# fixed (was: bug: a parameter outside wrt  assigned in a branch inside a loop: AssertionError 'loop adjoints [c] were  not initialised' (reverse.py, loop))
def test_inactive_parameter_assigned_in_a_branch_inside_a_loop():
    fn = make_function("""
        def f(x, c):
            s = 0.0
            for i in range(2):
                if i > 5:
                    t = x
                else:
                    t = c
                s = s + t
            return s
    """)
    check_grad(fn, (0.5, 1.5), (srcdiff.grad(fn, wrt=0)(0.5, 1.5),), argnums=(0,))


# ----- wrong gradient types


# fixed (was: bug: an np.float64 argument gets a Python float gradient (np.float64 subclasses
# float, so api._as_gradient took the float branch); the README promises the argument's type)
def test_float64_argument_gets_a_float64_gradient():
    fn = make_function("def f(x, w):\n    return np.sum(x) * w\n")
    _, dw = srcdiff.grad(fn, wrt=(0, 1))(np.ones(2), np.float64(2.0))
    assert type(dw) is np.float64


# ----- supported code refused (a clear SrcdiffError, but for valid, supported code)


# fixed (was: bug: a method call on a module-level array with an active argument, C.dot(x),
# is refused: NotDifferentiableError 'cannot differentiate dot' (C.T @ x and a local C.dot(x)
# work))
def test_dot_method_of_a_module_constant():
    value_and_check("""
        C = np.array([[1.0, 2.0], [3.0, 4.0]])

        def f(x):
            return np.sum(C.dot(x))
    """, np.array([0.5, -0.3]), name="f")


# fixed (was: bug: views were tracked by name: after c = x; x = x * 2.0; x[0] = 1.0, reading c
# was refused as 'a view of x', though c is the old, unchanged array)
def test_alias_of_a_rebound_name_is_not_a_view_of_the_new_array():
    value_and_check("""
        def f(x):
            c = x
            x = x * 2.0
            x[0] = 1.0
            return np.sum(c) + np.sum(x)
    """, np.array([0.5, -0.3]))


# fixed (was: bug: .copy() has no adjoint (NotDifferentiableError), though the README and
# srcdiff's own view and in-place errors tell the user to take a .copy())
@pytest.mark.parametrize("copy", ["y[0:2].copy()", "np.copy(y[0:2])"])
def test_copy_as_the_errors_advise(copy):
    value_and_check(f"""
        def f(x):
            y = x * 1.0
            v = {copy}
            y[0] = 5.0
            return np.sum(v * y[1:])
    """, np.array([0.5, 0.3, 0.9]))


# fixed (was: bug: h = x[np.array([1, 1])] copies, but was taken for a view of the argument x,
# and h[0] = ... was refused with InPlaceError)
def test_writing_into_a_fancy_indexed_copy():
    value_and_check("""
        def f(x):
            h = x[np.array([1, 1])]
            h[0] = 2.0
            return np.sum(h * x[0])
    """, np.array([0.5, 0.3, 0.9]))


@pytest.mark.xfail(strict=True, raises=srcdiff.InPlaceError,
                   reason="bug: x[0] of a 1-d array is a numpy scalar (a copy), "
                   "but srcdiff takes s = x[0] for a view of the argument and refuses s += 1.0 "
                   "(InPlaceError)")
def test_augmented_assignment_to_an_element_read_out_of_an_argument():
    value_and_check("""
        def f(x):
            s = x[0]
            s += 1.0
            return s * x[1]
    """, np.array([0.5, 0.3, 0.9]))


# fixed (was: bug: after h -= h[0], a later write and read of h was refused with "'h' is a view
# of 'h'")
def test_augmented_assignment_reading_its_own_target():
    value_and_check("""
        def f(x):
            h = x * 1.0
            h -= h[0]
            h[2] = 1.0
            return np.sum(h * x)
    """, np.array([0.5, 0.3, 0.9]))


# fixed (was: bug: a name that one branch rebinds to an argument was taken for an argument in
# the other branch too: out[0] = 2.0 there was refused with InPlaceError)
def test_write_in_the_branch_where_the_name_is_not_an_argument():
    source = """
        def f(x, w):
            out = x * 1.0
            if np.sum(x) > 0:
                out = w
            else:
                out[0] = 2.0
            return np.sum(out * x)
    """
    for x in (np.array([0.5, 0.3, 0.9]), np.array([-0.5, 0.3, -0.9])):  # each branch
        value_and_check(source, x, np.array([1.0, 2.0, 3.0]))


# ----- the tolerances the generator uses must name only known bugs


def test_every_tolerated_bug_is_known():
    assert TOLERATED <= {
        "float64-gradient-is-float", "rebind-iterated", "views-by-name", "global-dot",
        "fancy-is-view", "index-scalar-is-view", "neg-literal-pow", "container-attr",
        "self-aug-view", "branch-alias", "alias-writes", "loop-adjoint-init",
    }
