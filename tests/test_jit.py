"""srcdiff.jit: the compiled derivative against the numpy path (1e-12 relative in float64)
and against finite differences, through grad, value_and_grad and a plain function; its
refusals at the user's line; its fallback; its disk cache.

The compile of each program takes seconds the first time (numba), then comes from the disk
cache; the default run compiles a few programs (~20 s on two cores with empty caches), and
SRCDIFF_SLOW=1 runs every program, the compilable corpus and the second-process cache test
(a few minutes)."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import srcdiff  # noqa: E402
from srcdiff.compiled import JitError, JitFallbackWarning  # noqa: E402
from srcdiff.testing import check_grad  # noqa: E402

from .corpus import CASES  # noqa: E402

slow = pytest.mark.skipif(not os.environ.get("SRCDIFF_SLOW"), reason="long: set SRCDIFF_SLOW=1")

# ----- programs: straight-line code, broadcasting, numbers, a loop with a tape -----


def elementwise(x):
    a = np.sin(x)
    c = np.exp(0.1 * (a * x))
    d = np.tanh(c - x)
    return np.sum(np.log(d * d + 2.0) / (1.0 + x * x))


def rnn(W, U, x, h0):
    h = h0
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + U @ x[t])
    return np.sum(h)


def softmax_ce(W, b, x, y):
    logits = x @ W + b
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (z - lse), axis=1))


def pair_kernel(x, ell):
    d = np.subtract.outer(x, x)
    return np.sum(np.exp(-d ** 2 / ell)) + pow(ell, 2)


rng = np.random.default_rng(3)
PROGRAMS = {
    "elementwise-vector": (elementwise, lambda: (rng.uniform(-1, 1, 5),), (0,)),
    "elementwise-matrix": (elementwise, lambda: (rng.uniform(-1, 1, (3, 2)),), (0,)),
    "linear_mse-float-b": CASES["linear_mse"],
    "broadcast_col": CASES["broadcast_col"],
    "scalars": CASES["scalars"],
    "rnn": (rnn, lambda: (rng.normal(size=(4, 4)) * 0.5, rng.normal(size=(4, 3)),
                          rng.normal(size=(5, 3)), np.zeros(4)), (0, 1)),
    "softmax_ce": (softmax_ce, lambda: (rng.normal(size=(3, 4)), rng.normal(size=4),
                                        rng.normal(size=(6, 3)), np.eye(4)[[0, 1, 3, 2, 1, 0]]),
                   (0, 1)),
}
PROGRAMS["pair_kernel"] = (pair_kernel, lambda: (rng.normal(size=6), 1.3), (0, 1))
COMPILABLE_CORPUS = sorted(CASES)  # every function of the end-to-end corpus compiles


def assert_same(got, want):
    """Compiled and numpy results: the same types, dtypes, shapes; values to 1e-12, or to
    1e-14 of the largest (an element that cancels to nearly zero keeps the last bits of an
    exp or tanh, and the one loop's are numba_vecmath's, within an ulp of numpy's)."""
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert type(a) is type(b), (type(a), type(b))
        assert np.shape(a) == np.shape(b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)
        scale = np.max(np.abs(b)) if np.size(b) else 0.0
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=max(1e-14 * scale, 1e-300))


def check_program(fn, args, wrt):
    for maker in (srcdiff.grad, srcdiff.value_and_grad):
        numpy_path = maker(fn, wrt=wrt)
        compiled = srcdiff.jit(maker(fn, wrt=wrt))
        got, want = compiled(*args), numpy_path(*args)
        if maker is srcdiff.value_and_grad:
            assert type(got[0]) is type(want[0])
            np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
            got, want = got[1], want[1]
        assert_same(got, want)
        check_grad(fn, args, got, argnums=wrt)
        assert compiled(*args) is not None  # a second call: the compiled code itself


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in ("elementwise-vector", "rnn")
                                               else slow) for n in sorted(PROGRAMS)])
def test_compiled_gradient_equals_the_numpy_path(name):
    fn, make_args, wrt = PROGRAMS[name]
    check_program(fn, make_args(), wrt)


@slow
@pytest.mark.parametrize("name", COMPILABLE_CORPUS)
def test_corpus_compiles_and_agrees(name):
    fn, make_args, wrt = CASES[name]
    check_program(fn, make_args(), wrt)


def _float32(a):
    return a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a


@slow
@pytest.mark.parametrize("name", COMPILABLE_CORPUS)
def test_corpus_in_float32_agrees_to_1e_5(name):
    """Float32 array arguments: the float32 kernel's gradients are the numpy path's, dtypes
    included, to 1e-5 (relative to the largest entry: float32 sums in another order)."""
    fn, make_args, wrt = CASES[name]
    args = tuple(_float32(a) for a in make_args())
    got, want = srcdiff.jit(srcdiff.grad(fn, wrt=wrt))(*args), srcdiff.grad(fn, wrt=wrt)(*args)
    for a, b in zip(got, want):
        assert type(a) is type(b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.max(np.abs(b)))


def written(x, w):
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        out[i] = np.tanh(x[i] * w)
    tail = out[1:] * x[:-1]
    positive = x[x > 0.0]
    return np.sum(tail ** 2) + np.sum(positive * w) + np.sum(np.clip(x, -0.5, 0.5) * w)


def joined(a, b):
    c = np.concatenate([a, b * 2.0], axis=0)
    s = np.stack((a, b[1:]), axis=1)
    e = np.einsum("ij,kj->ik", a, b) + np.prod(a, axis=1, keepdims=True)
    return np.sum(c ** 2) + np.sum(s * s) + np.sum(e * e)


def test_index_writes_slices_masks_and_clip_compile():
    """A row written per loop step (rt.setitem), slices from 1 and to -1 (a slice `1:` was
    compiled as `:1`: wrong gradients), a mask of a matrix, np.clip: as the numpy path and
    finite differences."""
    check_program(written, (rng.normal(size=(4, 3)), 0.7), (0, 1))


def unpacked_rows(p, w):
    a, b = np.exp(p)
    return np.sum(a * b * w)


def test_unpacking_rows_compiles_and_checks_the_count():
    """``a, b = np.exp(p)`` reads the rows one by one after rt.unpacked's count check (its
    twin): the gradient for two rows, numpy's ValueError for three, as Python raises."""
    check_program(unpacked_rows, (rng.normal(size=2) * 0.5, rng.normal(size=3)), (0, 1))
    compiled = srcdiff.jit(srcdiff.grad(unpacked_rows, wrt=(0, 1)))
    with pytest.raises(ValueError, match="unpack"):
        compiled(np.ones(3), np.ones(3))


@slow
def test_joins_einsum_and_prod_compile():
    check_program(joined, (rng.normal(size=(2, 3)), rng.normal(size=(3, 3))), (0, 1))


def test_decorator_on_top_of_grad_and_float32():
    @srcdiff.jit
    @srcdiff.grad
    def loss(x):
        return np.sum(np.tanh(x) ** 2)

    x = rng.normal(size=4)
    np.testing.assert_allclose(loss(x), srcdiff.grad(loss.__wrapped__)(x), rtol=1e-12)
    g32 = loss(x.astype(np.float32))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, srcdiff.grad(loss.__wrapped__)(x.astype(np.float32)), rtol=1e-5)
    assert "def loss_grad" in loss.source and "def loss_kernel" in loss.kernel_source


def test_kernel_source_fuses_elementwise_chains():
    compiled = srcdiff.jit(srcdiff.grad(elementwise))
    compiled(np.ones(3))
    kernel = compiled.kernel_source
    assert "c = np.exp(0.1 * (a * x))" in kernel  # _t1 = a * x, _t2 = 0.1 * _t1: one line
    forward = kernel.split("# backward")[0]
    assert "_t1 =" not in forward and "_t2 =" not in forward and "del " not in kernel
    assert "# adjoint of: d = np.tanh(c - x)" in kernel


def scaled(x, y, b):
    c = np.exp(-(np.sin(x) * x))
    return np.sum(np.tanh(c * b + y) / (1.0 + c))


LOOP_CASES = {  # arguments of scaled: which kernel runs
    "one loop": (lambda: (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), 0.7)),
    "large: one loop too": (lambda: (rng.normal(size=(50, 60)), rng.normal(size=(50, 60)), 0.7)),
    "broadcast y": (lambda: (rng.normal(size=(3, 4)), rng.normal(size=4), 0.7)),
    "Fortran order": (lambda: (rng.normal(size=(3, 4)), np.asfortranarray(rng.normal(size=(3, 4))), 0.7)),
}


@pytest.mark.parametrize("maker, case", [
    pytest.param(maker, case, marks=() if maker is srcdiff.grad and case == "one loop" else slow,
                 id=f"{maker.__name__}-{case}")
    for maker in (srcdiff.grad, srcdiff.value_and_grad) for case in LOOP_CASES])
def test_elementwise_kernel_runs_as_one_loop(maker, case):
    """Same-shape arrays: one loop over the elements (a number argument's gradient and the
    value summed in it), large ones too (exp, sin, tanh: numba_vecmath's, vectorised); other
    shapes (broadcasting) or layouts: the array kernel. Both as numpy's."""
    compiled, numpy_path = srcdiff.jit(maker(scaled, wrt=(0, 1, 2))), maker(scaled, wrt=(0, 1, 2))
    for args in (LOOP_CASES[case](),):
        got, want = compiled(*args), numpy_path(*args)
        if maker is srcdiff.value_and_grad:
            np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
            got, want = got[1], want[1]
        assert_same(got, want)
        check_grad(scaled, args, got, argnums=(0, 1, 2))
    loop = compiled.loop_source
    assert "for i in range(n):" in loop and "db += " in loop and "x_i = x_flat[i]" in loop


def relus(x, y):
    a = np.maximum(x - 0.25, 0.0) * y
    b = np.where(y > 0.0, a, 0.5 * a) + x * (x > 0.0)
    return np.sum(b * b)


def test_a_loop_of_arithmetic_and_selections_runs_at_any_size():
    """Comparisons, np.maximum's and np.where's adjoints per element: one loop even for
    3000 elements (no transcendental function: no temporaries, no page faults)."""
    x, y = rng.uniform(-1, 1, 3000), rng.normal(size=3000)
    compiled = srcdiff.jit(srcdiff.grad(relus, wrt=(0, 1)))
    got, want = compiled(x, y), srcdiff.grad(relus, wrt=(0, 1))(x, y)
    assert_same(got, want)
    check_grad(relus, (x[:40], y[:40]), compiled(x[:40], y[:40]), argnums=(0, 1))
    kind = next(iter(compiled._kinds.values()))
    assert srcdiff.compiled.function._pick(kind[4], kind, (x, y)) is kind[2]  # the loop
    assert "_t5 = (a if _t3 else _t4)" in compiled.loop_source  # np.where, per element


def test_plain_function_runs_compiled():
    compiled = srcdiff.jit(elementwise)
    x = rng.uniform(-1, 1, 6)
    np.testing.assert_allclose(compiled(x), elementwise(x), rtol=1e-12)


def sorted_(a):
    return np.sum(np.sort(a) * a)


def test_a_rule_without_twin_is_refused_at_the_users_line():
    compiled = srcdiff.jit(srcdiff.grad(sorted_))
    with pytest.raises(JitError) as info:
        compiled(rng.normal(size=(3, 3)))
    err = info.value
    assert err.filename == __file__ and "np.sort(a)" in err.text
    assert "rt.sort_adjoint" in str(err) and "fallback=True" in str(err)
    assert "No implementation" not in str(err)


def both_axes(x):
    s = np.sum(x ** 2, axis=(0, 1))
    return s * 2.0


def test_numba_typing_error_is_located_at_the_users_line():
    with pytest.raises(JitError) as info:
        srcdiff.jit(srcdiff.grad(both_axes))(rng.normal(size=(2, 3)))
    err = info.value
    assert err.filename == __file__ and "s = np.sum(x ** 2, axis=(0, 1))" in err.text
    assert "must be a constant written in the source" in str(err)
    assert "Failed in nopython" not in str(err) and "During:" not in str(err)


def chosen(x):
    return np.sum(np.cumsum(x) * x)


def test_numba_typing_error_is_located_and_fallback_warns():
    compiled = srcdiff.jit(srcdiff.grad(chosen), fallback=True)
    x = rng.normal(size=4)
    with pytest.warns(JitFallbackWarning, match="chosen"):
        got = compiled(x)
    np.testing.assert_allclose(got, srcdiff.grad(chosen)(x), rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(x)  # warned once; the numpy path from now on


def test_an_argument_a_kernel_cannot_take_is_refused_clearly():
    """(numba has no float16; containers: tests/test_jit_containers.py)"""
    def loss(w, x):
        return np.sum(w * x)

    compiled = srcdiff.jit(srcdiff.grad(loss))
    with pytest.raises(JitError, match="numpy arrays of booleans, integers or floats.*"
                                       "ndarray of float16") as info:
        compiled(np.ones(2, dtype=np.float16), np.ones(2))
    assert info.value.filename == __file__ and "def loss(w, x):" in info.value.text


@slow
def test_a_second_process_loads_the_kernel_from_the_disk_cache(tmp_path):
    program = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        import numpy as np, srcdiff
        from tests.test_jit import elementwise
        g = srcdiff.jit(srcdiff.grad(elementwise))
        g(np.ones(3))
        print(sum(g._dispatcher.stats.cache_hits.values()), sum(g._dispatcher.stats.cache_misses.values()))
    """)
    env = {**os.environ, "SRCDIFF_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True)
    assert first.stdout.split() == ["0", "1"], first.stderr
    assert second.stdout.split() == ["1", "0"], second.stderr


def test_a_changed_twin_compiles_new_kernels(tmp_path, monkeypatch):
    """numba's cache of a kernel keeps the twins it inlined and is invalidated only by the
    kernel's own file: the kernel's file name carries a hash of the twins' source, so kernels
    cached before the twins changed are never run again (they gave NaN and wrong gradients)."""
    from srcdiff.compiled import loader

    monkeypatch.setenv("SRCDIFF_CACHE_DIR", str(tmp_path))
    first = srcdiff.jit(srcdiff.grad(elementwise))
    x = np.linspace(0.1, 0.9, 5)
    first(x)
    before = {p.name for p in (tmp_path / "jit").glob("*.py")}
    monkeypatch.setattr(loader, "_TWINS", "another twins source")
    second = srcdiff.jit(srcdiff.grad(elementwise))
    np.testing.assert_allclose(second(x), srcdiff.grad(elementwise)(x), rtol=1e-12)
    after = {p.name for p in (tmp_path / "jit").glob("*.py")}
    assert before and after - before, "the same kernel files served another twins source"


# ----- calls of the user's own functions (srcdiff/compiled/links.py) -----


def sig(z):  # two lines: a call of a helper (one-line helpers are written in place: inline)
    e = np.exp(-z)
    return 1.0 / (1.0 + e)


def gated(a, b):
    h = np.tanh(a * b)
    return np.sum(h * sig(a))


def with_helpers(x, w):
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        out[i] = sig(x[i] * w)  # a number, on a tape
    return gated(x, w) + np.sum(sig(x * w)) + np.sum(out ** 2)  # an array; a helper's helper


def test_calls_of_helper_functions_compile():
    """Each helper's derivative is a forward function returning its residuals and a backward
    function taking them: in a loop (the residuals on the tape), helpers calling helpers."""
    check_program(with_helpers, (rng.normal(size=4), 0.7), (0, 1))
    compiled = srcdiff.jit(srcdiff.grad(with_helpers, wrt=(0, 1)))
    compiled(rng.normal(size=4), 0.7)
    kernel = compiled.kernel_source
    assert "def sig_forward(z):" in kernel and "def sig_backward(_residuals, d_out):" in kernel
    assert "sig_backward(_t3_pullback, d_t3)" in kernel and "def gated_forward(a, b):" in kernel


def power(x, n):
    if n == 0:
        return x * 0.0 + 1.0
    return x * power(x, n - 1)


def recursive(x):
    return np.sum(power(x, 3))


def sorted_helper(a):
    return np.sort(a) * a


def calls_sorted(x):
    return np.sum(sorted_helper(x) ** 2)


@slow
def test_recursion_and_a_helpers_own_line_are_refused_where_they_are():
    with pytest.raises(JitError, match="calls itself") as info:
        srcdiff.jit(srcdiff.grad(recursive))(rng.normal(size=3))
    assert info.value.filename == __file__ and "def recursive" in info.value.text
    with pytest.raises(JitError, match="rt.sort_adjoint") as info:
        srcdiff.jit(srcdiff.grad(calls_sorted))(rng.normal(size=3))
    assert info.value.filename == __file__ and "return np.sort(a) * a" in info.value.text


# ----- issue #16's spelling matrix (benchmarks/spellings.py), small inputs -----


def _spellings():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "spellings.py"
    spec = importlib.util.spec_from_file_location("srcdiff_benchmarks_spellings", path)
    if spec.name in sys.modules:
        return sys.modules[spec.name]
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


REFUSED_SPELLINGS = {  # why: a list of arrays grown by append, np.split, linear-algebra rules
    ("rnn_all", "np.sum(np.stack(hs))"):
    "rt.append_in_place", ("lstm", "np.split, sigmoid() helper"): "rt.split_adjoint",
    ("gp", "np.linalg.cholesky + solve"): "rt.", ("gp", "np.linalg.slogdet + solve"): "rt.",
    ("gp", "scipy cho_factor + cho_solve"): "rt."}


@slow
@pytest.mark.parametrize("workload, label", [
    (wl.name, label) for wl in _spellings().WORKLOADS for label in wl.spellings])
def test_spelling_matrix_compiles_or_is_refused(workload, label):
    """Every spelling of issue #16's workloads (batched matmul and softmax of 3-d arrays,
    np.dot in loops, an LSTM's matrix terms, np.einsum) as the numpy path and finite
    differences, or refused at its line for the reason listed."""
    sp = _spellings()
    wl = next(w for w in sp.WORKLOADS if w.name == workload)
    fn = wl.spellings[label]
    args = sp.as_float64(wl.make_args(np.random.default_rng(5), small=True))
    wrt = sp.argnums(wl, fn)
    if (workload, label) in REFUSED_SPELLINGS:
        with pytest.raises(JitError, match=REFUSED_SPELLINGS[workload, label]) as info:
            srcdiff.jit(srcdiff.grad(fn, wrt=wrt))(*args)
        assert info.value.filename.endswith("spellings.py")
        return
    check_program(fn, args, wrt)


# ----- has_aux=True -----


def with_aux(x, w):
    h = np.tanh(x * w)
    return np.sum(h ** 2), {"h": h, "peak": np.max(h), "n": 3.0 * w}


@pytest.mark.parametrize("maker", [srcdiff.grad, srcdiff.value_and_grad])
def test_has_aux_gradients_compile(maker):
    """The auxiliary value (a dict of arrays and numbers here) is returned by the kernel as a
    tuple and rebuilt in the numpy path's structure and types."""
    x, w = rng.normal(size=5), 0.6
    compiled, numpy_path = (srcdiff.jit(maker(with_aux, wrt=(0, 1), has_aux=True)),
                            maker(with_aux, wrt=(0, 1), has_aux=True))
    got, want = compiled(x, w), numpy_path(x, w)
    if maker is srcdiff.grad:
        (got_grads, got_aux), (want_grads, want_aux) = got, want
    else:
        ((got_value, got_aux), got_grads), ((want_value, want_aux), want_grads) = got, want
        assert type(got_value) is type(want_value)
        np.testing.assert_allclose(got_value, want_value, rtol=1e-12)
    assert_same(got_grads, want_grads)
    assert list(got_aux) == list(want_aux)
    assert_same(tuple(got_aux.values()), tuple(want_aux.values()))
    check_grad(lambda x, w: with_aux(x, w)[0], (x, w), got_grads, argnums=(0, 1))


def relu_mlp_where(W1, x, y):
    h = np.where(x @ W1 > 0, x @ W1, 0)
    return np.mean((h @ W1.T - y) ** 2)


@slow
def test_float32_kernel_keeps_numbers_in_np_where_float32():
    """np.where(c, a, 0) in a float32 program: the 0 is float32 in the kernel (numba would
    make the result float64, and every later product float64: the ReLU MLP ran 3.6x its hand
    gradient, 2x after)."""
    W1, x = rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.normal(size=(5, 4)).astype(np.float32)
    compiled = srcdiff.jit(srcdiff.grad(relu_mlp_where, wrt=0))
    got, want = compiled(W1, x, y), srcdiff.grad(relu_mlp_where, wrt=0)(W1, x, y)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    kind = next(iter(compiled._kinds.values()))
    with open(kind[4].py_func.__code__.co_filename) as fh:
        assert "rt.np.float32(0))" in fh.read()


def maybe_none(w, x, n):
    h = None
    for _ in range(n):
        h = x @ w
    return np.sum(h @ w)


def test_a_value_that_may_be_none_is_refused_at_its_line():
    """numba types h as 'an array or None' (Optional): the matmul twin refuses it with a typing
    error numba reports, at the line that reads it (was an AttributeError from the twin)."""
    args = (np.eye(2), np.ones((3, 2)), 2)
    with pytest.raises(JitError, match="does not take.*Optional") as info:
        srcdiff.jit(srcdiff.grad(maybe_none))(*args)
    assert info.value.filename == __file__ and "return np.sum(h @ w)" in info.value.text


def named_rt_jit(W, x):  # the name the kernels give the numba twins' module
    rt_jit = np.tanh(W @ x)
    return np.sum(rt_jit * rt_jit)


def test_a_variable_named_like_the_twins_module_is_kept_apart():
    """srcdiff picks the runtime's name ``rt`` so that ``rt_jit`` is free too (a variable
    rt_jit was refused: the kernel's calls of the twins read it)."""
    W, x = rng.normal(size=(2, 3)), rng.normal(size=3)
    compiled, numpy_path = srcdiff.jit(srcdiff.grad(named_rt_jit)), srcdiff.grad(named_rt_jit)
    assert_same(compiled(W, x), numpy_path(W, x))
    assert "rt__jit" in compiled.kernel_source
