"""Tangent rules of linear algebra (forward mode; the kinds and the table: ``tangents.py``).

``inv solve det slogdet cholesky norm eigh eigvalsh matrix_power pinv svd qr lstsq``: the
textbook differentials (distinct eigenvalues and singular values, constant rank). Where numpy
reads one triangle of a matrix (``cholesky``, ``eigh``, a hermitian ``svd`` or ``pinv``), the
tangent is that triangle's, mirrored (``_triangle``).
"""

from __future__ import annotations

import numpy as np

from .solvers import inverse, matrix_solve, triangular_solve
from .tangent_reductions import extremum_tangent
from .tangents import _refuse_unless, tangent


@tangent(np.linalg.inv, inverse)
def inv_tangent(da, ans, a):
    return -(ans @ da @ ans)


@tangent(np.linalg.solve)
def solve_tangent(da, db, ans, a, b):
    # x = a^-1 b: dx = a^-1 (db - da x); b of one dimension is a vector (numpy 2); matrix_solve:
    # np.linalg.solve, triangular or by Cholesky where a allows (solvers.py)
    if np.ndim(b) == 1:
        return matrix_solve(a, (db[..., None] - da @ ans[..., None]))[..., 0]
    return matrix_solve(a, db - da @ ans)


# the solves of solvers.py, which the adjoint rules call: np.linalg.solve's tangent (of a.T
# where transposed)
@tangent(matrix_solve)
def matrix_solve_tangent(da, db, ans, a, b, transposed=False):
    dop = np.swapaxes(da, -1, -2) if transposed else da
    if np.ndim(b) == 1:
        return matrix_solve(a, db[..., None] - dop @ ans[..., None], transposed)[..., 0]
    return matrix_solve(a, db - dop @ ans, transposed)


@tangent(triangular_solve)
def triangular_solve_tangent(da, db, ans, a, b, lower_triangle=True, transposed=False):
    dop = np.swapaxes(da, -1, -2) if transposed else da
    if np.ndim(b) == 1:
        return triangular_solve(a, db[..., None] - dop @ ans[..., None], lower_triangle,
                                transposed)[..., 0]
    return triangular_solve(a, db - dop @ ans, lower_triangle, transposed)


@tangent(np.linalg.det)
def det_tangent(da, ans, a):
    # d det(a) = det(a) tr(a^-1 da)
    return ans * np.trace(matrix_solve(a, da), axis1=-2, axis2=-1)


@tangent(np.linalg.slogdet)
def slogdet_tangent(da, ans, a):
    sign, logdet = ans
    return np.zeros_like(logdet), np.trace(matrix_solve(a, da), axis1=-2, axis2=-1)


@tangent(np.linalg.cholesky)
def cholesky_tangent(da, ans, a, upper=False):
    # a = L L^T: dL = L Phi(L^-1 da L^-T), Phi the lower triangle with its diagonal halved
    # numpy reads one triangle of a: the lower one, the upper one where upper=True
    lower = np.swapaxes(ans, -1, -2) if upper else ans
    da = _triangle(da, "U" if upper else "L")
    inner = triangular_solve(lower, np.swapaxes(triangular_solve(lower, da), -1, -2))
    phi = np.tril(inner) - 0.5 * np.eye(inner.shape[-1], like=inner) * inner
    dl = lower @ phi
    return np.swapaxes(dl, -1, -2) if upper else dl


@tangent(np.linalg.norm)
def norm_tangent(dx, ans, x, ord=None, axis=None, keepdims=False):
    if ord is None or ord == "fro":  # Euclidean (Frobenius): <x, dx> / |x|, 0 at x = 0
        return np.sum(x * dx, axis=axis, keepdims=keepdims) / (ans + (ans == 0))
    if axis is None and np.ndim(x) == 2 or not isinstance(axis, int) and np.size(axis) == 2:
        return _matrix_norm_tangent(dx, ans, x, ord, (0, 1) if axis is None else axis, keepdims)
    if ord == 0:  # a count: piecewise constant
        return np.zeros_like(ans * 1.0)
    slope = np.sign(x) * dx  # the tangent of |x|
    if ord == np.inf or ord == -np.inf:
        return extremum_tangent(slope, ans, np.abs(x), axis=axis, keepdims=keepdims)
    if ord == 1:
        return np.sum(slope, axis=axis, keepdims=keepdims)
    # (sum |x|^p)^(1/p): |x|_p^(1 - p) sum |x|^(p - 1) d|x|
    return np.sum(np.abs(x) ** (ord - 1) * slope, axis=axis, keepdims=keepdims) * \
        ans ** (1 - ord)


def _matrix_norm_tangent(dx, ans, x, ord, axis, keepdims):
    """The tangent of a matrix norm over the two axes ``axis`` (rows, columns): of the
    extreme singular value or their sum (2, -2, 'nuc'), of the extreme column (1, -1) or row
    (inf, -inf) sum of magnitudes."""
    rows, cols = axis[0] % np.ndim(x), axis[1] % np.ndim(x)
    m = np.moveaxis(x, (rows, cols), (-2, -1))
    dm = np.moveaxis(dx, (rows, cols), (-2, -1))
    if ord in (2, -2, "nuc"):  # ds_i = u_i^T dm v_i
        u, s, vh = np.linalg.svd(m, full_matrices=False)
        ds = np.diagonal(np.swapaxes(u, -1, -2) @ dm @ np.swapaxes(vh, -1, -2), axis1=-2,
                         axis2=-1)
        out = np.sum(ds, axis=-1) if ord == "nuc" else ds[..., 0] if ord == 2 else ds[..., -1]
    else:
        over = -2 if ord in (1, -1) else -1  # 1: the column sums; inf: the row sums
        sums = np.sum(np.abs(m), axis=over)
        dsums = np.sum(np.sign(m) * dm, axis=over)
        best = np.max(sums, axis=-1) if ord in (1, np.inf) else np.min(sums, axis=-1)
        out = extremum_tangent(dsums, best, sums, axis=-1)
    return np.expand_dims(out, tuple(sorted((rows, cols)))) if keepdims else out


def _triangle(da, uplo):
    """The symmetric matrix eigh sees of ``da``: it reads one triangle (``uplo``) only."""
    part = np.tril(da, -1) if uplo == "L" else np.triu(da, 1)
    return part + np.swapaxes(part, -1, -2) + np.eye(da.shape[-1], like=da) * da


@tangent(np.linalg.eigh)
def eigh_tangent(da, ans, a, UPLO="L"):
    # dw = diag(V^T da V); dV = V (F o (V^T da V)), F_ij = 1 / (w_j - w_i) off the diagonal
    w, v = ans
    da = _triangle(da, UPLO)
    inner = np.swapaxes(v, -1, -2) @ da @ v
    gaps = w[..., None, :] - w[..., :, None]
    eye = np.eye(w.shape[-1], dtype=bool, like=w)
    f = np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, gaps))
    return np.diagonal(inner, axis1=-2, axis2=-1), v @ (f * inner)


@tangent(np.linalg.eigvalsh)
def eigvalsh_tangent(da, ans, a, UPLO="L"):
    w, v = np.linalg.eigh(a, UPLO=UPLO)
    da = _triangle(da, UPLO)
    return np.diagonal(np.swapaxes(v, -1, -2) @ da @ v, axis1=-2, axis2=-1)


@tangent(np.linalg.matrix_power)
def matrix_power_tangent(da, ans, a, n=None):
    # a^n = a a ... a: the sum of the products with one factor replaced by its tangent;
    # a negative n: the same of inv(a), whose tangent is -inv(a) da inv(a)
    if n == 0:
        return np.zeros_like(ans * 1.0)
    base, dbase = a, da
    if n < 0:
        base = np.linalg.inv(a)
        dbase = -(base @ da @ base)
    power, dpower = base, dbase
    for _ in range(abs(n) - 1):
        dpower = dpower @ base + power @ dbase
        power = power @ base
    return dpower


@tangent(np.linalg.pinv)
def pinv_tangent(da, ans, a, rcond=None, hermitian=False, rtol=None):
    # of a matrix of constant rank: -P da P + P P^T da^T (I - a P) + (I - P a) da^T P^T P
    if hermitian:
        da = _triangle(da, "L")  # numpy reads the lower triangle
    p, pt, dat = ans, np.swapaxes(ans, -1, -2), np.swapaxes(da, -1, -2)
    left = np.eye(np.shape(a)[-2], like=a) - a @ p
    right = np.eye(np.shape(a)[-1], like=a) - p @ a
    return -(p @ da @ p) + p @ pt @ dat @ left + right @ dat @ pt @ p


def _inverse_gaps(s2):
    """``1 / (s2_j - s2_i)`` off the diagonal, 0 on it (distinct values)."""
    eye = np.eye(np.shape(s2)[-1], dtype=bool, like=s2)
    return np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, s2[..., None, :] - s2[..., :, None]))


@tangent(np.linalg.svd)
def svd_tangent(da, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    # distinct singular values: ds_i = u_i^T da v_i; u and v by Townsend's formulas
    if not compute_uv:
        return _singular_values_tangent(da, a, hermitian)
    return _svd_factors_tangent(da, ans, a, full_matrices, hermitian)


def _singular_values_tangent(da, a, hermitian):
    if hermitian:  # |eigenvalues| of the lower triangle, largest first
        w, v = np.linalg.eigh(a)
        dw = np.diagonal(np.swapaxes(v, -1, -2) @ _triangle(da, "L") @ v, axis1=-2, axis2=-1)
        order = np.argsort(np.abs(w), axis=-1)[..., ::-1]
        return np.take_along_axis(np.sign(w) * dw, order, axis=-1)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.diagonal(np.swapaxes(u, -1, -2) @ da @ np.swapaxes(vh, -1, -2), axis1=-2,
                       axis2=-1)


def _svd_factors_tangent(da, ans, a, full_matrices, hermitian):
    m, n = np.shape(a)[-2:]
    if hermitian:  # vh = (u * sign(w))^T, in the order of |w|, largest first
        w, v = np.linalg.eigh(a)
        dw, dv = eigh_tangent(da, (w, v), a)
        order = np.argsort(np.abs(w), axis=-1)[..., ::-1]
        ds = np.take_along_axis(np.sign(w) * dw, order, axis=-1)
        signs = np.take_along_axis(np.sign(w), order, axis=-1)
        du = np.take_along_axis(dv, order[..., None, :], axis=-1)
        return du, ds, np.swapaxes(du * signs[..., None, :], -1, -2)
    _refuse_unless(not full_matrices or m == n,
                   "srcdiff's forward mode differentiates u and vh of a non-square matrix's "
                   "np.linalg.svd with full_matrices=False only (the extra columns are not "
                   "unique): write np.linalg.svd(a, full_matrices=False)")
    u, s, vh = ans[0], ans[1], ans[2]
    v = np.swapaxes(vh, -1, -2)
    inner = np.swapaxes(u, -1, -2) @ da @ v
    ds = np.diagonal(inner, axis1=-2, axis2=-1)
    f = _inverse_gaps(s * s)
    s_cols, s_rows = s[..., None, :], s[..., :, None]  # S on the right, S on the left
    inner_t = np.swapaxes(inner, -1, -2)
    du = u @ (f * (inner * s_cols + s_rows * inner_t))
    dv = v @ (f * (s_rows * inner + inner_t * s_cols))
    if m > n:  # the part of da outside u's columns
        du = du + (da - u @ (np.swapaxes(u, -1, -2) @ da)) @ v / s_cols
    if n > m:
        dat = np.swapaxes(da, -1, -2)
        dv = dv + (dat - v @ (vh @ dat)) @ u / s_cols
    return du, ds, np.swapaxes(dv, -1, -2)


def _qr_square_tangent(q, r, da):
    """``(dq, dr)`` of ``a = q r`` with r square (m >= n): q^T dq skew, dr r^-1 upper."""
    x = np.swapaxes(np.linalg.solve(np.swapaxes(r, -1, -2), np.swapaxes(da, -1, -2) @ q), -1, -2)
    lower = np.tril(x, -1)
    omega = lower - np.swapaxes(lower, -1, -2)
    dr = (x - omega) @ r
    dq = np.swapaxes(np.linalg.solve(np.swapaxes(r, -1, -2), np.swapaxes(da, -1, -2)), -1, -2) \
        - q @ (x - omega)
    return dq, dr


@tangent(np.linalg.qr)
def qr_tangent(da, ans, a, mode="reduced"):
    q, r = ans[0], ans[1]
    m, n = np.shape(a)[-2:]
    if m >= n:
        dq, dr = _qr_square_tangent(q, r, da)
        return dq, dr
    # a = q [r1 | r2] with r1 square: the square part, then r2 = q^T a2
    dq, dr1 = _qr_square_tangent(q, r[..., :, :m], da[..., :, :m])
    dr2 = np.swapaxes(q, -1, -2) @ (da[..., :, m:] - dq @ r[..., :, m:])
    return dq, np.concatenate([dr1, dr2], axis=-1)


@tangent(np.linalg.lstsq)
def lstsq_tangent(da, db, ans, a, b, rcond=None):
    # x = pinv(a) b; the residuals |b - a x|^2 per column (a of full column rank, m > n);
    # the rank is a count; the singular values as np.linalg.svd's
    x, residuals = ans[0], ans[1]
    p = np.linalg.pinv(a)
    dx = pinv_tangent(da, p, a) @ b + p @ db
    r = b - a @ x
    dres = 2.0 * np.sum(r * (db - da @ x - a @ dx), axis=0)
    dres = np.reshape(dres, np.shape(residuals)) if np.size(residuals) else 0.0 * residuals
    return dx, dres, 0.0, _singular_values_tangent(da, a, False)


__all__ = sorted(name for name, value in globals().items() if name.endswith("_tangent") and
                 not name.startswith("_") and getattr(value, "__module__", None) == __name__)
