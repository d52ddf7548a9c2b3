"""Expressions written over several lines inside parentheses: once normalize drops the
parentheses, the line breaks between their tokens must go too (before, ``a = (np.sin(x)\\n -
np.cos(x))`` compiled to a line ``- _t2`` on its own: an InternalError)."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_jvp


def difference(x):
    a = (np.sin(x)
         - np.cos(x))
    return np.sum(a)


def nested(x, w):
    b = ((x * w
          + np.tanh(x))
         * (w
            - 0.5))
    return np.sum(b ** 2)


def in_a_call(x):
    return np.sum(np.exp(
        x
        * 0.5))


@pytest.mark.parametrize("fn, args", [
    (difference, (np.array([0.3, -1.0, 2.0]),)),
    (nested, (np.array([0.3, -1.0]), np.array([1.5, 0.2]))),
    (in_a_call, (np.array([0.3, -1.0]),)),
])
def test_expressions_over_several_lines(fn, args):
    grads = srcdiff.grad(fn, wrt=tuple(range(len(args))))(*args)
    check_grad(fn, args, grads)
    tangents = tuple(np.ones_like(a) for a in args)
    _, tangent = srcdiff.jvp(fn, args, tangents)
    check_jvp(fn, args, tangents, tangent)
