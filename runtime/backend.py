"""Array-module dispatch: numpy or CuPy (or a registered array library), chosen by the arrays.

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
lookup.

>>> array_module(np.ones(3)) is np
True
>>> array_module(2.0) is np
True
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["array_module", "register_array_module", "scatter_add", "numpy_twin"]

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
        return cupy.get_array_module(*xs)
    return np


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
    else:
        xp.scatter_add(a, key, values)


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
