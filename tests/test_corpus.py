"""End to end: every corpus function through grad, value_and_grad and vjp, against the oracle."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .corpus import CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_finite_differences(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    check_grad(fn, args, grads, argnums=wrt)


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_grad(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    value, grads = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    check_grad(fn, args, grads, argnums=wrt)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_gives_one_gradient_per_argument(name):
    fn, make_args, _ = CASES[name]
    args = make_args()
    out, pullback = srcdiff.vjp(fn, *args)
    np.testing.assert_allclose(out, fn(*args), rtol=1e-12)
    grads = pullback(2.5)
    assert len(grads) == len(args)
    floats = [i for i, a in enumerate(args) if isinstance(a, float) or np.asarray(a).dtype.kind == "f"]
    assert [i for i, g in enumerate(grads) if g is not None] == floats
    check_vjp(fn, args, [grads[i] for i in floats], cotangent=2.5, argnums=floats)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_in_float32_out(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                   for a in args)
    grads64 = srcdiff.grad(fn, wrt=wrt)(*args)
    grads32 = srcdiff.grad(fn, wrt=wrt)(*args32)
    for g32, g64, i in zip(grads32, grads64, wrt):
        if isinstance(args32[i], np.ndarray):
            assert g32.dtype == np.float32, f"argument {i}: {g32.dtype}"
        np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", sorted(CASES))
def test_inputs_are_not_modified(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    copies = [np.array(a, copy=True) for a in args]
    srcdiff.grad(fn, wrt=wrt)(*args)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)
