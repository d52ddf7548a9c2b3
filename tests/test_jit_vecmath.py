"""exp, tanh, sin and cos written for LLVM to vectorise (runtime/numba_vecmath.py) against
numpy's, and the one-loop kernel that calls them at any size, with libm's functions again
where a sine's argument is far."""

import numpy as np
import pytest

pytest.importorskip("numba")

import srcdiff  # noqa: E402
from srcdiff.testing import check_grad  # noqa: E402

from numba import njit  # noqa: E402

from srcdiff.runtime import numba_vecmath as vm  # noqa: E402


@njit(error_model="numpy")
def _all_four(x, e, t, s, c):
    for i in range(x.shape[0]):
        e[i] = vm.vexp(x[i])
        t[i] = vm.vtanh(x[i])
        s[i] = vm.vsin(x[i])
        c[i] = vm.vcos(x[i])


SPECIAL = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-300, 1e-8, -1e-8, 0.5, -0.5, 0.3465, 0.3466,
                    19.06, -19.06, 40.0, 41.0, -745.2, -745.0, -708.5, 709.7, 709.8, 710.0,
                    np.pi / 4, np.pi / 2, np.pi, 1e5 * np.pi, 999999.0, np.inf, -np.inf, np.nan])


def _inputs():
    rng = np.random.default_rng(0)
    return [rng.uniform(-2, 2, 20000), rng.uniform(-40, 40, 20000), rng.uniform(-750, 750, 20000),
            rng.uniform(-1e6, 1e6, 20000) * 0.999999, rng.normal(size=20000) * 1e-6, SPECIAL]


@pytest.mark.parametrize("x", _inputs(), ids=["unit", "tens", "exp range", "sine range", "tiny",
                                              "special"])
def test_the_functions_are_numpys(x):
    out = [np.empty_like(x) for _ in range(4)]
    _all_four(x, *out)
    with np.errstate(all="ignore"):
        for got, fn in zip(out, (np.exp, np.tanh, np.sin, np.cos)):
            near = slice(None) if fn in (np.exp, np.tanh) else np.abs(x) < vm.TRIG_LIMIT
            got, want = got[near], fn(x)[near]  # far sines: the loop's rerun with libm's
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            finite = np.isfinite(want)
            np.testing.assert_array_equal(got[~finite & ~np.isnan(want)],
                                          want[~finite & ~np.isnan(want)])  # the infinities
            scale = np.abs(want[finite]) if fn in (np.exp, np.tanh) else 1.0  # sin, cos: of 1
            err = np.abs(got[finite] - want[finite])
            assert np.all(err <= 1e-15 * np.maximum(scale, np.finfo(float).tiny)), fn.__name__
            zeros = finite & (want == 0)
            np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


def test_sine_of_a_far_argument_is_flagged():
    assert not vm.trig_far(999999.0) and vm.trig_far(1e6) and vm.trig_far(np.inf)
    assert vm.trig_far(np.nan) and not vm.trig_far(-3.0)


def chain(x):
    a = np.sin(x)
    c = np.exp(-(a * x))
    d = np.tanh(c + x)
    return np.sum((d * d - a) / (1.0 + c) + np.cos(x))


def test_a_large_elementwise_kernel_runs_as_one_vectorised_loop():
    """Above the 2048 elements where libm's per-element calls lose to numpy's loops, a loop of
    only these four still runs as one loop; where a sine's argument is far (or not finite),
    the loop runs again with libm's: the numpy path's results either way."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-2.0, 2.0, 5000)
    numpy_path = srcdiff.grad(chain)
    compiled = srcdiff.jit(srcdiff.grad(chain))
    got, want = compiled(x), numpy_path(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.max(np.abs(want)))
    loop = compiled.loop_source
    assert "rt_jit.vsin(x_i)" in loop and "rt_jit.vtanh(" in loop and "if _far_sines:" in loop
    assert "_j = i + _half" in loop and "rt_jit.vsin(x_i_2)" in loop  # two chains an iteration
    for n in (1, 2, 3, 4, 5, 4999):  # an odd count's last element on its own
        np.testing.assert_allclose(compiled(x[:n]), numpy_path(x[:n]), rtol=0,
                                   atol=1e-13 * np.max(np.abs(want)))
    kind = next(iter(compiled._kinds.values()))
    assert srcdiff.compiled.function._pick(kind[4], kind, (x,)) is kind[2]  # the loop
    check_grad(chain, (x[:30],), (compiled(x[:30]),))
    far = x.copy()
    far[[3, 10]] = 3e7, np.inf
    with np.errstate(invalid="ignore"):
        got, want = compiled(far), numpy_path(far)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=1e-13 * np.max(np.abs(want[ok])))


def test_a_loop_with_a_sum_keeps_one_chain():
    """value_and_grad sums the value in the loop: one chain, the additions in order."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-2.0, 2.0, 3001)
    compiled = srcdiff.jit(srcdiff.value_and_grad(chain))
    (value, grad), (want_value, want) = compiled(x), srcdiff.value_and_grad(chain)(x)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(grad, want, rtol=0, atol=1e-13 * np.max(np.abs(want)))
    assert "_half" not in compiled.loop_source and "rt_jit.vexp(" in compiled.loop_source


def named_like_the_loop(x):  # the loop kernel's own names, as variables of the function
    i = 2
    n = 3
    x_i = np.sin(x) * i
    x_flat = np.exp(-(x_i * x)) + n
    a = np.tanh(x_flat)
    a_2 = np.cos(x) * a
    _far_sines = a_2 * a
    return np.sum(_far_sines * _far_sines)


@pytest.mark.parametrize("size", [1, 7, 3001])
def test_variables_named_like_the_loops_own_are_kept_apart(size):
    """A variable i once took the loop's index: every gradient element was written into
    element 2 (srcdiff.jit gave a wrong gradient, silently). The loop's names are fresh."""
    x = np.random.default_rng(4).uniform(-1.0, 1.0, size)
    compiled = srcdiff.jit(srcdiff.grad(named_like_the_loop))
    got, want = compiled(x), srcdiff.grad(named_like_the_loop)(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 * np.max(np.abs(want)))
    assert compiled.loop_source is not None and "for i_1 in range(n_1):" in compiled.loop_source
    check_grad(named_like_the_loop, (x[:5],), (compiled(x[:5]),))


def named_slice(x):
    slice = x[1:3]
    return np.sum(slice * slice)


def test_a_variable_named_slice_is_the_users_in_the_array_kernel():
    """The array kernel spelled a key 1:3 as slice(1, 3): a variable named slice took its
    place and srcdiff.jit refused the function. The keys are rt_jit.slice now."""
    x = np.random.default_rng(5).uniform(-1.0, 1.0, 6)
    compiled = srcdiff.jit(srcdiff.grad(named_slice))
    np.testing.assert_allclose(compiled(x), srcdiff.grad(named_slice)(x), rtol=1e-12, atol=0)
    check_grad(named_slice, (x,), (compiled(x),))
