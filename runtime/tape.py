"""The tape: what a loop's forward pass keeps for its pullback, one entry per iteration.

The forward pass pushes, at the end of every iteration, the values that the adjoint
of the loop body reads (decided by the compiler from the generated adjoint code);
the pullback walks the entries in reverse. A tape is made fresh by every forward
call, so a pullback may run any number of times and threads never share one.
"""

from __future__ import annotations

__all__ = ["Tape"]


class Tape(list):
    """A list with ``push``: ``tape.push((t, h_2))`` in the loop, ``reversed(tape)`` after.

    >>> tape = Tape()
    >>> tape.push((0, 1.5))
    >>> list(reversed(tape))
    [(0, 1.5)]
    """

    __slots__ = ()
    push = list.append
