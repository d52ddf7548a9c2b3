import textwrap

import libcst as cst
import numpy as np
import pytest

import srcdiff
from srcdiff import pipeline
from srcdiff.context import Context
from srcdiff.pipeline import parameters
from srcdiff.source import get_source
from srcdiff.testing import check_grad
from srcdiff.transforms import guards

from ..helpers import code_lines, make_function


def rewritten(before: str, params=("x",)) -> list[str]:
    fn = make_function(f"def f({', '.join(params)}):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=params[:1])
    return code_lines(guards.rewrite(cst.parse_module(textwrap.dedent(before)), ctx).code)


def test_guards_of_positive_values_are_dropped():
    before = """
        def f_vjp(x):
            _t1 = x * x
            _t2 = 1.0 + _t1
            e = x / _t2
            _t3 = _t1 + 1.0
            h = np.sqrt(_t3)
            c = np.exp(x)
            q = 1.0 + c
            _out = np.sum(e + h + q)

            def f_pullback(d_out):
                d = rt.sum_adjoint(d_out, e)
                dx = d / rt.guard(_t2, d)
                d_t2 = -d * x / rt.guard(_t2 * _t2, d)
                d_t3 = d / (2.0 * rt.guard(h, d))
                dq = d / rt.guard(q, d)
                return dx

            return _out, f_pullback
    """
    after = """
        def f_vjp(x):
            _t1 = x * x
            _t2 = 1.0 + _t1
            e = x / _t2
            _t3 = _t1 + 1.0
            h = np.sqrt(_t3)
            c = np.exp(x)
            q = 1.0 + c
            _out = np.sum(e + h + q)

            def f_pullback(d_out):
                d = rt.sum_adjoint(d_out, e)
                dx = d / _t2
                d_t2 = -d * x / (_t2 * _t2)
                d_t3 = d / (2.0 * h)
                dq = d / q
                return dx

            return _out, f_pullback
    """
    assert rewritten(before) == code_lines(after)


@pytest.mark.parametrize("forward", [
    "v = x",                    # an argument: may be zero
    "v = x - 1.0",              # differences
    "v = np.exp(x)",            # exp underflows to 0
    "v = x * x + 1e-8",         # a bound too small to survive float16/float32 rounding
    "v = x * w + 1.0",          # x * w may be negative
    "v = np.sqrt(x)",           # sqrt(0) == 0
    "v = np.sqrt(x - 2.0) + 1.0",  # sqrt of a negative number is NaN
    "v = (x * x) * np.exp(x) + 1.0",  # 0 * inf is NaN
    "v = np.log(x * x + 2.0)",  # a function without a bound
    "v = 1.0 / (x * x + 1.0)",  # quotients
])
def test_guards_stay_where_the_value_may_be_zero_or_nan(forward):
    assert pullback_line(forward) == "dx = d / rt.guard(v, d)"


def pullback_line(forward: str) -> str:
    """The pullback's division line after the pass, for ``forward`` (lines binding ``v``)."""
    before = textwrap.indent(textwrap.dedent(forward).strip(), " " * 4)
    lines = rewritten(f"""
def f_vjp(x, w):
{before}
    _out = np.sum(v)

    def f_pullback(d_out):
        d = rt.sum_adjoint(d_out, v)
        dx = d / rt.guard(v, d)
        return dx

    return _out, f_pullback
""", params=("x", "w"))
    return next(line.strip() for line in lines if line.strip().startswith("dx ="))


def test_a_guarded_base_of_a_power_stays():
    before = """
        def f_vjp(x):
            v = x * x + 1.0
            _out = np.sum(v)

            def f_pullback(d_out):
                dx = d_out * 0.5 * rt.guard(v, d_out) ** (0.5 - 1)
                return dx

            return _out, f_pullback
    """
    assert "        dx = d_out * 0.5 * rt.guard(v, d_out) ** (0.5 - 1)" in rewritten(before)


def test_a_name_assigned_twice_has_the_smaller_bound():
    before = """
        def f_vjp(x, c):
            if c:
                v = x * x + 2.0
            else:
                v = x - 1.0
            _out = np.sum(v)

            def f_pullback(d_out):
                dx = d_out / rt.guard(v, d_out)
                return dx

            return _out, f_pullback
    """
    assert "        dx = d_out / rt.guard(v, d_out)" in rewritten(before, params=("x", "c"))


SOURCES = [
    "def f(x):\n    return np.sum(np.log(x * x + 2.0) / (1.0 + x * x))\n",
    "def f(x):\n    return np.sum(np.sqrt(x * x + 1.0) + 1.0 / (1.0 + np.exp(-x)))\n",
    "def f(x):\n    return np.sum(np.where(x > 0, x / (1.0 + x * x), 0.0))\n",
    "def f(x):\n    return np.sum(np.log1p(np.exp(x)) + np.log(np.cosh(x)))\n",
]


@pytest.mark.parametrize("source", SOURCES)
def test_gradients_without_the_dropped_guards(source):
    fn = make_function(source)
    for x in (np.linspace(-2, 2, 6), 0.3, np.full(3, -0.1)):
        check_grad(fn, (x,), (srcdiff.grad(fn)(x),))


def test_masked_singularities_keep_their_guards_and_stay_finite():
    fn = make_function("def f(x):\n    return np.sum(np.where(x > 0, np.sqrt(x) + 1.0 / x, 0.0))\n")
    assert srcdiff.grad(fn).source.count("rt.guard") >= 2
    np.testing.assert_array_equal(np.isfinite(srcdiff.grad(fn)(np.array([0.0, -1.0, 4.0]))), True)


SOFTMAXES = {  # name -> (body of f(s), whether the denominator is provably >= 1)
    "np_max_keepdims": ("e = np.exp(s - np.max(s, axis=-1, keepdims=True))\n"
                        "    return np.sum(np.tanh(e / np.sum(e, axis=-1, keepdims=True)))", True),
    "methods": ("e = np.exp(s - s.max(axis=1, keepdims=True))\n"
                "    return np.sum(np.tanh(e / e.sum(1, keepdims=True)))", True),
    "amax_positional": ("e = np.exp(s - np.amax(s, 0, keepdims=True))\n"
                        "    return np.sum(np.tanh(e / np.sum(e, 0)))", True),
    "other_axis": ("e = np.exp(s - s.max(axis=0, keepdims=True))\n"
                   "    return np.sum(np.tanh(e / e.sum(axis=1, keepdims=True)))", False),
    "no_keepdims": ("e = np.exp(s - np.max(s, axis=-1))\n"
                    "    return np.sum(np.tanh(e / np.sum(e, axis=-1, keepdims=True)))", False),
    "shifted_by_another": ("e = np.exp(s - np.max(s * 2.0, axis=-1, keepdims=True))\n"
                           "    return np.sum(np.tanh(e / np.sum(e, axis=-1, keepdims=True)))",
                           False),
}


@pytest.mark.parametrize("name", sorted(SOFTMAXES))
def test_a_softmax_denominator_is_at_least_one(name, monkeypatch):
    """sum(exp(s - max(s, axis)), axis) >= 1 (one term is exp(0)): its guards go, and only
    where the max and the sum run along the same axis of the same array, the max kept. On
    the lines as written: the softmax stage makes each of these one rt.softmax (no division
    left to guard), and a softmax whose values are read elsewhere keeps its lines."""
    body, proven = SOFTMAXES[name]
    fn = make_function(f"def f(s):\n    {body}\n")
    s = np.random.default_rng(2).normal(size=(3, 3)) * 3.0
    check_grad(fn, (s,), (srcdiff.grad(fn)(s),))  # as compiled: most are one rt.softmax
    monkeypatch.setattr(pipeline, "PIPELINE", tuple(s for s in pipeline.PIPELINE if s[0] != "softmax"))
    fn = make_function(f"def f(s):\n    {body}\n")
    check_grad(fn, (s,), (srcdiff.grad(fn)(s),))
    assert ("rt.guard(" not in srcdiff.grad(fn).source) is proven
