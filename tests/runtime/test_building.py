"""The rules of runtime/building.py over a case table: against finite differences (float64),
float32 in / float32 out, and on the duck array (no host conversion), with the harness of
tests/runtime/rule_table.py. np.unstack, which returns a tuple of arrays, has cotangents of its
own: one per piece, ``None`` for a piece not used."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.errors import SrcdiffError
from srcdiff.runtime import building, rule_for
from srcdiff.testing import check_vjp
from tests.duckarray import HOST_SYNCS, DuckArray, wrap
from tests.runtime.rule_table import (F, POS, Case, Const, Seq, U, case,
                                      check_case_by_finite_differences, check_float32,
                                      check_on_duck_arrays, float32_cases, rules_without_a_case,
                                      scalar_output_cases)

MASK = np.array([True, False, True, True])
CONDS = [np.array([True, False, False, True]), np.array([True, True, False, False])]


def called(fn, call, *operands, **options):
    """A case whose primitive takes its operands in another order than the rule (np.insert's
    values come after the indices, np.polyfit's y after x)."""
    label = f"{fn.__name__}-" + "-".join(map(str, operands)) + \
        "-" + ",".join(f"{k}={v}" for k, v in options.items())
    return pytest.param(Case(fn, operands, options, None, call), id=label.replace(" ", ""))


def _insert(arr, values, obj, **options):
    return np.insert(arr, obj, values, **options)


def _polyfit(y, **options):
    return np.polyfit(y=y, **options)


def _astype(x, dtype, **options):  # numpy's dtype is positional only
    return np.astype(x, dtype, **options)


X8 = np.linspace(-1.0, 2.0, 8)
W8 = np.linspace(0.5, 1.5, 8)

CASES = [
    # ----- elements put somewhere else -----
    case(np.append, (3,), (2,)),
    case(np.append, (2, 3), (4,)),  # no axis: both flattened
    case(np.append, (2, 3), (2, 2), axis=1),
    case(np.append, (2, 3), (1, 3), axis=0),
    case(np.append, F, (3,)),
    case(np.append, (), F),
    called(np.insert, _insert, (4,), F, obj=1),
    called(np.insert, _insert, (4,), (2,), obj=[0, 3]),
    called(np.insert, _insert, (2, 3), (2,), obj=1, axis=1),  # values broadcast: adjoints add
    called(np.insert, _insert, (2, 3), (3,), obj=[2, 0, 2], axis=0),
    called(np.insert, _insert, (2, 3), (), obj=-1),
    case(np.delete, (5,), obj=[0, 3]),
    case(np.delete, (3, 4), obj=1, axis=1),
    case(np.delete, (3, 4), obj=slice(0, 2), axis=0),
    case(np.delete, (2, 3), obj=[5, 0]),  # no axis: flattened
    case(np.resize, (3,), new_shape=7),
    case(np.resize, (2, 3), new_shape=(4, 2)),
    case(np.resize, (2, 3), new_shape=(2,)),
    case(np.resize, F, new_shape=(2, 2)),
    case(np.compress, Const(MASK), (4,)),
    case(np.compress, Const(MASK[:3]), (3, 4), axis=0),
    case(np.compress, Const(MASK), (2, 4), axis=-1),
    case(np.compress, Const(np.array([False, True])), (2, 3)),  # flattened, shorter mask
    case(np.extract, Const(MASK), (4,)),
    case(np.extract, Const(np.array([[True, False, True], [False, True, True]])), (2, 3)),
    case(np.block, Seq((2,), (3,))),
    case(np.block, Seq((2, 2), (2, 3))),
    case(np.block, Seq(F, ())),
    case(np.diagflat, (3,)),
    case(np.diagflat, (2, 2), k=1),
    case(np.diagflat, (3,), k=-2),
    case(np.diagflat, F),
    # ----- moved axes -----
    case(np.rollaxis, (2, 3, 4), axis=2),
    case(np.rollaxis, (2, 3, 4), axis=0, start=3),
    case(np.rollaxis, (2, 3, 4), axis=1, start=-1),
    case(np.rollaxis, (2, 3, 4, 5), axis=-1, start=1),
    case(np.rollaxis, (2, 3), axis=1, start=1),
    case(np.matrix_transpose, (2, 3)),
    case(np.matrix_transpose, (4, 2, 3)),
    # ----- conversions -----
    *(case(fn, s) for fn in (np.asanyarray, np.ascontiguousarray, np.asfortranarray)
      for s in (F, (), (3,), (2, 3))),
    case(np.asanyarray, Seq(F, F, F)),
    case(np.asanyarray, Seq((2,), (2,))),
    case(np.ascontiguousarray, (3, 2), dtype=np.float64),
    case(np.asfortranarray, (3, 2), dtype=np.float64),
    called(np.astype, _astype, (2, 3), dtype=np.float64),
    called(np.astype, _astype, (), dtype=np.float64),
    case(np.real_if_close, (3,)),
    case(np.real_if_close, (2, 3), tol=1000),
    # ----- evenly spaced on a log scale -----
    case(np.logspace, F, F, num=5),
    case(np.logspace, (), (), num=4, endpoint=False),
    case(np.logspace, (3,), F, num=4, base=2.0),
    case(np.logspace, (2, 1), (3,), num=3, axis=-1, base=np.e),
    case(np.geomspace, U(F, *POS), U(F, *POS), num=5),
    case(np.geomspace, U((), *POS), U((), *POS), num=4, endpoint=False),
    case(np.geomspace, U((3,), *POS), U(F, *POS), num=4, axis=1),
    case(np.geomspace, U((2, 1), *POS), U((3,), *POS), num=3, axis=-1),
    case(np.geomspace, U((2,), -2.0, -0.5), U((2,), -2.0, -0.5), num=3),
    # ----- polynomials -----
    case(np.polyval, (3,), (4,)),
    case(np.polyval, (4,), F),
    case(np.polyval, (1,), (2, 3)),
    case(np.polyval, (3,), ()),
    case(np.polyval, (3, 2), (2,)),  # a column of coefficients per value of x
    case(np.polyval, Seq(F, F, F), (3,)),
    case(np.vander, (4,)),
    case(np.vander, (3,), N=5),
    case(np.vander, (4,), N=3, increasing=True),
    case(np.vander, (2,), N=1),
    case(np.polyadd, (3,), (5,)),
    case(np.polyadd, (4,), (2,)),
    case(np.polyadd, F, (3,)),
    case(np.polyadd, (), ()),
    case(np.polysub, (2,), (4,)),
    case(np.polysub, (3,), F),
    case(np.polymul, (3,), (2,)),
    case(np.polymul, (1,), (4,)),
    case(np.polymul, (4,), (4,)),
    case(np.polyder, (4,)),
    case(np.polyder, (5,), m=2),
    case(np.polyder, (3,), m=3),
    case(np.polyder, (2,), m=0),
    case(np.polyint, (3,)),
    case(np.polyint, (4,), m=2),
    case(np.polyint, (3,), m=0),
    case(np.polyint, (2,), m=3, k=[1.0, 2.0, 3.0]),
    called(np.polyfit, _polyfit, (8,), x=X8, deg=2),
    called(np.polyfit, _polyfit, (8, 3), x=X8, deg=3),
    called(np.polyfit, _polyfit, (8,), x=X8, deg=1, w=W8),
    called(np.polyfit, _polyfit, (8, 2), x=X8, deg=4, w=W8),
    # ----- special functions -----
    case(np.i0, (3,)),
    case(np.i0, U((4,), -8.0, 8.0)),
    case(np.i0, U((2, 3), 8.0, 12.0)),
    case(np.i0, U((5,), -14.0, -8.0)),
    case(np.i0, F),
    case(np.i0, ()),
    # ----- differences -----
    case(np.gradient, (5,)),
    case(np.gradient, (4, 5), axis=1),
    case(np.gradient, (4, 5), axis=0, edge_order=2),
    case(np.gradient, (3,), edge_order=2),
    case(np.gradient, (3, 4, 5), axis=-1, edge_order=2),
    # ----- chosen by conditions -----
    case(np.select, Const(CONDS), Seq((4,), (4,)), F),
    case(np.select, Const(CONDS), Seq((4,), F), (4,)),
    case(np.select, Const([c[None] for c in CONDS]), Seq((3, 4), (3, 1)), ()),
]


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    check_case_by_finite_differences(case)


@pytest.mark.parametrize("case", float32_cases(CASES))
def test_float32_in_float32_out(case):
    check_float32(case, rtol=2e-3, atol=2e-3)


# numpy's asanyarray, ascontiguousarray and asfortranarray do not dispatch (CuPy has its own):
# their rules on device values are checked below
CONVERSIONS = (np.asanyarray, np.ascontiguousarray, np.asfortranarray)
DUCK_CASES = [c for c in CASES if c.values[0].fn not in CONVERSIONS]


@pytest.mark.parametrize("case", DUCK_CASES)
def test_every_rule_on_duck_arrays(case):
    check_on_duck_arrays(case, rtol=1e-11)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("case", scalar_output_cases(DUCK_CASES))
def test_a_number_cotangent_on_duck_arrays(case, g):
    check_on_duck_arrays(case, cotangent=g)


def test_every_rule_of_building_is_in_a_table():
    missing = rules_without_a_case(CASES, (building,), covered={np.unstack})
    assert not missing, f"rules without a test case: {missing}"


@pytest.mark.parametrize("fn", CONVERSIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conversions_on_duck_arrays_pass_g_back_in_the_operand_dtype(fn, dtype):
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(dtype)
    g = np.random.default_rng(2).standard_normal((2, 3))  # a float64 result (dtype=np.float64)
    HOST_SYNCS.reset()
    got = rule_for(fn).call(wrap(g), wrap(x), dtype=np.float64)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(got) is DuckArray and got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got.get(), g.astype(dtype))


# ----- np.unstack: one adjoint per piece, None for a piece not used -----


@pytest.mark.parametrize("shape, axis, unused", [((3, 2), 0, ()), ((2, 3, 4), 1, (0, 2)),
                                                 ((2, 3), -1, (1,)), ((4,), 0, (0, 1, 2, 3))])
def test_unstack_rule(shape, axis, unused):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    gs = [None if i in unused else rng.standard_normal(p.shape)
          for i, p in enumerate(np.unstack(x, axis=axis))]

    def weighted(x):
        return sum(np.sum(g * p) for g, p in zip(gs, np.unstack(x, axis=axis)) if g is not None)

    dx = rule_for(np.unstack).call(tuple(gs), x, axis=axis)
    check_vjp(weighted, (x,), (dx,))
    dx32 = rule_for(np.unstack).call([None if g is None else g.astype(np.float32) for g in gs],
                                     x.astype(np.float32), axis=axis)
    assert dx32.dtype == np.float32 and dx32.shape == x.shape
    HOST_SYNCS.reset()
    got = rule_for(np.unstack).call([None if g is None else wrap(g) for g in gs], wrap(x),
                                    axis=axis)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    assert type(got) is DuckArray
    np.testing.assert_array_equal(got.get(), dx)


# ----- np.gradient with a spacing: an operand the table cannot spell (numpy's *varargs) -----


@pytest.mark.parametrize("shape, options", [((6,), {}), ((4, 5), {"axis": 0, "edge_order": 2}),
                                            ((3, 4, 5), {"axis": -1}), ((3,), {"edge_order": 2})])
@pytest.mark.parametrize("h", [0.5, np.float64(2.0), np.array(1.5)], ids=["float", "np.float64",
                                                                         "0-d"])
def test_gradient_with_a_spacing(shape, options, h):
    rng = np.random.default_rng(1)
    f, h = rng.standard_normal(shape), h * 1.0
    ans = np.gradient(f, h, **options)
    g = rng.standard_normal(ans.shape)
    df, dh = rule_for(np.gradient).call(g, ans, f, h, **options)
    check_vjp(lambda f, h: np.gradient(f, h, **options), (f, h), (df, dh), cotangent=g)
    HOST_SYNCS.reset()
    duck = rule_for(np.gradient).call(wrap(g), wrap(ans), wrap(f), wrap(np.asarray(h)), **options)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    np.testing.assert_allclose(duck[0].get(), df, rtol=1e-12)
    np.testing.assert_allclose(duck[1].get(), dh, rtol=1e-12)


# ----- refused, never a wrong gradient -----


@pytest.mark.parametrize("args, options", [
    ((np.ones((3, 4)),), {}),  # every axis: a tuple of arrays
    ((np.ones((3, 4)),), {"axis": (0, 1)}),
    ((np.ones(4), np.array([0.0, 1.0, 3.0, 4.0])), {}),  # coordinates, not a spacing
    ((np.ones((3, 4)), 1.0, 2.0), {}),
])
def test_gradient_forms_without_a_rule_are_refused(args, options):
    ans = np.gradient(*args, **options)
    g = tuple(np.ones_like(a) for a in ans) if isinstance(ans, tuple) else np.ones_like(ans)
    with pytest.raises(SrcdiffError, match="np.gradient along one axis"):
        rule_for(np.gradient).call(g, ans, *args, **options)


def test_real_if_close_of_a_complex_array_is_refused():
    with pytest.raises(SrcdiffError, match="complex"):
        rule_for(np.real_if_close).call(np.ones(2), np.ones(2) + 1j)


@pytest.mark.parametrize("fn, options, message", [
    (np.logspace, {"num": 3, "base": np.array([2.0, 3.0])}, "base="),
    (np.gradient, {"edge_order": 3}, "edge_order=3"),
])
def test_option_values_without_a_rule_are_refused(fn, options, message):
    with pytest.raises(SrcdiffError, match=message):
        rule_for(fn).call(np.ones(3), np.ones(3), 0.0, 1.0, **options)
