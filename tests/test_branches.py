"""if/elif/else and conditional expressions: every path against the finite-difference oracle."""

import itertools

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function, vjp_source

BRANCHY = {
    "if_else_reassign": """
        def f(x, w):
            h = x * w
            if np.sum(h) > 0:
                h = np.tanh(h)
            else:
                h = h * h + 1.0
            return np.sum(h * x)
    """,
    "if_without_else": """
        def f(x, w):
            y = x * 2.0
            if w[0] > 0:
                y = y * w
            return np.sum(y ** 2)
    """,
    "elif_chain": """
        def f(x, w):
            s = np.sum(x * w)
            if s > 1.0:
                out = x * s
            elif s > -1.0:
                out = w * s
            elif s > -3.0:
                out = np.exp(x)
            else:
                out = x * w
            return np.sum(out)
    """,
    "one_sided_adjoint": """
        def f(x, w):
            a = x * 3.0
            b = w * 1.0
            if x[0] > 0:
                c = a * b
            else:
                c = b * 2.0
            return np.sum(c)
    """,
    "nested_and_or_not": """
        def f(x, w):
            y = x
            if x[0] > 0 and not w[0] > 0:
                if w[1] > 0 or x[1] > 0:
                    y = y * w
                else:
                    y = y - w
            return np.sum(y * x)
    """,
    "conditional_expressions": """
        def f(x, w):
            a = x * w if np.sum(x) > 0 else x - w
            b = np.sin(a) if a[0] > 0 else (np.cos(a) if a[1] > 0 else a * a)
            return np.sum(a * b)
    """,
    "branch_on_wrt_value": """
        def f(x, w):
            scale = w[0] if w[0] > 0.5 else w[1]
            return np.sum(x * scale)
    """,
}


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=3) * 1.5, rng.normal(size=3) * 1.5


@pytest.mark.parametrize("name", sorted(BRANCHY))
def test_every_path_matches_finite_differences(name):
    fn = make_function(BRANCHY[name])
    dfn = srcdiff.grad(fn, wrt=(0, 1))
    for seed in range(40):  # random inputs take every path of these functions
        x, w = _inputs(seed)
        check_grad(fn, (x, w), dfn(x, w))


def test_elif_chain_takes_all_four_paths():
    hits = set()
    for seed in range(40):
        x, w = _inputs(seed)
        s = np.sum(x * w)
        hits.add(next(i for i, bound in enumerate((1.0, -1.0, -3.0, -np.inf)) if s > bound))
    assert hits == {0, 1, 2, 3}


def test_branch_pullback_mirrors_the_primal_if():
    fn = make_function(BRANCHY["if_else_reassign"])
    # the vjp form: a forward function and its pullback (grad runs the pullback in line)
    source = vjp_source(fn, wrt=(0, 1))
    pullback = source.split("_pullback(")[1]
    assert "if _c1:" in source.split("_pullback(")[0] and "if _c1:" in pullback
    assert "# adjoint of: if np.sum(h) > 0:" in pullback
    assert "h_1 = np.tanh(h)" in source and "h_1 = h_2 + 1.0" not in source


def test_one_sided_adjoint_is_zero_on_the_other_side():
    fn = make_function(BRANCHY["one_sided_adjoint"])
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "rt.zeros_like(a)" in source or "rt.zeros_like(x)" in source
    x, w = np.array([-1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    dx, dw = srcdiff.grad(fn, wrt=(0, 1))(x, w)
    np.testing.assert_allclose(dx, 0.0)
    np.testing.assert_allclose(dw, 2.0)


def test_branch_only_in_forward_when_no_adjoint_flows():
    fn = make_function("""
        def f(x, n):
            if n > 2:
                k = 3.0
            else:
                k = 1.0
            return np.sum(x * k)
    """)
    # the vjp form: a forward function and its pullback (grad runs the pullback in line)
    source = vjp_source(fn, wrt=(0,))
    assert source.split("_pullback(")[1].count("if ") == 0
    np.testing.assert_allclose(srcdiff.grad(fn)(np.ones(2), 5), [3.0, 3.0])


EARLY_RETURNS = """
    def f(x, w):
        if x[0] < 0:
            return np.sum(-x * w)
        y = x * 2.0
        if w[0] > 0:
            if w[1] > 0:
                return np.sum(y * w)
            y = y + w
        return np.sum(y ** 2)
"""


def test_early_returns_in_branches():
    fn = make_function(EARLY_RETURNS)
    dfn = srcdiff.grad(fn, wrt=(0, 1))
    for seed in range(40):
        x, w = _inputs(seed)
        check_grad(fn, (x, w), dfn(x, w))
    returns = [line for line in vjp_source(fn, wrt=(0, 1)).splitlines()
               if line.strip().startswith("return ")]
    assert len(returns) == 2  # one in the forward pass, one in the pullback
    returns = [line for line in dfn.source.splitlines() if line.strip().startswith("return ")]
    assert len(returns) == 1  # grad: every return is one number, the pullback runs in line


def test_if_whose_every_branch_returns():
    fn = make_function("""
        def f(x):
            if x[0] > 0:
                return np.sum(x)
            else:
                return np.sum(x * x)
    """)
    for seed in range(10):
        x, _ = _inputs(seed)
        check_grad(fn, (x,), [srcdiff.grad(fn)(x)])


STRUCTURED_RETURNS = {  # helper bodies that return a tuple or a dict from more than one place
    "tuple": ("    if np.sum(a) > 0.0:\n        return a, a * 2.0\n    return a * 3.0, np.sin(a)",
              "u, v = h(a)\n    return np.sum(u * v)"),
    "tuple_elif": ("    if a[0] > 0.0:\n        return a, a * a\n    elif a[1] > 0.0:\n"
                   "        return a * 2.0, a\n    return np.cos(a), a", "u, v = h(a)\n    return np.sum(u + v * u)"),
    "dict": ("    if np.sum(a) > 0.0:\n        return {'w': a * a, 'b': a}\n    return {'w': a, 'b': a * 3.0}",
             None),  # (a caller cannot index a dict a helper returned yet: vjp of h only)
}


@pytest.mark.parametrize("x", [np.array([0.3, -0.7, 1.1]), np.array([-0.3, 0.7, -1.1]),
                               np.array([-0.3, -0.7, -1.1])], ids=["first", "second", "last"])
@pytest.mark.parametrize("name", sorted(STRUCTURED_RETURNS))
def test_a_helper_returns_a_tuple_or_dict_from_several_places(name, x):
    helper, caller = STRUCTURED_RETURNS[name]
    h = make_function(f"def h(a):\n{helper}\n\n\ndef f(a):\n    {caller or 'return 0.0'}\n", name="h")
    if caller is not None:
        fn = h.__globals__["f"]
        check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
    out, pullback = srcdiff.vjp(h, x)
    cotangent = (np.ones(3), 2.0 * np.ones(3)) if name != "dict" else {"w": np.ones(3), "b": 2.0 * np.ones(3)}
    (dx,) = pullback(cotangent)
    weights = cotangent if name != "dict" else (cotangent["w"], cotangent["b"])
    keys = (0, 1) if name != "dict" else ("w", "b")
    check_grad(lambda v: sum(np.sum(h(v)[k] * w) for k, w in zip(keys, weights)), (x,), (dx,))


def test_has_aux_pairs_may_return_early():
    fn = make_function("""
        def f(a):
            if np.sum(a) > 0.0:
                return np.sum(a ** 2), "positive"
            return np.sum(a ** 3), "negative"
    """)
    for x in (np.array([0.3, 0.7]), np.array([-0.3, 0.1])):
        g, aux = srcdiff.grad(fn, has_aux=True)(x)
        assert aux == fn(x)[1]
        check_grad(lambda v: fn(v)[0], (x,), (g,))


def test_not_and_invert_of_a_flag_carry_no_gradient():
    """``not flag`` and ``~mask`` are truth values: constants for differentiation, also where
    the flag comes out of a container that holds a differentiated value (it was refused as
    'the operator in not flag')."""
    fn = make_function("""
        def f(x):
            pair = (x * 2.0, np.sum(x) > 0)
            c, flag = pair
            flip = not flag
            keep = ~(x > 0.2)
            return np.sum(c * c * keep) * (1.0 - 2.0 * flip)
    """)
    for x in (np.array([0.3, -0.1, 0.5]), np.array([-0.3, -0.1, 0.1])):
        check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
        _, tangent = srcdiff.jvp(fn, (x,), (np.ones(3),))
        np.testing.assert_allclose(tangent, np.sum(srcdiff.grad(fn)(x)))
