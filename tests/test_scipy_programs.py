"""End to end: scipy in the programs people write with it (runtime/scipy_rules.py) — logistic
regression with expit and xlogy, a log-softmax classifier, a Gaussian likelihood with
scipy.stats.norm.logpdf(x, loc=mu, scale=sigma), a Gaussian process with cho_factor and
cho_solve — through grad, value_and_grad and vjp against finite differences; float32; the duck
array where the forward pass runs on it (scipy.special's ufuncs); what is refused; and srcdiff
without scipy (a subprocess in which scipy cannot be imported)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("scipy")

import srcdiff  # noqa: E402
from srcdiff.errors import SrcdiffError  # noqa: E402
from srcdiff.testing import check_grad, check_vjp  # noqa: E402

from .duckarray import HOST_SYNCS, DuckArray, wrap  # noqa: E402
from .helpers import make_function  # noqa: E402

IMPORTS = """
import scipy
import scipy.linalg
import scipy.special
from scipy import stats
from scipy.linalg import cho_factor, cho_solve, expm, solve_triangular
from scipy.special import expit, log_softmax, logsumexp, xlogy
from scipy.stats import multivariate_normal, norm, t
"""

_RNG = np.random.default_rng(7)
X = _RNG.standard_normal((12, 3))
Y01 = (_RNG.random(12) > 0.5).astype(float)
LABELS = np.eye(4)[_RNG.integers(0, 4, 12)]
DATA = 1.5 + 0.7 * _RNG.standard_normal(20)
I12 = np.eye(12)


def fn(source, name="f"):
    return make_function(IMPORTS + textwrap.dedent(source), name=name)


# (name, source, arguments, wrt): each differentiated against finite differences
PROGRAMS = [
    ("logistic_regression", """
        def f(w, b, X, y):
            p = expit(X @ w + b)
            return -np.mean(xlogy(y, p) + xlogy(1.0 - y, 1.0 - p))
        """, (_RNG.standard_normal(3), 0.1, X, Y01), (0, 1)),
    ("logistic_regression_module", """
        def f(w, b, X, y):
            p = scipy.special.expit(X @ w + b)
            return -np.sum(scipy.special.xlogy(y, p) + scipy.special.xlog1py(1.0 - y, -p))
        """, (_RNG.standard_normal(3), 0.1, X, Y01), (0, 1)),
    ("log_softmax_classifier", """
        def f(W, b, X, labels):
            logp = log_softmax(X @ W + b, axis=1)
            return -np.mean(np.sum(labels * logp, axis=1)) + 1e-2 * np.sum(W ** 2)
        """, (_RNG.standard_normal((3, 4)), _RNG.standard_normal(4), X, LABELS), (0, 1)),
    ("logsumexp_classifier", """
        def f(W, X, labels):
            z = X @ W
            return np.mean(logsumexp(z, axis=1) - np.sum(labels * z, axis=1))
        """, (_RNG.standard_normal((3, 4)), X, LABELS), 0),
    ("softmax_attention", """
        def f(q, K, V):
            a = scipy.special.softmax(K @ q / np.sqrt(3.0))
            return np.sum((a @ V) ** 2)
        """, (_RNG.standard_normal(3), _RNG.standard_normal((5, 3)), _RNG.standard_normal((5, 2))),
        (0, 1, 2)),
    ("gaussian_likelihood", """
        def f(mu, sigma, x):
            return -np.sum(norm.logpdf(x, loc=mu, scale=sigma))
        """, (1.2, 0.9, DATA), (0, 1)),
    ("gaussian_likelihood_positional", """
        def f(mu, log_sigma, x):
            return -np.sum(stats.norm.logpdf(x, mu, np.exp(log_sigma)))
        """, (np.array([1.0, 1.4]), np.array([0.1, -0.2]), DATA[:, None]), (0, 1)),
    ("standard_normal_defaults", """
        def f(x):
            return np.sum(norm.logpdf(x) + norm.pdf(x, scale=2.0))
        """, (DATA,), 0),
    ("probit", """
        def f(w, X, y):
            z = X @ w
            return -np.sum(y * norm.logcdf(z) + (1.0 - y) * norm.logsf(z))
        """, (_RNG.standard_normal(3), X, Y01), 0),
    ("normal_cdf_sf", """
        def f(mu, s, x):
            return np.sum(norm.cdf(x, mu, s) ** 2 + norm.sf(x, loc=mu, scale=s))
        """, (0.3, 1.7, DATA), (0, 1)),
    ("student_t_regression", """
        def f(w, log_df, log_scale, X, y):
            r = y - X @ w
            return -np.sum(t.logpdf(r, np.exp(log_df), scale=np.exp(log_scale)))
        """, (_RNG.standard_normal(3), 1.0, -0.3, X, X @ np.ones(3) + _RNG.standard_normal(12)),
        (0, 1, 2)),
    ("multivariate_normal", """
        def f(mean, A, x):
            cov = A @ A.T + np.eye(3)
            return -np.sum(multivariate_normal.logpdf(x, mean=mean, cov=cov))
        """, (_RNG.standard_normal(3), _RNG.standard_normal((3, 3)), X), (0, 1)),
    ("gp_cho_factor", """
        def f(log_params, X, y, I):
            ls, var, noise = np.exp(log_params)
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = var * np.exp(-0.5 * sq / ls ** 2) + noise * I
            c, low = cho_factor(K)
            alpha = cho_solve((c, low), y)
            return 0.5 * y @ alpha + np.sum(np.log(np.diagonal(c)))
        """, (np.array([0.1, 0.2, -1.0]), X, np.sin(X[:, 0]), I12), 0),
    ("gp_cho_factor_lower_kept", """
        def f(log_params, X, y, I):
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = np.exp(log_params[1]) * np.exp(-0.5 * sq / np.exp(log_params[0]) ** 2) \\
                + np.exp(log_params[2]) * I
            factor = cho_factor(K, lower=True)
            alpha = cho_solve(factor, y[:, None])
            return 0.5 * np.sum(y[:, None] * alpha) + np.sum(np.log(np.diagonal(factor[0])))
        """, (np.array([0.1, 0.2, -1.0]), X, np.sin(X[:, 0]), I12), 0),
    ("gp_solve_triangular", """
        def f(log_params, X, y, I):
            sq = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = np.exp(log_params[1]) * np.exp(-0.5 * sq / np.exp(log_params[0]) ** 2) \\
                + np.exp(log_params[2]) * I
            L = np.linalg.cholesky(K)
            v = solve_triangular(L, y, lower=True)
            alpha = solve_triangular(L, v, lower=True, trans="T")
            return 0.5 * np.sum(v ** 2) + 1e-3 * np.sum(alpha) + np.sum(np.log(np.diagonal(L)))
        """, (np.array([0.1, 0.2, -1.0]), X, np.sin(X[:, 0]), I12), 0),
    ("linear_ode_expm", """
        def f(A, t, x0):
            return np.sum((expm(A * t) @ x0) ** 2)
        """, (0.3 * _RNG.standard_normal((3, 3)), 1.5, _RNG.standard_normal(3)), (0, 1)),
    ("special_functions", """
        def f(a, b):
            s = scipy.special.gammaln(a) + scipy.special.digamma(b) + scipy.special.betaln(a, b)
            s = s + scipy.special.polygamma(1, a) + scipy.special.erf(a - b)
            s = s + scipy.special.erfc(b) + scipy.special.i0(b) + scipy.special.i1(a)
            s = s + scipy.special.ive(1.5, a) + scipy.special.beta(a, 0.5)
            s = s + scipy.special.logit(1.0 / (1.0 + a)) + scipy.special.erfinv(0.5 * np.tanh(b))
            return np.sum(s + scipy.special.erfcinv(1.0 + 0.5 * np.tanh(a)) + scipy.special.psi(a))
        """, (_RNG.uniform(0.5, 2.0, 4), _RNG.uniform(0.5, 2.0, 4)), (0, 1)),
]
IDS = [p[0] for p in PROGRAMS]


def _check(f, args, got, wrt):
    argnums = (wrt,) if isinstance(wrt, int) else wrt
    check_grad(f, args, (got,) if isinstance(wrt, int) else got, argnums=argnums,
               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, source, args, wrt", PROGRAMS, ids=IDS)
def test_grad_matches_finite_differences(name, source, args, wrt):
    f = fn(source)
    _check(f, args, srcdiff.grad(f, wrt=wrt)(*args), wrt)


@pytest.mark.parametrize("name, source, args, wrt", PROGRAMS, ids=IDS)
def test_value_and_grad(name, source, args, wrt):
    f = fn(source)
    value, got = srcdiff.value_and_grad(f, wrt=wrt)(*args)
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    _check(f, args, got, wrt)


def test_python_floats_get_float_gradients():
    f = fn(PROGRAMS[IDS.index("gaussian_likelihood")][1])
    dmu, dsigma = srcdiff.grad(f, wrt=(0, 1))(1.2, 0.9, DATA)
    assert type(dmu) is float and type(dsigma) is float


def test_the_generated_source_calls_the_scipy_rules():
    f = fn(PROGRAMS[IDS.index("logistic_regression")][1])
    source = srcdiff.grad(f, wrt=(0, 1)).source
    assert "rt.expit_adjoint(" in source and "rt.xlogy_adjoint(" in source
    g = fn(PROGRAMS[IDS.index("gp_cho_factor")][1])
    source = srcdiff.grad(g).source
    assert "rt.cho_solve_adjoint(" in source and "rt.cho_factor_adjoint(" in source


# ----- vjp of array outputs -----

VJPS = [
    ("scipy.special.erf(x) * y", (3, 2)),
    ("expit(x) + scipy.special.xlogy(y, x * x + 1.0)", (4,)),
    ("log_softmax(x * y, axis=0)", (3, 2)),
    ("scipy.special.softmax(x + y, axis=-1)", (2, 3)),
    ("logsumexp(x * y, axis=1, keepdims=True)", (2, 3)),
    ("norm.logpdf(x, loc=y, scale=2.0)", (5,)),
    ("norm.cdf(x, y, 1.5)", (2, 2)),
    ("solve_triangular(np.tril(x) + 3.0 * np.eye(3), y, lower=True)", (3, 3)),
    ("expm(0.3 * x) @ y", (3, 3)),
]


@pytest.mark.parametrize("expr, shape", VJPS, ids=[e for e, _ in VJPS])
def test_vjp_of_array_outputs(expr, shape):
    f = fn(f"def f(x, y):\n    return {expr}\n")
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(shape), rng.uniform(0.5, 1.5, shape)
    out, pullback = srcdiff.vjp(f, x, y)
    np.testing.assert_allclose(out, f(x, y), rtol=1e-12)
    v = rng.standard_normal(np.shape(out))
    check_vjp(f, (x, y), pullback(v), cotangent=v)


# ----- float32 in, float32 out -----


@pytest.mark.parametrize("name", ["logistic_regression", "log_softmax_classifier",
                                  "gaussian_likelihood_positional", "gp_cho_factor",
                                  "student_t_regression", "multivariate_normal"])
def test_float32_in_float32_out(name):
    _, source, args, wrt = PROGRAMS[IDS.index(name)]
    f = fn(source)
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)
    got = srcdiff.grad(f, wrt=wrt)(*args32)
    want = srcdiff.grad(f, wrt=wrt)(*args)
    for g32, g64, i in zip(*((got, want) if not isinstance(wrt, int) else ((got,), (want,))),
                           (wrt,) if isinstance(wrt, int) else wrt):
        if isinstance(args32[i], np.ndarray):
            assert g32.dtype == np.float32, f"argument {i}: {g32.dtype}"
        np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3)


# ----- the duck array: scipy.special's ufuncs dispatch to it, and so do their rules -----

DUCK = """
    def f(w, X, y):
        p = scipy.special.expit(X @ w)
        z = scipy.special.erf(w) + scipy.special.gammaln(w * w + 1.0)
        return -np.sum(scipy.special.xlogy(y, p) + scipy.special.xlog1py(1.0 - y, -p)) + np.sum(z)
"""


def test_gradients_on_duck_arrays():
    f = fn(DUCK)
    args = (_RNG.standard_normal(3), X, Y01)
    want = srcdiff.grad(f)(*args)
    duck = tuple(wrap(a) for a in args)
    HOST_SYNCS.reset()
    got = srcdiff.grad(f)(*duck)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(got) is DuckArray
    np.testing.assert_allclose(got.get(), want, rtol=1e-12)


# ----- what is refused, at compile time, with the line -----

REFUSED = [
    ("scipy.special.polygamma(x[0], x)", "polygamma"),  # the order n is a constant
    ("scipy.special.ive(x[0], x)", "ive"),  # so is v
    ("logsumexp(x, b=x)", "logsumexp"),  # and the weights b
    ("logsumexp(x, return_sign=True)[0]", "return_sign"),
]


@pytest.mark.parametrize("expr, word", REFUSED, ids=[e for e, _ in REFUSED])
def test_a_varied_constant_is_refused(expr, word):
    f = fn(f"def f(x):\n    return np.sum({expr})\n")
    with pytest.raises(SrcdiffError, match=word):
        srcdiff.grad(f)(np.array([1.0, 2.0]))


# ----- scipy stays optional -----


def _python(code: str, tmp_path) -> str:
    """The output of ``code``, run as a script (srcdiff reads the source of its functions)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_import_srcdiff_does_not_import_scipy(tmp_path):
    out = _python("""
        import sys
        import numpy as np
        import srcdiff
        srcdiff.grad(lambda x: np.sum(np.tanh(x)))(np.ones(3))
        print("scipy" in sys.modules)
        """, tmp_path)
    assert out.split() == ["False"]


def test_srcdiff_works_without_scipy(tmp_path):
    out = _python("""
        import sys
        sys.modules["scipy"] = None  # import scipy raises ImportError, as if not installed
        import numpy as np
        import srcdiff
        from srcdiff import runtime
        print(srcdiff.grad(lambda x: np.sum(x ** 2))(np.arange(3.0)))
        print(hasattr(runtime, "expit_adjoint"))
        """, tmp_path)
    assert out.split() == ["[0.", "2.", "4.]", "False"]


def test_rules_register_once_scipy_is_imported(tmp_path):
    out = _python("""
        from srcdiff import runtime
        print(len(runtime.RULES), hasattr(runtime, "expit_adjoint"))
        import scipy.special
        print(runtime.rule_for(scipy.special.expit).name, runtime.expit_adjoint.__name__)
        """, tmp_path)
    first, second = out.splitlines()
    assert first.split()[1] == "False" and second.split() == ["expit_adjoint", "expit_adjoint"]
