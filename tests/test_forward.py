"""Forward mode and second order (srcdiff/forward.py, transforms/tangent.py) on the corpus and on
programs with loops, branches, helpers and containers: tangents against finite differences and
against reverse mode, Hessians against finite differences of the gradient, Jacobians both ways.
"""

import numpy as np
import optree
import pytest

import srcdiff
from srcdiff.errors import GradientTypeError, NotDifferentiableError, SrcdiffError
from srcdiff.runtime import trees
from srcdiff.testing import check_jvp, numeric_jvp

from .corpus import CASES
from .forward_programs import PROGRAMS, VECTOR_PROGRAMS

ALL = {**CASES, **PROGRAMS}


def _float(x) -> bool:
    return isinstance(x, float) or getattr(x, "dtype", np.dtype(int)).kind == "f" or \
        trees.is_container(x)


def _random_like(x, rng):
    return optree.tree_map(lambda leaf: float(rng.normal()) if isinstance(leaf, float) else
                           rng.normal(size=np.shape(leaf)), x, namespace=trees.NAMESPACE)


def _vdot(a, b) -> float:
    return sum(float(np.sum(np.asarray(u) * np.asarray(v))) for u, v in zip(
        optree.tree_leaves(a, namespace=trees.NAMESPACE),
        optree.tree_leaves(b, namespace=trees.NAMESPACE)))


def _moved(args, tangents, eps):
    return [optree.tree_map(lambda a, t: a + eps * t, a, t, namespace=trees.NAMESPACE)
            if t is not None else a for a, t in zip(args, tangents)]


def _directions(fn, make_args, wrt, seed=0):
    rng = np.random.default_rng(seed)
    args = make_args()
    tangents = [_random_like(a, rng) if i in wrt and _float(a) else None
                for i, a in enumerate(args)]
    return args, tangents


@pytest.mark.parametrize("name", sorted(set(ALL) - {"no_grad_block"}))  # its constants differ
def test_jvp_matches_finite_differences(name):
    fn, make_args, wrt = ALL[name]
    args, tangents = _directions(fn, make_args, wrt)
    out, tangent = srcdiff.jvp(fn, args, tangents)
    np.testing.assert_allclose(out, fn(*args), rtol=1e-12)
    # the oracle along the direction: d/ds fn(args + s * tangents) at s = 0
    check_jvp(lambda s: fn(*_moved(args, tangents, s)), (0.0,), (1.0,), tangent)


@pytest.mark.parametrize("name", sorted({**ALL, **VECTOR_PROGRAMS}))
def test_jvp_is_the_transpose_of_vjp(name):
    fn, make_args, wrt = {**ALL, **VECTOR_PROGRAMS}[name]
    args, tangents = _directions(fn, make_args, wrt, seed=1)
    out, tangent = srcdiff.jvp(fn, args, tangents)
    u = _random_like(out, np.random.default_rng(2))
    _, pullback = srcdiff.vjp(fn, *args)
    grads = pullback(u)
    expected = sum(_vdot(g, t) for g, t in zip(grads, tangents) if t is not None and g is not None)
    np.testing.assert_allclose(_vdot(u, tangent), expected, rtol=1e-9, atol=1e-12)


def _first_array_wrt(fn, make_args, wrt):
    args = make_args()
    for i in wrt:
        if isinstance(args[i], np.ndarray) and args[i].size <= 12:
            return args, i
    return args, None


# the programs with a small array to take a Hessian in (no_grad's constants move in FD)
WITH_ARRAY = sorted(name for name in set(ALL) - {"no_grad_block"}
                    if _first_array_wrt(*ALL[name])[1] is not None)


@pytest.mark.parametrize("name", WITH_ARRAY)
def test_hessian_matches_finite_differences_of_the_gradient(name):
    fn, make_args, wrt = ALL[name]
    args, p = _first_array_wrt(fn, make_args, wrt)
    hess = srcdiff.hessian(fn, wrt=p)(*args)
    x = args[p]
    assert hess.shape == x.shape + x.shape
    gradient = srcdiff.grad(fn, wrt=p)
    for k in range(x.size):
        unit = np.zeros(x.size)
        unit[k] = 1.0
        unit = unit.reshape(x.shape)
        column = numeric_jvp(gradient, args, [unit if i == p else None for i in range(len(args))])
        np.testing.assert_allclose(hess.reshape(x.size, x.size)[:, k], column.reshape(-1),
                                   rtol=1e-5, atol=1e-6)
    v = np.random.default_rng(4).normal(size=x.shape)
    rest = [a for i, a in enumerate(args) if i != p]
    if p == 0:
        np.testing.assert_allclose(srcdiff.hvp(fn, x, v, *rest),
                                   (hess.reshape(x.size, x.size) @ v.reshape(-1)).reshape(x.shape),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(VECTOR_PROGRAMS) + ["three_tanh", "shapes"])
def test_jacobians_forward_and_reverse_agree_with_finite_differences(name):
    fn, make_args, wrt = {**CASES, **VECTOR_PROGRAMS}[name]
    args = make_args()
    p = wrt[0]
    forward, reverse = srcdiff.jacfwd(fn, wrt=p)(*args), srcdiff.jacrev(fn, wrt=p)(*args)
    out, x = np.asarray(fn(*args)), args[p]
    assert forward.shape == reverse.shape == out.shape + x.shape
    np.testing.assert_allclose(forward, reverse, rtol=1e-10, atol=1e-12)
    for k in range(x.size):
        unit = np.zeros(x.size)
        unit[k] = 1.0
        column = numeric_jvp(fn, args, [unit.reshape(x.shape) if i == p else None
                                        for i in range(len(args))])
        np.testing.assert_allclose(forward.reshape(out.size, x.size)[:, k], column.reshape(-1),
                                   rtol=1e-5, atol=1e-6)


def test_jacobian_of_a_pytree_argument_has_its_structure():
    fn, make_args, _ = PROGRAMS["pytree"]
    params, x = make_args()
    jac = srcdiff.jacfwd(fn)(params, x)
    assert set(jac) == {"W", "b"} and jac["W"].shape == (3, 2) and jac["b"].shape == (2,)
    grads = srcdiff.grad(fn)(params, x)
    np.testing.assert_allclose(jac["W"], grads["W"], rtol=1e-10)
    np.testing.assert_allclose(srcdiff.jacrev(fn)(params, x)["b"], grads["b"], rtol=1e-10)


def test_make_jvp_source_reads_as_tangent_code():
    fn = PROGRAMS["rnn"][0]
    source = srcdiff.make_jvp(fn, wrt=("x", "W")).source
    assert "def rnn_jvp(x, W, n, dx, dW):" in source
    assert "# tangent of: h = cell(W @ h, 2.0) + x  (line" in source
    assert "d_t1 = dW @ h_2 + W @ dh_2" in source
    assert "cell_jvp = rt.tangent_of(cell, ('a',))" in source
    assert source.rstrip().endswith("return _out, d_out")


def test_jvp_of_tuple_and_dict_outputs():
    def f(x):
        return {"s": np.sin(x), "pair": (x * x, 2.0)}

    x, v = np.array([0.3, 1.2]), np.array([1.0, -2.0])
    out, tangent = srcdiff.jvp(f, (x,), (v,))
    np.testing.assert_allclose(tangent["s"], np.cos(x) * v)
    np.testing.assert_allclose(tangent["pair"][0], 2 * x * v)
    assert float(tangent["pair"][1]) == 0.0


def test_an_argument_without_a_tangent_is_a_constant():
    fn, make_args, _ = PROGRAMS["rnn"]
    x, W, n = make_args()
    _, only_x = srcdiff.jvp(fn, (x, W, n), (np.ones(3), None, None))
    _, both = srcdiff.jvp(fn, (x, W, n), (np.ones(3), np.zeros((3, 3)), None))
    np.testing.assert_allclose(only_x, both, rtol=1e-12)


# ----- what forward mode refuses, and how -----


def test_complex_arguments_are_refused():
    def f(z):
        return np.sin(z)

    with pytest.raises(GradientTypeError, match="real values"):
        srcdiff.jvp(f, (np.array([1j]),), (np.array([1.0 + 0j]),))


def test_a_tangent_of_the_wrong_shape_is_refused():
    def f(x):
        return np.sum(x)

    with pytest.raises(SrcdiffError, match="structure and shapes"):
        srcdiff.jvp(f, (np.ones(3),), (np.ones(2),))


def test_iterating_over_a_differentiated_array():
    def f(xs):
        total = 0.0
        for row in xs:
            total = total + np.sum(row * np.sin(row))
        return total

    xs, v = np.random.default_rng(5).normal(size=(2, 3, 2))
    _, tangent = srcdiff.jvp(f, (xs,), (v,))
    check_jvp(f, (xs,), (v,), tangent)


def test_a_function_known_only_when_it_runs():
    def f(x, act):
        return np.sum(act(x) * x)

    def softplus(z):
        return np.logaddexp(0.0, z)

    x, v = np.array([0.3, -1.0, 2.0]), np.array([1.0, 0.5, -0.5])
    _, tangent = srcdiff.jvp(f, (x, softplus), (v, None))
    check_jvp(lambda x: f(x, softplus), (x,), (v,), tangent)


class _Model:
    def energy(self, x):
        return np.sum(x * x)


def test_a_method_of_an_object_is_refused_in_forward_mode_at_its_line():
    def f(x, model):
        return model.energy(x)

    with pytest.raises(SrcdiffError, match="a method of an object") as info:
        srcdiff.jvp(f, (np.ones(2), _Model()), (np.ones(2), None))
    assert "model.energy(x)" in str(info.value)


def doubled(x):  # a primitive of the user's, with an adjoint rule and no tangent rule
    return 2.0 * x


@srcdiff.adjoint(doubled)
def _doubled_adjoint(g, x):
    return 2.0 * g


def user_primitive(x):
    return np.sum(doubled(x))


def test_a_primitive_without_a_tangent_rule_is_refused_at_its_line():
    with pytest.raises(NotDifferentiableError, match="no tangent rule") as info:
        srcdiff.jvp(user_primitive, (np.ones(2),), (np.ones(2),))
    assert "doubled(x)" in str(info.value)


# ----- the generated source, reviewed (tests/golden/; SRCDIFF_UPDATE_GOLDEN=1 to accept) -----


@pytest.mark.parametrize("name, make", [
    ("jvp_rnn", lambda: srcdiff.make_jvp(PROGRAMS["rnn"][0], wrt=("x", "W")).source),
    ("hvp_logistic", lambda: srcdiff.make_hvp(PROGRAMS["logistic"][0]).source),
])
def test_generated_forward_source_matches_golden(name, make):
    import os

    from .test_golden import GOLDEN_DIR, _stable

    source = _stable(make())
    path = GOLDEN_DIR / f"{name}.py"
    if os.environ.get("SRCDIFF_UPDATE_GOLDEN"):
        path.write_text(source)
    assert source == path.read_text(), f"generated source of {name} changed; see {path}"


def test_make_hvp_agrees_with_hvp():
    fn, make_args, _ = PROGRAMS["logistic"]
    w, X, y = make_args()
    v = np.random.default_rng(9).normal(size=w.shape)
    np.testing.assert_allclose(srcdiff.make_hvp(fn)(w, X, y, v=v), srcdiff.hvp(fn, w, v, X, y),
                               rtol=1e-12)


def test_newton_cg_example_converges():
    import re

    from .test_examples import run_example

    output = run_example("newton_cg.py")
    losses = [float(v) for v in re.findall(r"step \d+: loss ([\d.]+)", output)]
    assert len(losses) >= 4 and all(a > b for a, b in zip(losses, losses[1:]))
    assert float(re.search(r"gradient norm at the optimum ([\d.e+-]+)", output).group(1)) < 1e-6
    assert float(re.search(r"finite differences of the gradient: ([\d.e+-]+)", output).group(1)) \
        < 1e-6
    optimum = float(re.search(r"optimum loss ([\d.]+)", output).group(1))
    # the optimum independently: the hand-written gradient of the loss vanishes there
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "newton_cg", Path(__file__).parent.parent / "examples" / "newton_cg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    X, y = module.data()
    w = np.zeros(X.shape[1])
    for _ in range(30):  # Newton with the Hessian written by hand
        p = 1.0 / (1.0 + np.exp(-X @ w))
        g = X.T @ (p - y) / len(y) + 0.02 * w
        H = (X.T * (p * (1 - p))) @ X / len(y) + 0.02 * np.eye(len(w))
        w = w - np.linalg.solve(H, g)
    np.testing.assert_allclose(optimum, module.loss(w, X, y), rtol=1e-9)
    v = np.arange(1.0, len(w) + 1)
    np.testing.assert_allclose(srcdiff.hvp(module.loss, w, v, X, y), H @ v, rtol=1e-9)


# ----- derivatives of functions that call srcdiff.grad functions -----


def energy(x, k):
    return np.sum(k * np.cos(x) + 0.5 * x ** 4)


forces = srcdiff.grad(energy)  # in x


def force_norm(x, k):
    f = forces(x, k)
    return np.sum(f * f)


def logistic_loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z)


both = srcdiff.grad(logistic_loss, wrt=("w", "X"))


def gradient_norms(w, X, y):
    dw, dX = both(w, X, y)
    return np.sum(dw * dw) + 0.5 * np.sum(dX * dX)


def twice(x, k):
    return np.sum(srcdiff.grad(force_norm)(x, k) * x)


def _case(name):
    rng = np.random.default_rng(11)
    if name == "gradient_norms":
        return gradient_norms, (rng.normal(size=3), rng.normal(size=(6, 3)),
                                (rng.normal(size=6) > 0) * 1.0)
    return {"force_norm": force_norm, "twice": twice}[name], (rng.normal(size=4), 1.5)


@pytest.mark.parametrize("name", ["force_norm", "gradient_norms"])
def test_grad_of_a_function_that_calls_grad(name):
    fn, args = _case(name)
    for p in range(len(args) if name == "gradient_norms" else 2):  # mixed partials too
        if not _float(args[p]):
            continue
        value, got = srcdiff.value_and_grad(fn, wrt=p)(*args)
        np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
        from srcdiff.testing import check_grad

        check_grad(fn, args, (got,), argnums=(p,), rtol=1e-5, atol=1e-6)


def test_a_third_derivative_is_refused_at_its_line():
    fn, args = _case("twice")
    with pytest.raises(NotDifferentiableError, match="a third derivative") as info:
        srcdiff.grad(fn)(*args)
    assert "test_forward.py" in info.value.filename and "def force_norm" in str(info.value)


def test_vjp_and_jvp_of_a_function_that_calls_grad():
    x, k = np.array([0.4, -1.1, 2.0]), 1.5

    def field(x, k):
        return forces(x, k) * 2.0

    out, pullback = srcdiff.vjp(field, x, k)
    u = np.array([1.0, -2.0, 0.5])
    from srcdiff.testing import check_vjp

    check_vjp(field, (x, k), pullback(u), cotangent=u)
    v = np.array([0.3, 0.2, -1.0])
    _, tangent = srcdiff.jvp(field, (x, k), (v, 0.5))
    check_jvp(field, (x, k), (v, 0.5), tangent)


def _gradient_norm(fn, p, arity):
    """``g(*args) = |∇_p fn(*args)|²`` with ``arity`` named parameters (srcdiff reads it)."""
    d = srcdiff.grad(fn, wrt=p)
    if arity == 1:
        def g(a):
            return np.sum(d(a) ** 2)
    elif arity == 2:
        def g(a, b):
            return np.sum(d(a, b) ** 2)
    elif arity == 3:
        def g(a, b, c):
            return np.sum(d(a, b, c) ** 2)
    else:
        def g(a, b, c, e):
            return np.sum(d(a, b, c, e) ** 2)
    return g


SECOND = sorted(name for name in set(ALL) - {"no_grad_block", "pytree"}
                if len(ALL[name][1]()) <= 4 and _first_array_wrt(*ALL[name])[1] is not None)


@pytest.mark.parametrize("name", SECOND)
def test_grad_of_grad_on_the_corpus(name):
    fn, make_args, wrt = ALL[name]
    args, p = _first_array_wrt(fn, make_args, wrt)
    g = _gradient_norm(fn, p, len(args))
    from srcdiff.testing import check_grad

    check_grad(g, args, (srcdiff.grad(g, wrt=p)(*args),), argnums=(p,), rtol=1e-5, atol=1e-6)


# ----- complex values inside a real function (np.fft) -----


def spectrum_product(x, w):
    X = np.fft.fft(x)
    Y = np.fft.fft(w) * X + 0.5 * X * X
    return np.sum(np.real(np.fft.ifft(np.exp(0.1 * Y))) ** 2)


def magnitude(x):
    return np.sum(np.abs(np.fft.rfft(x)))


def test_complex_values_through_linear_and_holomorphic_operations():
    rng = np.random.default_rng(21)
    x, w = rng.normal(size=6), rng.normal(size=6)
    v, u = rng.normal(size=6), rng.normal(size=6)
    _, tangent = srcdiff.jvp(spectrum_product, (x, w), (v, u))
    check_jvp(spectrum_product, (x, w), (v, u), tangent)


def test_a_non_holomorphic_function_of_a_complex_value_is_refused_in_forward_mode():
    # |z| has no complex derivative: the real rule's formula would give a wrong tangent
    with pytest.raises(NotDifferentiableError, match="may be complex") as info:
        srcdiff.jvp(magnitude, (np.ones(4),), (np.ones(4),))
    assert "np.abs(np.fft.rfft(x))" in str(info.value)


# ----- README's blocks run as written -----


def _readme_blocks(section: str) -> list[str]:
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    text = readme.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _run_block(code: str, name: str, namespace: dict) -> None:
    import linecache

    # the block's own lines, for srcdiff to read its functions (as IPython keeps a cell's)
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    exec(compile(code, name, "exec"), namespace)


def test_the_readme_forward_mode_blocks_run_and_agree(capsys):
    first, source, composed = _readme_blocks("Forward mode and second order")
    namespace: dict = {}
    _run_block(first, "<README.md: forward mode>", namespace)
    printed = capsys.readouterr().out
    for line in source.strip().splitlines():
        assert line.strip() in printed, f"README shows a line jvp no longer writes: {line}"
    x, W, v = namespace["x"], namespace["W"], namespace["v"]
    loss = namespace["loss"]
    check_jvp(loss, (x, W), (v, np.zeros((3, 3))), namespace["tangent"])
    hess = srcdiff.hessian(loss)(x, W)
    np.testing.assert_allclose(srcdiff.hvp(loss, x, v, W), hess @ v, rtol=1e-10)
    np.testing.assert_allclose(srcdiff.hvp(loss, x, v, W), [0.1413, 0.0, 0.0], atol=1e-4)
    namespace = {"np": np, "srcdiff": srcdiff}
    _run_block(composed, "<README.md: grad of grad>", namespace)
    from srcdiff.testing import check_grad

    args = (np.array([0.4, -1.1]), 1.5)
    check_grad(namespace["force_norm"], args,
               (srcdiff.grad(namespace["force_norm"])(*args),), argnums=(0,))


# ----- one math, many spellings: the same tangent, Hessian and second derivative -----

from .forward_programs import SPELLINGS  # noqa: E402


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_spellings_of_least_squares_agree_in_forward_mode_and_second_order(fn):
    rng = np.random.default_rng(31)
    w, X, y = rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=6)
    v = rng.normal(size=3)
    out, tangent = srcdiff.jvp(fn, (w, X, y), (v, None, None))
    check_jvp(lambda w: fn(w, X, y), (w,), (v,), tangent)
    hand = 2.0 * X.T @ X / len(y)  # the Hessian of least squares, by hand
    np.testing.assert_allclose(srcdiff.hessian(fn)(w, X, y), hand, rtol=1e-10)
    np.testing.assert_allclose(srcdiff.hvp(fn, w, v, X, y), hand @ v, rtol=1e-10)
    np.testing.assert_allclose(srcdiff.jacfwd(fn)(w, X, y), srcdiff.grad(fn)(w, X, y),
                               rtol=1e-10)
    g = _gradient_norm(fn, 0, 3)  # grad of grad: d|grad|^2/dw = 2 H grad
    np.testing.assert_allclose(srcdiff.grad(g)(w, X, y),
                               2.0 * hand @ srcdiff.grad(fn)(w, X, y), rtol=1e-9)


def scaled_identity(x):
    return x * 1.0 + 0.0


def test_a_tangent_is_never_the_callers_tangent_itself():
    """The tangent of x * 1.0 + 0.0 is the tangent passed in: jvp hands back a copy, so
    that changing it in place leaves the caller's tangent as it was."""
    x, v = np.ones(3), np.arange(3.0)
    value, tangent = srcdiff.jvp(scaled_identity, (x,), (v,))
    assert tangent is not v and not np.shares_memory(tangent, v)
    np.testing.assert_array_equal(tangent, v)
    tangent *= 2.0
    np.testing.assert_array_equal(v, np.arange(3.0))


C23 = np.array([[0.2, -0.4, 0.6], [-0.1, 0.3, 0.5]])
C3 = np.array([0.5, -0.25, 0.75])


def branch_of_constants(u):
    """Second-order fuzzer seed 119 (crashed: IndexError in the tangent pass): one branch
    returns a product of constants, so its target is varied only by the other branch."""
    for i in range(u.shape[0]):
        h = np.concatenate([u, u[0:1]])
    if np.sum(u) < 0.0:
        return np.einsum("ij,j->i", C23, C3), np.concatenate([u, u[0:1]])
    return u, C3


def through_branches(u):
    z, g = branch_of_constants(u)
    return np.sum(np.tanh(g) ** 2) + np.sum(z * u[0])


@pytest.mark.parametrize("u", [np.array([0.3, -0.5]), np.array([0.3, 0.5, 0.1])],
                         ids=["constants", "u"])
def test_a_product_of_constants_in_one_branch(u):
    v = np.linspace(0.5, -1.0, u.size)
    _, tangent = srcdiff.jvp(through_branches, (u,), (v,))
    check_jvp(through_branches, (u,), (v,), tangent)
    hv = srcdiff.hvp(through_branches, u, v)
    g = srcdiff.grad(through_branches)
    eps = 1e-6
    np.testing.assert_allclose(hv, (g(u + eps * v) - g(u - eps * v)) / (2 * eps), rtol=1e-5,
                               atol=1e-7)
