"""The doubles stage: an adjoint that adds the same term twice (``r @ r`` of a vector, in every
spelling) takes it once, doubled; every spelling against finite differences (lengths 1 to 9,
value to the bit), a matrix's ``R @ R`` (two different terms) left alone, and the stage on
written lines: what it merges and what it must not."""

import re

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad
from srcdiff.transforms import doubles

from ..helpers import code, code_lines, rewrite_generated


def at(w, X, y):
    r = X @ w - y
    return r @ r / len(y)


def np_dot(w, X, y):
    r = np.dot(X, w) - y
    return np.dot(r, r) / y.size


def method(w, X, y):
    r = X.dot(w) - y
    return 0.5 * r.dot(r)


def inner(w, X, y):
    r = np.tanh(X @ w) - y
    return np.inner(r, r) + np.sum(w)


def einsum(w, X, y):
    r = np.einsum("ij,j->i", X, w) - y
    return np.einsum("i,i->", r, r) / len(y)


def vdot(w, X, y):
    r = X @ w - y
    return np.vdot(r, r)


SPELLINGS = [at, np_dot, method, inner, einsum, vdot]


@pytest.mark.parametrize("fn", SPELLINGS, ids=lambda f: f.__name__)
def test_every_spelling_matches_finite_differences(fn):
    rng = np.random.default_rng(4)
    for n, d in ((6, 3), (1, 1), (9, 4)):
        w, X, y = rng.normal(size=d), rng.normal(size=(n, d)), rng.normal(size=n)
        grad = srcdiff.grad(fn, wrt="w")
        for _ in range(2):  # the general variant, then the one for this pattern of shapes
            check_grad(fn, (w, X, y), (grad(w, X, y),), argnums=(0,))
        value, (dw,) = srcdiff.value_and_grad(fn, wrt=("w",))(w, X, y)
        assert value == pytest.approx(fn(w, X, y), rel=1e-14)  # (einsum is lowered to @)
        check_grad(fn, (w, X, y), (dw,), argnums=(0,))
    if fn is not vdot:  # (np.vdot's rule gives both adjoints at once: nothing to merge)
        assert "dr = dr + " not in code(grad.source)


def test_a_matrix_squared_keeps_both_terms():
    """R @ R of a matrix: its operands' adjoints are g @ R.T and R.T @ g, not one term."""
    def f(R):
        return np.sum(np.tanh(R @ R))

    R = np.random.default_rng(2).normal(size=(3, 3))
    grad = srcdiff.grad(f)
    for _ in range(2):
        check_grad(f, (R,), (grad(R),))
    assert not re.search(r"\b2(\.0)? \* ", code(grad.source))


GENERATED = """
def f_vjp(x):
    _t1 = x * 2.0

    def f_pullback(d_out):
{body}
        return dx

    return _t1, f_pullback
"""


def _lines(body: str) -> str:
    return GENERATED.format(body="\n".join("        " + line for line in body.splitlines()))


@pytest.mark.parametrize("before, after", [
    ("dx = d_out * x\ndx = dx + d_out * x", "dx = 2 * d_out * x"),
    ("dx = 1.0 * x\ndx = dx + 1.0 * x", "dx = 2.0 * x"),
    ("dx = d_out - x\ndx = dx + (d_out - x)", "dx = 2 * (d_out - x)"),
    ("dx = d_out * x\ndx = dx + d_out * x\ndx = dx + d_out * x",
     "dx = 2 * d_out * x\ndx = dx + d_out * x"),
    ("dx = x\ndx = dx + d_out * x\ndx = dx + d_out * x", "dx = x\ndx = dx + 2 * d_out * x"),
])
def test_the_same_term_twice_is_taken_once(before, after):
    assert rewrite_generated(doubles.rewrite, _lines(before)) == code_lines(_lines(after))


@pytest.mark.parametrize("before", [
    "dx = d_out * x\ndx = dx + d_out * _t1",              # another term
    "dx = x - d_out\ndx = dx + x - d_out",                # (dx + x) - d_out: not dx + term
    "dx = np.cos(x)\ndx = dx + np.cos(x)",                # a call: not known to repeat
    "dx = d_out * x\ndx = dx + dx * x",                   # the term reads dx
    "dx = d_out * x\n# adjoint of: another line\ndx = dx + d_out * x",  # another block
    "dx = d_out * x\ndy = dx + d_out * x",                # another name
])
def test_what_is_not_merged(before):
    assert rewrite_generated(doubles.rewrite, _lines(before)) == code_lines(_lines(before))
