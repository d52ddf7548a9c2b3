"""Adjoint rules of scipy functions: ``scipy.special``, the normal, t and multivariate normal
densities of ``scipy.stats``, and ``scipy.linalg``'s triangular and Cholesky solves and ``expm``.

scipy is optional (``pip install "srcdiff[scipy]"``). This module imports it and is imported
only once scipy is (``registry.OPTIONAL``): no scipy function can reach the compiler before
its module is imported, so ``import srcdiff`` never pays for importing scipy.

=========================  ================================================================
``scipy.special``          erf erfc erfinv erfcinv expit log_expit logit gammaln digamma (psi)
                           polygamma (``n`` constant) xlogy xlog1py i0 i1 ive (``v``
                           constant) beta betaln logsumexp (``axis``, ``keepdims``, ``b``
                           constant) softmax log_softmax (``axis``)
``scipy.stats``            norm.pdf logpdf cdf logcdf sf logsf (``x``, ``loc``, ``scale``),
                           t.logpdf (``x``, ``df``, ``loc``, ``scale``),
                           multivariate_normal.logpdf (``x``, ``mean``, ``cov``)
``scipy.linalg``           solve_triangular (``trans``, ``lower``, ``unit_diagonal``),
                           cho_factor, cho_solve, expm
=========================  ================================================================

A constant (``n``, ``v``, ``b``) is an option: srcdiff refuses a varied one where the call is
compiled, rather than give it a zero gradient. ``scipy.stats.norm.logpdf`` and its kin are
bound methods taking ``(x, *args, **kwds)``; each rule is registered with the signature scipy
documents (``signature=``), so ``norm.logpdf(x, loc=mu, scale=sigma)`` binds ``loc`` and
``scale`` as operands. Where scipy reads one triangle of a matrix (``cho_factor``,
``solve_triangular``, the covariance of ``multivariate_normal``), the adjoint lies in that
triangle, as in ``linalg.py``.

Array libraries: the scipy.special functions these rules call are numpy ufuncs, which
dispatch through ``__array_ufunc__`` like ``np.exp`` (CuPy sends them to
``cupyx.scipy.special``); a Python function of scipy.special comes from the array library's
own ``scipy.special`` (:func:`_special`). scipy.linalg converts to numpy, so the linalg rules
solve with the library's own ``scipy.linalg`` (``cupyx.scipy.linalg``), or, for another
library, with ``np.linalg`` (a dense solve of the triangle); ``expm`` has no such fallback and
says so. scipy.stats promotes float32 to float64: the stats rules give float32 operands
float32 adjoints.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.special as special
import scipy.stats as stats

from .backend import array_module
from .elementwise import _like
from .helpers import expand_reduced, guard, unbroadcast
from .linalg import _fold, _mT, cholesky_adjoint
from .registry import adjoint
from .solvers import inverse

_SQRT_PI_2 = math.sqrt(math.pi) / 2.0  # erf'(x) = exp(-x * x) / _SQRT_PI_2
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _library(*xs):
    """``"cupy"`` for CuPy arrays, ``"numpy"`` for numpy arrays and numbers, else None."""
    xp = array_module(*xs)
    return "numpy" if xp is np else "cupy" if getattr(xp, "__name__", "") == "cupy" else None


def _special(*xs):
    """``scipy.special``, or CuPy's own (``cupyx.scipy.special``) for CuPy arrays."""
    if _library(*xs) == "cupy":
        import cupyx.scipy.special

        return cupyx.scipy.special
    return special


def _scipy_linalg(*xs):
    """``scipy.linalg`` for numpy arrays, ``cupyx.scipy.linalg`` for CuPy ones, else None."""
    library = _library(*xs)
    if library == "cupy":
        import cupyx.scipy.linalg

        return cupyx.scipy.linalg
    return scipy.linalg if library == "numpy" else None


# ----- scipy.special: error functions, the logistic, gamma -----   (g: adjoint of the output)


@adjoint(special.erf)
def special_erf_adjoint(g, x):
    return g * np.exp(-x * x) / _SQRT_PI_2


@adjoint(special.erfc)
def special_erfc_adjoint(g, x):
    return -g * np.exp(-x * x) / _SQRT_PI_2


@adjoint(special.erfinv)
def erfinv_adjoint(g, ans, x):
    return g * _SQRT_PI_2 * np.exp(ans * ans)


@adjoint(special.erfcinv)
def erfcinv_adjoint(g, ans, x):
    return -g * _SQRT_PI_2 * np.exp(ans * ans)


@adjoint(special.expit)
def expit_adjoint(g, ans, x):
    return g * ans * (1.0 - ans)


@adjoint(special.log_expit)
def log_expit_adjoint(g, ans, x):
    return g * -np.expm1(ans)  # 1 - expit(x), without the cancellation where expit(x) ~ 1


@adjoint(special.logit)
def logit_adjoint(g, x):
    return g / guard(x - x * x, g)


@adjoint(special.gammaln)
def gammaln_adjoint(g, x):
    return g * _special(x).digamma(x)


@adjoint(special.digamma, special.psi)
def digamma_adjoint(g, x):
    return g * _special(x).zeta(2.0, x)  # the trigamma function, polygamma(1, x)


@adjoint(special.polygamma)
def polygamma_adjoint(g, x, n=0):
    # polygamma(n + 1, x) = (-1) ** n * (n + 1)! * zeta(n + 2, x); n is an integer (scipy's
    # polygamma gives float64 for float32 x: the adjoint is x's dtype)
    if isinstance(n, (int, np.integer)):
        d = g * ((-1.0) ** int(n) * math.factorial(int(n) + 1)) * _special(x).zeta(n + 2.0, x)
    else:
        sp = _special(x, n)
        d = g * (1.0 - 2.0 * (n % 2)) * sp.gamma(n + 2.0) * sp.zeta(n + 2.0, x)
    return _like(d, x)


# Binary functions: a Python number operand is a float64 numpy scalar once a function of
# it is taken (np.log(2.0)); _like keeps a float32 array operand's adjoint float32.


@adjoint(special.xlogy, broadcasting=True)
def xlogy_adjoint(g, x, y):
    dx = g * np.log(guard(y, g))
    dy = g * x / guard(y, g * x)  # 0 where x == 0: xlogy(0, y) == 0 for every y
    return _like(dx, x), _like(dy, y)


@adjoint(special.xlog1py, broadcasting=True)
def xlog1py_adjoint(g, x, y):
    return _like(g * np.log1p(y), x), _like(g * x / guard(1.0 + y, g * x), y)


@adjoint(special.beta, broadcasting=True)
def beta_adjoint(g, ans, a, b):
    return _beta_slopes(g * ans, a, b)


@adjoint(special.betaln, broadcasting=True)
def betaln_adjoint(g, a, b):
    return _beta_slopes(g, a, b)


def _beta_slopes(g, a, b):
    """``g`` times the derivatives of log beta(a, b): digamma(a) - digamma(a + b), ..."""
    sp = _special(a, b)
    both = sp.digamma(a + b)
    return _like(g * (sp.digamma(a) - both), a), _like(g * (sp.digamma(b) - both), b)


# ----- scipy.special: Bessel functions -----


@adjoint(special.i0)
def i0_adjoint(g, x):
    return g * _special(x).i1(x)


@adjoint(special.i1)
def i1_adjoint(g, ans, x):
    # i1'(x) = i0(x) - i1(x) / x, which is 1/2 at 0
    return g * np.where(x == 0, 0.5, _special(x).i0(x) - ans / guard(x, x))


# ive(v, z) = iv(v, z) * exp(-|z|); the order v is a constant (an option, not an operand)
@adjoint(special.ive, leading=("v",))
def ive_adjoint(g, ans, z, v=0.0):
    sp = _special(z)
    return g * (0.5 * (sp.ive(v - 1.0, z) + sp.ive(v + 1.0, z)) - np.sign(z) * ans)


# ----- scipy.special: reductions -----   (axis as numpy's; b, the weights, a constant)


@adjoint(special.logsumexp)
def logsumexp_adjoint(g, ans, a, axis=None, b=None, keepdims=False):
    shape = np.shape(a) if b is None else np.broadcast_shapes(np.shape(a), np.shape(b))
    weights = np.exp(a - expand_reduced(ans, shape, axis, keepdims))
    if b is not None:
        weights = weights * b
    return _like(unbroadcast(expand_reduced(g, shape, axis, keepdims) * weights, a), a)


@adjoint(special.softmax)
def softmax_adjoint(g, ans, x, axis=None):
    return ans * (g - np.sum(g * ans, axis=axis, keepdims=True))


@adjoint(special.log_softmax)
def log_softmax_adjoint(g, ans, x, axis=None):
    return g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)


# ----- scipy.stats.norm -----   (z = (x - loc) / scale; one adjoint each for x, loc, scale)


def _loc_scale(x, loc=0.0, scale=1.0):
    """How ``scipy.stats.norm.pdf(x, loc=0, scale=1)`` and its kin are called."""


def _per_z(g, slope, z, x, loc, scale):
    """The adjoints of ``x``, ``loc`` and ``scale`` from ``g * slope``, the adjoint of ``z``
    times ``scale`` (scipy.stats computes in float64: a float32 operand gets float32)."""
    dz = g * slope / scale
    return _like(dz, x), _like(-dz, loc), _like(-dz * z, scale)


@adjoint(stats.norm.logpdf, broadcasting=True, signature=_loc_scale)
def norm_logpdf_adjoint(g, x, loc, scale):
    z = (x - loc) / scale
    dx, dloc, _ = _per_z(g, -z, z, x, loc, scale)
    return dx, dloc, _like(g * (z * z - 1.0) / scale, scale)


@adjoint(stats.norm.pdf, broadcasting=True, signature=_loc_scale)
def norm_pdf_adjoint(g, ans, x, loc, scale):
    return norm_logpdf_adjoint(g * ans, x, loc, scale)


@adjoint(stats.norm.cdf, broadcasting=True, signature=_loc_scale)
def norm_cdf_adjoint(g, x, loc, scale):
    z = (x - loc) / scale
    return _per_z(g, np.exp(-0.5 * z * z - _LOG_SQRT_2PI), z, x, loc, scale)


@adjoint(stats.norm.sf, broadcasting=True, signature=_loc_scale)
def norm_sf_adjoint(g, x, loc, scale):
    return norm_cdf_adjoint(-g, x, loc, scale)


@adjoint(stats.norm.logcdf, broadcasting=True, signature=_loc_scale)
def norm_logcdf_adjoint(g, ans, x, loc, scale):
    z = (x - loc) / scale  # pdf(z) / cdf(z), as exp(log pdf(z) - log cdf(z)): no 0 / 0 far out
    return _per_z(g, np.exp(-0.5 * z * z - _LOG_SQRT_2PI - ans), z, x, loc, scale)


@adjoint(stats.norm.logsf, broadcasting=True, signature=_loc_scale)
def norm_logsf_adjoint(g, ans, x, loc, scale):
    z = (x - loc) / scale
    return _per_z(g, -np.exp(-0.5 * z * z - _LOG_SQRT_2PI - ans), z, x, loc, scale)


# ----- scipy.stats.t -----


def _df_loc_scale(x, df, loc=0.0, scale=1.0):
    """How ``scipy.stats.t.logpdf(x, df, loc=0, scale=1)`` is called."""


@adjoint(stats.t.logpdf, broadcasting=True, signature=_df_loc_scale)
def t_logpdf_adjoint(g, x, df, loc, scale):
    z = (x - loc) / scale
    zz = z * z
    dx, dloc, dscale = _per_z(g, -(df + 1.0) * z / (df + zz), z, x, loc, scale)
    sp = _special(x, df)
    ddf = 0.5 * (sp.digamma(0.5 * (df + 1.0)) - sp.digamma(0.5 * df) - 1.0 / df
                 - np.log1p(zz / df) + (df + 1.0) * zz / (df * (df + zz)))
    return dx, _like(g * ddf, df), dloc, _like(dscale - g / scale, scale)


# ----- scipy.stats.multivariate_normal -----


@adjoint(stats.multivariate_normal.logpdf)
def multivariate_normal_logpdf_adjoint(g, x, mean, cov, allow_singular=False):
    # log p = -(d log 2 pi + log det C + r C^-1 r) / 2 per row r = x - mean; scipy reads C's
    # lower triangle. cov may be a matrix, its diagonal (1-D) or one variance (a number).
    d = np.shape(cov)[-1] if np.ndim(cov) else np.size(mean) if mean is not None else 1
    r = x if mean is None else x - mean
    rows = np.reshape(r, (-1, d))
    full = cov if np.ndim(cov) == 2 else (
        np.diag(cov) if np.ndim(cov) == 1 else cov * array_module(rows).eye(d, dtype=rows.dtype))
    c_inv = inverse(np.tril(full) + _mT(np.tril(full, -1)))  # by Cholesky (solvers.py)
    alpha = rows @ c_inv
    gs = g * np.ones_like(rows[:, 0]) if np.ndim(g) == 0 else np.reshape(g, (-1,))
    galpha = gs[:, None] * alpha
    dmean = None if mean is None else _like(unbroadcast(np.sum(galpha, axis=0), mean), mean)
    dc = 0.5 * (_mT(alpha) @ galpha - np.sum(gs) * c_inv)
    dcov = _fold(dc, "L") if np.ndim(cov) == 2 else (
        np.diagonal(dc) if np.ndim(cov) == 1 else np.trace(dc))
    return _like(np.reshape(-galpha, np.shape(x)), x), dmean, _like(dcov, cov)


# ----- scipy.linalg -----


def _triangular_solve(a, b, lower, trans=False, unit_diagonal=False):
    """``solve_triangular(a, b)`` with ``a``'s array library: scipy's or cupyx's, or else a
    dense ``np.linalg.solve`` of the triangle."""
    linalg = _scipy_linalg(a, b)
    if linalg is not None:
        return linalg.solve_triangular(a, b, trans=int(trans), lower=lower,
                                       unit_diagonal=unit_diagonal, check_finite=False)
    t = np.tril(a) if lower else np.triu(a)
    if unit_diagonal:
        eye = array_module(a).eye(a.shape[-1], dtype=a.dtype)
        t = t * (1.0 - eye) + eye
    return np.linalg.solve(_mT(t) if trans else t, b)


def _outer(db, x):
    """``db @ x.T`` for matrices, the outer product for vectors."""
    return db @ _mT(x) if np.ndim(x) > 1 else db[:, None] * x[None, :]


def _transposed(trans) -> bool:
    return trans in (1, 2, "T", "C")


@adjoint(scipy.linalg.solve_triangular)
def solve_triangular_adjoint(g, ans, a, b, trans=0, lower=False, unit_diagonal=False,
                             check_finite=True):
    t = _transposed(trans)
    db = _triangular_solve(a, g, lower, not t, unit_diagonal)
    dm = -_outer(db, ans)  # the adjoint of op(a), a or a.T
    dm = _mT(dm) if t else dm
    k = -1 if unit_diagonal else 0  # a unit diagonal is not read
    return (np.tril(dm, k) if lower else np.triu(dm, -k)), db


@adjoint(scipy.linalg.cho_factor, sequence=True)
def cho_factor_adjoint(g, ans, a, lower=False, check_finite=True):
    # c holds the factor in one triangle and a's own elements in the other
    dc = g[0]
    if dc is None:
        return None
    c = ans[0]
    factor = np.tril(c) if lower else np.triu(c)
    da = cholesky_adjoint(np.tril(dc) if lower else np.triu(dc), factor, a, upper=not lower)
    return da + (np.triu(dc, 1) if lower else np.tril(dc, -1))


@adjoint(scipy.linalg.cho_solve)
def cho_solve_adjoint(g, ans, c_and_lower, b, check_finite=True):
    c, lower = c_and_lower
    factor = np.tril(c) if lower else np.triu(c)  # a = L L.T or U.T U
    db = _triangular_solve(c, _triangular_solve(c, g, lower, not lower), lower, lower)
    # a's adjoint is s = -(db x.T + x db.T); L's is s @ L (U's, U @ s), in O(n^2) for one b
    if lower:
        return (-np.tril(_outer(db, _mT(factor) @ ans) + _outer(ans, _mT(factor) @ db)),
                None), db
    return (-np.triu(_outer(factor @ db, ans) + _outer(factor @ ans, db)), None), db


@adjoint(scipy.linalg.expm)
def expm_adjoint(g, a):
    # the adjoint of the Frechet derivative, the upper right block of expm([[a.T, g], [0, a.T]])
    linalg = _scipy_linalg(a)
    if linalg is None:
        raise TypeError(f"the adjoint of scipy.linalg.expm runs on numpy and CuPy arrays "
                        f"(cupyx.scipy.linalg.expm), not on {type(a).__name__}")
    n = np.shape(a)[-1]
    at, g = _mT(a), g * np.ones_like(a) if np.ndim(g) == 0 else g
    block = np.concatenate([np.concatenate([at, g], axis=-1),
                            np.concatenate([np.zeros_like(a), at], axis=-1)], axis=-2)
    return linalg.expm(block)[..., :n, n:]


__all__ = [name for name, value in globals().items()
           if name.endswith("_adjoint") and getattr(value, "__module__", None) == __name__]

# their tangents (forward mode), in a module of their own as numpy's are (tangent_*.py);
# generated code calls them as rt.<name>_tangent, found here
from . import tangent_scipy  # noqa: E402
from .tangent_scipy import *  # noqa: E402,F401,F403

__all__ += tangent_scipy.__all__
