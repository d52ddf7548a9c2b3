"""The tape: what a loop's forward pass keeps for its pullback, one entry per iteration.

The forward pass pushes, at the end of every iteration, the values that the adjoint
of the loop body reads (decided by the compiler from the generated adjoint code);
the pullback walks the entries in reverse. A tape is made fresh by every forward
call, so a pullback may run any number of times and threads never share one.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .helpers import PAGE

__all__ = ["Tape", "Terms", "each_step", "carried", "checkpoint_every", "check_recomputed"]


class Tape(list):
    """A list with ``push``: ``tape.push((t, h_2))`` in the loop, ``reversed(tape)`` after.

    >>> tape = Tape()
    >>> tape.push((0, 1.5))
    >>> list(reversed(tape))
    [(0, 1.5)]
    """

    __slots__ = ("stacked",)  # each_step's stacked columns, by position (``carried`` reads them)
    push = list.append


class Terms(list):
    """A tape loop's terms of matmul sums (the batch stage's ``dW_terms``), ``n`` of them
    expected (the tape's length): where the first term's ``g`` (the term itself where it is
    ``g`` alone) is a float numpy array of a page (4 KiB) or more, each ``g`` of its shape
    and dtype is copied into one array of ``n`` such rows, filled last row first as the
    pullback walks the steps, and the term keeps its row. Each step's ``g`` is then free for
    the next step to reuse, and the sums read the rows joined already (``joined``) instead
    of holding ``n`` arrays and joining them into one more: an LSTM's ten adjoints of (16,
    256), 640 -> 320 KiB of fresh pages a call. The same values; terms that do not fit
    (another shape or dtype, more than ``n``) are kept as they come, and ``joined`` is None.

    >>> terms = Terms(2)
    >>> terms.append((np.ones((4, 256)), "v1"))
    >>> terms.append((np.zeros((4, 256)), "v0"))
    >>> terms.joined().shape, float(terms.joined()[1].sum()), terms[0][1]
    ((2, 4, 256), 1024.0, 'v1')
    """

    __slots__ = ("rows", "left", "pending")

    def __init__(self, n):
        super().__init__()
        self.rows, self.left = None, n  # rows: the joined array, made at the first term
        self.pending = None  # the row next_row gave, until a term's g is that row

    def next_row(self, shape, dtype):
        """The row the next term's ``g`` goes to, for code that makes that ``g`` to write it
        there (``rt.slices_joined(..., into=terms)``): then ``append`` copies nothing. None
        where the terms are not rows of that shape and dtype, or no row is left. Until a
        term's ``g`` is this row the next call gives it again: the caller appends what it
        wrote before it asks for another (the ``tiles`` stage writes ``into=`` only there)."""
        rows = self.rows if self.rows is not None else self._start(shape, dtype)
        if rows is None or self.left <= 0 or rows.shape[1:] != shape or rows.dtype != dtype:
            return None
        self.pending = rows[self.left - 1]
        return self.pending

    def append(self, term):
        g = term[0] if type(term) is tuple else term
        rows = self.rows
        if rows is not None and self.left > 0 and g is self.pending:  # written there already
            self.left -= 1
            self.pending = None
            return list.append(self, term)
        if rows is None:
            rows = self._start(g.shape, g.dtype) if type(g) is np.ndarray else None
            if rows is None:
                self.__class__ = _Kept  # a list's own append from here on (~0.4 µs a term less)
                return list.append(self, term)
        if self.left > 0 and type(g) is np.ndarray and g.shape == rows.shape[1:] and \
                g.dtype == rows.dtype:
            self.left -= 1
            row = rows[self.left]
            row[...] = g
            term = (row, *term[1:]) if type(term) is tuple else row
        else:
            self.__class__ = _Kept
        list.append(self, term)

    def _start(self, shape, dtype):
        """The rows, made for the first term, where it is a page or more of floats."""
        if self or self.left <= 0 or dtype.kind != "f" or math.prod(shape) * dtype.itemsize < PAGE:
            return None
        self.rows = np.empty((self.left, *shape), dtype)
        return self.rows

    def joined(self):
        """Every term's ``g`` as the rows of one array, in the loop's order (the terms',
        reversed), where each is a row of it; else None."""
        return self.rows if self.left == 0 else None


class _Kept(list):
    """What a ``Terms`` becomes once its terms do not fit its rows: a list, terms as they
    come (``joined``, ``next_row``: None)."""

    __slots__ = ("rows", "left", "pending")

    def joined(self):
        return None

    def next_row(self, shape, dtype):
        return None


# ----- a backward loop's factors of taped values, every step at once (transforms/steps.py) -----

_ARRAYS = {np.ndarray}
# elements a step (4 KiB of float64): beyond, the stack's copy and the fresh pages its results
# take cost more than the calls a step saves (an LSTM's steps of (16, 64): ~0.35 ms of a
# 5 ms gradient where page faults are dear, ~0.1 ms where they are not)
STEP_SIZE = 1 << 9


def each_step(fn, tape, positions):
    """``fn`` (elementwise) of each tape entry's values at ``positions`` (None: the entry
    itself), last entry first, as ``reversed(tape)`` gives them: where at every step each
    value is a float numpy array of one shape (at least one axis, at most ``STEP_SIZE``
    elements), ``fn`` of the values stacked (the same operations, in one call each), whose
    rows are the steps'; otherwise ``fn`` called once a step.

    >>> tape = Tape()
    >>> for h in (np.array([0.5, 1.0]), np.array([2.0, 0.0])):
    ...     tape.push((None, h))
    >>> [row.tolist() for row in each_step(lambda h: 1.0 - h * h, tape, (1,))]
    [[-3.0, 1.0], [0.75, 0.0]]
    """
    entries = tape[::-1]
    if not entries:
        return ()
    columns = [entries if p is None else [entry[p] for entry in entries] for p in positions]
    first = columns[0][0]
    if type(first) is np.ndarray and first.ndim and first.size <= STEP_SIZE and \
            first.dtype.kind == "f":
        # np.array checks in C what a loop over the values would (~0.25 µs a value): values
        # of one shape give one more axis; ragged ones, or ones numpy cannot take, do not
        try:
            stacked = [np.array(column) for column in columns]
        except (ValueError, TypeError):
            return map(fn, *columns)
        axes = (len(entries), *first.shape)
        if all(s.shape == axes and s.dtype.kind == "f" for s in stacked) and \
                all(set(map(type, column)) == _ARRAYS for column in columns):
            if type(tape) is Tape:  # (copies of the values: the pullback's to read again)
                tape.stacked = dict(zip(positions, stacked))
            return fn(*stacked)  # (a subclass's operators may differ: np.matrix's *)
    return map(fn, *columns)


def carried(tape, position, first):
    """A loop-carried state's values at the start of each step, in the loop's order: ``first``
    (its value before the loop), then the value each step but the last left, which the tape
    keeps at ``position`` (None: the entry itself). The ``rows`` stage writes it for a sum
    term that is such a state (an RNN's ``h`` before the step, for ``dW``): where
    ``each_step`` stacked that column already (last entry first), one copy of it; otherwise
    the values stacked. A ``rules._Walked`` array for the sums; a list where the values are
    not float numpy arrays of one shape.

    >>> tape = Tape()
    >>> for h in (np.array([0.5, 1.0]), np.array([2.0, 0.0])):
    ...     tape.push((None, h))
    >>> carried(tape, 1, np.zeros(2)).tolist()
    [[0.0, 0.0], [0.5, 1.0]]
    """
    stacked = getattr(tape, "stacked", None) if type(tape) is Tape else None
    column = None if stacked is None else stacked.get(position)
    if column is not None and type(first) is np.ndarray and \
            column.shape[1:] == first.shape and column.dtype == first.dtype:
        out = np.empty_like(column)
        out[0] = first
        out[1:] = column[:0:-1]  # entries 0 .. n-2: the stack's last rows, reversed
        return out
    values = [first, *(entry if position is None else entry[position] for entry in tape[:-1])]
    if type(first) is np.ndarray and all(type(v) is np.ndarray for v in values):
        try:
            out = np.array(values)
        except ValueError:  # ragged
            return values
        if out.dtype.kind == "f" and out.shape[1:] == first.shape:
            return out
    return values


# ----- checkpointed loops (``# srcdiff: checkpoint``): a state kept every K iterations -----

def checkpoint_every(n: int) -> int:
    """K = ⌈√n⌉ (at least 1): n/K checkpoints and a tape of K entries, about 2√n in all.

    >>> checkpoint_every(10000), checkpoint_every(10), checkpoint_every(0)
    (100, 4, 1)
    """
    return math.isqrt(n - 1) + 1 if n > 1 else 1


def check_recomputed(again, kept, filename: str, line: int) -> None:
    """Refuses iterations run again in the pullback that did not end in the state the forward
    pass kept there (a random draw, or a value changed since): their tape, and so the
    gradient, would be wrong. Exact equality: the same operations on the same values.

    >>> check_recomputed((1.0, [2.0]), (1.0, [2.0]), "f.py", 3)
    """
    if not _same(again, kept):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(
            f"srcdiff ran the checkpointed loop of {filename}, line {line} again in the backward "
            "pass and it computed other values than in the forward pass (does it draw random "
            "numbers, or read something that changed after the forward pass?); the gradient "
            "would be wrong. Pass such values in as arguments, or drop the "
            "'# srcdiff: checkpoint' directive.")


def _same(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        from .backend import array_module

        xp = array_module(a, b)
        numeric = xp.issubdtype(a.dtype, xp.inexact)
        return a.shape == b.shape and bool(xp.array_equal(a, b, equal_nan=numeric))
    try:
        return bool(a == b) or a != a and b != b  # NaN == NaN here
    except (TypeError, ValueError):  # an object holding arrays: its attributes
        return hasattr(a, "__dict__") and _same(vars(a), vars(b))
