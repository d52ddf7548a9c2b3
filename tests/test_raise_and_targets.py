"""Input checks that raise, f-string messages, enumerate's start and nested loop targets:
ordinary idioms of code written by others, each checked against finite differences."""

import numpy as np
import pytest

import srcdiff
from srcdiff import SrcdiffSyntaxError
from srcdiff.testing import check_grad, check_jvp

from .end_to_end import check_grad_by_finite_differences, check_value_and_grad
from .helpers import make_function

SHAPES = [(5,), (3, 4), ()]


def _arg(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 1.0, size=shape) if shape else float(rng.uniform(0.2, 1.0))


# ----- raise ---------------------------------------------------------------------------------

def checked(x):
    if np.any(np.isnan(x)):
        raise ValueError(f"x holds {np.sum(np.isnan(x))} NaN values (shape {np.shape(x)})")
    y = np.sin(x) + x ** 2
    if np.max(y) > 1e6:
        raise FloatingPointError("y overflows: " + str(np.max(y)))
    return np.sum(y ** 2)


def activation(z, kind):
    if kind == "tanh":
        return np.tanh(z)
    elif kind == "softplus":
        return np.logaddexp(0.0, z)
    raise ValueError(f"unknown activation {kind!r}")


def layer(x, kind="tanh"):
    return np.sum(activation(x * 2.0 - 0.5, kind) ** 2)


def halve_until_small(x):
    s = np.sum(x ** 2) + 1.0
    steps = 0
    while s > 0.5:
        s = s * 0.5
        steps += 1
        if steps > 100:
            raise RuntimeError(f"no convergence after {steps} steps (s={s:.3g})")
    return s


def finite(v):
    if not np.all(np.isfinite(v)):
        raise FloatingPointError(f"{np.sum(~np.isfinite(v))} values of v are not finite")
    return np.tanh(v) * 2.0


def through_a_checking_helper(x):
    return np.sum(finite(x * 3.0) ** 2)


def mode_loss(x, mode="l2"):
    if mode == "l2":
        return np.sum(x ** 2)
    elif mode == "l1":
        return np.sum(np.abs(x))
    raise ValueError(f"unknown mode {mode}")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("fn, extra", [(checked, ()), (layer, ()), (layer, ("softplus",)),
                                       (halve_until_small, ()), (mode_loss, ()),
                                       (mode_loss, ("l1",)), (through_a_checking_helper, ())],
                         ids=["checked", "layer-tanh", "layer-softplus", "while", "mode-l2",
                              "mode-l1", "helper-reads-the-array"])
def test_raising_functions_differentiate(fn, extra, shape):
    args = (_arg(shape), *extra)
    check_grad_by_finite_differences(fn, args, wrt=(0,))
    check_value_and_grad(fn, args, wrt=(0,))
    out, pullback = srcdiff.vjp(fn, *args)
    assert out == pytest.approx(fn(*args))
    check_grad(fn, args, (pullback(1.0)[0],), argnums=(0,))
    if not extra:  # forward mode
        v = np.ones_like(args[0])
        value, tangent = srcdiff.jvp(fn, args, (v,))
        check_jvp(fn, args, (v,), tangent)


@pytest.mark.parametrize("fn, args, error, message", [
    (checked, (np.array([1.0, np.nan]),), ValueError, r"holds 1 NaN values \(shape \(2,\)\)"),
    (checked, (np.array([1e4, 1e5]),), FloatingPointError, "y overflows: "),
    (layer, (np.ones(3), "relu"), ValueError, "unknown activation 'relu'"),
    (mode_loss, (np.ones(3), "huber"), ValueError, "unknown mode huber"),
    (halve_until_small, (np.full(3, 1e40),), RuntimeError, "no convergence after 101 steps"),
    (through_a_checking_helper, (np.array([1.0, np.inf]),), FloatingPointError,
     "1 values of v are not finite"),
], ids=["nan", "overflow", "helper", "last-statement", "while", "helper-reads-the-array"])
def test_the_gradient_raises_what_the_function_raises(fn, args, error, message):
    with pytest.raises(error, match=message):
        fn(*args)
    for make in (srcdiff.grad, srcdiff.value_and_grad):
        with pytest.raises(error, match=message):
            make(fn, wrt=0)(*args)


def test_the_generated_source_keeps_the_raise_as_written():
    grad = srcdiff.grad(mode_loss)
    grad(np.ones(3))
    lines = [line.strip() for line in grad.source.splitlines()]
    assert 'raise ValueError(f"unknown mode {mode}")' in lines
    assert "zeros_like" not in grad.source  # the side that raises has no adjoint branch
    grad = srcdiff.grad(halve_until_small)
    grad(np.ones(3))
    assert any(line.startswith('raise RuntimeError(f"no convergence after {steps_')
               for line in (line.strip() for line in grad.source.splitlines()))


def test_an_assert_message_may_be_an_f_string():
    fn = make_function("""
        def f(x):
            assert x.ndim == 1, f"x must be a vector, not {x.shape}"
            return np.sum(np.exp(x))
    """)
    check_grad_by_finite_differences(fn, (_arg((4,)),))
    with pytest.raises(AssertionError, match=r"not \(2, 2\)"):
        srcdiff.grad(fn)(np.ones((2, 2)))


def test_a_function_that_only_raises_is_refused():
    fn = make_function("""
        def f(x):
            if x.ndim == 1:
                raise ValueError("vector")
            raise ValueError("not a vector")
    """)
    with pytest.raises(SrcdiffSyntaxError, match="must end with a 'return'"):
        srcdiff.grad(fn)(np.ones(3))


def test_an_f_string_outside_a_message_is_refused_where_it_is():
    fn = make_function("""
        def f(x):
            label = f"{x.shape}"
            return np.sum(x)
    """)
    with pytest.raises(SrcdiffSyntaxError, match="f-string outside a raise or an assert") as info:
        srcdiff.grad(fn)(np.ones(3))
    assert 'label = f"{x.shape}"' in str(info.value)


# ----- enumerate's start, nested targets -------------------------------------------------------

def weighted_from_one(x, y):
    s = 0.0
    for i, v in enumerate(x, 1):
        s = s + i * v * y[i - 1]
    return s


def weighted_start_keyword(x, y):
    return sum(i * v ** 2 for i, v in enumerate(x, start=2)) + np.sum(y)


def weighted_start_name(x, y):
    k = len(x) - 1
    s = 0.0
    for i, v in enumerate(y, k):
        s = s + i * v * x[0]
        k = k + 1  # the loop counts from the k it started with
    return s + k


def pairs_enumerated(x, y):
    s = 0.0
    for i, (a, b) in enumerate(zip(x, y)):
        s = s + (i + 1) * a * np.sin(b)
    return s


def pair_enumerated(x, y):
    s = 0.0
    for i, ab in enumerate(zip(x, y ** 2), 3):
        a, b = ab
        s = s + i * a * b
    return s


def list_of_pairs(x, y):
    pairs = [(x, y), (y * 2.0, x)]
    s = 0.0
    for j, (p, q) in enumerate(pairs):
        s = s + (j + 1) * np.sum(p * q ** 2)
    return s


def comprehension_of_pairs(x, y):
    return sum([a * b * i for i, (a, b) in enumerate(zip(x, y), 1)])


def layers_by_name(layers, x):
    h = x
    for name, (W, b) in layers.items():
        h = np.tanh(W @ h + b)
    return np.sum(h ** 2)


@pytest.mark.parametrize("fn", [weighted_from_one, weighted_start_keyword, weighted_start_name,
                                pairs_enumerated, pair_enumerated, list_of_pairs,
                                comprehension_of_pairs],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [4, 1])
def test_enumerate_start_and_nested_targets(fn, n):
    args = (_arg((n,)), _arg((n,), seed=1))
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)


def test_enumerate_start_counts_from_start():
    """enumerate(x, 1) was read as enumerate(x): value and gradient silently wrong."""
    x, y = np.arange(1.0, 4.0), np.ones(3)
    value, (dx, dy) = srcdiff.value_and_grad(weighted_from_one, wrt=(0, 1))(x, y)
    assert value == pytest.approx(1 * 1 + 2 * 2 + 3 * 3)
    np.testing.assert_allclose(dx, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(dy, [1.0, 4.0, 9.0])


def test_a_target_nested_deeper_is_refused_where_it_is():
    fn = make_function("""
        def f(x, y):
            s = 0.0
            for i, (a, (b, c)) in enumerate(zip(x, zip(y, y))):
                s = s + a * b * c
            return s
    """)
    with pytest.raises(SrcdiffSyntaxError, match="one level of parentheses") as info:
        srcdiff.grad(fn)(np.ones(3), np.ones(3))
    assert "for i, (a, (b, c)) in" in str(info.value)


@pytest.mark.parametrize("n", [3, 1])
def test_nested_targets_over_the_items_of_a_dict_argument(n):
    rng = np.random.default_rng(n)
    layers = {"first": (rng.normal(size=(n, n)), rng.normal(size=n)),
              "second": (rng.normal(size=(n, n)), rng.normal(size=n))}
    x = rng.normal(size=n)
    grads = srcdiff.grad(layers_by_name)(layers, x)
    leaves = [(name, i) for name in layers for i in (0, 1)]

    def moved(name, i, delta):
        pair = list(layers[name])
        pair[i] = pair[i] + delta
        return layers_by_name({**layers, name: tuple(pair)}, x)

    eps = 1e-6
    for name, i in leaves:  # central differences, element by element
        leaf = layers[name][i]
        numeric = np.zeros_like(leaf)
        for index in np.ndindex(leaf.shape):
            step = np.zeros_like(leaf)
            step[index] = eps
            numeric[index] = (moved(name, i, step) - moved(name, i, -step)) / (2 * eps)
        np.testing.assert_allclose(grads[name][i], numeric, rtol=1e-5, atol=1e-7)


def test_a_loop_over_a_dict_by_its_name_says_how_to_loop_over_its_keys():
    fn = make_function("""
        def f(p):
            s = 0.0
            for k in p:
                s = s + np.sum(p[k] ** 2)
            return s
    """)
    with pytest.raises(srcdiff.NotDifferentiableError, match=r"for k, v in d\.items\(\)") as info:
        srcdiff.grad(fn)({"a": np.ones(2), "b": np.ones(3)})
    assert "s = s + np.sum(p[k] ** 2)" in str(info.value)
    keys = make_function("""
        def f(p):
            s = 0.0
            for k in p.keys():
                s = s + np.sum(p[k] ** 2)
            return s
    """)
    p = {"a": np.arange(2.0), "b": np.ones(3)}
    g = srcdiff.grad(keys)(p)
    check_grad(lambda a, b: keys({"a": a, "b": b}), (p["a"], p["b"]), (g["a"], g["b"]),
               argnums=(0, 1))


# ----- loops and comprehensions over an operation or a numpy call: the rows it makes -----

def clipped_products(x, y):
    return sum([v if v > 0 else 2 * v for v in x * y])


def rows_of_an_outer(x, y):
    s = 0.0
    for row in np.outer(x, y):
        s = s + np.sum(np.tanh(row))
    return s


def negated(x, y):
    return sum(np.sin(v) * w for v, w in zip(-x, y))


def rebound_inside(x, y):
    s = 0.0
    for v in x * 2:  # Python runs over the rows it made once, before the loop
        x = x + v
        s = s + np.sum(x) * v
    return s + np.sum(y)


def started_sum(x, y):
    return sum([v * 2 for v in x], start=1.5) + np.sum(y)


@pytest.mark.parametrize("fn", [clipped_products, rows_of_an_outer, negated, rebound_inside,
                                started_sum], ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [4, 1])
def test_loops_over_what_an_operation_makes(fn, n):
    args = (np.linspace(-0.9, 1.3, n), np.linspace(0.4, -0.6, n))
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
