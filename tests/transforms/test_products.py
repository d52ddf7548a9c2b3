"""The products stage: in the variant for a pattern of small argument shapes, a matrix product
of two numpy arrays of one or two axes is written ``A.dot(B)``; ``@`` in a forward pass only
where no value leaves the derivative."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from ..helpers import code

from ..test_benchmarks_spellings import sp


# benchmarks/spellings.py's least squares, five of its spellings
lsq_at, lsq_np_dot, lsq_np_matmul, lsq_method, lsq_einsum = (
    sp.lsq_matmul_op, sp.lsq_np_dot, sp.lsq_np_matmul, sp.lsq_method_dot, sp.lsq_einsum)


SPELLINGS = [lsq_at, lsq_np_dot, lsq_np_matmul, lsq_method, lsq_einsum]


def lsq_args(rng, rows=6, strided=False):
    X = rng.normal(size=(rows, 6))[:, ::2] if strided else rng.normal(size=(rows, 3))
    return rng.normal(size=3), 0.3, X, rng.normal(size=rows)


@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_every_spelling_is_one_dot_per_product_and_right(fn, strided):
    args = lsq_args(np.random.default_rng(1), strided=strided)
    grad = srcdiff.grad(fn, wrt=(0, 1))
    check_grad(fn, args, grad(*args), argnums=(0, 1))
    source = grad.source
    assert code(source).count(".dot(") == 2, source  # the forward product and dw's
    assert "@" not in code(source) and "np.dot(" not in code(source)


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_value_and_grad_keeps_the_users_product_in_the_forward_pass(fn):
    """The value a caller sees is numpy's for the user's spelling, to the bit, on strided
    operands too (where numpy's matmul and dot may round differently); the pullback's
    product is a dot."""
    args = lsq_args(np.random.default_rng(2), rows=40, strided=True)
    vg = srcdiff.value_and_grad(fn, wrt=(0, 1))
    value, grads = vg(*args)
    assert value == fn(*args)
    check_grad(fn, args, grads, argnums=(0, 1))
    forward, backward = vg.source.split("# backward")
    assert "dw = d_t1.dot(X)" in backward
    if fn in (lsq_at, lsq_np_matmul, lsq_einsum):
        assert "X @ w" in code(forward) and ".dot(" not in forward
    else:  # np.dot and X.dot are one function: the same bits
        assert "X.dot(w)" in forward


def ranks(a, b, c):
    m = a @ b                  # (n, k) @ (k,)
    v = c @ a                  # (n,) @ (n, k)
    s = v @ b                  # (k,) @ (k,): a number
    p = a.T @ a                # (k, n) @ (n, k)
    return np.sum(np.tanh(m) * c) + s * s + np.sum(np.sin(p))


@pytest.mark.parametrize("n, k", [(4, 3), (1, 3), (4, 1), (2, 2)])
def test_every_pair_of_ranks_one_and_two(n, k):
    rng = np.random.default_rng(n * 10 + k)
    args = (rng.normal(size=(n, k)), rng.normal(size=k), rng.normal(size=n))
    grad = srcdiff.grad(ranks, wrt=(0, 1, 2))
    check_grad(ranks, args, grad(*args), argnums=(0, 1, 2))
    assert "@" not in code(grad.source), grad.source


def batched(q, k):
    return np.sum(np.tanh(q @ k.swapaxes(1, 2)))


K = np.arange(12.0).reshape(4, 3) / 10  # a global: its rank is not known to the compiler


def with_global(x):
    return np.sum(np.sin(x @ K))


def test_other_ranks_and_unknown_operands_keep_their_products():
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    grad = srcdiff.grad(batched, wrt=(0, 1))
    check_grad(batched, (q, k), grad(q, k), argnums=(0, 1))
    assert ".dot(" not in grad.source  # three axes: dot is not matmul there
    x = rng.normal(size=(2, 4))
    dwith = srcdiff.grad(with_global)
    check_grad(with_global, (x,), (dwith(x),))
    assert "x @ K" in code(dwith.source)


def test_float32_and_large_arrays():
    rng = np.random.default_rng(4)
    w, b, X, y = lsq_args(rng, rows=8)
    w32, X32, y32 = (a.astype(np.float32) for a in (w, X, y))
    dw, db = srcdiff.grad(lsq_at, wrt=(0, 1))(w32, 0.3, X32, y32)
    assert dw.dtype == np.float32
    want = srcdiff.grad(lsq_at, wrt=(0, 1))(w, 0.3, X, y)
    np.testing.assert_allclose(dw, want[0], rtol=1e-4)
    big = lsq_args(rng, rows=400_000)  # the variant for large arrays keeps @ (inplace's)
    grad = srcdiff.grad(lsq_at, wrt=(0, 1))
    check_grad(lsq_at, big, grad(*big), argnums=(0, 1), rtol=1e-4)
    assert "X @ w" in code(grad.source)
