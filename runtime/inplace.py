"""Elementwise arithmetic written into the memory of an operand nobody reads again.

The ``inplace`` pass (``srcdiff/transforms/inplace.py``) rewrites ``r = b * m``, where the
generated code made ``b`` itself and never reads it after this line, into
``r = rt.imul(b, m)``; a ufunc call ``np.tanh(a)`` into ``np.tanh(a, out=rt.spare(a))``.
The pass proves that nothing else holds ``b``; these functions check, when the line runs,
that writing the result into ``b`` gives exactly the array ``b * m`` would: ``b`` is a
floating-point numpy array that owns its memory, and the other operand is a Python number
or has ``b``'s dtype (or bool) and a shape that broadcasts into ``b``'s (numpy's result then
has ``b``'s dtype and shape, NEP 50). Anything else (numbers, CuPy, Dask, a float32 array
times a float64 one) computes a new value, exactly as the operator does.

On arrays of a million elements this saves the fresh allocation (its page faults cost more
than the arithmetic); srcdiff compiles this variant only for calls with an argument of
``LARGE`` elements or more, where the checks (~0.1 µs) are nothing next to the array work.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spare", "iadd", "isub", "imul", "itruediv", "ipow"]

LARGE = 1 << 14  # elements: srcdiff.grad called with an array this large runs the in-place variant

# Adjoint rules whose result is always an array they made (or a number): never an argument,
# never memory an argument shares. A temporary bound to one is as fresh as arithmetic's
# (tests/test_inplace.py checks each on arrays of several shapes).
FRESH_RESULTS = ("matmul_adjoint_x1", "matmul_adjoint_x2", "where_adjoint_x", "where_adjoint_y",
                 "larger_adjoint")


def _writable_into(a, others) -> bool:
    if type(a) is not np.ndarray or a.base is not None or a.dtype.kind != "f" or \
            not a.flags.writeable:
        return False
    for b in others:
        kind = type(b)
        if kind is float or kind is int or kind is bool:
            continue  # a Python number keeps a's dtype (NEP 50)
        if kind is not np.ndarray and not isinstance(b, np.generic):
            return False
        if b.dtype != a.dtype and b.dtype.kind != "b":
            return False
        if b.shape != a.shape and (b.ndim > a.ndim or any(
                n != 1 and n != m for n, m in zip(b.shape[::-1], a.shape[::-1]))):
            return False
    return True


def spare(a, *others):
    """``a``, where the result of an elementwise ufunc of ``a`` and ``others`` can be written
    into it (``out=``); else None, and the ufunc makes a new array."""
    return a if _writable_into(a, others) else None


def iadd(a, b):
    """``a + b``, in ``a``'s memory where that gives the same array."""
    return np.add(a, b, out=a) if _writable_into(a, (b,)) else a + b


def isub(a, b):
    """``a - b``, in ``a``'s memory where that gives the same array."""
    return np.subtract(a, b, out=a) if _writable_into(a, (b,)) else a - b


def imul(a, b):
    """``a * b``, in ``a``'s memory where that gives the same array."""
    return np.multiply(a, b, out=a) if _writable_into(a, (b,)) else a * b


def itruediv(a, b):
    """``a / b``, in ``a``'s memory where that gives the same array."""
    return np.true_divide(a, b, out=a) if _writable_into(a, (b,)) else a / b


def ipow(a, b):
    """``a ** b``, in ``a``'s memory where that gives the same array."""
    return np.power(a, b, out=a) if _writable_into(a, (b,)) else a ** b
