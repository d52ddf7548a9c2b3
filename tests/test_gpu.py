"""On a GPU: the end-to-end corpus, the examples and the control-flow functions on CuPy arrays.

Every gradient must come back as a ``cupy.ndarray`` on the argument's device, with its dtype
and shape, equal (to rounding) to the numpy gradient of the same values. Python floats and
numpy scalars stay host values, as on numpy.

Run with ``python -m pytest -m gpu`` on a machine with CuPy (``pip install -e ".[cuda12]"``)
and a CUDA GPU. Elsewhere this module is skipped as a whole, which is correct: there is no
device to test. The CPU half of the same promise (no host fallback anywhere) is proved by
tests/test_duck_array.py, which runs everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

cupy = pytest.importorskip(
    "cupy", reason="CuPy is not installed, so there is no GPU to test on (the GPU tests need "
                   "CuPy and a CUDA GPU: pip install -e '.[cuda12]'); tests/test_duck_array.py "
                   "covers the no-host-fallback promise on CPU")


def _gpu_count():
    try:
        return cupy.cuda.runtime.getDeviceCount(), ""
    except Exception as exc:  # noqa: BLE001 - no driver or no device: skip, saying which
        return 0, f" ({type(exc).__name__}: {exc})"


_COUNT, _WHY = _gpu_count()
if _COUNT == 0:
    pytest.skip(f"CuPy is installed but sees no CUDA GPU{_WHY}; the GPU tests need one "
                "(tests/test_duck_array.py covers the no-host-fallback promise on CPU)",
                allow_module_level=True)

import srcdiff  # noqa: E402

from .corpus import CASES  # noqa: E402
from .helpers import make_function  # noqa: E402
from .test_duck_array import (  # noqa: E402
    CONTROL_FLOW, EXAMPLES, _golden_args, _with_numpy, gpu_linear_regression)

pytestmark = pytest.mark.gpu

RTOL = {np.float64: 1e-9, np.float32: 2e-4}
ATOL = {np.float64: 1e-12, np.float32: 2e-5}


def _to_gpu(args, dtype=np.float64):
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            a = a.astype(dtype) if a.dtype.kind == "f" else a
            out.append(cupy.asarray(a))
        else:
            out.append(a)  # Python floats and numpy scalars are host values on CuPy too
    return tuple(out)


def _check_same(got, want, arg, what, dtype=np.float64):
    if isinstance(arg, cupy.ndarray):
        assert isinstance(got, cupy.ndarray), f"{what}: a {type(got).__name__}, not cupy.ndarray"
        assert got.device == arg.device, f"{what}: on {got.device}, argument on {arg.device}"
        assert got.dtype == arg.dtype and got.shape == arg.shape, what
        got = cupy.asnumpy(got)
    else:
        assert type(got) is type(want), f"{what}: {type(got).__name__}, not {type(want).__name__}"
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=ATOL[dtype], err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_grad_on_cupy(name, dtype):
    fn, make_args, wrt = CASES[name]
    args = tuple(a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                 for a in make_args())
    want = srcdiff.grad(fn, wrt=wrt)(*args)
    gpu = _to_gpu(args, dtype)
    got = srcdiff.grad(fn, wrt=wrt)(*gpu)
    for g, w, i in zip(got, want, wrt):
        _check_same(g, w, gpu[i], f"{name}: gradient of argument {i}", dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_value_and_grad_on_cupy(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    want_value, want = srcdiff.value_and_grad(fn, wrt=wrt)(*args)
    gpu = _to_gpu(args)
    value, got = srcdiff.value_and_grad(fn, wrt=wrt)(*gpu)
    if any(isinstance(a, cupy.ndarray) for a in gpu):
        assert isinstance(value, cupy.ndarray) and value.shape == (), name  # 0-d, as CuPy gives
        value = cupy.asnumpy(value)
    np.testing.assert_allclose(value, want_value, rtol=1e-9)
    for g, w, i in zip(got, want, wrt):
        _check_same(g, w, gpu[i], f"{name}: gradient of argument {i}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_vjp_on_cupy(name):
    fn, make_args, _ = CASES[name]
    args = make_args()
    _, pullback = srcdiff.vjp(fn, *args)
    want = pullback(2.5)
    gpu = _to_gpu(args)
    out, pullback = srcdiff.vjp(fn, *gpu)
    cotangents = [2.5] + ([cupy.asarray(2.5)] if isinstance(out, cupy.ndarray) else [])
    for v in cotangents:
        got = pullback(v)
        assert [g is None for g in got] == [w is None for w in want]
        for g, w, i in zip(got, want, range(len(args))):
            if w is not None:
                _check_same(g, w, gpu[i], f"{name}: vjp of argument {i} (cotangent {v!r})")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_on_cupy(name):
    fn, make_args, wrt = EXAMPLES[name]
    if name == "array module spelling":
        fn = _with_cupy
    if isinstance(fn, str):
        fn = make_function(fn, name="model")
    if make_args is None:
        make_args = _golden_args(name.split()[1])
    if isinstance(wrt[0], str):
        wrt = tuple(srcdiff.pipeline.parameters(fn).index(w) for w in wrt)
    args = make_args()
    reference = _with_numpy if fn is _with_cupy else fn
    want = srcdiff.grad(reference, wrt=wrt)(*args)
    gpu = _to_gpu(args)
    got = srcdiff.grad(fn, wrt=wrt)(*gpu)
    for g, w, i in zip(got, want, wrt):
        _check_same(g, w, gpu[i], f"{name}: gradient of argument {i}")


def _with_cupy(w, x):  # user code written with cupy.*: the same rules as np.*
    h = cupy.tanh(x @ w)
    z = cupy.zeros_like(h) + 1.0
    return cupy.sum(h * h * z) + cupy.mean(cupy.exp(w))


@pytest.mark.parametrize("name", sorted(CONTROL_FLOW))
def test_control_flow_on_cupy(name):
    source, make_args = CONTROL_FLOW[name]
    fn = make_function(source)
    rng = np.random.default_rng(11)
    for seed in range(6):
        args = make_args() if make_args else (rng.normal(size=3) * 1.5, rng.normal(size=3) * 1.5)
        wrt = tuple(range(len(args)))
        want = srcdiff.grad(fn, wrt=wrt)(*args)
        gpu = _to_gpu(args)
        got = srcdiff.grad(fn, wrt=wrt)(*gpu)
        for g, w, i in zip(got, want, wrt):
            _check_same(g, w, gpu[i], f"{name} (input {seed}): gradient of argument {i}")


def test_linear_regression_example_on_cupy():
    w_np, b_np, _, last_np = gpu_linear_regression.fit(np)
    w, b, first, last = gpu_linear_regression.fit(cupy)
    assert isinstance(w, cupy.ndarray) and isinstance(b, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(w), w_np, rtol=1e-9)
    np.testing.assert_allclose(cupy.asnumpy(b), b_np, rtol=1e-9)
    assert float(last) < 0.1 * float(first)
    xp, device = gpu_linear_regression.pick_device()
    assert xp is cupy, device


def test_gradients_stay_on_a_second_device():
    if _COUNT < 2:
        pytest.skip("one GPU here: the same-device check on a second GPU needs two")
    fn, make_args, wrt = CASES["linalg"]
    with cupy.cuda.Device(1):
        gpu = _to_gpu(make_args())
        got = srcdiff.grad(fn, wrt=wrt)(*gpu)
    for g, i in zip(got, wrt):
        assert g.device.id == 1, f"gradient of argument {i} on {g.device}"


def test_a_numpy_array_mixed_in_is_refused_by_cupy_not_copied():
    def f(x, y):
        return np.sum(x * y)

    with pytest.raises(TypeError):
        srcdiff.grad(f)(cupy.ones(3), np.ones(3))
