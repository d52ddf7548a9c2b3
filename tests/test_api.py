"""The public API: decorator forms, wrt, signatures, caching, types, threads, tracebacks."""

import inspect
import re
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def loss():
    return make_function('''
        def loss(w, b, x, y=None):
            """Mean squared error of a linear model."""
            pred = x @ w + b
            return np.mean((pred - y) ** 2)
    ''')


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=3), 0.3, rng.normal(size=(8, 3)), rng.normal(size=8)


def test_plain_call_with_positions_and_names_agree(loss, data):
    by_position = srcdiff.grad(loss, wrt=(0, 1))(*data)
    by_name = srcdiff.grad(loss, wrt=("w", "b"))(*data)
    mixed = srcdiff.grad(loss, wrt=("w", 1))(*data)
    for a, b, c in zip(by_position, by_name, mixed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    check_grad(loss, data, by_position, argnums=(0, 1))


def test_int_or_name_gives_one_gradient_tuple_gives_tuple(loss, data):
    dw = srcdiff.grad(loss, wrt=0)(*data)
    assert isinstance(dw, np.ndarray) and dw.shape == (3,)
    (dw_tuple,) = srcdiff.grad(loss, wrt=(0,))(*data)
    np.testing.assert_array_equal(dw, dw_tuple)
    db = srcdiff.grad(loss, wrt="b")(*data)
    assert isinstance(db, float)


def test_decorator_forms():
    bare = make_function("""
        @srcdiff.grad
        def f(x, w):
            return np.sum(np.sin(x) * w)
    """)
    with_options = make_function("""
        @srcdiff.grad(wrt=1)
        def f(x, w):
            return np.sum(np.sin(x) * w)
    """)
    x, w = np.array([0.1, 0.2]), np.array([3.0, 4.0])
    np.testing.assert_allclose(bare(x, w), np.cos(x) * w)
    np.testing.assert_allclose(with_options(x, w), np.sin(x))


def test_keeps_name_docstring_and_signature(loss):
    dloss = srcdiff.grad(loss, wrt=(0, 1))
    assert dloss.__name__ == "loss"
    assert dloss.__doc__ == "Mean squared error of a linear model."
    assert inspect.signature(dloss) == inspect.signature(loss)
    assert dloss.wrt == ("w", "b")


def test_keyword_arguments_and_defaults(data):
    fn = make_function("""
        def f(w, x, scale=2.0, *, shift=0.5):
            return np.sum((x * w + shift) ** 2) * scale
    """)
    w, _, x, _ = data
    x = x[0]
    expected = srcdiff.grad(fn)(w, x, 2.0, shift=0.5)
    np.testing.assert_array_equal(srcdiff.grad(fn)(w, x), expected)
    np.testing.assert_array_equal(srcdiff.grad(fn)(x=x, w=w), expected)
    np.testing.assert_allclose(srcdiff.grad(fn)(w, x, shift=1.0, scale=1.0),
                               2 * (x * w + 1.0) * x)


def test_value_and_grad_returns_value_then_gradients(loss, data):
    value, (dw, db) = srcdiff.value_and_grad(loss, wrt=(0, 1))(*data)
    assert value == pytest.approx(loss(*data))
    value2, dw2 = srcdiff.value_and_grad(wrt="w")(loss)(*data)
    np.testing.assert_array_equal(dw, dw2)


def test_vjp_pullback_can_be_called_repeatedly(data):
    fn = make_function("""
        def f(x, w, n):
            return np.tanh(x * w) * n
    """)
    x, w = data[0], data[0][::-1].copy()
    out, pullback = srcdiff.vjp(fn, x, w, 3)
    np.testing.assert_allclose(out, fn(x, w, 3))
    first = pullback(np.ones(3))
    second = pullback(np.ones(3))
    assert first[2] is None and second[2] is None
    np.testing.assert_array_equal(first[0], second[0])
    dx, dw, _ = pullback(np.array([0.1, 1.0, 0.001]))
    np.testing.assert_allclose(dx, np.array([0.1, 1.0, 0.001]) * 3 * (1 - np.tanh(x * w) ** 2) * w)
    with pytest.raises(srcdiff.GradientTypeError, match="shape"):
        pullback(np.ones(4))


def test_vjp_of_y_equals_2x_matches_the_tutorial():
    fn = make_function("""
        def double(x):
            return x * 2
    """)
    _, pullback = srcdiff.vjp(fn, np.random.default_rng(1).normal(size=3))
    (dx,) = pullback(np.array([0.1, 1.0, 0.001]))
    np.testing.assert_allclose(dx, [0.2, 2.0, 0.002])


def test_gradient_types_follow_the_arguments():
    fn = make_function("""
        def f(a, x):
            return np.sum(np.exp(x * a))
    """)
    da, dx = srcdiff.grad(fn, wrt=(0, 1))(0.5, np.ones(3, np.float32))
    assert isinstance(da, float) and dx.dtype == np.float32
    da32 = srcdiff.grad(fn)(np.float32(0.5), np.ones(3, np.float32))
    assert isinstance(da32, np.float32)
    d0 = srcdiff.grad(fn)(np.array(0.5), np.ones(3))
    assert isinstance(d0, np.ndarray) and d0.shape == ()


@pytest.mark.parametrize("scalar", [0.5, np.float64(0.5), np.float32(0.5)])
def test_a_scalar_argument_gets_a_gradient_of_its_own_type(scalar):
    fn = make_function("""
        def f(a, x):
            return np.sum(np.exp(x * a))
    """)
    x = np.array([0.5, -1.0, 2.0])
    dfn = srcdiff.grad(fn)
    da = dfn(scalar, x)
    assert type(da) is type(scalar)  # np.float64 is a float too, but stays np.float64
    assert type(dfn(scalar, x)) is type(scalar)  # and on the later, faster calls
    check_grad(fn, (float(scalar), x), (da,), argnums=(0,), rtol=1e-4)
    _, pullback = srcdiff.vjp(fn, scalar, x)
    assert type(pullback(1.0)[0]) is type(scalar)
    in_a_dict = make_function("""
        def g(p, x):
            return np.sum(np.exp(x * p["a"])) * p["b"][0]
    """)
    grads = srcdiff.grad(in_a_dict)({"a": scalar, "b": [scalar]}, x)
    assert type(grads["a"]) is type(scalar) and type(grads["b"][0]) is type(scalar)


def test_returned_gradients_are_fresh_writable_arrays():
    fn = make_function("""
        def f(x):
            return np.sum(x)
    """)
    x = np.ones(3)
    dx = srcdiff.grad(fn)(x)
    dx *= 2.0  # a broadcast view would refuse this
    assert dx is not x
    np.testing.assert_array_equal(srcdiff.grad(fn)(x), np.ones(3))


def test_transform_runs_once(loss, data, monkeypatch):
    import srcdiff.api as api

    calls = []
    original = api.compile_derivative
    monkeypatch.setattr(api, "compile_derivative", lambda *a, **k: calls.append(a) or original(*a, **k))
    fresh = make_function("""
        def g(x):
            return np.sum(x ** 3)
    """)
    dg = srcdiff.grad(fresh)
    for _ in range(5):
        dg(np.ones(2))
    _ = dg.source
    srcdiff.grad(fresh)(np.ones(2))
    assert len(calls) == 1


def test_redefinition_gives_the_new_gradient():
    first = make_function("""
        def f(x):
            return np.sum(x * 2.0)
    """)
    second = make_function("""
        def f(x):
            return np.sum(x * 5.0)
    """)
    assert srcdiff.grad(first)(np.ones(1))[0] == 2.0
    assert srcdiff.grad(second)(np.ones(1))[0] == 5.0


def test_traceback_shows_generated_lines():
    fn = make_function("""
        def f(x, y):
            z = x @ y
            return np.sum(z)
    """)
    with pytest.raises(ValueError) as info:
        srcdiff.grad(fn)(np.ones((2, 3)), np.ones((2, 3)))
    text = "".join(traceback.format_exception(info.value))
    assert "<srcdiff f" in text and "z = x @ y" in text


def test_closures_and_globals_are_read_live():
    fn = make_function("""
        SCALE = 2.0

        def make(k):
            def f(x):
                return np.sum(x * k * SCALE)
            return f
    """, name="make")
    f3 = fn(3.0)
    np.testing.assert_allclose(srcdiff.grad(f3)(np.ones(2)), [6.0, 6.0])
    fn.__globals__["SCALE"] = 10.0
    np.testing.assert_allclose(srcdiff.grad(f3)(np.ones(2)), [30.0, 30.0])


def test_source_is_a_standalone_module(loss):
    source = srcdiff.grad(loss, wrt=(0, 1)).source
    assert source.startswith("from srcdiff import runtime as rt\n")
    assert "import libcst" not in source and "srcdiff.pipeline" not in source
    compile(source, "<check>", "exec")
    assert re.search(r"# adjoint of: pred = x @ w \+ b  \(line \d+\)", source)


def test_threads_get_the_single_threaded_results():
    fns = [make_function(f"""
        def f{i}(x):
            return np.sum(np.tanh(x * {i + 1}.0) ** 2)
    """) for i in range(8)]
    x = np.linspace(-1, 1, 50)
    expected = [srcdiff.grad(f)(x) for f in fns]
    fresh = [srcdiff.grad(make_function(f"""
        def h{i}(x):
            return np.sum(np.tanh(x * {i + 1}.0) ** 2)
    """)) for i in range(8)]  # not yet compiled: threads race to compile them
    results, errors = [None] * 8, []

    def work(i):
        try:
            results[i] = [fresh[i](x) for _ in range(20)]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        for g in got:
            np.testing.assert_array_equal(g, want)


def test_stop_gradient_is_identity_outside_and_constant_inside():
    fn = make_function("""
        def f(x, w):
            return np.sum(srcdiff.stop_gradient(w * x) * x)
    """)
    x, w = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    assert fn(x, w) == np.sum(w * x * x)
    np.testing.assert_allclose(srcdiff.grad(fn)(x, w), w * x)  # d/dx of c * x with c = w * x
    np.testing.assert_allclose(srcdiff.grad(fn, wrt=1)(x, w), [0.0, 0.0])


def _run_readme_block(pattern: str, tmp_path):
    """Run the README code block that ``pattern`` finds, as a script, and return its output."""
    readme = (ROOT / "README.md").read_text()
    script = tmp_path / "readme_block.py"
    script.write_text(re.search(pattern, readme, re.S).group(1))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    return readme, result


def test_readme_quick_start_runs_as_written(tmp_path):
    readme, result = _run_readme_block(r"## Quick start\n\n```python\n(.*?)```", tmp_path)
    listing = re.search(r"shows the derivative srcdiff wrote:\n\n```python\n(.*?)```", readme, re.S)
    assert listing.group(1) in result.stdout, "README's generated-source listing is out of date"


def test_readme_pytorch_examples_run_as_written(tmp_path):
    _, result = _run_readme_block(r"## Coming from PyTorch\n.*?```python\n(.*?)```", tmp_path)
    assert "vjp [0.2   2.    0.002]" in result.stdout
