"""The factors stage: a Cholesky factor's solve and log-determinant become one call each,
differentiated in the factored matrix. Every spelling is checked against finite differences
(on the hyperparameters that build K, and on K's entries themselves: numpy's Cholesky reads
the lower triangle, so an entry above the diagonal has no gradient), and where the lines
stay as they are the gradient is still right."""

import numpy as np
import pytest
import scipy.linalg as sla

import srcdiff
from srcdiff.runtime import linalg
from srcdiff.testing import check_grad

from ..helpers import code
from ..test_benchmarks_spellings import sp


def kernel(theta, X, n):
    ell, sf2, sn2 = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2])
    d2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    return sf2 * np.exp(-0.5 * d2 / ell ** 2) + sn2 * np.eye(n)


def gp_transpose(theta, X, y):
    K = kernel(theta, X, len(y))
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(np.transpose(L), np.linalg.solve(L, y))
    return 0.5 * np.dot(y, alpha) + np.log(np.diag(L)).sum()


def gp_swapaxes(theta, X, y):
    K = kernel(theta, X, len(y))
    L = np.linalg.cholesky(K)
    z = np.linalg.solve(L, y)
    alpha = np.linalg.solve(L.swapaxes(-1, -2), z)
    logdet = 2.0 * np.sum(np.log(np.diag(L)))
    return 0.5 * y @ alpha + 0.5 * logdet


def columns(K, Y):
    """A matrix right-hand side, and K itself differentiated."""
    L = np.linalg.cholesky(K)
    A = np.linalg.solve(L.T, np.linalg.solve(L, Y))
    return np.sum(A * Y) + np.sum(np.log(np.diag(L)))


def factor_used_elsewhere(K, y):
    """L is read again (L @ y): that use keeps the factorisation's own rule."""
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
    return np.sum(alpha * y) + np.sum(L @ y)


def upper_factor(K, y):
    """upper=True: U.T U = K, another idiom; the lines stay."""
    U = np.linalg.cholesky(K, upper=True)
    alpha = np.linalg.solve(U.T, np.linalg.solve(U, y))
    return np.sum(alpha * y)


def scipy_upper(K, y):
    """scipy's default factor is the upper one: the lines stay (scipy's own rules)."""
    c, low = sla.cho_factor(K)
    return np.sum(sla.cho_solve((c, low), y) * y) + np.sum(np.log(np.diag(c)))


def scipy_lower(K, y):
    c, low = sla.cho_factor(K, lower=True)
    alpha = sla.cho_solve((c, low), y)
    return np.sum(alpha * y) + np.log(np.diag(c)).sum()


def stacked(K, y):
    """A stack of matrices: np.swapaxes, the lines' own rules at run time."""
    L = np.linalg.cholesky(K)
    x = np.linalg.solve(np.swapaxes(L, -1, -2), np.linalg.solve(L, y))
    return np.sum(x * x)


def _spd(rng, n, batch=()):
    A = rng.normal(size=(*batch, n, n))
    return A @ np.swapaxes(A, -1, -2) + n * np.eye(n)


@pytest.mark.parametrize("fn", [sp.gp_cholesky, gp_transpose, gp_swapaxes, sp.gp_cho_solve],
                         ids=lambda f: f.__name__)
def test_gp_spellings_take_the_calls_and_match_finite_differences(fn):
    args = sp.gp_args(np.random.default_rng(1), small=True)
    grad = srcdiff.grad(fn, wrt=("theta",))
    vgrad = srcdiff.value_and_grad(fn, wrt=("theta",))
    for _ in range(2):
        got = grad(*args)
        check_grad(fn, args, got, argnums=(0,))
        np.testing.assert_allclose(got[0], sp.gp_hand(*args)[0], rtol=1e-9)
        value, again = vgrad(*args)
        np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
        np.testing.assert_allclose(again[0], got[0], rtol=1e-12)
    source = code(grad.source)  # (grad needs only the log-determinant's adjoint)
    assert "rt.cholesky_solve(K, y, factor=" in source
    assert "rt.cholesky_log_diagonal_adjoint(" in source
    assert "cholesky_adjoint" not in source.replace("cholesky_log_diagonal_adjoint", "")
    assert "np.linalg.solve" not in source


@pytest.mark.parametrize("n, k", [(1, 1), (4, 1), (5, 3)])
def test_in_the_matrix_itself(n, k):
    rng = np.random.default_rng(n + k)
    K, Y = _spd(rng, n), rng.normal(size=(n, k))
    grad = srcdiff.grad(columns, wrt=("K", "Y"))
    got = grad(K, Y)
    check_grad(columns, (K, Y), got, argnums=(0, 1))
    assert np.all(np.triu(got[0], 1) == 0)  # above the diagonal: numpy's Cholesky never reads
    assert "cholesky_adjoint" not in grad.source


@pytest.mark.parametrize("fn, called", [(factor_used_elsewhere, True), (upper_factor, False),
                                        (scipy_upper, False), (scipy_lower, True)],
                         ids=["factor_used_elsewhere", "upper_factor", "scipy_upper",
                              "scipy_lower"])
def test_other_uses_and_other_factors(fn, called):
    rng = np.random.default_rng(3)
    K, y = _spd(rng, 4), rng.normal(size=4)
    grad = srcdiff.grad(fn, wrt=("K", "y"))
    check_grad(fn, (K, y), grad(K, y), argnums=(0, 1))
    assert ("rt.cholesky_solve(" in grad.source) is called
    if fn is factor_used_elsewhere:  # (L @ y reaches the factorisation's rule)
        assert "cholesky_adjoint" in grad.source


def test_a_stack_of_matrices_takes_the_lines_rules_at_run_time():
    rng = np.random.default_rng(4)
    K, y = _spd(rng, 3, batch=(2,)), rng.normal(size=(2, 3, 1))  # columns of each matrix
    grad = srcdiff.grad(stacked, wrt=("K", "y"))
    check_grad(stacked, (K, y), grad(K, y), argnums=(0, 1))
    assert "swapped=True" in grad.source


def test_forward_mode_and_second_order_read_the_lines_as_written():
    args = sp.gp_args(np.random.default_rng(5), small=True)
    theta, X, y = args
    v = np.array([0.3, -0.2, 0.5])
    value, tangent = srcdiff.jvp(sp.gp_cholesky, (theta, X, y), (v, None, None))
    grad = srcdiff.grad(sp.gp_cholesky, wrt=("theta",))
    np.testing.assert_allclose(tangent, grad(*args)[0] @ v, rtol=1e-9)
    hv = srcdiff.hvp(sp.gp_cholesky, theta, v, X, y)
    eps = 1e-6
    fd = (grad(theta + eps * v, X, y)[0] - grad(theta - eps * v, X, y)[0]) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-5, atol=1e-7)


def test_the_runtime_calls_compute_the_lines_values():
    rng = np.random.default_rng(6)
    K, y = _spd(rng, 6), rng.normal(size=6)
    L = np.linalg.cholesky(K)
    np.testing.assert_allclose(linalg.cholesky_solve(K, y, L),
                               np.linalg.solve(L.T, np.linalg.solve(L, y)), rtol=1e-12)
    assert linalg.cholesky_log_diagonal(K, L) == np.sum(np.log(np.diag(L)))  # the same ops
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky_solve(K, y, np.zeros((6, 6)))


@pytest.mark.parametrize("n, b_shape", [(1, (1,)), (4, (4,)), (4, (4, 2)), (3, (2, 3, 2))],
                         ids=["1x1", "vector", "columns", "stacked-columns"])
def test_the_rules_against_finite_differences(n, b_shape):
    """Each rule is the derivative of the lines with the factor made from ``a`` (so that a
    difference in ``a`` moves it), checked directly on the runtime functions."""
    from srcdiff.runtime.registry import rule_for
    from srcdiff.testing import check_vjp

    rng = np.random.default_rng(n + len(b_shape))
    a, b = _spd(rng, n), rng.normal(size=b_shape)

    def solve(a, b):
        return linalg.cholesky_solve(a, b, np.linalg.cholesky(a))

    def log_diagonal(a):
        return linalg.cholesky_log_diagonal(a, np.linalg.cholesky(a))

    x, g = solve(a, b), rng.normal(size=b_shape)
    want = rule_for(linalg.cholesky_solve).call(g, x, a, b, factor=np.linalg.cholesky(a))
    check_vjp(solve, (a, b), want, cotangent=g, argnums=(0, 1))
    want = rule_for(linalg.cholesky_log_diagonal).call(0.7, a, factor=np.linalg.cholesky(a))
    check_vjp(log_diagonal, (a,), (want,), cotangent=0.7)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_the_lapack_factor_is_numpys(n):
    """``rt.cholesky_factor``, which ``grad`` writes for a factor only the calls read (so that
    no adjoint ever reaches it): numpy's factor to rounding, numpy's error where the matrix
    is not positive definite."""
    rng = np.random.default_rng(n)
    a = _spd(rng, n)
    factor = linalg.cholesky_factor(a)
    np.testing.assert_allclose(factor, np.linalg.cholesky(a), rtol=1e-13, atol=1e-14)
    assert np.all(np.triu(factor, 1) == 0) and factor.flags.c_contiguous
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky_factor(-a)
    low = linalg.cholesky_factor(a.astype(np.float32))
    assert low.dtype == np.float32
    np.testing.assert_allclose(low, np.linalg.cholesky(a.astype(np.float32)), rtol=1e-5, atol=1e-6)


def test_grad_alone_takes_the_lapack_factor():
    args = sp.gp_args(np.random.default_rng(7), small=True)
    grad = srcdiff.grad(sp.gp_cholesky, wrt=("theta",))
    vgrad = srcdiff.value_and_grad(sp.gp_cholesky, wrt=("theta",))
    np.testing.assert_allclose(grad(*args)[0], vgrad(*args)[1][0], rtol=1e-10)
    assert "L = rt.cholesky_factor(K)" in grad.source
    assert "L = np.linalg.cholesky(K)" in vgrad.source  # the value is numpy's, to the bit
    elsewhere = srcdiff.grad(factor_used_elsewhere, wrt=("K", "y"))
    rng = np.random.default_rng(8)
    elsewhere(_spd(rng, 3), rng.normal(size=3))
    assert "np.linalg.cholesky(K)" in elsewhere.source  # L @ y: numpy's factor, its rule


def test_scipys_factor_is_read_below_its_diagonal_only():
    """``clean=False``: the entries above the diagonal (scipy's cho_factor leaves K's there)
    are read by no path: BLAS's, numpy's (another dtype), the inverse's."""
    from srcdiff.runtime.registry import rule_for

    rng = np.random.default_rng(9)
    K = _spd(rng, 5)
    L = np.linalg.cholesky(K)
    c = L + np.triu(rng.normal(size=(5, 5)), 1)  # junk above the diagonal
    for b in (rng.normal(size=5), rng.normal(size=(5, 2)), rng.normal(size=5).astype(np.float32)):
        np.testing.assert_allclose(linalg.cholesky_solve(K, b, c, clean=False),
                                   linalg.cholesky_solve(K, b, L), rtol=1e-6)
        x, g = linalg.cholesky_solve(K, b, L), rng.normal(size=b.shape)
        got = rule_for(linalg.cholesky_solve).call(g, x, K, b, factor=c, clean=False)
        want = rule_for(linalg.cholesky_solve).call(g, x, K, b, factor=L)
        for u, v in zip(got, want):
            np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-8)
    got = rule_for(linalg.cholesky_log_diagonal).call(0.5, K, factor=c, clean=False)
    np.testing.assert_allclose(got, rule_for(linalg.cholesky_log_diagonal).call(0.5, K, factor=L))
    assert linalg.cholesky_log_diagonal(K, c, clean=False) == linalg.cholesky_log_diagonal(K, L)


def slogdet_columns(K, Y):
    sign, logdet = np.linalg.slogdet(K)
    return np.sum(np.linalg.solve(K, Y) * Y) + 0.5 * np.sum(logdet)  # (a stack's: one each)


def slogdet_only(K):
    sign, logdet = np.linalg.slogdet(K)
    return logdet


@pytest.mark.parametrize("case", ["spd", "indefinite", "unsymmetric", "stack"])
def test_a_matrix_log_determinant_and_solve_share_one_factor(case):
    """In grad, ``slogdet(K)`` and ``solve(K, b)`` of one K: one factor where K is exactly
    symmetric and positive definite, numpy's calls (and rules) otherwise."""
    rng = np.random.default_rng(10)
    n, batch = 4, (2,) if case == "stack" else ()
    K = _spd(rng, n, batch)
    if case == "indefinite":
        K = K - 2 * n * np.eye(n) + 0.0 * K  # symmetric, det != 0, not positive definite
    if case == "unsymmetric":
        K = K + 0.1 * rng.normal(size=K.shape)
    Y = rng.normal(size=(*batch, n, 2))
    grad = srcdiff.grad(slogdet_columns, wrt=("K", "Y"))
    got = grad(K, Y)
    check_grad(slogdet_columns, (K, Y), got, argnums=(0, 1))
    assert "rt.spd_factor(K)" in grad.source and "rt.solve_spd(K, Y, factor=K_factor)" in grad.source
    value, again = srcdiff.value_and_grad(slogdet_columns, wrt=("K", "Y"))(K, Y)
    assert value == slogdet_columns(K, Y)  # numpy's calls, to the bit
    for g, h in zip(got, again):
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12)
    assert (linalg.spd_factor(K) is not None) is (case == "spd")


def test_a_log_determinant_alone_is_numpys():
    rng = np.random.default_rng(11)
    K = _spd(rng, 3)
    grad = srcdiff.grad(slogdet_only, wrt=("K",))
    check_grad(slogdet_only, (K,), grad(K), argnums=(0,))
    assert "spd_factor" not in grad.source


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_blas", [True, False], ids=["BLAS", "numpy"])
def test_the_folded_adjoints_are_the_triangles_of_the_full_ones(dtype, with_blas, monkeypatch):
    """The cholesky_solve adjoint of a vector (BLAS's syr2 into zeros), the log-diagonal's
    (potri's triangle of a clean factor) and slogdet_spd's (both triangles in one sum) are the
    folds of the full-matrix adjoints, zero above the diagonal where folded, with and
    without scipy's BLAS."""
    from srcdiff.runtime import solvers
    from srcdiff.runtime.linalg import _fold
    from srcdiff.runtime.registry import rule_for

    if not with_blas:
        monkeypatch.setattr(solvers, "_scipy", lambda a, b, name: None)
    rng = np.random.default_rng(10)
    K = _spd(rng, 6).astype(dtype)
    L, b, g = np.linalg.cholesky(K), rng.normal(size=6).astype(dtype), rng.normal(size=6).astype(dtype)
    x = linalg.cholesky_solve(K, b, L)
    dK, db = rule_for(linalg.cholesky_solve).call(g, x, K, b, factor=L)
    inverse = np.linalg.inv(K.astype(np.float64))
    want_db = inverse @ g
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(db, want_db, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dK, _fold(-np.outer(want_db, x), "L"), rtol=rtol, atol=rtol)
    assert dK.dtype == dtype and np.all(np.triu(dK, 1) == 0) and dK.flags.c_contiguous
    d = rule_for(linalg.cholesky_log_diagonal).call(1.0, K, factor=L)
    np.testing.assert_allclose(d, _fold(inverse / 2, "L"), rtol=rtol, atol=rtol)
    assert np.all(np.triu(d, 1) == 0)
    factor = linalg.spd_factor(K)
    if factor is not None:  # (scipy's LAPACK)
        d = rule_for(linalg.slogdet_spd).call((None, 1.0), K, factor=factor)
        np.testing.assert_allclose(d, inverse, rtol=rtol, atol=rtol)
        assert np.array_equal(d, d.T)
