"""Adjoint rules of linear algebra: ``np.linalg``, and the products ``vdot tensordot kron
cross`` and ``einsum`` of any number of operands.

Each rule is the derivative of what numpy computes. Where numpy reads one triangle of its
input (``cholesky``, ``eigh``, ``eigvalsh``: the ``UPLO`` one; ``svd``/``pinv`` with
``hermitian=True``: the lower one), the adjoint lies in that triangle too: an element of the
other triangle does not move the result. For a symmetric matrix built from parameters
(``K = X @ X.T + s * I``) this is the same gradient as the symmetric convention of JAX and
PyTorch gives. Decompositions follow the standard results (Giles 2008, Murray 2016 for the
Cholesky factor, Townsend 2016 for the SVD, Walter and Lehmann 2018 for QR) and hold where
the decomposition is differentiable: distinct eigenvalues or singular values, full rank.

Matrices may carry leading batch axes wherever numpy takes them; ``np.linalg`` functions
dispatch through ``__array_function__``, so the rules run on CuPy arrays as they are. The
rules solve and invert through ``solvers.py``: what ``np.linalg.solve`` and ``inv`` compute,
triangularly for a triangular matrix (a Cholesky factor) and by Cholesky for a symmetric
positive definite one, on one numpy matrix where scipy is installed.
A function that returns several arrays (``slogdet eigh qr svd lstsq``) is registered with
``sequence=True``: its ``g`` holds one adjoint per result, ``None`` for an unused one.
"""

from __future__ import annotations

import numbers
import string

import numpy as np

from .backend import array_module
from .helpers import expand_reduced, inverse_permutation, unbroadcast
from .options import OneOf
from .registry import adjoint
from . import solvers
from .solvers import inverse, matrix_solve, triangular_solve
from .solvers import inverse_adjoint, matrix_solve_adjoint, triangular_solve_adjoint  # noqa: F401


def _mT(x):
    """``x`` with its last two axes swapped (each matrix of a stack transposed)."""
    return np.swapaxes(x, -1, -2)


def _scale(s, m):
    """Each matrix of ``m`` times its number in ``s`` (a number, or one per matrix of the
    stack); a number multiplies as it is (``np.expand_dims`` would make a host array)."""
    if isinstance(s, (float, int, np.generic)):
        return s * m
    return np.expand_dims(s, (-2, -1)) * m


def _fold(s, uplo):
    """The adjoint of a function that reads only the ``uplo`` triangle of its input (as if
    the other were its mirror image), from ``s``, that function's adjoint on a full matrix:
    ``s[i, j] + s[j, i]`` in the triangle read, ``s[i, i]`` on the diagonal, zero outside."""
    if uplo.upper() == "U":
        return np.triu(s) + _mT(np.tril(s, -1))
    if type(s) is np.ndarray and s.ndim == 2:  # one pass fewer: the sums, then the triangle
        both = s + s.T
        np.fill_diagonal(both, np.diagonal(s))
        return np.tril(both)
    return np.tril(s) + _mT(np.triu(s, 1))


def _inverse_gaps(w):
    """``1 / (w[j] - w[i])`` at ``[..., i, j]``, 0 where the values are equal (the diagonal)."""
    gaps = w[..., None, :] - w[..., :, None]
    same = gaps == 0
    return np.where(same, 0.0, 1.0 / np.where(same, 1.0, gaps))


# ----- inverse, determinant, solve -----


@adjoint(np.linalg.inv)
def inv_adjoint(g, ans, a):
    return -(_mT(ans) @ g @ _mT(ans))


@adjoint(np.linalg.det)
def det_adjoint(g, ans, a):
    return _scale(g * ans, _mT(inverse(a)))  # inverse: np.linalg.inv, Cholesky's where it can


# The sign is piecewise constant: only the log of |det| has an adjoint.
@adjoint(np.linalg.slogdet, sequence=True)
def slogdet_adjoint(g, a):
    _, g_logdet = g
    if g_logdet is None:
        return np.zeros_like(a)
    return _scale(g_logdet, _mT(inverse(a)))


# numpy >= 2: b is a vector (..., M) only when it is 1-D, else matrices (..., M, K); the
# batch axes of a and b broadcast against each other, and sum back here. matrix_solve solves
# with a triangular a (L.T) triangularly, a symmetric positive definite one by Cholesky.
@adjoint(np.linalg.solve)
def solve_adjoint(g, ans, a, b):
    if np.ndim(b) == 1:
        db = matrix_solve(a, g[..., None], transposed=True)[..., 0]
    else:
        db = matrix_solve(a, g, transposed=True)
    return unbroadcast(_solve_matrix_adjoint(db, ans, b), a), unbroadcast(db, b)


def _solve_matrix_adjoint(db, ans, b):
    """The adjoint of ``a`` in ``x = solve(a, b)`` as a full matrix, ``-db x.T`` (``db`` the
    adjoint of ``b``): an outer product of vectors where ``b`` is one (numpy 2), a product of
    matrices otherwise."""
    if np.ndim(b) == 1:
        return -(db[..., :, None] * ans[..., None, :])
    return -(db @ _mT(ans))


@adjoint(np.linalg.matrix_power)
def matrix_power_adjoint(g, a, n=None):
    if n == 0:
        return np.zeros_like(a)
    base = np.linalg.inv(a) if n < 0 else a
    bt = _mT(base)
    # the adjoint of base ** m is the sum over k of bt**k @ g @ bt**(m - 1 - k), built up as
    # d_1 = g, d_(j+1) = bt @ d_j + g @ bt**j
    d, power = g, bt
    for _ in range(abs(n) - 1):
        d = bt @ d + g @ power
        power = power @ bt
    if n < 0:  # base = inv(a): the adjoint of inv
        d = -(bt @ d @ bt)
    return d


# ----- factorisations -----


@adjoint(np.linalg.cholesky)
def cholesky_adjoint(g, ans, a, upper=False):
    low, g_low = (_mT(ans), _mT(g)) if upper else (ans, g)
    w = _lower_weights(low)  # 1 below the diagonal, 1/2 on it, 0 above
    phi = w * (_mT(low) @ g_low)  # the lower triangle of L.T @ g, its diagonal halved
    # s = inv(L).T @ phi @ inv(L), by two triangular solves with L.T
    s = _mT(triangular_solve(low, _mT(triangular_solve(low, phi, transposed=True)),
                            transposed=True))
    d = w * (s + _mT(s))  # _fold(s, "L"): s[i, j] + s[j, i] below the diagonal, s[i, i] on it
    return _mT(d) if upper else d


# ----- a Cholesky factor's solve and log-determinant (the ``factors`` stage's calls) -----


def cholesky_factor(a):
    """``np.linalg.cholesky(a)``: by LAPACK's ``potrf`` on one real numpy matrix where scipy is
    installed (on ``a.T``, the Fortran order LAPACK reads: no copy, ~2x faster than numpy's
    call on 128x128), equal to rounding; numpy's own call for anything else, and where
    ``potrf`` finds ``a`` not positive definite (numpy raises its error). The ``factors``
    stage writes it for a factor read only by its calls, in ``grad``: no adjoint reaches it,
    and it has no rule."""
    lapack = _lapack_for(a)
    if lapack is not None and a.shape[0] == a.shape[1]:
        potrf, = lapack.get_lapack_funcs(("potrf",), (a,))
        upper, info = potrf(a.T, lower=0, clean=1)  # a.T's upper triangle is a's lower one
        if info == 0:
            return upper.T
    return np.linalg.cholesky(a)


def cholesky_solve(a, b, factor, swapped=False, clean=True):
    """``np.linalg.solve(L.T, np.linalg.solve(L, b))`` for ``L = factor``, numpy's Cholesky
    factor of ``a``: ``a``'s inverse times ``b``, by two triangular solves (equal to
    rounding). ``swapped``: the user wrote ``np.swapaxes(L, -1, -2)`` (``L.T`` reverses every
    axis: the same for one matrix, not for a stack). ``clean=False``: only the factor's lower
    triangle is the factor (scipy's ``cho_factor`` leaves ``a``'s entries above it), which
    BLAS reads alone, and numpy's solve reads of ``np.tril(factor)``. The ``factors`` stage
    writes this call for those lines, so that its adjoint is ``a``'s (one solve with the
    factor), not the solves', the transpose's and the factorisation's."""
    if np.ndim(factor) != 2:
        factor = factor if clean else np.tril(factor)
        return np.linalg.solve(_swapped(factor, swapped), np.linalg.solve(factor, b))
    if not clean and solvers._scipy(factor, b, "blas") is None:  # numpy's solve: all of it
        factor = np.tril(factor)
    return triangular_solve(factor, triangular_solve(factor, b), transposed=True)


def _swapped(factor, swapped):
    return _mT(factor) if swapped else np.transpose(factor)


@adjoint(cholesky_solve)
def cholesky_solve_adjoint(g, ans, a, b, factor=None, swapped=False, clean=True):
    if np.ndim(factor) != 2:  # a stack: the lines' own rules, one after another
        factor = factor if clean else np.tril(factor)
        upper = _swapped(factor, swapped)
        inner = np.linalg.solve(factor, b)
        d_upper, d_inner = solve_adjoint(g, ans, upper, inner)
        d_factor, db = solve_adjoint(d_inner, inner, factor, b)
        d_factor = d_factor + _swapped(d_upper, swapped)
        return cholesky_adjoint(d_factor, factor, a), db
    # x = inv(a) b with a symmetric: db = inv(a) g, and -db x.T for a as a full matrix,
    # folded onto the lower triangle numpy's Cholesky reads
    db = cholesky_solve(a, g, factor, clean=clean)
    folded = _folded_outer(db, ans, factor)
    if folded is not None:
        return folded, db
    return _fold(unbroadcast(_solve_matrix_adjoint(db, ans, b), a), "L"), db  # (a stack of b's: a summed over it)


def _folded_outer(u, v, factor):
    """``_fold(-np.outer(u, v), "L")`` for two numpy vectors of ``factor``'s BLAS dtype (the
    matrix they are of), by BLAS's symmetric rank-2 update (``syr2``: ``-(u v' + v u')`` on
    one triangle, into zeros), its diagonal halved back to ``-u * v``: one new array and half
    a pass, where the outer product, its sum with its transpose and the triangle are three of
    each; else None."""
    blas = solvers._scipy(factor, u, "blas") if type(v) is np.ndarray and v.ndim == 1 and \
        u.ndim == 1 and v.dtype == u.dtype else None
    if blas is None:
        return None
    syr2, = blas.get_blas_funcs(("syr2",), (u,))
    # the upper triangle of a Fortran-ordered matrix: its transpose, C-ordered, is the lower
    folded = syr2(-1.0, u, v, lower=0).T
    folded.flat[::folded.shape[0] + 1] += u * v  # -2 u_i v_i on the diagonal: -u_i v_i
    return folded


def cholesky_log_diagonal(a, factor, clean=True):
    """``np.sum(np.log(np.diag(L)))`` for ``L = factor``, numpy's Cholesky factor of ``a``:
    half of ``a``'s log-determinant, the same operations as the lines, so the same value.
    The ``factors`` stage writes this call for those lines: its adjoint, ``inv(a) / 2``
    folded onto the lower triangle, is one inverse from the factor (LAPACK ``potri``), not
    the diagonal's, the logarithm's and the factorisation's. ``clean``: as
    ``cholesky_solve``'s (the diagonal is the factor's either way)."""
    return np.sum(np.log(np.diag(factor)))


@adjoint(cholesky_log_diagonal)
def cholesky_log_diagonal_adjoint(g, a, factor=None, clean=True):
    # inv(a) / 2, folded: its lower triangle below the diagonal, half of it on the diagonal
    d, lower = _cholesky_inverse_lower(factor, clean)
    d = d if lower else np.tril(d)
    if type(d) is np.ndarray:
        d.flat[::d.shape[0] + 1] *= 0.5  # the diagonal, in place
    else:  # (another library's array)
        d = d - 0.5 * np.diag(np.diagonal(d))
    if type(g) is not float or g != 1.0:  # (grad's seed: 1.0)
        d *= g
    return d


def _cholesky_inverse_lower(factor, clean=True):
    """``(m, lower)``: ``m`` is ``inv(L @ L.T)``, or (LAPACK's path) a matrix whose lower
    triangle is it, and zeros above where ``lower``; ``L`` the lower triangle of ``factor``
    (``clean``: nothing above it)."""
    lapack = _lapack_for(factor)
    if lapack is not None:
        potri, = lapack.get_lapack_funcs(("potri",), (factor,))
        # L.T is the upper factor, in the Fortran order LAPACK reads (no copy of C-ordered L);
        # potri writes its triangle alone: a clean factor's zeros stay below it
        upper, info = potri(factor.T, lower=0)
        if info == 0:
            return upper.T, clean  # its lower triangle is the inverse's
    inverse_factor = np.linalg.inv(factor if clean else np.tril(factor))
    return _mT(inverse_factor) @ inverse_factor, False


# ----- a symmetric positive definite matrix's log-determinant and solves, sharing a factor -----


def spd_factor(a):
    """numpy's Cholesky factor of ``a`` where ``a`` is one real numpy matrix, exactly
    symmetric and positive definite (LAPACK's ``potrf`` on ``a.T``, no copy); else None.
    The ``factors`` stage writes it once for a matrix whose log-determinant and solves
    ``grad`` computes, which then share it (``slogdet_spd``, ``solve_spd``)."""
    lapack = _lapack_for(a)
    if lapack is None or a.shape[0] != a.shape[1] or not np.array_equal(a, a.T):
        return None
    potrf, = lapack.get_lapack_funcs(("potrf",), (a,))
    upper, info = potrf(a.T, lower=0, clean=1)
    return upper.T if info == 0 else None


def slogdet_spd(a, factor=None):
    """``np.linalg.slogdet(a)`` as ``(sign, logabsdet)``: from ``factor`` (``spd_factor(a)``)
    where there is one (sign 1, twice the sum of the logarithms of its diagonal: equal to
    rounding), else numpy's."""
    if factor is None:
        return tuple(np.linalg.slogdet(a))
    return factor.dtype.type(1.0), 2.0 * np.sum(np.log(np.diagonal(factor)))


@adjoint(slogdet_spd, sequence=True)
def slogdet_spd_adjoint(g, a, factor=None):
    if factor is None:
        return slogdet_adjoint(g, a)
    _, g_logdet = g
    if g_logdet is None:
        return np.zeros_like(a)
    inverse_a, lower = _cholesky_inverse_lower(factor)  # the lower triangle of inv(a)
    if lower and type(inverse_a) is np.ndarray:  # zeros above: both triangles in one sum
        diagonal = np.diagonal(inverse_a).copy()
        inverse_a = inverse_a + inverse_a.T
        np.fill_diagonal(inverse_a, diagonal)
    else:  # symmetric
        inverse_a = np.tril(inverse_a) + np.tril(inverse_a, -1).T
    if type(g_logdet) is not float or g_logdet != 1.0:
        inverse_a *= g_logdet
    return inverse_a


def solve_spd(a, b, factor=None):
    """``np.linalg.solve(a, b)``: by the factor (``spd_factor(a)``) where there is one, two
    triangular solves (equal to rounding), else numpy's."""
    if factor is None:
        return np.linalg.solve(a, b)
    if np.ndim(b) > 2:  # a stack of right-hand sides: numpy's broadcasting solves
        return np.linalg.solve(a, b)
    return triangular_solve(factor, triangular_solve(factor, b), transposed=True)


@adjoint(solve_spd)
def solve_spd_adjoint(g, ans, a, b, factor=None):
    if factor is None or np.ndim(b) > 2:
        return solve_adjoint(g, ans, a, b)
    db = solve_spd(a, g, factor)  # inv(a).T g, a symmetric
    return _solve_matrix_adjoint(db, ans, b), db


def _lapack_for(x):
    """scipy's LAPACK for one real float32/float64 numpy matrix (``solvers``' test), else None."""
    if type(x) is not np.ndarray or x.dtype.kind != "f":
        return None
    return solvers._scipy(x, x, "lapack")


def _lower_weights(x):
    """The lower triangle of ones, with halves on the diagonal, in ``x``'s real dtype."""
    xp, n = array_module(x), np.shape(x)[-1]
    dtype = np.finfo(x.dtype).dtype
    return xp.tri(n, dtype=dtype) - 0.5 * xp.eye(n, dtype=dtype)


@adjoint(np.linalg.eigh, sequence=True)
def eigh_adjoint(g, ans, a, UPLO="L"):
    g_w, g_v = g
    w, v = ans[0], ans[1]
    # s = v @ (diag(g_w) + F * (v.T @ g_v)) @ v.T, F[i, j] = 1 / (w[j] - w[i])
    s = np.zeros_like(v)
    if g_w is not None:
        s = s + (v * g_w[..., None, :]) @ _mT(v)
    if g_v is not None:
        s = s + v @ (_inverse_gaps(w) * (_mT(v) @ g_v)) @ _mT(v)
    return _fold(s, UPLO)


@adjoint(np.linalg.eigvalsh)
def eigvalsh_adjoint(g, a, UPLO="L"):
    _, v = np.linalg.eigh(a, UPLO)
    return _fold((v * g[..., None, :]) @ _mT(v), UPLO)


# mode='complete' adds columns to q that are not unique, 'r' and 'raw' return other results
@adjoint(np.linalg.qr, sequence=True, allowed={"mode": OneOf(
    "reduced", advice="write q, r = np.linalg.qr(a) (mode='reduced', the default) and use "
    "what you need of q and r")})
def qr_adjoint(g, ans, a, mode="reduced"):
    q, r = ans[0], ans[1]
    g_q, g_r = g
    g_q = np.zeros_like(q) if g_q is None else g_q
    g_r = np.zeros_like(r) if g_r is None else g_r
    m, n = np.shape(a)[-2:]
    if m >= n:
        return _qr_square_adjoint(q, r, g_q, g_r)
    # a = [x | y] with x square: x = q @ r[:, :m], y = q @ r[:, m:] (so r[:, m:] = q.T @ y)
    y, g_v = a[..., :, m:], g_r[..., :, m:]
    dx = _qr_square_adjoint(q, r[..., :, :m], g_q + y @ _mT(g_v), g_r[..., :, :m])
    return np.concatenate([dx, q @ g_v], axis=-1)


def _qr_square_adjoint(q, r, g_q, g_r):
    """The adjoint of ``a`` (m >= n) from those of ``q`` and ``r`` (r square)."""
    m = r @ _mT(g_r) - _mT(g_q) @ q
    copyltu = np.tril(m) + _mT(np.tril(m, -1))  # the lower triangle mirrored
    b = g_q + q @ copyltu
    return _mT(np.linalg.solve(r, _mT(b)))  # b @ inv(r).T


@adjoint(np.linalg.svd, sequence=True)
def svd_adjoint(g, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    if not compute_uv:  # the singular values alone: g is their adjoint
        u, _, vh = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
        return _svd_fold((u * g[..., None, :]) @ vh, hermitian)
    u, s, vh = ans[0], ans[1], ans[2]
    g_u, g_s, g_vh = g
    m, n = np.shape(a)[-2:]
    if full_matrices and m != n:  # the reduced SVD, where the extra factors get no adjoint
        k = min(m, n)
        u, vh = u[..., :, :k], vh[..., :k, :]
        g_u, g_vh = _reduced(g_u, k, columns=True), _reduced(g_vh, k, columns=False)
    return _svd_fold(_svd_adjoint(u, s, vh, g_u, g_s, g_vh), hermitian)


def _reduced(g, k, columns):
    """The first ``k`` columns (rows) of ``g``, the adjoint of ``u`` (``vh``) of a full SVD of a
    non-square matrix, whose other columns (rows) are not unique: their adjoint must be zero."""
    if g is None:
        return None
    cut = (lambda s: (..., slice(None), s)) if columns else (lambda s: (..., s, slice(None)))
    if np.any(g[cut(slice(k, None))]):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(
            "srcdiff cannot differentiate the extra columns of u (rows of vh) that "
            "np.linalg.svd(a) gives a non-square a with full_matrices=True: they are not "
            "unique; use np.linalg.svd(a, full_matrices=False)")
    return g[cut(slice(None, k))]


def _svd_fold(d, hermitian):
    return _fold(d, "L") if hermitian else d  # svd(hermitian=True) reads the lower triangle


def _svd_adjoint(u, s, vh, g_u, g_s, g_vh, divisor=None):
    """The adjoint of ``a = u @ diag(s) @ vh`` (reduced) from those of its factors.
    ``divisor``: ``s`` with 1 where a factor's columns get no adjoint (a zero singular value
    that pinv drops), for the parts outside the columns of ``u`` and ``v``."""
    v = _mT(vh)
    divisor = s if divisor is None else divisor
    d = 0.0 if g_s is None else (u * g_s[..., None, :]) @ vh
    f = _inverse_gaps(s * s)
    if g_u is not None:
        ut_gu = _mT(u) @ g_u
        j = f * (ut_gu - _mT(ut_gu))  # J + J.T
        d = d + (u @ (j * s[..., None, :])) @ vh
        d = d + ((g_u - u @ ut_gu) / divisor[..., None, :]) @ vh  # outside u's columns
    if g_vh is not None:
        g_v = _mT(g_vh)
        vt_gv = _mT(v) @ g_v
        k = f * (vt_gv - _mT(vt_gv))
        d = d + u @ ((s[..., :, None] * k) @ vh)
        d = d + u @ (_mT(g_v - v @ vt_gv) / divisor[..., :, None])
    if isinstance(d, float):
        return np.zeros_like(u @ vh)
    return d


@adjoint(np.linalg.pinv)
def pinv_adjoint(g, ans, a, rcond=None, hermitian=False, rtol=None):
    cutoff = rcond is not None or rtol is not None
    return _svd_fold(_pinv_adjoint(g, ans, a, cutoff), hermitian)


def _pinv_adjoint(g, p, a, cutoff=False):
    """The adjoint of ``a`` from that of ``p = pinv(a)``: Golub and Pereyra's formula, which
    holds where the rank is constant (numpy's default cutoff drops only singular values that
    are zero but for rounding); for a ``cutoff`` the user chose (``rcond=``, ``rtol=``), which
    may drop others, the derivative of what numpy computes, through the SVD of ``a``."""
    if cutoff:
        return _truncated_pinv_adjoint(g, p, a)
    pt, gt = _mT(p), _mT(g)
    d = -(pt @ g @ pt)
    d = d + (gt - a @ (p @ gt)) @ (p @ pt)  # (I - a p) g.T p p.T
    d = d + (pt @ p) @ (gt - (gt @ p) @ a)  # p.T p g.T (I - p a)
    return d


def _truncated_pinv_adjoint(g, p, a):
    """The adjoint of ``a`` from that of ``p = pinv(a)`` with a cutoff: ``p = v @ diag(w) @
    u.T``, ``w = 1 / s`` for the singular values pinv kept, 0 for those it dropped (read off
    ``p`` itself), differentiated through ``a``'s SVD (about 4x the cost of the formula)."""
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    kept = np.diagonal(vh @ p @ u, axis1=-2, axis2=-1) * s > 0.5
    divisor = np.where(kept, s, 1.0)
    w = np.where(kept, 1.0 / divisor, 0.0)
    g_u = _mT(g) @ (_mT(vh) * w[..., None, :])  # p = v W u.T: u's adjoint g.T v W
    g_vh = w[..., :, None] * (_mT(u) @ _mT(g))  # (g u W).T
    g_s = -np.diagonal(vh @ g @ u, axis1=-2, axis2=-1) * w * w  # dw/ds = -1 / s**2
    return _svd_adjoint(u, s, vh, g_u, g_s, g_vh, divisor)


# x = pinv(a) @ b; the residuals are min ||b - a x||^2 (nonempty for m > n at full rank),
# whose adjoints follow from the optimality of x; the singular values are those of svd.
@adjoint(np.linalg.lstsq, sequence=True)
def lstsq_adjoint(g, ans, a, b, rcond=None):
    x, residuals = ans[0], ans[1]
    g_x, g_res, _, g_s = g
    vector = np.ndim(b) == 1
    da, db = np.zeros_like(a), np.zeros_like(b)
    if g_x is not None:
        p = np.linalg.pinv(a) if rcond is None else np.linalg.pinv(a, rcond)  # its cutoff
        outer = g_x[:, None] * b[None, :] if vector else g_x @ _mT(b)
        da = da + _pinv_adjoint(outer, p, a, rcond is not None)
        db = db + _mT(p) @ g_x
    if g_res is not None and np.size(residuals):
        r = g_res * (b - a @ x)  # each column of the residual times its adjoint
        da = da - 2.0 * (r[:, None] * x[None, :] if vector else r @ _mT(x))
        db = db + 2.0 * r
    if g_s is not None:
        da = da + svd_adjoint(g_s, None, a, compute_uv=False)
    return da, db


# ----- norms -----


# every ord numpy takes: a number (vectors; 1, -1, 2, -2, inf, -inf for matrices), 'fro', 'nuc'
@adjoint(np.linalg.norm, allowed={"ord": OneOf(None, "fro", "nuc", numbers.Real)})
def norm_adjoint(g, ans, x, ord=None, axis=None, keepdims=False):
    if axis is None and ord is None and not keepdims and type(x) is np.ndarray and \
            (type(g) is float or getattr(g, "ndim", None) == 0):  # the 2-norm of all of x,
        # one number (np.ndim of a float costs ~2 µs): x scaled, 0 at x = 0 as below
        return x * (g / (ans if ans else 1.0))
    shape = np.shape(x)
    if axis is None:
        axes = tuple(range(len(shape)))
        if ord is not None and len(shape) not in (1, 2):
            raise ValueError(f"np.linalg.norm with ord={ord!r} takes a vector or a matrix")
    else:
        axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        axes = tuple(int(i) % len(shape) for i in axes)
    g = expand_reduced(g, shape, axes, keepdims)
    norm = expand_reduced(ans, shape, axes, keepdims)
    if ord is None or ord == "fro" or (ord == 2 and len(axes) == 1):  # the 2-norm of all
        return g * x / np.where(norm == 0, 1.0, norm)  # 0 at the zero vector
    if len(axes) == 1:
        return g * _vector_norm_slope(x, norm, ord, axes)
    return _matrix_norm_adjoint(g, x, norm, ord, axes)


def _vector_norm_slope(x, norm, ord, axes):
    """The derivative of the ``ord``-norm of ``x`` along ``axes`` (one axis), elementwise."""
    if ord == 0:  # a count of the nonzero elements: constant
        return np.zeros_like(x)
    if ord in (np.inf, -np.inf):
        return np.sign(x) * _share(np.abs(x) == norm, axes, x)
    if ord == 1:
        return np.sign(x)
    return np.sign(x) * (np.abs(x) / np.where(norm == 0, 1.0, norm)) ** (ord - 1)


def _share(hit, axes, x):
    """1 / (how many ties) where ``hit`` along ``axes``, else 0, in the dtype of ``x``: tied
    extremes split evenly."""
    hit = hit.astype(getattr(x, "dtype", np.float64))
    return hit / np.sum(hit, axis=axes, keepdims=True)


def _matrix_norm_adjoint(g, x, norm, ord, axes):
    rows, cols = axes
    if ord in (1, -1):  # the largest (smallest) sum of |x| over a column
        sums = np.sum(np.abs(x), axis=rows, keepdims=True)
        return g * np.sign(x) * _share(sums == norm, (cols,), x)
    if ord in (np.inf, -np.inf):  # ... over a row
        sums = np.sum(np.abs(x), axis=cols, keepdims=True)
        return g * np.sign(x) * _share(sums == norm, (rows,), x)
    if ord not in ("nuc", 2, -2):
        raise ValueError(f"np.linalg.norm of a matrix has no ord={ord!r}")
    m = np.moveaxis(x, (rows, cols), (-2, -1))
    u, _, vh = np.linalg.svd(m, full_matrices=False)
    if ord == "nuc":  # the sum of the singular values
        d = u @ vh
    else:  # the largest (2) or smallest (-2) singular value
        i = 0 if ord == 2 else np.shape(vh)[-2] - 1
        d = u[..., :, i:i + 1] @ vh[..., i:i + 1, :]
    if not isinstance(g, (float, int, np.generic)):
        g = np.moveaxis(g, (rows, cols), (-2, -1))
    return np.moveaxis(g * d, (-2, -1), (rows, cols))


# ----- products -----


def _reshaped(d, x):
    return d if np.shape(d) == np.shape(x) else np.reshape(d, np.shape(x))


# vdot flattens both operands (of one size, of any shapes): one number
@adjoint(np.vdot)
def vdot_adjoint(g, a, b):
    return _reshaped(g * b, a), _reshaped(g * a, b)


@adjoint(np.tensordot)
def tensordot_adjoint(g, a, b, axes=2):
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:  # a product with a number
        return _summed_to(g * b, a), _summed_to(g * a, b)
    axes_a, axes_b = _tensordot_axes(axes, na, nb)
    free_a = [i for i in range(na) if i not in axes_a]
    free_b = [i for i in range(nb) if i not in axes_b]
    partner_of_a = {i: j for i, j in zip(axes_a, axes_b)}  # contracted axis of a -> of b
    partner_of_b = {j: i for i, j in zip(axes_a, axes_b)}
    if not free_a and not free_b:  # one number: g times the other operand, its axes matched
        return (g * np.transpose(b, [partner_of_a[i] for i in range(na)]),
                g * np.transpose(a, [partner_of_b[j] for j in range(nb)]))
    ng = len(free_a)
    # tensordot keeps the uncontracted axes of each side in order: g's, then b's (for da)
    da = np.tensordot(g, b, axes=(list(range(ng, np.ndim(g))), free_b))
    da = np.transpose(da, inverse_permutation(
        free_a + [partner_of_b[j] for j in sorted(axes_b)], na))
    db = np.tensordot(a, g, axes=(free_a, list(range(ng))))
    db = np.transpose(db, inverse_permutation(
        [partner_of_a[i] for i in sorted(axes_a)] + free_b, nb))
    return da, db


def _tensordot_axes(axes, na, nb):
    """``axes`` (a count, or a pair of axes or of sequences of axes) as two lists."""
    if np.ndim(axes) == 0:
        n = int(axes)
        return list(range(na - n, na)), list(range(n))
    axes_a, axes_b = axes
    axes_a = [axes_a] if np.ndim(axes_a) == 0 else list(axes_a)
    axes_b = [axes_b] if np.ndim(axes_b) == 0 else list(axes_b)
    return [int(i) % na for i in axes_a], [int(j) % nb for j in axes_b]


def _summed_to(d, x):
    """``d`` summed to a number where ``x`` is one (a product of a number with an array)."""
    if np.ndim(x) == 0 and np.ndim(d) > 0:
        return np.sum(d)
    return d


@adjoint(np.kron)
def kron_adjoint(g, a, b):
    na, nb = np.ndim(a), np.ndim(b)
    if na == 0 or nb == 0:  # a product with a number
        return _summed_to(g * b, a), _summed_to(g * a, b)
    n = max(na, nb)
    sa = (1,) * (n - na) + np.shape(a)
    sb = (1,) * (n - nb) + np.shape(b)
    # out[i * sb + k] = a[i] * b[k] along each axis: g as (a0, b0, a1, b1, ...)
    pairs = np.reshape(g, [k for pair in zip(sa, sb) for k in pair])
    a_axes = np.reshape(a, [k for s in sa for k in (s, 1)])
    b_axes = np.reshape(b, [k for s in sb for k in (1, s)])
    da = np.sum(pairs * b_axes, axis=tuple(range(1, 2 * n, 2)))
    db = np.sum(pairs * a_axes, axis=tuple(range(0, 2 * n, 2)))
    return np.reshape(da, np.shape(a)), np.reshape(db, np.shape(b))


# <g, a x b> = <a, b x g> = <b, g x a>. Vectors of 2 components have z = 0 (numpy's
# convention), and two of them give the z component alone.
@adjoint(np.cross)
def cross_adjoint(g, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a_, b_ = np.moveaxis(a, axisa, -1), np.moveaxis(b, axisb, -1)
    ka, kb = np.shape(a_)[-1], np.shape(b_)[-1]
    if ka == 2 and kb == 2:  # c = a0 * b1 - a1 * b0
        da = np.stack([g * b_[..., 1], -(g * b_[..., 0])], axis=-1)
        db = np.stack([-(g * a_[..., 1]), g * a_[..., 0]], axis=-1)
    else:
        g_ = np.moveaxis(g, axisc, -1)
        da = np.cross(_three(b_), g_)[..., :ka]
        db = np.cross(g_, _three(a_))[..., :kb]
    return (np.moveaxis(unbroadcast(da, a_), -1, axisa),
            np.moveaxis(unbroadcast(db, b_), -1, axisb))


def _three(v):
    """Vectors of 2 components with a third, zero."""
    if np.shape(v)[-1] == 3:
        return v
    return np.concatenate([v, np.zeros_like(v[..., :1])], axis=-1)


# ----- einsum, any number of operands -----


@adjoint(np.einsum, leading=("subscripts",))
def einsum_adjoint(g, *operands, subscripts, optimize=False):
    """The adjoint of ``np.einsum(subscripts, *operands)`` for one, two or more operands,
    an implicit output (``'ij,jk'``), ``...`` (broadcast too) and an index repeated within
    one operand (``'ii->i'``, a diagonal): one adjoint per operand, bare for one. The
    subscripts, the primitive's first argument, are an option (``leading``).

    Each operand's adjoint is one einsum of ``g`` with the other operands, spread back
    along the indices only that operand had, and onto its diagonals; for two operands and
    an explicit output without repeated indices that is the single einsum
    ``np.einsum('ik,jk->ij', g, b)`` of the textbook rule.
    """
    shapes = [np.shape(x) for x in operands]
    terms, out, sizes = _einsum_parse(subscripts, shapes)
    grads = []
    for k, (term, x) in enumerate(zip(terms, operands)):
        others = [(t, y) for i, (t, y) in enumerate(zip(terms, operands)) if i != k]
        grads.append(_einsum_operand(g, out, others, term, x, sizes, optimize))
    return tuple(grads) if len(grads) != 1 else grads[0]


def _einsum_parse(subscripts, shapes):
    """The terms with ``...`` spelled as letters, the explicit output, and each letter's
    size; a ValueError for a spelling the rule does not read (numpy's sublist form)."""
    if not isinstance(subscripts, str):
        raise ValueError("srcdiff differentiates np.einsum with a subscripts string "
                         "('ij,jk->ik'), not the sublist form")
    spec = subscripts.replace(" ", "")
    inputs, arrow, out = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"np.einsum({subscripts!r}) takes {len(terms)} operands, "
                         f"got {len(shapes)}")
    free = iter(c for c in string.ascii_letters if c not in spec)
    ranks = [len(s) - len(t) + 3 for t, s in zip(terms, shapes) if "..." in t]
    dots = "".join(next(free) for _ in range(max(ranks, default=0)))
    terms = [t.replace("...", dots[len(dots) - (len(s) - len(t) + 3):]) if "..." in t else t
             for t, s in zip(terms, shapes)]
    if arrow:
        out = out.replace("...", dots)
    else:  # implicit: the broadcast axes, then the indices that occur once, in order
        letters = "".join(t for t in terms)
        out = dots + "".join(sorted(c for c in set(letters)
                                    if letters.count(c) == 1 and c not in dots))
    sizes = {}
    for term, shape in zip(terms, shapes):
        for c, n in zip(term, shape):
            sizes[c] = max(sizes.get(c, 1), n)
    return terms, out, sizes


def _einsum_operand(g, out, others, term, x, sizes, optimize):
    """The adjoint of the operand ``x`` (indices ``term``) of the einsum giving ``out``."""
    unique = "".join(dict.fromkeys(term))
    other_terms = [t for t, _ in others]
    kept = "".join(c for c in unique if c in out or any(c in t for t in other_terms))
    if not out and others:  # one number: g multiplies the others' contraction
        d = g * np.einsum(f"{','.join(other_terms)}->{kept}", *[y for _, y in others],
                          optimize=optimize)
    elif out or others:
        d = np.einsum(",".join([out, *other_terms]) + "->" + kept, g, *[y for _, y in others],
                      optimize=optimize)
    else:  # 'ij->' of one operand
        d = g
    own = dict(zip(term, np.shape(x)))
    broadcast = tuple(i for i, c in enumerate(kept) if own[c] == 1 and sizes[c] != 1)
    if broadcast:  # x had one element where others had several ('...' broadcast)
        d = np.sum(d, axis=broadcast, keepdims=True)
    full = tuple(own[c] for c in unique)
    if kept != unique:  # indices only x had were summed away: spread back along them
        if not kept:
            d = d * np.ones_like(x, shape=full)
        else:
            missing = tuple(i for i, c in enumerate(unique) if c not in kept)
            d = np.broadcast_to(np.expand_dims(d, missing), full)
    if unique == term:
        return d
    # an index repeated in x ('ii'): d goes onto that diagonal, zeros elsewhere
    xp = array_module(d)
    dx = np.zeros_like(d, shape=np.shape(x))
    index = {c: xp.reshape(xp.arange(own[c]), [own[c] if j == i else 1 for j in
                                                 range(len(unique))])
             for i, c in enumerate(unique)}
    dx[tuple(index[c] for c in term)] = d
    return dx


__all__ = [name for name in dir() if name.endswith("_adjoint") and not name.startswith("_")]
__all__ += ["inverse", "matrix_solve", "triangular_solve"]  # rt.<name>: the rules call them
__all__ += ["cholesky_factor", "cholesky_solve", "cholesky_log_diagonal",  # the factors stage's
            "spd_factor", "slogdet_spd", "solve_spd"]
