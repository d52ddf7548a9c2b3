"""Run a derivative once and read what its tapes hold and how much memory it takes.

The forward pass returns the pullback, a closure over the tapes (``_tape1`` …): after it
ran, each tape is a list with one entry per iteration. Array data is counted once per
buffer (a view, ``x = xs[_i]``, costs nothing more than what it views; a view of a
temporary keeps that temporary alive, and it is counted, once); the arguments' own
buffers are not counted. Peak memory comes from ``tracemalloc`` (numpy reports its
allocations to it).
"""

from __future__ import annotations

import sys
import tracemalloc
from dataclasses import dataclass

import numpy as np

__all__ = ["Kept", "TapeMeasure", "Run", "run"]


@dataclass(frozen=True)
class Kept:
    """One value a tape entry keeps: its name, shape and dtype (None for a number), the
    bytes it adds (a number's object size) and, where it adds none, why ("view of an
    argument", "view of a temporary", "an argument", "kept already": an array an earlier
    entry keeps, such as the state the previous iteration made)."""

    name: str
    shape: tuple | None
    dtype: str
    nbytes: int
    note: str = ""


@dataclass(frozen=True)
class TapeMeasure:
    tape: str
    iterations: int
    shown: tuple[Kept, ...]  # what the second entry keeps (the first for one iteration)
    per_iteration: tuple[int, int]  # least and most bytes of new arrays and numbers an entry adds
    total: int  # bytes of every buffer the tape keeps alive, each once


@dataclass(frozen=True)
class Run:
    tapes: dict  # tape name -> TapeMeasure
    forward_kept: int  # bytes allocated by the forward pass and alive when it returns
    backward_peak: int  # the most bytes alive above the arguments while the pullback ran


def run(function, args, names_of: dict) -> Run:
    """Runs ``function(*args) -> (value, pullback)`` and its pullback once; ``names_of``
    maps each tape to the names its entries keep."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out, pullback = function(*args)
        forward_kept = tracemalloc.get_traced_memory()[0] - base
        cells = dict(zip(pullback.__code__.co_freevars, pullback.__closure__ or ()))
        tapes = {name: _measure(name, cells[name].cell_contents, names_of.get(name, ()), args)
                 for name in names_of if name in cells}
        tracemalloc.reset_peak()
        pullback(_seed(out))
        backward_peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    return Run(tapes, forward_kept, backward_peak)


def _seed(out):
    if isinstance(out, tuple):
        return tuple(_seed(o) for o in out)
    if isinstance(out, dict):
        return {k: _seed(v) for k, v in out.items()}
    return np.ones_like(out) if hasattr(out, "shape") else 1.0


def _root(a):
    while isinstance(getattr(a, "base", None), np.ndarray):
        a = a.base
    return a


def _arguments(args) -> set[int]:
    """The ids of the arguments' array buffers (inside containers too)."""
    import optree

    from srcdiff.runtime import trees

    return {id(_root(leaf)) for leaf in optree.tree_leaves(args, namespace=trees.NAMESPACE)
            if isinstance(leaf, np.ndarray)}


def _measure(tape: str, entries, names, args) -> TapeMeasure:
    given = _arguments(args)
    seen: set[int] = set()  # buffers counted
    total, sizes, shown = 0, [], ()
    steady = min(1, len(entries) - 1)  # the entry shown: the second, where there is one
    for i, entry in enumerate(entries):
        values = entry if len(names) != 1 else (entry,)
        added, kept = 0, []
        for name, value in zip(names, values):
            item = _kept(name, value, given, seen)
            kept.append(item)
            added += item.nbytes
            root = _root(value)
            if isinstance(value, np.ndarray) and id(root) not in seen and id(root) not in given:
                seen.add(id(root))
                total += root.nbytes  # a temporary a view keeps alive is counted here, once
            elif not isinstance(value, np.ndarray):
                total += item.nbytes
        sizes.append(added)
        if i == steady:
            shown = tuple(kept)
    return TapeMeasure(tape, len(entries), shown, (min(sizes, default=0), max(sizes, default=0)),
                       total)


def _kept(name: str, value, given: set, seen: set) -> Kept:
    """What one value adds: its bytes where it is a new array of its own, else why not."""
    if not isinstance(value, np.ndarray):
        return Kept(name, None, type(value).__name__, sys.getsizeof(value))
    shape, dtype = value.shape, str(value.dtype)
    if value.base is not None:
        return Kept(name, shape, dtype, 0, "view of an argument" if id(_root(value)) in given
                    else "view of a temporary")
    if id(value) in given:
        return Kept(name, shape, dtype, 0, "an argument")
    if id(value) in seen:
        return Kept(name, shape, dtype, 0, "kept already")
    return Kept(name, shape, dtype, value.nbytes)
