"""Tangent rules of scipy's functions (forward mode; the kinds and the table: ``tangents.py``;
the adjoints: ``scipy_rules.py``, which imports this module once scipy is imported).

The ufuncs of scipy.special (``erf``, ``expit``, ``xlogy``, ...) are elementwise: their adjoint
formulas serve as tangents. These are the others: ``polygamma logsumexp softmax
log_softmax``, ``norm.pdf logpdf cdf logcdf sf logsf``, ``t.logpdf``,
``multivariate_normal.logpdf`` (the covariance's lower triangle, as scipy reads it),
``solve_triangular cho_factor cho_solve expm``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.special as special
import scipy.stats as stats

from .linalg import _mT
from .scipy_rules import _LOG_SQRT_2PI, _special, _transposed, _triangular_solve
from .tangent_linalg import _triangle, cholesky_tangent
from .tangents import tangent


@tangent(special.polygamma)
def polygamma_tangent(dx, ans, x, n=0):
    return dx * _special(x).polygamma(n + 1, x)


@tangent(special.logsumexp)
def logsumexp_tangent(da, ans, a, axis=None, b=None, keepdims=False):
    weights = np.exp(a - special.logsumexp(a, axis=axis, b=b, keepdims=True))  # a's softmax
    if b is not None:
        weights = weights * b
    return np.sum(weights * da, axis=axis, keepdims=keepdims)


@tangent(special.softmax)
def softmax_tangent(dx, ans, x, axis=None):
    return ans * (dx - np.sum(ans * dx, axis=axis, keepdims=True))


@tangent(special.log_softmax)
def log_softmax_tangent(dx, ans, x, axis=None):
    return dx - np.sum(np.exp(ans) * dx, axis=axis, keepdims=True)


def _z_tangent(dx, dloc, dscale, x, loc, scale):
    """``(z, dz)`` of ``z = (x - loc) / scale``."""
    z = (x - loc) / scale
    return z, (dx - dloc - z * dscale) / scale


@tangent(stats.norm.logpdf)
def norm_logpdf_tangent(dx, dloc, dscale, ans, x, loc, scale):
    z, dz = _z_tangent(dx, dloc, dscale, x, loc, scale)
    return -z * dz - dscale / scale


@tangent(stats.norm.pdf)
def norm_pdf_tangent(dx, dloc, dscale, ans, x, loc, scale):
    return ans * norm_logpdf_tangent(dx, dloc, dscale, None, x, loc, scale)


@tangent(stats.norm.cdf)
def norm_cdf_tangent(dx, dloc, dscale, ans, x, loc, scale):
    z, dz = _z_tangent(dx, dloc, dscale, x, loc, scale)
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI) * dz


@tangent(stats.norm.sf)
def norm_sf_tangent(dx, dloc, dscale, ans, x, loc, scale):
    return -norm_cdf_tangent(dx, dloc, dscale, None, x, loc, scale)


@tangent(stats.norm.logcdf)
def norm_logcdf_tangent(dx, dloc, dscale, ans, x, loc, scale):
    z, dz = _z_tangent(dx, dloc, dscale, x, loc, scale)  # pdf / cdf without 0 / 0 far out
    return np.exp(-0.5 * z * z - _LOG_SQRT_2PI - ans) * dz


@tangent(stats.norm.logsf)
def norm_logsf_tangent(dx, dloc, dscale, ans, x, loc, scale):
    z, dz = _z_tangent(dx, dloc, dscale, x, loc, scale)
    return -np.exp(-0.5 * z * z - _LOG_SQRT_2PI - ans) * dz


@tangent(stats.t.logpdf)
def t_logpdf_tangent(dx, ddf, dloc, dscale, ans, x, df, loc, scale):
    z, dz = _z_tangent(dx, dloc, dscale, x, loc, scale)
    zz = z * z
    sp = _special(x, df)
    gammas = sp.digamma(0.5 * (df + 1.0)) - sp.digamma(0.5 * df) - 1.0 / df
    slope_df = 0.5 * (gammas - np.log1p(zz / df) + (df + 1.0) * zz / (df * (df + zz)))
    return -(df + 1.0) * z / (df + zz) * dz + slope_df * ddf - dscale / scale


@tangent(stats.multivariate_normal.logpdf)
def multivariate_normal_logpdf_tangent(dx, dmean, dcov, ans, x, mean, cov,
                                       allow_singular=False):
    # per row r = x - mean: -r C^-1 dr + (r C^-1 dC C^-1 r - tr(C^-1 dC)) / 2, C's lower
    # triangle read (a 1-D cov: the diagonal; a number: one variance)
    d = np.shape(cov)[-1] if np.ndim(cov) else np.size(mean) if mean is not None else 1
    rows = np.reshape(x if mean is None else x - mean, (-1, d))
    drows = np.reshape(dx - dmean + np.zeros_like(x), (-1, d))
    eye = np.eye(d)
    full = cov if np.ndim(cov) == 2 else np.diag(cov) if np.ndim(cov) == 1 else cov * eye
    dfull = _triangle(dcov, "L") if np.ndim(cov) == 2 else (
        np.diag(dcov) if np.ndim(cov) == 1 else dcov * eye)
    c_inv = np.linalg.inv(np.tril(full) + _mT(np.tril(full, -1)))
    alpha = rows @ c_inv
    quadratic = np.sum((alpha @ dfull) * alpha, axis=-1)
    out = -np.sum(alpha * drows, axis=-1) + 0.5 * (quadratic - np.trace(c_inv @ dfull))
    return np.reshape(out, np.shape(ans))


@tangent(scipy.linalg.solve_triangular)
def solve_triangular_tangent(da, db, ans, a, b, trans=0, lower=False, unit_diagonal=False,
                             check_finite=True):
    # x = op(t)^-1 b for the triangle t of a that is read: dx = op(t)^-1 (db - op(dt) x)
    k = -1 if unit_diagonal else 0  # a unit diagonal is not read
    dt = np.tril(da, k) if lower else np.triu(da, -k)
    t = _transposed(trans)
    return _triangular_solve(a, db - (_mT(dt) if t else dt) @ ans, lower, t, unit_diagonal)


@tangent(scipy.linalg.cho_factor)
def cho_factor_tangent(da, ans, a, lower=False, check_finite=True):
    # the factor's tangent in its triangle, a's own elements (their tangents) in the other
    c = ans[0]
    factor = np.tril(c) if lower else np.triu(c)
    dfactor = cholesky_tangent(da, factor, a, upper=not lower)
    return dfactor + (np.triu(da, 1) if lower else np.tril(da, -1)), 0.0


@tangent(scipy.linalg.cho_solve)
def cho_solve_tangent(dc_and_lower, db, ans, c_and_lower, b, check_finite=True):
    # x = a^-1 b, a = L L^T (or U^T U) from c's triangle: dx = a^-1 (db - da x)
    c, lower = c_and_lower
    dc = dc_and_lower[0]
    factor, dfactor = (np.tril(c), np.tril(dc)) if lower else (_mT(np.triu(c)), _mT(np.triu(dc)))
    product = dfactor @ _mT(factor)
    rhs = db - (product + _mT(product)) @ ans
    return _triangular_solve(c, _triangular_solve(c, rhs, lower, not lower), lower, lower)


@tangent(scipy.linalg.expm)
def expm_tangent(da, ans, a):
    # the Frechet derivative: the upper right block of expm([[a, da], [0, a]])
    n = np.shape(a)[-1]
    block = np.concatenate([np.concatenate([a, da], axis=-1),
                            np.concatenate([np.zeros_like(a), a], axis=-1)], axis=-2)
    return scipy.linalg.expm(block)[..., :n, n:]


__all__ = sorted(name for name, value in globals().items() if name.endswith("_tangent") and
                 not name.startswith("_") and getattr(value, "__module__", None) == __name__)
