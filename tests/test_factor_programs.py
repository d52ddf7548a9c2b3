"""The factor and spread stages end to end: programs whose adjoints move factors out of
``rt.unbroadcast`` and leave a keepdims sum's adjoint to broadcasting (softmax, a mean-centred
ratio) and programs where a guard or an unknown shape keeps them in, through grad,
value_and_grad and vjp against finite differences, in float32, on duck arrays, and against
the same derivative compiled without the two stages (float64, ~1e-12)."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
import srcdiff.dims
from srcdiff import pipeline

from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_a_number, draw, shape_cases)


def softmax_weighted(x, w):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    return np.sum(p * w)


def softmax_first_axis(x, w):
    e = np.exp(x - np.amax(x, axis=0, keepdims=True))
    return np.sum(np.divide(e, np.sum(e, axis=0, keepdims=True)) * w)


def softmax_methods(x, w):
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True) * w).sum()


def mean_centred_ratio(x):
    m = np.mean(x, axis=1, keepdims=True)
    return np.sum((x - m) ** 3 / m)


def softmax_of_all(x, w):  # the guard on sum(e) ** 2 stays: nothing moves
    e = np.exp(x - np.max(x))
    return np.sum(e / np.sum(e) * w)


def layer_norm(x, g):  # the guard on sqrt(var + eps) ** 2 stays: nothing moves
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return np.sum(np.tanh((x - mu) / np.sqrt(var + 1e-5)) * g)


def divided_by_a_row(x, b):  # b's adjoint: only the sign moves (x's shape is not known to hold b's)
    return np.sum(np.sin(x / b))


FUNCTIONS = {f.__name__: f for f in (softmax_weighted, softmax_first_axis, softmax_methods, mean_centred_ratio,
                                     softmax_of_all, layer_norm, divided_by_a_row)}

TABLE = [
    ("softmax_weighted", [((4, 3), (4, 3)), ((2, 3, 5), (5,)), ((6,), (6,)), ((1, 4), F)]),
    ("softmax_first_axis", [((3, 4), (3, 4)), ((5, 2), (2,))]),
    ("softmax_methods", [((3, 4), (3, 4))]),
    ("mean_centred_ratio", [((3, 4),), ((2, 5, 3),)]),
    ("softmax_of_all", [((3, 4), (4,)), ((5,), F)]),
    ("layer_norm", [((4, 5), (5,)), ((2, 3, 4), (4,))]),
    ("divided_by_a_row", [((4, 3), (3,)), ((4, 3), F)]),
]

DOMAINS = {"mean_centred_ratio": (1.0, 2.0), "divided_by_a_row": (1.0, 2.0)}


def _args(name, shapes):
    return draw(shapes, seed=3, dom=DOMAINS.get(name))


@pytest.mark.parametrize("name, shapes", shape_cases(TABLE))
def test_gradients_agree_with_finite_differences(name, shapes):
    fn, args = FUNCTIONS[name], _args(name, shapes)
    check_grad_by_finite_differences(fn, args)
    check_value_and_grad(fn, args)
    check_vjp_of_a_number(fn, args)


@pytest.mark.parametrize("name, shapes", shape_cases(TABLE))
def test_float32_and_duck_arrays(name, shapes):
    fn, args = FUNCTIONS[name], _args(name, shapes)
    check_float32_gradients(fn, args)
    if F not in shapes:  # (a Python float's gradient is a float: a host conversion)
        check_gradients_on_duck_arrays(fn, args)


STAGES = ("factor", "spread")
# the softmax stage turns these softmaxes into one rt.softmax, whose adjoint has no sum to
# factor: the two stages are compared on the lines as written (they still serve a softmax
# whose intermediate values are read elsewhere, and every other ratio)
LINES = ("softmax",)


def _compiled(fn, args, pattern, monkeypatch, without=()):
    """``fn``'s pullback compiled by every stage but those in ``without``, for the pattern of
    ``args``' shapes where ``pattern`` (as grad compiles it), else for any shapes."""
    dims = srcdiff.dims.pattern(args, frozenset({float})) if pattern else None
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "PIPELINE", tuple(s for s in pipeline.PIPELINE if s[0] not in without))
        return pipeline.compile_derivative(fn, tuple(pipeline.parameters(fn)), dims=dims)


@pytest.mark.parametrize("pattern", [False, True])
@pytest.mark.parametrize("name, shapes", shape_cases(TABLE))
def test_the_same_numbers_as_without_the_stages(name, shapes, pattern, monkeypatch):
    fn, args = FUNCTIONS[name], _args(name, shapes)
    assert all(stage in dict(pipeline.PIPELINE) for stage in STAGES)
    factored = _compiled(fn, args, pattern, monkeypatch, without=LINES)
    plain = _compiled(fn, args, pattern, monkeypatch, without=STAGES + LINES)
    assert factored.source != plain.source  # each moves a factor or a sign at least
    cotangent = np.float64(0.7)
    for got, want in zip(factored.function(*args)[1](cotangent), plain.function(*args)[1](cotangent)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fn, moved", [
    (softmax_weighted, "d_t3 = -rt.unbroadcast(dp * e, _t3) / (_t3 * _t3)"),
    (softmax_first_axis, "d_t3 = -rt.unbroadcast(d_t4 * e, _t3) / (_t3 * _t3)"),
    (softmax_methods, "d_t3 = -rt.unbroadcast(d_t4 * e, _t3) / (_t3 * _t3)"),
    (mean_centred_ratio, "dm = -rt.unbroadcast(_t2, m) / (m * m)"),
    (divided_by_a_row, "db = -(d_t1 * x / rt.guard(b * b, d_t1)).sum(axis=0)"),  # (ranks: the sum)
])
def test_the_generated_source_applies_the_factors_after_the_sum(fn, moved, monkeypatch):
    args = _args(fn.__name__, [(3, 4)] * (2 if fn is not mean_centred_ratio else 1))
    if fn is divided_by_a_row:
        args = (args[0], args[1][0])
    assert moved in _gradient_source(fn, args, monkeypatch)


def _gradient_source(fn, args, monkeypatch) -> str:
    """What ``srcdiff.grad(fn)(*args)`` compiles (its shape pattern), without the softmax
    stage; not through grad, whose derivatives are kept per function for the other tests."""
    dims = srcdiff.dims.pattern(args, frozenset({float}))
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "PIPELINE", tuple(s for s in pipeline.PIPELINE if s[0] not in LINES))
        return pipeline.compile_derivative(fn, tuple(pipeline.parameters(fn)), gradient=True,
                                           dims=dims).source


@pytest.mark.parametrize("fn", [softmax_weighted, softmax_first_axis, softmax_methods])
def test_the_sums_adjoint_is_left_to_broadcasting(fn, monkeypatch):
    source = _gradient_source(fn, _args(fn.__name__, [(3, 4), (3, 4)]), monkeypatch)
    assert "rt.sum_adjoint(d_t3" not in source and "d_t3)" in source


@pytest.mark.parametrize("fn", [softmax_weighted, softmax_first_axis, softmax_methods,
                                softmax_of_all])
def test_with_the_softmax_stage_the_lines_are_one_softmax(fn):
    args = _args(fn.__name__, [(3, 4), (3, 4)])
    grad = srcdiff.grad(fn, wrt=(0, 1))
    check_grad_by_finite_differences(fn, args)
    grad(*args)
    assert "rt.softmax(x, axis=" in grad.source and "rt.unbroadcast" not in grad.source
