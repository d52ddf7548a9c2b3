"""The inline stage: a helper that returns one expression is written where it is called (no
derivative of its own, no pullback closure); any other helper stays a call. Gradients in
reverse and forward mode against finite differences either way."""

from __future__ import annotations

import types

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_jvp

SCALE = 0.5


def sigmoid(z):
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def linear(x, w, b):
    return x @ w + b * SCALE


def layer(x, w, b):  # a helper of helpers
    return sigmoid(linear(x, w, b))


def gates(w, xs, h0):  # a recurrence of gates, the helpers called in a loop
    h = h0
    for x_t in xs:
        f = sigmoid(x_t @ w)
        h = f * h + (1.0 - f) * np.tanh(linear(h, w, b=x_t))
    return np.sum(h * h)


def layers(w, xs, h0):
    return np.sum(layer(xs, w, h0) ** 2) + np.sum(sigmoid(-2.0))


def gates_comprehension(w, xs, h0):  # the gates of each row, in a comprehension, np.dot
    return sum(np.sum(sigmoid(np.dot(x_t, w)) * h0) for x_t in xs)


INLINED = [gates, layers, gates_comprehension]


def _args(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 3)) * 0.5, rng.normal(size=(4, 2, 3)), rng.normal(size=(2, 3))


def _code(fn) -> str:
    grad = srcdiff.grad(fn, wrt=(0, 1, 2))
    grad(*_args())
    return grad.source


@pytest.mark.parametrize("fn", INLINED, ids=lambda f: f.__name__)
def test_one_expression_helpers_are_written_in_place(fn):
    source = _code(fn)
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert "call_vjp" not in code and "_vjp(" not in code and "sigmoid(" in code
    assert "rt.sigmoid(" in code  # the sigmoid stage sees the inlined lines
    quoted = [line for line in source.splitlines() if "# adjoint of: " in line]
    assert any("sigmoid(" in line or "layer(" in line for line in quoted)  # the caller's line


@pytest.mark.parametrize("fn", INLINED, ids=lambda f: f.__name__)
def test_gradients_match_finite_differences(fn):
    args = _args(1)
    check_grad(fn, args, srcdiff.grad(fn, wrt=(0, 1, 2))(*args), argnums=(0, 1, 2))
    value, _ = srcdiff.value_and_grad(fn, wrt=(0, 1, 2))(*args)
    assert value == fn(*args)  # the same operations, the same value
    tangents = _args(2)
    check_jvp(fn, args, tangents, srcdiff.jvp(fn, args, tangents)[1])


def two_lines(z):
    a = np.tanh(z)
    return a * a


def with_default(z, k=2.0):
    return z * k


K_DEFAULT = np.array([2.0])


def with_array_default(z, k=K_DEFAULT):  # a default that is not a literal: stays a call
    return z * k


def leaky(z, slope=-0.01, axis=None):
    return np.sum(np.where(z > 0, z, slope * z), axis=axis)


def with_display(z):  # a list display: not an expression this stage writes in place
    return np.stack([z, z * 2.0])


def reads_w(z):
    return z * w  # noqa: F821  a global of this module; the caller below has a local w


w = 3.0


def recursive(z):
    return z * 0.5 if False else recursive_step(z)


def recursive_step(z):
    return np.sin(recursive_step2(z))


def recursive_step2(z):
    return np.cos(recursive_step3(z))


def recursive_step3(z):
    return np.tanh(recursive_step4(z))


def recursive_step4(z):
    return z * 2.0


def uses_two_lines(x):
    return np.sum(two_lines(x))


def uses_default(x):
    return np.sum(with_default(x))


def uses_array_default(x):
    return np.sum(with_array_default(x))


def uses_leaky(x):  # the defaults, and one given by keyword
    return leaky(x) + leaky(x * 2.0, slope=0.2)


def uses_display(x):
    return np.sum(with_display(x) ** 2)


def shadows(x):
    w = x * 2.0
    return np.sum(reads_w(x) * w)


def deep(x):
    return np.sum(recursive_step(x))


@pytest.mark.parametrize("fn, inlined", [
    (uses_two_lines, False), (uses_default, True), (uses_array_default, False),
    (uses_display, False), (shadows, False), (deep, True), (uses_leaky, True),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_other_helpers_stay_calls_and_are_right(fn, inlined):
    x = np.random.default_rng(3).normal(size=4)
    grad = srcdiff.grad(fn)
    check_grad(fn, (x,), (grad(x),), argnums=(0,))
    code = "\n".join(line.split("#")[0] for line in grad.source.splitlines())
    assert ("rt.derivative_of(" not in code and "call_vjp" not in code) == inlined or fn is deep


def test_three_levels_are_inlined_and_the_rest_called():
    x = np.random.default_rng(4).normal(size=3)
    grad = srcdiff.grad(deep)
    grad(x)
    code = "\n".join(line.split("#")[0] for line in grad.source.splitlines())
    assert "np.sin(" in code and "np.cos(" in code and "np.tanh(" in code
    assert "recursive_step4" in code  # the fourth level: a call


def test_a_name_that_means_another_object_in_the_helpers_module_keeps_the_call(tmp_path, monkeypatch):
    """The helper's ``np`` is the math module there: written here it would be numpy's."""
    (tmp_path / "math_helper.py").write_text("import math as np\n\n\ndef grow(z):\n    return np.exp(z) * 2.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import math_helper

    monkeypatch.setitem(globals(), "grow", math_helper.grow)
    grad = srcdiff.grad(uses_grow)
    assert grad(0.3) == pytest.approx(2.0 * np.exp(0.3) + np.exp(0.3))
    assert "grow_vjp" in grad.source  # a call of its own derivative, not inlined


def uses_grow(x):
    return grow(x) + np.exp(x)  # noqa: F821  (the test above binds grow)


def doubled(z):
    return 2.0 * z


def spectrum_size(x):  # a complex value through a one-line helper: the caller's rules see it
    return np.sum(np.abs(doubled(np.fft.fft(x))))


def pick(fs):
    return fs[0]


def picked(x):  # the helper returns the function it was given: written in place, called here
    y = pick([doubled])(x)
    return np.sum(y * y)


@pytest.mark.parametrize("fn", [spectrum_size, picked], ids=lambda f: f.__name__)
def test_what_a_call_refused_an_inlined_helper_differentiates(fn):
    x = np.array([0.3, -0.5, 1.2, 0.7])
    check_grad(fn, (x,), (srcdiff.grad(fn)(x),), argnums=(0,))


def unwrapped(z):
    return np.unwrap(z) * 2.0


def uses_unwrapped(x):
    return np.sum(unwrapped(x))


def test_an_error_in_an_inlined_helper_names_the_helpers_line():
    with pytest.raises(srcdiff.NotDifferentiableError) as info:
        srcdiff.grad(uses_unwrapped)(np.array([0.1, 0.2]))
    assert info.value.lineno == unwrapped.__code__.co_firstlineno + 1
    assert "np.unwrap(z)" in info.value.text
