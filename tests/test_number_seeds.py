"""grad's number seed on every device (issue 13, item 3).

Where a function's output is provably one real number (a whole-array reduction, or ``+ - * /``
of those and of numbers), ``srcdiff.grad`` seeds the backward pass with the Python float
``1.0`` (transforms/seed.py), which then reaches the reduction's rule as ``g``. On numpy a
number is as good as a 0-d array; on a device array a rule that turns it into an array with
``np.reshape(1.0, ...)`` makes a *host* array, which CuPy (and the duck array that stands for
it, tests/duckarray.py) refuses to mix with device arrays.

Every reduction primitive is run here as a function's whole output, by ``grad`` (the number
seed), ``value_and_grad`` and ``vjp`` (an array or a number cotangent, made a device array
by the API), on numpy against the finite-difference oracle and on duck arrays against numpy,
with no device-to-host copy.
"""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.api import derivative
from srcdiff.pipeline import parameters
from srcdiff.testing import check_grad, check_vjp

from .duckarray import HOST_SYNCS, DuckArray, wrap

# ----- the functions: one reduction (or arithmetic of several) as the whole output -----


def max_of(x):
    return np.max(x)


def min_of(x):
    return np.min(x)


def amax_of(x):
    return np.amax(x)


def amin_of(x):
    return np.amin(x)


def sum_of(x):
    return np.sum(x)


def mean_of(x):
    return np.mean(x)


def prod_of(x):
    return np.prod(x)


def max_method(x):
    return x.max()


def min_method(x):
    return x.min()


def sum_method(x):
    return x.sum()


def mean_method(x):
    return x.mean()


def prod_method(x):
    return x.prod()


def max_of_product(x, w):
    return np.max(np.tanh(x) * w)


def min_of_square(x):
    return np.min(x ** 2 - x)


def prod_of_exp(x):
    return np.prod(np.exp(0.3 * x))


def scaled_max(x):
    return -np.max(x) / 3.0


def max_minus_min(x):
    return np.amax(x) - np.amin(x)


def reductions_mixed(x, w):
    return np.max(x) * np.sum(w) - 2.0 * np.min(x) + x.prod() / np.mean(w)


def var_of(x):
    return np.var(x)


def std_of(x):
    return np.std(x)


def dot_of_vectors(v, w):
    return np.dot(v, w)


def inner_of_vectors(v, w):
    return np.inner(v, w)


def matmul_of_vectors(v, w):
    return v @ w


def einsum_of_vectors(v, w):
    return np.einsum("i,i->", v, w)


def trace_of(a):
    return np.trace(a)


def trace_plus_max(a):
    return np.trace(a) + np.max(a)


_rng = np.random.default_rng(13)


def _matrix():
    return (_rng.uniform(0.5, 1.5, (3, 4)),)


def _vector():
    return (_rng.uniform(0.5, 1.5, 5),)


def _two_vectors():
    return _rng.uniform(0.5, 1.5, 5), _rng.uniform(0.5, 1.5, 5)


def _matrix_and_weights():
    return _rng.uniform(0.5, 1.5, (3, 4)), _rng.uniform(0.5, 1.5, (3, 4))


# name: (function, arguments, whether grad takes the number seed, 1.0)
FUNCTIONS = {
    "np.max": (max_of, _matrix, True),
    "np.max of a vector": (max_of, _vector, True),
    "np.min": (min_of, _matrix, True),
    "np.amax": (amax_of, _matrix, True),
    "np.amin": (amin_of, _vector, True),
    "np.sum": (sum_of, _matrix, True),
    "np.mean": (mean_of, _matrix, True),
    "np.prod": (prod_of, _matrix, True),
    "x.max()": (max_method, _matrix, True),
    "x.min()": (min_method, _matrix, True),
    "x.sum()": (sum_method, _matrix, True),
    "x.mean()": (mean_method, _matrix, True),
    "x.prod()": (prod_method, _vector, True),
    "np.max(np.tanh(x) * w)": (max_of_product, _matrix_and_weights, True),
    "np.min(x ** 2 - x)": (min_of_square, _matrix, True),
    "np.prod(np.exp(0.3 * x))": (prod_of_exp, _matrix, True),
    "-np.max(x) / 3": (scaled_max, _matrix, True),
    "np.amax(x) - np.amin(x)": (max_minus_min, _matrix, True),
    "reductions mixed": (reductions_mixed, _matrix_and_weights, True),
    # a 0-d output the seed pass does not prove a number: the API seeds a 0-d array
    "np.var": (var_of, _matrix, False),
    "np.std": (std_of, _matrix, False),
    "np.dot of vectors": (dot_of_vectors, _two_vectors, False),
    "np.inner of vectors": (inner_of_vectors, _two_vectors, False),
    "v @ w": (matmul_of_vectors, _two_vectors, False),
    "np.einsum('i,i->')": (einsum_of_vectors, _two_vectors, False),
    "np.trace": (trace_of, lambda: (_rng.uniform(0.5, 1.5, (4, 4)),), False),
    "np.trace(a) + np.max(a)": (trace_plus_max, lambda: (_rng.uniform(0.5, 1.5, (3, 3)),),
                                False),
}


def _wrt(fn):
    return tuple(range(len(parameters(fn))))


def _duck(args):
    return tuple(wrap(a) for a in args)


def _check_duck(got, want, arg, what):
    assert type(got) is DuckArray, f"{what}: a {type(got).__name__} for a DuckArray argument"
    assert got.shape == arg.shape and got.dtype == arg.dtype, \
        f"{what}: {got.dtype}{got.shape}, argument {arg.dtype}{arg.shape}"
    np.testing.assert_allclose(got.get(), want, rtol=1e-6 if arg.dtype == np.float32 else 1e-12,
                               atol=1e-14, err_msg=what)


def test_the_table_takes_the_number_seed_where_it_says():
    """The functions marked True really run grad's gradient-only path (seed 1.0), so these
    tests reach each reduction's rule with a number."""
    for name, (fn, _, seeded) in FUNCTIONS.items():
        compiled = derivative(fn, parameters(fn), gradient=True)
        assert compiled.gradient_only == seeded, name
        if seeded:
            assert "1.0" in compiled.source, name


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_grad_on_numpy_matches_the_oracle(name):
    fn, make_args, _ = FUNCTIONS[name]
    args, wrt = make_args(), _wrt(fn)
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    check_grad(fn, args, grads, argnums=wrt)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_grad_on_duck_arrays(name, dtype):
    fn, make_args, _ = FUNCTIONS[name]
    args, wrt = tuple(a.astype(dtype) for a in make_args()), _wrt(fn)
    want = srcdiff.grad(fn, wrt=wrt)(*args)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    got = srcdiff.grad(fn, wrt=wrt)(*duck_args)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    got_again = srcdiff.grad(fn, wrt=wrt)(*duck_args)  # the cached call takes the same path
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for g, g2, w, i in zip(got, got_again, want, wrt):
        _check_duck(g, w, duck_args[i], f"{name}: gradient of argument {i}")
        _check_duck(g2, w, duck_args[i], f"{name}: second call, argument {i}")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_value_and_grad_on_duck_arrays(name):
    fn, make_args, _ = FUNCTIONS[name]
    args, wrt = make_args(), _wrt(fn)
    want_value, want = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    value, got = srcdiff.value_and_grad(fn, wrt=wrt)(*duck_args)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(value) is DuckArray and value.shape == ()
    np.testing.assert_allclose(value.get(), want_value, rtol=1e-12)
    for g, w, i in zip(got, want, wrt):
        _check_duck(g, w, duck_args[i], f"{name}: gradient of argument {i}")


@pytest.mark.parametrize("cotangent", ["duck 0-d", "python float"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_vjp_on_duck_arrays(name, cotangent):
    fn, make_args, _ = FUNCTIONS[name]
    args = make_args()
    _, pullback = srcdiff.vjp(fn, *args)
    want = pullback(0.5)
    check_vjp(fn, args, want, cotangent=0.5)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    out, pullback = srcdiff.vjp(fn, *duck_args)
    assert type(out) is DuckArray and out.shape == ()
    got = pullback(wrap(np.array(0.5)) if cotangent == "duck 0-d" else 0.5)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for i, (g, w) in enumerate(zip(got, want)):
        _check_duck(g, w, duck_args[i], f"{name}: vjp of argument {i}")


TIES = {  # the extremum shared: the gradient is split among the ties, on every device alike
    "np.max": (max_of, np.array([[1.0, 3.0, 3.0], [0.5, 3.0, -1.0]])),
    "np.min": (min_of, np.array([[1.0, -2.0, 3.0], [-2.0, 0.5, -2.0]])),
    "x.max()": (max_method, np.array([2.0, 2.0, 1.0, 2.0])),
    "np.amin": (amin_of, np.array([4.0, 4.0])),
}


@pytest.mark.parametrize("name", sorted(TIES))
def test_ties_split_the_number_seed_on_duck_arrays(name):
    fn, x = TIES[name]
    want = srcdiff.grad(fn)(x)
    extremum = np.max(x) if "max" in name else np.min(x)
    np.testing.assert_allclose(want, (x == extremum) / np.count_nonzero(x == extremum))
    HOST_SYNCS.reset()
    got = srcdiff.grad(fn)(wrap(x))
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    _check_duck(got, want, wrap(x), name)


# ----- a primal mask left alone by a folded seed -----
# The rule of a * m gives g * m; with the seed 1.0 folded in, 1.0 * m. Its 1.0 * was dropped,
# so the adjoint was the boolean mask itself: dx + m of two such is a logical or (a gradient
# of 1 where it is 2), and -m raises. The 1.0 * stays where nothing else makes it a float.


def _twice_masked(a):
    m = a > 0.1
    return np.sum(a * m) + np.sum(a * m)


def _masked_and_negated(a):
    t = (a + a) * (a + a) - a
    return np.sum(t / (1.5 + a ** 2) * (t / (1.5 + a ** 2) > 0.1))


def _number_masked(x):
    flag = x > 0.0
    return x * flag + x * flag - 0.5 * x * flag


def _int_masked(a):
    k = (a > 0.1).astype(int)
    return np.sum(a * k) + np.mean(k * a)


@pytest.mark.parametrize("fn, arg", [
    (_twice_masked, np.array([0.5, -0.2, 0.9])),
    (_twice_masked, np.array([[0.5], [0.9]])),
    (_masked_and_negated, np.array([[0.5], [0.9]])),
    (_masked_and_negated, np.array([0.4, 0.7, 1.3])),
    (_number_masked, 0.7),
    (_number_masked, np.float64(-0.3)),
    (_int_masked, np.array([0.5, -0.2, 0.9, 0.3])),
])
def test_a_mask_times_the_seed_stays_a_float_adjoint(fn, arg):
    """Against finite differences (the points are away from the masks' edges), through
    grad (the folded seed), value_and_grad and vjp."""
    grads = srcdiff.grad(fn)(arg)
    check_grad(fn, (arg,), (grads,))
    value, again = srcdiff.value_and_grad(fn)(arg)
    np.testing.assert_allclose(again, grads, rtol=1e-12)
    out, pullback = srcdiff.vjp(fn, arg)
    np.testing.assert_allclose(pullback(1.0)[0], grads, rtol=1e-12)


def _reduced_number(a):
    return np.sum(np.tanh(np.sum(np.sum(a, axis=0), axis=-1, keepdims=True))) + np.max(a, axis=-1)


@pytest.mark.parametrize("a", [0.5, np.float64(-0.3), np.array(0.7)])
def test_a_number_reduced_along_an_axis(a):
    """numpy reduces a number (a 0-d array) along axis 0 or -1; the rules spread it back
    (they divided by its zero dimensions: ZeroDivisionError, found by
    tests/fuzz/broadcasting.py)."""
    check_grad(_reduced_number, (a,), (srcdiff.grad(_reduced_number)(a),))
