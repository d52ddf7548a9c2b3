"""The rules of runtime/linalg.py over case tables: against finite differences (float64),
float32 in / float32 out, and on the duck array (no host conversion), with the harness of
tests/runtime/rule_table.py.

Inputs are drawn well conditioned: invertible matrices are a random one plus a multiple of
the identity, symmetric ones have distinct eigenvalues, positive definite ones are
``X @ X.T + n * I``. They are literal arrays in the table, so finite differences move each
element on its own: where numpy reads one triangle (``cholesky``, ``eigh``), the oracle sees
that the other one does not count, and so must the rule. Functions that return several arrays
(``slogdet``, ``eigh``, ``qr``, ``svd``, ``lstsq``) have a table of their own, with one
cotangent per result and ``None`` for a result not used."""

from __future__ import annotations

import numpy as np
import pytest

from srcdiff.errors import SrcdiffError
from srcdiff.runtime import linalg, rule_for
from srcdiff.testing import check_vjp
from tests.duckarray import HOST_SYNCS, DuckArray, wrap
from tests.runtime.rule_table import (F, case, check_case_by_finite_differences, check_float32,
                                      check_on_duck_arrays, rules_without_a_case,
                                      scalar_output_cases)

# numpy 2 deprecates np.cross of 2-component vectors; the rule still follows what it computes
pytestmark = pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors")

_RNG = np.random.default_rng(20240611)


def invertible(n, batch=()):
    """A random n x n matrix (a stack of them) far from singular."""
    return _RNG.standard_normal((*batch, n, n)) + 3.0 * np.eye(n)


def spd(n, batch=()):
    """A symmetric positive definite matrix ``X @ X.T + n * I``."""
    x = _RNG.standard_normal((*batch, n, n))
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def symmetric(n, batch=(), values=None):
    """A symmetric matrix with the distinct eigenvalues ``values`` (default 1, 2.5, 4, ...)."""
    values = 1.0 + 1.5 * np.arange(n) if values is None else np.asarray(values, dtype=float)
    q, _ = np.linalg.qr(_RNG.standard_normal((*batch, n, n)))
    return (q * values) @ np.swapaxes(q, -1, -2)


def normal(*shape):
    return _RNG.standard_normal(shape)


inv, det, solve, cholesky = np.linalg.inv, np.linalg.det, np.linalg.solve, np.linalg.cholesky
eigvalsh, pinv, matrix_power, norm = (np.linalg.eigvalsh, np.linalg.pinv,
                                      np.linalg.matrix_power, np.linalg.norm)
svd = np.linalg.svd
INF = np.inf

CASES = [
    # ----- inverse, determinant, solve -----
    case(inv, invertible(3)),
    case(inv, invertible(1)),
    case(inv, invertible(3, (2,))),
    case(det, invertible(3)),
    case(det, -invertible(2)),
    case(det, invertible(3, (2, 2))),
    case(solve, invertible(3), (3,)),
    case(solve, invertible(3), (3, 2)),
    case(solve, invertible(3, (2,)), (3,)),  # a stack of matrices, one vector
    case(solve, invertible(3, (2,)), (2, 3, 4)),
    case(solve, invertible(3, (1,)), (2, 3, 2)),  # batch axes broadcast
    case(solve, invertible(3), (2, 3, 1)),
    # a structure the rule's solve uses (runtime/solvers.py): triangular, symmetric positive
    # definite; the oracle moves each element, off the structure too
    case(solve, np.tril(invertible(4)), (4,)),
    case(solve, np.triu(invertible(4)), (4, 2)),
    case(solve, spd(4), (4,)),
    case(solve, spd(3), (2, 3, 2)),
    case(det, spd(3)),
    *(case(matrix_power, invertible(3) / 3.0, n=n) for n in (0, 1, 2, 3, 5, -1, -2)),
    case(matrix_power, invertible(2, (2,)) / 3.0, n=3),
    case(matrix_power, invertible(2, (2,)) / 3.0, n=-3),
    # ----- factorisations -----
    case(cholesky, spd(3)),
    case(cholesky, spd(1)),
    case(cholesky, spd(3, (2,))),
    case(cholesky, spd(4), upper=True),
    case(eigvalsh, symmetric(3)),
    case(eigvalsh, symmetric(4), UPLO="U"),
    case(eigvalsh, symmetric(3, (2,))),
    case(svd, normal(4, 3), compute_uv=False),
    case(svd, normal(2, 5), compute_uv=False),
    case(svd, normal(2, 3, 3), compute_uv=False),
    case(svd, symmetric(3, values=[-3.0, 1.0, 2.0]), compute_uv=False, hermitian=True),
    case(pinv, normal(4, 3)),
    case(pinv, normal(2, 4)),
    case(pinv, invertible(3)),
    case(pinv, normal(2, 4, 3)),
    case(pinv, normal(3, 2, 4), rcond=1e-10),
    case(pinv, symmetric(3, values=[-2.0, 1.0, 3.0]), hermitian=True),
    # ----- norms -----
    *(case(norm, (5,), ord=o) for o in (None, 2, 1, INF, -INF, 0, 3, 0.5, -1, -2)),
    *(case(norm, (3, 4), ord=o) for o in (None, "fro", "nuc", 2, -2, 1, -1, INF, -INF)),
    case(norm, (2, 3, 4)),  # no ord, no axis: the 2-norm of all elements
    case(norm, (2, 3, 4), keepdims=True),
    case(norm, (2, 3, 4), axis=1),
    case(norm, (2, 3, 4), ord=3, axis=-1, keepdims=True),
    case(norm, (2, 3, 4), ord=INF, axis=(0,)),
    case(norm, (2, 3, 4), ord=1, axis=0, keepdims=True),
    case(norm, (2, 3, 4), ord="nuc", axis=(1, 2)),
    case(norm, (2, 3, 4), ord=2, axis=(2, 0), keepdims=True),
    case(norm, (2, 3, 4), ord=-2, axis=(-1, -2)),
    case(norm, (2, 3, 4), ord="fro", axis=(0, 2)),
    case(norm, (2, 3, 4), ord=-1, axis=(1, 0)),
    case(norm, (2, 3, 4), ord=INF, axis=(2, 1), keepdims=True),
    case(norm, (3, 4), ord=-INF, axis=(1, 0)),
    case(norm, F),
    case(norm, ()),
    case(norm, (3, 1), ord=2),
    # ----- products -----
    case(np.vdot, (3,), (3,)),
    case(np.vdot, (2, 3), (3, 2)),  # flattened: shapes may differ
    case(np.vdot, (2, 3), (6,)),
    case(np.vdot, (), ()),
    case(np.tensordot, (3, 4), (4, 5), axes=1),
    case(np.tensordot, (2, 3, 4), (3, 4, 5)),  # axes=2
    case(np.tensordot, (3,), (2,), axes=0),
    case(np.tensordot, (2, 3), (4,), axes=0),
    case(np.tensordot, (2, 3), (3, 2, 4), axes=([1, 0], [0, 1])),
    case(np.tensordot, (2, 3, 4), (4, 5), axes=([2], [0])),
    case(np.tensordot, (3, 2), (5, 3), axes=(0, 1)),
    case(np.tensordot, (2, 3, 4), (4, 3, 5), axes=([-1, 1], [0, -2])),
    case(np.tensordot, (2, 3), (2, 3)),  # every axis: one number
    case(np.tensordot, (2, 3), (3, 2), axes=([0, 1], [1, 0])),
    case(np.tensordot, (2, 3, 4), (4, 2, 3), axes=([2, 0, 1], [0, 1, 2])),
    case(np.tensordot, F, (3,), axes=0),
    case(np.tensordot, (2, 2), (), axes=0),
    case(np.kron, (2,), (3,)),
    case(np.kron, (2, 3), (2, 2)),
    case(np.kron, (2,), (2, 3)),  # the smaller gets leading axes of one
    case(np.kron, (2, 2, 1), (3,)),
    case(np.kron, F, (2, 2)),
    case(np.kron, (3,), ()),
    case(np.cross, (3,), (3,)),
    case(np.cross, (4, 3), (3,)),
    case(np.cross, (2, 4, 3), (4, 3)),
    case(np.cross, (3, 4), (4, 3), axisa=0, axisc=0),
    case(np.cross, (4, 3), (3, 4), axisb=0, axisc=-2),
    case(np.cross, (3, 5), (3, 5), axis=0),
    case(np.cross, (2,), (2,)),  # two 2-vectors: the z component alone
    case(np.cross, (4, 2), (2,)),
    case(np.cross, (2,), (3,)),  # a 2-vector has z = 0
    case(np.cross, (4, 3), (4, 2)),
]


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_finite_differences(case):
    check_case_by_finite_differences(case)


@pytest.mark.parametrize("case", CASES)
def test_float32_in_float32_out(case):
    check_float32(case, rtol=2e-3, atol=2e-3, even_where_promoted=False)


@pytest.mark.parametrize("case", CASES)
def test_every_rule_on_duck_arrays(case):
    if case.fn is np.tensordot and F in case.operands:
        pytest.skip("cupy.tensordot takes arrays only, not a Python number")
    check_on_duck_arrays(case, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("case", scalar_output_cases(CASES))
def test_a_number_cotangent_on_duck_arrays(case, g):
    """grad's seed is a number: a rule of a one-number output reached with one on device
    operands makes nothing on the host and gives numpy's values, on the device."""
    check_on_duck_arrays(case, cotangent=g, rtol=1e-10, atol=1e-12, number_adjoints=False)


# ----- functions that return several arrays -----

slogdet, eigh, qr, lstsq = np.linalg.slogdet, np.linalg.eigh, np.linalg.qr, np.linalg.lstsq

# (function, operands, options, which results have no cotangent); an integer result (the
# rank of lstsq) never has one, and a result that is piecewise constant (the sign of
# slogdet) gets a random one, which must not count
SEQUENCES = [
    (slogdet, (invertible(3),), {}, ()),
    (slogdet, (-invertible(3),), {}, ()),
    (slogdet, (invertible(2, (2, 3)),), {}, ()),
    (slogdet, (invertible(3),), {}, (1,)),  # the sign alone: zero
    (slogdet, (spd(4),), {}, ()),  # its inverse by Cholesky
    (eigh, (symmetric(3),), {}, ()),
    (eigh, (symmetric(4),), {"UPLO": "U"}, ()),
    (eigh, (symmetric(3, (2,)),), {}, ()),
    (eigh, (symmetric(3),), {}, (0,)),
    (eigh, (symmetric(3),), {}, (1,)),
    (qr, (normal(4, 3),), {}, ()),
    (qr, (normal(3, 3),), {}, ()),
    (qr, (normal(2, 4),), {}, ()),
    (qr, (normal(3, 5),), {"mode": "reduced"}, ()),
    (qr, (normal(2, 4, 3),), {}, ()),
    (qr, (normal(2, 3, 4),), {}, ()),
    (qr, (normal(4, 3),), {}, (0,)),
    (qr, (normal(3, 4),), {}, (1,)),
    (svd, (normal(4, 3),), {"full_matrices": False}, ()),
    (svd, (normal(3, 5),), {"full_matrices": False}, ()),
    (svd, (normal(3, 3),), {}, ()),
    (svd, (normal(2, 4, 3),), {"full_matrices": False}, ()),
    (svd, (normal(4, 3),), {"full_matrices": False}, (0, 2)),
    (svd, (normal(3, 4),), {"full_matrices": False}, (1,)),
    (svd, (symmetric(3, values=[-3.0, 1.0, 2.0]),), {"hermitian": True}, ()),
    (lstsq, (normal(5, 3), normal(5)), {}, ()),
    (lstsq, (normal(5, 3), normal(5, 2)), {"rcond": None}, ()),
    (lstsq, (normal(3, 5), normal(3)), {}, ()),  # underdetermined: no residuals
    (lstsq, (normal(4, 4), normal(4, 3)), {}, ()),
    (lstsq, (normal(5, 3), normal(5)), {}, (0, 3)),  # the residuals alone
    (lstsq, (normal(5, 3), normal(5, 2)), {}, (1,)),
]


def _sequence_param(fn, operands, options, unused):
    opts = ",".join(f"{k}={v}" for k, v in options.items())
    shapes = "-".join(str(np.shape(x)) for x in operands)
    label = f"np.linalg.{fn.__name__}-{shapes}-{opts}-unused{list(unused)}".replace(" ", "")
    return pytest.param(fn, operands, options, unused, id=label)


SEQUENCE_CASES = [_sequence_param(*s) for s in SEQUENCES]


def _sequence_setup(fn, operands, options, unused, dtype=np.float64):
    rng = np.random.default_rng(1)
    args = [x.astype(dtype) for x in operands]
    ans = fn(*args, **options)
    gs = tuple(None if i in unused or not np.issubdtype(np.result_type(r), np.floating)
               else rng.standard_normal(np.shape(r)).astype(dtype) for i, r in enumerate(ans))
    return args, ans, gs


def _weighted(fn, options, gs):
    """``sum_i <g_i, result_i>``: the oracle's function of the operands."""
    return lambda *xs: sum(np.sum(g * r) for g, r in zip(gs, fn(*xs, **options)) if g is not None)


def _grads(fn, gs, ans, args, options):
    grads = rule_for(fn).call(gs, *([ans] if rule_for(fn).takes_ans else []), *args, **options)
    return grads if len(args) > 1 else (grads,)


@pytest.mark.parametrize("fn, operands, options, unused", SEQUENCE_CASES)
def test_sequence_rule_matches_finite_differences(fn, operands, options, unused):
    args, ans, gs = _sequence_setup(fn, operands, options, unused)
    check_vjp(_weighted(fn, options, gs), args, _grads(fn, gs, ans, args, options))


@pytest.mark.parametrize("fn, operands, options, unused", SEQUENCE_CASES)
def test_sequence_rule_float32_in_float32_out(fn, operands, options, unused):
    args, ans, gs = _sequence_setup(fn, operands, options, unused, np.float32)
    args64, ans64, gs64 = _sequence_setup(fn, operands, options, unused)
    for d, d64, x in zip(_grads(fn, gs, ans, args, options),
                         _grads(fn, gs64, ans64, args64, options), args):
        assert d.dtype == np.float32 and d.shape == x.shape
        np.testing.assert_allclose(d, d64, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("fn, operands, options, unused", SEQUENCE_CASES)
def test_sequence_rule_on_duck_arrays(fn, operands, options, unused):
    args, ans, gs = _sequence_setup(fn, operands, options, unused)
    want = _grads(fn, gs, ans, args, options)
    duck_args = [wrap(x) for x in args]
    duck_ans = fn(*duck_args, **options)
    duck_gs = tuple(None if g is None else wrap(g) for g in gs)
    HOST_SYNCS.reset()
    got = _grads(fn, duck_gs, duck_ans, duck_args, options)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for d, expected in zip(got, want):
        assert type(d) is DuckArray
        np.testing.assert_allclose(d.get(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
def test_slogdet_with_a_number_cotangent_on_duck_arrays(g):
    """``np.linalg.slogdet(K)[1]`` as a function's output: its seed is a number."""
    a = invertible(3)
    want = rule_for(slogdet).call((None, g), a)
    check_vjp(lambda x: slogdet(x)[1], (a,), (want,), cotangent=g)
    HOST_SYNCS.reset()
    got = rule_for(slogdet).call((None, g), wrap(a))
    assert HOST_SYNCS.count == 0 and type(got) is DuckArray
    np.testing.assert_allclose(got.get(), want, rtol=1e-12)


# ----- every rule has cases -----


def test_every_rule_of_linalg_is_in_a_table():
    missing = rules_without_a_case(CASES, (linalg,),
                                   covered={s[0] for s in SEQUENCES} | {np.einsum} |  # EINSUMS
                                   # a factor made from a: tests/transforms/test_factors.py
                                   {linalg.cholesky_solve, linalg.cholesky_log_diagonal,
                                    linalg.slogdet_spd, linalg.solve_spd})
    assert not missing, f"rules without a test case: {missing}"


def test_the_tuple_results_are_registered_as_sequences():
    for fn in (slogdet, eigh, qr, svd, lstsq):
        assert rule_for(fn).sequence, fn.__name__
    for fn in (inv, det, solve, cholesky, eigvalsh, pinv, matrix_power, norm):
        assert not rule_for(fn).sequence, fn.__name__


# ----- what the tables cannot show -----


def test_triangle_read_is_the_triangle_differentiated():
    """numpy's cholesky and eigh read one triangle: the adjoint has none in the other."""
    a, g = spd(3), normal(3, 3)
    lower = rule_for(cholesky).call(g, cholesky(a), a)
    assert np.all(np.triu(lower, 1) == 0)
    upper = rule_for(cholesky).call(g, cholesky(a, upper=True), a, upper=True)
    assert np.all(np.tril(upper, -1) == 0)
    s = symmetric(3)
    d = rule_for(eigh).call((normal(3), normal(3, 3)), eigh(s, UPLO="U"), s, UPLO="U")
    assert np.all(np.tril(d, -1) == 0)


def test_norm_ties_split_evenly():
    x = np.array([3.0, -3.0, 1.0])
    np.testing.assert_allclose(rule_for(norm).call(1.0, norm(x, INF), x, ord=INF),
                               [0.5, -0.5, 0.0])
    m = np.array([[1.0, -2.0], [2.0, 1.0]])  # both column sums are 3
    np.testing.assert_allclose(rule_for(norm).call(2.0, norm(m, 1), m, ord=1),
                               [[1.0, -1.0], [1.0, 1.0]])


def test_norm_of_zero_is_zero_not_nan():
    for x in (np.zeros(3), np.zeros((2, 2))):
        assert np.all(rule_for(norm).call(1.0, norm(x), x) == 0)


@pytest.mark.parametrize("call, error, match", [
    (lambda: rule_for(qr).call((None, np.ones((2, 2))), None, np.eye(2), mode="r"),
     SrcdiffError, "mode='r'.*'reduced'"),
    (lambda: rule_for(svd).call((np.ones((3, 3)), np.ones(2), np.ones((2, 2))),
                                svd(np.ones((3, 2))), np.ones((3, 2))), SrcdiffError,
     "full_matrices=False"),
    (lambda: rule_for(norm).call(1.0, 1.0, np.ones((2, 2)), ord=3), ValueError, "ord=3"),
    (lambda: rule_for(norm).call(1.0, 1.0, np.ones((2, 2, 2)), ord=1), ValueError,
     "vector or a matrix"),
])
def test_what_the_rules_refuse_they_name(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----- einsum of any number of operands (runtime/linalg.einsum_adjoint) -----

# (subscripts, operand shapes)
EINSUMS = [
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("ij", [(2, 3)]),  # implicit: the indices in order, 'ij'
    ("ji", [(2, 3)]),  # implicit 'ij': a transpose
    ("ii->i", [(3, 3)]),  # a diagonal
    ("ii", [(3, 3)]),  # the trace
    ("iij->j", [(2, 2, 3)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ij, j -> ij", [(2, 3), (3,)]),
    ("ij,kl->ik", [(2, 3), (4, 5)]),  # j and l each summed away in one operand
    ("ba,cb", [(2, 3), (4, 2)]),  # implicit 'ac'
    ("aB,Bc", [(2, 3), (3, 4)]),  # implicit 'ac': capitals sort first
    ("i,i", [(3,), (3,)]),
    ("ij,ij->ij", [(1, 3), (4, 3)]),  # a broadcast index
    ("ii,ij->j", [(3, 3), (3, 2)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij,...jk", [(2, 3, 4), (4, 2)]),
    ("i...,i...", [(2, 3), (2, 1)]),
    ("...,...->...", [(), (3,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ij,jk,kl", [(2, 3), (3, 4), (4, 2)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("i,j,k->ijk", [(2,), (3,), (4,)]),
    ("bi,bj,bk->b", [(2, 3), (2, 4), (2, 5)]),
    ("ij,jk,kl,lm->im", [(2, 3), (3, 2), (2, 3), (3, 2)]),
    ("i,jk,k->", [(2,), (3, 4), (4,)]),
]


def _einsum_param(subscripts, shapes, optimize=False):
    label = f"{subscripts}-{'-'.join(map(str, shapes))}{'-optimize' if optimize else ''}"
    return pytest.param(subscripts, shapes, optimize, id=label.replace(" ", ""))


EINSUM_CASES = [*(_einsum_param(*e) for e in EINSUMS),
                _einsum_param("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)], True),
                _einsum_param("ij,jk->ki", [(2, 3), (3, 4)], True),
                _einsum_param("...ij,...jk", [(2, 3, 4), (4, 2)], "greedy")]


def _einsum_adjoints(g, subscripts, xs, optimize=False):
    """The rule's adjoints as a tuple, one per operand (a bare one for one operand)."""
    grads = rule_for(np.einsum).call(g, *xs, subscripts=subscripts, optimize=optimize)
    return (grads,) if len(xs) == 1 else grads


def _einsum_setup(subscripts, shapes, dtype=np.float64):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    out = np.einsum(subscripts, *xs)
    return xs, rng.standard_normal(np.shape(out)).astype(dtype)


@pytest.mark.parametrize("subscripts, shapes, optimize", EINSUM_CASES)
def test_einsum_matches_finite_differences(subscripts, shapes, optimize):
    xs, g = _einsum_setup(subscripts, shapes)
    grads = _einsum_adjoints(g, subscripts, xs, optimize)
    assert len(grads) == len(xs)
    check_vjp(lambda *ys: np.einsum(subscripts, *ys), xs, grads, cotangent=g)


@pytest.mark.parametrize("subscripts, shapes, optimize", EINSUM_CASES)
def test_einsum_float32_and_duck_arrays(subscripts, shapes, optimize):
    xs, g = _einsum_setup(subscripts, shapes)
    want = _einsum_adjoints(g, subscripts, xs, optimize)
    xs32, g32 = _einsum_setup(subscripts, shapes, np.float32)
    for d, d64 in zip(_einsum_adjoints(g32, subscripts, xs32), want):
        assert d.dtype == np.float32
        np.testing.assert_allclose(d, d64, rtol=2e-4, atol=2e-5)
    duck_g = wrap(g) if np.ndim(g) else float(g)
    HOST_SYNCS.reset()
    got = _einsum_adjoints(duck_g, subscripts, [wrap(x) for x in xs], optimize)
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for d, expected in zip(got, want):
        assert type(d) is DuckArray
        np.testing.assert_allclose(d.get(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("g", [1.0, np.float64(0.5)], ids=["1.0", "np.float64"])
@pytest.mark.parametrize("subscripts, shapes", [("ij->", [(2, 3)]), ("ii", [(3, 3)]),
                                                ("i,i", [(3,), (3,)]),
                                                ("i,jk,k->", [(2,), (3, 4), (4,)])])
def test_einsum_with_a_number_cotangent_on_duck_arrays(subscripts, shapes, g):
    xs, _ = _einsum_setup(subscripts, shapes)
    want = _einsum_adjoints(g, subscripts, xs)
    check_vjp(lambda *ys: np.einsum(subscripts, *ys), xs, want, cotangent=g)
    HOST_SYNCS.reset()
    got = _einsum_adjoints(g, subscripts, [wrap(x) for x in xs])
    assert HOST_SYNCS.count == 0, HOST_SYNCS.where
    for d, expected in zip(got, want):
        assert type(d) is DuckArray
        np.testing.assert_allclose(d.get(), expected, rtol=1e-12)


def test_einsum_of_one_operand_gives_its_adjoint_bare():
    x, g = np.ones((3, 3)), np.arange(3.0)
    d = rule_for(np.einsum).call(g, x, subscripts="ii->i")
    np.testing.assert_array_equal(d, np.diag(g))


def test_einsum_refuses_the_sublist_form():
    with pytest.raises(ValueError, match="sublist"):
        rule_for(np.einsum).call(np.ones(2), [0, 1], np.ones(2), [1], subscripts=np.ones((2, 2)))
