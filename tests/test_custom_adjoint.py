"""Custom adjoints: the user's rule is used, named in the source, and checked for shape."""

import math

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import RULES
from srcdiff.testing import check_grad

from .helpers import make_function

CUSTOM = """
    def softplus(x):
        return np.log1p(np.exp(x))

    @srcdiff.adjoint(softplus)
    def softplus_adjoint(g, ans, x):
        return g / (1.0 + np.exp(-x))

    @srcdiff.adjoint(math.erf)
    def erf_adjoint(g, x):
        return g * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)

    def logsumexp(x, axis=None):
        return np.log(np.sum(np.exp(x), axis=axis))

    @srcdiff.adjoint(logsumexp)
    def logsumexp_adjoint(g, ans, x, axis=None):
        # numerically stable: softmax times the adjoint, broadcast back
        expanded = ans if axis is None else np.expand_dims(ans, axis)
        gx = g if axis is None else np.expand_dims(g, axis)
        return gx * np.exp(x - expanded)

    def f(x, a):
        return np.sum(softplus(x) * 2.0) + math.erf(a) + np.sum(logsumexp(x, axis=1))
"""


@pytest.fixture(scope="module")
def f():
    """The module's functions; its rules (math.erf's replaces srcdiff's own) are in the table
    while this module's tests run, and srcdiff's own rules come back after them."""
    saved = dict(RULES)
    yield make_function(CUSTOM, name="f")
    RULES.clear()
    RULES.update(saved)


def test_custom_rules_give_correct_gradients(f):
    x = np.array([[0.1, -0.4, 1.2], [0.3, 0.0, -2.0]])
    args = (x, 0.3)
    check_grad(f, args, srcdiff.grad(f, wrt=(0, 1))(*args))


def test_generated_source_calls_the_rules_by_name(f):
    source = srcdiff.grad(f, wrt=(0, 1)).source
    assert "softplus_adjoint(" in source and "erf_adjoint(" in source
    assert "logsumexp_adjoint(" in source and "axis=1" in source


def test_wrong_number_of_adjoints_is_a_clear_error():
    fn = make_function("""
        def double(x):
            return x * 2.0

        @srcdiff.adjoint(double)
        def double_adjoint(g, x):
            return g * 2.0, g

        def f(x):
            return np.sum(double(x))
    """, name="f")
    with pytest.raises(srcdiff.SrcdiffError, match="returned 2.*one adjoint per operand"):
        srcdiff.grad(fn)(np.ones(3))


def test_wrongly_shaped_adjoint_is_a_clear_error():
    fn = make_function("""
        def total(x):
            return np.sum(x)

        @srcdiff.adjoint(total)
        def total_adjoint(g, x):
            return g

        def f(x):
            return total(x) * 2.0
    """, name="f")
    with pytest.raises(srcdiff.SrcdiffError, match=r"shape \(\) for operand 'x'.*\(3,\)"):
        srcdiff.grad(fn)(np.ones(3))


def test_rule_not_visible_from_the_function_module_is_explained(tmp_path):
    rules = make_function("""
        def cube(x):
            return x ** 3

        @srcdiff.adjoint(cube)
        def cube_adjoint(g, x):
            return 3.0 * g * x ** 2
    """, name="cube")
    fn = make_function("""
        def f(x):
            return np.sum(CUBE(x))
    """, name="f")
    fn.__globals__["CUBE"] = rules
    with pytest.raises(srcdiff.SrcdiffError, match="not visible.*import it"):
        srcdiff.grad(fn)(np.ones(2))


def test_a_variadic_rule_never_takes_an_unnamed_option_for_an_operand():
    """A rule ``mix_adjoint(g, m, *y, rowvar=True)`` of ``mix(m, y=None, rowvar=True,
    weights=None)`` does not name ``weights``: ``mix(x, weights=w)`` is refused at its line,
    not differentiated as if ``w`` were a second array ``y`` (a np.cov-shaped trap)."""
    fn = make_function("""
        def mix(m, y=None, rowvar=True, weights=None):
            total = m if y is None else m + y
            return total * (1.0 if weights is None else weights)

        @srcdiff.adjoint(mix)
        def mix_adjoint(g, m, *y, rowvar=True):
            return (g, *(g for _ in y))

        def f(x, w):
            return np.sum(mix(x, weights=w) ** 2)
    """, name="f")
    x, w = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    with pytest.raises(srcdiff.NotDifferentiableError, match="weights="):
        srcdiff.grad(fn)(x, w)
    both = make_function("""
        def mix(m, y=None, rowvar=True, weights=None):
            return m if y is None else m * y

        @srcdiff.adjoint(mix)
        def mix_adjoint(g, m, *y, rowvar=True):
            return (g * y[0], g * m) if y else g

        def f(x, w):
            return np.sum(mix(x, w) ** 2)
    """, name="f")
    check_grad(both, (x, w), srcdiff.grad(both, wrt=(0, 1))(x, w))
