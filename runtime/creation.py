"""Adjoint rules of the array constructors whose values depend on numbers they are given.

``np.full(3, b)`` is ``b`` three times, ``np.linspace(0.0, a, 4)`` moves with ``a``,
``np.arange(s, s + 3.0)`` is ``s + 0, s + 1, s + 2`` and ``np.array([a, b])`` stacks its
elements: none of them is a constant for differentiation. Shapes, counts and dtypes are
options (no adjoint). The constructors made from shapes alone (``np.zeros``,
``np.ones_like``, ``np.eye``) stay in ``nondiff.py``. Conventions as in ``rules.py``.
"""

from __future__ import annotations

import numpy as np

from .backend import array_module
from .helpers import unbroadcast
from .options import FLOAT_DTYPE
from .registry import adjoint

__all__ = ["full_adjoint", "full_like_adjoint", "linspace_adjoint", "arange_adjoint",
           "array_adjoint", "asarray_adjoint"]

# ----- filled with a value -----


@adjoint(np.full, allowed={"dtype": FLOAT_DTYPE})
def full_adjoint(g, fill_value, shape=None, dtype=None, order="C"):
    return unbroadcast(g, fill_value)


@adjoint(np.full_like, allowed={"dtype": FLOAT_DTYPE})
def full_like_adjoint(g, a, fill_value, dtype=None, order="K", subok=True, shape=None):
    return None, unbroadcast(g, fill_value)


# ----- evenly spaced -----   (sample i of n: start + t_i * (stop - start))


@adjoint(np.linspace, allowed={"dtype": FLOAT_DTYPE})
def linspace_adjoint(g, start, stop, num=50, endpoint=True, dtype=None, axis=0):
    t = _positions(g, num, axis, num - 1 if endpoint else num)
    return (unbroadcast(np.sum(g * (1.0 - t), axis=axis), start),
            unbroadcast(np.sum(g * t, axis=axis), stop))


@adjoint(np.arange)
def arange_adjoint(g, start_or_stop, stop, step):
    if stop is None:  # np.arange(n): 0, 1, ..., n - 1 whatever n is
        return np.zeros_like(start_or_stop), None, None
    # stop sets only how many samples there are: its adjoint is zero
    d_step = None if isinstance(step, int) else np.sum(g * _positions(g, np.shape(g)[0], 0, 1))
    return np.sum(g), np.zeros_like(stop), d_step


def _positions(g, num, axis, div):
    """``i / div`` for the samples ``i`` along ``axis`` of ``g`` (0 where ``div`` is 0), in
    ``g``'s array module and float dtype, shaped to broadcast against ``g``."""
    xp = array_module(g)
    dtype = g.dtype if getattr(g, "dtype", np.float64).kind == "f" else np.float64
    t = xp.arange(num, dtype=dtype)
    if div > 0:
        t = t / div
    else:
        t = t * 0.0
    shape = [1] * np.ndim(g)
    shape[axis] = num
    return xp.reshape(t, shape)


# ----- from elements -----   (a list or tuple of numbers or arrays: one adjoint each)


@adjoint(np.array, allowed={"dtype": FLOAT_DTYPE})
def array_adjoint(g, object, dtype=None, copy=True, order="K", subok=False, ndmin=0, ndmax=0):
    return _elements(g, object)


@adjoint(np.asarray, allowed={"dtype": FLOAT_DTYPE})
def asarray_adjoint(g, a, dtype=None, order=None, copy=None):
    return _elements(g, a)


def _elements(g, obj):
    """``g`` in the shape of ``obj`` (``ndmin=`` adds leading axes), then one adjoint per
    element where ``obj`` is a list or tuple (a tuple, as for ``np.stack``)."""
    g = np.reshape(g, _shape(obj))
    if not isinstance(obj, (list, tuple)):
        return g
    return tuple(_elements(g[i], element) for i, element in enumerate(obj))


def _shape(obj) -> tuple:
    """``np.shape(obj)``, without making one array of a list of arrays (on a device)."""
    if isinstance(obj, (list, tuple)):
        return (len(obj), *(_shape(obj[0]) if obj else ()))
    return np.shape(obj)
