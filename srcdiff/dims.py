"""A call's array shapes as symbols: what a derivative may be specialised for.

The shapes pass (``transforms/shapes.py``) drops ``rt.unbroadcast(g, x)`` only where it can
prove ``g`` has ``x``'s shape. Without the arguments it knows little: ``X @ w`` has some
shape. Given a *pattern* of the arguments it knows much more. Each numpy array argument
gives its axes as symbols: lengths of 1 stay ``1`` (they broadcast), equal lengths share
one symbol, different lengths get different ones. A Python or numpy number has the shape
``()``. For ``lsq(w, b, X, y)`` called with shapes (3,), a float, (64, 3) and (64,):

    (("n0",), (), ("n1", "n0"), ("n1",))

so ``X @ w`` has the shape ``("n1",)``, that of ``y``: the adjoint of ``X @ w + b - y``
needs no sum. A pattern holds for every call with the same equalities, whatever the
lengths: (5,), a float, (1000, 5), (1000,) is the same pattern, and the same compiled
derivative. Different symbols always stand for different lengths, so a broadcast of two
different symbols is an error the forward pass raises before any adjoint runs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pattern"]

_NUMBERS = (float, int, bool, np.floating, np.integer, np.bool_)


def pattern(args, plain: frozenset) -> tuple | None:
    """The pattern of ``args``: per argument its symbolic shape, ``()`` for a number, None for
    another value of a ``plain`` type (a string, None); None for the whole call where an
    argument is of any other kind (a container, a CuPy or Dask array: those keep the general
    derivative)."""
    symbols: dict[int, str] = {}
    found = []
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            found.append(tuple(1 if n == 1 else symbols.setdefault(n, f"n{len(symbols)}")
                               for n in a.shape))
        elif isinstance(a, _NUMBERS):
            found.append(())
        elif kind in plain:
            found.append(None)
        else:
            return None
    return tuple(found)
