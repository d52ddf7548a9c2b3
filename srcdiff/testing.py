"""The finite-difference oracle: the one check every gradient in srcdiff is held to.

>>> import numpy as np
>>> check_vjp(np.sin, (np.array([0.1, 0.2]),), grads=(np.cos([0.1, 0.2]),), cotangent=1.0)
"""

from __future__ import annotations

import numpy as np

__all__ = ["numeric_vjp", "check_vjp", "check_grad", "numeric_jvp", "check_jvp"]


def _as_float64(x):
    return np.asarray(x, dtype=np.float64)


def numeric_vjp(f, args, argnum, cotangent=None, eps=1e-6):
    """Central-difference gradient of ``vdot(cotangent, f(*args))`` with respect to ``args[argnum]``.

    Everything is computed in float64; ``cotangent=None`` means the output is a scalar.
    """
    args = list(args)
    x0 = args[argnum]
    was_scalar = np.ndim(x0) == 0 and not isinstance(x0, np.ndarray)
    x = _as_float64(x0).copy()
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)

    def value(xv):
        args[argnum] = float(xv) if was_scalar else xv
        out = _as_float64(f(*args))
        weight = 1.0 if cotangent is None else _as_float64(cotangent)
        return float(np.sum(weight * out))

    for i in range(flat_x.size):
        orig = flat_x[i]
        step = eps * max(1.0, abs(orig))
        flat_x[i] = orig + step
        plus = value(x.copy())
        flat_x[i] = orig - step
        minus = value(x.copy())
        flat_x[i] = orig
        flat_grad[i] = (plus - minus) / (2 * step)
    return grad


def check_vjp(f, args, grads, cotangent=None, argnums=None, rtol=1e-5, atol=1e-6):
    """Assert that ``grads`` (one per entry of ``argnums``) match the oracle's gradients of ``f``.

    ``argnums`` defaults to every argument. A ``None`` in ``grads`` must correspond to a zero
    gradient. Shapes must match the arguments exactly.
    """
    argnums = tuple(range(len(args))) if argnums is None else tuple(argnums)
    assert len(grads) == len(argnums), f"expected {len(argnums)} gradients, got {len(grads)}"
    float64_args = [_as_float64(a) if _is_float(a) else a for a in args]
    for got, i in zip(grads, argnums):
        expected = numeric_vjp(f, float64_args, i, cotangent)
        if got is None:
            np.testing.assert_allclose(expected, 0.0, rtol=rtol, atol=atol,
                                       err_msg=f"gradient {i} is None but the oracle disagrees")
            continue
        assert np.shape(got) == np.shape(args[i]), (
            f"gradient {i} has shape {np.shape(got)}, argument has {np.shape(args[i])}")
        np.testing.assert_allclose(_as_float64(got), expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of argument {i} disagrees with finite differences")


def check_grad(f, args, grads, argnums=None, rtol=1e-5, atol=1e-6):
    """:func:`check_vjp` for a scalar-valued ``f``."""
    check_vjp(f, args, grads, None, argnums, rtol, atol)


def numeric_jvp(f, args, tangents, eps=1e-6):
    """Central-difference directional derivative of ``f`` at ``args`` along ``tangents`` (one
    per argument, ``None`` for an argument held fixed), in float64, in ``f``'s output shape."""
    args = [_as_float64(a) if _is_float(a) else a for a in args]
    scale = max([1.0] + [float(np.max(np.abs(a))) for a, t in zip(args, tangents)
                         if t is not None and np.size(a)])
    step = eps * scale

    def moved(sign):
        return [a + sign * step * _as_float64(t) if t is not None else a
                for a, t in zip(args, tangents)]

    plus, minus = _as_float64(f(*moved(1.0))), _as_float64(f(*moved(-1.0)))
    return (plus - minus) / (2 * step)


def check_jvp(f, args, tangents, tangent_out, rtol=1e-5, atol=1e-6):
    """Assert that ``tangent_out`` (forward mode's result) matches the oracle's directional
    derivative of ``f`` along ``tangents``, in value and shape."""
    expected = numeric_jvp(f, args, tangents)
    assert np.shape(tangent_out) == np.shape(expected), (
        f"the tangent has shape {np.shape(tangent_out)}, the output has {np.shape(expected)}")
    np.testing.assert_allclose(_as_float64(tangent_out), expected, rtol=rtol, atol=atol,
                               err_msg="the tangent disagrees with finite differences")


def _is_float(a):
    return isinstance(a, float) or (not isinstance(a, type) and hasattr(a, "dtype") and
                                    np.issubdtype(a.dtype, np.floating))
