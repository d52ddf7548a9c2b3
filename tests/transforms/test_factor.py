"""factor: factors of an adjoint that are constant along the summed axes move out of
``rt.unbroadcast`` (before/after source; the gradients are checked in tests/test_factor_programs.py)."""

import textwrap

import libcst as cst
import pytest

from srcdiff.context import Context
from srcdiff.pipeline import parameters
from srcdiff.source import get_source
from srcdiff.transforms import factor

from ..helpers import code_lines, make_function


def rewritten(before: str, params=("x",)) -> list[str]:
    """``factor.rewrite`` of a generated module, for a function with ``params``."""
    fn = make_function(f"def f({', '.join(params)}):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=params[:1])
    module = cst.parse_module(textwrap.dedent(before))
    return code_lines(factor.rewrite(module, ctx).code)


def _pullback_of(forward: str, lines: str, params=("x", "w")) -> str:
    body = textwrap.indent(textwrap.dedent(lines).strip("\n"), " " * 16)
    return f"""
        def f_vjp({', '.join(params)}):
            {forward}
            _out = np.sum(y)

            def f_pullback(d_out):
                dy = rt.sum_adjoint(d_out, y)
{body}
                return dx

            return _out, f_pullback
    """


SOFTMAX = """s = np.sum(x, axis=-1, keepdims=True)
            y = x / s"""


@pytest.mark.parametrize("line, after", [
    # the divisor and the sign move: the other factor (x) keeps the large shape
    ("ds = rt.unbroadcast(-dy * x / (s * s), s)", "ds = -rt.unbroadcast(dy * x, s) / (s * s)"),
    ("ds = rt.unbroadcast(dy * x / s ** 2, s)", "ds = rt.unbroadcast(dy * x, s) / s ** 2"),
    ("ds = rt.unbroadcast(dy * np.exp(s) * x, s)", "ds = rt.unbroadcast(dy * x, s) * np.exp(s)"),
    ("ds = rt.unbroadcast(-(dy * x), s)", "ds = -rt.unbroadcast(dy * x, s)"),
    ("ds = rt.unbroadcast(dy * x * 2.0, s)", "ds = rt.unbroadcast(dy * x, s) * 2.0"),
    ("ds = rt.unbroadcast(dy * x * w / s, s)", "ds = rt.unbroadcast(dy * x * w, s) / s"),
    ("ds = rt.unbroadcast(-1.0 * x / (s * s), s)", "ds = -rt.unbroadcast(x, s) / (s * s)"),
    # inside a larger expression: parentheses only where needed
    ("ds = dx + rt.unbroadcast(-dy * x / s, s)", "ds = dx - rt.unbroadcast(dy * x, s) / s"),
    ("ds = dx - rt.unbroadcast(-dy * x / s, s)", "ds = dx + rt.unbroadcast(dy * x, s) / s"),
    ("ds = dx * rt.unbroadcast(dy * x / s, s)", "ds = dx * (rt.unbroadcast(dy * x, s) / s)"),
    ("ds = -rt.unbroadcast(-dy * x, s)", "ds = rt.unbroadcast(dy * x, s)"),
    ("ds = f(rt.unbroadcast(-dy * x, s))", "ds = f(-rt.unbroadcast(dy * x, s))"),
])
def test_factors_of_the_operands_shape_and_signs_move_after_the_sum(line, after):
    lines = rewritten(_pullback_of(SOFTMAX, line))
    assert "        " + after in lines


@pytest.mark.parametrize("forward, line", [
    # w's shape is not s's: w may vary along the summed axis
    (SOFTMAX, "ds = rt.unbroadcast(dy * x * w, s)"),
    # a guard has the large shape of its adjoint (1 where dy is 0)
    (SOFTMAX, "ds = rt.unbroadcast(dy * x / rt.guard(s * s, dy), s)"),
    # nothing proves that dy * w keeps the large shape without s (shapes of x and w unknown)
    ("y = w / x", "dx = rt.unbroadcast(dy * w / (x * x), x)"),
    # a sum only of factors of s's shape: nothing left to sum
    (SOFTMAX, "ds = rt.unbroadcast(s * 2.0, s)"),
    # a factor of another keepdims reduction: not of s's shape
    ("s = np.sum(x, axis=-1, keepdims=True)\n            t = np.sum(x, axis=0, keepdims=True)"
     "\n            y = x / s + t", "ds = rt.unbroadcast(dy * x / t, s)"),
])
def test_nothing_moves_where_it_may_vary_along_the_summed_axes(forward, line):
    assert "        " + line in rewritten(_pullback_of(forward, line))


def test_numbers_move_wherever_and_the_sign_alone():
    before = _pullback_of("y = x * w", """
        dx = rt.unbroadcast(dy * w * 3.0, x)
        dw = rt.unbroadcast(-(dy * x), w)
    """)
    lines = rewritten(before)
    assert "        dx = rt.unbroadcast(dy * w, x) * 3.0" in lines
    assert "        dw = -rt.unbroadcast(dy * x, w)" in lines


def test_a_line_without_a_factor_to_move_is_the_same_object():
    before = _pullback_of("y = x * w", "dx = rt.unbroadcast(dy * w, x)")
    module = cst.parse_module(textwrap.dedent(before))
    fn = make_function("def f(x, w):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=("x",))
    assert factor.rewrite(module, ctx).code == module.code
