"""The command line: show, --trace, export (run without the compiler), and its errors."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

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
    return np.sum(np.fft.hfft(x))
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


def stable_log1pexp(z):  # two lines: a call to copy (one-line helpers are written in place)
    tail = np.log1p(np.exp(-np.abs(z)))
    return np.maximum(z, 0.0) + tail


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


LIBRARY_IMPORTS = '''
import numpy as np
import scipy.special as sc
from scipy.special import expit
from scipy.special import erf as error_function
from scipy.stats import norm


def loss(x):
    return np.sum(expit(x) * sc.log_softmax(x) + error_function(0.5 * x) + norm.logpdf(x, 0.2))
'''


# issue 14 item 3: a rule's function imported by name (from scipy.special import expit, a ufunc
# that does not say which module it is from; norm, an instance) or through a module alias
def test_export_imports_what_the_module_imported_by_name(tmp_path):
    pytest.importorskip("scipy")
    (tmp_path / "lib_model.py").write_text(textwrap.dedent(LIBRARY_IMPORTS))
    result = run("export", "lib_model.py:loss", "-o", "dlib.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    exported = (tmp_path / "dlib.py").read_text()
    for line in ("from scipy.special import expit", "import scipy.special as sc",
                 "from scipy.special import erf as error_function",
                 "from scipy.stats import norm"):
        assert line in exported.splitlines(), exported
    check = textwrap.dedent('''
        import sys
        sys.modules["libcst"] = None  # importing the compiler would fail here
        import numpy as np
        import dlib
        value, pullback = dlib.loss_vjp(np.array([0.3, -1.2, 2.0]))
        np.save("dx.npy", pullback(1.0))
        print(repr(float(value)))
    ''')
    ran = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        module = importlib.import_module("lib_model")
        x = np.array([0.3, -1.2, 2.0])
        assert float(ran.stdout) == pytest.approx(module.loss(x), rel=1e-12)
        check_grad(module.loss, (x,), (np.load(tmp_path / "dx.npy"),))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lib_model", None)
