"""Functions and attributes whose results carry no gradient, as data.

Their results are constants for differentiation: shapes, indices, rounding,
comparisons, and arrays made from nothing but shapes. An active value may flow
into them freely. Constructors that take a value (``np.full``, ``np.full_like``,
``np.linspace``, ``np.arange``, ``np.array``) have adjoints instead (``creation.py``);
``tests/runtime/test_nondiff.py`` shows, entry by entry, why each one here is constant.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from .backend import numpy_twin

__all__ = ["NONDIFFERENTIABLE", "NONDIFFERENTIABLE_METHODS", "NONDIFFERENTIABLE_ATTRIBUTES",
           "stop_gradient", "no_grad", "keys", "outer_shape"]


def stop_gradient(x):
    """``x`` itself; inside a differentiated function its result is a constant (``detach()``).

    >>> stop_gradient(2.0)
    2.0
    """
    return x


def keys(d) -> list:
    """The keys of a dict as a list (a loop over ``d.items()`` walks these, reading each
    value by its key); generated code's own, so not in the table users read: the compiler
    knows it is constant (``analysis/calls.py``).

    >>> keys({"w": 1.0, "b": 2.0})
    ['w', 'b']
    """
    return list(d)


def outer_shape(a, b) -> tuple:
    """``a``'s shape, then a 1 per axis of ``b``: ``np.reshape(a, outer_shape(a, b)) - b`` is
    ``np.subtract.outer(a, b)`` (canonical lowers a ufunc's ``outer`` so); generated code's
    own, so not in the table users read: the compiler knows it is constant
    (``analysis/calls.py``).

    >>> outer_shape(np.ones((2, 3)), np.ones(4))
    (2, 3, 1)
    """
    return np.shape(a) + (1,) * np.ndim(b)


class no_grad:
    """``with no_grad():`` — inside a differentiated function, what the block computes is a
    constant for differentiation (srcdiff rewrites the block at compile time); elsewhere it
    does nothing.

    >>> with no_grad():
    ...     pass
    """

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NUMPY = """
    shape ndim size argmax argmin argsort argwhere nonzero flatnonzero searchsorted
    floor ceil round rint trunc fix sign floor_divide
    greater greater_equal less less_equal equal not_equal
    logical_and logical_or logical_not logical_xor isnan isinf isfinite isclose allclose
    array_equal all any count_nonzero
    zeros ones empty zeros_like ones_like empty_like eye identity
    result_type can_cast
""".split()

_BUILTINS = "len range print isinstance int bool round any all".split()

_MATH = "floor ceil trunc isnan isinf isfinite".split()

def _zero_tangent():
    from .tangents import zero_tangent  # forward mode's zeros: constants in second order

    return zero_tangent


class _FunctionTable(frozenset):
    """A frozenset of functions that also holds another array library's namesakes of its
    numpy functions (``cupy.zeros_like`` for ``np.zeros_like``), see ``backend.numpy_twin``."""

    def __contains__(self, obj) -> bool:
        if frozenset.__contains__(self, obj):
            return True
        twin = numpy_twin(obj)
        return twin is not None and frozenset.__contains__(self, twin)


NONDIFFERENTIABLE: frozenset = _FunctionTable(
    [getattr(np, name) for name in _NUMPY]
    + [getattr(builtins, name) for name in _BUILTINS]
    + [getattr(math, name) for name in _MATH]
    + [stop_gradient, _zero_tangent()]
)

# Array methods and attributes that give constants: ``x.argmax()``, ``x.shape``.
NONDIFFERENTIABLE_METHODS: frozenset = frozenset(
    "argmax argmin argsort nonzero round all any".split()
)
NONDIFFERENTIABLE_ATTRIBUTES: frozenset = frozenset("shape ndim size dtype itemsize nbytes".split())
