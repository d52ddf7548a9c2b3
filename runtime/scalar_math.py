"""Adjoint rules of the ``math`` functions that have no numpy ufunc twin, and of ``float()``.

The twins (``math.asinh``, ``math.atan2``, ``math.hypot`` of two numbers, ``math.pow``...)
share their ufunc's rule in ``rules.py`` or ``elementwise.py``. These take and give Python
floats. ``math`` functions left out: ``comb perm factorial gcd lcm isqrt`` (integers),
``ulp isclose`` (constants), ``frexp modf`` (two results), ``math.log(x, base)`` (the rule
of ``math.log`` takes one operand: a base is refused when srcdiff compiles the call).
"""

from __future__ import annotations

import math

import numpy as np

from .registry import adjoint

# ----- special functions -----


@adjoint(math.erf)
def erf_adjoint(g, x):
    return g * 1.1283791670955126 * np.exp(-x * x)  # 2 / sqrt(pi)


@adjoint(math.erfc)
def erfc_adjoint(g, x):
    return g * -1.1283791670955126 * np.exp(-x * x)


@adjoint(math.gamma)
def gamma_adjoint(g, ans, x):
    return g * ans * _digamma(x)


@adjoint(math.lgamma)
def lgamma_adjoint(g, x):
    return g * _digamma(x)


def _digamma(x: float) -> float:
    """psi(x), the slope of lgamma (``math`` has none): reflection below 1/2, the
    recurrence psi(x) = psi(x + 1) - 1/x up to 10, then the asymptotic series (~1e-15)."""
    if x < 0.5:
        return _digamma(1.0 - x) - math.pi / math.tan(math.pi * x)
    shift = 0.0
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))
    return shift + math.log(x) - 0.5 / x - series


# ----- arithmetic -----


# math.remainder(x1, x2) = x1 - n * x2 with n = x1 / x2 rounded half to even
@adjoint(math.remainder)
def ieee_remainder_adjoint(g, ans, x1, x2):
    n = round((x1 - ans) / x2)
    return g, -g * n


# float(x) of a number or a 0-d array (numpy refuses any other array): the adjoint is g
@adjoint(float)
def float_adjoint(g, x):
    return g


# ----- over a sequence -----   (a list or tuple of numbers: one adjoint each, as a tuple)


@adjoint(math.fsum)
def fsum_adjoint(g, seq):
    adjoints = [g for _ in seq]
    return _each(seq, adjoints)


# math.prod's start= is an option (a constant); d prod / d x_i is the product of the others
@adjoint(math.prod)
def math_prod_adjoint(g, iterable, start=1):
    xs = list(iterable)
    return _each(iterable, [g * math.prod(xs[:i] + xs[i + 1:], start=start)
                            for i in range(len(xs))])


# math.dist(p, q) = |p - q|: the unit vector from q to p, 0 where the points coincide
@adjoint(math.dist)
def dist_adjoint(g, ans, p, q):
    scale = g / ans if ans else 0.0 * g
    return (_each(p, [(a - b) * scale for a, b in zip(p, q)]),
            _each(q, [(b - a) * scale for a, b in zip(p, q)]))


def _each(seq, adjoints):
    """The adjoints of the numbers of ``seq``: a tuple for a list or tuple, an array of
    ``seq``'s shape and dtype for an array (``math`` reads numbers on the host)."""
    if isinstance(seq, (list, tuple)):
        return tuple(adjoints)
    return np.array(adjoints, dtype=seq.dtype).reshape(np.shape(seq))


__all__ = [name for name in dir() if name.endswith("_adjoint")]
