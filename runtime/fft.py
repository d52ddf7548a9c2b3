"""``np.fft`` and the complex values it makes, inside a function whose output is real.

The convention (JAX's and PyTorch's): for a real loss L and a complex intermediate z, the
adjoint of z is ``dL/dRe(z) + 1j * dL/dIm(z)``. Then for a C-linear map ``y = A x`` the
adjoint of x is ``A^H g`` (its real part where x is real), and for an analytic ``y = f(z)``
it is ``g * conj(f'(z))`` — so the real rules of ``a * b`` or ``np.exp`` are wrong on complex
values. The unnormalised DFT F has ``F^H = n * ifft = ifft(norm="forward")``: the adjoint
of each transform is its inverse with the opposite norm (backward <-> forward, ortho
itself), then the padding or truncation of ``n=``/``s=`` undone (``_fit``).

``rfft`` keeps the first ``n // 2 + 1`` bins of F x: its adjoint zero-fills the others
and applies F^H. ``irfft(h, n)`` reads ``h`` as a Hermitian half-spectrum:
``n * y[t] = Re h_0 + 2 Re sum_{0<k<n/2} h_k e^{2 pi i k t / n} + Re h_{n/2} (-1)^t`` (the
last for even n only), so its adjoint is ``rfft(g)`` with the bins counted twice doubled
and the DC and Nyquist bins once (``_half_spectrum_weights``).

Where a complex adjoint reaches a real operand, only its real part is the adjoint
(``_real_for``): every rule here checks the operand's dtype when it runs. Which operations
may receive a complex value is decided when compiling (``srcdiff/analysis/complex_values.py``
reads the tables at the end): the fft family, ``np.real``, ``np.imag``, ``np.abs``,
``np.conj``, ``np.angle``, ``+ - * /`` and unary ``-`` (with the complex rules below), and
the linear rules that are the same for complex values (sums, means, indexing, reshapes,
transposes, shifts); anything else is refused at its line.
"""

from __future__ import annotations

import builtins
import operator

import numpy as np

from .backend import array_module
from .registry import Rule, _signature_parts, _with_unbroadcast, adjoint

__all__ = ["fft_adjoint", "ifft_adjoint", "fftn_adjoint", "ifftn_adjoint", "fft2_adjoint",
           "ifft2_adjoint", "rfft2_adjoint", "irfft2_adjoint", "rfft_adjoint",
           "irfft_adjoint", "rfftn_adjoint", "irfftn_adjoint", "fftshift_adjoint",
           "ifftshift_adjoint", "real_adjoint", "imag_adjoint", "angle_adjoint",
           "multiply_complex_adjoint", "divide_complex_adjoint", "add_complex_adjoint",
           "subtract_complex_adjoint", "negative_complex_adjoint", "abs_complex_adjoint",
           "COMPLEX_RULES", "COMPLEX_RESULTS", "REAL_RESULTS", "INTEGER_RESULTS",
           "COMPLEX_LINEAR"]

# the norm whose scaling makes a transform's inverse its adjoint (None is "backward")
_ADJOINT_NORM = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}


def _real_for(d, x):
    """The adjoint ``d`` of operand ``x``: its real part where ``x`` is real, and complex
    where ``x`` is (a later adjoint added into it in place keeps its imaginary part)."""
    if not np.iscomplexobj(x):
        return np.real(d)
    return d if np.iscomplexobj(d) else d + 0j


def _axes(ndim: int, s, axes, name: str) -> tuple[int, ...]:
    """The axes a transform runs over, as numpy picks them, each once and non-negative."""
    if axes is None:
        if s is not None and len(s) != ndim:  # numpy 2 deprecates the last len(s) axes
            from srcdiff.errors import SrcdiffError

            raise SrcdiffError(f"srcdiff differentiates np.fft.{name} with s= for some of the "
                               "axes only where axes= names them: pass axes=")
        axes = range(ndim)
    found = tuple(a % ndim if -ndim <= a < ndim else a for a in axes)
    if len(set(found)) != len(found) or any(not 0 <= a < ndim for a in found):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(f"srcdiff differentiates np.fft.{name} over distinct axes of the "
                           f"array only, not axes={tuple(axes)}")
    return found


def _fit(d, shape, axes):
    """``d`` cut or zero-padded along ``axes`` to ``shape``: the adjoint of ``n=``/``s=``."""
    for a in axes:
        have, want = d.shape[a], shape[a]
        if have > want:
            d = d[(slice(None),) * a + (slice(0, want),)]
        elif have < want:
            pad = [(0, 0)] * d.ndim
            pad[a] = (0, want - have)
            d = np.pad(d, pad)
    return d


def _half_spectrum_weights(g, axis: int, n: int):
    """2 for the bins a real signal's spectrum holds twice, 1 for DC and (n even) Nyquist."""
    w = array_module(g).full(n // 2 + 1, 2.0)  # in g's library: CuPy takes no numpy operand
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.reshape((-1,) + (1,) * (g.ndim - 1 - axis))


# ----- complex transforms -----   (F^H = ifft(norm="forward"); _fit undoes n= and s=)


@adjoint(np.fft.fft)
def fft_adjoint(g, a, n=None, axis=-1, norm=None):
    axis = _axes(np.ndim(a), None, (axis,), "fft")[0]
    d = np.fft.ifft(g, axis=axis, norm=_ADJOINT_NORM[norm])
    return _real_for(_fit(d, np.shape(a), (axis,)), a)


@adjoint(np.fft.ifft)
def ifft_adjoint(g, a, n=None, axis=-1, norm=None):
    axis = _axes(np.ndim(a), None, (axis,), "ifft")[0]
    d = np.fft.fft(g, axis=axis, norm=_ADJOINT_NORM[norm])
    return _real_for(_fit(d, np.shape(a), (axis,)), a)


@adjoint(np.fft.fftn)
def fftn_adjoint(g, a, s=None, axes=None, norm=None):
    axes = _axes(np.ndim(a), s, axes, "fftn")
    d = np.fft.ifftn(g, axes=axes, norm=_ADJOINT_NORM[norm])
    return _real_for(_fit(d, np.shape(a), axes), a)


@adjoint(np.fft.ifftn)
def ifftn_adjoint(g, a, s=None, axes=None, norm=None):
    axes = _axes(np.ndim(a), s, axes, "ifftn")
    d = np.fft.fftn(g, axes=axes, norm=_ADJOINT_NORM[norm])
    return _real_for(_fit(d, np.shape(a), axes), a)


@adjoint(np.fft.fft2)  # the 2-D forms: fftn's rules, over the last two axes by default
def fft2_adjoint(g, a, s=None, axes=(-2, -1), norm=None):
    return fftn_adjoint(g, a, s, axes, norm)


@adjoint(np.fft.ifft2)
def ifft2_adjoint(g, a, s=None, axes=(-2, -1), norm=None):
    return ifftn_adjoint(g, a, s, axes, norm)


# ----- real transforms -----   (rfft: zero-fill the bins it drops; irfft: weigh the bins)


@adjoint(np.fft.rfft)
def rfft_adjoint(g, a, n=None, axis=-1, norm=None):
    axis = _axes(np.ndim(a), None, (axis,), "rfft")[0]
    size = np.shape(a)[axis] if n is None else n
    full = _fit(g, g.shape[:axis] + (size,) + g.shape[axis + 1:], (axis,))
    d = np.real(np.fft.ifft(full, axis=axis, norm=_ADJOINT_NORM[norm]))
    return _fit(d, np.shape(a), (axis,))


@adjoint(np.fft.irfft)
def irfft_adjoint(g, a, n=None, axis=-1, norm=None):
    axis = _axes(np.ndim(a), None, (axis,), "irfft")[0]
    size = g.shape[axis]
    d = np.fft.rfft(g, axis=axis, norm=_ADJOINT_NORM[norm]) * _half_spectrum_weights(g, axis, size)
    return _real_for(_fit(d, np.shape(a), (axis,)), a)


@adjoint(np.fft.rfftn)
def rfftn_adjoint(g, a, s=None, axes=None, norm=None):
    axes = _axes(np.ndim(a), s, axes, "rfftn")
    last = axes[-1]
    size = np.shape(a)[last] if s is None else s[-1]
    full = _fit(g, g.shape[:last] + (size,) + g.shape[last + 1:], (last,))
    d = np.real(np.fft.ifftn(full, axes=axes, norm=_ADJOINT_NORM[norm]))
    return _fit(d, np.shape(a), axes)


@adjoint(np.fft.irfftn)
def irfftn_adjoint(g, a, s=None, axes=None, norm=None):
    axes = _axes(np.ndim(a), s, axes, "irfftn")
    last = axes[-1]
    d = np.fft.rfftn(g, axes=axes, norm=_ADJOINT_NORM[norm])
    d = d * _half_spectrum_weights(d, last, g.shape[last])
    return _real_for(_fit(d, np.shape(a), axes), a)


@adjoint(np.fft.rfft2)
def rfft2_adjoint(g, a, s=None, axes=(-2, -1), norm=None):
    return rfftn_adjoint(g, a, s, axes, norm)


@adjoint(np.fft.irfft2)
def irfft2_adjoint(g, a, s=None, axes=(-2, -1), norm=None):
    return irfftn_adjoint(g, a, s, axes, norm)


# ----- shifts (permutations) -----


@adjoint(np.fft.fftshift)
def fftshift_adjoint(g, x, axes=None):
    return np.fft.ifftshift(g, axes=axes)


@adjoint(np.fft.ifftshift)
def ifftshift_adjoint(g, x, axes=None):
    return np.fft.fftshift(g, axes=axes)


# ----- complex to real -----   (g is real: the adjoint of a real value)


@adjoint(np.real)
def real_adjoint(g, val):
    return _real_for(np.real(g), val)


@adjoint(np.imag)
def imag_adjoint(g, val):
    if np.iscomplexobj(val):
        return 1j * g
    return np.zeros_like(g)  # the imaginary part of a real array is 0 whatever it holds


@adjoint(np.angle)
def angle_adjoint(g, ans, z, deg=False):
    # d angle = Im(conj(z) dz) / |z|^2, so the adjoint is 1j * g * z / |z|^2 (0 for real z)
    scale = g * (180.0 / np.pi) if deg else g
    if not np.iscomplexobj(z):  # 0 or pi: a constant, piecewise
        return np.zeros_like(np.real(scale) * 1.0)
    r2 = np.real(z * np.conj(z))
    return 1j * scale * z / np.where(scale == 0, 1.0, r2)


# ----- elementwise rules for complex values -----   (used where an operand may be complex)

COMPLEX_RULES: dict[object, Rule] = {}


def complex_adjoint(*primitives, broadcasting: bool = False):
    """Register the decorated function as ``primitives``' rule where an operand is complex."""

    def register(fn):
        takes_ans, operands, options, variadic = _signature_parts(fn)
        call = _with_unbroadcast(fn, takes_ans) if broadcasting else fn
        for primitive in primitives:
            COMPLEX_RULES[primitive] = Rule(primitive, fn, call, fn.__name__, takes_ans,
                                            operands, options, broadcasting)
        return call

    return register


@complex_adjoint(operator.mul, np.multiply, broadcasting=True)
def multiply_complex_adjoint(g, x1, x2):
    return _real_for(g * np.conj(x2), x1), _real_for(g * np.conj(x1), x2)


@complex_adjoint(operator.truediv, np.divide, broadcasting=True)
def divide_complex_adjoint(g, ans, x1, x2):
    da = g / np.conj(x2)
    return _real_for(da, x1), _real_for(-da * np.conj(ans), x2)


@complex_adjoint(operator.add, np.add, broadcasting=True)
def add_complex_adjoint(g, x1, x2):
    return _real_for(g, x1), _real_for(g, x2)


@complex_adjoint(operator.sub, np.subtract, broadcasting=True)
def subtract_complex_adjoint(g, x1, x2):
    return _real_for(g, x1), _real_for(-g, x2)


@complex_adjoint(operator.neg, np.negative)
def negative_complex_adjoint(g, x):
    return _real_for(-g, x)


@complex_adjoint(np.absolute, builtins.abs)
def abs_complex_adjoint(g, ans, x):
    # |z| = sqrt(Re^2 + Im^2): the adjoint is g * z / |z|, and 0 where z is 0
    d = np.real(g) * x
    return d / np.where(ans == 0, 1.0, ans)


# ----- what the compiler reads (analysis/complex_values.py) -----

# may return a complex value whatever they are given (the last ones have no rule: their
# results are constants, which may still meet a differentiated value)
COMPLEX_RESULTS = frozenset({np.fft.fft, np.fft.ifft, np.fft.fftn, np.fft.ifftn, np.fft.fft2,
                             np.fft.ifft2, np.fft.rfft, np.fft.rfft2, np.fft.rfftn,
                             np.fft.ihfft, np.linalg.eig, np.linalg.eigvals, np.roots, complex,
                             np.emath.sqrt, np.emath.log, np.emath.log2, np.emath.log10,
                             np.emath.logn, np.emath.power, np.emath.arccos, np.emath.arcsin,
                             np.emath.arctanh})
# give a shape, a count, an index or a truth value, never a complex number
INTEGER_RESULTS = frozenset({len, np.shape, np.size, np.ndim, np.argmax, np.argmin, np.argsort,
                             np.count_nonzero, np.nonzero, np.flatnonzero, np.argwhere,
                             np.isfinite, np.isnan, np.isinf, np.isclose, np.allclose,
                             np.array_equal, np.iscomplexobj, np.isrealobj, np.equal,
                             np.not_equal, operator.eq, operator.ne, range, int, bool,
                             isinstance})
# return a real value whatever they are given
REAL_RESULTS = frozenset({np.fft.irfft, np.fft.irfftn, np.fft.irfft2, np.real, np.imag,
                          np.angle, np.absolute, builtins.abs})
# their rule in RULES is the right one on complex values too (C-linear with real
# coefficients, or written for complex values above); rfft and its kin take real values only
COMPLEX_LINEAR = frozenset({np.fft.fft, np.fft.ifft, np.fft.fftn, np.fft.ifftn, np.fft.fft2,
                            np.fft.ifft2, np.fft.irfft, np.fft.irfftn, np.fft.irfft2,
                            np.fft.fftshift, np.fft.ifftshift, np.real, np.imag, np.angle,
                            np.conjugate, np.sum, np.mean, operator.getitem, np.reshape,
                            np.transpose})
