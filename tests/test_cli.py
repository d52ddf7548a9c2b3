"""The command line: show, --trace, export (run without the compiler), and its errors."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import srcdiff

MODEL = '''
import numpy as np

SCALE = 2.0


def layer(x, w):
    return np.tanh(x @ w) * SCALE


def power(x, n):
    if n == 0:
        r = x * 0.0 + 1.0
    else:
        r = x * power(x, n - 1)
    return r


def loss(w, b, x, y):
    pred = layer(x, w) + b
    return np.mean((pred - y) ** 2) + np.sum(power(w, 3))


def uses_fft(x):
    return np.sum(np.fft.fft(x).real)
'''


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "srcdiff", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.fixture()
def model(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL))
    return tmp_path


def test_show_prints_the_generated_source(model):
    result = run("show", "model.py:loss", "--wrt", "w,b", cwd=model)
    assert result.returncode == 0, result.stderr
    assert "def loss_vjp(w, b, x, y):" in result.stdout
    assert "return dw, db" in result.stdout


def test_trace_labels_every_stage(model):
    result = run("show", "model.py:layer", "--wrt", "1", "--trace", cwd=model)
    assert result.returncode == 0, result.stderr
    from srcdiff.pipeline import PIPELINE

    for label, _ in PIPELINE:
        assert f"# ----- after {label} -----" in result.stdout


def test_export_runs_without_the_compiler(model):
    result = run("export", "model.py:loss", "--wrt", "w,b", "-o", "dloss.py", cwd=model)
    assert result.returncode == 0, result.stderr
    exported = (model / "dloss.py").read_text()
    assert "rt.derivative_of" not in exported and "import libcst" not in exported
    check = textwrap.dedent('''
        import sys
        sys.modules["libcst"] = None  # importing the compiler would fail here
        import numpy as np
        import dloss
        rng = np.random.default_rng(0)
        w, x, y = rng.normal(size=(3, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
        value, pullback = dloss.loss_vjp(w, 0.1, x, y)
        dw, db = pullback(1.0)
        np.save("dw.npy", dw)
        print(float(db))
    ''')
    ran = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=model, timeout=120)
    assert ran.returncode == 0, ran.stderr
    sys.path.insert(0, str(model))
    try:
        import importlib

        module = importlib.import_module("model")
        rng = np.random.default_rng(0)
        w, x, y = rng.normal(size=(3, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
        dw, db = srcdiff.grad(module.loss, wrt=("w", "b"))(w, 0.1, x, y)
    finally:
        sys.path.remove(str(model))
        sys.modules.pop("model", None)
    np.testing.assert_allclose(np.load(model / "dw.npy"), dw, rtol=1e-12)
    assert float(ran.stdout) == pytest.approx(db, rel=1e-12)


@pytest.mark.parametrize("args, message", [
    (("show", "missing.py:loss"), "no such file"),
    (("show", "model.py:nothing"), "has no function"),
    (("show", "model.py:uses_fft"), "cannot differentiate"),
    (("show", "model.py:loss", "--wrt", "z"), "not a parameter"),
    (("show", "model.py"), "FILE.py:FUNCTION"),
])
def test_errors_are_one_message_and_exit_1(model, args, message):
    result = run(*args, cwd=model)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


PLAIN_HELPER = '''
import numpy as np


def stable_log1pexp(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def loss(params, x):
    z = x @ params["w"]
    return np.mean(z * z) + np.sum(params["b"] ** 2) + stable_log1pexp(0.5)
'''


def test_export_copies_plain_helpers_and_handles_pytrees(tmp_path):
    (tmp_path / "m.py").write_text(textwrap.dedent(PLAIN_HELPER))
    result = run("export", "m.py:loss", "--wrt", "params", "--pytree", "params", "-o", "d.py",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "def stable_log1pexp(z):" in (tmp_path / "d.py").read_text()
    check = textwrap.dedent('''
        import sys
        sys.modules["libcst"] = None
        import numpy as np
        import d
        params = {"w": np.array([[1.0], [2.0]]), "b": np.array([3.0])}
        x = np.array([[1.0, 1.0]])
        value, pullback = d.loss_vjp(params, x)
        grads = pullback(1.0)
        print(grads["w"].ravel().tolist(), grads["b"].tolist())
    ''')
    ran = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[6.0, 6.0] [6.0]"  # d/dw mean(z^2) = 2 z x = 6, d/db b^2 = 6
