"""The variant for large arrays (``transforms/inplace.py``, ``runtime/inplace.py``): a dead
temporary takes a result in place. Every test here runs with the threshold at 0, so that
small float64 inputs (fast finite differences) take the in-place variant; the gradients must
be those of the plain variant and of finite differences, the inputs untouched."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.pipeline import compile_derivative
from srcdiff.runtime import helpers, inplace, rules
from srcdiff.testing import check_grad

from .corpus import CASES
from .test_benchmarks_spellings import CELLS, small_args, sp


@pytest.fixture(autouse=True)
def every_call_in_place(monkeypatch):
    monkeypatch.setattr(inplace, "LARGE", 0)


def _in_place_source(fn, wrt) -> str:
    return compile_derivative(fn, wrt, gradient=True, in_place=True).source


def _check(fn, args, wrt):
    """grad and value_and_grad (twice: the general path, then the plain one) against finite
    differences and the plain variant; the arguments are not modified."""
    copies = [np.array(a, copy=True) for a in args]
    dgrad, vgrad = srcdiff.grad(fn, wrt=wrt), srcdiff.value_and_grad(fn, wrt=wrt)
    for _ in range(2):
        grads = dgrad(*args)
        value, again = vgrad(*args)
        check_grad(fn, args, grads, argnums=wrt)
        for g, h in zip(grads, again):
            np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)
    return dgrad


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_in_place(name):
    fn, make_args, wrt = CASES[name]
    _check(fn, make_args(), wrt)


@pytest.mark.parametrize("wl, label", CELLS)
def test_benchmark_spellings_in_place(wl, label):
    args, f = small_args(wl, 1), wl.spellings[label]
    grads = srcdiff.grad(f, wrt=wl.wrt)(*args)
    want = sp.bench.as_tuple(wl.hand(*args))
    for g, h in zip(grads if isinstance(grads, tuple) else (grads,), want):
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12)
    check_grad(f, args, grads, argnums=sp.argnums(wl, f))


# ----- what must not be written in place -----


def relu_sq(x):
    b = x - 0.25
    r = b * (b > 0)
    return np.sum(r * r)


def view_kept(x):
    a = x * 2.0
    v = a[1:]            # a view of a: a is not written into after this
    b = a * 3.0
    return np.sum(b) + np.sum(v * v)


def transposed(x):
    a = x * 2.0
    t = a.T
    c = a + 1.0
    return np.sum(c * t)


def listed(x):
    a = x * 2.0
    parts = [a, x]
    b = a * a
    return np.sum(b) + np.sum(parts[0] * parts[1])


def read_again(x):
    a = np.sin(x)
    b = a * 2.0
    c = a + b
    return np.sum(c * a)


def in_a_loop(x):
    a = x * 2.0
    s = 0.0
    for k in range(3):
        s = s + np.sum(a * k)
    b = a * a
    return s + np.sum(b)


def broadcast_up(x, row):
    a = x * 2.0          # (3,)
    b = a * row          # (4, 3): a's memory is too small
    return np.sum(b * b)


def mixed_precision(x, w):
    a = x * 2.0          # float32
    b = a * w            # float32 * float64 array: float64, not written into a
    return np.sum(b * b)


def scalars(x, y):
    a = x * y
    b = a * a
    return np.sum(b - a)


def helper_value(x):
    a = x * 2.0
    b = np.tanh(a)
    c = np.exp(b)
    return np.sum(c * c) + np.sum(b)


def not_elementwise(x, w):
    a = x * 2.0
    b = w * 3.0
    d = np.vecdot(a, b)          # a generalised ufunc: one number per row, not a's shape
    m = x * 1.0
    bad = np.isnan(m)            # truth values, not floats: never written into m
    c = np.matmul(x * 1.5, w)
    return np.sum(np.tanh(d)) * np.sum(x) + np.sum(c) + np.sum(x * bad)


def relu_where(x):  # dr is cos(r), not a product with r: the mask stays (masks.py)
    b = x - 0.25
    r = np.where(b > 0, b, 0.0)
    return np.sum(np.sin(r))


def relu_maximum(x):
    b = x - 0.25
    r = np.maximum(b, 0.0)
    return np.sum(np.sin(r))


def maximum_rows(a, b):  # r's adjoint is a keepdims sum's, (3, 1): the (3, 4) mask does not fit
    r = np.maximum(a * 1.0, b * 1.0)
    return np.sum(np.sum(r, axis=1, keepdims=True) ** 2)


def where_kept(x):  # b is read after the ReLU: never its memory
    b = x - 0.25
    r = np.where(b > 0, b, 0)
    return np.sum(r * b)


def relu_ties(x):  # exact ties with 0: half the adjoint, in place too
    b = x * 0.0 + x
    r = np.maximum(b, 0.0)
    return np.sum(np.sin(r))


PROGRAMS = {
    "relu_where": (relu_where, lambda r: (r.normal(size=20),), (0,)),
    "relu_maximum": (relu_maximum, lambda r: (r.normal(size=20),), (0,)),
    "maximum_rows": (maximum_rows, lambda r: (r.normal(size=(3, 1)), r.normal(size=(1, 4))), (0, 1)),
    "where_kept": (where_kept, lambda r: (r.normal(size=20),), (0,)),
    "relu_ties": (relu_ties, lambda r: (np.array([0.0, 1.5, -2.0, 0.0, 0.7]),), (0,)),
    "not_elementwise": (not_elementwise,
                        lambda r: (r.normal(size=(2, 3)), r.normal(size=3)), (0, 1)),
    "relu_sq": (relu_sq, lambda r: (r.normal(size=20),), (0,)),
    "view_kept": (view_kept, lambda r: (r.normal(size=6),), (0,)),
    "transposed": (transposed, lambda r: (r.normal(size=(3, 3)),), (0,)),
    "listed": (listed, lambda r: (r.normal(size=5),), (0,)),
    "read_again": (read_again, lambda r: (r.normal(size=5),), (0,)),
    "in_a_loop": (in_a_loop, lambda r: (r.normal(size=5),), (0,)),
    "broadcast_up": (broadcast_up, lambda r: (r.normal(size=3), r.normal(size=(4, 3))), (0, 1)),
    "scalars": (scalars, lambda r: (0.7, 1.3), (0, 1)),
    "helper_value": (helper_value, lambda r: (r.normal(size=5),), (0,)),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_hazards(name):
    fn, make_args, wrt = PROGRAMS[name]
    _check(fn, make_args(np.random.default_rng(5)), wrt)


def test_mixed_precision_keeps_float64_where_the_operator_would():
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=5).astype(np.float32), rng.normal(size=5)
    got = srcdiff.grad(mixed_precision, wrt=(0, 1))(x, w)
    with monkeypatch_off():
        want = srcdiff.grad(mixed_precision, wrt=(0, 1))(x, w)
    for g, h in zip(got, want):
        assert g.dtype == h.dtype
        np.testing.assert_array_equal(g, h)


class monkeypatch_off:
    """The plain variant, inside a test that runs everything in place."""

    def __enter__(self):
        self.saved, inplace.LARGE = inplace.LARGE, 1 << 62

    def __exit__(self, *exc):
        inplace.LARGE = self.saved


def test_the_source_shows_what_is_written_in_place_and_what_is_not():
    source = _in_place_source(relu_sq, ("x",))
    assert "r = rt.positive_product_into(b)" in source and "dr = rt.imul(r, 2)" in source
    assert "_t1 = b > 0" in source and "rt.imul(dr, _t1)" in source  # the adjoint reads the mask
    # a is read again after b = a * 2.0: b is a new array
    assert "b = a * 2.0" in _in_place_source(read_again, ("x",))
    kept = _in_place_source(view_kept, ("x",))
    assert "b = a * 3.0" in kept  # a view of a is alive
    assert "rt.imul(a" not in _in_place_source(listed, ("x",))
    assert "np.exp(b, out=rt.spare(b))" not in _in_place_source(helper_value, ("x",))  # b read later
    assert "np.tanh(a, out=rt.spare(a))" in _in_place_source(helper_value, ("x",))


def test_masked_selections_write_into_a_dead_adjoint_and_value():
    """np.where's ReLU and the mask products of np.where's and np.maximum's adjoints take
    their _into forms (runtime/inplace.py) for an operand read for the last time there."""
    source = _in_place_source(relu_where, ("x",))
    assert "r = rt.positive_part_into(b, 0.0)" in source  # the relus stage
    assert "rt.where_adjoint_x_into(dr, _t1)" in source
    assert "rt.larger_adjoint_into(dr, " in _in_place_source(relu_maximum, ("x",))
    assert "_into(" not in _in_place_source(where_kept, ("x",)).split("# backward")[0]
    x = np.array([0.5, -1.0, 2.0, 0.0])
    with monkeypatch_off():
        want = srcdiff.grad(relu_ties)(x)
    np.testing.assert_array_equal(srcdiff.grad(relu_ties)(x), want)
    np.testing.assert_allclose(want, np.cos(np.maximum(x, 0.0)) * np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0)))


_G = np.array([[1.5, -2.0, np.inf], [0.0, 3.0, -0.5]])
_M = np.array([[True, False, False], [True, True, False]])


@pytest.mark.parametrize("into, original, args, lends", [
    (inplace.where_adjoint_x_into, rules.where_adjoint_x, (_G[:, :2], _M[:, :2]), True),
    (inplace.where_adjoint_y_into, rules.where_adjoint_y, (_G[:, :2], _M[:, :2]), True),
    # inf: np.where's values, in g's memory by the C kernel where it is built
    (inplace.where_adjoint_x_into, rules.where_adjoint_x, (_G, _M), inplace.kernels is not None),
    (inplace.where_adjoint_x_into, rules.where_adjoint_x, (_G[:1, :2], _M[:, :2]), False),  # a larger mask
    (inplace.where_adjoint_x_into, rules.where_adjoint_x, (_G[:, :2].astype(np.float32), _M[:, :2]), True),
    (inplace.larger_adjoint_into, rules.larger_adjoint, (_G[:, :2], _M[:, :2], ~_M[:, :2]), True),
    (inplace.larger_adjoint_into, rules.larger_adjoint, (_G[:, :2], _M[:, :2], np.zeros((2, 2), bool)), True),
    (inplace.larger_adjoint_into, rules.larger_adjoint, (_G[:, :2], _M[:, :2], _M[:1, :2]), True),
    (inplace.larger_adjoint_into, rules.larger_adjoint, (2.0, True, False), False),  # numbers
    (inplace.where_positive_into, helpers.where_positive,
     (np.array([-0.0, 1.0, np.nan, -2.0]) > 0, np.array([-0.0, 1.0, np.nan, -2.0]), 0.0), True),
    (inplace.where_positive_into, helpers.where_positive,
     (np.array([1, -2]) > 0, np.array([1, -2]), 0), False),                          # integers
])
def test_selections_into_give_the_originals_array(into, original, args, lends):
    fresh = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    want = original(*[np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args])
    got = into(*fresh)
    position = 1 if into is inplace.where_positive_into else 0
    assert (got is fresh[position]) is lends
    assert type(got) is type(want) and np.result_type(got) == np.result_type(want)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_only_elementwise_float_ufuncs_write_into_their_operand():
    """np.vecdot and np.matmul are generalised ufuncs (their result has another shape) and
    np.isnan gives truth values: out= would broadcast or cast into the operand silently."""
    source = _in_place_source(not_elementwise, ("x", "w"))
    assert "out=" not in source.split("np.vecdot")[1].split("\n")[0]
    assert "bad = np.isnan(m)" in source and "d = np.vecdot(a, b)" in source


def test_large_arrays_take_the_in_place_variant_and_small_ones_the_plain(monkeypatch):
    """float32 arrays: float64 ones of a known pattern write in place at every size
    (``transforms/augment.py``, tests/transforms/test_augment.py)."""
    monkeypatch.setattr(inplace, "LARGE", 1000)
    dgrad = srcdiff.grad(relu_sq)
    rng = np.random.default_rng(7)
    small, large = rng.normal(size=10).astype(np.float32), rng.normal(size=2000).astype(np.float32)
    for x in (small, large, small, large):  # the general path, then the specialised call
        np.testing.assert_allclose(dgrad(x), 2 * np.maximum(x - 0.25, 0), rtol=1e-6)
        assert ("rt.imul" in dgrad.source) == (x.size >= 1000)


@pytest.mark.parametrize("a, b, ok", [
    (np.ones(4), np.ones(4), True),
    (np.ones((2, 4)), np.ones(4), True),
    (np.ones((2, 4)), np.ones((2, 1)), True),
    (np.ones(4), np.ones((2, 4)), False),           # the result is larger than a
    (np.ones(4, np.float32), np.ones(4), False),   # the result is float64
    (np.ones(4), np.ones(4, bool), True),
    (np.ones(4), 2.0, True),
    (np.ones(4), np.float64(2.0), True),
    (np.ones(4, np.float32), np.float64(2.0), False),
    (np.ones(4, int), 2.0, False),                 # an int array: a float result
    (np.ones(4)[::2], 2.0, False),                 # a view: not written into
    (2.0, 3.0, False),
])
def test_spare_says_when_the_result_fits(a, b, ok):
    assert (inplace.spare(a, b) is a) == ok
    expected = a * b
    got = inplace.imul(a.copy() if isinstance(a, np.ndarray) and a.base is None else a, b)
    np.testing.assert_array_equal(got, expected)
    assert np.result_type(got) == np.result_type(expected)


class _Lazy:
    """An array of another library (as a Dask array): its arithmetic may keep an operand."""

    shape = (3,)


LAZY = _Lazy()


def reads_a_lazy_global(x):
    a = x * 2.0
    b = a * 3.0
    if LAZY.shape[0] > 5:
        b = b + 1.0
    return np.sum(b * b)


def test_a_global_array_of_another_kind_turns_the_pass_off():
    assert "rt.imul" not in _in_place_source(reads_a_lazy_global, ("x",))
    assert "rt.imul" in _in_place_source(relu_sq, ("x",))


def test_arguments_of_another_kind_take_the_plain_variant():
    from srcdiff import api

    big = np.ones(10)
    assert api._large((big, 2.0, None, "s"))
    assert not api._large((big, LAZY))
    assert not api._large(([big],))
    dask_array = pytest.importorskip("dask.array")
    assert not api._large((big, dask_array.ones(4)))


@pytest.mark.parametrize("name", inplace.FRESH_RESULTS)
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (2, 4, 5))])
def test_fresh_rules_return_arrays_they_made(name, shapes):
    """A rule listed in FRESH_RESULTS never returns an argument or memory one shares."""
    from srcdiff import runtime as rt

    rng = np.random.default_rng(8)
    a, b = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    if name.startswith("matmul"):
        g = np.asarray(rng.normal(size=np.shape(a @ b)))
        args = (g, a, b)
    elif name.startswith("where"):
        g = rng.normal(size=shapes[0])
        args = (g, g > 0.3)
    else:
        g = rng.normal(size=shapes[0])
        args = (g, g > 0.3, g == 0.0)
    result = getattr(rt, name)(*args)
    for arg in args:
        assert result is not arg
        assert not np.shares_memory(result, arg)
