"""np.meshgrid and np.broadcast_arrays (runtime/grids.py): through grad, value_and_grad, vjp,
float32 and the duck array, against the oracle; their results are views of every operand,
so a write into an operand read back through them is refused (it was a wrong value)."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff

from .end_to_end import (check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_a_number, check_vjp_of_array_output, draw)
from .helpers import make_function

PROGRAMS = {  # name -> (body of f, argument shapes)
    "meshgrid_xy": ("X, Y = np.meshgrid(x, y)\n    return np.sum(np.sin(X) * Y ** 2)",
                    [(3,), (4,)]),
    "meshgrid_ij_sparse": ("X, Y = np.meshgrid(x, y, indexing='ij', sparse=True)\n"
                           "    return np.sum(np.sin(X) * Y ** 2)", [(3,), (4,)]),
    "meshgrid_three": ("G = np.meshgrid(x, y, x * 2.0)\n    return np.sum(G[2] * G[0] + G[1])",
                       [(3,), (2,)]),
    "meshgrid_one_unread": ("X, Y = np.meshgrid(x, y)\n    return np.sum(np.tanh(X))",
                            [(3,), (2,)]),
    "meshgrid_matrix_operand": ("X, Y = np.meshgrid(x, y)\n    return np.sum(X * np.cos(Y))",
                                [(2, 2), (3,)]),
    "meshgrid_numbers": ("X, Y = np.meshgrid(x, y)\n    return np.sum(X * Y)", ["float", (3,)]),
    "broadcast_arrays": ("A, B = np.broadcast_arrays(x, y)\n    return np.sum(A * np.tanh(B))",
                         [(2, 3), (3,)]),
    "broadcast_arrays_column": ("A, B = np.broadcast_arrays(x, y)\n"
                                "    return np.sum(np.sin(A) * B)", [(2, 1), (1, 3)]),
}
CASES = [pytest.param(name, id=name) for name in PROGRAMS]


def _setup(name, seed=0):
    body, shapes = PROGRAMS[name]
    return make_function(f"def f(x, y):\n    {body}\n"), draw(shapes, seed)


@pytest.mark.parametrize("name", CASES)
def test_grad_value_and_grad_float32_and_duck_arrays(name):
    fn, args = _setup(name)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_vjp_of_a_number(fn, args)
    if all(isinstance(a, np.ndarray) for a in args):
        check_float32_gradients(fn, tuple(a.astype(np.float32) for a in args))
        check_gradients_on_duck_arrays(fn, args)


@pytest.mark.parametrize("name", ["meshgrid_xy", "broadcast_arrays"])
def test_vjp_of_the_grids_themselves(name):
    body = PROGRAMS[name][0].split("\n")[0]
    fn = make_function(f"def f(x, y):\n    {body}\n    return {body.split(' = ')[0].split(', ')[1]}\n")
    check_vjp_of_array_output(fn, draw(PROGRAMS[name][1], 3), np.random.default_rng(4))


@pytest.mark.parametrize("make", ["np.broadcast_arrays(np.ones((2, 3)), b)",
                                  "np.meshgrid(np.ones(2), b, copy=False)",
                                  "np.atleast_2d(np.ones(3), b)"])
def test_a_grid_read_after_a_write_into_its_operand_is_refused(make):
    """The results are views of every operand (not only the first): numpy shows the write
    through them, srcdiff's functional writes would not."""
    fn = make_function(f"""
        def f(x):
            b = x * 2.0
            A, B = {make}
            b[0] = 5.0
            return np.sum(B * x)
    """)
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="'B' may share memory with 'b'"):
        srcdiff.value_and_grad(fn)(np.array([0.3, -0.2, 0.5]))


@pytest.mark.parametrize("copy", ["", ", copy=True"])
def test_a_copied_grid_may_be_written_into(copy):
    """np.meshgrid copies by default: a write into a result changes nothing it was made
    from (it was refused as a change to the argument, fuzz finding O31)."""
    fn = make_function(f"""
        def f(x):
            h = np.meshgrid(np.array([0.3, -0.6]), x[0]{copy})[1].T
            h[0, :] = h[1] + 1.0
            b = x[1] * 2.0
            A, B = np.meshgrid(np.ones(2), b{copy})
            b[0] = 5.0
            return np.sum(h * x[0]) + np.sum(B.T * x[1])
    """)
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]])
    check_grad_by_finite_differences(fn, (x,))
    check_value_and_grad(fn, (x,))


def test_an_indexing_option_numpy_refuses_is_refused_at_the_line():
    fn = make_function("def f(x, y):\n    X, Y = np.meshgrid(x, y, indexing='yx')\n"
                       "    return np.sum(X * Y)\n")
    with pytest.raises(srcdiff.NotDifferentiableError, match="indexing"):
        srcdiff.grad(fn)(np.ones(2), np.ones(3))
