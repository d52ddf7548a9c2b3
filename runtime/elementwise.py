"""Adjoint rules of the numpy ufuncs ``rules.py`` leaves out, with their ``math`` twins.

Conventions as in ``rules.py``: ``g`` first, ``ans`` the primal output, one adjoint per
operand (``None``: zero), ``broadcasting=True`` for binaries, guarded divisions
(``guard(v, g)`` is ``v`` with 1 where ``g`` is exactly 0, so a masked branch stays 0).

Every numpy 2 ufunc, and what srcdiff does with it:

============================================  ===========================================
rules.py                                      add subtract multiply divide power remainder
                                              maximum minimum negative absolute exp expm1
                                              log log1p sqrt square sin cos tan sinh cosh
                                              tanh arcsin arccos arctan matmul
here                                          arcsinh arccosh arctanh exp2 log2 log10 cbrt
                                              reciprocal fabs deg2rad radians rad2deg
                                              degrees positive conjugate hypot arctan2
                                              logaddexp logaddexp2 fmax fmin fmod copysign
                                              float_power heaviside ldexp nextafter vecdot
                                              matvec vecmat; and np.sinc, np.nan_to_num
constants (nondiff.py)                        floor ceil trunc rint sign floor_divide,
                                              comparisons, logical_*, isnan isinf isfinite
left out: integers in, integers out           bitwise_and bitwise_or bitwise_xor
                                              bitwise_count invert left_shift right_shift
                                              gcd lcm
left out: constant, for nondiff.py's table    signbit isnat spacing
left out: two outputs (tuple results come     divmod modf frexp
with issue 14's second item)
============================================  ===========================================

The gufuncs ``vecdot``, ``matvec`` and ``vecmat`` take their default axes only (an
``axes=``/``axis=`` is refused when srcdiff compiles the call) and real values.
"""

from __future__ import annotations

import math

import numpy as np

from .helpers import guard, unbroadcast
from .helpers import float_like as _like
from .options import OneOf
from .registry import adjoint

# ----- unary -----   (g: adjoint of the output, ans: the primal output)


@adjoint(np.arcsinh, math.asinh)
def arcsinh_adjoint(g, x):
    return g / np.sqrt(x * x + 1.0)


@adjoint(np.arccosh, math.acosh)
def arccosh_adjoint(g, x):
    return g / np.sqrt(guard(x * x - 1.0, g))


@adjoint(np.arctanh, math.atanh)
def arctanh_adjoint(g, x):
    return g / guard(1.0 - x * x, g)


@adjoint(np.exp2, *([math.exp2] if hasattr(math, "exp2") else []))  # math.exp2: Python 3.11
def exp2_adjoint(g, ans, x):
    return g * ans * 0.6931471805599453  # ln 2


@adjoint(np.log2, math.log2)
def log2_adjoint(g, x):
    return g / (guard(x, g) * 0.6931471805599453)  # ln 2


@adjoint(np.log10, math.log10)
def log10_adjoint(g, x):
    return g / (guard(x, g) * 2.302585092994046)  # ln 10


@adjoint(np.cbrt, *([math.cbrt] if hasattr(math, "cbrt") else []))  # math.cbrt: Python 3.11
def cbrt_adjoint(g, ans, x):
    return g / (3.0 * guard(ans * ans, g))


@adjoint(np.reciprocal)
def reciprocal_adjoint(g, x):
    return -g / guard(x * x, g)


@adjoint(np.fabs)
def fabs_adjoint(g, x):
    return g * np.sign(x)


@adjoint(np.deg2rad, np.radians, math.radians)
def deg2rad_adjoint(g, x):
    return g * 0.017453292519943295  # pi / 180


@adjoint(np.rad2deg, np.degrees, math.degrees)
def rad2deg_adjoint(g, x):
    return g * 57.29577951308232  # 180 / pi


@adjoint(np.positive)
def positive_adjoint(g, x):
    return g


@adjoint(np.conjugate)
def conjugate_adjoint(g, x):
    return np.conjugate(g)


# sinc(x) = sin(pi x) / (pi x): its slope is (cos(pi x) - sinc(x)) / x, and 0 at x = 0
# (an even function); x + (x == 0) divides by 1 there, in x's own dtype.
@adjoint(np.sinc)
def sinc_adjoint(g, ans, x):
    slope = (np.cos(3.141592653589793 * x) - ans) / (x + (x == 0))
    return g * slope


# The finite elements pass through; NaN and the infinities are replaced by constants.
# copy=False writes into x, which then has no NaN left to say where the gradient stops.
@adjoint(np.nan_to_num, allowed={"copy": OneOf(True, advice="leave copy= out: copy=False "
                                               "writes into its argument")})
def nan_to_num_adjoint(g, x, copy=True, nan=0.0, posinf=None, neginf=None):
    return g * np.isfinite(x)


# ----- binary -----   (written for equal shapes; the table sums back what broadcast)


# The norm's slope x / |(x1, x2)| is 0 at the origin, as abs's sign is (hypot(x, 0) = |x|).
@adjoint(np.hypot, math.hypot, broadcasting=True)
def hypot_adjoint(g, ans, x1, x2):
    r = ans + (ans == 0)
    return g * x1 / r, g * x2 / r


@adjoint(np.arctan2, math.atan2, broadcasting=True)
def arctan2_adjoint(g, x1, x2):
    r2 = guard(x1 * x1 + x2 * x2, g)
    return g * x2 / r2, -g * x1 / r2


@adjoint(np.logaddexp, broadcasting=True)
def logaddexp_adjoint(g, ans, x1, x2):
    return g * np.exp(x1 - ans), g * np.exp(x2 - ans)


@adjoint(np.logaddexp2, broadcasting=True)
def logaddexp2_adjoint(g, ans, x1, x2):
    return g * np.exp2(x1 - ans), g * np.exp2(x2 - ans)


# fmax/fmin return the operand that is not NaN: s > 0 where x1 is taken, s < 0 where x2 is,
# 0 at a tie (the gradient split evenly, as for maximum).
@adjoint(np.fmax, broadcasting=True)
def fmax_adjoint(g, x1, x2):
    s = np.where(x1 != x1, -1.0, np.where(x2 != x2, 1.0, x1 - x2))
    return g * np.heaviside(s, 0.5), g * np.heaviside(-s, 0.5)


@adjoint(np.fmin, broadcasting=True)
def fmin_adjoint(g, x1, x2):
    s = np.where(x1 != x1, -1.0, np.where(x2 != x2, 1.0, x2 - x1))
    return g * np.heaviside(s, 0.5), g * np.heaviside(-s, 0.5)


# fmod(x1, x2) = x1 - trunc(x1 / x2) * x2 (remainder floors instead)
@adjoint(np.fmod, math.fmod, broadcasting=True)
def fmod_adjoint(g, x1, x2):
    return g, -g * np.trunc(x1 / x2)


# copysign(x1, x2) = |x1| * (the sign of x2): x2 moves it only by jumps
@adjoint(np.copysign, math.copysign, broadcasting=True)
def copysign_adjoint(g, ans, x1, x2):
    return g * np.sign(x1) * np.sign(ans), None


# x1 ** x2 computed in float64 (float32 operands get float32 adjoints back); x2's adjoint
# as power's: log(x1) where x1 > 0, 0 elsewhere.
@adjoint(np.float_power, math.pow, broadcasting=True)
def float_power_adjoint(g, ans, x1, x2):
    d1 = g * x2 * np.float_power(guard(x1, g), x2 - 1)
    d2 = g * ans * np.log(np.where(x1 > 0, x1, np.ones_like(ans)))
    return _like(d1, x1), _like(d2, x2)


# heaviside(x1, x2) is 0 or 1 by the sign of x1, and x2 itself where x1 == 0.
@adjoint(np.heaviside, broadcasting=True)
def heaviside_adjoint(g, x1, x2):
    return None, g * (x1 == 0)


# ldexp(x1, x2) = x1 * 2 ** x2, x2 an integer
@adjoint(np.ldexp, math.ldexp, broadcasting=True)
def ldexp_adjoint(g, x1, x2):
    return np.ldexp(g, x2), None


# nextafter(x1, x2) is x1 moved by one unit in the last place: a slope of 1 in x1
@adjoint(np.nextafter, math.nextafter, broadcasting=True)
def nextafter_adjoint(g, x1, x2):
    return g, None


# ----- gufuncs (numpy 2) -----   (real values, default axes; batch axes broadcast)


@adjoint(np.vecdot)
def vecdot_adjoint(g, x1, x2):
    g = g if isinstance(g, (float, int, np.generic)) else g[..., None]
    return unbroadcast(g * x2, x1), unbroadcast(g * x1, x2)


if hasattr(np, "matvec"):  # numpy 2.2
    @adjoint(np.matvec)
    def matvec_adjoint(g, x1, x2):
        return (unbroadcast(g[..., :, None] * x2[..., None, :], x1),
                unbroadcast(np.vecmat(g, x1), x2))

    @adjoint(np.vecmat)
    def vecmat_adjoint(g, x1, x2):
        return (unbroadcast(np.matvec(x2, g), x1),
                unbroadcast(x1[..., :, None] * g[..., None, :], x2))


__all__ = [name for name in dir() if name.endswith("_adjoint")]
