"""The rules of runtime/scipy_rules.py over a case table: against finite differences (float64),
float32 in / float32 out, and on the duck array (no host conversion), with the harness of
tests/runtime/rule_table.py.

A case is a scipy function, its operands (the specs of tests/runtime/rule_table.py: ``F``, a
shape, ``U(shape, lo, hi)``, a literal array, ``Const``, ``Seq``) and its options. ``call``
says how to call the function where it is not ``fn(*operands, **options)``:
``polygamma(n, x)`` and ``ive(v, z)`` take their constant first. Every test here skips
without scipy.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

scipy = pytest.importorskip("scipy")

import scipy.linalg as sl  # noqa: E402
import scipy.special as sp  # noqa: E402
import scipy.stats as st  # noqa: E402

from srcdiff import runtime  # noqa: E402
from srcdiff.runtime import RULES, rule_for, scipy_rules  # noqa: E402
from tests.duckarray import wrap  # noqa: E402
from tests.runtime.rule_table import (F, POS, UNIT, Case, Const, Seq, U,  # noqa: E402
                                      check_case_by_finite_differences, check_float32,
                                      check_on_duck_arrays, float32_cases, one_number_out,
                                      rules_without_a_case, setup)

_RNG = np.random.default_rng(20240612)


def case(fn, *operands, dom=None, call=None, label="", **options):
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    # a Seq is cho_solve's (c, lower), shown as the constant pair cho_factor made
    shown = "-".join("const" if isinstance(s, (Const, Seq)) else "lit" + str(np.shape(s))
                     if isinstance(s, np.ndarray) else str(s.shape if isinstance(s, U) else s)
                     for s in operands)
    opts = ",".join(f"{k}={v}" for k, v in options.items() if not isinstance(v, np.ndarray))
    ident = f"{name}-{shown}" + (f"-{opts}" if opts else "") + (f"-{label}" if label else "")
    return pytest.param(Case(fn, operands, options, dom, call), id=ident.replace(" ", ""))


def spd(n):
    x = _RNG.standard_normal((n, n))
    return x @ x.T + n * np.eye(n)


def lower(n):
    return np.tril(_RNG.standard_normal((n, n))) + 3.0 * np.eye(n)


def factor(n, low):
    """cho_factor's (c, lower) of a random positive definite matrix: one operand, a tuple,
    whose c has an adjoint."""
    c, lower = sl.cho_factor(spd(n), lower=low)
    return Seq(c, Const(lower), kind=tuple)


SHAPES = (F, (), (3,), (2, 3))
UNARY = [(sp.erf, None), (sp.erfc, None), (sp.erfinv, UNIT), (sp.erfcinv, (0.1, 1.9)),
         (sp.expit, None), (sp.log_expit, None), (sp.logit, (0.05, 0.95)), (sp.gammaln, POS),
         (sp.digamma, POS), (sp.i0, None), (sp.i1, None)]
LOC_SCALE = [((4,), F, U(F, 0.5, 2.0)), ((2, 3), (3,), U((2, 1), 0.5, 2.0)), (F, F, U(F, 0.5, 2.0)),
             ((3,), U((3,), -1, 1), U((), 0.5, 2.0))]

CASES = [
    # ----- scipy.special -----
    *(case(fn, s, dom=d) for fn, d in UNARY for s in SHAPES),
    case(sp.i1, np.array([0.0, 0.5, -1.5])),  # i1'(0) = 1/2
    *(case(sp.polygamma, s, dom=POS, n=n, call=lambda x, n: sp.polygamma(n, x))
      for n in (0, 1, 2) for s in (F, (3,))),
    *(case(sp.ive, s, v=v, dom=d, call=lambda z, v: sp.ive(v, z))
      for v, d in ((0.0, None), (1.0, None), (2.5, POS)) for s in (F, (2, 3))),
    *(case(fn, *ss, dom=POS) for fn in (sp.xlogy, sp.xlog1py, sp.beta, sp.betaln)
      for ss in ((F, F), ((3,), (3,)), ((2, 3), (3,)), ((3, 1), F))),
    case(sp.xlogy, np.array([0.0, 1.5, 0.0]), U((3,), 0.5, 2.0)),  # xlogy(0, y) = 0 for all y
    case(sp.logsumexp, (3, 4)),
    case(sp.logsumexp, (3, 4), axis=0),
    case(sp.logsumexp, (2, 3, 4), axis=(0, 2), keepdims=True),
    case(sp.logsumexp, (3, 4), axis=-1, b=np.array([0.5, 1.0, 2.0, 0.0])),
    case(sp.logsumexp, (3, 1), axis=1, b=np.array([[0.5, 1.0, 2.0]])),  # a broadcast against b
    case(sp.logsumexp, F),
    *(case(fn, s, **opts) for fn in (sp.softmax, sp.log_softmax)
      for s, opts in (((4,), {}), ((3, 4), {"axis": 1}), ((3, 4), {"axis": 0}), ((2, 3, 4), {}),
                      ((2, 3, 4), {"axis": (0, 2)}), ((3, 4), {"axis": -1}), (F, {}))),
    # ----- scipy.stats -----
    *(case(fn, *ss) for fn in (st.norm.pdf, st.norm.logpdf, st.norm.cdf, st.norm.logcdf,
                                st.norm.sf, st.norm.logsf) for ss in LOC_SCALE),
    case(st.norm.logcdf, np.array([-30.0, -8.0, 0.0, 5.0]), F, U(F, 0.9, 1.1)),  # far tails
    case(st.norm.logsf, np.array([-5.0, 0.0, 8.0, 30.0]), F, U(F, 0.9, 1.1)),
    case(st.t.logpdf, (4,), U(F, 1.5, 6.0), F, U(F, 0.5, 2.0)),
    case(st.t.logpdf, (2, 3), U((3,), 1.5, 6.0), U((2, 1), -1, 1), U((), 0.5, 2.0)),
    case(st.multivariate_normal.logpdf, (3,), (3,), spd(3)),
    case(st.multivariate_normal.logpdf, (5, 3), (3,), spd(3)),
    case(st.multivariate_normal.logpdf, (2, 4, 3), (3,), spd(3)),
    case(st.multivariate_normal.logpdf, (1, 2), (2,), spd(2)),  # one row: a number out
    case(st.multivariate_normal.logpdf, (4, 3), (3,), U((3,), 0.5, 2.0)),  # the diagonal
    case(st.multivariate_normal.logpdf, (4, 3), (3,), U((), 0.5, 2.0)),  # one variance
    case(st.multivariate_normal.logpdf, (4, 3), Const(None), spd(3)),  # mean=None
    case(st.multivariate_normal.logpdf, (4,), F, U(F, 0.5, 2.0)),  # one dimension: 4 samples
    # ----- scipy.linalg -----
    *(case(sl.solve_triangular, a, b, **opts)
      for a, opts in ((lower(3), {"lower": True}), (lower(3).T, {}),
                      (lower(3), {"lower": True, "trans": 1}), (lower(3).T, {"trans": "T"}),
                      (lower(3), {"lower": True, "unit_diagonal": True}),
                      (lower(3).T, {"trans": 2, "unit_diagonal": True}),
                      (_RNG.standard_normal((3, 3)) + 3 * np.eye(3), {"lower": True}))
      for b in ((3,), (3, 2))),
    *(case(sl.cho_factor, spd(n), lower=low, label="c") for n in (1, 3) for low in (False, True)),
    *(case(sl.cho_solve, factor(3, low), b) for low in (False, True)
      for b in ((3,), (3, 2))),
    case(sl.expm, (3, 3)),
    case(sl.expm, (1, 1)),
    case(sl.expm, (2, 3, 3)),
    case(sl.expm, np.array([[0.0, 1.0], [-1.0, 0.0]]) * 2.0),
]

# cho_factor returns (c, lower): a cotangent for c, None for lower (rule_table.py's several
# results); cho_solve's (c, lower) is a tuple operand whose c has an adjoint.


@pytest.mark.parametrize("c", CASES)
def test_rule_matches_finite_differences(c):
    check_case_by_finite_differences(c)


@pytest.mark.parametrize("c", float32_cases(CASES))
def test_float32_in_float32_out(c):
    check_float32(c, rtol=2e-3, atol=2e-4)


# ----- on the duck array: no host conversion, numpy's values -----

HOST_ONLY = {sl.expm: "scipy.linalg.expm has no array-library twin but CuPy's; on another "
                      "library its adjoint refuses (test_expm_refuses_other_array_libraries)"}


@pytest.mark.parametrize("c", [p if p.values[0].fn not in HOST_ONLY else pytest.param(
    *p.values, id=p.id, marks=pytest.mark.skip(HOST_ONLY[p.values[0].fn])) for p in CASES])
def test_every_rule_on_duck_arrays(c):
    check_on_duck_arrays(c, rtol=1e-10, atol=1e-12, ans_from_host=True)
    if one_number_out(c):  # grad's seed: a number
        check_on_duck_arrays(c, cotangent=float(setup(c)[2]), rtol=1e-10, atol=1e-12,
                             ans_from_host=True, number_adjoints=False)


def test_expm_refuses_other_array_libraries():
    a = np.eye(2) * 0.5
    with pytest.raises(TypeError, match="numpy and CuPy"):
        rule_for(sl.expm).call(wrap(np.ones((2, 2))), wrap(a))


# ----- what the tables cannot show -----


def test_every_rule_of_scipy_rules_is_in_the_table():
    missing = rules_without_a_case(CASES, (scipy_rules,))
    assert not missing, f"rules without a test case: {missing}"


def test_the_listed_functions_have_rules():
    names = ("erf erfc erfinv erfcinv expit log_expit logit gammaln digamma psi polygamma xlogy xlog1py "
             "i0 i1 ive beta betaln logsumexp softmax log_softmax").split()
    methods = [st.norm.pdf, st.norm.logpdf, st.norm.cdf, st.norm.logcdf, st.norm.sf,
               st.norm.logsf, st.t.logpdf, st.multivariate_normal.logpdf]
    for fn in [getattr(sp, n) for n in names] + methods + [
            sl.solve_triangular, sl.cho_factor, sl.cho_solve, sl.expm]:
        assert rule_for(fn) is not None, fn


def test_bound_methods_are_found_at_every_attribute_access():
    """``scipy.stats.norm.logpdf`` is a new bound method object at each access; it equals the
    registered one (same ``__self__`` and ``__func__``), so the table finds it."""
    first, second = st.norm.logpdf, st.norm.logpdf
    assert first is not second and rule_for(first) is rule_for(second) is not None
    assert rule_for(st.t.logpdf) is not rule_for(st.norm.logpdf)  # same __func__, other object


def test_rule_names_are_unique_in_the_runtime():  # generated code calls rt.<name>
    from srcdiff.runtime import creation, elementwise, linalg, reductions, rules, scalar_math
    from srcdiff.runtime import shaping

    others = set().union(*(m.__all__ for m in (rules, creation, shaping, elementwise,
                                               reductions, scalar_math, linalg)))
    assert not others & set(scipy_rules.__all__)
    for name in scipy_rules.__all__:
        assert getattr(runtime, name) is getattr(scipy_rules, name)  # rt.<name>


def _scipy_rules():
    return sorted({id(r.raw): r for r in RULES.values()
                   if r.raw.__module__ == scipy_rules.__name__}.values(), key=lambda r: r.name)


@pytest.mark.parametrize("rule", _scipy_rules(), ids=lambda r: r.name)
def test_options_are_parameters_the_call_binds_by_name(rule):
    """As srcdiff/analysis/calls.py binds a call: the rule's options are parameters of the
    primitive (or of the signature it was registered with) or leading ones, and the operands
    are the first positional parameters of the others."""
    sig = rule.signature or inspect.signature(rule.primitive)
    params = sig.parameters
    if any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        assert rule.options == ()
        return
    names = [n for n in params if n not in rule.options]
    positional = [n for n in names if params[n].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                          inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    assert len(rule.leading) + len(rule.operands) <= len(positional)
    assert set(rule.options) - set(rule.leading) <= set(params)
