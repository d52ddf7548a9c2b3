"""End to end: linear algebra (runtime/linalg.py) in the programs people write with it — a
Gaussian-process negative log likelihood (Cholesky and solve, or slogdet and solve), ridge
regression, least squares by pinv and lstsq — and every function of np.linalg through grad,
value_and_grad and vjp: finite differences, float32 in / float32 out, the duck array (no host
sync), the tuple results unpacked (``sign, logdet = np.linalg.slogdet(K)``) and indexed
(``np.linalg.slogdet(K)[1]``, ``.logabsdet``)."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .end_to_end import (check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_array_output)
from .helpers import make_function

# A constant matrix (the identity) is an argument, as it would be made once on the device.
PROGRAMS = {
    "gp_cholesky": """
        def f(log_params, X, y, I):
            ls = np.exp(log_params[0])
            var = np.exp(log_params[1])
            noise = np.exp(log_params[2])
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = var * np.exp(-0.5 * sq / ls ** 2) + noise * I
            L = np.linalg.cholesky(K)
            alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
            return 0.5 * y @ alpha + np.sum(np.log(np.diagonal(L))) \\
                + 0.5 * X.shape[0] * np.log(2.0 * np.pi)
        """,
    "gp_unpacked": """
        def f(log_params, X, y, I):
            ls, var, noise = np.exp(log_params)
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            L = np.linalg.cholesky(var * np.exp(-0.5 * sq / ls ** 2) + noise * I)
            alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
            return 0.5 * y @ alpha + np.sum(np.log(np.diagonal(L)))
        """,
    "gp_slogdet": """
        def f(log_params, X, y, I):
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = np.exp(log_params[1]) * np.exp(-0.5 * sq / np.exp(log_params[0]) ** 2) \\
                + np.exp(log_params[2]) * I
            sign, logdet = np.linalg.slogdet(K)
            return 0.5 * y @ np.linalg.solve(K, y) + 0.5 * logdet
        """,
    "gp_slogdet_indexed": """
        def f(log_params, X, y, I):
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = np.exp(log_params[1]) * np.exp(-0.5 * sq / np.exp(log_params[0]) ** 2) \\
                + np.exp(log_params[2]) * I
            return 0.5 * y @ np.linalg.solve(K, y) + 0.5 * np.linalg.slogdet(K)[1]
        """,
    "gp_logabsdet": """
        def f(log_params, X, y, I):
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = np.exp(log_params[1]) * np.exp(-0.5 * sq / np.exp(log_params[0]) ** 2) \\
                + np.exp(log_params[2]) * I
            alpha = np.linalg.solve(K, y[:, None])
            return 0.5 * np.sum(y[:, None] * alpha) + 0.5 * np.linalg.slogdet(K).logabsdet
        """,
}
REGRESSIONS = {
    "ridge": """
        def f(log_lam, X, y, I):
            A = X.T @ X + np.exp(log_lam) * I
            w = np.linalg.solve(A, X.T @ y)
            return np.mean((X @ w - y) ** 2) + np.sum(w ** 2)
        """,
    "least_squares_pinv": """
        def f(log_lam, X, y, I):
            w = np.linalg.pinv(X) @ y
            return np.sum((X @ w - y) ** 2) + np.exp(log_lam[0]) * np.sum(w ** 2)
        """,
    "least_squares_lstsq": """
        def f(log_lam, X, y, I):
            w, residuals, rank, s = np.linalg.lstsq(X, y, rcond=None)
            return np.exp(log_lam[0]) * np.sum(w ** 2) + np.sum(residuals) + np.sum(s)
        """,
    "least_squares_lstsq_indexed": """
        def f(log_lam, X, y, I):
            w = np.linalg.lstsq(X, y, rcond=None)[0]
            return np.sum((X @ w - y) ** 2) * np.exp(log_lam[0]) + np.sum(w ** 3)
        """,
}
# one matrix A (4 x 3) and a matrix B (3 x 3); I the 3 x 3 identity
FUNCTIONS = {
    "inv_det": """
        def f(A, B, I):
            M = B + 3.0 * I
            return np.sum(np.linalg.inv(M) * B) * np.linalg.det(M) + np.linalg.det(B)
        """,
    "matrix_power": """
        def f(A, B, I):
            M = 0.3 * B + I
            return np.sum(np.linalg.matrix_power(M, 3) * B) + np.sum(np.linalg.matrix_power(M, -2))
        """,
    "solve_batched": """
        def f(A, B, I):
            Ms = np.stack([B + 3.0 * I, B.T + 4.0 * I])
            return np.sum(np.linalg.solve(Ms, A.T) ** 2) + np.sum(np.linalg.solve(Ms, A[0]) ** 3)
        """,
    "cholesky": """
        def f(A, B, I):
            L = np.linalg.cholesky(A.T @ A + I)
            U = np.linalg.cholesky(B @ B.T + I, upper=True)
            return np.sum(L * B) + np.sum(U ** 3)
        """,
    "eigh": """
        def f(A, B, I):
            w, v = np.linalg.eigh(A.T @ A + I)
            return np.sum(w ** 2) + np.sum(v[:, 0] ** 3) + np.sum(np.linalg.eigvalsh(B + B.T) ** 3)
        """,
    "eigh_upper_indexed": """
        def f(A, B, I):
            pair = np.linalg.eigh(B @ B.T + I, UPLO="U")
            return np.sum(pair[0] * B[0]) + np.sum(pair[1][0] * B[1])
        """,
    "qr": """
        def f(A, B, I):
            q, r = np.linalg.qr(A)
            q2, r2 = np.linalg.qr(A.T)
            return np.sum(q * A) + np.sum(r ** 2 * B) + np.sum(q2 ** 3) + np.sum(r2 * A.T)
        """,
    "svd": """
        def f(A, B, I):
            u, s, vh = np.linalg.svd(A, full_matrices=False)
            return np.sum(s ** 2) + np.sum(u[:, 0] * A[:, 1]) + np.sum(vh * B) \\
                + np.sum(np.linalg.svd(B, compute_uv=False) ** 3)
        """,
    "norms": """
        def f(A, B, I):
            return np.linalg.norm(A) + np.linalg.norm(A, "nuc") + np.linalg.norm(A[0], np.inf) \\
                + np.sum(np.linalg.norm(A, axis=1)) + np.linalg.norm(B, 2) \\
                + np.linalg.norm(A, ord=1) + np.sum(np.linalg.norm(A, 3, axis=0, keepdims=True))
        """,
    "products": """
        def f(A, B, I):
            return np.vdot(A[:3], B) + np.sum(np.tensordot(A, B, axes=([1], [0])) ** 2) \\
                + np.sum(np.tensordot(B, B.T, axes=2)) + np.sum(np.kron(B, A[0]) ** 2) \\
                + np.sum(np.cross(A[:, None, :], B) ** 2) + np.sum(np.einsum("ij,jk->ik", A, B))
        """,
    "einsum_one_operand": """
        def f(A, B, I):
            return np.einsum("ii", B) + np.sum(np.einsum("ii->i", B) ** 3) \
                + np.sum(np.einsum("ji", A) * A.T) + np.sum(np.einsum("ij->j", A) ** 2) \
                + np.sum(np.einsum("...ii->...i", B[None] * A[:, :, None]) ** 2)
        """,
    "einsum_two_operands": """
        def f(A, B, I):
            return np.sum(np.einsum("ij,jk", A, B) ** 2) + np.einsum("i,i", A[0], B[1]) \
                + np.sum(np.einsum("...ij,...jk->...ik", A[None], B) ** 3) \
                + np.sum(np.einsum("ij,kj->ik", A, B) * A) + np.einsum("ii,ij->j", B, B)[0]
        """,
    "einsum_three_operands": """
        def f(A, B, I):
            return np.sum(np.einsum("ij,jk,lk->il", A, B, A) ** 2) \
                + np.einsum("i,jk,k->", A[0], B, A[1]) \
                + np.sum(np.einsum("ij,jk,kl,lm", A, B, B, B.T) * A)
        """,
}


def _programs_args(seed=0):
    rng = np.random.default_rng(seed)
    return (np.array([0.1, -0.2, -1.0]), rng.standard_normal((6, 2)), rng.standard_normal(6),
            np.eye(6))


def _regressions_args(seed=0):
    rng = np.random.default_rng(seed)
    return (np.array([-1.0]), rng.standard_normal((6, 3)), rng.standard_normal(6), np.eye(3))


def _functions_args(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 3)), rng.standard_normal((3, 3)) + 2.0 * np.eye(3), np.eye(3)


CASES = [*(pytest.param(PROGRAMS[n], _programs_args, (0, 1, 2), id=n) for n in PROGRAMS),
         *(pytest.param(REGRESSIONS[n], _regressions_args, (0, 1, 2), id=n) for n in REGRESSIONS),
         *(pytest.param(FUNCTIONS[n], _functions_args, (0, 1), id=n) for n in FUNCTIONS)]


@pytest.mark.parametrize("source, make_args, wrt", CASES)
def test_grad_matches_finite_differences(source, make_args, wrt):
    check_grad_by_finite_differences(make_function(source, "f"), make_args(), wrt)


@pytest.mark.parametrize("source, make_args, wrt", CASES)
def test_value_and_grad(source, make_args, wrt):
    check_value_and_grad(make_function(source, "f"), make_args(1), wrt)


@pytest.mark.parametrize("source, make_args, wrt", CASES)
def test_float32_in_float32_out(source, make_args, wrt):
    check_float32_gradients(make_function(source, "f"), make_args(), wrt, rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("source, make_args, wrt", CASES)
def test_gradients_on_duck_arrays(source, make_args, wrt):
    if ".logabsdet" in source:
        pytest.skip("CuPy's slogdet (and the duck's) returns a plain tuple: no .logabsdet")
    check_gradients_on_duck_arrays(make_function(source, "f"), make_args(), wrt, rtol=1e-10,
                                   atol=1e-12)


# ----- vjp of array outputs -----

ARRAY_OUTPUTS = {
    "inv": "def f(A, B):\n    return np.linalg.inv(B) @ A.T\n",
    "solve": "def f(A, B):\n    return np.linalg.solve(B, A.T) + np.linalg.solve(B, A[0])[:, None]\n",
    "cholesky": "def f(A, B):\n    return np.linalg.cholesky(A.T @ A + B @ B.T)\n",
    "eigh": "def f(A, B):\n    w, v = np.linalg.eigh(B @ B.T + A.T @ A)\n    return v * w\n",
    "qr": "def f(A, B):\n    q, r = np.linalg.qr(A @ B)\n    return q[:3] * r\n",
    "svd": "def f(A, B):\n    u, s, vh = np.linalg.svd(A @ B, full_matrices=False)\n"
           "    return u[:3] * s + vh\n",
    "pinv": "def f(A, B):\n    return np.linalg.pinv(A @ B)\n",
    "norm_rows": "def f(A, B):\n    return np.linalg.norm(A @ B, axis=1) + np.linalg.norm(B, 'fro')\n",
    "kron_cross": "def f(A, B):\n    return np.kron(A[0], B)[:, ::3] + np.cross(A[1:], B)\n",
    "einsum": "def f(A, B):\n    return np.einsum('ij,jk,kl->il', A, B, B) + np.einsum('...j,jk', A, B)"
              " + np.einsum('ii->i', B)\n",
}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
def test_vjp_of_array_outputs(name):
    rng = np.random.default_rng(2)
    args = rng.standard_normal((4, 3)), rng.standard_normal((3, 3)) + 2.0 * np.eye(3)
    check_vjp_of_array_output(make_function(ARRAY_OUTPUTS[name], "f"), args, rng, rtol=1e-10,
                              atol=1e-12)


# ----- what users read -----


def test_the_unpacked_slogdet_reads_as_written():
    """value_and_grad: numpy's call, as written; grad: the same call sharing its matrix's
    factor with the solve (transforms/factors.py). The sign has no adjoint either way."""
    fn = make_function(PROGRAMS["gp_slogdet"], "f")
    source = srcdiff.value_and_grad(fn).source
    assert "sign, logdet = np.linalg.slogdet(K)" in source
    assert "rt.slogdet_adjoint((None, dlogdet), K)" in source
    source = srcdiff.grad(fn).source
    assert "sign, logdet = rt.slogdet_spd(K, factor=K_factor)" in source
    assert "rt.slogdet_spd_adjoint((None, dlogdet), K, factor=K_factor)" in source


def test_python_float_arguments_get_float_gradients():
    fn = make_function("""
        def f(lam, X, y, I):
            w = np.linalg.solve(X.T @ X + lam * I, X.T @ y)
            return np.linalg.norm(w) + np.linalg.det(X.T @ X + lam * I)
        """, "f")
    _, X, y, I = _regressions_args()
    grad = srcdiff.grad(fn)(0.5, X, y, I)
    assert isinstance(grad, float)
    check_grad(fn, (0.5, X, y, I), (grad,), argnums=(0,))


# ----- einsum: any number of operands; what its rule cannot read is refused before it runs -----


def test_einsum_of_three_operands():
    """An explicit output: two products (the canonical stage's pairs); an implicit one: the
    einsum and its rule, one adjoint per operand."""
    fn = make_function("def f(A, B):\n    return np.sum(np.einsum('ij,jk,lk->il', A, B, A))\n")
    a, b = _functions_args()[:2]
    check_grad(fn, (a, b), srcdiff.grad(fn, wrt=(0, 1))(a, b))
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "einsum" not in source.split("# adjoint of")[0] and "einsum_adjoint" not in source
    fn = make_function("def f(A, B):\n    return np.sum(np.einsum('ij,jk,lk', A, B, A))\n")
    check_grad(fn, (a, b), srcdiff.grad(fn, wrt=(0, 1))(a, b))
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "dA, dB, _dA = rt.einsum_adjoint(d_t1, A, B, A, subscripts='ij,jk,lk')" in source


def test_einsum_subscripts_from_a_global_and_optimize():
    fn = make_function("""
        SPEC = "ij,jk,kl->il"

        def f(A, B):
            return np.sum(np.einsum(SPEC, A, B, B, optimize=True) ** 2)
        """, "f")
    a, b = _functions_args()[:2]
    check_grad(fn, (a, b), srcdiff.grad(fn, wrt=(0, 1))(a, b))


def test_einsum_as_a_value_goes_through_its_rule():
    fn = make_function("""
        def f(A, B, product):
            return np.sum(product("ij,jk,lk->il", A, B, A) ** 2)
        """, "f")
    a, b = _functions_args()[:2]
    check_grad(fn, (a, b, np.einsum), srcdiff.grad(fn, wrt=(0, 1))(a, b, np.einsum),
               argnums=(0, 1))


@pytest.mark.parametrize("body, message", [
    ("np.einsum(A, [0, 1], B, [1, 2])", "sublist form"),
    ("np.einsum(A, [0, 1], [1])", "sublist form"),
    ("np.einsum('ij,jk->ik', A, B, B)", r"np.einsum\('ij,jk->ik'\) of 3 arrays \(its subscripts name 2\)"),
    ("np.einsum('ij,jk->ik', A, B, dtype=np.float32)", "the argument dtype= of einsum"),
])
def test_einsum_spellings_its_rule_cannot_read_are_refused_at_compile_time(body, message):
    fn = make_function(f"def f(A, B):\n    C = {body}\n    return np.sum(C)\n")
    a, b = _functions_args()[:2]
    with pytest.raises(srcdiff.NotDifferentiableError, match=message) as error:
        srcdiff.grad(fn, wrt=(0, 1)).source  # compiling, before anything runs
    assert body in str(error.value) and "line 6" in str(error.value)


def test_einsum_in_the_sublist_form_of_constants_is_a_constant():
    fn = make_function("""
        def f(A, B):
            return np.sum(np.einsum(B, [0, 1], B, [1, 2]) * A[:3])
        """, "f")
    a, b = _functions_args()[:2]
    check_grad(fn, (a, b), (srcdiff.grad(fn)(a, b),), argnums=(0,))
