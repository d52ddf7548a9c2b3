"""No host fallback: the whole end-to-end corpus and the examples on a duck array that, like a
CuPy array, refuses every implicit conversion to numpy (see tests/duckarray.py).

If the runtime, a rule, generated code or the API made an array with ``np.zeros(shape)``,
``np.asarray(x)`` or ``np.add.at``, or mixed a numpy array into a computation on duck arrays,
these tests would fail with ``HostConversionError``, or find a numpy gradient where a duck
one belongs. Each gradient is compared with the numpy gradient of the same arguments.

Python floats and numpy scalars stay as they are: they are host values on CuPy too (CuPy
has no scalar type), and their gradients are host numbers, as the API promises. Reading
such a gradient back from a 0-d device array is the one explicit device-to-host copy
srcdiff makes; ``HOST_SYNCS`` checks there are no others.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import GradientTypeError

from . import golden_functions
from .corpus import CASES
from .duckarray import HOST_SYNCS, DuckArray, HostConversionError, dk, wrap
from .helpers import make_function
from .runtime import test_rules as _rule_tests  # its CASES: every rule, one by one
from .runtime.rule_table import check_on_duck_arrays, float32_cases, scalar_output_cases

ROOT = Path(__file__).resolve().parent.parent


def _load_example(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quickstart = _load_example("quickstart")
gpu_linear_regression = _load_example("gpu_linear_regression")


def _duck(args):
    return tuple(wrap(a) for a in args)


def _is_host_scalar(a):
    return isinstance(a, (float, int, np.generic))


def _check_same(got, want, arg, what):
    """``got`` (from duck arguments) has the kind of ``arg`` and the values of ``want``."""
    if type(arg) is DuckArray:
        assert type(got) is DuckArray, f"{what}: a {type(got).__name__} for a DuckArray argument"
        assert got.dtype == arg.dtype and got.shape == arg.shape, what
        values = got.get()
    else:
        assert type(got) is type(want), f"{what}: {type(got).__name__}, not {type(want).__name__}"
        values = got
    np.testing.assert_allclose(values, want, rtol=1e-12, atol=1e-14, err_msg=what)


def _check_syncs(args, wrt, what, fn=None):
    """The only host syncs: one float() per host-scalar argument whose gradient is read back,
    and bool() where the function itself branches on a device value (``if np.sum(h) > 0``
    reads one number back on CuPy too)."""
    allowed = sum(_is_host_scalar(args[i]) for i in wrt)
    floats = [w for w in HOST_SYNCS.where if w == "float()"]
    others = [w for w in HOST_SYNCS.where if w != "float()"]
    if fn is not None and _branches(fn):
        others = [w for w in others if w != "bool()"]
    assert len(floats) <= allowed and not others, (
        f"{what}: unexpected device-to-host copies {HOST_SYNCS.where}")


def _branches(fn) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    return any(isinstance(n, (ast.If, ast.While, ast.IfExp, ast.BoolOp)) for n in ast.walk(tree))


def _has_array(args):
    return any(type(a) is DuckArray for a in args)


# Every corpus case runs: none needs to be excused for a limitation of the duck array.
# Two cases have no array argument at all (Python-float arithmetic, math.* on a float):
# they run too, and check that nothing turns a host float into an array. The test below
# keeps this list right as the corpus grows.
NO_ARRAY_ARGUMENTS = {"scalars", "math_scalar"}


def test_every_corpus_case_is_covered_and_the_no_array_list_is_right():
    for name, (fn, make_args, wrt) in CASES.items():
        assert _has_array(_duck(make_args())) == (name not in NO_ARRAY_ARGUMENTS), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_on_duck_arrays(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    want = srcdiff.grad(fn, wrt=wrt)(*args)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    got = srcdiff.grad(fn, wrt=wrt)(*duck_args)
    _check_syncs(duck_args, wrt, name, fn)
    assert len(got) == len(wrt)
    for g, w, i in zip(got, want, wrt):
        _check_same(g, w, duck_args[i], f"{name}: gradient of argument {i}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_grad_on_duck_arrays(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    want_value, want = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    value, got = srcdiff.value_and_grad(fn, wrt=wrt)(*duck_args)
    _check_syncs(duck_args, wrt, name, fn)
    if _has_array(duck_args):
        assert type(value) is DuckArray and value.shape == (), f"{name}: value {type(value)}"
        np.testing.assert_allclose(value.get(), want_value, rtol=1e-12)
    else:
        np.testing.assert_allclose(value, want_value, rtol=1e-12)
    for g, w, i in zip(got, want, wrt):
        _check_same(g, w, duck_args[i], f"{name}: gradient of argument {i}")


@pytest.mark.parametrize("cotangent", ["python float", "duck 0-d"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_on_duck_arrays(name, cotangent):
    fn, make_args, _ = CASES[name]
    args = make_args()
    _, pullback = srcdiff.vjp(fn, *args)
    want = pullback(2.5)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    out, pullback = srcdiff.vjp(fn, *duck_args)
    if cotangent == "duck 0-d" and type(out) is not DuckArray:
        pytest.skip("the output is a host float here: there is no device cotangent to pass")
    v = 2.5 if cotangent == "python float" else wrap(np.array(2.5))
    floats = [i for i, a in enumerate(args) if want[i] is not None]
    got = pullback(v)
    _check_syncs(duck_args, floats, name, fn)
    HOST_SYNCS.reset()
    got_again = pullback(v)  # a pullback can be called again, with the same result
    _check_syncs(duck_args, floats, name, fn)
    assert [g is None for g in got] == [w is None for w in want]
    for g, g2, w, i in zip(got, got_again, want, range(len(args))):
        if w is not None:
            _check_same(g, w, duck_args[i], f"{name}: vjp of argument {i}")
            _check_same(g2, w, duck_args[i], f"{name}: second vjp of argument {i}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_duck_arrays_give_float32_duck_gradients(name):
    fn, make_args, wrt = CASES[name]
    args = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                 for a in make_args())
    want = srcdiff.grad(fn, wrt=wrt)(*args)
    got = srcdiff.grad(fn, wrt=wrt)(*_duck(args))
    for g, w, i in zip(got, want, wrt):
        if isinstance(args[i], np.ndarray):
            assert type(g) is DuckArray and g.dtype == np.float32, f"{name}: argument {i}"
            np.testing.assert_allclose(g.get(), w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_duck_inputs_are_not_modified(name):
    fn, make_args, wrt = CASES[name]
    duck_args = _duck(make_args())
    before = [a.get() if type(a) is DuckArray else a for a in duck_args]
    srcdiff.grad(fn, wrt=wrt)(*duck_args)
    for a, b in zip(duck_args, before):
        np.testing.assert_array_equal(a.get() if type(a) is DuckArray else a, b)


# ----- the duck array is strict: it would catch a host fallback -----


def test_the_duck_array_refuses_implicit_host_conversion():
    x = wrap(np.ones(3))
    with pytest.raises(HostConversionError):
        np.asarray(x)
    with pytest.raises(HostConversionError):
        x + np.ones(3)  # a host array mixed into device arithmetic
    with pytest.raises(TypeError):
        np.add.at(x, [0, 0], 1.0)  # ufunc.at does not dispatch (CuPy: cupyx.scatter_add)
    with pytest.raises(HostConversionError):
        np.concatenate([x, np.ones(2)])
    assert issubclass(HostConversionError, TypeError)  # CuPy raises TypeError
    assert type(np.sum(x)) is DuckArray and np.sum(x).shape == ()  # no numpy scalars
    assert srcdiff.runtime.array_module(x) is dk
    assert srcdiff.runtime.array_module(2.0, np.ones(2)) is np


def test_a_numpy_cotangent_for_a_device_output_is_refused_not_copied():
    def double(x):
        return x * 2.0

    out, pullback = srcdiff.vjp(double, wrap(np.ones(3)))
    with pytest.raises(GradientTypeError, match="numpy array"):
        pullback(np.ones(3))
    (g,) = pullback(wrap(np.array([1.0, 2.0, 3.0])))
    assert type(g) is DuckArray and g.get().tolist() == [2.0, 4.0, 6.0]
    (g,) = pullback(None)  # None: a zero cotangent, made on the device
    assert type(g) is DuckArray and not g.get().any()


def test_getitem_adjoint_accumulates_repeated_indices_through_the_array_module():
    from srcdiff.runtime import getitem_adjoint

    x = wrap(np.zeros((3, 2)))
    g = wrap(np.ones((4, 2)))
    dx = getitem_adjoint(g, x, key=np.array([0, 2, 2, 2]))  # a host index array, as CuPy allows
    assert type(dx) is DuckArray
    np.testing.assert_array_equal(dx.get(), [[1, 1], [0, 0], [3, 3]])
    dx = getitem_adjoint(wrap(np.ones(2)), x, key=(wrap(np.array([1, 1])), 0))
    np.testing.assert_array_equal(dx.get(), [[0, 0], [2, 0], [0, 0]])
    dx = getitem_adjoint(wrap(np.ones(2)), x, key=wrap(np.array([[True, False], [False, False],
                                                                 [False, True]])))
    np.testing.assert_array_equal(dx.get(), [[1, 0], [0, 0], [0, 1]])


# ----- the examples, the README's functions and the golden functions -----


def _loss_fn(w, x):
    return np.sum((x * w - 1.0) ** 2)


def _scaled(w, x):
    with srcdiff.no_grad():
        scale = np.max(np.abs(w))
    return np.sum(w * srcdiff.stop_gradient(x) / scale)


# The README's custom adjoint, registered when the test runs (not at import: the rule
# table's own tests list every registered rule).
README_CUSTOM = """
    def softplus(z):
        return np.log1p(np.exp(z))

    @srcdiff.adjoint(softplus)
    def softplus_adjoint(g, z):
        return g / (1.0 + np.exp(-z))

    def model(w, x):
        return np.sum(softplus(x * w))
"""


def _with_duck_module(w, x):  # user code written against the array module, as with cupy.tanh
    h = dk.tanh(x @ w)
    z = dk.zeros_like(h) + 1.0
    return dk.sum(h * h * z) + dk.mean(dk.exp(w))


_rng = np.random.default_rng(7)
EXAMPLES = {
    "quickstart.loss": (quickstart.loss, lambda: (_rng.normal(size=3), 0.1,
                                                  _rng.normal(size=(64, 3)), np.ones(64)), (0, 1)),
    "gpu_linear_regression.loss": (gpu_linear_regression.loss, lambda: (
        _rng.normal(size=(3, 1)), _rng.normal(size=1), _rng.normal(size=(100, 3)),
        _rng.normal(size=(100, 1))), (0, 1)),
    "README loss_fn": (_loss_fn, lambda: (np.array([0.5, 2.0]), np.array([1.0, 3.0])), (0,)),
    "README no_grad": (_scaled, lambda: (np.array([0.5, 2.0]), np.array([1.0, 3.0])), (0, 1)),
    "README custom adjoint": (README_CUSTOM, lambda: (np.array([0.5, 2.0]), np.array([1.0, 3.0])), (0,)),
    "array module spelling": (_with_duck_module, lambda: (_rng.normal(size=3),
                                                          _rng.normal(size=(5, 3))), (0, 1)),
    **{f"golden {name}": (fn, None, wrt) for name, (fn, wrt) in golden_functions.GOLDEN.items()},
}
_GOLDEN_ARGS = {
    "loss": lambda: (_rng.normal(size=3), 0.5, _rng.normal(size=(8, 3)), _rng.normal(size=8)),
    "tanh_layer": lambda: (_rng.normal(size=(3, 4)), _rng.normal(size=(6, 3))),
    **{name: lambda: (_rng.normal(size=(3, 4)), _rng.normal(size=(6, 3)))
       for name in ("comprehension", "function_value", "method")},
}


def _golden_args(name):
    """Arguments for a golden function: its entry above, else one positive vector of 5 per
    parameter (right for the elementwise ones; add an entry for a function that needs shapes)."""
    if name in _GOLDEN_ARGS:
        return _GOLDEN_ARGS[name]
    fn = golden_functions.GOLDEN[name][0]
    n = len(srcdiff.pipeline.parameters(fn))
    return lambda: tuple(_rng.uniform(0.5, 1.5, 5) for _ in range(n))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_on_duck_arrays(name):
    fn, make_args, wrt = EXAMPLES[name]
    if isinstance(fn, str):
        fn = make_function(fn, name="model")
    if make_args is None:
        make_args = _golden_args(name.split()[1])
    if isinstance(wrt[0], str):
        wrt = tuple(srcdiff.pipeline.parameters(fn).index(w) for w in wrt)
    args = make_args()
    if name == "array module spelling":  # its numpy reference is the same code on np
        want = srcdiff.grad(_with_numpy, wrt=wrt)(*args)
    else:
        want = srcdiff.grad(fn, wrt=wrt)(*args)
    duck_args = _duck(args)
    HOST_SYNCS.reset()
    got = srcdiff.grad(fn, wrt=wrt)(*duck_args)
    _check_syncs(duck_args, wrt, name, fn)
    for g, w, i in zip(got, want, wrt):
        _check_same(g, w, duck_args[i], f"{name}: gradient of argument {i}")
    _, pullback = srcdiff.vjp(fn, *duck_args)
    for g, w, i in zip((pullback(1.0)[i] for i in wrt), want, wrt):
        _check_same(g, w, duck_args[i], f"{name}: vjp of argument {i}")


def _with_numpy(w, x):
    h = np.tanh(x @ w)
    z = np.zeros_like(h) + 1.0
    return np.sum(h * h * z) + np.mean(np.exp(w))


def test_readme_vjp_of_double_on_duck_arrays():
    def double(x):
        return x * 2

    out, pullback = srcdiff.vjp(double, wrap(np.array([1.0, 2.0, 3.0])))
    assert type(out) is DuckArray
    (g,) = pullback(wrap(np.array([0.1, 1.0, 0.001])))
    assert type(g) is DuckArray
    np.testing.assert_allclose(g.get(), [0.2, 2.0, 0.002])


def test_gpu_linear_regression_example_runs_on_the_duck_module():
    w_np, b_np, first_np, last_np = gpu_linear_regression.fit(np)
    HOST_SYNCS.reset()
    w, b, first, last = gpu_linear_regression.fit(dk)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where  # 100 steps, no device-to-host copy
    assert type(w) is DuckArray and type(b) is DuckArray and type(last) is DuckArray
    np.testing.assert_allclose(w.get(), w_np, rtol=1e-12)
    np.testing.assert_allclose(b.get(), b_np, rtol=1e-12)
    np.testing.assert_allclose(last.get(), last_np, rtol=1e-12)
    assert float(last) < 0.1 * float(first)


# ----- control flow: the loop and branch tests' functions, where those tests define them -----

_LOOPS = getattr(importlib.import_module("tests.test_loops"), "LOOPS", {})
_BRANCHY = getattr(importlib.import_module("tests.test_branches"), "BRANCHY", {})
CONTROL_FLOW = {
    **{f"loop {name}": (source, make_args) for name, (source, make_args) in _LOOPS.items()
       if make_args is not None},
    **{f"branch {name}": (source, None) for name, source in _BRANCHY.items()},
}


@pytest.mark.parametrize("name", sorted(CONTROL_FLOW))
def test_control_flow_on_duck_arrays(name):
    source, make_args = CONTROL_FLOW[name]
    fn = make_function(source)
    rng = np.random.default_rng(11)
    for seed in range(6):  # several inputs, so branches take their different paths
        if make_args is None:
            args = (rng.normal(size=3) * 1.5, rng.normal(size=3) * 1.5)
        else:
            args = make_args()
        wrt = tuple(range(len(args)))
        want = srcdiff.grad(fn, wrt=wrt)(*args)
        duck_args = _duck(args)
        HOST_SYNCS.reset()
        got = srcdiff.grad(fn, wrt=wrt)(*duck_args)
        _check_syncs(duck_args, wrt, name, fn)
        for g, w, i in zip(got, want, wrt):
            _check_same(g, w, duck_args[i], f"{name} (input {seed}): gradient of argument {i}")


def test_readme_gpu_block_runs_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## GPU \(CuPy\)\n.*?```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "readme_gpu.py"
    script.write_text(block)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(("numpy ndarray", "cupy ndarray")), result.stdout


# ----- every rule of the table on its own, through tests/runtime/test_rules.py's cases -----


@pytest.mark.parametrize("case", _rule_tests.CASES)
def test_every_rule_on_duck_arrays(case):
    check_on_duck_arrays(case)


def test_import_srcdiff_never_imports_cupy():
    code = ("import sys, numpy as np, srcdiff\n"
            "assert srcdiff.runtime.array_module(np.ones(2)) is np\n"
            "assert 'cupy' not in sys.modules, 'import srcdiff imported cupy'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


# ----- every rule with a number cotangent (grad's seed 1.0), where the output is one number -----


NUMBER_G_CASES = scalar_output_cases(_rule_tests.CASES)


@pytest.mark.parametrize("g", [1.0, 0.5, np.float64(0.5)], ids=["1.0", "0.5", "np.float64"])
@pytest.mark.parametrize("case", NUMBER_G_CASES)
def test_every_rule_with_a_number_cotangent_on_duck_arrays(case, g):
    """grad seeds with the number 1.0: on device operands a rule reached with a number makes
    nothing on the host (``np.reshape(1.0, ...)`` is a numpy array) and gives numpy's values,
    which are the oracle's."""
    check_on_duck_arrays(case, cotangent=g)


@pytest.mark.parametrize("case", float32_cases(NUMBER_G_CASES))
def test_a_number_cotangent_keeps_float32_duck_adjoints_as_numpy_does(case):
    check_on_duck_arrays(case, cotangent=0.5, dtype=np.float32)
