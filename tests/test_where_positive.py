"""``np.where(x > 0, x, 0)``, a ReLU spelled with np.where: the canonical stage writes it
``rt.where_positive`` (np.fmax, no per-element branch), with np.where's adjoint. The values
are np.where's exactly (NaN, infinities, signed zeros, dtypes); the gradients are checked
against finite differences, and only the exact spelling is lowered."""

import os

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import where_positive
from srcdiff.testing import check_grad, check_jvp

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324, 1.0, -1.0, 3.5, -2.0])


def identical(a, b):
    return type(a) is type(b) and np.shape(a) == np.shape(b) and \
        np.asarray(a).dtype == np.asarray(b).dtype and \
        np.array_equal(a, b, equal_nan=True) and \
        np.array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("n", [1, 7, 16, 33, 1000])
@pytest.mark.parametrize("zero", [0, 0.0])
def test_values_are_np_where_exactly(dtype, n, zero):
    x = np.random.default_rng(n).choice(SPECIALS, n).astype(dtype)
    for a in (x, x[::2], x.reshape(1, -1)):  # contiguous, strided, two axes
        assert identical(where_positive(a > 0, a, zero), np.where(a > 0, a, zero))


@pytest.mark.parametrize("x", [np.float64(-0.0), 2.5, -1.0, np.array(-3.0), np.array([1, -2, 3]),
                               np.array([True, False])])
def test_numbers_0d_and_integer_arrays_take_np_where(x):
    assert identical(where_positive(x > 0, x, 0), np.where(x > 0, x, 0))


def relu_where(x, w):
    a = x * w - 0.25
    h = np.where(a > 0, a, 0)
    return np.sum(h * h)


def relu_where_float(x, w):
    h = np.where(x * w > 0.0, x * w, 0.0)
    return np.sum(np.tanh(h))


def relu_where_flipped(x, w):
    a = x * w
    m = 0 < a
    h = np.where(m, a, 0.0)
    return np.sum(h ** 3)


def relu_in_loop(x, w):
    h = x
    for _ in range(3):
        a = h * w + 0.1
        h = np.where(a > 0, a, 0.0)
    return np.sum(h)


SHAPES = [((5,), (5,)), ((4, 3), (3,)), ((2, 3), (2, 1)), ((), ())]


@pytest.mark.parametrize("fn", [relu_where, relu_where_float, relu_where_flipped, relu_in_loop])
@pytest.mark.parametrize("shapes", SHAPES)
def test_gradients_against_finite_differences(fn, shapes):
    rng = np.random.default_rng(1)
    args = tuple(rng.uniform(-1, 1, s) + 0.05 if s else float(rng.uniform(0.2, 1)) for s in shapes)
    g = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, args, g(*args), argnums=(0, 1))
    value, again = srcdiff.value_and_grad(fn, wrt=(0, 1))(*args)
    assert value == pytest.approx(fn(*args), rel=1e-12)
    for a, b in zip(again, g(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_the_lowered_call_is_in_the_forward_pass():
    x, w = np.linspace(-1, 1, 6), np.full(6, 0.7)
    g = srcdiff.grad(relu_where, wrt=(0, 1))
    g(x, w)
    assert "h = rt.where_positive(_t" in g.source and "np.where(" not in g.source.split("# backward")[0]


def where_ge(x):
    h = np.where(x >= 0, x, 0.0)  # -0.0 stays -0.0 here: not a where_positive
    return np.sum(h * x)


def where_other(x, y):
    h = np.where(x > 0, y, 0.0)  # another value than the compared one
    return np.sum(h * x)


def where_one(x):
    h = np.where(x > 0, x, 1.0)
    return np.sum(h * x)


def where_negative_zero(x):
    h = np.where(x > 0, x, -0.0)
    return np.sum(h * x)


def where_not_adjacent(x):
    m = x > 0
    x = x * 2.0
    h = np.where(m, x, 0.0)  # m compares the x of before
    return np.sum(h * h)


@pytest.mark.parametrize("fn", [where_ge, where_one, where_negative_zero, where_not_adjacent])
def test_other_spellings_stay_np_where(fn):
    x = np.array([-1.0, -0.0, 0.0, 0.5, 2.0, -3.0])
    g = srcdiff.grad(fn)
    grad = g(x)
    assert "rt.where_positive" not in g.source
    check_grad(fn, (x + 0.01,), (g(x + 0.01),), argnums=(0,))
    assert np.shape(grad) == x.shape


def test_other_value_stays_np_where():
    x, y = np.array([-1.0, 0.5, 2.0]), np.array([3.0, -2.0, 1.0])
    g = srcdiff.grad(where_other, wrt=(0, 1))
    check_grad(where_other, (x, y), g(x, y), argnums=(0, 1))
    assert "rt.where_positive" not in g.source


def test_forward_mode_and_hessian():
    x, w = np.array([-0.7, 0.2, 0.9, 1.3]), np.array([1.1, -0.4, 0.8, 0.5])
    dx, dw = np.array([0.3, -1.0, 0.5, 2.0]), np.array([1.0, 0.2, -0.3, 0.4])
    value, tangent = srcdiff.jvp(relu_where_flipped, (x, w), (dx, dw))
    assert value == pytest.approx(relu_where_flipped(x, w))
    check_jvp(relu_where_flipped, (x, w), (dx, dw), tangent)
    h = srcdiff.hessian(relu_where_flipped, wrt=0)(x, w)
    a = x * w
    np.testing.assert_allclose(h, np.diag(np.where(a > 0, 6.0 * a * w * w, 0.0)), rtol=1e-10)


@pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long (numba compiles the "
                    "derivative, ~10 s): set SRCDIFF_SLOW=1; the twin is in test_jit_twins.py")
def test_compiled_path_agrees():
    pytest.importorskip("numba")
    x, w = np.linspace(-1, 1, 7), np.full(7, 0.9)
    g = srcdiff.grad(relu_where, wrt=(0, 1))
    for a, b in zip(srcdiff.jit(g)(x, w), g(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
