"""srcdiff._dispatch.FirstCall: the first signature's test of a gradient's call, in C.

Its answers are its Python twin's (srcdiff.fast_call's lines; tests/test_call_path.py runs
every test of the call path on both): here, what only the C side can get wrong (reference
counts, a cycle the collector must free, an array subclass, a byte-swapped or strided array,
an exception from the derivative) and the table both twins read (``first_spec``)."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import srcdiff
from srcdiff import fast_call
from srcdiff.analysis.dtypes import FLOAT64
from srcdiff.testing import check_grad

dispatch = pytest.importorskip("srcdiff._dispatch", reason="built where a C compiler is at hand")

RNG = np.random.default_rng(1)


def lsq(w, b, X, y):
    return np.mean((X @ w + b - y) ** 2)


def args64():
    X = RNG.normal(size=(6, 3))
    return RNG.normal(size=3), 0.25, X, RNG.normal(size=6)


def twins(fn, wrt, args, maker=srcdiff.grad):
    """The same gradient with its first test in C and in Python (each written out at its
    first call, here)."""
    made = {}
    for compiled in (True, False):
        fast_call.COMPILED = compiled
        try:
            made[compiled] = maker(fn, wrt=wrt)
            made[compiled](*args)
        finally:
            fast_call.COMPILED = True
    return made[True], made[False]


def same(a, b):
    """Two call results alike: structure, types, dtypes, values."""
    if isinstance(a, tuple):
        assert type(b) is tuple and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
        return
    assert type(a) is type(b)
    if type(a) is np.ndarray:
        assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def test_the_call_is_a_first_call_and_agrees_with_its_python_twin():
    args = args64()
    c, py = twins(lsq, ("w", "b"), args)
    for _ in range(3):
        same(c(*args), py(*args))
    assert type(type(c).__dict__["__call__"]) is dispatch.FirstCall
    assert type(type(py).__dict__["__call__"]) is not dispatch.FirstCall
    check_grad(lsq, args, c(*args), argnums=(0, 1))
    assert c.__call__(*args)[1] == c(*args)[1]  # bound, as a method is


@pytest.mark.parametrize("change", ["subclass", "byteswapped", "strided", "float32", "int b",
                                    "numpy b", "shape", "keyword"])
def test_arguments_beside_the_first_signature_get_the_python_answers(change):
    """Each call that differs from the first in one way gets what the Python twin gives (C
    passes it on, or takes it where the test holds: a strided array of the same shape)."""
    class Sub(np.ndarray):
        pass

    w, b, X, y = args64()
    c, py = twins(lsq, ("w", "b"), (w, b, X, y))  # the first signature
    kwargs = {}
    if change == "subclass":
        X = X.view(Sub)
    elif change == "byteswapped":
        X = X.astype(">f8")
    elif change == "strided":
        X = np.asfortranarray(X)[:, :]
        y = np.repeat(y, 2)[::2]
    elif change == "float32":
        w = w.astype(np.float32)
    elif change == "int b":
        b = 1
    elif change == "numpy b":
        b = np.float64(b)
    elif change == "shape":
        X, y = X[:4], y[:4]
    else:
        kwargs, y = {"y": y}, None
    call = (w, b, X) if kwargs else (w, b, X, y)
    for _ in range(2):
        if change == "int b":  # an integer is not differentiable: both refuse alike
            for g in (c, py):
                with pytest.raises(srcdiff.SrcdiffError, match="integer|float"):
                    g(*call, **kwargs)
            return
        got = c(*call, **kwargs)
        same(got, py(*call, **kwargs))
    full = (w, b, X, kwargs.get("y", y))
    check_grad(lsq, tuple(np.asarray(a, np.float64) if isinstance(a, np.ndarray) else a
                          for a in full), tuple(np.float64(g) if np.ndim(g) == 0 else g
                                                for g in got),
               argnums=(0, 1), rtol=1e-3 if change == "float32" else 1e-5)


def inner(x, y):
    return np.sum(x * y)


def sin_of_sum(x, y):
    return np.sum(np.sin(x + y))


def scaled(x, k):
    return np.sum(x ** 2) * k


@pytest.mark.parametrize("fn, wrt, args", [
    (inner, 0, (RNG.normal(size=4), RNG.normal(size=4))),           # d/dx is y: copied
    (inner, (0, 1), (RNG.normal(size=4), RNG.normal(size=4))),
    (sin_of_sum, (0, 1), (RNG.normal(size=4), RNG.normal(size=4))),  # one array twice: apart
    (scaled, (0, 1), (RNG.normal(size=(2, 3)).astype(np.float32), np.float32(2.0))),  # slow
    (scaled, 0, (RNG.normal(size=(2, 3)), 3)),                       # an int beside
], ids=["argument", "both arguments", "apart", "float32 scalar", "int beside"])
@pytest.mark.parametrize("maker", [srcdiff.grad, srcdiff.value_and_grad])
def test_each_treatment_of_a_gradient_as_in_python(fn, wrt, args, maker):
    c, py = twins(fn, wrt, args, maker)
    for _ in range(3):
        got, want = c(*args), py(*args)
        same(got, want)
        grads = got[1] if maker is srcdiff.value_and_grad else got
        grads = grads if isinstance(grads, tuple) else (grads,)
        for g in grads:
            if type(g) is np.ndarray:
                assert g.flags.writeable and g.base is None
                assert not any(g is a for a in args)
        if len(grads) == 2 and type(grads[1]) is np.ndarray:
            assert grads[0] is not grads[1]
    argnums = wrt if isinstance(wrt, tuple) else (wrt,)
    check_grad(fn, tuple(np.float64(a) if np.ndim(a) == 0 and not isinstance(a, int) else
                         np.asarray(a, np.float64) if isinstance(a, np.ndarray) else a
                         for a in args),
               tuple(np.asarray(g, np.float64) for g in grads), argnums=argnums,
               rtol=1e-3 if args[0].dtype == np.float32 else 1e-5)


def test_no_reference_is_leaked_or_lost():
    grad = srcdiff.grad(lsq, wrt=("w", "b"))
    w, b, X, y = args64()
    grad(w, b, X, y)
    grad(w, b, X, y)
    before = [sys.getrefcount(a) for a in (w, b, X, y)]
    for _ in range(1000):
        dw, db = grad(w, b, X, y)
    assert [sys.getrefcount(a) for a in (w, b, X, y)] == before
    assert sys.getrefcount(dw) == 2  # held by dw alone


def not_positive(K):
    return np.sum(np.log(np.diag(np.linalg.cholesky(K))))


def test_an_exception_in_the_derivative_reaches_the_caller():
    grad = srcdiff.grad(not_positive)
    K = np.eye(3) * 2.0
    first = grad(K)
    check_grad(not_positive, (K,), (first,))
    before = sys.getrefcount(K)
    bad = -np.eye(3)
    for _ in range(3):
        with pytest.raises(np.linalg.LinAlgError):
            grad(bad)
    np.testing.assert_array_equal(grad(K), first)
    assert sys.getrefcount(K) == before


def test_a_gradient_and_its_compiled_call_are_collected():
    grad = srcdiff.grad(lsq, wrt=("w", "b"))
    grad(*args64())
    call = weakref.ref(type(grad))
    gone = weakref.ref(grad)
    del grad
    gc.collect()
    assert gone() is None and call() is None


def test_the_table_both_twins_read():
    key = ((3,), float, (6, 3), int, True)
    arguments, gradients = fast_call.first_spec(key, (0, 1), (int,), (np.float32,), (FLOAT64,))
    assert arguments == ((fast_call.ARG_ARRAY, (3,), True, True), (fast_call.ARG_NUMBER,),
                         (fast_call.ARG_ARRAY, (6, 3), True, False),
                         (fast_call.ARG_TYPE, int, False))
    assert gradients == ((0, fast_call.GRAD_AS_IS), (1, fast_call.GRAD_NUMBER))
    _, gradients = fast_call.first_spec(key, (0, 2), (int,), (), (True, False))
    assert gradients == ((0, fast_call.GRAD_DTYPE), (2, fast_call.GRAD_ARRAY))


@pytest.mark.parametrize("arguments, gradients, error", [
    (((0, (3,), 1, 1),), ((0, 3),), ValueError),     # a number's treatment for an array
    (((1,),), ((0, 0),), ValueError),                # an array's treatment for a number
    (((0, (3,), 1, 1),), ((1, 0),), ValueError),     # no such argument
    (((2, 3),), ((0, 4),), TypeError),               # ARG_TYPE without a type
    (((7,),), ((0, 4),), ValueError),                # no such kind
    (((0, (1,) * 9, 1, 1),), ((0, 0),), ValueError),  # more than 8 dimensions
])
def test_a_malformed_table_is_refused(arguments, gradients, error):
    with pytest.raises(error):
        dispatch.FirstCall(lsq, lsq, (), lsq, lsq, arguments, gradients, True, False)
