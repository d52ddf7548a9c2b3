"""runtime/_kernels.c: the one-pass mask selections of the in-place runtime give, in their
first array's memory, exactly the values of the numpy spellings they replace (NaN,
infinities, signed zeros, float32, every block boundary, bool bytes other than 0 and 1), and
decline (None, nothing written) every array they do not handle. The runtime functions that
call them give the same arrays with the kernels and with numpy alone."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.runtime import helpers, inplace, rules

kernels = inplace.kernels
pytestmark = pytest.mark.skipif(kernels is None, reason="built without a C compiler")

_SPECIAL = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-310, -1e-310,
            np.finfo(np.float64).max, np.finfo(np.float64).tiny]
# sizes around the vector width and the kernels' 4096-element blocks
_SIZES = [0, 1, 2, 3, 7, 31, 4095, 4096, 4097, 8193, 10_001]


def _values(n: int, dtype, finite: bool = False) -> np.ndarray:
    rng = np.random.default_rng(n)
    v = rng.normal(size=n)
    if n:
        special = [s for s in _SPECIAL if np.isfinite(s) or not finite]
        picks = rng.integers(0, n, size=max(1, n // 7))
        v[picks] = rng.choice(special, size=picks.size)
    with np.errstate(over="ignore"):
        return v.astype(dtype)


def _mask(n: int, odd_bytes: bool = False) -> np.ndarray:
    """A random bool mask; with ``odd_bytes``, its True bytes 1, 2 and 255 (numpy reads any
    nonzero byte as True)."""
    rng = np.random.default_rng(n + 1)
    raw = rng.integers(0, 2, size=n).astype(np.uint8)
    if odd_bytes:
        raw *= rng.choice(np.array([1, 2, 255], np.uint8), size=n)
    return raw.view(bool)


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN equals NaN here
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def _numpy(expression, *arrays):
    with np.errstate(invalid="ignore", over="ignore"):
        return expression(*[a.copy() for a in arrays])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", _SIZES)
@pytest.mark.parametrize("odd_bytes", [False, True])
def test_mask_multiply_is_numpys_product(n, dtype, odd_bytes):
    a, m = _values(n, dtype), _mask(n, odd_bytes)
    want = _numpy(lambda a, m: a * m, a, m)
    assert kernels.mask_multiply(a, m) is a
    _same(a, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", _SIZES)
@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("finite", [True, False])
def test_select_is_the_where_adjoint_rule(n, dtype, keep, finite):
    """The rule's own values: g * m where every element is finite (-0.0 kept), np.where's
    (+0.0) where one is not."""
    rule = rules.where_adjoint_x if keep else rules.where_adjoint_y
    for odd_bytes in (False, True):
        a, m = _values(n, dtype, finite), _mask(n, odd_bytes)
        want = _numpy(rule, a, m)
        assert kernels.select(a, m, keep) is a
        _same(a, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", _SIZES)
def test_positive_part_is_np_where_and_positive_product_the_mask_product(n, dtype):
    a = _values(n, dtype)
    want = _numpy(lambda a: np.where(a > 0, a, 0), a)
    assert kernels.positive_part(a) is a
    _same(a, want)
    a = _values(n, dtype)
    want = _numpy(lambda a: a * (a > 0), a)
    assert kernels.positive_product(a) is a
    _same(a, want)


def test_shapes_of_more_axes_are_flat_memory():
    a, m = _values(60, np.float64).reshape(3, 4, 5), _mask(60).reshape(3, 4, 5)
    want = _numpy(lambda a, m: a * m, a, m)
    assert kernels.mask_multiply(a, m) is a
    _same(a, want)


class Sub(np.ndarray):
    pass


def _declined():
    """(arrays, what makes the kernels decline them)."""
    a = _values(40, np.float64)
    m = _mask(40)
    read_only = a.copy()
    read_only.flags.writeable = False
    overlap = a.copy()
    return [
        ((a[::2].copy()[::2], m[:10]), "strided"),
        ((a.reshape(5, 8).T.copy(order="F"), m.reshape(5, 8).T.copy()), "Fortran order"),
        ((read_only, m), "read-only"),
        ((a.astype(np.float16), m), "float16"),
        ((a.astype(np.int64), m), "integers"),
        ((a.astype(np.complex128), m), "complex"),
        ((a.astype(">f8"), m), "byte-swapped"),
        ((a.copy().view(Sub), m), "a subclass"),
        ((a.copy(), m[:20]), "mask of another shape"),
        ((a.copy().reshape(5, 8), m), "mask of another shape, same size"),
        ((a.copy(), m.astype(np.uint8)), "mask not bool"),
        ((a.copy(), m[::-1]), "mask not contiguous"),
        ((overlap, overlap.view(bool)[:40]), "mask in the array's memory"),
        ((a.tolist(), m), "a list"),
    ]


@pytest.mark.parametrize("arrays, why", _declined(), ids=[w for _, w in _declined()])
def test_what_the_kernels_decline_they_leave_untouched(arrays, why):
    first, mask = arrays
    before = np.array(first, copy=True)
    uses_mask = why.startswith("mask")
    assert kernels.mask_multiply(first, mask) is None
    assert kernels.select(first, mask, True) is None
    if not uses_mask:
        assert kernels.positive_part(first) is None
        assert kernels.positive_product(first) is None
    np.testing.assert_array_equal(np.asarray(first), before)


def test_wrong_calls_raise():
    with pytest.raises(TypeError):
        kernels.mask_multiply(np.ones(2))
    with pytest.raises(TypeError):
        kernels.select(np.ones(2), np.ones(2, bool))


# ----- the runtime functions: the same arrays with the kernels and with numpy alone


def _cases():
    n = 5000
    g, m = _values(n, np.float64), _mask(n)
    finite = _values(n, np.float64, finite=True)
    return [
        ("imul by a mask", lambda a, m: inplace.imul(a, m), (finite, m)),
        ("imul by a mask, non-finite", lambda a, m: inplace.imul(a, m), (g, m)),
        ("imul by a float32 mask product", lambda a, m: inplace.imul(a, m),
         (_values(n, np.float32, finite=True), m)),
        ("where_adjoint_x_into", inplace.where_adjoint_x_into, (finite, m)),
        ("where_adjoint_x_into, non-finite", inplace.where_adjoint_x_into, (g, m)),
        ("where_adjoint_y_into, non-finite", inplace.where_adjoint_y_into, (g, m)),
        ("larger_adjoint_into, no ties", inplace.larger_adjoint_into,
         (finite, m, np.zeros(n, bool))),
        ("where_positive_into", lambda a: inplace.where_positive_into(a > 0, a, 0.0), (g,)),
        ("positive_part_into", lambda a: inplace.positive_part_into(a, 0), (g,)),
        ("positive_product_into", inplace.positive_product_into, (g,)),
        ("positive_product_into, float32", inplace.positive_product_into, (_values(n, np.float32),)),
    ]


@pytest.mark.parametrize("name, fn, args", _cases(), ids=[c[0] for c in _cases()])
def test_runtime_gives_the_same_array_with_and_without_kernels(name, fn, args, monkeypatch):
    fresh = lambda: [a.copy() for a in args]  # noqa: E731
    first = fresh()
    with np.errstate(invalid="ignore"):
        got = fn(*first)
        monkeypatch.setattr(inplace, "kernels", None)
        want = fn(*fresh())
    _same(got, want)
    assert got is first[0]  # written into the operand, as numpy's out= does


def test_the_relus_runtime_matches_the_helpers_it_stands_for():
    """positive_part_into(b, y) is where_positive(b > 0, b, y); positive_product_into(b) is
    b * (b > 0); for numbers and integer arrays, a new value."""
    for b in (_values(300, np.float64), _values(300, np.float32), np.arange(-3, 4), 2.5, -1):
        for y in (0, 0.0):
            want = helpers.where_positive(np.asarray(b) > 0, np.array(b, copy=True), y)
            got = inplace.positive_part_into(np.array(b, copy=True) if np.ndim(b) else b, y)
            _same(np.asarray(got), np.asarray(want))
        want = _numpy(lambda b: b * (b > 0), np.asarray(b))
        got = inplace.positive_product_into(np.array(b, copy=True) if np.ndim(b) else b)
        _same(np.asarray(got), np.asarray(want))
