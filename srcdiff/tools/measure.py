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

from srcdiff.runtime.tape import Tape

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
    runs: int = 1  # how many times the loop ran (an inner loop: once per outer iteration)


@dataclass(frozen=True)
class Run:
    tapes: dict  # tape name -> TapeMeasure
    forward_kept: int  # bytes allocated by the forward pass and alive when it returns
    backward_peak: int  # the most bytes alive above the arguments while the pullback ran


def run(function, args, names_of: dict, again: tuple = (), has_aux: bool = False) -> Run:
    """Runs ``function(*args) -> (value, pullback)`` and its pullback once; ``names_of``
    maps each tape to the names its entries keep. The tapes ``again``, which the pullback
    itself fills (a checkpointed loop run again), are read from its locals as it returns:
    the last stretch it ran. ``has_aux``: the value is ``(loss, aux)``; the pullback takes
    the adjoint of ``loss``."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out, pullback = function(*args)
        forward_kept = tracemalloc.get_traced_memory()[0] - base
        cells = dict(zip(pullback.__code__.co_freevars, pullback.__closure__ or ()))
        counter = _Counter(names_of, _arguments(args))
        for name in names_of:
            if name in cells:
                counter.tape(name, cells[name].cell_contents)
        tracemalloc.reset_peak()
        local = _locals_at_return(pullback, _seed(out[0] if has_aux else out), set(again))
        backward_peak = tracemalloc.get_traced_memory()[1] - base
        for name, tape in local.items():
            counter.tape(name, tape)
        tapes = counter.measures()
    finally:
        if started:
            tracemalloc.stop()
    return Run(tapes, forward_kept, backward_peak)


def _locals_at_return(pullback, seed, names: set) -> dict:
    """Calls ``pullback(seed)``; the values of its locals ``names`` when it returns."""
    found = {}
    code = pullback.__code__

    def profile(frame, event, arg):
        if event == "return" and frame.f_code is code:
            found.update((n, v) for n, v in frame.f_locals.items() if n in names)

    previous = sys.getprofile()
    sys.setprofile(profile if names else previous)
    try:
        pullback(seed)
    finally:
        sys.setprofile(previous)
    return found


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


class _Counter:
    """Walks the tapes, an inner loop's tapes inside the entries of the outer loop's too,
    counting each buffer once (``seen``) and never the arguments' (``given``). A loop's total
    includes what the tapes of its inner loops keep."""

    def __init__(self, names_of: dict, given: set):
        self.names_of, self.given, self.seen = names_of, given, set()
        self.runs: dict[str, list] = {}  # tape -> [entries, sizes, total, shown, runs]

    def tape(self, name: str, entries) -> int:
        """Measures one tape (one run of its loop); returns the bytes it adds."""
        names = self.names_of.get(name, ())
        run = self.runs.setdefault(name, [0, [], 0, (), 0])
        run[4] += 1
        steady = min(1, len(entries) - 1)  # the entry shown: the second, where there is one
        added_in_all = 0
        for i, entry in enumerate(entries):
            values = entry if len(names) != 1 else (entry,)
            added, kept = 0, []
            for item_name, value in zip(names, values):
                item = self.kept(name, item_name, value)
                kept.append(item)
                added += item.nbytes
            run[0] += 1
            run[1].append(added)
            if i == steady and not run[3]:
                run[3] = tuple(kept)
            added_in_all += added
        return added_in_all

    def kept(self, tape: str, name: str, value) -> Kept:
        """What ``value``, kept by ``tape`` under ``name``, adds (counted into its total)."""
        run = self.runs[tape]
        if isinstance(value, Tape):  # an inner loop's tape, one per iteration of this loop
            inner = self.tape(name, value) + sys.getsizeof(value)
            run[2] += inner
            return Kept(name, (len(value),), "entries", inner, "an inner loop's tape")
        item = _kept(name, value, self.given, self.seen)
        root = _root(value)
        if isinstance(value, np.ndarray):
            if id(root) not in self.seen and id(root) not in self.given:
                self.seen.add(id(root))
                run[2] += root.nbytes  # (a temporary that a view keeps alive: once)
        else:
            run[2] += item.nbytes
        return item

    def measures(self) -> dict:
        return {tape: TapeMeasure(tape, entries, shown, (min(sizes, default=0),
                                                         max(sizes, default=0)), total, runs)
                for tape, (entries, sizes, total, shown, runs) in self.runs.items()}


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
