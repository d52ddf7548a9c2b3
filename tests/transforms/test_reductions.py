"""The reductions stage: np.sum(v) and np.mean(v) of one operand as rt.sum_all / rt.mean_all
in the variant for a pattern of argument shapes, numpy's values to the bit; and the two
runtime functions themselves."""

import warnings

import numpy as np
import pytest

import srcdiff
from srcdiff import runtime as rt
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad


def mse(w, b, X, y):
    return np.mean((X @ w + b - y) ** 2)


def sums(w, b, X, y):
    r = X @ w + b - y
    return np.sum(r * r) + 0.5 * np.sum(np.sum(r[:, None] * X, axis=0) ** 2) + np.mean(X) * b


@pytest.mark.parametrize("fn", [mse, sums], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_value_is_numpys_to_the_bit(fn, dtype):
    rng = np.random.default_rng(1)
    X, y, w = (rng.normal(size=s).astype(dtype) for s in ((9, 3), (9,), (3,)))
    value_and_grad = srcdiff.value_and_grad(fn, wrt=(0, 1))
    value, grads = value_and_grad(w, 0.25, X, y)
    assert value == fn(w, 0.25, X, y) and type(value) is type(fn(w, 0.25, X, y))
    code = "\n".join(line.split("#")[0] for line in value_and_grad.source.splitlines())
    assert "np.mean(" not in code and "rt.mean_all(" in code
    if fn is sums:  # a sum along an axis stays numpy's
        assert "rt.sum_all(_t3)" in code and "np.sum(_t6, axis=0)" in code
    if dtype is np.float64:
        check_grad(fn, (w, 0.25, X, y), grads, argnums=(0, 1))


def test_without_a_shape_pattern_nothing_changes():
    general = compile_derivative(mse, ("w", "b"), gradient=True, with_value=True).source
    assert "np.mean(" in general and "rt.mean_all(" not in general


SIZES = [1, 2, 7, 64, 1000, 100003]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, np.bool_,
                                   np.complex128])
def test_sum_all_and_mean_all_are_numpys(dtype):
    rng = np.random.default_rng(2)
    for n in SIZES:
        x = (rng.normal(size=n) * 50).astype(dtype)
        for ours, numpys in ((rt.sum_all, np.sum), (rt.mean_all, np.mean)):
            got, want = ours(x), numpys(x)
            assert type(got) is type(want)
            assert got == want or np.isnan(got) and np.isnan(want), (ours.__name__, n)
    x2 = rng.normal(size=(3, 4)).astype(dtype)
    assert rt.sum_all(x2) == np.sum(x2) and rt.mean_all(x2) == np.mean(x2)


def test_other_operands_go_to_numpy():
    assert rt.sum_all([1.0, 2.0]) == 3.0 and rt.mean_all([1.0, 2.0]) == 1.5
    assert rt.sum_all(2.5) == 2.5 and rt.mean_all(np.float32(2.5)) == np.float32(2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(rt.mean_all(np.zeros(0)))  # numpy's warning and nan, as np.mean
