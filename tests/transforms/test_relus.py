"""The relus stage: in the variant for large arrays, a ReLU written in place reads its
operand alone (rt.positive_part_into / rt.positive_product_into), and its mask goes where
nothing else reads it. Each test lowers the in-place threshold to 0 (small inputs, fast finite
differences); gradients against finite differences and the plain variant."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.pipeline import compile_derivative
from srcdiff.runtime import inplace
from srcdiff.testing import check_grad

from ..test_benchmarks_spellings import sp

product, where = sp.relu_mask, sp.relu_where  # benchmarks/spellings.py's own ReLUs


@pytest.fixture(autouse=True)
def every_call_in_place(monkeypatch):
    monkeypatch.setattr(inplace, "LARGE", 0)


def product_left(x):
    b = x - 0.25
    r = (0 < b) * b
    return np.sum(r * r)


def where_int_zero(x):
    b = np.sin(x)
    r = np.where(0 < b, b, 0)
    return np.sum(r * r)


def product_mask_read(x):  # the adjoint reads the mask: it stays
    b = x * 2.0
    r = b * (b > 0)
    return np.sum(np.sin(r))


def where_mask_read(x):
    b = x * 2.0
    r = np.where(b > 0, b, 0.0)
    return np.sum(np.cos(r))


def in_a_model(w, x):  # a layer, whose adjoint reads the mask (cos(0) is not 0)
    a = x @ w
    h = a * (a > 0)
    return np.mean(np.sin(h))


SPELLINGS = {  # function: (call it writes, whether the mask's line stays)
    product: ("r = rt.positive_product_into(b)", False),
    product_left: ("r = rt.positive_product_into(b)", False),
    where: ("r = rt.positive_part_into(b, 0.0)", False),
    where_int_zero: ("r = rt.positive_part_into(b, 0)", False),
    product_mask_read: ("r = rt.positive_product_into(b)", True),
    where_mask_read: ("r = rt.positive_part_into(b, 0.0)", True),
}


def _code(fn, wrt="x", shapes=((5, 4),)) -> str:
    """The code srcdiff.grad runs for float64 arguments of ``shapes`` (the variant for its
    shapes: the masks stage has dropped the adjoint's mask product where the ReLU's result
    is zero), without comments (which quote the user's lines)."""
    grad = srcdiff.grad(fn, wrt=wrt)
    rng = np.random.default_rng(0)
    grad(*[rng.normal(size=shape) for shape in shapes])
    return "\n".join(line.split("#")[0] for line in grad.source.splitlines())


@pytest.mark.parametrize("fn", list(SPELLINGS), ids=lambda f: f.__name__)
def test_source_reads_the_operand_alone(fn):
    call, mask_stays = SPELLINGS[fn]
    code = _code(fn)
    assert call in code
    assert ("> 0" in code or "0 <" in code) == mask_stays
    assert "rt.imul(b, _t" not in code and "where_positive_into" not in code


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 1, 5)])
@pytest.mark.parametrize("fn", list(SPELLINGS), ids=lambda f: f.__name__)
def test_gradients_match_finite_differences_and_the_plain_variant(fn, shape, monkeypatch):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape)
    x.flat[0] = 0.25 if fn in (product, product_left, where) else 0.0  # b == 0: no derivative
    x.flat[0] += 0.3  # ...away from the kink for the finite differences
    grad = srcdiff.grad(fn)
    got = grad(x)
    check_grad(fn, (x,), (got,), argnums=(0,))
    monkeypatch.setattr(inplace, "LARGE", 1 << 60)
    np.testing.assert_array_equal(srcdiff.grad(fn)(x), got)


def test_a_model_layer_keeps_the_mask_its_adjoint_reads():
    rng = np.random.default_rng(3)
    w, x = rng.normal(size=(4, 6)), rng.normal(size=(5, 4))
    grad = srcdiff.grad(in_a_model, wrt="w")
    code = _code(in_a_model, "w", ((4, 6), (5, 4)))
    assert "h = rt.positive_product_into(a)" in code and "a > 0" in code
    check_grad(in_a_model, (w, x), (grad(w, x),), argnums=(0,))
    for dtype in (np.float32, np.float64):
        got = grad(w.astype(dtype), x.astype(dtype))
        assert got.dtype == dtype


@pytest.mark.parametrize("fn", [product, where], ids=lambda f: f.__name__)
def test_nan_and_signed_zeros_are_the_plain_variants(fn, monkeypatch):
    x = np.array([np.nan, 0.25, -np.inf, np.inf, 1.0, -1.0, 0.2500000001] * 3)
    with np.errstate(invalid="ignore"):
        got = srcdiff.grad(fn)(x)
        monkeypatch.setattr(inplace, "LARGE", 1 << 60)
        want = srcdiff.grad(fn)(x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def operand_read_later(x):
    b = x - 0.25
    r = b * (b > 0)
    return np.sum(r * r) + np.sum(b)


def other_threshold(x):
    b = x - 0.25
    r = b * (b > 0.5)
    return np.sum(r * r)


def other_array(x):
    b = x - 0.25
    c = x * 3.0
    r = b * (c > 0)
    return np.sum(r * r)


@pytest.mark.parametrize("fn", [operand_read_later, other_threshold, other_array],
                         ids=lambda f: f.__name__)
def test_other_masks_and_live_operands_are_left(fn):
    assert "positive_" not in _code(fn, shapes=((6,),))
    x = np.random.default_rng(2).normal(size=6) + 0.1
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),), argnums=(0,))


def test_only_the_in_place_variant():
    source = compile_derivative(product, ("x",), gradient=True).source
    assert "positive_" not in source and "b > 0" in source
    source = compile_derivative(product, ("x",), gradient=True, in_place=True).source
    assert "r = rt.positive_product_into(b)" in source
    assert "b > 0" in source  # without the shapes' facts the adjoint reads the mask


def test_np_wheres_relu_is_known_float64_for_the_augmented_lines():
    """rt.where_positive(c, b, 0) of a float64 b is float64 (analysis/dtypes.py): the
    adjoint after it takes its memory as the mask spelling's does (dr *= 2)."""
    assert "dr *= 2" in _code(where) and "dr *= 2" in _code(product)
