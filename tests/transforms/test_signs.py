"""signs: negations in the pullback move where they cost nothing, values exactly the same."""

import numpy as np
import pytest

import srcdiff
from srcdiff import pipeline
from srcdiff.testing import check_grad
from srcdiff.transforms import signs

from ..helpers import code_lines, make_function, rewrite_generated

FORWARD = """
def f_vjp(x):
    a = np.sin(x)
    b = np.cos(x)

    def f_pullback():
        g = 1.0 / b
        h = g * a
{}
        return dx

    return f_pullback
"""


def _pullback(body: str) -> list[str]:
    """The pullback lines after the two adjoints ``g`` and ``h`` (both floats)."""
    lines = [line.strip() for line in rewrite_generated(signs.rewrite, FORWARD.format(body))]
    start = lines.index("h = g * a") + 1
    return lines[start:lines.index("return dx")]


@pytest.mark.parametrize("before, after", [
    # a negated alias read once: the sign goes into a number factor
    ("n = -g\ndx = n * 0.5", "dx = g * -0.5"),
    ("n = -g\ndx = 2 * n * h", "dx = -2 * g * h"),
    # ... into an addition or a subtraction
    ("n = -g\ndx = h + n * a", "dx = h - g * a"),
    ("n = -g\ndx = h - n", "dx = h + g"),
    # a negated first contribution, accumulated later
    ("dx = -g\ndx = dx + h * a", "dx = h * a - g"),
    ("dx = -g\ndx = h * a + dx", "dx = h * a - g"),
    # read twice, both readers take the sign
    ("n = -g\nm = h + n\ndx = m - n * a", "m = h - g\ndx = m + g * a"),
    ("n = -g\ndx = n * n", "dx = g * g"),
    ("n = -a\ndx = n * 0.5", "dx = a * -0.5"),  # a forward value (a float) as well
    # within one expression
    ("dx = -1.0 * g / (a * a)", "dx = -g / (a * a)"),
    ("dx = -g * 0.5 * a", "dx = g * -0.5 * a"),
    ("dx = h + -g * a", "dx = h - g * a"),
    ("dx = -g + h", "dx = h - g"),
    ("dx = -g - -h", "dx = h - g"),
    ("dx = h * (-g) / 2.0", "dx = h * g / -2.0"),
    ("dx = 2.0 * (-g * h)", "dx = -2.0 * (g * h)"),  # the grouping stays
])
def test_signs_move(before, after):
    assert _pullback(before.replace("\n", "\n        ").join(["        ", ""])) == after.split("\n")


@pytest.mark.parametrize("body", [
    "n = -g\ndx = n * a\ny = n + h",           # a reader (n * a) that cannot take the sign
    "n = -g\ng = h * a\ndx = n * 0.5",          # g rebound before the read
    "n = -g\ndx = h / n",                       # no number factor, no sum: nowhere to go
    "n = -g\ndx = np.exp(n)",                   # inside a call
    "n = -g\ndx = n ** 2",                      # under a power
    "dx = -g\ndx = dx - h",                     # -g - h costs as much as -g then - h
    "n = -g\nfor t in range(3):\n    h = h + n * 0.5\ndx = h",   # read in a loop
    "n = -g\nh = rt.add_into(h, a)\ndx = n * 0.5",               # an in-place write between
    "dx = -(g + h)",                            # a sign is never taken out of a sum
    "dx = -g - h",
    "dx = -g * np.sin(a)",
    "dx = 2 * g",
])
def test_signs_that_stay(body):
    before = [line.strip() for line in body.split("\n")]
    after = _pullback("\n".join("        " + line for line in body.split("\n")))
    assert after == before


def test_integer_and_unsigned_values_keep_their_signs():
    source = """
def f_vjp(x, k):
    u = k.astype(np.uint8)

    def f_pullback():
        n = -u
        dx = n * 0.5
        m = 1.0 * u
        dk = -u * 2.0 + m
        return dx

    return f_pullback
"""
    lines = [line.strip() for line in rewrite_generated(signs.rewrite, source)]
    assert "n = -u" in lines and "dx = n * 0.5" in lines and "m = 1.0 * u" in lines
    assert "dk = -u * 2.0 + m" in lines


def test_comment_moves_to_the_next_statement():
    source = FORWARD.format("        # adjoint of: c = a - b\n        n = -g\n        dx = n * 0.5")
    lines = [line.strip() for line in rewrite_generated(signs.rewrite, source)]
    i = lines.index("# adjoint of: c = a - b")
    assert lines[i + 1] == "dx = g * -0.5"


def test_fused_pullback_after_the_backward_comment():
    source = """
def f_grad(x):
    # forward
    a = np.sin(x)

    # backward
    g = 1.0 / a
    n = -g
    dx = n * 0.5 + a
    return dx
"""
    assert [line.strip() for line in rewrite_generated(signs.rewrite, source)][-3:] == [
        "g = 1.0 / a", "dx = a - g * 0.5", "return dx"]


# ----- gradients, with the pass in the pipeline -----


@pytest.fixture
def with_signs(monkeypatch):
    stages = list(pipeline.PIPELINE)
    at = [label for label, _ in stages].index("dce")
    stages.insert(at, ("signs", signs.rewrite))
    monkeypatch.setattr(pipeline, "PIPELINE", tuple(stages))


FUNCTIONS = {  # name: (source, a line the pass writes)
    "sign_into_number": (
        "def f(x, y):\n    k = np.sin(x) - 0.5 * np.exp(x)\n    return np.sum(np.log(k * k + 2.0) * y)\n",
        "d_t2 = dk * -0.5"),
    "negated_first_contribution": (
        "def f(x, y):\n    a = np.sin(x)\n    b = a * x\n    e = np.cos(b) - a\n    return np.sum(e * y)\n",
        "da = db * x - de"),
    "minus_one": ("def f(x, y):\n    return np.sum(np.tanh(x) / (1.0 + x * x)) + np.sum(y * y)\n",
                  "= -_t1 / (_t3 * _t3)"),
    "w5": ("def f(x, y):\n    a = np.sin(x)\n    b = a * x\n    c = np.exp(-b)\n"
           "    d = np.tanh(c + x * y)\n    e = d * d - a\n    return np.sum(e / (1.0 + c))\n",
           "dx = dx - d_t1 * a"),
    "subtract_chain": (
        "def f(x, y):\n    u = x - y\n    v = 2.0 - u * 3.0\n    return np.mean(np.sin(u) - v * v)\n",
        "dv = -2 * d_t4 * v"),
}

SHAPES = [((), ()), ((4,), (4,)), ((3, 4), (4,)), ((2, 1, 3), (3,)), ((3, 1), (1, 4))]


def _args(shape_x, shape_y, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0.3, 1.2, size=shape_x), rng.uniform(0.3, 1.2, size=shape_y)
    return (float(x) if shape_x == () else x), (float(y) if shape_y == () else y)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_gradients_with_the_pass(with_signs, name, shapes):
    source, written = FUNCTIONS[name]
    fn = make_function(source)
    args = _args(*shapes, seed=len(name))
    grad = srcdiff.grad(fn, wrt=(0, 1))
    got = grad(*args)
    check_grad(fn, args, got, argnums=(0, 1))
    if written is not None:
        assert written in grad.source
    value, general = srcdiff.value_and_grad(make_function(source), wrt=(0, 1))(*args)
    for a, b in zip(got, general):  # the general pullback (no seed folded) agrees
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_same_gradients_bit_for_bit(monkeypatch, name):
    source, _ = FUNCTIONS[name]
    args = _args((5, 3), (3,), seed=7)
    before = srcdiff.grad(make_function(source), wrt=(0, 1))(*args)
    stages = list(pipeline.PIPELINE)
    stages.insert([label for label, _ in stages].index("dce"), ("signs", signs.rewrite))
    monkeypatch.setattr(pipeline, "PIPELINE", tuple(stages))
    after = srcdiff.grad(make_function(source), wrt=(0, 1))(*args)
    for a, b in zip(before, after):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_stay(with_signs, dtype):
    fn = make_function(FUNCTIONS["w5"][0])
    x, y = np.linspace(0.2, 1.0, 6, dtype=dtype), np.linspace(0.5, 0.7, 6, dtype=dtype)
    dx, dy = srcdiff.grad(fn, wrt=(0, 1))(x, y)
    assert dx.dtype == dtype and dy.dtype == dtype


def test_vjp_pullback_with_the_pass(with_signs):
    fn = make_function("def f(x):\n    return 2.0 - 0.5 * np.exp(x)\n")
    x = np.array([0.1, 0.5, 2.0])
    out, pullback = srcdiff.vjp(fn, x)
    (dx,) = pullback(np.array([1.0, -2.0, 0.0]))
    np.testing.assert_array_equal(dx, np.array([1.0, -2.0, 0.0]) * -0.5 * np.exp(x))


def test_zero_cotangent_stays_finite(with_signs):
    fn = make_function("def f(x, y):\n    return np.sum(np.where(y != 0, x / y, 0.0))\n")
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, -1.0])
    with np.errstate(divide="ignore"):  # the primal divides by y == 0 (masked)
        dx, dy = srcdiff.grad(fn, wrt=(0, 1))(x, y)
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dy))
