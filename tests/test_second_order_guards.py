"""Second order through ``rt.guard`` (O34 in tests/fuzz/findings.md): the tangent code guards
a divisor by the tangent (``dx / rt.guard(_t3, dx)``), and ``rt.guard`` of a number by an
array comes back as the number itself where that divides alike, else as an array of the
array's shape. Reverse mode over that code must sum the guard's adjoint back to the number:
``srcdiff.hessian`` of a function dividing by a number made from ``x`` was wrong (the
adjoint of the number counted once per entry of ``x``) or crashed."""

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import rule_for
from srcdiff.runtime.helpers import guard


def divided_by_a_sum(x):
    return np.sum(np.tanh(x / (1.5 + np.sin(np.sum(x)))))


def divided_by_an_entry(x):
    a = x * 1.0
    a /= 1.5 + np.sin(x[0])
    return np.sum(np.tanh(a))


def divided_by_a_norm(x):
    return np.sum(np.tanh(x / np.sqrt(2.0 + np.sum(x * x))))


def divided_twice(x):
    s = np.sum(x) ** 2 + 1.0
    return np.sum(np.sin(x / s) / (0.5 + np.cos(x[1]) ** 2))


@pytest.mark.parametrize("fn", [divided_by_a_sum, divided_by_an_entry, divided_by_a_norm,
                                divided_twice])
@pytest.mark.parametrize("x", [np.array([0.7392, 0.8886, -1.0379]), np.array([0.3, -0.2])])
def test_hessian_against_finite_differences_of_the_gradient(fn, x):
    h = srcdiff.hessian(fn)(x)
    grad, eps = srcdiff.grad(fn), 1e-5
    numeric = np.stack([(grad(x + eps * e) - grad(x - eps * e)) / (2 * eps)
                        for e in np.eye(x.size)], axis=1)
    np.testing.assert_allclose(h, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("value, g_", [
    (2.5, np.array([0.0, 1.0, -2.0])),            # a number, the number back (a shortcut)
    (1e300, np.array([0.0, 1.0])),                # a number, an array back (ones at g_ == 0)
    (np.array([2.0, 3.0]), np.array([0.0, 1.0])),  # an array of g_'s shape
    (np.array([[2.0], [3.0]]), np.zeros((2, 3))),  # an array broadcast against g_
    (2.5, 0.0), (2.5, 1.5),                        # two numbers
])
def test_the_guards_adjoint_is_the_derivative_of_what_came_back(value, g_):
    out = guard(value, g_)
    g = np.cos(np.arange(np.size(out)) + 1.0).reshape(np.shape(out)) if np.ndim(out) else 0.7
    dvalue, dg = rule_for(guard).call(g, value, g_)
    assert np.shape(dvalue) == np.shape(value)
    assert not np.any(dg)
    def weighted(v):  # <g, guard(v, g_)>: out is linear in value where it takes value
        return np.sum(g * guard(v, g_))

    eps = 1e-6
    if np.ndim(value):
        units = np.eye(value.size).reshape((value.size, *value.shape))
        numeric = np.array([(weighted(value + eps * e) - weighted(value - eps * e)) / (2 * eps)
                            for e in units]).reshape(value.shape)
    else:
        step = eps * (1.0 + abs(value))
        numeric = (weighted(value + step) - weighted(value - step)) / (2 * step)
    np.testing.assert_allclose(dvalue, numeric, rtol=1e-6)
