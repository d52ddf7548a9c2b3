"""spread: a keepdims sum's adjoint beside a value of its operand's shape is left to
broadcasting (before/after source; gradients in tests/test_factor_programs.py)."""

import textwrap

import libcst as cst
import pytest

from srcdiff.context import Context
from srcdiff.pipeline import parameters
from srcdiff.source import get_source
from srcdiff.transforms import spread

from ..helpers import code_lines, make_function


def rewritten(line: str, forward="s = np.sum(x, axis=-1, keepdims=True)") -> list[str]:
    fn = make_function("def f(x, w):\n    return 0.0\n")
    ctx = Context(source=get_source(fn), params=parameters(fn), wrt=("x",))
    before = f"""
        def f_vjp(x, w):
            {forward}
            y = x / s
            _out = np.sum(y)

            def f_pullback(d_out):
                dy = rt.sum_adjoint(d_out, y)
                ds = -rt.unbroadcast(dy * x, s) / (s * s)
                dx = dy / s
                {line}
                return dx

            return _out, f_pullback
    """
    module = cst.parse_module(textwrap.dedent(before))
    return code_lines(spread.rewrite(module, ctx).code)


@pytest.mark.parametrize("line, after", [
    ("dx = dx + rt.sum_adjoint(ds, x, axis=-1, keepdims=True)", "dx = dx + ds"),
    ("dx = rt.sum_adjoint(ds, x, axis=-1, keepdims=True) - dx", "dx = ds - dx"),
    ("dx = dx * rt.sum_adjoint(ds * 2.0, x, axis=-1, keepdims=True)", "dx = dx * (ds * 2.0)"),
    ("dx = dx - rt.sum_adjoint(ds * 2.0, x, axis=-1, keepdims=True)", "dx = dx - ds * 2.0"),
    ("dx = dx + rt.sum_adjoint(-ds, x, axis=-1, keepdims=True)", "dx = dx + (-ds)"),
    ("dx = x * rt.sum_adjoint(ds, x, axis=-1, keepdims=True)", "dx = x * ds"),
    ("dx = dx + rt.sum_adjoint(1.0, x)", "dx = dx + 1.0"),              # all of x: a number
    ("dx = dx - rt.sum_adjoint(2.0 * 3.0, x)", "dx = dx - 2.0 * 3.0"),
])
def test_the_spread_is_left_to_broadcasting(line, after):
    assert "        " + after in rewritten(line)


@pytest.mark.parametrize("line", [
    "dx = rt.sum_adjoint(ds, x, axis=-1, keepdims=True)",             # alone: its shape is x's
    "dx = w + rt.sum_adjoint(ds, x, axis=-1, keepdims=True)",         # w: shape unknown
    "dx = dx + rt.sum_adjoint(ds, x, axis=-1)",                        # not keepdims
    "dx = dx + rt.sum_adjoint(1.0, x, axis=-1, keepdims=True)",       # a number
    "dx = dx + rt.sum_adjoint(dw, x, axis=-1, keepdims=True)",        # dw: shape unknown
    "dx = dx @ rt.sum_adjoint(ds, x, axis=-1, keepdims=True)",        # not elementwise
    "dx = dx + rt.sum_adjoint(ds, x)",                                 # ds: not a number
    "dx = w + rt.sum_adjoint(1.0, x)",                                 # w: shape unknown
])
def test_the_spread_stays_where_its_shape_may_matter(line):
    assert "        " + line in rewritten(line)
