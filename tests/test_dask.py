"""Dask arrays through the generated derivative: lazy gradients of the argument's chunks,
computed by Dask, equal to numpy's, and nothing computed while the gradient is made.

Every gradient call here runs under :func:`no_compute`, a Dask scheduler that counts and
refuses: a rule that made Dask compute a chunk (``float(x)``, ``np.asarray(x)``, a numpy
function Dask lacks, which Dask runs by computing its arguments) fails the test at once,
as a host conversion fails the duck-array tests (tests/test_duck_array.py).

Corpus cases whose own function already computes on Dask, or fails there, are left out,
by a check (``lazy_on_dask``): nothing srcdiff does can make them lazy; ``USER_CODE_COMPUTES``
keeps that set from growing unnoticed. One case indexes with a Dask mask, whose adjoint
Dask cannot write lazily: refused at the user's line (``REFUSED``).
"""

from __future__ import annotations

import contextlib
import linecache
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import NotDifferentiableError
from srcdiff.testing import check_grad, check_vjp

from .corpus import CASES

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")


class ComputeRefused(RuntimeError):
    """Dask was asked to compute a chunk while srcdiff made a gradient."""


@contextlib.contextmanager
def no_compute():
    """Every Dask compute in the block raises :class:`ComputeRefused` (and is counted)."""
    computes = []

    def refuse(dsk, keys, **kwargs):
        computes.append(keys)
        raise ComputeRefused(f"Dask computed {keys!r} while srcdiff made a gradient")

    with dask.config.set(scheduler=refuse), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # Dask's "not implemented by Dask array"
        yield computes
    assert not computes, computes


def chunked(a):
    """A numpy array as a Dask array of about two chunks per axis; numbers stay numbers."""
    if isinstance(a, np.ndarray):
        return da.from_array(a, chunks=tuple(max(1, (n + 1) // 2) for n in a.shape))
    return a


def lazy_on_dask(fn, args) -> bool:
    """Whether ``fn`` itself runs on Dask arrays without computing."""
    try:
        with no_compute():
            fn(*args)
    except Exception:  # noqa: BLE001 - computed, or Dask has no such operation
        return False
    return True


# The corpus cases whose own code computes or fails on Dask: np.copy, np.inner, a reshape
# that does not split or merge whole axes (4x3 of a 3x4 array).
USER_CODE_COMPUTES = {"copies", "linalg", "linalg_square", "shapes"}
REFUSED = {"indexing": "d = x[x > 0.0]"}
LAZY = sorted(n for n in CASES if n not in USER_CODE_COMPUTES and n not in REFUSED)


def test_the_cases_left_out_are_those_whose_own_code_computes_on_dask():
    computes = {n for n, (fn, make_args, _) in CASES.items()
                if not lazy_on_dask(fn, tuple(map(chunked, make_args())))}
    assert computes == USER_CODE_COMPUTES


def check_lazy_gradient(g, arg, want):
    """``g`` is a Dask array, of ``arg``'s chunks where ``arg`` is one, with numpy's values."""
    assert isinstance(g, da.Array), type(g)
    assert g.dtype == np.result_type(arg) and g.shape == np.shape(arg)
    if isinstance(arg, da.Array):
        assert g.chunks == arg.chunks, (g.chunks, arg.chunks)
    np.testing.assert_allclose(g.compute(), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", LAZY)
def test_grad_on_dask_arrays_is_lazy_and_equals_numpy(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    want = srcdiff.grad(fn, wrt=wrt)(*args)
    check_grad(fn, args, want, argnums=wrt)
    dargs = tuple(map(chunked, args))
    with no_compute():
        got = srcdiff.grad(fn, wrt=wrt)(*dargs)
    if not any(isinstance(a, da.Array) for a in dargs):  # numbers only: numbers back
        assert all(type(g) is type(w) for g, w in zip(got, want))
        np.testing.assert_allclose(got, want, rtol=1e-12)
        return
    for g, w, i in zip(got, want, wrt):
        check_lazy_gradient(g, dargs[i], w)


@pytest.mark.parametrize("name", ["linear_mse", "reductions", "methods", "joins", "broadcast_scalar"])
def test_value_and_grad_and_vjp_on_dask_arrays(name):
    fn, make_args, wrt = CASES[name]
    args = make_args()
    dargs = tuple(map(chunked, args))
    with no_compute():
        value, grads = srcdiff.value_and_grad(fn, wrt=wrt)(*dargs)
        out, pullback = srcdiff.vjp(fn, *dargs)
        pulled = pullback(2.0)
    assert isinstance(value, da.Array) and isinstance(out, da.Array)
    np.testing.assert_allclose(value.compute(), fn(*args), rtol=1e-12)
    check_grad(fn, args, tuple(g.compute() for g in grads), argnums=wrt)
    check_vjp(fn, args, tuple(g.compute() for g in pulled), cotangent=2.0)


def mlp(w1, b1, w2, x, y):
    h = np.tanh(x @ w1 + b1)
    return np.mean((h @ w2 - y) ** 2)


def test_an_mlp_on_chunked_data_and_chunked_parameters():
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2)),
            rng.normal(size=(12, 3)), rng.normal(size=(12, 2)))
    want = srcdiff.grad(mlp, wrt=(0, 1, 2))(*args)
    check_grad(mlp, args, want, argnums=(0, 1, 2))
    # parameters as numpy (the data-parallel case) and as chunked Dask arrays (the matmul's
    # adjoint has the data's chunks along the contracted axis: rechunked to the argument's)
    for w1, w2 in ((args[0], args[2]), (da.from_array(args[0], chunks=(1, 3)),
                                        da.from_array(args[2], chunks=(3, 1)))):
        dargs = (w1, args[1], w2, da.from_array(args[3], chunks=(5, 3)),
                 da.from_array(args[4], chunks=(5, 2)))
        with no_compute():
            got = srcdiff.grad(mlp, wrt=(0, 1, 2))(*dargs)
        for g, w, a in zip(got, want, dargs[:3]):
            check_lazy_gradient(g, a, w)


def gather_rows(x, w):
    idx = np.array([0, 2, 2, -1, 0, 2])  # repeated and negative indices: their adjoints add up
    return np.sum(np.tanh(x[idx] * w)) + np.sum(x[:, np.array([1, 1, 0])] ** 2)


def test_an_index_array_with_repeats_is_scattered_back_lazily():
    rng = np.random.default_rng(1)
    args = (rng.normal(size=(4, 3)), rng.normal(size=3))
    with no_compute():
        got = srcdiff.grad(gather_rows, wrt=(0, 1))(*map(chunked, args))
    check_grad(gather_rows, args, tuple(g.compute() for g in got))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_index_dask_cannot_assign_to_is_refused_at_the_users_line(name):
    fn, make_args, wrt = CASES[name]
    with no_compute(), pytest.raises(NotDifferentiableError) as info:
        srcdiff.grad(fn, wrt=wrt)(*map(chunked, make_args()))
    message = str(info.value)
    assert "np.where(mask, x, 0)" in message and "corpus.py" in message
    assert REFUSED[name] in message


def reshaped(x):
    return np.sum(np.sin(x.reshape(-1)) * np.ravel(x)) + np.sum(np.concatenate([x, 2.0 * x], axis=-1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reshape_ravel_and_concatenate_adjoints_take_no_option_dask_refuses(dtype):
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4).astype(dtype)
    with no_compute():
        got = srcdiff.grad(reshaped)(da.from_array(x, chunks=(3, 2)))
    assert got.dtype == dtype and got.chunks == ((3,), (2, 2))
    if dtype == np.float64:
        check_grad(reshaped, (x,), (got.compute(),))
    np.testing.assert_allclose(got.compute(), srcdiff.grad(reshaped)(x), rtol=1e-6)


def test_the_readme_block_runs_and_gives_numpys_gradient():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"## Dask \(chunked arrays, a cluster\)\n.*?```python\n(.*?)```", readme, re.S)
    namespace: dict = {}
    name = "<README.md: Dask>"  # the block's own lines, for srcdiff to read (as IPython keeps a cell's)
    linecache.cache[name] = (len(block.group(1)), None, block.group(1).splitlines(True), name)
    exec(compile(block.group(1), name, "exec"), namespace)
    x, y = dask.compute(namespace["x"], namespace["y"])
    args = (np.zeros(8), 0.0, x, y)
    value, dw, db = namespace["value"], namespace["dw"], namespace["db"]
    assert isinstance(dw, np.ndarray) and isinstance(db, float)
    assert value == pytest.approx(namespace["loss"](*args), rel=1e-12)
    check_grad(namespace["loss"], args, (dw, db), argnums=(0, 1))


def argmax_pick(x, w):
    k = np.argmax(x[:, 0])  # a Dask integer: where it points is known only once computed
    return np.sum(x[k] * w) + x[-1, 1] * np.sum(x[k, :] ** 2)


def test_an_index_computed_by_dask_is_written_back_lazily():
    rng = np.random.default_rng(2)
    args = (rng.normal(size=(5, 3)), rng.normal(size=3))
    with no_compute():
        got = srcdiff.grad(argmax_pick, wrt=(0, 1))(*map(chunked, args))
    assert got[0].chunks == chunked(args[0]).chunks
    check_grad(argmax_pick, args, tuple(g.compute() for g in got))


def test_the_compiled_paths_fallback_runs_the_derivative_on_dask_lazily():
    pytest.importorskip("numba")
    jit = getattr(srcdiff, "jit", None)
    if jit is None:
        pytest.skip("srcdiff.jit is not in this version")
    rng = np.random.default_rng(4)
    args = (rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2)),
            rng.normal(size=(10, 3)), rng.normal(size=(10, 2)))
    compiled = jit(srcdiff.grad(mlp, wrt=(0, 2)), fallback=True)
    with no_compute(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback says that it runs the numpy derivative
        got = compiled(args[0], args[1], args[2], chunked(args[3]), chunked(args[4]))
    check_grad(mlp, args, tuple(g.compute() for g in got), argnums=(0, 2))
