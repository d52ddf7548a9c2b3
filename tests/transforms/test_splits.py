"""The splits stage: np.split(x, k, ...) with an int literal k is rt.split in a variant for a
pattern of shapes; rt.split gives np.split's list of views, or calls np.split."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.runtime import helpers
from srcdiff.testing import check_grad


@pytest.mark.parametrize("shape, k, axis", [
    ((2, 12), 4, 1), ((2, 12), 3, -1), ((6,), 2, 0), ((6,), 6, -1), ((3, 4, 6), 2, 2),
    ((4, 3), 2, 0), ((0, 4), 2, 1), ((2, 0), 3, 1), ((5,), 1, 0)])
def test_the_same_views_as_np_split(shape, k, axis):
    x = np.arange(float(np.prod(shape))).reshape(shape)
    ours, numpys = helpers.split(x, k, axis), np.split(x, k, axis)
    assert type(ours) is list and len(ours) == len(numpys)
    for a, b in zip(ours, numpys):
        assert a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
        assert a.base is not None and (a.size == 0 or np.shares_memory(a, x))
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args", [(np.ones(5), 2), (np.ones(4), 0), (np.ones(4), 2, 3),
                                  (np.ones(4), -1), (np.ones((2, 4)), 2, -3)])
def test_numpys_errors(args):
    with pytest.raises(Exception) as numpy_error:
        np.split(*args)
    with pytest.raises(type(numpy_error.value)) as ours:
        helpers.split(*args)
    assert str(ours.value) == str(numpy_error.value)


def test_other_arguments_go_to_np_split():
    for args in ((np.ones(6), [2, 3]), (np.ones(6), np.int64(3)),
                 (np.ma.ones(4), 2)):
        ours, numpys = helpers.split(*args), np.split(*args)
        assert [type(p) for p in ours] == [type(p) for p in numpys]
        for a, b in zip(ours, numpys):
            np.testing.assert_array_equal(a, b)


def gates(W, x):
    i, f, o = np.split(x @ W, 3, axis=1)
    return np.sum(np.tanh(i) * f + np.sin(o))


def halves(a):  # rows, the default axis; the pieces' values leave the derivative (aux)
    top, bottom = np.split(a, 2)
    return np.sum(top * bottom), top


def test_the_specialised_variant_splits_without_numpys_layers():
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(3, 6)), rng.normal(size=(4, 3)))
    grad = srcdiff.grad(gates, wrt=(0, 1))
    grads = grad(*args)
    assert "rt.split(" in grad.source and "np.split(" not in grad.source.split("# adjoint")[0]
    check_grad(gates, args, grads, argnums=(0, 1))
    assert "rt.split(" not in srcdiff.grad(gates, wrt=(0, 1)).source  # the general variant
    value, _ = srcdiff.value_and_grad(gates, wrt=(0, 1))(*args)
    assert value == gates(*args)
    a = rng.normal(size=(4, 3))
    (value, top), da = srcdiff.value_and_grad(halves, has_aux=True)(a)
    np.testing.assert_array_equal(top, np.split(a, 2)[0])
    check_grad(lambda a: halves(a)[0], (a,), (da,), argnums=(0,))
