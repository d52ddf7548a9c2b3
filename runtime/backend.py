"""Array-module dispatch: numpy, CuPy or Dask (or a registered array library), chosen by the arrays.

Generated code and rules never create arrays with plain ``numpy.zeros``/``numpy.asarray``;
they use numpy functions that dispatch on their arguments (ufuncs, ``np.zeros_like``,
``np.sum``, ... through ``__array_ufunc__``/``__array_function__``) or the module returned
by :func:`array_module`, so a CuPy input never falls back to host memory.

This is CuPy's ``get_array_module`` idiom, not array-api-compat: numpy's own dispatch
protocols already send ``np.tanh(x)`` and ``np.sum(x)`` on a CuPy array to CuPy, so user
code written with ``np.`` runs unchanged and the rules stay plain numpy source that the
compiler can inline. Only the few things numpy cannot dispatch (``eye``, scatter-add) go
through the module.

CuPy is looked up in ``sys.modules``, never imported: if nobody imported CuPy, no CuPy
array can exist, so ``import srcdiff`` never needs CuPy and numpy users pay one dict
lookup. Dask arrays (``dask.array``, looked up the same way) dispatch ``np.tanh``, ``np.sum``
... to Dask too, lazily; what Dask lacks has a Dask path here (scatter-add, reshape in
Fortran order), so that no rule makes Dask compute a chunk.

>>> array_module(np.ones(3)) is np
True
>>> array_module(2.0) is np
True
"""

from __future__ import annotations

import sys
from itertools import accumulate

import numpy as np

__all__ = ["array_module", "register_array_module", "scatter_add", "numpy_twin", "reshape", "size",
           "split", "is_dask"]

# Other array libraries, by array type: tests register a duck array that refuses host
# conversion; a third-party library with numpy's dispatch protocols can register itself.
_MODULES: dict[type, object] = {}


def register_array_module(array_type: type, module) -> None:
    """Make :func:`array_module` return ``module`` for instances of ``array_type``.

    ``module`` is numpy-like (``module.eye``, ``module.zeros_like``, ...) and provides
    ``scatter_add(a, key, values)`` (``numpy.add.at`` semantics, in place). Pass
    ``module=None`` to remove a registration.
    """
    if module is None:
        _MODULES.pop(array_type, None)
    else:
        _MODULES[array_type] = module
    _TWINS.clear()


def array_module(*xs):
    """The array library that owns ``xs``: CuPy if one of them is a CuPy array, a registered
    library for its arrays, else numpy (also for Python numbers and numpy scalars)."""
    if _MODULES:
        for x in xs:
            module = _MODULES.get(type(x))
            if module is not None:
                return module
            for array_type, module in _MODULES.items():
                if isinstance(x, array_type):
                    return module
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        module = cupy.get_array_module(*xs)
        if module is not np:
            return module
    dask_array = sys.modules.get("dask.array")
    if dask_array is not None and any(isinstance(x, dask_array.Array) for x in xs):
        return dask_array
    return np


def is_dask(x) -> bool:
    """Whether ``x`` is a Dask array (without importing Dask)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(x, dask_array.Array)


def scatter_add(a, key, values) -> None:
    """``a[key] += values`` in place, where repeated indices in ``key`` accumulate
    (``numpy.add.at``), done by the library that owns ``a``.

    numpy's ``np.add.at`` does not dispatch to CuPy (CuPy's ``__array_ufunc__`` handles
    only plain calls), so CuPy gets ``cupyx.scatter_add``.
    """
    xp = array_module(a)
    if xp is np:
        np.add.at(a, key, values)
    elif getattr(xp, "__name__", None) == "cupy":
        import cupyx

        cupyx.scatter_add(a, key, values)
    elif getattr(xp, "__name__", None) == "dask.array":
        from .dask_scatter import scatter_add as dask_scatter_add

        dask_scatter_add(a, key, values)
    else:
        xp.scatter_add(a, key, values)


def size(x) -> int:
    """``np.size(x)``, read off the array (``np.size`` is not Dask's: Dask computes its
    argument to answer it).

    >>> size(np.ones((2, 3))), size(2.0)
    (6, 1)
    """
    return x.size if hasattr(x, "shape") else np.size(x)


def split(x, sizes, axis=0) -> list:
    """``x`` cut along ``axis`` into pieces of ``sizes``, by basic slicing (``np.split``,
    which Dask lacks: it computes its argument).

    >>> split(np.arange(5), [2, 3])
    [array([0, 1]), array([2, 3, 4])]
    """
    before = (slice(None),) * (axis % np.ndim(x))
    return [x[before + (slice(stop - n, stop),)] for n, stop in zip(sizes, accumulate(sizes))]


def reshape(x, shape, order="C"):
    """``np.reshape(x, shape, order=order)`` in every array library: Dask reshapes in C order
    only (it refuses ``order=``), and order 'F' is C order on the reversed axes.

    >>> reshape(np.arange(6), (2, 3), order="F")
    array([[0, 2, 4],
           [1, 3, 5]])
    """
    if order == "F":
        return np.transpose(np.reshape(np.transpose(x), tuple(shape)[::-1]))
    return np.reshape(x, shape)


# ----- the same function under another library's name -----

_TWINS: dict[int, dict] = {}


def numpy_twin(obj):
    """The numpy function that ``obj`` (``cupy.tanh``, a registered module's ``sum``) stands
    for, found by name in that library's namespace; ``None`` for anything else.

    Lets user code written with ``cupy.tanh`` resolve to the rule of ``np.tanh``.
    """
    for module in _foreign_modules():
        table = _TWINS.get(id(module))
        if table is None:
            table = _TWINS[id(module)] = _twin_table(module)
        try:
            twin = table.get(obj)
        except TypeError:  # unhashable
            return None
        if twin is not None:
            return twin
    return None


def _foreign_modules():
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        yield cupy
    yield from list(_MODULES.values())


def _twin_table(module) -> dict:
    table = {}
    for name in dir(np):
        if name.startswith("_"):
            continue
        ours = getattr(np, name)
        if not callable(ours) or isinstance(ours, type):
            continue
        try:
            theirs = getattr(module, name)
        except Exception:  # noqa: BLE001 - a missing or failing attribute has no twin
            continue
        if theirs is ours or not callable(theirs):
            continue
        try:
            table[theirs] = ours
        except TypeError:  # unhashable
            pass
    return table
