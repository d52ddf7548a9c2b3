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
