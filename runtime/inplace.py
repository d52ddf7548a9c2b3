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

A float array times a bool mask of its shape, np.where's adjoint and a ReLU (np.where's or a
mask product) go through ``runtime/_kernels.c`` where it is built: one pass each, with the
values of the numpy spellings (numpy casts a mask in buffered chunks; its spellings of the
others take two passes, or a mask made for the purpose).
"""

from __future__ import annotations

import numpy as np

from .helpers import where_positive
from .rules import larger_adjoint, where_adjoint_x, where_adjoint_y

try:  # one-pass mask selections in C (runtime/_kernels.c); None: built without a C compiler,
    from . import _kernels as kernels  # numpy's spellings give the same values
except ImportError:
    kernels = None

__all__ = ["spare", "iadd", "isub", "imul", "itruediv", "ipow", "where_adjoint_x_into",
           "where_adjoint_y_into", "larger_adjoint_into", "where_positive_into", "positive_part_into",
           "positive_product_into"]

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
    return _multiply_into(a, b) if _writable_into(a, (b,)) else a * b


def _multiply_into(a, b):
    """``a *= b``; for a bool mask ``b`` of ``a``'s shape one pass in C (``None``: not such a
    mask, or no compiled kernels)."""
    done = None if kernels is None else kernels.mask_multiply(a, b)
    return np.multiply(a, b, out=a) if done is None else done


def itruediv(a, b):
    """``a / b``, in ``a``'s memory where that gives the same array."""
    return np.true_divide(a, b, out=a) if _writable_into(a, (b,)) else a / b


def ipow(a, b):
    """``a ** b``, in ``a``'s memory where that gives the same array."""
    return np.power(a, b, out=a) if _writable_into(a, (b,)) else a ** b


# ----- selections: the mask products of np.where's and np.maximum's adjoints, np.where's ReLU
# (each the rule or helper of the same name without _into, in its first array's memory where
# that gives the same array; tests/test_inplace.py compares them)


def where_adjoint_x_into(g, condition):
    """``rt.where_adjoint_x(g, condition)``, in ``g``'s memory where that gives the same array."""
    return _masked_into(g, condition, True)


def where_adjoint_y_into(g, condition):
    """``rt.where_adjoint_y(g, condition)``, in ``g``'s memory where that gives the same array."""
    return _masked_into(g, condition, False)


def _masked_into(g, condition, taken: bool):
    if type(condition) is not np.ndarray or condition.dtype != bool or \
            not _writable_into(g, (condition,)):
        return where_adjoint_x(g, condition) if taken else where_adjoint_y(g, condition)
    done = None if kernels is None else kernels.select(g, condition, taken)
    if done is not None:
        return done
    # a mask product only where g is finite (0 * inf is NaN, np.where's branch not taken is 0)
    if np.isfinite(g).all():
        return np.multiply(g, condition if taken else ~condition, out=g)
    return where_adjoint_x(g, condition) if taken else where_adjoint_y(g, condition)


def larger_adjoint_into(g, chosen, ties):
    """``rt.larger_adjoint(g, chosen, ties)``, in ``g``'s memory where that gives the same array."""
    if not _writable_into(g, (chosen, ties)):
        return larger_adjoint(g, chosen, ties)
    if type(ties) is np.ndarray and not ties.any():
        return _multiply_into(g, chosen)
    half = (0.5 * g) * ties  # before g's memory takes the product
    return np.add(np.multiply(g, chosen, out=g), half, out=g)


def where_positive_into(condition, x, y):
    """``rt.where_positive(condition, x, y)``, in ``x``'s memory where that gives the same array."""
    if isinstance(y, (int, float)) and type(x) is np.ndarray and x.ndim and \
            _writable_into(x, (condition,)):
        return _positive_part(x, y)
    return where_positive(condition, x, y)


# ----- a ReLU whose mask nothing else reads (the ``relus`` stage): no mask made


def positive_part_into(x, y):
    """``rt.where_positive(x > 0, x, y)`` (``y`` a literal 0 or 0.0), in ``x``'s memory where
    that gives the same array."""
    if isinstance(y, (int, float)) and type(x) is np.ndarray and x.ndim and _writable_into(x, ()):
        return _positive_part(x, y)
    return where_positive(x > 0, x, y)


def _positive_part(x, y):
    if kernels is not None and kernels.positive_part(x) is not None:
        return x
    np.fmax(y, x, out=x)
    x += 0.0  # -0.0 + 0.0 is +0.0, as np.where gives
    return x


def positive_product_into(x):
    """``x * (x > 0)``, in ``x``'s memory where that gives the same array."""
    if _writable_into(x, ()):
        done = None if kernels is None else kernels.positive_product(x)
        return np.multiply(x, x > 0, out=x) if done is None else done
    return x * (x > 0)
