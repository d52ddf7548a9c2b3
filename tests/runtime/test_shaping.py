"""The rules of runtime/shaping.py over a case table: against finite differences (float64),
float32 in / float32 out, and on the duck array (no host conversion), with the harness of
tests/runtime/rule_table.py. The functions that return a list of arrays (``np.split``) have a
table of their own: their rule takes one adjoint per piece, ``None`` for a piece not used."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.errors import SrcdiffError
from srcdiff.runtime import rule_for, shaping
from srcdiff.testing import check_vjp
from tests.duckarray import HOST_SYNCS, DuckArray, wrap
from tests.runtime.rule_table import (F, Const, Seq, case, check_case_by_finite_differences,
                                      check_float32, check_on_duck_arrays, float32_cases,
                                      rules_without_a_case, scalar_output_cases)

IDX = np.array([[0, 2, 1, 0], [1, 1, 2, 0]])  # an index into three choices
ORDER = np.array([[3, 0, 3], [1, 2, 2], [0, 0, 1]])  # along axis 1 of a (3, 4): repeats

CASES = [
    # ----- moving and flipping -----
    case(np.moveaxis, (2, 3, 4), source=0, destination=-1),
    case(np.moveaxis, (2, 3, 4), source=(0, 1), destination=(-1, 0)),
    case(np.moveaxis, (3,), source=0, destination=0),
    case(np.roll, (5,), shift=2),
    case(np.roll, (2, 3), shift=4),  # no axis: the flattened array
    case(np.roll, (2, 3), shift=-1, axis=1),
    case(np.roll, (2, 3), shift=(1, 2), axis=(0, 1)),
    case(np.roll, (2, 3, 4), shift=[1, -1], axis=[-1, 0]),
    case(np.roll, (), shift=1),
    case(np.flip, (2, 3)),
    case(np.flip, (2, 3), axis=0),
    case(np.flip, (2, 3, 4), axis=(0, -1)),
    case(np.flip, (3,)),
    case(np.flip, ()),
    case(np.fliplr, (2, 3)),
    case(np.fliplr, (2, 3, 4)),
    case(np.flipud, (3,)),
    case(np.flipud, (2, 3)),
    case(np.rot90, (2, 3)),
    case(np.rot90, (2, 3), k=2),
    case(np.rot90, (2, 3), k=-1),
    case(np.rot90, (2, 3, 4), k=3, axes=(1, 2)),
    case(np.rot90, (2, 3, 4), axes=(-1, 0)),
    *(case(fn, s) for fn in (np.atleast_1d, np.atleast_2d, np.atleast_3d)
      for s in (F, (), (3,), (2, 3), (2, 3, 4, 1))),
    # ----- stacking -----
    case(np.hstack, Seq((2,), (3,))),
    case(np.hstack, Seq(F, (2,), ())),
    case(np.hstack, Seq((2, 3), (2, 1))),
    case(np.hstack, Seq((2, 1, 3), (2, 2, 3))),
    case(np.hstack, Seq((2,), (3,)), dtype=np.float64),
    case(np.vstack, Seq((3,), (3,))),
    case(np.vstack, Seq((2, 3), (3,))),
    case(np.vstack, Seq(F, ())),
    case(np.vstack, Seq((1, 2, 3), (2, 2, 3)), dtype=np.float64),
    case(np.dstack, Seq((2,), (2,))),
    case(np.dstack, Seq((2, 3), (2, 3, 2))),
    case(np.dstack, Seq(F, F)),
    case(np.column_stack, Seq((3,), (3, 2))),
    case(np.column_stack, Seq((3,), (3,))),
    case(np.column_stack, Seq(F, ())),
    # ----- copies -----
    case(np.tile, (3,), reps=2),
    case(np.tile, (2, 3), reps=(2, 1)),
    case(np.tile, (2, 3), reps=(2, 1, 3)),
    case(np.tile, (2, 3, 4), reps=(2,)),
    case(np.tile, F, reps=3),
    case(np.tile, (), reps=(2, 2)),
    case(np.repeat, (3,), repeats=2),
    case(np.repeat, (2, 3), repeats=2),  # no axis: the flattened array
    case(np.repeat, (2, 3), repeats=3, axis=1),
    case(np.repeat, (2, 3), repeats=[1, 0, 2], axis=-1),
    case(np.repeat, (3, 2), repeats=[2, 1, 3], axis=0),
    case(np.repeat, (2, 3), repeats=[2, 1, 1, 0, 3, 1]),
    case(np.repeat, (2, 3), repeats=[2], axis=0),
    case(np.repeat, F, repeats=3),
    case(np.repeat, (), repeats=[2]),
    case(np.repeat, (), repeats=3, axis=-1),  # a 0-d array takes any axis
    # ----- picking elements -----
    case(np.take, (5,), indices=[0, 3, 3, -1]),
    case(np.take, (2, 3), indices=np.array([[0, 5], [5, 2]])),  # no axis: flattened
    case(np.take, (3, 4), indices=[2, 0, 2], axis=0),
    case(np.take, (3, 4), indices=1, axis=-1),
    case(np.take, (3, 4), indices=[5, -6, 1], axis=1, mode="wrap"),
    case(np.take, (3, 4), indices=[7, -1, 2], axis=1, mode="clip"),
    case(np.take, (2, 3, 4), indices=np.array([[1, 1], [0, 2]]), axis=1),
    case(np.take, (5,), indices=3),  # one number out
    case(np.take, (), indices=[0, 0]),
    case(np.take, (), indices=[0, -1], axis=0),
    case(np.lib.stride_tricks.sliding_window_view, (6,), window_shape=3),  # windows overlap
    case(np.lib.stride_tricks.sliding_window_view, (4, 5), window_shape=(2, 3)),
    case(np.lib.stride_tricks.sliding_window_view, (4, 5), window_shape=2, axis=-1),
    case(np.lib.stride_tricks.sliding_window_view, (3, 4, 5), window_shape=(2, 2), axis=(2, 0)),
    # np.add.at, as normalize writes it: added_at(a, indices, b)
    case(shaping.added_at, (4,), (3,), indices=[0, 2, 0]),
    case(shaping.added_at, (3, 2), (), indices=(np.array([1, 1]), np.array([0, 0]))),
    case(np.bincount, (5,), x=np.array([0, 2, 1, 2, 0])),  # weights: the bins' sums
    case(np.bincount, (3,), x=np.array([3, 3, 1]), minlength=6),
    case(np.take_along_axis, (3, 4), indices=ORDER, axis=1),
    case(np.take_along_axis, (3, 4), indices=np.array([[2, 0, 2, 1]]), axis=0),
    case(np.take_along_axis, (2, 4), indices=np.array([[1], [0], [1]]), axis=0),  # broadcast
    case(np.take_along_axis, (2, 3, 4), indices=np.array([[[3], [0], [3]], [[1], [1], [2]]]),
         axis=-1),
    case(np.take_along_axis, (2, 3), indices=np.array([5, 0, 5, -1]), axis=None),
    case(np.choose, Const(IDX[0]), Seq((4,), (4,), (4,))),
    case(np.choose, Const(IDX), Seq((4,), (2, 4), F)),  # choices broadcast
    case(np.choose, Const(IDX[:, :1]), Seq((2, 3), (3,), ())),  # ... and the index too
    case(np.choose, Const(IDX + 2), Seq((2, 4), (2, 4), (2, 4)), mode="wrap"),
    case(np.choose, Const(IDX * 3 - 2), Seq((2, 4), (4,), (2, 4)), mode="clip"),
    case(np.choose, Const(IDX), (3, 4)),  # one array of choices, along its first axis
    case(np.diag, (3,)),
    case(np.diag, (3,), k=1),
    case(np.diag, (2,), k=-2),
    case(np.diag, (3, 3)),
    case(np.diag, (3, 4), k=1),
    case(np.diag, (4, 3), k=-2),
    case(np.diagonal, (3, 3)),
    case(np.diagonal, (3, 4), offset=1),
    case(np.diagonal, (4, 3), offset=-1),
    case(np.diagonal, (2, 3, 4), axis1=1, axis2=2),
    case(np.diagonal, (3, 2, 4), offset=1, axis1=-1, axis2=0),
    case(np.diagonal, (2, 3, 3), offset=-1, axis1=2, axis2=1),
    *(case(fn, s, **opts) for fn in (np.tril, np.triu)
      for s, opts in (((3, 3), {}), ((3, 4), {"k": 1}), ((4, 3), {"k": -1}), ((2, 3, 3), {}),
                      ((3,), {}), ((3,), {"k": -1}))),
    # ----- padding -----
    case(np.pad, (3,), pad_width=1),
    case(np.pad, (2, 3), pad_width=((1, 0), (2, 1))),
    case(np.pad, (2, 3), pad_width=(1, 2)),
    case(np.pad, (2, 3), pad_width=((1,), (2,))),
    case(np.pad, (2, 3), pad_width={1: (0, 2)}),
    case(np.pad, (2, 3, 2), pad_width=[(0, 1)], mode="constant"),
    case(np.pad, (2, 3), pad_width=1, constant_values=2.0),
    case(np.pad, (2, 3), pad_width=(1, 2), constant_values=((1.0, 2.0), (3.0, 4.0))),
    *(case(np.pad, s, pad_width=w, mode=m)
      for m in ("edge", "reflect", "symmetric", "wrap")
      for s, w in (((4,), 2), ((2, 3), ((1, 2), (3, 1))))),
    # ----- sorting -----
    case(np.sort, (5,)),
    case(np.sort, (3, 4)),
    case(np.sort, (3, 4), axis=0),
    case(np.sort, (2, 3, 4), axis=1, kind="stable"),
    case(np.sort, (3, 4), axis=None),
    case(np.partition, (6,), kth=2),
    case(np.partition, (3, 5), kth=(1, 3), axis=1),
    case(np.partition, (4, 3), kth=-1, axis=0),
    case(np.partition, (3, 4), kth=2, axis=None),
    case(np.partition, (40,), kth=0),  # numpy's own partition is not a[argpartition(a)] here
]


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    check_case_by_finite_differences(case)


@pytest.mark.parametrize("case", float32_cases(CASES))
def test_float32_in_float32_out(case):
    check_float32(case)


# ----- functions that return a list of arrays -----

# (function, operand shape, options, which pieces have no adjoint)
SPLITS = [
    (np.split, (6,), {"indices_or_sections": 3}, ()),
    (np.split, (2, 6), {"indices_or_sections": [1, 4], "axis": 1}, (1,)),
    (np.split, (4, 3), {"indices_or_sections": 2, "axis": -2}, (0,)),
    (np.split, (3, 2), {"indices_or_sections": [1]}, (0, 1)),  # no piece used
    (np.array_split, (7,), {"indices_or_sections": 3}, ()),
    (np.array_split, (2, 5), {"indices_or_sections": [1, -1, 9], "axis": -1}, (2,)),
    (np.array_split, (3, 4), {"indices_or_sections": 4}, (1,)),  # an empty piece
    (np.hsplit, (2, 4), {"indices_or_sections": 2}, ()),
    (np.hsplit, (6,), {"indices_or_sections": [2]}, ()),
    (np.hsplit, (2, 3, 2), {"indices_or_sections": [1]}, (0,)),
    (np.vsplit, (4, 2), {"indices_or_sections": 2}, ()),
    (np.vsplit, (3, 2, 2), {"indices_or_sections": [1, 2]}, (1,)),
    (np.dsplit, (1, 2, 4), {"indices_or_sections": [1, 3]}, ()),
    (np.dsplit, (2, 1, 4), {"indices_or_sections": 2}, (1,)),
]


def _split_param(fn, shape, options, unused):
    opts = ",".join(f"{k}={v}" for k, v in options.items()).replace(" ", "")
    return pytest.param(fn, shape, options, unused,
                        id=f"np.{fn.__name__}-{shape}-{opts}-unused{list(unused)}".replace(" ", ""))


SPLIT_CASES = [_split_param(*s) for s in SPLITS]


def _split_setup(fn, shape, options, unused, dtype=np.float64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    gs = [None if i in unused else rng.standard_normal(p.shape).astype(dtype)
          for i, p in enumerate(fn(x, **options))]
    return x, gs


def _weighted(fn, options, gs):
    """``sum_i <g_i, piece_i>`` as one number: the oracle's function of the split's operand."""
    return lambda x: sum(np.sum(g * p) for g, p in zip(gs, fn(x, **options)) if g is not None)


@pytest.mark.parametrize("fn, shape, options, unused", SPLIT_CASES)
def test_split_rule_matches_finite_differences(fn, shape, options, unused):
    x, gs = _split_setup(fn, shape, options, unused)
    dx = rule_for(fn).call(gs, x, **options)
    check_vjp(_weighted(fn, options, gs), (x,), (dx,))


@pytest.mark.parametrize("fn, shape, options, unused", SPLIT_CASES)
def test_split_rule_float32_and_tuple_adjoints(fn, shape, options, unused):
    x, gs = _split_setup(fn, shape, options, unused, np.float32)
    dx = rule_for(fn).call(tuple(gs), x, **options)  # a tuple of adjoints as well as a list
    assert dx.dtype == np.float32 and dx.shape == x.shape
    x64, gs64 = _split_setup(fn, shape, options, unused)
    np.testing.assert_allclose(dx, rule_for(fn).call(gs64, x64, **options), rtol=1e-6)


@pytest.mark.parametrize("fn, shape, options, unused", SPLIT_CASES)
def test_split_rule_on_duck_arrays(fn, shape, options, unused):
    x, gs = _split_setup(fn, shape, options, unused)
    want = rule_for(fn).call(gs, x, **options)
    duck_gs = [None if g is None else wrap(g) for g in gs]
    HOST_SYNCS.reset()
    got = rule_for(fn).call(duck_gs, wrap(x), **options)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(got) is DuckArray and got.shape == x.shape
    np.testing.assert_array_equal(got.get(), want)


# ----- every rule has cases -----


def test_every_rule_of_shaping_is_in_a_table():
    missing = rules_without_a_case(CASES, (shaping,), covered={s[0] for s in SPLITS})
    assert not missing, f"rules without a test case: {missing}"


# ----- on the duck array: no host conversion, numpy's values -----


@pytest.mark.parametrize("case", CASES)
def test_every_rule_on_duck_arrays(case):
    check_on_duck_arrays(case)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("case", scalar_output_cases(CASES))
def test_a_number_cotangent_on_duck_arrays(case, g):
    """grad's seed is a number: a rule reached with one on device operands makes nothing on
    the host and gives numpy's values (themselves checked against finite differences)."""
    check_on_duck_arrays(case, cotangent=g)


# ----- what the table cannot show -----


def test_repeated_picks_add_up():
    x = np.zeros((2, 3), dtype=np.float32)
    dx = rule_for(np.take).call(np.ones(4), x, indices=[1, 1, 4, 1])
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, [[0.0, 3.0, 0.0], [0.0, 1.0, 0.0]])
    dx = rule_for(np.take_along_axis).call(np.ones((2, 3)), x, indices=np.array([[2, 2, 0]] * 2),
                                           axis=1)
    np.testing.assert_array_equal(dx, [[1.0, 0.0, 2.0], [1.0, 0.0, 2.0]])


def test_partition_routes_each_value_back_to_where_it_came_from():
    x = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 0.0])
    ans = np.partition(x, 2)
    g = np.arange(6.0)
    dx = rule_for(np.partition).call(g, ans, x, kth=2)
    for j, value in enumerate(ans):  # the adjoint of output j lands on the input equal to it
        assert dx[list(x).index(value)] == g[j]


def test_pad_in_a_mode_without_a_rule_is_refused():
    with pytest.raises(SrcdiffError, match="np.pad with mode='mean'"):
        rule_for(np.pad).call(np.ones(5), np.ones(3), pad_width=1, mode="mean")
