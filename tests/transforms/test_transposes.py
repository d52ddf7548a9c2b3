"""The transposes stage (a pullback's transposed product as the product of the transposes)
and the ranks stage's products of two stacks of matrices, in the variant for a pattern of
argument shapes: every spelling of a transpose, against finite differences."""

import numpy as np
import pytest

import srcdiff
from srcdiff.pipeline import compile_derivative
from srcdiff.testing import check_grad

from ..helpers import code


def scores_swapaxes(q, k):
    return np.sum(np.tanh(q @ k.swapaxes(1, 2)))


def scores_negative_axes(q, k):
    return np.sum(np.tanh(q @ np.swapaxes(k, -1, -2)))


def scores_transpose(q, k):
    return np.sum(np.tanh(q @ k.transpose(0, 2, 1)))


def scores_np_transpose(q, k):
    return np.sum(np.tanh(np.matmul(q, np.transpose(k, (0, 2, 1)))))


def scores_einsum(q, k):
    return np.sum(np.tanh(np.einsum("bid,bjd->bij", q, k)))


STACKS = [scores_swapaxes, scores_negative_axes, scores_transpose, scores_np_transpose,
          scores_einsum]


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 5, 4)), ((1, 3, 4), (1, 3, 4)),
                                    ((3, 1, 2), (3, 4, 2))])
@pytest.mark.parametrize("fn", STACKS, ids=lambda f: f.__name__)
def test_stacks_of_matrices(fn, shapes):
    rng = np.random.default_rng(len(fn.__name__))
    q, k = (rng.normal(size=s) for s in shapes)
    grad = srcdiff.grad(fn, wrt=(0, 1))
    dq, dk = grad(q, k)
    check_grad(fn, (q, k), (dq, dk), argnums=(0, 1))
    body = code(grad.source)
    assert "rt.matmul_adjoint" not in body and "transpose_adjoint" not in body
    assert "@ q" in body  # dk as one product, in the caller's layout
    # q's adjoint reads k, not k's transpose swapped back
    assert any(line.strip().startswith("dq =") and line.rstrip().endswith("@ k")
               for line in body.splitlines()), grad.source
    assert dk.flags.c_contiguous and dk.base is None


def linear_transposed(x, W):
    return np.sum(np.sin(x @ W.T))


def linear_np_transpose(x, W):
    return np.sum(np.sin(np.dot(x, np.transpose(W))))


@pytest.mark.parametrize("fn", [linear_transposed, linear_np_transpose], ids=lambda f: f.__name__)
@pytest.mark.parametrize("rows", [1, 5])
def test_a_matrix_used_transposed(fn, rows):
    rng = np.random.default_rng(rows)
    x, W = rng.normal(size=(rows, 3)), rng.normal(size=(4, 3))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    dx, dW = grad(x, W)
    check_grad(fn, (x, W), (dx, dW), argnums=(0, 1))
    assert "transpose_adjoint" not in code(grad.source)
    assert "dW = d_t2.T.dot(x)" in grad.source  # one product, in the caller's layout
    assert "dx = d_t2.dot(W)" in grad.source  # W, not W.T's transpose
    assert dW.flags.c_contiguous and dW.base is None


def batch_broadcast(q, k):  # k's batch axis of 1 broadcasts: the rule's sum stays
    return np.sum(np.tanh(q @ k.swapaxes(-1, -2)))


def product_read_twice(q, k):
    m = q @ k.swapaxes(1, 2)
    return np.sum(np.tanh(m)) + np.sum(m * m)


def test_what_stays_as_it_was():
    rng = np.random.default_rng(9)
    q, k = rng.normal(size=(3, 2, 4)), rng.normal(size=(1, 5, 4))
    grad = srcdiff.grad(batch_broadcast, wrt=(0, 1))
    check_grad(batch_broadcast, (q, k), grad(q, k), argnums=(0, 1))
    assert "rt.matmul_adjoint_x2(" in grad.source  # (3, ...) against (1, ...): summed back
    k = rng.normal(size=(3, 5, 4))
    grad = srcdiff.grad(product_read_twice, wrt=(0, 1))
    check_grad(product_read_twice, (q, k), grad(q, k), argnums=(0, 1))
    general = compile_derivative(scores_swapaxes, ("q", "k"), gradient=True).source
    assert "rt.matmul_adjoint_x2(" in general  # without shapes: the rule
