import numpy as np

import srcdiff

from ..helpers import make_function


def test_dead_primal_code_is_removed_but_side_effects_stay():
    fn = make_function("""
        def f(x):
            unused = np.exp(x) * 2.0
            print("hello")
            return np.sum(x * 3.0)
    """)
    source = srcdiff.grad(fn).source
    assert "unused" not in source and "np.exp" not in source
    assert 'print("hello")' in source


def test_adjoints_of_inactive_values_are_not_computed():
    fn = make_function("""
        def f(x, y):
            a = x * y
            b = y * 2.0
            return np.sum(a + b)
    """)
    source = srcdiff.grad(fn, wrt=0).source
    assert "dy" not in source and "db" not in source
    np.testing.assert_allclose(srcdiff.grad(fn, wrt=0)(np.ones(2), np.arange(2.0)), [0.0, 1.0])


def test_every_pullback_assignment_is_read():
    fn = make_function("""
        def f(x):
            return np.sum(np.tanh(x) * np.sin(x))
    """)
    lines = srcdiff.grad(fn).source.splitlines()
    assigned = [line.split("=")[0].strip() for line in lines if " = " in line]
    text = srcdiff.grad(fn).source
    for name in assigned:
        assert text.count(name) >= 2, f"{name} is assigned but never read"


def test_an_unread_slogdet_pair_goes_and_other_unpackings_stay():
    """``sign, logdet = np.linalg.slogdet(K)`` that nothing reads (grad of a function that
    returns something else) is not computed; an unpacking of any other call stays (it checks
    the count)."""

    def unread(K):
        sign, logdet = np.linalg.slogdet(K)
        return np.sum(K * K)

    def other(x):
        q, r = np.linalg.qr(x)
        return np.sum(x * x)

    K = np.array([[2.0, 0.3], [0.3, 1.0]])
    grad = srcdiff.grad(unread)
    np.testing.assert_allclose(grad(K), 2.0 * K)
    assert "slogdet" not in grad.source.split("# backward")[0]
    grad = srcdiff.grad(other)
    np.testing.assert_allclose(grad(K), 2.0 * K)
    assert "np.linalg.qr" in grad.source
