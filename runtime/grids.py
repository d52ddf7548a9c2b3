"""Adjoint rules of the functions that spread arrays over a common grid: ``np.meshgrid`` and
``np.broadcast_arrays``.

Both return a tuple of arrays (``sequence=True``), each of which reads one operand only: its
adjoint is the matching entry of ``g`` summed back over the axes it was spread along (an
entry of ``g`` that is None, a result nobody read, gives zeros).
"""

from __future__ import annotations

import numpy as np

from .helpers import unbroadcast
from .options import OneOf
from .registry import adjoint


# meshgrid(x1, x2, …): result i holds x_i (flattened) along axis i, except that the default
# indexing="xy" swaps the first two axes (x1 runs along axis 1, x2 along axis 0); sparse=True
# leaves length-1 axes instead of repeating, which the same sum reads.
@adjoint(np.meshgrid, sequence=True,
         allowed={"indexing": OneOf("xy", "ij", advice="write indexing='xy' or 'ij'")})
def meshgrid_adjoint(g, *xi, copy=True, sparse=False, indexing="xy"):
    grads = tuple(_spread_back(d, x, _grid_axis(i, len(xi), indexing))
                  for i, (x, d) in enumerate(zip(xi, g)))
    return grads if len(grads) != 1 else grads[0]


def _grid_axis(i: int, n: int, indexing: str) -> int:
    """The axis of meshgrid's results along which its operand ``i`` of ``n`` runs."""
    return 1 - i if indexing == "xy" and n >= 2 and i < 2 else i


def _spread_back(d, x, axis: int):
    """The adjoint of ``x`` from ``d``, the adjoint of ``x`` flattened and laid along ``axis``
    of a grid: ``d`` summed over every other axis, in ``x``'s shape (zeros where ``d`` is None)."""
    if d is None:
        return np.zeros_like(x, dtype=np.result_type(x, 1.0))
    others = tuple(a for a in range(np.ndim(d)) if a != axis)
    total = np.sum(d, axis=others) if others else d
    return np.reshape(total, np.shape(x)) if np.ndim(x) != 1 else total


# broadcast_arrays(a, b, …): result i is operand i broadcast to the common shape
@adjoint(np.broadcast_arrays, sequence=True)
def broadcast_arrays_adjoint(g, *args, subok=False):
    grads = tuple(np.zeros_like(x, dtype=np.result_type(x, 1.0)) if d is None
                  else unbroadcast(d, x) for x, d in zip(args, g))
    return grads if len(grads) != 1 else grads[0]


__all__ = [name for name in dir() if name.endswith("_adjoint")]
