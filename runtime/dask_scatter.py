"""A lazy scatter-add for Dask arrays: the adjoint of indexing, written back without computing.

Dask has no ``ufunc.at`` (``np.add.at``), and it computes to answer what it lacks; its
``__setitem__`` does assign lazily (it rewrites the array's graph in place), for the keys
it supports. So ``scatter_add(a, key, values)``, ``np.add.at``'s meaning, is:

- slices and integers: ``a[key] = a[key] + values``;
- one 1-d numpy integer array among slices (``x[idx]``, ``x[:, idx]``): the same, in rounds
  of distinct indices, so that repeated indices add up (numpy's index arrays are known);
- one 0-d Dask integer among full slices (``x[np.argmax(x)]``, ``x[k, :]``): its position
  is not known until computed, so ``a + where(arange(n) == k, values, 0)`` along its axis;
- anything else (a mask, several or n-d index arrays, ``np.newaxis``): refused at the
  user's line, never computed.

>>> import dask.array as da                           # doctest: +SKIP
>>> a = da.zeros(3, chunks=2); scatter_add(a, (np.array([0, 0, 2]),), 1.0)
>>> a.compute()                                       # doctest: +SKIP
array([2., 0., 1.])
"""

from __future__ import annotations

import linecache
import re
import sys

import numpy as np

__all__ = ["scatter_add"]


def scatter_add(a, key, values) -> None:
    """``np.add.at(a, key, values)`` for a Dask array ``a``, lazily (see the module)."""
    parts = tuple(np.asarray(k) if isinstance(k, list) else k
                  for k in (key if isinstance(key, tuple) else (key,)))
    arrays = [i for i, k in enumerate(parts)
              if not isinstance(k, (slice, int, np.integer, type(Ellipsis)))]
    if not arrays:
        a[key] = a[key] + values
        return
    at, index = arrays[0], parts[arrays[0]]
    alone = len(arrays) == 1 and all(isinstance(k, slice) for k in parts[:at])
    if alone and type(index) is np.ndarray and index.ndim == 1 and index.dtype.kind in "iu":
        _add_in_rounds(a, parts, at, index, values)
    elif alone and _is_dask_integer(index) and all(k == slice(None) for k in parts if k is not index):
        _add_where(a, at, index, values)
    else:
        raise _refusal(
            f"srcdiff cannot differentiate this indexing of a Dask array lazily (an index "
            f"{_describe(parts)}): its adjoint writes into the positions the index picks, and "
            "on Dask arrays srcdiff does that for slices, integers, one 1-d numpy integer "
            "array (x[idx], x[:, idx]) or one Dask integer (x[k]); select with "
            "np.where(mask, x, 0) instead of x[mask], or make the index a numpy array")


def _add_in_rounds(a, parts, at, index, values) -> None:
    """Round r adds the values of each index's r-th occurrence: distinct indices each time."""
    index = index % a.shape[at]  # negative indices as positions, so repeats are seen
    rank = np.zeros(len(index), dtype=np.intp)  # how many earlier entries name each index
    seen: dict[int, int] = {}
    for j, i in enumerate(index.tolist()):
        rank[j] = seen.get(i, 0)
        seen[i] = rank[j] + 1
    values = np.broadcast_to(values, _indexed_shape(a.shape, parts, at, len(index)))
    for r in range(int(rank.max(initial=-1)) + 1):
        picked = np.flatnonzero(rank == r)
        round_key = parts[:at] + (index[picked],) + parts[at + 1:]
        a[round_key] = a[round_key] + values[(slice(None),) * at + (picked,)]


def _add_where(a, at, k, values) -> None:
    """``a[..., k, ...] += values`` for a lazy position ``k`` along axis ``at``."""
    import dask.array as da

    n = a.shape[at]
    hit = np.reshape(da.arange(n, chunks=a.chunks[at]) == k % n,
                     tuple(n if i == at else 1 for i in range(a.ndim)))
    values = np.broadcast_to(values, a.shape[:at] + a.shape[at + 1:])
    a[...] = a + np.where(hit, np.expand_dims(values, at), 0)


def _is_dask_integer(k) -> bool:
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(k, dask_array.Array) and k.ndim == 0 and \
        k.dtype.kind in "iu"


def _indexed_shape(shape, parts, at, n) -> tuple:
    """The shape of ``x[parts]`` for slices and one index array of length ``n`` at ``at``."""
    sizes = [len(range(*k.indices(s))) if isinstance(k, slice) else n
             for k, s in zip(parts, shape)]
    return tuple(sizes) + tuple(shape[len(parts):])


def _describe(parts) -> str:
    return "[" + ", ".join(":" if isinstance(k, slice) else type(k).__name__ for k in parts) + "]"


def _refusal(message: str):
    """A ``SrcdiffError`` at the user's line whose adjoint is running: the ``# adjoint of:``
    comment above the current line of the generated code names it."""
    from srcdiff.errors import NotDifferentiableError, SrcdiffError

    frame = sys._getframe(1)
    while frame is not None and not frame.f_code.co_filename.startswith("<srcdiff "):
        frame = frame.f_back
    if frame is None:
        return SrcdiffError(message)
    for text in reversed(linecache.getlines(frame.f_code.co_filename)[:frame.f_lineno]):
        found = re.match(r"\s*# adjoint of: (.*)  \(line (\d+)\)$", text.rstrip())
        if found:
            filename = frame.f_globals.get("__file__", frame.f_globals.get("__name__", "?"))
            return NotDifferentiableError(message, filename, int(found[2]), 0, found[1])
    return SrcdiffError(message)
