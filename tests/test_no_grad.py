"""no_grad blocks and stop_gradient: checked against hand-derived gradients (the oracle cannot
see no_grad), and the rewrite itself on source."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function

X, W = np.array([1.0, -3.0, 2.0]), np.array([0.5, 2.0, -1.0])


def test_values_made_in_no_grad_are_constants():
    fn = make_function("""
        def f(x, w):
            with srcdiff.no_grad():
                scale = np.max(np.abs(x))
            return np.sum(w * x / scale)
    """)
    dx, dw = srcdiff.grad(fn, wrt=(0, 1))(X, W)
    np.testing.assert_allclose(dx, W / 3.0)  # scale is a constant 3
    np.testing.assert_allclose(dw, X / 3.0)


def test_reassigning_an_active_variable_inside_no_grad():
    fn = make_function("""
        def f(x, w):
            h = x * w
            with srcdiff.no_grad():
                h = h * 2.0
            return np.sum(h * x)
    """)
    dx, dw = srcdiff.grad(fn, wrt=(0, 1))(X, W)
    np.testing.assert_allclose(dx, 2.0 * X * W)  # h is the constant 2xw
    np.testing.assert_allclose(dw, 0.0)


def test_nested_no_grad_and_augmented_assignment():
    fn = make_function("""
        def f(x):
            with srcdiff.no_grad():
                c = x * 1.0
                with srcdiff.no_grad():
                    c += 1.0
                print("inside")
            return np.sum(c * x + x)
    """)
    np.testing.assert_allclose(srcdiff.grad(fn)(X), X + 1.0 + 1.0)


def test_no_grad_is_harmless_outside_differentiation_and_accepts_other_spellings():
    fn = make_function("""
        from srcdiff import no_grad as ng

        def f(x):
            with ng():
                c = np.sum(x)
            return np.sum(x * c)
    """, name="f")
    assert fn(X) == pytest.approx(np.sum(X) ** 2)
    np.testing.assert_allclose(srcdiff.grad(fn)(X), np.sum(X))


def test_generated_source_marks_the_block_and_has_no_with():
    fn = make_function("""
        def f(x):
            with srcdiff.no_grad():
                scale = np.max(np.abs(x))
            return np.sum(x / scale)
    """)
    source = srcdiff.grad(fn).source
    assert "with " not in source
    line = fn.__code__.co_firstlineno + 1
    assert f"# no_grad (line {line}): constants for differentiation" in source
    assert f"# no_grad (line {line}): no adjoint" in source
    assert "scale = rt.stop_gradient(" in source


def test_stop_gradient_in_an_expression_and_the_straight_through_trick():
    fn = make_function("""
        def f(x):
            hard = np.round(x)
            st = x + srcdiff.stop_gradient(hard - x)
            return np.sum(st * st)
    """)
    x = np.array([0.2, 0.7, 1.6])
    # forward uses round(x); gradient flows as if st were x
    np.testing.assert_allclose(srcdiff.grad(fn)(x), 2 * np.round(x))


def test_stop_gradient_of_an_inactive_value_still_checks_with_the_oracle():
    fn = make_function("""
        def f(x, c):
            return np.sum(np.sin(x) * srcdiff.stop_gradient(c))
    """)
    args = (X, W)
    check_grad(fn, args, [srcdiff.grad(fn)(*args)], argnums=(0,))
