"""Solves and inverses for the adjoint rules of ``linalg.py``: what ``np.linalg.solve`` and
``np.linalg.inv`` compute, faster where the matrix has a structure a look finds.

=====================================  ======================================================
``triangular_solve(a, b)``             ``np.linalg.solve(a, b)`` for ``a`` known triangular
                                       (a Cholesky factor): BLAS ``trsv``/``trsm``
``matrix_solve(a, b)``                 ``np.linalg.solve(a, b)``: triangularly where ``a`` is
                                       triangular, by Cholesky where it is symmetric positive
                                       definite, else LU
``inverse(a)``                         ``np.linalg.inv(a)``: by Cholesky (LAPACK ``potri``)
                                       where ``a`` is symmetric positive definite
=====================================  ======================================================

Each computes what that numpy function computes (to rounding), on every input: the fast
paths run on one real or complex numpy matrix (``float32 float64 complex64 complex128``)
where scipy is installed, and every other input (CuPy, Dask, stacks of matrices, mixed
dtypes, no scipy) takes numpy's own call. The look is O(n^2) next to an O(n^3)
factorisation, and O(1) for most full matrices (a corner decides). Being those numpy
functions, they have their adjoints (and, in ``tangent_linalg.py``, their tangents):
``inverse`` has ``np.linalg.inv``'s rule, the solves ``np.linalg.solve``'s, so that second
order differentiates the rules that call them. Only a triangular ``a`` given to
``triangular_solve`` is trusted, not looked at: its callers know.

>>> a = np.array([[2.0, 0.0], [1.0, 4.0]])
>>> matrix_solve(a, np.array([2.0, 9.0]))      # a is lower triangular: one trsv
array([1., 2.])
"""

from __future__ import annotations

import numpy as np

from .helpers import unbroadcast
from .registry import adjoint

__all__ = ["triangular_solve", "matrix_solve", "inverse", "triangular_solve_adjoint",
           "matrix_solve_adjoint", "inverse_adjoint"]


def _mT(x):
    return np.swapaxes(x, -1, -2)


# ----- the solves and the inverse -----


def triangular_solve(a, b, lower_triangle=True, transposed=False):
    """``np.linalg.solve(a, b)`` (of ``a.T`` where ``transposed``) for a matrix ``a`` that is
    lower (upper) triangular, which the caller knows; ``b`` is a vector only when it is 1-D."""
    blas = _scipy(a, b, "blas")
    if blas is None:
        if np.ndim(b) == 1:
            return np.linalg.solve(_mT(a) if transposed else a, b[..., None])[..., 0]
        return np.linalg.solve(_mT(a) if transposed else a, b)
    if not np.all(np.diagonal(a)):
        raise np.linalg.LinAlgError("Singular matrix")
    lower, trans = lower_triangle, transposed
    if not a.flags.f_contiguous:  # BLAS reads Fortran order: a C-ordered a is a.T's
        a, lower, trans = a.T, not lower, not trans
    if b.ndim == 1:
        trsv, = blas.get_blas_funcs(("trsv",), (a, b))
        return trsv(a, b, lower=lower, trans=int(trans))
    # x.T = b.T @ inv(op(a)).T, from the right: b.T of a C-ordered b is Fortran-ordered
    trsm, = blas.get_blas_funcs(("trsm",), (a, b))
    return trsm(1.0, a, b.T, side=1, lower=lower, trans_a=int(not trans)).T


def matrix_solve(a, b, transposed=False):
    """``np.linalg.solve(a, b)`` (of ``a.T`` where ``transposed``), ``b`` a vector only when
    it is 1-D: a triangular solve where ``a`` is triangular, a Cholesky one where it is real,
    symmetric and positive definite."""
    structure = _structure(a, b)
    if structure in ("L", "U"):
        return triangular_solve(a, b, structure == "L", transposed)
    if structure == "S":
        lapack = _scipy(a, b, "lapack")
        potrf, potrs = lapack.get_lapack_funcs(("potrf", "potrs"), (a, b))
        factor, info = potrf(a, lower=1, clean=0)  # a.T = a: the same factor
        if info == 0:
            x, info = potrs(factor, b, lower=1)
            if info == 0:
                return x
    if np.ndim(b) == 1:
        return np.linalg.solve(_mT(a) if transposed else a, b[..., None])[..., 0]
    return np.linalg.solve(_mT(a) if transposed else a, b)


def inverse(a):
    """``np.linalg.inv(a)``: by its Cholesky factor (LAPACK ``potri``) where ``a`` is one real
    numpy matrix, symmetric and positive definite."""
    if _structure(a, a) == "S":
        lapack = _scipy(a, a, "lapack")
        potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (a,))
        factor, info = potrf(a, lower=1, clean=1)  # zeros above the diagonal
        if info == 0:
            low, info = potri(factor, lower=1, overwrite_c=1)  # the lower triangle of inv(a)
            if info == 0:
                full = low + low.T  # the diagonal twice
                np.fill_diagonal(full, np.diagonal(low))
                return full
    return np.linalg.inv(a)


# ----- which structure, where it can be used -----


_BLAS_TYPES = frozenset(map(np.dtype, ("float32", "float64", "complex64", "complex128")))


def _scipy(a, b, name):
    """``scipy.linalg.blas`` (``name="blas"``) or ``.lapack`` where they compute what numpy
    does: one numpy matrix ``a`` and a numpy vector or matrix ``b`` of its dtype, a BLAS one;
    else None (and without scipy)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or \
            b.ndim not in (1, 2) or a.dtype != b.dtype or a.dtype not in _BLAS_TYPES or \
            a.size == 0:
        return None
    try:
        from scipy.linalg import blas, lapack
    except ImportError:  # scipy is optional
        return None
    return blas if name == "blas" else lapack


def _structure(a, b) -> str:
    """``"L"`` (``"U"``) where ``a`` is lower (upper) triangular, ``"S"`` where it is real and
    symmetric, ``""`` otherwise or where no fast path takes ``a`` and ``b``."""
    if _scipy(a, b, "blas") is None or a.shape[0] != a.shape[1]:
        return ""
    if a[0, -1] == 0 and not np.any(np.triu(a, 1)):
        return "L"
    if a[-1, 0] == 0 and not np.any(np.triu(a.T, 1)):  # a.T: a's memory order for a = L.T
        return "U"
    if a.dtype.kind == "f" and a[0, -1] == a[-1, 0] and np.array_equal(a, a.T):
        return "S"
    return ""


# ----- their adjoints: np.linalg.solve's and np.linalg.inv's -----


@adjoint(triangular_solve)
def triangular_solve_adjoint(g, ans, a, b, lower_triangle=True, transposed=False):
    if np.ndim(b) == 1:  # a vector, ans one per matrix of a
        db = triangular_solve(a, g[..., None], lower_triangle, not transposed)[..., 0]
        da = -(db[..., :, None] * ans[..., None, :])
    else:
        db = triangular_solve(a, g, lower_triangle, not transposed)
        da = -(db @ _mT(ans))
    return unbroadcast(_mT(da) if transposed else da, a), unbroadcast(db, b)


@adjoint(matrix_solve)
def matrix_solve_adjoint(g, ans, a, b, transposed=False):
    if np.ndim(b) == 1:
        db = matrix_solve(a, g[..., None], not transposed)[..., 0]
        da = -(db[..., :, None] * ans[..., None, :])
    else:
        db = matrix_solve(a, g, not transposed)
        da = -(db @ _mT(ans))
    return unbroadcast(_mT(da) if transposed else da, a), unbroadcast(db, b)


@adjoint(inverse)
def inverse_adjoint(g, ans, a):
    return -(_mT(ans) @ g @ _mT(ans))
