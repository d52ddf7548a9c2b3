"""The masks stage: a ReLU's mask applied to an adjoint that is a product with the ReLU's
value (zero wherever the mask is) is that adjoint; every spelling, against finite
differences and, at NaN, infinities, ties and signed zeros, against numpy's own arithmetic
of the rule the line had."""

import numpy as np
import pytest

import srcdiff
from srcdiff import runtime as rt
from srcdiff.testing import check_grad

from ..helpers import code
from ..test_benchmarks_spellings import sp


mask_square = sp.relu_mask  # benchmarks/spellings.py's: b * (b > 0), then np.sum(r * r)


def mask_left_power(x):
    b = x - 0.25
    r = (0 < b) * b
    return np.mean(r ** 2)


def where_square(x):
    b = x - 0.25
    r = np.where(b > 0, b, 0.0)
    return 3.0 * np.sum(r * r)


def maximum_square(x):
    b = x - 0.25
    r = np.maximum(b, 0.0)
    return np.sum(r * r)


def maximum_zero_first(x):
    b = x - 0.25
    r = np.maximum(0, b)
    return np.mean(r ** 2)


def hinge_squared(w, x, y):  # an L2-SVM's loss
    margin = 1.0 - y * (x @ w)
    r = np.maximum(0.0, margin)
    return np.mean(r * r)


SPELLINGS = [mask_square, mask_left_power, where_square, maximum_square, maximum_zero_first]


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4)])
@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_every_spelling_drops_the_mask_and_is_right(fn, shape):
    x = np.random.default_rng(len(shape)).uniform(-1.0, 1.0, size=shape)
    if shape == ():
        x = float(x)
    grad = srcdiff.grad(fn)
    check_grad(fn, (x,), (grad(x),))
    body = code(grad.source)
    assert "db = dr\n" in body, grad.source
    assert "where_adjoint" not in body and "larger_adjoint" not in body


@pytest.mark.parametrize("n", [5, 400])
def test_a_squared_hinge_loss(n):
    rng = np.random.default_rng(n)
    w, x, y = rng.normal(size=3), rng.normal(size=(n, 3)), np.sign(rng.normal(size=n))
    grad = srcdiff.grad(hinge_squared)
    check_grad(hinge_squared, (w, x, y), (grad(w, x, y),), argnums=(0,))
    assert "larger_adjoint" not in code(grad.source)


SPECIAL = np.array([np.nan, -np.inf, np.inf, 0.25, 0.25 - 0.0, 1.0, -1.0, 0.5, 0.0, -3.0])


def test_special_values_agree_with_the_rules_arithmetic():
    """At NaN, infinities and ties (b == 0: x == 0.25) the gradient is what the mask's rule
    would have given, element by element (a zero's sign aside, for np.where; np.maximum's
    rule gives NaN at b = inf where a tie elsewhere makes it add 0.5 * inf * 0: inf here,
    as the rule gives without ties)."""
    x = SPECIAL
    b = x - 0.25
    with np.errstate(invalid="ignore"):
        r_mask = b * (b > 0)
        want_mask = (2 * r_mask) * (b > 0)
        r_max = np.maximum(b, 0.0)
        g = 2 * r_max  # the rule's values, with no 0.5 * g * ties of an infinite g (NaN)
        want_max = np.where(b == 0.0, 0.5 * g, g * (b > 0.0))
        r_where = np.where(b > 0, b, 0.0)
        want_where = rt.where_adjoint_x(3.0 * 2 * r_where, b > 0)
        got_mask = srcdiff.grad(mask_square)(x)
        got_max = srcdiff.grad(maximum_square)(x)
        got_where = srcdiff.grad(where_square)(x)
    np.testing.assert_array_equal(got_mask, want_mask)
    np.testing.assert_array_equal(got_max, want_max)
    np.testing.assert_array_equal(got_where, want_where)
    for got, want in ((got_mask, want_mask), (got_max, want_max)):  # zeros' signs too
        np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]),
                                      np.signbit(want[~np.isnan(want)]))


def read_elsewhere(x):  # dr = 2 * r + the other term's: not a product with r
    b = x - 0.25
    r = b * (b > 0)
    return np.sum(r * r) + np.sum(r * x)


def where_array_factor(x, c):  # np.where's mask on c * r: c may be infinite
    b = x - 0.25
    r = np.where(b > 0, b, 0.0)
    return np.sum(c * r * r)


def maximum_of_one(x):  # r is 1, not 0, where b is not chosen
    b = x - 0.25
    r = np.maximum(b, 1.0)
    return np.sum(r * r)


def written_in_place(x):
    b = x - 0.25
    r = b * (b > 0)
    r[0] = 3.0
    return np.sum(r * r)


@pytest.mark.parametrize("fn, args", [
    (read_elsewhere, (np.linspace(-1, 1, 6),)),
    (where_array_factor, (np.linspace(-1, 1, 6), np.linspace(1, 2, 6))),
    (maximum_of_one, (np.linspace(-1, 3, 6),)),
    (written_in_place, (np.linspace(-1, 1, 6),)),
], ids=["read-elsewhere", "where-array-factor", "maximum-of-one", "written-in-place"])
def test_what_keeps_its_mask(fn, args):
    grad = srcdiff.grad(fn, wrt=tuple(range(len(args))))
    check_grad(fn, args, grad(*args), argnums=tuple(range(len(args))))
    assert "db = dr\n" not in code(grad.source)


def test_where_with_an_infinite_factor_keeps_nps_zero():
    x, c = np.array([-1.0, 1.0]), np.array([np.inf, 1.0])
    with np.errstate(invalid="ignore"):
        dx, dc = srcdiff.grad(where_array_factor, wrt=(0, 1))(x, c)
    assert dx[0] == 0.0  # np.where's branch not taken gets 0, not inf * 0
