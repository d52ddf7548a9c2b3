"""Every script in examples/ runs and prints the numbers its tutorial promises.

Each script runs once, as a user runs it (``python examples/NAME.py``, in a subprocess);
its output is parsed and checked against values computed here independently (hand-written
gradients, the finite-difference oracle). The example functions themselves are also
imported and their gradients checked with ``srcdiff.testing.check_grad``.

The generated source of a few example functions is locked in tests/golden/examples_*.py,
compared as in tests/test_golden.py. To accept a deliberate change:
SRCDIFF_UPDATE_GOLDEN=1 python -m pytest tests/test_examples.py, then read the diff.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .test_golden import GOLDEN_DIR, _stable

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES_DIR.glob("*.py"))
NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


@functools.lru_cache(maxsize=None)
def run_example(name: str) -> str:
    """The stdout of ``python examples/<name>``, which must exit 0."""
    path = EXAMPLES_DIR / name
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}")
    return result.stdout


@functools.lru_cache(maxsize=None)
def load_example(stem: str):
    """Import examples/<stem>.py as a module (examples/ is not a package)."""
    name = f"srcdiff_example_{stem}"
    spec = importlib.util.spec_from_file_location(name, EXAMPLES_DIR / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(NUMBER, text)]


def line_after(output: str, label: str) -> str:
    """The rest of the first line of ``output`` containing ``label``, after it."""
    for line in output.splitlines():
        if label in line:
            return line.split(label, 1)[1]
    raise AssertionError(f"no line with {label!r} in the output:\n{output}")


def value_after(output: str, label: str) -> float:
    return numbers(line_after(output, label))[0]


def array_after(output: str, label: str) -> np.ndarray:
    return np.array(numbers(line_after(output, label)))


# ----- every script: runs, and is a small readable module -----


def test_the_tutorial_examples_are_there():
    for name in ("linear_regression.py", "linear_module_sgd.py", "bce_with_logits.py",
                 "autograd_basics.py", "autograd_more.py", "read_generated_source.py"):
        assert name in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs(name):
    output = run_example(name)
    assert output.strip(), f"{name} printed nothing"


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_is_a_documented_module_with_main(name):
    tree = ast.parse((EXAMPLES_DIR / name).read_text())
    docstring = ast.get_docstring(tree)
    assert docstring and "Run: python examples/" in docstring, f"{name}: docstring says how to run it"
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    assert "if __name__ == \"__main__\":" in (EXAMPLES_DIR / name).read_text()


# ----- seed 000: y = 2x by gradient descent -----


def reference_descent(x, y, w, b, lr, steps):
    """Gradient descent on mean((x @ w + b - y) ** 2) with the gradient written by hand."""
    losses = []
    for _ in range(steps):
        r = x @ w + b - y
        losses.append(float(np.mean(r ** 2)))
        dw = 2.0 * x.T @ r / r.size
        db = np.full(np.shape(b), 2.0 * np.mean(r))
        w, b = w - lr * dw, b - lr * db
    return w, b, losses


X4 = np.array([[1.0], [2.0], [3.0], [4.0]])


def test_linear_regression_output():
    output = run_example("linear_regression.py")
    epochs = re.findall(rf"Epoch (\d+), Loss: ({NUMBER})", output)
    assert [int(e) for e, _ in epochs] == list(range(100, 1001, 100))
    losses = [float(v) for _, v in epochs]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 1e-3
    w, b = value_after(output, "w:"), value_after(output, "b:")
    assert abs(w - 2.0) < 0.02 and abs(b) < 0.05  # 1.9897, 0.0304 after 1000 epochs
    w_ref, b_ref, losses_ref = reference_descent(X4, 2 * X4, np.zeros((1, 1)), np.zeros((1, 1)),
                                                 0.01, 1000)
    np.testing.assert_allclose([w, b], [w_ref.item(), b_ref.item()], atol=1e-6)
    np.testing.assert_allclose(losses, losses_ref[99::100], rtol=1e-4, atol=1e-6)


def test_linear_regression_gradient():
    m = load_example("linear_regression")
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((1, 1)), rng.standard_normal((1, 1))
    dw, db = m.loss_and_grads(w, b, X4, 2 * X4)[1]
    check_grad(m.loss_fn, [w, b, X4, 2 * X4], (dw, db), argnums=(0, 1))


# ----- seed 001: parameter dict, MSE, SGD -----


def test_linear_module_sgd_output():
    output = run_example("linear_module_sgd.py")
    epochs = re.findall(rf"Epoch (\d+)/100, Loss: ({NUMBER})", output)
    assert [int(e) for e, _ in epochs] == list(range(1, 101))
    m = load_example("linear_module_sgd")
    params = m.init_linear(np.random.default_rng(1))
    w_ref, b_ref, losses_ref = reference_descent(X4, 2 * X4, params["w"], params["b"], 0.01, 100)
    np.testing.assert_allclose([float(v) for _, v in epochs], losses_ref, atol=6e-5)
    final = line_after(output, "final parameters")
    np.testing.assert_allclose([value_after(final, "w:"), value_after(final, "b:")],
                               [w_ref.item(), b_ref.item()], atol=6e-5)
    initial = line_after(output, "initial gradient")
    r = X4 @ params["w"] + params["b"] - 2 * X4
    np.testing.assert_allclose([value_after(initial, "w:"), value_after(initial, "b:")],
                               [float(2 * np.mean(r * X4)), float(2 * np.mean(r))], atol=6e-5)


def test_linear_module_sgd_gradient_is_a_dict():
    m = load_example("linear_module_sgd")
    params = m.init_linear(np.random.default_rng(2))
    loss, grads = m.loss_and_grad(params, X4, 2 * X4)
    assert set(grads) == {"w", "b"}
    assert grads["w"].shape == (1, 1) and grads["b"].shape == (1,)

    def loss_of_leaves(w, b):
        return m.mse_loss({"w": w, "b": b}, X4, 2 * X4)

    check_grad(loss_of_leaves, [params["w"], params["b"]], (grads["w"], grads["b"]))
    stepped = m.sgd_step(params, grads)
    np.testing.assert_allclose(stepped["w"], params["w"] - 0.01 * grads["w"])


# ----- seed 002: binary cross-entropy with logits, no_grad, stop_gradient -----


def test_bce_with_logits_output():
    output = run_example("bce_with_logits.py")
    m = load_example("bce_with_logits")
    w, b, x, y = m.make_data()
    z = x @ w + b
    expected_db = (1 / (1 + np.exp(-z)) - y) / 3
    lines = output.splitlines()
    start = lines.index("w.grad:")
    rows = [numbers(line) for line in lines[start + 1:start + 6]]
    np.testing.assert_allclose(rows, np.tile(expected_db, (5, 1)), atol=6e-5)
    np.testing.assert_allclose(array_after(output, "b.grad:"), expected_db, atol=6e-5)
    loss = float(np.mean(np.log1p(np.exp(z))))  # y = 0: the loss is mean(softplus(z))
    assert abs(value_after(output, "loss:") - loss) < 6e-5
    for variant in ("no_grad:", "detach z:"):
        line = line_after(output, variant)
        assert abs(value_after(line, "loss") - loss) < 6e-5
        np.testing.assert_array_equal(array_after(line, "w.grad row 0:")[:3], 0.0)
        np.testing.assert_array_equal(array_after(line, "b.grad:"), 0.0)
    frozen = line_after(output, "frozen b:")
    np.testing.assert_allclose(array_after(frozen, "w.grad row 0:")[:3], expected_db, atol=6e-5)
    np.testing.assert_array_equal(array_after(frozen, "b.grad:"), 0.0)


def test_bce_with_logits_gradients():
    m = load_example("bce_with_logits")
    w, b, x, y = m.make_data()
    y = np.array([0.0, 1.0, 0.3])  # the stable form is right for any target in [0, 1]
    args = [w, b, x, y]
    check_grad(m.loss_fn, args, srcdiff.grad(m.loss_fn, wrt=("w", "b"))(*args), argnums=(0, 1))
    dw, db = srcdiff.grad(m.loss_frozen_bias, wrt=("w", "b"))(*args)
    check_grad(m.loss_frozen_bias, args, (dw,), argnums=(0,))  # w still learns
    assert np.all(db == 0.0)
    for fn in (m.loss_no_grad, m.loss_detached):
        dw, db = srcdiff.grad(fn, wrt=("w", "b"))(*args)
        assert np.all(dw == 0.0) and np.all(db == 0.0)
    z = 40.0 * np.array([-1.0, 1.0, 0.0])  # no overflow for large logits
    dz = srcdiff.grad(m.bce_with_logits)(z, y)
    assert np.all(np.isfinite(dz))
    check_grad(m.bce_with_logits, [z, y], (dz,), argnums=(0,))


# ----- seed 003: a sum, a linear model, a custom L1 loss -----


def test_autograd_basics_output():
    output = run_example("autograd_basics.py")
    np.testing.assert_array_equal(array_after(output, "x.grad:"), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(array_after(output, "y.grad:"), [1.0, 1.0, 1.0])
    m = load_example("autograd_basics")
    w, b = m.init_model(np.random.default_rng(3))
    x, y_true = np.array([[1.0, 2.0]]), np.array([[2.5]])
    out = (x @ w + b).item()
    assert abs(value_after(output, "output:") - out) < 6e-5
    assert abs(value_after(output, "loss:") - abs(out - 2.5)) < 6e-5
    sign = np.sign(out - 2.5)
    np.testing.assert_array_equal(array_after(output, "w.grad:"), sign * x.ravel())
    np.testing.assert_array_equal(array_after(output, "b.grad:"), [sign])


def test_autograd_basics_gradients():
    m = load_example("autograd_basics")
    rng = np.random.default_rng(30)
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    check_grad(m.sum_loss, [x, y], srcdiff.grad(m.sum_loss, wrt=("x", "y"))(x, y))
    w, b = m.init_model(rng)
    args = [w, b, rng.standard_normal((4, 2)), rng.standard_normal((4, 1))]
    grads = srcdiff.grad(m.criterion, wrt=("w", "b"))(*args)
    check_grad(m.criterion, args, grads, argnums=(0, 1))


# ----- seed 004: the basic example, backward(v), no_grad, regression loop -----


def test_autograd_more_output():
    output = run_example("autograd_more.py")
    assert value_after(output, "out:") == 27.0
    np.testing.assert_array_equal(array_after(output, "x.grad:"), [4.5] * 4)
    vjp_part = output[output.index("4. "):]
    v = np.array([0.1, 1.0, 0.001])
    np.testing.assert_allclose(array_after(vjp_part, "x.grad:"), 2 * v, rtol=1e-12)
    np.testing.assert_array_equal(array_after(vjp_part, "retain_graph):"), [2.0, 2.0, 2.0])
    no_grad_part = output[output.index("5. "):]
    np.testing.assert_array_equal(array_after(no_grad_part, "x.grad:"), [0.0] * 4)
    m = load_example("autograd_more")
    _, _, losses = reference_descent(*m.regression_data(), lr=0.01, steps=101)
    assert abs(value_after(output, "first loss:") - losses[0]) < 1e-6
    assert abs(value_after(output, "final loss:") - losses[100]) < 1e-6
    assert losses[100] < losses[0]


def test_autograd_more_gradients():
    m = load_example("autograd_more")
    x = np.random.default_rng(40).standard_normal((2, 2))
    check_grad(m.basic, [x], (srcdiff.grad(m.basic)(x),))
    np.testing.assert_allclose(srcdiff.grad(m.basic)(np.ones((2, 2))), np.full((2, 2), 4.5))
    v = np.array([0.1, 1.0, 0.001])
    x3 = x.ravel()[:3]
    _, pullback = srcdiff.vjp(m.double, x3)
    check_vjp(m.double, [x3], pullback(v), cotangent=v)
    xs, ys, w, b = m.regression_data()
    grads = srcdiff.grad(m.mse, wrt=("w", "b"))(w, b, xs, ys)
    check_grad(m.mse, [w, b, xs, ys], grads, argnums=(0, 1))


# ----- the generated-source walkthrough -----


# code the walkthrough's explanations quote: each must still be in the generated source
QUOTED = {
    "mse_loss": ["def mse_loss_grad(w, b, x, y)", "# forward", "# backward", "dpred",
                 "# adjoint of: <your line>  (line N)", "rt.count(_t2)",
                 "d_t2 = (1.0 / rt.count(_t2)) * 2 * _t2", "rt.matmul_adjoint_x2",
                 "db = rt.unbroadcast(dpred, b)", "dw, db"],
    "tanh_branch": ["_c1 = np.mean(h) > 0", "if _c1:", "dh = 2 * ", "dh * (1.0 - h * h)",
                    "rt.sum_adjoint(1.0, _t3)", "d_t2 = -1.0", "_t3 = h * h"],
    "tanh_rnn": ["h_2", "h_3", "h_1", "_tape1.push(...)", "# kept for the pullback:",
                 "for ... in reversed(_tape1):", "du = rt.zeros_like(u)", "du = rt.add_into(du, ...)",
                 "dw_terms.append((d_t1, h_2))", "dw = rt.matmul_adjoint_x1_sum(dw_terms, w)",
                 "rt.matmul_adjoint_x2(...)", "dh_1 = dh_2", "tanh_rnn_pullback()"],
}


def _in_source(snippet: str, source: str) -> bool:
    """``snippet`` occurs in ``source``; ``...``, ``<your line>`` and ``N`` match anything."""
    parts = re.split(r"\.\.\.|<your line>|\bN\b", snippet)
    pattern = ".*".join(re.escape(part) for part in parts)
    return re.search(pattern, source) is not None


def test_read_generated_source_output():
    output = run_example("read_generated_source.py")
    m = load_example("read_generated_source")
    for fn, wrt, guide in m.EXAMPLES:
        source = srcdiff.grad(fn, wrt=wrt).source
        # the printed source is the generated one, line numbers aside (the module differs)
        assert _stable(source) in _stable(output), f"{fn.__name__}'s source is not printed"
        assert guide in output
        for snippet in QUOTED[fn.__name__]:
            assert f"`{snippet}`" in guide or snippet in guide, f"not quoted: {snippet!r}"
            assert _in_source(snippet, source), (
                f"the guide to {fn.__name__} quotes {snippet!r}, which the generated source "
                "no longer contains: update the explanation in examples/read_generated_source.py")
    assert "dxs" not in srcdiff.grad(m.tanh_rnn, wrt=("w", "u")).source  # as the guide says


def test_read_generated_source_gradients():
    m = load_example("read_generated_source")
    rng = np.random.default_rng(50)
    for fn, wrt, _ in m.EXAMPLES:
        for _ in range(2):  # both sides of tanh_branch's if, most likely
            args = list(m.make_args(fn, rng))
            grads = srcdiff.grad(fn, wrt=wrt)(*args)
            names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
            check_grad(fn, args, grads, argnums=[names.index(n) for n in wrt])


# ----- the examples that were there before -----


def test_quickstart_output():
    output = run_example("quickstart.py")
    fitted = line_after(output, "fitted :")
    np.testing.assert_allclose(numbers(fitted), [1.0, -2.0, 0.5, 0.3], atol=1e-3)
    assert "def loss_grad(w, b, x, y):" in output


def test_gpu_linear_regression_output():
    output = run_example("gpu_linear_regression.py")  # CuPy on a GPU, else numpy
    first, last = numbers(line_after(output, "loss   :"))[:2]
    assert last < first


def test_dask_logistic_regression_output():
    """On a LocalCluster of 2 processes: the loss falls, numpy on the same data gives the same
    parameters, and the chunk gradients computed by the pickled gradient on the workers sum
    to Dask's; the example's loss against the loss written here."""
    pytest.importorskip("distributed")
    output = run_example("dask_logistic_regression.py")
    steps = [float(v) for v in re.findall(rf"step +\d+ +loss ({NUMBER})", output)]
    assert len(steps) == 5 and steps[0] == pytest.approx(np.log(2.0)) and steps[-1] < steps[0]
    assert all(b < a for a, b in zip(steps, steps[1:]))
    differences = numbers(line_after(output, "largest difference in w"))
    assert max(abs(d) for d in differences) < 1e-12
    assert abs(numbers(line_after(output, "summed, differ from Dask's by"))[0]) < 1e-12
    example = load_example("dask_logistic_regression")
    rng = np.random.default_rng(0)
    args = (rng.normal(size=3), 0.3, rng.normal(size=(7, 3)), (rng.random(7) > 0.5) * 1.0)
    value, grads = example.dloss(*args)
    z = args[2] @ args[0] + args[1]
    assert value == pytest.approx(np.mean(np.log1p(np.exp(z)) - args[3] * z), rel=1e-12)
    check_grad(example.loss, args, grads, argnums=(0, 1))


# ----- golden files for the examples' generated source -----


def _dict_params(m):
    return (m.init_linear(np.random.default_rng(1)), X4, 2 * X4)


GOLDEN_EXAMPLES = {
    # golden name: (example module, function, wrt, arguments of one call or None)
    "examples_autograd_more_basic": ("autograd_more", "basic", "x", None),
    "examples_linear_module_sgd_mse_loss": ("linear_module_sgd", "mse_loss", "params", _dict_params),
    "examples_read_generated_source_tanh_rnn": ("read_generated_source", "tanh_rnn", ("w", "u"), None),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_EXAMPLES))
def test_example_source_matches_golden(name):
    stem, fn_name, wrt, make_args = GOLDEN_EXAMPLES[name]
    m = load_example(stem)
    grad_fn = srcdiff.grad(getattr(m, fn_name), wrt=wrt)
    if make_args is not None:  # a container argument: .source shows the variant last called
        grad_fn(*make_args(m))
    source = _stable(grad_fn.source)
    path = GOLDEN_DIR / f"{name}.py"
    if os.environ.get("SRCDIFF_UPDATE_GOLDEN"):
        path.write_text(source)
    assert path.exists(), f"{path} is missing; SRCDIFF_UPDATE_GOLDEN=1 writes it"
    assert source == path.read_text(), f"generated source of {stem}.{fn_name} changed; see {path}"
