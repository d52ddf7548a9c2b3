"""End to end: the functions of runtime/shaping.py (moving, stacking, copying, picking,
padding, sorting elements) through grad, value_and_grad and vjp, on several shapes (0-d
arrays and Python floats where numpy takes them), float32, methods (``x.repeat``,
``x.take``, ``x.diagonal``), and on the duck array."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from .duckarray import HOST_SYNCS, DuckArray, wrap
from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_array_output, draw, shape_cases)
from .helpers import make_function

# name: (source, the arguments' shapes: one tuple per case); one number out
FUNCTIONS = {
    "moveaxis_roll": ("""
        def f(x):
            y = np.moveaxis(x, 0, -1)
            z = np.roll(y, (1, -1), axis=(0, 2))
            return np.sum(np.sin(z) * y) + np.sum(np.roll(x, 2) ** 3)
        """, [((2, 3, 4),), ((3, 2, 2),)]),
    "flips": ("""
        def f(x):
            return np.sum(np.flip(x) * x ** 2) + np.sum(np.fliplr(x) * np.flipud(x) ** 3) \\
                + np.sum(np.flip(x, -1) ** 3)
        """, [((3, 4),), ((2, 3, 4),)]),
    "rot90": ("""
        def f(x):
            return np.sum(np.rot90(x) ** 3) + np.sum(np.rot90(x, 2) * x) \\
                + np.sum(np.rot90(x, -1, axes=(-1, 0)) ** 3)
        """, [((3, 4),), ((2, 3, 4),)]),
    "atleast": ("""
        def f(x):
            return np.sum(np.atleast_1d(x) ** 3) + np.sum(np.atleast_2d(x) * 2.0) \\
                + np.sum(np.sin(np.atleast_3d(x)))
        """, [(F,), ((),), ((3,),), ((2, 3),)]),
    "stacks": ("""
        def f(x, y):
            return np.sum(np.hstack([x, y]) ** 3) + np.sum(np.sin(np.vstack((x, y)))) \\
                + np.sum(np.dstack([x, y, x]) ** 2 * 0.5) + np.sum(np.column_stack([x, y]) ** 3)
        """, [((3,), (3,)), ((2, 3), (2, 3)), (F, F)]),
    "hstack_rows": ("""
        def f(a, x):
            return np.sum(np.hstack([a, x, a * x[0]]) ** 3) + np.sum(np.vstack([x, x * a]) ** 3)
        """, [(F, (3,)), ((), (3,))]),
    "tile_repeat": ("""
        def f(x):
            return np.sum(np.tile(x, (2, 1)) ** 3) + np.sum(np.repeat(x, 2) ** 2 * 0.5) \\
                + np.sum(np.repeat(x, 3, axis=-1) ** 3) + np.sum(np.tile(x, 2) * np.tile(x, 2))
        """, [((3,),), ((2, 3),), ((),)]),
    "copies_of_a_number": ("""
        def f(a):
            return np.sum(np.tile(a, 3) ** 2) + np.sum(np.repeat(a, 2) ** 3)
        """, [(F,), ((),)]),
    "repeat_counts": ("""
        def f(x):
            return np.sum(np.repeat(x, [1, 0, 2], axis=-1) ** 3) + np.sum(x.repeat(2, axis=0) ** 3)
        """, [((3,),), ((2, 3),)]),
    "take": ("""
        def f(x):
            return np.sum(np.take(x, [0, 2, 2, -1]) ** 3) + np.sum(x.take([1, 1], axis=-1) ** 2) \\
                + np.sum(np.take(x, [4, -5], axis=0, mode="wrap") ** 3) + np.take(x, 1) * 2.0
        """, [((3,),), ((2, 3),)]),
    "take_along_axis": ("""
        def f(x):
            order = np.argsort(x, axis=-1)
            top = np.take_along_axis(x, order[..., -2:], axis=-1)
            return np.sum(top ** 3) + np.sum(np.take_along_axis(x, order, axis=-1) * x)
        """, [((5,),), ((3, 4),), ((2, 3, 4),)]),
    "choose": ("""
        def f(x, y):
            i = np.argmin(np.stack([x, y]), axis=0)
            return np.sum(np.choose(i, [x * x, np.sin(y)]) ** 3)
        """, [((3,), (3,)), ((2, 3), (2, 3))]),
    "diag": ("""
        def f(x):
            return np.sum(np.diag(x) ** 3) + np.sum(np.diag(np.diag(x), 1) ** 2) \\
                + np.sum(x.diagonal(-1) ** 3) + np.sum(np.diagonal(x, 1, 1, 0) * 2.0)
        """, [((3, 4),), ((4, 3),), ((3, 3),)]),
    "diagonal_nd": ("""
        def f(x):
            return np.sum(np.diagonal(x, 0, -1, 0) ** 3) + np.sum(x.diagonal(1, 1, 2) ** 2)
        """, [((2, 3, 4),), ((3, 2, 3),)]),
    "triangles": ("""
        def f(x):
            return np.sum(np.tril(x) ** 3) + np.sum(np.triu(x, 1) * x) + np.sum(np.tril(x, -1))
        """, [((3, 3),), ((3, 4),), ((2, 3, 3),), ((3,),)]),
    "pad": ("""
        def f(x):
            p = np.pad(x, 1) ** 3 + 1.0
            return np.sum(p) + np.sum(np.pad(x, (1, 2), mode="edge") ** 3) \\
                + np.sum(np.pad(x, 2, mode="reflect") ** 3) \\
                + np.sum(np.pad(x, (0, 3), "symmetric") * np.pad(x, (0, 3), mode="wrap"))
        """, [((4,),), ((3, 4),)]),
    "sort": ("""
        def f(x):
            s = np.sort(x)
            return np.sum(s * np.sort(x, axis=0) ** 2) + np.sum(np.sort(x, axis=None)[-2:] ** 3)
        """, [((5,),), ((3, 4),)]),
    "partition": ("""
        def f(x):
            p = np.partition(x, 1, axis=-1)
            return np.sum(p[..., :2] ** 3) + np.sum(np.partition(x, (0, 2), axis=0) * x)
        """, [((4,),), ((3, 4),)]),
}


CASES = shape_cases((name, all_shapes) for name, (_, all_shapes) in FUNCTIONS.items())


def _setup(name, shapes, seed=0):
    return make_function(FUNCTIONS[name][0], "f"), draw(shapes, seed)


@pytest.mark.parametrize("name, shapes", CASES)
def test_grad_matches_finite_differences(name, shapes):
    check_grad_by_finite_differences(*_setup(name, shapes))


@pytest.mark.parametrize("name, shapes", CASES)
def test_value_and_grad(name, shapes):
    check_value_and_grad(*_setup(name, shapes, seed=1))


@pytest.mark.parametrize("name, shapes", CASES)
def test_float32_in_float32_out(name, shapes):
    check_float32_gradients(*_setup(name, shapes))


DUCK_CASES = [c for c in CASES if F not in c.values[1]]


@pytest.mark.parametrize("name, shapes", DUCK_CASES)
def test_gradients_on_duck_arrays(name, shapes):
    check_gradients_on_duck_arrays(*_setup(name, shapes))


# ----- vjp of array outputs -----

ARRAY_OUTPUTS = {
    "flip_roll": "def f(x, y):\n    return np.flip(x, 0) * y + np.roll(x * y, 1, axis=-1)\n",
    "stacks": "def f(x, y):\n    return np.vstack([x, y * x]) * 2.0 + np.tile(y, (2, 1))\n",
    "picks": ("def f(x, y):\n"
              "    return np.take(x, [2, 0, 2], axis=-1) * np.repeat(y[..., :1], 3, axis=-1)\n"),
    "pad_sort": "def f(x, y):\n    return np.pad(np.sort(x * y, axis=-1), (1, 0))\n",
    "diagonal": "def f(x, y):\n    return np.tril(x) * y[..., :1] + np.diagonal(x * y, 0, 0, -1)[:1]\n",
}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
def test_vjp_of_array_outputs(name):
    rng = np.random.default_rng(2)
    args = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    check_vjp_of_array_output(make_function(ARRAY_OUTPUTS[name], "f"), args, rng)


def test_method_spellings_are_the_functions():
    fn = make_function("""
        def f(x):
            i = np.argmax(np.stack([x[0], x[1]]), axis=0)
            picked = i.choose([x[0] * x[1], np.sin(x[1])])
            return np.sum(picked ** 3) + np.sum(x.repeat(2) * x.take([0, 0, 5]).sum()) \\
                + np.sum(x.diagonal() ** 3)
        """, "f")
    x = np.random.default_rng(3).standard_normal((2, 3))
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


# ----- what srcdiff refuses -----


def test_pad_with_constant_values():
    fn = make_function("""
        def f(x, c):
            y = np.pad(x, 1, constant_values=2.0)
            z = np.pad(x * c[:2, :3], ((0, 1), (2, 0)), constant_values=c[0, 0])
            return np.sum(y ** 2 * c) + np.sum(z ** 3)
        """, "f")
    rng = np.random.default_rng(4)
    x, c = rng.standard_normal((2, 3)), rng.standard_normal((4, 5))
    check_grad(fn, (x, c), (srcdiff.grad(fn)(x, c),), argnums=(0,))
    value, dx = srcdiff.value_and_grad(fn)(x, c)
    np.testing.assert_allclose(value, fn(x, c), rtol=1e-12)
    check_grad(fn, (x, c), (dx,), argnums=(0,))


def test_pad_with_constant_values_of_duck_arrays_and_vjp():
    fn = make_function("""
        def f(x):
            return np.pad(x, (1, 2), constant_values=(2.0, 3.0)) * 2.0
        """, "f")
    x = np.random.default_rng(5).standard_normal(4)
    out, pullback = srcdiff.vjp(fn, x)
    v = np.arange(7.0)
    dx, = pullback(v)
    check_vjp(fn, (x,), (dx,), cotangent=v)
    HOST_SYNCS.reset()
    duck_out, duck_pullback = srcdiff.vjp(fn, wrap(x))
    got, = duck_pullback(wrap(v))
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(got) is DuckArray
    np.testing.assert_allclose(got.get(), dx, rtol=1e-12)


def test_pad_values_that_need_a_gradient_are_refused_where_the_call_is():
    """The rule reads no ``constant_values``: one that depends on a differentiated value is
    refused at compile time with the line, not differentiated wrongly."""
    fn = make_function("""
        def f(x):
            return np.sum(np.pad(x, 1, constant_values=x[0]) ** 2)
        """, "f")
    with pytest.raises(srcdiff.NotDifferentiableError, match="constant_values="):
        srcdiff.grad(fn)(np.ones(3))


def test_pad_in_a_mode_without_a_rule_is_refused():
    fn = make_function("""
        def f(x):
            return np.sum(np.pad(x, 1, mode="mean") ** 2)
        """, "f")
    with pytest.raises(srcdiff.NotDifferentiableError, match="np.pad with mode='mean'") as info:
        srcdiff.grad(fn)(np.ones(3))
    assert info.value.text.strip() == 'return np.sum(np.pad(x, 1, mode="mean") ** 2)'


# The list np.split returns: the rule takes one adjoint per piece (tests/runtime/test_shaping.py),
# and the compiler indexes and unpacks it (sequence=True rules, issue 14 item 2).
def test_a_piece_of_a_split_by_index():
    fn = make_function("""
        def f(x):
            parts = np.split(x, 2, axis=-1)
            return np.sum(parts[0] ** 2) + np.sum(parts[1] * 3.0)
        """, "f")
    x = np.random.default_rng(4).standard_normal((3, 4))
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


def test_the_pieces_of_a_split_unpacked():
    fn = make_function("""
        def f(x):
            a, b, c = np.array_split(x, 3)
            return np.sum(a ** 2 * b[0]) + np.sum(np.sin(c))
        """, "f")
    x = np.random.default_rng(5).standard_normal(8)
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),))
