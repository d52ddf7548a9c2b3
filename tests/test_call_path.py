"""The lean call path of ``grad``: after the first call, plain arguments skip the general
checks, and everything else still takes (and gets the answers of) the general path. Every
test runs twice: with the first signature's test in C (``srcdiff._dispatch``, where it is
built) and with its Python twin."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff import fast_call
from srcdiff.testing import check_grad


@pytest.fixture(autouse=True, params=["C", "Python"])
def first_test(request, monkeypatch):
    """Which twin tests a new gradient's first signature: srcdiff._dispatch or fast_call's lines."""
    if request.param == "C" and fast_call._dispatch is None:
        pytest.skip("srcdiff._dispatch is not built here (no C compiler at install)")
    monkeypatch.setattr(fast_call, "COMPILED", request.param == "C")
    return request.param


def loss(w, b, x):
    return np.mean((x @ w + b) ** 2)


def total(x):
    return np.sum(x)


RNG = np.random.default_rng(0)
W, X = RNG.normal(size=3), RNG.normal(size=(5, 3))


def test_repeated_calls_agree_with_the_oracle_and_the_first_call():
    dloss = srcdiff.grad(loss, wrt=(0, 1))
    first = dloss(W, 0.5, X)
    for _ in range(3):
        dw, db = dloss(W, 0.5, X)
        np.testing.assert_array_equal(dw, first[0])
        assert db == first[1] and type(db) is float
    check_grad(loss, (W, 0.5, X), (dw, db), argnums=(0, 1))


def test_gradients_are_fresh_writable_arrays_never_views_or_inputs():
    dtotal = srcdiff.grad(total)
    x = np.ones((2, 3))
    for _ in range(2):
        g = dtotal(x)  # the adjoint of a sum is a broadcast: copied before it is returned
        assert g.flags.writeable and g.flags.owndata and g is not x
        g[0, 0] = 7.0
    np.testing.assert_array_equal(dtotal(x), np.ones((2, 3)))


def transposed(x, c):
    return np.sum(x.T * c)


def test_a_gradient_that_is_a_view_is_copied_once():
    """The adjoint of ``x.T`` is a transpose of ``c``: a view, copied (not shared) for every
    path and call, with the oracle's values."""
    x, c = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 2))
    for derivative in (srcdiff.grad(transposed), srcdiff.value_and_grad(transposed)):
        for _ in range(3):
            g = derivative(x, c)
            g = g[1] if isinstance(g, tuple) else g
            assert g.flags.writeable and g.flags.owndata and not np.shares_memory(g, c)
            np.testing.assert_array_equal(g, c.T)
    check_grad(transposed, (x, c), (srcdiff.grad(transposed)(x, c),), argnums=(0,))


def test_other_arguments_take_the_general_path_after_plain_calls():
    dloss = srcdiff.grad(loss, wrt=(0, 1))
    dloss(W, 0.5, X)
    dw, db = dloss(W, b=0.5, x=X)  # keywords
    np.testing.assert_allclose(dw, dloss(W, 0.5, X)[0])
    dw32, _ = dloss(W.astype(np.float32), 0.5, X.astype(np.float32))
    assert dw32.dtype == np.float32
    _, db64 = dloss(W, np.float64(0.5), X)  # a numpy scalar: a numpy scalar's gradient
    assert np.isclose(db64, db)
    with pytest.raises(srcdiff.SrcdiffError, match="not a floating-point value"):
        dloss(np.arange(3), 0.5, X)  # an int array in wrt: the general path's error
    with pytest.raises(TypeError):
        dloss(W, 0.5)  # a missing argument: Python's own error, as for loss itself
    np.testing.assert_allclose(dloss(W, 0.5, X)[0], dw)  # and the plain path still works


def test_a_container_after_plain_calls_gets_a_container_gradient():
    def product(a):  # a[0] reads a row of an array, or the first array of a tuple
        return np.sum(a[0] * a[1])

    dproduct = srcdiff.grad(product)
    rows = RNG.normal(size=(2, 3))
    np.testing.assert_allclose(dproduct(rows), rows[::-1])
    pair = dproduct((rows[0], rows[1]))
    assert isinstance(pair, tuple) and len(pair) == 2
    np.testing.assert_allclose(pair[0], rows[1])
    np.testing.assert_allclose(pair[1], rows[0])
    np.testing.assert_allclose(dproduct(rows), rows[::-1])  # the plain variant again


def test_non_scalar_output_is_refused_on_the_plain_path_too():
    def square(x):
        return x ** 2

    dsquare = srcdiff.grad(square)
    assert dsquare(3.0) == 6.0
    with pytest.raises(srcdiff.SrcdiffError, match="floating-point scalar"):
        dsquare(np.ones(2))


def test_value_and_grad_and_has_aux_on_the_plain_path():
    def with_aux(x):
        return np.sum(x * x), "aux"

    vag = srcdiff.value_and_grad(with_aux, has_aux=True)
    for _ in range(2):
        (value, aux), g = vag(np.array([1.0, 2.0]))
        assert value == 5.0 and aux == "aux"
        np.testing.assert_array_equal(g, [2.0, 4.0])
    g, aux = srcdiff.grad(with_aux, has_aux=True)(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_a_new_code_object_is_compiled_again():
    def f(x):
        return np.sum(x * 2.0)

    def h(x):
        return np.sum(x * 3.0)

    df = srcdiff.grad(f)
    np.testing.assert_array_equal(df(np.ones(2)), [2.0, 2.0])
    f.__code__ = h.__code__
    np.testing.assert_array_equal(df(np.ones(2)), [3.0, 3.0])


@pytest.mark.parametrize("wrt", [0, "x", (0,), ("x",), [0]])
@pytest.mark.parametrize("fn", [total, loss], ids=["gradient only", "mean"])
def test_a_tuple_of_one_stays_a_tuple_of_one_on_every_call(fn, wrt):
    """wrt=("x",) gives a tuple of one gradient, wrt="x" the gradient, on the first call and
    on the cached plain calls after it (both calling conventions of the derivative)."""
    args = (np.arange(6.0).reshape(2, 3),) if fn is total else (W, 0.5, X)
    if fn is loss:  # its first parameter is w
        wrt = "w" if wrt == "x" else ("w",) if wrt == ("x",) else wrt
    results = [srcdiff.grad(fn, wrt=wrt)] * 3
    results = [g(*args) for g in results]
    for got in results:
        if isinstance(wrt, (tuple, list)):
            assert type(got) is tuple and len(got) == 1
            got = got[0]
        assert type(got) is np.ndarray and got.shape == np.shape(args[0])
        check_grad(fn, args, (got,), argnums=(0,))
    vag = srcdiff.value_and_grad(fn, wrt=wrt)
    for _ in range(3):
        value, got = vag(*args)
        assert (type(got) is tuple) == isinstance(wrt, (tuple, list))


@pytest.mark.parametrize("scalar", [np.float64, np.float32])
def test_numpy_scalar_arguments_take_the_lean_path_with_the_general_answers(scalar):
    """A numpy scalar in wrt (``b = np.mean(y)``) is as plain as a Python float: every call
    gives the first call's type and value, and the oracle's."""
    dloss = srcdiff.grad(loss, wrt=(0, 1))
    b = scalar(0.5)
    first = dloss(W, b, X)
    assert type(first[1]) is scalar
    for _ in range(3):
        dw, db = dloss(W, b, X)
        assert type(db) is scalar and db == first[1]
        np.testing.assert_array_equal(dw, first[0])
    assert dloss._plain is not None  # the lean path serves it
    check_grad(loss, (W, float(b), X), (dw, float(db)), argnums=(0, 1),
               rtol=1e-5 if scalar is np.float64 else 1e-3)


def inner(x, y):
    return np.sum(x * y)


@pytest.mark.parametrize("wrt", [0, (0,), (0, 1)])
def test_a_gradient_that_is_another_argument_is_copied_on_every_call(wrt):
    """d/dx sum(x * y) is y itself: the caller gets a copy it owns, on the first call (the
    general path) and on the later ones (the specialised call of srcdiff.fast_call)."""
    dinner = srcdiff.grad(inner, wrt=wrt)
    x, y = RNG.normal(size=4), RNG.normal(size=4)
    for _ in range(3):
        grads = dinner(x, y)
        grads = (grads,) if wrt == 0 else grads
        assert isinstance(grads, tuple) and len(grads) == (2 if wrt == (0, 1) else 1)
        for g, other in zip(grads, (y, x)):
            assert g is not x and g is not y and g.flags.writeable
            np.testing.assert_array_equal(g, other)
        check_grad(inner, (x, y), grads, argnums=(0, 1) if wrt == (0, 1) else (0,))


def test_one_parameter_and_an_integer_array_after_plain_calls():
    dtotal = srcdiff.grad(total)
    x = RNG.normal(size=3)
    for _ in range(2):
        np.testing.assert_array_equal(dtotal(x), np.ones(3))
    with pytest.raises(srcdiff.SrcdiffError, match="integer|float"):
        dtotal(np.arange(3))  # the general path's refusal, not a fast-path answer


@pytest.mark.parametrize("wrt", [0, (0,), (0, 1)])
def test_value_and_grad_runs_forward_and_backward_in_one_function(wrt):
    """value_and_grad of a provably scalar loss is compiled as one function that returns the
    value and the gradients (seed.py, fuse.py): the same answers on every call."""
    vg = srcdiff.value_and_grad(loss, wrt=wrt)
    for _ in range(3):
        value, grads = vg(W, 0.5, X)
        assert value == loss(W, 0.5, X)
        grads = (grads,) if wrt == 0 else grads
        assert len(grads) == (2 if wrt == (0, 1) else 1)
        check_grad(loss, (W, 0.5, X), grads, argnums=(0, 1) if wrt == (0, 1) else (0,))
        if wrt == (0, 1):
            assert type(grads[1]) is float
    assert "def loss_value_and_grad(w, b, x):" in vg.source
    assert "return _out, (dw, db)" in vg.source or "return _out, dw" in vg.source


def test_value_and_grad_of_a_non_scalar_output_is_still_refused():
    vg = srcdiff.value_and_grad(lambda x: x * 2.0)
    for _ in range(2):
        with pytest.raises(srcdiff.SrcdiffError, match="scalar"):
            vg(np.ones(3))


def named_like_the_call(x1, x0):  # the written-out call's own parameters are x0, x1
    return np.sum(np.sin(x1) * x0)


def test_arguments_by_keyword_or_too_few_or_too_many_after_plain_calls():
    """The written-out call takes its arguments as positional-only parameters: a keyword
    named as one of them (x0) is the function's own, and a call with fewer or more
    arguments gets the general path's binding and its messages."""
    grad = srcdiff.grad(named_like_the_call, wrt=(0, 1))
    a, b = RNG.normal(size=4), RNG.normal(size=4)
    want = grad(a, b)
    assert type(grad).__call__ is not srcdiff.GradFunction.__call__  # the written-out one
    for got in (grad(a, b), grad(a, x0=b), grad(x1=a, x0=b), grad(x0=b, x1=a)):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    check_grad(named_like_the_call, (a, b), want)
    with pytest.raises(TypeError):
        grad(a)
    with pytest.raises(TypeError):
        grad(a, b, b)


def scaled(w, b, x, k, note):
    return np.mean((x @ w + b) ** k)


def test_the_first_shapes_and_every_other_key_alternate_with_the_same_answers():
    """The written-out call tests the first call's shapes and types as constants, then any
    other key by lookup: calls that alternate between them, and arguments that differ from
    the first in one position only (a shape, a number's type, a complex array or a list
    with a complex value where the first had real ones), each get the answer of a first
    call with those arguments (a fresh gradient) or the general path's refusal."""
    grad = srcdiff.grad(scaled, wrt=(0, 1))
    small = (W, 0.5, X, 2, "a")
    other = (RNG.normal(size=2), 0.5, RNG.normal(size=(7, 2)), 2, "a")
    numpy_b = (W, np.float64(0.5), X, 2, "a")
    float_k = (W, 0.5, X, 2.0, None)
    for args in (small, other, small, numpy_b, small, float_k, other, small):
        got = grad(*args)
        want = srcdiff.grad(scaled, wrt=(0, 1))(*args)  # a first call: the general path
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1] and type(got[1]) is type(want[1]) is type(args[1])
        assert got[0].flags.writeable and got[0].base is None and got[0] is not args[0]
        check_grad(scaled, args, got, argnums=(0, 1))
    assert type(grad).__call__ is not srcdiff.GradFunction.__call__  # the written-out one
    with pytest.raises(srcdiff.SrcdiffError, match="complex"):
        grad(W, 0.5, X.astype(complex), 2, "a")
    with pytest.raises(srcdiff.SrcdiffError, match="complex"):
        grad(W, 0.5, X, 2, [1j])
    with pytest.raises(srcdiff.SrcdiffError, match="integer|float"):
        grad(np.arange(3), 0.5, X, 2, "a")


def sin_of_sum(x, y):
    return np.sum(np.sin(x + y))


def sum_of(x, y):
    return x + y


def dict_sum(p):
    return np.sum(np.sin(p["a"] + p["b"]))


@pytest.mark.parametrize("make", [lambda f: srcdiff.grad(f, wrt=(0, 1)),
                                  lambda f: srcdiff.value_and_grad(f, wrt=(0, 1))],
                         ids=["grad", "value_and_grad"])
def test_two_gradients_are_never_one_array(make):
    """d/dx and d/dy of sum(sin(x + y)) are one array in the derivative: the caller gets two,
    on the first call (the general path) and the later ones (the written-out call), so that
    changing one in place leaves the other as it was."""
    grad = make(sin_of_sum)
    x, y = RNG.normal(size=4), RNG.normal(size=4)
    for _ in range(3):
        got = grad(x, y)
        dx, dy = got[1] if isinstance(got[0], float) else got
        assert dx is not dy and not np.shares_memory(dx, dy)
        check_grad(sin_of_sum, (x, y), (dx, dy))
        dx *= 0.0
        np.testing.assert_allclose(dy, np.cos(x + y))


def test_container_leaves_and_vjp_results_are_the_callers_own():
    p = {"a": RNG.normal(size=3), "b": RNG.normal(size=3)}
    dp = srcdiff.grad(dict_sum)(p)
    assert dp["a"] is not dp["b"] and not np.shares_memory(dp["a"], dp["b"])
    x, y, v = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3)
    out, pullback = srcdiff.vjp(sum_of, x, y)
    dx, dy = pullback(v)
    assert dx is not v and dy is not v and dx is not dy
    np.testing.assert_array_equal(dx, v)
    np.testing.assert_array_equal(dy, v)


def two_numbers(w, a, b, x):  # da and db are one float object: rt.zeros_like's 0.0 of each
    return np.sum(np.sin(x * w))


def test_number_gradients_that_are_one_object_on_every_path():
    """Two number gradients may be one float object; numbers are immutable, so they are
    handed back as they are on the first call's path and on another key's (a crash once:
    the written-out call copied them as arrays)."""
    grad = srcdiff.grad(two_numbers, wrt=(0, 1, 2))
    for n in (3, 4, 3, 4):  # the first key, then another
        w, x = RNG.normal(size=n), RNG.normal(size=n)
        dw, da, db = grad(w, 0.5, 1.5, x)
        assert da == db == 0.0 and type(da) is float and type(db) is float
        check_grad(two_numbers, (w, 0.5, 1.5, x), (dw, da, db), argnums=(0, 1, 2))
