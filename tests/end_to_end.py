"""The checks of the end-to-end function tables (tests/test_more_functions.py,
test_shaping_functions.py, test_linalg_programs.py): a function through grad, value_and_grad
and vjp against finite differences, float32 in / float32 out, and on the duck array (no host
sync). A table file holds its functions and one-line tests that call these.

``wrt`` is the arguments differentiated, every one by default."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .duckarray import HOST_SYNCS, DuckArray, wrap

F = "float"  # a Python float argument


def draw(shapes, seed=0, dom=None):
    """One argument per shape, from a fixed seed: ``F`` a Python float, a shape a float64
    array; standard normal, or uniform in ``dom`` where given."""
    rng = np.random.default_rng(seed)
    return tuple(_draw(s, rng, dom) for s in shapes)


def _draw(shape, rng, dom):
    if shape == F:
        return float(rng.uniform(*dom)) if dom else float(rng.standard_normal())
    return rng.uniform(*dom, size=shape) if dom else rng.standard_normal(shape)


def shape_cases(table):
    """``(name, shapes)`` parameters, one per tuple of argument shapes of each
    ``(name, [shapes, ...])`` of ``table``, with ids such as ``ptp-(2,3,4)``."""
    return [pytest.param(name, shapes, id=f"{name}-{'-'.join(map(str, shapes))}".replace(" ", ""))
            for name, all_shapes in table for shapes in all_shapes]


def _wrt(args, wrt):
    return tuple(range(len(args))) if wrt is None else wrt


def check_grad_by_finite_differences(fn, args, wrt=None):
    """grad's gradients: one per argument in ``wrt``, a float for a Python float and the
    argument's shape for an array, with the oracle's values."""
    wrt = _wrt(args, wrt)
    grads = srcdiff.grad(fn, wrt=wrt)(*args)
    for g, i in zip(grads, wrt):
        a = args[i]
        assert isinstance(g, float) if isinstance(a, float) else np.shape(g) == np.shape(a)
    check_grad(fn, args, grads, argnums=wrt)


def check_value_and_grad(fn, args, wrt=None):
    """value_and_grad's value is the function's, its gradients the oracle's."""
    wrt = _wrt(args, wrt)
    value, grads = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    check_grad(fn, args, grads, argnums=wrt)


def check_vjp_of_a_number(fn, args):
    """vjp of a function with a number output: its value is the function's, its pullback of
    1.0 one gradient per argument, the oracle's."""
    out, pullback = srcdiff.vjp(fn, *args)
    assert out == pytest.approx(fn(*args))
    grads = pullback(1.0)
    check_grad(fn, args, grads if isinstance(grads, tuple) else (grads,))


def check_float32_gradients(fn, args, wrt=None, rtol=2e-3, atol=2e-3):
    """The arrays of ``args`` as float32 get float32 gradients, with float64's values."""
    wrt = _wrt(args, wrt)
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)
    grads64 = srcdiff.grad(fn, wrt=wrt)(*args)
    for g32, g64, i in zip(srcdiff.grad(fn, wrt=wrt)(*args32), grads64, wrt):
        if isinstance(args32[i], np.ndarray):
            assert g32.dtype == np.float32, f"a {g32.dtype} gradient for a float32 argument"
        np.testing.assert_allclose(g32, g64, rtol=rtol, atol=atol)


def check_gradients_on_duck_arrays(fn, args, wrt=None, rtol=1e-12, atol=1e-14):
    """grad of the arrays of ``args`` made DuckArrays makes no host sync and gives DuckArrays
    of their shapes and dtypes, with numpy's values."""
    wrt = _wrt(args, wrt)
    want = srcdiff.grad(fn, wrt=wrt)(*args)
    duck_args = tuple(wrap(a) for a in args)
    HOST_SYNCS.reset()
    got = srcdiff.grad(fn, wrt=wrt)(*duck_args)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for g, w, i in zip(got, want, wrt):
        a = duck_args[i]
        if type(a) is DuckArray:
            assert type(g) is DuckArray and g.shape == a.shape and g.dtype == a.dtype
            g = g.get()
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def check_vjp_of_array_output(fn, args, rng, on_duck_arrays=True, rtol=1e-12, atol=1e-14):
    """vjp of a function with an array output: its value is the function's, its pullback of a
    random cotangent (drawn from ``rng``) the oracle's; on DuckArrays (``on_duck_arrays``)
    the pullback of a device cotangent makes no host sync and gives DuckArrays of numpy's
    values."""
    out, pullback = srcdiff.vjp(fn, *args)
    np.testing.assert_allclose(out, fn(*args), rtol=1e-12)
    v = rng.standard_normal(np.shape(out))
    grads = pullback(v)
    check_vjp(fn, args, grads, cotangent=v)
    if not on_duck_arrays:
        return
    _, duck_pullback = srcdiff.vjp(fn, *(wrap(a) for a in args))
    HOST_SYNCS.reset()
    for got, want in zip(duck_pullback(wrap(v)), grads):
        assert type(got) is DuckArray
        np.testing.assert_allclose(got.get(), want, rtol=rtol, atol=atol)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
