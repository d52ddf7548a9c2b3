"""exp, tanh, sin and cos for one loop over the elements that LLVM vectorises (``srcdiff.jit``).

numba calls libm once per element for ``math.exp`` or ``np.sin`` (a call LLVM cannot
vectorise), so a kernel written as one loop over the elements (``compiled/loops.py``) lost
to numpy's own SIMD loops on large arrays as soon as it called a transcendental function.
These are written in arithmetic, comparisons and selects only, which LLVM vectorises when
they are inlined into such a loop (with ``error_model="numpy"``: no per-division check):

- ``exp(x)``: ``x = k ln2 + r`` (Cody-Waite, two constants), ``e^r - 1`` by its Taylor
  polynomial to ``r^15`` on ``|r| <= ln2/2``, plus 1, then ``2^k`` as two powers of two
  built from their bits (subnormal and infinite results included);
- ``tanh(x)``: ``e / (e + 2)`` with ``e = expm1(2|x|) = 2^k (e^r - 1) + 2^k - 1`` (the
  same reduction, ``e^r - 1`` by its Taylor polynomial to ``r^15``: no cancellation near
  0, where ``1 - 2 / (e^(2x) + 1)`` would lose the digits), the sign copied;
- ``sin(x)``, ``cos(x)``: ``x = n pi/2 + r`` with pi/2 in three parts of 33 bits (fdlibm's,
  exact products for ``|n| < 2^20``), fdlibm's minimax polynomials of ``sin`` and ``cos``
  on ``|r| <= pi/4``, the quadrant ``n mod 4`` by selects. Exact only for ``|x| <
  TRIG_LIMIT``: the loop asks ``trig_far(x)`` of each argument and runs again with libm's
  where any is farther (or not finite).

Each agrees with numpy's to a few units in the last place (tests/test_jit_vecmath.py:
exp, tanh within 1e-15 relative, sin and cos within 1e-15 of the value over wide ranges,
NaN, infinities and signed zeros as numpy gives them). Importing this module needs numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["vexp", "vtanh", "vsin", "vcos", "trig_far", "VECTORISED", "TRIG_LIMIT"]

VECTORISED = ("exp", "tanh", "sin", "cos")  # numpy's names of the functions here
TRIG_LIMIT = 1.0e6  # |x| below: n < 2^20, pi/2's three parts multiply by n exactly

_inline = njit(inline="always", error_model="numpy", cache=True)


@intrinsic
def _from_bits(typingctx, bits):
    """The float64 whose bits are the int64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 to 32 bits: k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10


@_inline
def _expm1_taylor(r):
    """e^r - 1 for |r| <= ln2/2 (the terms to r^15), without the cancellation of e^r - 1."""
    p = 1.0 / 1307674368000.0
    p = p * r + 1.0 / 87178291200.0
    p = p * r + 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    return p * r


@_inline
def _ln2_parts(y):
    """``(k, r)`` with ``y = k ln2 + r``, ``|r| <= ln2/2``, ``k`` a whole float."""
    k = math.floor(y * _LOG2E + 0.5)
    return k, (y - k * _LN2_HI) - k * _LN2_LO


@_inline
def vexp(x):
    """e^x, as np.exp."""
    y = min(max(x, -1500.0), 1500.0)  # beyond, 0 and inf: 2^k's two factors give them
    y = y if x == x else 0.0          # NaN: any finite k, the result is x
    k, r = _ln2_parts(y)
    ki = np.int64(k)
    half = ki >> 1
    rest = min(max(ki - half, -1022), 1023)
    half = min(max(half, -1022), 1023)
    result = (_expm1_taylor(r) + 1.0) * _from_bits((half + 1023) << 52) * \
        _from_bits((rest + 1023) << 52)
    return result if x == x else x


@_inline
def vtanh(x):
    """tanh(x), as np.tanh: ``e / (e + 2)`` of ``e = expm1(2|x|)``, the sign copied."""
    y = 2.0 * min(abs(x), 40.0)       # tanh(40) is 1 in float64
    y = y if x == x else 0.0
    k, r = _ln2_parts(y)
    scale = _from_bits((np.int64(k) + 1023) << 52)
    e = scale * _expm1_taylor(r) + (scale - 1.0)  # 2^k (e^r - 1) + 2^k - 1: no cancellation
    t = math.copysign(e / (e + 2.0), x)
    return t if x == x else x


_INV_PIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00   # pi/2 in three parts of 33 bits (fdlibm)
_PIO2_2 = 6.07710050630396597660e-11
_PIO2_3 = 2.02226624871116645580e-21
_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)


@_inline
def _quadrant(x):
    """``(r, n mod 4)`` with ``x = n pi/2 + r``, ``|r| <= pi/4``, for ``|x| < TRIG_LIMIT``."""
    y = x if abs(x) < 1.0e6 else 0.0
    n = math.floor(y * _INV_PIO2 + 0.5)
    return ((y - n * _PIO2_1) - n * _PIO2_2) - n * _PIO2_3, np.int64(n) & 3


@_inline
def _sin_cos(r):
    z = r * r
    s = r + r * z * (_S[0] + z * (_S[1] + z * (_S[2] + z * (_S[3] + z * (_S[4] + z * _S[5])))))
    s = s if z != 0.0 else r  # sin(-0.0) is -0.0 (r * z * S would add +0.0 to it)
    c = 1.0 - 0.5 * z + z * z * (_C[0] + z * (_C[1] + z * (_C[2] + z * (_C[3] + z * (
        _C[4] + z * _C[5])))))
    return s, c


@_inline
def vsin(x):
    """sin(x), as np.sin, for |x| < TRIG_LIMIT."""
    r, q = _quadrant(x)
    s, c = _sin_cos(r)
    v = c if (q & 1) != 0 else s
    return -v if (q & 2) != 0 else v


@_inline
def vcos(x):
    """cos(x), as np.cos, for |x| < TRIG_LIMIT."""
    r, q = _quadrant(x)
    s, c = _sin_cos(r)
    q = q + 1
    v = c if (q & 1) != 0 else s
    return -v if (q & 2) != 0 else v


@_inline
def trig_far(x):
    """Whether ``vsin(x)``/``vcos(x)`` would not be numpy's: ``|x| >= TRIG_LIMIT``, or not
    a finite number."""
    return not (abs(x) < 1.0e6)
