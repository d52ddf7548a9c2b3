"""Every value numpy documents for an option of a rule is differentiated or refused, never
wrong (issue 14 item 4): a value the rule differentiates is checked against finite
differences through grad, value_and_grad and vjp, on several shapes; any other is refused when
the function compiles (``srcdiff.grad(f).source``, before anything runs), at the user's line,
naming the option and its value. A value known only when the code runs (a variable) is
checked by the rule before it computes.

``DOCUMENTED`` lists numpy's (and scipy's) values of every option that takes a set of values,
rule by rule; ``FORMS`` holds one program per value. ``test_every_rule_option_with_a_set_of_
values_is_documented`` walks the whole rule table, so a new rule option with values (or a new
``allowed=`` table) comes with its forms here.
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import NotDifferentiableError, SrcdiffError
from srcdiff.runtime import RULES, rule_for
from srcdiff.runtime.options import refusal
from srcdiff.testing import check_grad

from .end_to_end import check_grad_by_finite_differences, check_value_and_grad, draw
from .helpers import make_function

scipy = pytest.importorskip("scipy")
import scipy.linalg  # noqa: E402  (the scipy rules register once scipy is imported)
import scipy.special  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401

rule_for(np.sin)  # registers the scipy rules, now that scipy is imported

INF = np.inf
SORT_KINDS = ("quicksort", "mergesort", "heapsort", "stable")

# (primitive, option) -> the values numpy (scipy) documents for it
DOCUMENTED = {
    (np.linalg.qr, "mode"): ("reduced", "complete", "r", "raw"),
    (np.meshgrid, "indexing"): ("xy", "ij"),
    (np.pad, "mode"): ("constant", "edge", "linear_ramp", "maximum", "mean", "median",
                       "minimum", "reflect", "symmetric", "wrap", "empty"),
    (np.linalg.norm, "ord"): (None, "fro", "nuc", INF, -INF, 0, 1, -1, 2, -2, 3, 0.5),
    (np.ravel, "order"): ("C", "F", "A", "K"),
    (np.reshape, "order"): ("C", "F", "A"),
    (np.take, "mode"): ("raise", "wrap", "clip"),
    (np.choose, "mode"): ("raise", "wrap", "clip"),
    (np.linalg.eigh, "UPLO"): ("L", "U"),
    (np.linalg.eigvalsh, "UPLO"): ("L", "U"),
    (np.linalg.cholesky, "upper"): (False, True),
    (np.linalg.svd, "full_matrices"): (True, False),
    (np.linalg.svd, "compute_uv"): (True, False),
    (np.linalg.svd, "hermitian"): (False, True),
    (np.linalg.pinv, "hermitian"): (False, True),
    (np.sort, "kind"): (None, *SORT_KINDS),
    (np.sort, "stable"): (None, True),
    (np.partition, "kind"): ("introselect",),
    (np.nan_to_num, "copy"): (True, False),
    (np.linspace, "endpoint"): (True, False),
    (np.einsum, "optimize"): (False, True, "greedy", "optimal"),
    (scipy.linalg.solve_triangular, "trans"): (0, 1, 2, "N", "T", "C"),
    (scipy.linalg.solve_triangular, "lower"): (False, True),
    (scipy.linalg.solve_triangular, "unit_diagonal"): (False, True),
    (scipy.linalg.cho_factor, "lower"): (False, True),
    **{(fn, "dtype"): (None, "float32", "float64", "int", "int64", "bool", "complex128")
       for fn in (np.full, np.full_like, np.linspace, np.array, np.asarray, np.hstack,
                  np.vstack)},
}
QUANTILE_METHODS = ("inverted_cdf", "averaged_inverted_cdf", "closest_observation",
                    "interpolated_inverted_cdf", "hazen", "weibull", "linear", "median_unbiased",
                    "normal_unbiased", "lower", "higher", "midpoint", "nearest")
QUANTILES = {np.quantile: 0.3, np.nanquantile: 0.7, np.percentile: 30.0, np.nanpercentile: 55.0}
DOCUMENTED.update({(fn, "method"): QUANTILE_METHODS for fn in QUANTILES})
DOCUMENTED.update({(fn, "mode"): ("full", "same", "valid") for fn in (np.convolve, np.correlate)})
DOCUMENTED.update({(fn, "dtype"): (None, "float32", "float64", "int", "int64", "bool",
                                   "complex128") for fn in (np.cov, np.corrcoef)})
DOCUMENTED[np.cov, "fweights"] = (None, [1, 2, 1, 3, 1])
DOCUMENTED[np.cov, "aweights"] = (None, [0.5, 1.0, 2.0, 1.0, 1.5])
DOCUMENTED[np.interp, "period"] = (None, 360.0)
BUILDING_DTYPES = (np.asanyarray, np.ascontiguousarray, np.asfortranarray, np.astype, np.logspace,
                   np.geomspace)
DOCUMENTED.update({(fn, "dtype"): (None, "float32", "float64", "int", "int64", "bool",
                                   "complex128") for fn in BUILDING_DTYPES})
DOCUMENTED.update({(fn, "endpoint"): (True, False) for fn in (np.logspace, np.geomspace)})
DOCUMENTED[np.logspace, "base"] = (10.0, 2.0, [2.0, 3.0])
DOCUMENTED[np.gradient, "edge_order"] = (1, 2)
DOCUMENTED[np.polyfit, "full"] = (False, True)
DOCUMENTED[np.polyfit, "cov"] = (False, True, "unscaled")
if hasattr(np, "cumulative_sum"):
    DOCUMENTED[np.cumulative_sum, "include_initial"] = (False, True)
    DOCUMENTED[np.cumulative_prod, "include_initial"] = (False, True)

# options that take a set of values, by name
ENUMERATED = {"mode", "ord", "order", "kind", "stable", "UPLO", "upper", "full_matrices",
              "compute_uv", "hermitian", "copy", "dtype", "trans", "lower", "unit_diagonal",
              "include_initial", "endpoint", "optimize", "keepdims", "casting", "subok",
              "check_finite", "allow_singular", "norm", "deg"}
# the options of those names that need no forms here, and why
EXEMPT = {
    "keepdims": "every reduction's keepdims=True/False is in the rule tables (REDUCTION_OPTIONS)",
    "check_finite": "a check of the input, no change of the values",
    "subok": "the array class, not the values",
    "casting": "checked by numpy with dtype=; a float dtype is all the rule takes",
    "allow_singular": "the same density where cov is not singular (scipy_rules: cholesky)",
    "order": "the memory layout of a new array (np.full, np.copy), the fields of a structured "
             "array (np.sort): not the values",
    "copy": "a copy or not of the same values",
    "norm": "np.fft's 'backward', 'ortho', 'forward': tests/runtime/test_fft.py",
    "deg": "np.angle in degrees or radians: tests/runtime/test_fft.py",
}
# where the option of an EXEMPT name does change the values: order= of the elements, copy=False
# writing into the argument
NOT_EXEMPT = {(np.ravel, "order"), (np.reshape, "order"), (np.nan_to_num, "copy")}


@dataclass(frozen=True)
class Form:
    """A value of an option in a program: ``body`` is the function's body, ``{v}`` the
    value's spelling; ``shapes`` the argument shapes it runs on (one tuple per run);
    ``refused``: what the compile-time error says (None: differentiated)."""

    fn: object
    option: str
    value: object
    body: str
    shapes: tuple = (((3, 4),),)
    refused: str | None = None
    dom: tuple | None = None
    with_axis: bool = False  # refused for the axis= it is given, not for its own value


def spell(value) -> str:
    """The value as the program writes it (``np.inf``)."""
    if isinstance(value, float) and np.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


def forms():
    """One Form per documented value (several programs for some)."""
    out = []
    square, tall, wide, batch = ((3, 3),), ((4, 3),), ((2, 4),), ((2, 3, 3),)

    # ----- np.linalg.qr: mode -----
    qr_body = "q, r = np.linalg.qr(a, mode={v})\nreturn np.sum(q * q[0]) + np.sum(np.sin(r))"
    out.append(Form(np.linalg.qr, "mode", "reduced", qr_body, (square, tall, wide, ((2, 4, 3),))))
    out.append(Form(np.linalg.qr, "mode", "complete", qr_body, (tall,), refused="mode='complete'"))
    out.append(Form(np.linalg.qr, "mode", "r", "r = np.linalg.qr(a, mode={v})\nreturn np.sum(r)",
                    (tall,), refused="mode='r'"))
    out.append(Form(np.linalg.qr, "mode", "raw", "h, tau = np.linalg.qr(a, mode={v})\n"
                    "return np.sum(h) + np.sum(tau)", (tall,), refused="mode='raw'"))

    # ----- np.pad: mode -----
    pad_body = "return np.sum(np.sin(np.pad(a, ((1, 2), (0, 1)), mode={v})) * 1.5)"
    for mode in ("constant", "edge", "reflect", "symmetric", "wrap"):
        out.append(Form(np.pad, "mode", mode, pad_body, (((3, 4),), ((4, 5),))))
    out.append(Form(np.pad, "mode", "empty",  # the padding is garbage: only the inside is read
                    "return np.sum(np.sin(np.pad(a, 2, mode={v})[2:-2, 2:-2]))", (((3, 4),),)))
    for mode in ("linear_ramp", "maximum", "mean", "median", "minimum"):
        out.append(Form(np.pad, "mode", mode, pad_body, (((3, 4),),), refused=f"mode='{mode}'"))

    # ----- np.linalg.norm: ord, of vectors and of matrices -----
    for o in (None, INF, -INF, 0, 1, -1, 2, -2, 3, 0.5):  # a vector: every number
        out.append(Form(np.linalg.norm, "ord", o, "return np.linalg.norm(a, ord={v}) ** 2",
                        (((5,),), ((2, 3, 4),)) if o is None else (((5,),),)))
        out.append(Form(np.linalg.norm, "ord", o, "return np.sum(np.linalg.norm(a, ord={v}, "
                        "axis=-1, keepdims=True) * a)", (((2, 5),),)))
    for o in (None, "fro", "nuc", INF, -INF, 1, -1, 2, -2):  # a matrix: numpy's set
        out.append(Form(np.linalg.norm, "ord", o, "return np.linalg.norm(a, ord={v}) ** 2",
                        (((3, 4),),)))
        out.append(Form(np.linalg.norm, "ord", o, "return np.sum(np.linalg.norm(a, ord={v}, "
                        "axis=(2, 0)))", (((3, 2, 4),),)))
    for o in ("fro", "nuc"):  # not of vectors
        out.append(Form(np.linalg.norm, "ord", o, "return np.sum(np.linalg.norm(a, ord={v}, "
                        "axis=1))", (((3, 4),),), refused=f"ord={o!r} along one axis",
                        with_axis=True))
    for o in (0, 3, 0.5):  # not of matrices
        out.append(Form(np.linalg.norm, "ord", o, "return np.sum(np.linalg.norm(a, ord={v}, "
                        "axis=(0, 1)))", (((3, 4),),), refused=f"ord={o!r} over two axes",
                        with_axis=True))

    # ----- order of the elements: np.ravel, np.reshape, x.flatten, x.reshape -----
    w = "np.arange(1.0, 13.0)"
    for order in ("C", "F"):
        out.append(Form(np.ravel, "order", order, f"return np.sum({w} * np.ravel(a.T, order={{v}}))",
                        (((3, 4),),)))
        out.append(Form(np.ravel, "order", order, f"return np.sum({w} * a.T.flatten({{v}}))",
                        (((3, 4),),)))
        out.append(Form(np.reshape, "order", order,
                        f"return np.sum({w} * np.reshape(a.T, (12,), order={{v}}))", (((3, 4),),)))
        out.append(Form(np.reshape, "order", order,
                        "return np.sum(np.arange(12.0).reshape(3, 4) * a.T.reshape(3, 4, "
                        "order={v}))", (((4, 3),),)))
    for order in ("A", "K"):
        out.append(Form(np.ravel, "order", order, f"return np.sum({w} * np.ravel(a.T, order={{v}}))",
                        (((3, 4),),), refused=f"order='{order}'"))
        out.append(Form(np.ravel, "order", order, f"return np.sum({w} * a.T.flatten({{v}}))",
                        (((3, 4),),), refused=f"order='{order}'"))
    out.append(Form(np.reshape, "order", "A",
                    f"return np.sum({w} * np.reshape(a.T, (12,), order={{v}}))", (((3, 4),),),
                    refused="order='A'"))

    # ----- picking: np.take, np.choose -----
    for mode in ("raise", "wrap", "clip"):
        index = "[0, 2, 2]" if mode == "raise" else "[-4, 2, 5]"
        out.append(Form(np.take, "mode", mode, f"return np.sum(np.sin(np.take(a, np.array("
                        f"{index}), axis=1, mode={{v}})))", (((3, 4),), ((2, 4),))))
        out.append(Form(np.choose, "mode", mode, f"return np.sum(np.sin(np.choose(np.array("
                        f"{index}), [a, 2.0 * a, a * a], mode={{v}})))", (((3,),),)))

    # ----- symmetric and triangular factorisations -----
    for uplo in ("L", "U"):
        out.append(Form(np.linalg.eigh, "UPLO", uplo, "s = a + a.T + 6.0 * np.eye(3)\n"
                        "w, v = np.linalg.eigh(s, UPLO={v})\nreturn np.sum(w ** 2) + "
                        "np.sum(v[:, 0] * v[:, 0] * np.arange(3.0))", (square,)))
        out.append(Form(np.linalg.eigvalsh, "UPLO", uplo, "return np.sum(np.linalg.eigvalsh("
                        "a @ a.T + np.eye(3), UPLO={v}) ** 2)", (square,)))
    for upper in (False, True):
        out.append(Form(np.linalg.cholesky, "upper", upper, "c = np.linalg.cholesky(a @ a.T + "
                        "3.0 * np.eye(3), upper={v})\nreturn np.sum(np.sin(c))", (square,)))

    # ----- np.linalg.svd and pinv -----
    out.append(Form(np.linalg.svd, "full_matrices", False, "u, s, vh = np.linalg.svd(a, "
                    "full_matrices={v})\nreturn np.sum(s ** 2) + np.sum(u[0] * vh[:, 0])",
                    (square, tall, wide)))
    out.append(Form(np.linalg.svd, "full_matrices", True, "u, s, vh = np.linalg.svd(a, "
                    "full_matrices={v})\nreturn np.sum(s ** 2) + np.sum(u[0, :2] * vh[:2, 0])",
                    (square, tall, wide)))
    out.append(Form(np.linalg.svd, "compute_uv", True, "u, s, vh = np.linalg.svd(a, "
                    "compute_uv={v})\nreturn np.sum(s * np.arange(1.0, 4.0))", (square,)))
    out.append(Form(np.linalg.svd, "compute_uv", False, "return np.sum(np.linalg.svd(a, "
                    "compute_uv={v}) ** 3)", (square, tall, wide)))
    for hermitian in (False, True):
        out.append(Form(np.linalg.svd, "hermitian", hermitian, "s = a @ a.T + np.eye(3)\n"
                        "return np.sum(np.linalg.svd(s, compute_uv=False, hermitian={v}))",
                        (square,)))
        out.append(Form(np.linalg.pinv, "hermitian", hermitian, "s = a @ a.T + np.eye(3)\n"
                        "return np.sum(np.sin(np.linalg.pinv(s, hermitian={v})))", (square,)))

    # a cutoff that drops a singular value (0.02 and 0.21 of the largest, in the square and
    # tall matrices drawn; none in the wide one): the derivative of the truncated pinv
    for option in ("rcond", "rtol"):
        out.append(Form(np.linalg.pinv, option, 0.3, "return np.sum(np.sin(np.linalg.pinv(a, "
                        f"{option}={{v}})))", (square, tall, wide, batch)))
    out.append(Form(np.linalg.lstsq, "rcond", 0.3, "x, res, rank, sv = np.linalg.lstsq(a, b, "
                    "rcond={v})\nreturn np.sum(x ** 2) + np.sum(sv) + np.sum(res)",
                    (((3, 3), (3,)), ((4, 3), (4,)), ((4, 3), (4, 2)))))
    out.append(Form(np.linalg.lstsq, "rcond", None, "x, res, rank, sv = np.linalg.lstsq(a, b, "
                    "rcond={v})\nreturn np.sum(x ** 2) + np.sum(sv) + np.sum(res)",
                    (((3, 3), (3,)), ((4, 3), (4,)), ((2, 4), (2,)))))

    # ----- sorting -----
    for kind in (None, *SORT_KINDS):
        out.append(Form(np.sort, "kind", kind, "return np.sum(np.sort(a, axis=0, kind={v}) * "
                        "np.arange(3.0)[:, None])", (((3, 4),),)))
    for stable in (None, True):
        out.append(Form(np.sort, "stable", stable, "return np.sum(np.sort(a, stable={v}) * "
                        "np.arange(4.0))", (((3, 4),),)))
    out.append(Form(np.partition, "kind", "introselect", "return np.sum(np.partition(a, 1, "
                    "kind={v})[..., :2] * 2.0)", (((3, 4),),)))

    # ----- copy= of nan_to_num, endpoint= of linspace, optimize= of einsum -----
    out.append(Form(np.nan_to_num, "copy", True, "return np.sum(np.nan_to_num(a, copy={v}) ** 2)",
                    (((3, 4),), ((),))))
    out.append(Form(np.nan_to_num, "copy", False, "return np.sum(np.nan_to_num(a, copy={v}) ** 2)",
                    (((3, 4),),), refused="copy=False"))
    for endpoint in (True, False):
        out.append(Form(np.linspace, "endpoint", endpoint, "return np.sum(np.sin(np.linspace("
                        "a, 2.0 * a + 1.0, 5, endpoint={v})))", (((),), ((3,),))))
    for optimize in (False, True, "greedy", "optimal"):
        out.append(Form(np.einsum, "optimize", optimize, "return np.sum(np.sin(np.einsum("
                        "'ij,jk,kl->il', a, a.T, a, optimize={v})))", (((3, 2),),)))

    # ----- dtype= of functions whose result takes the values -----
    makes = {
        np.full: "np.full((2, 3), a, dtype={v})",
        np.full_like: "np.full_like(np.ones((2, 3)), a, dtype={v})",
        np.linspace: "np.linspace(0.0, a, 4, dtype={v})",
        np.array: "np.array([a, 2.0 * a, a + 3.5], dtype={v})",
        np.asarray: "np.asarray(a, dtype={v})",
        np.hstack: "np.hstack([a, 2.0 * a], dtype={v})",
        np.vstack: "np.vstack([a, 2.0 * a], dtype={v})",
    }
    for fn, call in makes.items():
        for dtype in (None, "float32", "float64"):
            out.append(Form(fn, "dtype", dtype, f"return np.sum(np.sin({call}) * 1.5)",
                            (((),), ((3,),)) if fn not in (np.full_like, np.linspace) else
                            (((),),), dom=(0.5, 2.0)))
        for dtype in ("int", "int64", "bool", "complex128"):
            out.append(Form(fn, "dtype", dtype, f"return np.sum(np.sin({call}) * 1.5)",
                            (((3,),),) if fn in (np.asarray, np.hstack, np.vstack) else (((),),),
                            refused=f"dtype={dtype!r}", dom=(0.5, 2.0)))

    # ----- order statistics, signals, covariance (runtime/statistics.py) -----
    for fn, q in QUANTILES.items():
        for method in QUANTILE_METHODS:
            refused = None if refusal(rule_for(fn), "method", method) == "" else \
                f"method={method!r}"
            out.append(Form(fn, "method", method, f"return np.sum(np.{fn.__name__}(a, {q}, "
                            "axis=-1, method={v}) ** 3)", (((3, 5),), ((4, 6),))
                            if refused is None else (((3, 5),),), refused=refused))
    for fn in (np.convolve, np.correlate):
        for mode in ("full", "same", "valid"):
            out.append(Form(fn, "mode", mode, f"return np.sum(np.{fn.__name__}(a, b, mode={{v}})"
                            " ** 3)", (((5,), (3,)), ((3,), (5,)), ((4,), (4,)))))
    for fn in (np.cov, np.corrcoef):
        call = f"np.{fn.__name__}(a, dtype={{v}})"
        for dtype in (None, "float32", "float64"):
            out.append(Form(fn, "dtype", dtype, f"return np.sum(np.sin({call}))",
                            (((3, 5),), ((2, 4),))))
        for dtype in ("int", "int64", "bool", "complex128"):
            out.append(Form(fn, "dtype", dtype, f"return np.sum(np.sin({call}))", (((3, 5),),),
                            refused=f"dtype={dtype!r}"))
    for option, weights in (("fweights", [1, 2, 1, 3, 1]), ("aweights", [0.5, 1.0, 2.0, 1.0, 1.5])):
        for value in (None, weights):
            out.append(Form(np.cov, option, value, f"return np.sum(np.cov(a, {option}={{v}}) ** 2)",
                            (((3, 5),),), refused=None if value is None else f"{option}="))
    for period in (None, 360.0):
        out.append(Form(np.interp, "period", period, "return np.sum(np.interp(a, np.array([-2.0, "
                        "-0.5, 0.4, 1.0, 2.5]), b, period={v}) ** 3)", (((2, 3), (5,)),),
                        refused=None if period is None else "period=360.0"))

    # ----- building arrays, polynomials, conversions (runtime/building.py) -----
    builds = {
        np.asanyarray: "np.asanyarray(a, dtype={v})",
        np.ascontiguousarray: "np.ascontiguousarray(a, dtype={v})",
        np.asfortranarray: "np.asfortranarray(a, dtype={v})",
        np.astype: "np.astype(a, {v})",  # dtype, numpy's second argument by position
        np.logspace: "np.logspace(a, 0.5, 4, dtype={v})",
        np.geomspace: "np.geomspace(a, 3.0, 4, dtype={v})",
    }
    for fn, call in builds.items():
        spaced, line = fn in (np.logspace, np.geomspace), call.split("  #")[0]
        for dtype in (None, "float32", "float64"):
            out.append(Form(fn, "dtype", dtype, f"return np.sum(np.sin({line}) * 1.5)",
                            (((),),) if spaced else (((3,),), ((2, 3),)), dom=(0.5, 2.0)))
        for dtype in ("int", "int64", "bool", "complex128"):
            # np.astype's complex result is refused as a complex value (complex_values.py)
            refused = "complex" if fn is np.astype and dtype == "complex128" else \
                f"dtype={dtype!r}" if fn is not np.astype else f"dtype='{dtype}'"
            out.append(Form(fn, "dtype", dtype, f"return np.sum(np.sin({line}) * 1.5)"
                            + ("  # dtype=" if fn is np.astype else ""),
                            (((),),) if spaced else (((3,),),), refused=refused,
                            dom=(0.5, 2.0)))
        if spaced:
            for endpoint in (True, False):
                out.append(Form(fn, "endpoint", endpoint, f"return np.sum(np.sin(np.{fn.__name__}"
                                "(0.5 * a, 0.2 * a + 0.4, 5, endpoint={v})))", (((),), ((3,),)),
                                dom=(0.5, 2.0)))
    for base in (10.0, 2.0, [2.0, 3.0]):
        out.append(Form(np.logspace, "base", base, "return np.sum(np.logspace(a, 0.5, 4, "
                        "base={v}))", (((),), ((3,),)), refused="base=" if base == [2.0, 3.0]
                        else None, dom=(0.5, 2.0)))
    for order in (1, 2, 3):
        out.append(Form(np.gradient, "edge_order", order, "return np.sum(np.gradient(a, 0.5, "
                        "axis=-1, edge_order={v}) ** 3)", (((3, 4),), ((5,),)),
                        refused="edge_order=3" if order == 3 else None))
    for option, values in (("full", (False, True)), ("cov", (False, True, "unscaled"))):
        for value in values:
            out.append(Form(np.polyfit, option, value, "return np.sum(np.polyfit(np.arange(4.0), "
                            f"a, 2, {option}={{v}})[0] ** 2)", (((4,),), ((4, 2),)),
                            refused=f"{option}=" if value else None))

    # ----- scans with an initial value (numpy 2.1) -----
    if hasattr(np, "cumulative_sum"):
        for fn in (np.cumulative_sum, np.cumulative_prod):
            for initial in (False, True):
                out.append(Form(fn, "include_initial", initial, f"return np.sum(np.sin(np."
                                f"{fn.__name__}(a, axis=1, include_initial={{v}})))",
                                (((3, 4),),)))

    # ----- scipy.linalg -----
    for trans in (0, 1, 2, "N", "T", "C"):
        out.append(Form(scipy.linalg.solve_triangular, "trans", trans,
                        "t = a + 4.0 * np.eye(3)\nreturn np.sum(np.sin(scipy.linalg."
                        "solve_triangular(t, a[0] * 2.0, trans={v})))", (square,)))
    for flag in (False, True):
        out.append(Form(scipy.linalg.solve_triangular, "lower", flag,
                        "t = a + 4.0 * np.eye(3)\nreturn np.sum(np.sin(scipy.linalg."
                        "solve_triangular(t, a * 2.0, lower={v})))", (square,)))
        out.append(Form(scipy.linalg.solve_triangular, "unit_diagonal", flag,
                        "t = a + 4.0 * np.eye(3)\nreturn np.sum(np.sin(scipy.linalg."
                        "solve_triangular(t, a[1], unit_diagonal={v})))", (square,)))
        out.append(Form(scipy.linalg.cho_factor, "lower", flag,
                        "c, low = scipy.linalg.cho_factor(a @ a.T + 3.0 * np.eye(3), lower={v})"
                        "\nreturn np.sum(np.sin(c))", (square,)))

    # ----- np.meshgrid: indexing (runtime/grids.py) -----
    for indexing in ("xy", "ij"):
        out.append(Form(np.meshgrid, "indexing", indexing,
                        "X, Y = np.meshgrid(a, b * 2.0, indexing={v})\n"
                        "return np.sum(np.sin(X) * Y)", (((3,), (4,)), ((2, 2), (3,)))))
    return out


FORMS = forms()


def _label(form: Form, shapes=None) -> str:
    rule = rule_for(form.fn).name.removesuffix("_adjoint")
    body = form.body.splitlines()[-1].replace(" ", "")[:40]
    where = "" if shapes is None else "-" + "-".join(map(str, shapes)).replace(" ", "")
    return f"{rule}-{form.option}={form.value!r}{where}-{body}"


def program(form: Form):
    """The form's program as a real function (srcdiff reads its source)."""
    params = ", ".join("abc"[:len(form.shapes[0])])
    body = textwrap.indent(form.body.format(v=spell(form.value)), "    ")
    return make_function(f"import scipy.linalg\n\n\ndef f({params}):\n{body}\n")


DIFFERENTIATED = [pytest.param(f, s, id=_label(f, s)) for f in FORMS if f.refused is None
                  for s in f.shapes]
REFUSED = [pytest.param(f, id=_label(f)) for f in FORMS if f.refused is not None]


# ----- the walk over the rule table -----


def test_every_rule_option_with_a_set_of_values_is_documented():
    """Each option of each rule whose name takes a set of values has numpy's values here, or a
    reason (EXEMPT) why its values do not change what is differentiated."""
    missing = [f"{rule.name}: {option}=" for fn, rule in RULES.items() for option in rule.options
               if option in ENUMERATED and (fn, option) not in DOCUMENTED and
               (option not in EXEMPT or (fn, option) in NOT_EXEMPT)]
    assert not missing, f"rule options with a set of values but no forms here: {missing}"


def test_every_allowed_table_is_documented():
    """A rule's ``allowed=`` table names options whose values are all documented here."""
    for fn, rule in RULES.items():
        for option, _ in rule.allowed:
            assert (fn, option) in DOCUMENTED, f"{rule.name}: allowed {option}= without forms"


def test_every_documented_value_has_a_form():
    """Each documented value is differentiated (checked below) or refused at compile time."""
    have = {(f.fn, f.option, repr(f.value)) for f in FORMS}
    missing = [(rule_for(fn).name, option, v) for (fn, option), values in DOCUMENTED.items()
               for v in values if (fn, option, repr(v)) not in have]
    assert not missing, f"documented values without a form: {missing}"


def test_the_rule_and_the_compiler_agree_on_each_form():
    """A form is refused exactly where the rule's ``allowed`` table refuses its value."""
    from srcdiff.runtime.options import refusal

    for form in FORMS:
        rule = rule_for(form.fn)
        if form.option in dict(rule.allowed) and not form.with_axis:
            refused = bool(refusal(rule, form.option, form.value))
            assert refused == (form.refused is not None), _label(form)


# ----- differentiated values: grad, value_and_grad and vjp against finite differences -----


@pytest.mark.parametrize("form, shapes", DIFFERENTIATED)
def test_a_value_the_rule_takes_is_differentiated(form, shapes):
    fn = program(form)
    args = draw(shapes, seed=3, dom=form.dom)
    if form.option == "dtype" and form.value == "float32":
        # finite differences through float32 values are noise: the gradient is the float64
        # twin's (whose own form is checked against finite differences), to float32 precision
        twin = program(dataclasses.replace(form, value="float64"))
        for got, want in zip(srcdiff.grad(fn, (0,))(*args), srcdiff.grad(twin, (0,))(*args)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        return
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    out, pullback = srcdiff.vjp(fn, *args)
    np.testing.assert_allclose(out, fn(*args), rtol=1e-12)
    check_grad(fn, args, pullback(1.0))


# ----- refused values: at compile time, at the user's line -----


@pytest.mark.parametrize("form", REFUSED)
def test_a_value_the_rule_does_not_take_is_refused_when_compiling(form):
    fn = program(form)
    with pytest.raises(NotDifferentiableError) as info:
        srcdiff.grad(fn).source  # compiles, runs nothing
    error = info.value
    assert form.refused in str(error), str(error)
    assert form.with_axis or "srcdiff differentiates" in str(error)  # and what instead
    call = form.body.format(v=spell(form.value)).splitlines()
    line = next(i for i, text in enumerate(call) if form.option in text or "flatten" in text)
    assert error.text.strip() == call[line].strip()
    assert error.lineno == fn.__code__.co_firstlineno + 1 + line


# ----- options a rule does not take at all: refused by name, at compile time -----


@pytest.mark.parametrize("call, option", [
    ("np.pad(a, 1, mode='reflect', reflect_type='odd')", "reflect_type="),
    ("np.pad(a, 1, mode='linear_ramp', end_values=2.0)", "end_values="),
    ("np.pad(a, 1, mode='mean', stat_length=2)", "stat_length="),
    ("scipy.special.logsumexp(a, return_sign=True)[0]", "return_sign="),
    ("np.linspace(0.0, a, 5, retstep=True)[0]", "retstep="),
    ("np.sum(a, where=a > 0.0)", "where="),
    ("np.max(a, initial=0.0)", "initial="),
    ("np.cumsum(a, dtype=np.float32)", "dtype="),
])
def test_an_option_without_a_rule_is_refused_by_name_when_compiling(call, option):
    fn = make_function(f"import scipy.special\n\n\ndef f(a):\n    return np.sum({call})\n")
    with pytest.raises(NotDifferentiableError, match=option) as info:
        srcdiff.grad(fn).source
    assert info.value.lineno == fn.__code__.co_firstlineno + 1
    assert info.value.text.strip() == f"return np.sum({call})"


# Without axis=, whether x is a vector or a matrix is known only when the function runs: there
# numpy refuses an ord= of the other kind, in the forward pass, before any gradient.
def norm_of_a_matrix_ord_3(a):
    return np.linalg.norm(a, ord=3)


def nuclear_norm_of_a_vector(a):
    return np.linalg.norm(a, ord="nuc")


@pytest.mark.parametrize("fn, shape, match", [
    (norm_of_a_matrix_ord_3, (3, 4), "Invalid norm order for matrices"),
    (nuclear_norm_of_a_vector, (4,), "Invalid norm order 'nuc' for vectors"),
])
def test_an_ord_numpy_refuses_fails_in_the_forward_pass_as_without_srcdiff(fn, shape, match):
    a = np.ones(shape)
    with pytest.raises(ValueError, match=match):
        fn(a)
    for transform in (srcdiff.grad, srcdiff.value_and_grad):
        with pytest.raises(ValueError, match=match):
            transform(fn)(a)


# ----- values known only when the code runs -----


def mode_of_a_variable(a, mode):
    q, r = np.linalg.qr(a, mode=mode)
    return np.sum(q * q[0]) + np.sum(np.sin(r))


def order_of_a_variable(a, order):
    return np.sum(np.arange(1.0, 13.0) * np.ravel(a.T, order=order))


def pad_of_a_variable(a, mode):
    return np.sum(np.sin(np.pad(a, 1, mode=mode)))


def dtype_of_a_module_attribute(a):
    return np.sum(np.sin(np.asarray(a, dtype=np.int64)))


def float_dtype_of_a_module_attribute(a):
    return np.sum(np.sin(np.asarray(a, dtype=np.float32)) * a)


@pytest.mark.parametrize("fn, value, match", [
    (mode_of_a_variable, "complete", "np.linalg.qr with mode='complete'"),
    (mode_of_a_variable, "raw", "np.linalg.qr with mode='raw'"),
    (order_of_a_variable, "A", "np.ravel with order='A'"),
    (pad_of_a_variable, "median", "np.pad with mode='median'"),
])
def test_a_variable_option_is_checked_before_the_rule_computes(fn, value, match):
    a = np.random.default_rng(0).standard_normal((4, 3))
    for transform in (lambda: srcdiff.grad(fn)(a, value),
                      lambda: srcdiff.value_and_grad(fn)(a, value),
                      lambda: srcdiff.vjp(fn, a, value)[1](1.0)):
        with pytest.raises(SrcdiffError, match=match):
            transform()


@pytest.mark.parametrize("fn, value", [(mode_of_a_variable, "reduced"),
                                       (order_of_a_variable, "F"), (pad_of_a_variable, "wrap")])
def test_a_variable_option_the_rule_takes_is_differentiated(fn, value):
    a = np.random.default_rng(0).standard_normal((4, 3))
    check_grad(lambda x: fn(x, value), (a,), (srcdiff.grad(fn)(a, value),))


def float64_dtype_of_a_module_attribute(a):
    return np.sum(np.sin(np.asarray(a, dtype=np.float64)) * a)


# normalize makes np.int64 a temporary of the forward pass: the rule checks it when it runs
def test_a_dtype_read_off_a_module_is_checked_when_the_rule_runs():
    a = np.random.default_rng(0).standard_normal(3)
    with pytest.raises(SrcdiffError, match="np.asarray with dtype=<class 'numpy.int64'>"):
        srcdiff.grad(dtype_of_a_module_attribute)(a)
    g = srcdiff.grad(float64_dtype_of_a_module_attribute)(a)
    check_grad(float64_dtype_of_a_module_attribute, (a,), (g,))
    np.testing.assert_allclose(srcdiff.grad(float_dtype_of_a_module_attribute)(a), g, rtol=1e-5)


# ----- svd with full_matrices=True of a non-square matrix -----


def svd_all_of_u(a):
    u, s, vh = np.linalg.svd(a)
    return np.sum(u)


def test_full_svd_reading_the_extra_columns_of_u_is_refused_when_it_runs():
    a = np.random.default_rng(0).standard_normal((4, 2))
    with pytest.raises(SrcdiffError, match="full_matrices=False"):
        srcdiff.grad(svd_all_of_u)(a)
    g = srcdiff.grad(svd_all_of_u)(np.random.default_rng(0).standard_normal((3, 3)))  # square
    check_grad(svd_all_of_u, (np.random.default_rng(0).standard_normal((3, 3)),), (g,))
