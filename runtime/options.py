"""The values of a rule's options that it differentiates: ``allowed=`` tables of ``@adjoint``.

``@adjoint(np.linalg.qr, sequence=True, allowed={"mode": OneOf("reduced", advice=...)})``:
the compiler refuses ``np.linalg.qr(a, mode="r")`` at the user's line (``refusal`` says
why), and the rule refuses a value it is given only when it runs (a variable) before it
computes anything.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["OneOf", "FLOAT_DTYPE", "float_dtype", "refusal"]


@dataclass(frozen=True)
class OneOf:
    """The values of one option that a rule differentiates: constants (compared with
    ``==``), types (``numbers.Real``: any number) and predicates (``float_dtype``), and what
    to write instead of any other value (``advice``)."""

    values: tuple
    advice: str = ""

    def __init__(self, *values, advice: str = ""):
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "advice", advice)

    def admits(self, value) -> bool:
        """Whether the rule differentiates the option given ``value``."""
        for v in self.values:
            if isinstance(v, type):
                if isinstance(value, v) and not isinstance(value, bool):
                    return True
            elif callable(v):
                if v(value):
                    return True
            elif _equal(value, v):
                return True
        return False

    def describe(self) -> str:
        """The values, as a message lists them: ``'reduced'``, a number, a float dtype."""
        return ", ".join(repr(v) if not callable(v) else
                         (v.__doc__ or v.__name__).strip().rstrip(".") for v in self.values)


def _equal(value, v) -> bool:
    """``value == v`` for a value of ``v``'s kind: ``'C'`` is not ``b'C'``, 1 is not True."""
    both_numbers = isinstance(value, numbers.Number) and isinstance(v, numbers.Number) and \
        isinstance(value, bool) == isinstance(v, bool)
    if not (both_numbers or isinstance(value, type(v))):
        return False
    try:
        return bool(value == v)
    except (TypeError, ValueError):  # an array
        return False


def float_dtype(value) -> bool:
    """a float dtype"""
    try:
        return np.dtype(value).kind == "f"
    except TypeError:
        return False


# dtype= of a function whose result takes the values (np.full, np.array, np.hstack)
FLOAT_DTYPE = OneOf(None, float_dtype, advice="an integer dtype rounds the values, which then "
                    "have no gradient: keep a float dtype, or wrap the value in "
                    "srcdiff.stop_gradient(...)")


def refusal(rule, option: str, value) -> str:
    """Why ``rule`` cannot differentiate ``option=value`` ('' where it can)."""
    one_of = dict(rule.allowed).get(option)
    if one_of is None or one_of.admits(value):
        return ""
    name = _qualified(rule.primitive)
    advice = f"; {one_of.advice}" if one_of.advice else ""
    return (f"{name} with {option}={value!r} (srcdiff differentiates {option}= "
            f"{one_of.describe()}{advice})")


def _qualified(primitive) -> str:
    module = getattr(primitive, "__module__", None) or ""
    module = "np" if module == "numpy" or module.startswith("numpy.") and \
        getattr(np, primitive.__name__, None) is primitive else module
    module = "np.linalg" if module.startswith("numpy.linalg") else module
    return f"{module}.{getattr(primitive, '__name__', repr(primitive))}".lstrip(".")
