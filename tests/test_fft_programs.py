"""End to end: np.fft with complex intermediates inside real-valued functions (issue 14) —
a power spectrum, a spectral filter, a cross-correlation, 2-D transforms along an axis,
padding and truncation by n= — through grad, value_and_grad and vjp against finite
differences (float64), float32 in / float32 out, and on the duck array (no host sync); then
every complex use srcdiff has no sound rule for, refused at its line.

The convention: the adjoint of a complex z is dL/dRe z + 1j dL/dIm z (runtime/fft.py); which
values may be complex is decided when compiling (srcdiff/analysis/complex_values.py)."""

from __future__ import annotations

import textwrap

import warnings

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import GradientTypeError, NotDifferentiableError, SrcdiffError

from .end_to_end import (check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_array_output)
from .helpers import HEADER, make_function

PROGRAMS = {
    "power_spectrum": """
        def f(x):
            return np.sum(np.abs(np.fft.rfft(x)) ** 2)
        """,
    "power_spectrum_ortho_padded": """
        def f(x):
            return np.sum(np.abs(np.fft.rfft(x, n=16, norm="ortho")) ** 2 * np.arange(9.0))
        """,
    "spectral_filter": """
        def f(x, H):
            y = np.fft.irfft(np.fft.rfft(x) * H, x.shape[-1])
            return np.sum(y ** 2 * np.linspace(0.5, 1.5, x.shape[-1]))
        """,
    "cross_correlation": """
        def f(x, y):
            c = np.real(np.fft.ifft(np.fft.fft(x) * np.conj(np.fft.fft(y))))
            return np.sum(c * np.cos(np.arange(x.shape[-1])))
        """,
    "fft_along_axis_0_truncated": """
        def f(X, w):
            Z = np.fft.fft(X, n=3, axis=0)
            return np.sum(np.abs(Z) * w) + np.sum(np.imag(Z) ** 2)
        """,
    "fft2_forward_norm": """
        def f(X, w):
            Z = np.fft.fft2(X * w, norm="forward")
            return np.sum(np.real(Z * np.conj(Z))) + np.sum(np.angle(Z) * np.sin(X))
        """,
    "fftn_axes_s": """
        def f(X, w):
            Z = np.fft.fftn(X, s=(5, 4), axes=(1, 0))
            return np.sum(np.abs(np.fft.ifftn(Z * w, axes=(1, 0))) ** 2)
        """,
    "rfftn_irfftn_round_trip": """
        def f(X, w):
            Z = np.fft.rfftn(X, axes=(0, 1))
            return np.sum(np.fft.irfftn(Z * Z / (np.abs(Z) + 1.0), X.shape, axes=(0, 1)) * w)
        """,
    "shifted_spectrum_methods": """
        def f(x, w):
            Z = np.fft.fftshift(np.fft.fft(x))
            lo = Z[1:-1]
            return np.sum(lo.real * w[1:-1] - lo.imag) + np.mean(np.abs(lo.conj() - Z[2:]))
        """,
    "complex_times_scalar_and_minus": """
        def f(x, a):
            Z = a * np.fft.rfft(x) - np.fft.rfft(x * x) / 3.0
            return np.sum(np.abs(-Z) ** 2)
        """,
    "loop_over_a_spectrum": """
        def f(x, H):
            Z = np.fft.rfft(x)
            for i in range(3):
                Z = Z * H + 0.5
            return np.sum(np.abs(Z))
        """,
    "constant_made_from_a_spectrum": """
        def f(x, y):
            phase = srcdiff.stop_gradient(np.fft.fft(y) / np.abs(np.fft.fft(y)))
            return np.sum(np.imag(np.fft.fft(x) * phase)) + np.sum(y)
        """,
    "global_complex_constant": """
        C = np.exp(np.linspace(0.0, 3.0, 8) * np.array(1j))

        def f(x, y):
            return np.sum(np.imag(x * C)) + np.sum(np.abs(np.fft.fft(y) * C))
        """,
    "complex_dtype": """
        def f(x):
            Z = x + np.zeros(4, dtype=complex)
            W = x * np.ones(4, dtype="F").astype("c16") * np.ones(4, "complex64")
            return np.sum(np.abs(Z * Z * np.exp(x))) + np.sum(np.imag(W * W))
        """,
    "loop_over_bins_by_index": """
        def f(x):
            Z = np.fft.rfft(x)
            acc = 0.0
            for i in range(len(Z)):
                acc = acc + np.exp(x[i]) * np.abs(Z[i])
            return acc
        """,
    "loop_over_rows_of_a_spectrum": """
        def f(x):
            Z = np.fft.fft(np.reshape(x, (2, 3)), axis=1)
            acc = 0.0
            for row in Z:
                acc = acc + np.sum(np.real(row * np.conj(row)) * np.tanh(x[:3]))
            return acc
        """,
    "eigenvalues_and_a_length": """
        A = np.array([[0.0, -1.0], [1.0, 0.5]])  # eigenvalues 0.25 +- 0.97j

        def f(x):
            w = np.linalg.eigvals(A)
            Z = np.fft.fft(x)
            return np.sum(np.abs(x * w) + np.real(Z * w) / len(Z)) + np.sum(x ** len(Z))
        """,
}

ARGS = {
    "power_spectrum": [(8,), (7,)],
    "power_spectrum_ortho_padded": [(7,), (16,)],
    "spectral_filter": [((8,), (5,)), ((7,), (4,)), ((3, 8), (5,)), ((2, 6), (2, 4))],
    "cross_correlation": [((8,), (8,)), ((5,), (5,)), ((2, 5), (5,))],
    "fft_along_axis_0_truncated": [((4, 3), (3, 3)), ((4, 3), (3,)), ((2, 3), ())],
    "fft2_forward_norm": [((3, 4), (3, 4)), ((2, 3, 4), (4,))],
    "fftn_axes_s": [((4, 3), (4, 5)), ((5, 5), ())],
    "rfftn_irfftn_round_trip": [((4, 6), (4, 6)), ((3, 5), (5,))],
    "shifted_spectrum_methods": [((8,), (8,)), ((7,), (7,))],
    "complex_times_scalar_and_minus": [((8,), "float"), ((5,), "float")],
    "loop_over_a_spectrum": [((8,), (5,)), ((7,), ())],
    "constant_made_from_a_spectrum": [((8,), (8,))],
    "global_complex_constant": [((8,), (8,))],
    "complex_dtype": [(4,), (2, 4)],
    "loop_over_bins_by_index": [(8,), (5,)],
    "loop_over_rows_of_a_spectrum": [(6,)],
    "eigenvalues_and_a_length": [(2,), (3, 2)],
}


def _args(name, shapes, seed=0):
    rng = np.random.default_rng(seed)
    shapes = shapes if isinstance(shapes[0], (tuple, str)) else (shapes,)
    return tuple(float(rng.uniform(0.5, 1.5)) if s == "float" else rng.standard_normal(s)
                 for s in shapes)


CASES = [pytest.param(name, shapes, id=f"{name}-{shapes}".replace(" ", ""))
         for name in PROGRAMS for shapes in ARGS[name]]


@pytest.mark.parametrize("name, shapes", CASES)
def test_grad_matches_finite_differences(name, shapes):
    check_grad_by_finite_differences(make_function(PROGRAMS[name], "f"), _args(name, shapes))


@pytest.mark.parametrize("name, shapes", CASES)
def test_value_and_grad(name, shapes):
    check_value_and_grad(make_function(PROGRAMS[name], "f"), _args(name, shapes, seed=1))


@pytest.mark.parametrize("name, shapes", CASES)
def test_float32_in_float32_out(name, shapes):
    check_float32_gradients(make_function(PROGRAMS[name], "f"), _args(name, shapes),
                            rtol=5e-3, atol=5e-3)


# on the duck array (tests/duckarray.py, a GPU array's double): no host sync, numpy's values.
# The others make numpy arrays in their own code (np.arange, np.linspace, a numpy global,
# np.zeros) or take a Python float, whose gradient is a host number by the API's promise.
DUCK = ["power_spectrum", "fft_along_axis_0_truncated", "fft2_forward_norm", "fftn_axes_s",
        "rfftn_irfftn_round_trip", "shifted_spectrum_methods", "loop_over_a_spectrum",
        "constant_made_from_a_spectrum", "loop_over_bins_by_index", "loop_over_rows_of_a_spectrum"]


@pytest.mark.parametrize("name, shapes", [c for c in CASES if c.values[0] in DUCK])
def test_gradients_on_duck_arrays(name, shapes):
    check_gradients_on_duck_arrays(make_function(PROGRAMS[name], "f"), _args(name, shapes),
                                   rtol=1e-10, atol=1e-12)


ARRAY_OUTPUTS = {
    "filtered": "def f(x, H):\n    return np.fft.irfft(np.fft.rfft(x) * H, 8)\n",
    "filtered_odd_axis_0": "def f(x, H):\n"
                           "    return np.fft.irfft(np.fft.rfft(x, axis=0) * H, 7, axis=0)\n",
    "spectrum_parts": "def f(x, H):\n    Z = np.fft.rfft(x, n=8) * H\n"
                      "    return np.concatenate([np.real(Z), np.imag(Z), np.abs(Z)])\n",
    "irfft_of_padded": "def f(x, H):\n    return np.fft.irfft(np.fft.rfft(x) * H, n=12)\n",
}
ARRAY_ARGS = {"filtered": ((8,), (5,)), "filtered_odd_axis_0": ((7, 2), (4, 1)),
              "spectrum_parts": ((6,), (5,)), "irfft_of_padded": ((8,), (5,))}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
def test_vjp_of_array_outputs(name):
    rng = np.random.default_rng(4)
    args = tuple(rng.standard_normal(s) for s in ARRAY_ARGS[name])
    check_vjp_of_array_output(make_function(ARRAY_OUTPUTS[name], "f"), args, rng,
                              rtol=1e-10, atol=1e-12)


def test_the_generated_source_reads_as_written():
    f = make_function(PROGRAMS["spectral_filter"], "f")
    source = srcdiff.grad(f, wrt=(0, 1)).source
    assert "d_t1, dH = rt.multiply_complex_adjoint(" in source
    assert "rt.irfft_adjoint(" in source and "rt.rfft_adjoint(" in source
    assert "# adjoint of: y = np.fft.irfft(np.fft.rfft(x) * H, x.shape[-1])" in source


# ----- refused: a complex value where srcdiff has no sound rule -----

REFUSED = {
    "exp_of_a_spectrum": ("""
        def f(x):
            Z = np.fft.fft(x)
            E = np.exp(Z)
            return np.sum(np.abs(E))
        """, "E = np.exp(Z)"),
    "power_of_a_complex_value": ("""
        def f(x):
            Z = np.fft.rfft(x)
            return np.sum(np.real(Z ** 2))
        """, "return np.sum(np.real(Z ** 2))"),
    "complex_output": ("""
        def f(x):
            return np.sum(np.fft.fft(x))
        """, "return np.sum(np.fft.fft(x))"),
    "complex_into_a_helper": ("""
        def twice(z):  # two lines: a call srcdiff makes, not one it writes in place (inline)
            y = 2.0 * z
            return y

        def f(x):
            Z = np.fft.fft(x)
            return np.sum(np.abs(twice(Z)))
        """, "return np.sum(np.abs(twice(Z)))"),
    "complex_constant_into_a_helper": ("""
        def scaled(c, x):  # two lines: a call (the inline stage writes one-line helpers in place)
            s = np.sum(np.imag(c * x))
            return s

        def f(x):
            c = srcdiff.stop_gradient(np.fft.fft(x))
            return scaled(c, x)
        """, "return scaled(c, x)"),
    "where_on_complex": ("""
        def f(x):
            Z = np.fft.fft(x)
            W = np.where(np.abs(Z) > 1.0, Z, 0.0)
            return np.sum(np.abs(W))
        """, "W = np.where(np.abs(Z) > 1.0, Z, 0.0)"),
    "rfft_of_complex": ("""
        def f(x):
            Z = np.fft.fft(x)
            return np.sum(np.abs(np.fft.rfft(Z)))
        """, "return np.sum(np.abs(np.fft.rfft(Z)))"),
    "sqrt_of_complex": ("""
        def f(x):
            return np.sum(np.real(np.sqrt(np.fft.fft(x))))
        """, "return np.sum(np.real(np.sqrt(np.fft.fft(x))))"),
    "complex_dtype_string": ("""
        def f(x):
            W = np.ones(4).astype("D")
            return np.sum(np.imag(np.exp(x * W)))
        """, "return np.sum(np.imag(np.exp(x * W)))"),
    "complex_in_a_list": ("""
        def f(x):
            Z = np.fft.fft(x)
            parts = [Z, Z]
            return np.sum(np.abs(parts[0]))
        """, "parts = [Z, Z]"),
    "complex_global_in_exp": ("""
        C = np.ones(4) * np.array(1j)

        def f(x):
            return np.sum(np.real(np.exp(x * C)))
        """, "return np.sum(np.real(np.exp(x * C)))"),
    "exp_of_each_row": ("""
        def f(x):
            Z = np.fft.fft(np.reshape(x, (2, 2)), axis=1)
            acc = 0.0
            for row in Z:
                acc = acc + np.sum(np.exp(row))
            return np.real(acc)
        """, "acc = acc + np.sum(np.exp(row))"),
}


def _line_of(source: str, text: str) -> int:
    lines = (HEADER + textwrap.dedent(source)).splitlines()
    return next(i + 1 for i, line in enumerate(lines) if line.strip() == text)


@pytest.mark.parametrize("api", ["grad", "value_and_grad", "vjp"])
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_at_its_line(name, api):
    source, line = REFUSED[name]
    f = make_function(source, "f")
    x = np.random.default_rng(0).standard_normal(4)
    with pytest.raises(NotDifferentiableError) as info:
        if api == "vjp":
            srcdiff.vjp(f, x)
        else:
            getattr(srcdiff, api)(f)(x)
    assert info.value.lineno == _line_of(source, line), str(info.value)
    assert "complex" in info.value.msg or "cannot differentiate" in info.value.msg


def test_the_refusal_says_what_is_supported():
    f = make_function(REFUSED["exp_of_a_spectrum"][0], "f")
    with pytest.raises(NotDifferentiableError, match="np.fft.fft/ifft/rfft/irfft") as info:
        srcdiff.grad(f)(np.ones(4))
    assert "may be a complex number" in info.value.msg and "np.real" in info.value.msg


def test_complex_arguments_are_still_refused():
    f = make_function(PROGRAMS["power_spectrum"], "f")
    with pytest.raises(GradientTypeError, match="complex"):
        srcdiff.grad(f)(np.ones(4) + 1j)


def test_imaginary_literals_are_still_refused():
    f = make_function("def f(x):\n    return np.sum(np.abs(np.fft.fft(x) * 1j))\n", "f")
    with pytest.raises(SrcdiffError, match="imaginary literal"):
        srcdiff.grad(f)(np.ones(4))


def test_a_complex_gradient_for_a_real_argument_is_never_cast():
    """A complex value srcdiff cannot see (a helper's result it runs without differentiating:
    nothing tells the compiler it is complex) that leaks into a real argument's gradient is an
    error, never its real part."""
    f = make_function("""
        def spectrum(y):  # two lines: a call, run without differentiating (y is not wrt)
            w = np.fft.fft(y)
            return w

        def f(x, y):
            w = spectrum(y)
            return np.sum(np.abs(x * w))
        """, "f")
    x, y = np.random.default_rng(0).standard_normal((2, 4))
    for api in (srcdiff.grad, srcdiff.value_and_grad):
        with pytest.raises(GradientTypeError, match="complex"):
            api(f, wrt=0)(x, y)


def test_a_complex_adjoint_indexed_into_a_real_array_is_never_cast():
    """Indexing's adjoint writes into an array of x's dtype: a complex adjoint of a real x
    (a value srcdiff did not see was complex) keeps its imaginary part there, and the API
    refuses the complex gradient (it lost it, a wrong real gradient, before)."""
    f = make_function("""
        def spectrum(y):  # two lines: a call, run without differentiating (y is not wrt)
            w = np.fft.fft(y)
            return w

        def f(x, y):
            w = spectrum(y)
            u = x[0:2] * w[0:2]
            return np.sum(np.imag(u))
        """, "f")
    x, y = np.random.default_rng(0).standard_normal((2, 4))
    for api in (srcdiff.grad, srcdiff.value_and_grad):
        with pytest.raises(GradientTypeError, match="complex"):
            api(f, wrt=0)(x, y)
    with pytest.raises(GradientTypeError, match="complex"):  # integers: y is not differentiated
        srcdiff.vjp(f, x, np.arange(4))[1](1.0)


@pytest.mark.parametrize("pick", ["np.take(x, [0, 2])", "np.take_along_axis(x, np.array([0, 2]), 0)",
                                  "np.diagonal(np.outer(x, x))[0:2]", "np.sort(x)[0:2]",
                                  "np.float_power(x * x + 1.0, 1.5)[0:2]",
                                  "np.polyval(x, np.array([0.5, -1.0]))",
                                  "np.asfortranarray(x)[0:2]"])
def test_a_complex_adjoint_scattered_into_a_real_array_is_never_cast(pick):
    """The selection adjoints (take, take_along_axis, diagonal, sort…) write into zeros of
    x's dtype, and many rules cast their result to a float32 x's dtype (float_like): a
    complex adjoint of a real x keeps its imaginary part through both, and the API refuses
    the complex gradient (a ComplexWarning and a wrong real gradient before)."""
    f = make_function(f"""
        def phase(n):
            return np.exp(1j * np.arange(n))

        def f(x):
            c = phase(2)
            return np.sum(np.abs({pick} * c))
        """, "f")
    x = np.array([0.3, -0.2, 0.5])
    for api in (srcdiff.grad, srcdiff.value_and_grad):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ComplexWarning: nothing is cast away
            with pytest.raises(GradientTypeError, match="complex"):
                api(f)(x)
