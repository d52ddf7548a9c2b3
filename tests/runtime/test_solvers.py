"""The solves of runtime/solvers.py, which the linear-algebra adjoint rules call: they compute
what ``np.linalg.solve`` and ``np.linalg.inv`` compute (a triangular solve, a Cholesky one,
LAPACK potri where the matrix allows), so their adjoints are those functions' adjoints, and so
are their tangents. Checked against finite differences (float64) with the shared harness,
float32 in / float32 out, on the duck array (which takes numpy's own call, never scipy's),
with and without scipy; and second order through the rules that call them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import rule_for, solvers
from srcdiff.runtime.tangent_linalg import (inv_tangent, matrix_solve_tangent,
                                            triangular_solve_tangent)
from srcdiff.testing import check_grad, check_jvp, check_vjp
from tests.runtime.rule_table import (case, check_case_by_finite_differences, check_float32,
                                      check_on_duck_arrays)

_RNG = np.random.default_rng(20261206)
matrix_solve, triangular_solve, inverse = (solvers.matrix_solve, solvers.triangular_solve,
                                           solvers.inverse)


def general(n, batch=()):
    return _RNG.standard_normal((*batch, n, n)) + 3.0 * np.eye(n)


def lower(n, batch=()):
    return np.tril(general(n, batch))


def spd(n, batch=()):
    x = _RNG.standard_normal((*batch, n, n))
    s = x @ np.swapaxes(x, -1, -2) + n * np.eye(n)
    return 0.5 * (s + np.swapaxes(s, -1, -2))  # symmetric to the last bit


def indefinite(n):
    """Symmetric, invertible, not positive definite: the Cholesky path gives way to LU."""
    q, _ = np.linalg.qr(_RNG.standard_normal((n, n)))
    s = (q * np.linspace(-2.0, 3.0, n)) @ q.T + 0.1 * np.eye(n)
    return 0.5 * (s + s.T)


# each structure matrix_solve and inverse look for, and the inputs that skip the look
# (stacks); a literal matrix is moved element by element by the oracle, off its structure too
MATRICES = {"general": general(4), "lower": lower(4), "upper": lower(4).T,
            "lower-F": np.asfortranarray(lower(4)), "spd": spd(4), "indefinite": indefinite(4),
            "1x1": spd(1)}
CASES = [
    *(case(matrix_solve, a, b, transposed=t) for a in MATRICES.values() for b in ((a.shape[0],),
                                                                          (a.shape[0], 2))
      for t in (False, True)),
    case(matrix_solve, lower(3, (2,)), (2, 3, 2)),  # a stack: numpy's solve
    case(matrix_solve, spd(3, (2,)), (3,), transposed=True),  # a stack, one vector for all
    case(matrix_solve, lower(3), (2, 3, 2)),  # one matrix, a stack of right-hand sides
    *(case(inverse, a) for a in (general(3), spd(4), indefinite(3), lower(3), spd(2, (2,)))),
]


@pytest.mark.parametrize("c", CASES)
def test_rule_matches_finite_differences(c):
    check_case_by_finite_differences(c)


@pytest.mark.parametrize("c", CASES)
def test_float32_in_float32_out(c):
    check_float32(c, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("c", CASES)
def test_on_duck_arrays_nothing_goes_to_scipy_or_the_host(c):
    check_on_duck_arrays(c, rtol=1e-10, atol=1e-12)


# ----- triangular_solve: its callers know a is triangular -----

TRIANGULAR = [(lower(4), True, (4,)), (lower(4), True, (4, 3)), (lower(4).T, False, (4,)),
              (lower(4).T, False, (4, 2)), (np.asfortranarray(lower(3)), True, (3, 2)),
              (lower(3, (2,)), True, (2, 3, 2)), (lower(3, (2,)), True, (3,))]


@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("a, low, b_shape", TRIANGULAR)
def test_triangular_solve_is_numpys_solve_and_its_adjoint_is_solves(a, low, b_shape, trans):
    """Its value is np.linalg.solve's; finite differences within the triangle, where a solve
    that reads one triangle can be moved; the whole adjoint of a is np.linalg.solve's."""
    b, g = _RNG.standard_normal(b_shape), None
    op = np.swapaxes(a, -1, -2) if trans else a
    x = triangular_solve(a, b, lower_triangle=low, transposed=trans)
    np.testing.assert_allclose(x, np.linalg.solve(op, b[..., None])[..., 0] if b.ndim == 1
                               else np.linalg.solve(op, b), rtol=1e-12)
    g = _RNG.standard_normal(np.shape(x))
    da, db = rule_for(triangular_solve).call(g, x, a, b, lower_triangle=low, transposed=trans)
    tri = np.tril if low else np.triu

    def solve_in_triangle(a_, b_):
        return np.sum(g * triangular_solve(tri(a_), b_, lower_triangle=low, transposed=trans))
    check_vjp(solve_in_triangle, (a, b), (tri(da), db))
    d_op, db_numpy = rule_for(np.linalg.solve).call(g, x, op, b)
    np.testing.assert_allclose(da, np.swapaxes(d_op, -1, -2) if trans else d_op, rtol=1e-12)
    np.testing.assert_allclose(db, db_numpy, rtol=1e-12)


def test_the_fast_paths_leave_their_inputs_as_they_were():
    for name in ("lower", "upper", "lower-F", "spd"):
        a, b = MATRICES[name], _RNG.standard_normal((4, 2))
        a0, b0 = a.copy(), b.copy()
        matrix_solve(a, b), matrix_solve(a, b[:, 0], transposed=True), inverse(a)
        triangular_solve(a, np.asfortranarray(b), lower_triangle=name != "upper")
        assert np.array_equal(a, a0) and np.array_equal(b, b0), name


def test_empty_matrices_solve_as_numpy_does():
    a = np.zeros((0, 0))
    for b in (np.zeros(0), np.zeros((0, 2))):
        assert triangular_solve(a, b).shape == matrix_solve(a, b).shape == np.shape(b)
    assert inverse(a).shape == (0, 0)


def test_a_zero_on_the_diagonal_is_singular_as_for_numpy():
    a = lower(3)
    a[1, 1] = 0.0
    for solve in (lambda: triangular_solve(a, np.ones(3)), lambda: matrix_solve(a, np.ones(3)),
                  lambda: np.linalg.solve(a, np.ones(3))):
        with pytest.raises(np.linalg.LinAlgError):
            solve()


# ----- the fast paths are taken, and only where they compute numpy's result -----


def _no_numpy_solve(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("np.linalg.solve / inv called")
    monkeypatch.setattr(np.linalg, "solve", refuse)
    monkeypatch.setattr(np.linalg, "inv", refuse)


@pytest.mark.parametrize("name", ["lower", "upper", "lower-F", "spd"])
def test_a_structured_matrix_is_solved_without_an_lu(monkeypatch, name):
    a, b = MATRICES[name], _RNG.standard_normal((4, 3))
    want, want_t, want_inv = np.linalg.solve(a, b), np.linalg.solve(a.T, b), np.linalg.inv(a)
    _no_numpy_solve(monkeypatch)
    np.testing.assert_allclose(matrix_solve(a, b), want, rtol=1e-11)
    np.testing.assert_allclose(matrix_solve(a, b[:, 0], transposed=True), want_t[:, 0], rtol=1e-11)
    if name == "spd":
        np.testing.assert_allclose(inverse(a), want_inv, rtol=1e-11)
        assert np.array_equal(inverse(a), inverse(a).T)  # symmetric, as numpy's nearly is


@pytest.mark.parametrize("a, b, structure", [
    (general(4), np.ones(4), ""), (indefinite(4), np.ones(4), "S"),  # S: Cholesky fails, LU
    (lower(3, (2,)), np.ones((2, 3, 1)), ""), (lower(3), np.ones(3, dtype=np.float32), ""),
    (lower(3) + 0j, np.ones(3) + 0j, "L"),
    (spd(3) + 0j, np.ones(3) + 0j, "")])  # complex symmetric is not hermitian: no Cholesky
def test_where_no_fast_path_applies_numpy_solves(a, b, structure):
    assert solvers._structure(a, b) == structure
    np.testing.assert_allclose(matrix_solve(a, b), np.linalg.solve(a, b), rtol=1e-12)
    if a.ndim == 2 and a.dtype == b.dtype:
        np.testing.assert_allclose(inverse(a), np.linalg.inv(a), rtol=1e-12)


def test_without_scipy_every_solve_is_numpys(monkeypatch):
    """scipy is optional: where it cannot be imported, numpy's calls, and the same adjoints."""
    a, s, b = lower(4), spd(4), _RNG.standard_normal((4, 2))
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)  # import scipy.linalg fails
    assert solvers._scipy(a, b, "blas") is None
    np.testing.assert_allclose(triangular_solve(a, b, transposed=True), np.linalg.solve(a.T, b))
    np.testing.assert_allclose(matrix_solve(s, b), np.linalg.solve(s, b))
    np.testing.assert_allclose(inverse(s), np.linalg.inv(s))
    for c in (case(matrix_solve, a, (4, 2), transposed=True), case(inverse, s),
              case(np.linalg.solve, a.T, (4,)), case(np.linalg.cholesky, s),
              case(np.linalg.det, s)):
        check_case_by_finite_differences(c.values[0])


# ----- tangents (forward mode): np.linalg.solve's and np.linalg.inv's -----


@pytest.mark.parametrize("trans", [False, True])
@pytest.mark.parametrize("a, b_shape", [(general(3), (3,)), (lower(3), (3, 2)), (spd(3), (3,)),
                                        (lower(3, (2,)), (3,)), (spd(3, (2,)), (2, 3, 2))])
def test_tangents_of_the_solves(a, b_shape, trans):
    b = _RNG.standard_normal(b_shape)
    da, db = _RNG.standard_normal(a.shape), _RNG.standard_normal(b_shape)
    x = matrix_solve(a, b, transposed=trans)
    check_jvp(lambda a_, b_: matrix_solve(a_, b_, transposed=trans), (a, b), (da, db),
              matrix_solve_tangent(da, db, x, a, b, transposed=trans))
    if not np.any(np.triu(a, 1)):  # triangular_solve: moved within the triangle
        da = np.tril(da)
        check_jvp(lambda a_, b_: triangular_solve(np.tril(a_), b_, transposed=trans), (a, b),
                  (da, db), triangular_solve_tangent(da, db, x, a, b, transposed=trans))


@pytest.mark.parametrize("a", [spd(3), general(3)])
def test_tangent_of_inverse(a):
    da = _RNG.standard_normal(a.shape)
    check_jvp(inverse, (a,), (da,), inv_tangent(da, inverse(a), a))


# ----- second order: grad of grad reads the rules that call the solves -----

_X = _RNG.standard_normal(4)
_V = _RNG.standard_normal(4)


def nll_cholesky(x):
    k = np.outer(x, x) + 4.0 * np.eye(4) + 0.1 * np.diag(x)
    low = np.linalg.cholesky(k)
    alpha = np.linalg.solve(low.T, np.linalg.solve(low, x))
    return 0.5 * (x @ alpha) + np.sum(np.log(np.diag(low)))


def nll_slogdet(x):
    k = np.outer(x, x) + 4.0 * np.eye(4) + 0.1 * np.diag(x)
    sign, logdet = np.linalg.slogdet(k)
    return 0.5 * (x @ np.linalg.solve(k, x)) + 0.5 * logdet + np.linalg.det(k)


def along_cholesky(x, v):
    return srcdiff.grad(nll_cholesky)(x) @ v


def along_slogdet(x, v):
    return srcdiff.grad(nll_slogdet)(x) @ v


@pytest.mark.parametrize("f, along", [(nll_cholesky, along_cholesky),
                                      (nll_slogdet, along_slogdet)])
def test_grad_of_grad_through_the_solves(f, along):
    check_grad(f, (_X,), (srcdiff.grad(f)(_X),))
    hv = srcdiff.grad(along)(_X, _V)
    check_grad(along, (_X, _V), (hv,), argnums=(0,))
    np.testing.assert_allclose(hv, srcdiff.hvp(f, _X, _V), rtol=1e-8, atol=1e-10)
