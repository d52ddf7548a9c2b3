"""The rules of runtime/fft.py against finite differences (float64).

A rule whose output is real (irfft, np.real, np.abs, fftshift of a real array) runs through
the case table of tests/runtime/rule_table.py. A complex output is checked through the
real-valued function that the convention stands for: with a complex cotangent g, the adjoint
the rule gives for x is the gradient of ``L(x) = sum(Re(g) * Re(f(x)) + Im(g) * Im(f(x)))``
(``dL/dRe x + 1j dL/dIm x`` for a complex x, its real and imaginary parts as two real
arguments), which the shared oracle (srcdiff.testing.check_grad) differentiates.
"""

from __future__ import annotations

import builtins
import operator

import numpy as np
import pytest

from srcdiff.runtime import fft as fft_rules
from srcdiff.runtime import rule_for
from srcdiff.testing import check_grad
from tests.runtime.rule_table import case, check_case_by_finite_differences, \
    rules_without_a_case

FFT = np.fft

# ----- real outputs, through the rule table -----

REAL_CASES = [
    *(case(FFT.irfft, s, **o) for s, o in [((5,), {}), ((5,), {"n": 9}), ((5,), {"n": 8}),
                                            ((5,), {"n": 4}), ((5,), {"n": 3}),
                                            ((3, 4), {"axis": 0}), ((3, 4), {"n": 7, "axis": 0}),
                                            ((3, 4), {"norm": "ortho"}),
                                            ((4,), {"norm": "forward", "n": 5})]),
    *(case(FFT.irfftn, s, **o) for s, o in [((3, 4), {}), ((3, 4), {"s": (4, 5), "axes": (0, 1)}),
                                             ((2, 3, 4), {"axes": (0, 2)}),
                                             ((3, 4), {"s": (2, 6), "axes": (-2, -1),
                                                       "norm": "ortho"})]),
    case(FFT.irfft2, (2, 3, 4)),
    case(FFT.irfft2, (3, 4), s=(3, 5), norm="forward"),
    *(case(fn, s, **o) for fn in (FFT.fftshift, FFT.ifftshift)
      for s, o in [((5,), {}), ((4, 5), {}), ((4, 5), {"axes": 1}), ((3, 4, 5), {"axes": (0, 2)})]),
    *(case(fn, s) for fn in (np.real, np.imag, np.angle) for s in ((3,), (2, 3))),
    case(np.angle, (2, 3), deg=True),
]


@pytest.mark.parametrize("case", REAL_CASES)
def test_real_rules_by_finite_differences(case):
    check_case_by_finite_differences(case)


# ----- complex outputs or inputs, through L(x) = <g, f(x)> -----

def _complex_adjoint_test(fn, shape, complex_in, options, seed=0, rule=None):
    """The rule's adjoint of ``fn(x, **options)`` (``x`` of ``shape``, complex where
    ``complex_in``) against the oracle, for a random complex cotangent."""
    rng = np.random.default_rng(seed)
    xr = rng.standard_normal(shape)
    xi = rng.standard_normal(shape) if complex_in else None
    x = xr + 1j * xi if complex_in else xr
    ans = fn(x, **options)
    g = rng.standard_normal(ans.shape) + 1j * rng.standard_normal(ans.shape)
    if not np.iscomplexobj(ans):
        g = g.real
    rule = rule or rule_for(fn)
    d = rule.call(g, *([ans] if rule.takes_ans else []), x, **options)

    def loss(re, *im):
        y = fn(re + 1j * im[0] if im else re, **options)
        return np.sum(g.real * np.real(y) + g.imag * np.imag(y))

    if complex_in:
        assert np.iscomplexobj(d) and np.shape(d) == x.shape, "a complex adjoint, always"
        check_grad(loss, (xr, xi), (np.real(d), np.imag(d)), rtol=1e-5, atol=1e-6)
    else:
        assert not np.iscomplexobj(d), "a real operand gets a real adjoint"
        check_grad(loss, (xr,), (d,), rtol=1e-5, atol=1e-6)


ONE_D = [((8,), {}), ((7,), {}), ((8,), {"n": 12}), ((8,), {"n": 5}), ((7,), {"n": 6}),
         ((3, 6), {"axis": 0}), ((3, 6), {"axis": -1, "n": 4}), ((4, 5), {"axis": 0, "n": 7}),
         *(((6,), {"norm": norm}) for norm in ("backward", "ortho", "forward")),
         ((5,), {"norm": "ortho", "n": 8}), ((5,), {"norm": "forward", "n": 3})]
N_D = [((4, 6), {}), ((3, 5), {}), ((4, 6), {"s": (5, 4), "axes": (0, 1)}),
       ((2, 3, 4), {"axes": (0, 2)}),
       ((2, 3, 4), {"axes": (2, 0), "s": (3, 5)}), ((2, 3, 4), {"axes": (-1,)}),
       ((3, 4), {"norm": "ortho"}), ((3, 4), {"norm": "forward", "s": (2, 6), "axes": (1, 0)})]
TWO_D = [((4, 6), {}), ((2, 3, 5), {}), ((3, 4), {"s": (5, 3), "norm": "ortho"}),
         ((2, 3, 4), {"axes": (0, 2), "norm": "forward"})]


def _ids(cases):
    return [f"{s}-{o}".replace(" ", "") for s, o in cases]


@pytest.mark.parametrize("complex_in", [False, True], ids=["real-in", "complex-in"])
@pytest.mark.parametrize("fn", [FFT.fft, FFT.ifft], ids=["fft", "ifft"])
@pytest.mark.parametrize("shape, options", ONE_D, ids=_ids(ONE_D))
def test_fft_and_ifft(fn, shape, options, complex_in):
    _complex_adjoint_test(fn, shape, complex_in, options)


@pytest.mark.parametrize("shape, options", ONE_D, ids=_ids(ONE_D))
def test_rfft(shape, options):
    _complex_adjoint_test(FFT.rfft, shape, False, options)


@pytest.mark.parametrize("shape, options", ONE_D, ids=_ids(ONE_D))
def test_irfft_of_a_complex_half_spectrum(shape, options):
    """DC and Nyquist once, the bins between twice: their imaginary parts at DC and Nyquist
    (even n) do not reach the output, so their adjoints are real there."""
    _complex_adjoint_test(FFT.irfft, shape, True, options)


@pytest.mark.parametrize("complex_in", [False, True], ids=["real-in", "complex-in"])
@pytest.mark.parametrize("fn", [FFT.fftn, FFT.ifftn], ids=["fftn", "ifftn"])
@pytest.mark.parametrize("shape, options", N_D, ids=_ids(N_D))
def test_fftn_and_ifftn(fn, shape, options, complex_in):
    _complex_adjoint_test(fn, shape, complex_in, options)


@pytest.mark.parametrize("fn, complex_in", [(FFT.rfftn, False), (FFT.irfftn, True)],
                         ids=["rfftn", "irfftn"])
@pytest.mark.parametrize("shape, options", N_D, ids=_ids(N_D))
def test_rfftn_and_irfftn(fn, shape, options, complex_in):
    _complex_adjoint_test(fn, shape, complex_in, options)


@pytest.mark.parametrize("fn, complex_in",
                         [(FFT.fft2, False), (FFT.fft2, True), (FFT.ifft2, True),
                          (FFT.rfft2, False), (FFT.irfft2, True)],
                         ids=["fft2", "fft2-complex-in", "ifft2", "rfft2", "irfft2"])
@pytest.mark.parametrize("shape, options", TWO_D, ids=_ids(TWO_D))
def test_two_dimensional_forms(fn, shape, options, complex_in):
    _complex_adjoint_test(fn, shape, complex_in, options)


@pytest.mark.parametrize("fn", [FFT.fftshift, FFT.ifftshift, np.real, np.imag, np.conjugate,
                                np.angle, np.sum, np.mean],
                         ids=["fftshift", "ifftshift", "real", "imag", "conj", "angle", "sum",
                              "mean"])
@pytest.mark.parametrize("shape", [(5,), (2, 4)])
def test_rules_kept_for_complex_values(fn, shape):
    """The rules in RULES that analysis/complex_values.py keeps for complex operands."""
    assert fn in fft_rules.COMPLEX_LINEAR
    _complex_adjoint_test(fn, shape, True, {})


@pytest.mark.parametrize("key", [slice(1, None), 0, [1, 1, 0]], ids=["slice", "int", "repeated"])
def test_indexing_a_complex_array(key):
    rule = rule_for(operator.getitem)
    rng = np.random.default_rng(1)
    xr, xi = rng.standard_normal(4), rng.standard_normal(4)
    ans = (xr + 1j * xi)[key]
    g = rng.standard_normal(np.shape(ans)) + 1j * rng.standard_normal(np.shape(ans))
    d = rule.call(g, xr + 1j * xi, key=key)

    def loss(re, im):
        y = (re + 1j * im)[key]
        return np.sum(g.real * np.real(y) + g.imag * np.imag(y))

    check_grad(loss, (xr, xi), (d.real, d.imag))


# ----- the rules for complex elementwise operations -----

BINARY_SHAPES = [((4,), (4,)), ((3, 1), (4,)), ((2, 3), ()), ((3,), (2, 3))]


@pytest.mark.parametrize("complex_in", [(True, True), (True, False), (False, True)],
                         ids=["complex-complex", "complex-real", "real-complex"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=[f"{a}-{b}".replace(" ", "")
                                                         for a, b in BINARY_SHAPES])
@pytest.mark.parametrize("fn", [operator.mul, operator.truediv, operator.add, operator.sub,
                                np.multiply, np.divide, np.add, np.subtract],
                         ids=["mul", "truediv", "add", "sub", "np.multiply", "np.divide",
                              "np.add", "np.subtract"])
def test_complex_binary_rules(fn, shapes, complex_in):
    rule = fft_rules.COMPLEX_RULES[fn]
    rng = np.random.default_rng(3)
    parts = [(rng.standard_normal(s), rng.standard_normal(s) if c else None)
             for s, c in zip(shapes, complex_in)]
    args = [re + 1j * im if im is not None else re for re, im in parts]
    ans = fn(*args)
    g = rng.standard_normal(np.shape(ans)) + 1j * rng.standard_normal(np.shape(ans))
    grads = rule.call(g, *([ans] if rule.takes_ans else []), *args)
    flat_args, flat_grads = [], []
    for (re, im), d, a in zip(parts, grads, args):
        assert np.shape(d) == np.shape(a)
        flat_args.append(re)
        flat_grads.append(np.real(d))
        if im is not None:
            flat_args.append(im)
            flat_grads.append(np.imag(d))
        else:
            assert not np.iscomplexobj(d), "a real operand gets a real adjoint"

    def loss(*flat):
        values, flat = [], list(flat)
        for re, im in parts:
            values.append(flat.pop(0) + (1j * flat.pop(0) if im is not None else 0))
        y = fn(*values)
        return np.sum(g.real * np.real(y) + g.imag * np.imag(y))

    check_grad(loss, flat_args, flat_grads)


@pytest.mark.parametrize("fn", [operator.neg, np.negative, np.absolute, builtins.abs],
                         ids=["neg", "np.negative", "np.absolute", "abs"])
@pytest.mark.parametrize("complex_in", [True, False], ids=["complex", "real"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), ()])
def test_complex_unary_rules(fn, shape, complex_in):
    _complex_adjoint_test(fn, shape, complex_in, {}, rule=fft_rules.COMPLEX_RULES[fn])


def test_abs_of_zero_has_a_zero_adjoint():
    z = np.array([0.0 + 0.0j, 3.0 + 4.0j])
    d = fft_rules.abs_complex_adjoint(np.array([1.0, 1.0]), np.abs(z), z)
    assert d[0] == 0.0
    np.testing.assert_allclose(d[1], 0.6 + 0.8j, rtol=1e-15)


def test_repeated_axes_are_refused():
    from srcdiff.errors import SrcdiffError

    x = np.ones((3, 4))
    with pytest.raises(SrcdiffError, match="distinct axes"):
        fft_rules.fftn_adjoint(np.fft.fftn(x, axes=(0, 0)), x, axes=(0, 0))


def test_s_for_some_axes_without_axes_is_refused():
    """numpy 2 deprecates reading s= as the last len(s) axes: which axes it means will change."""
    from srcdiff.errors import SrcdiffError

    x = np.ones((3, 4))
    with pytest.raises(SrcdiffError, match="pass axes="):
        fft_rules.fftn_adjoint(np.ones((3, 5)), x, s=(5,))


def test_every_rule_of_the_module_has_a_case():
    covered = {FFT.fft, FFT.ifft, FFT.rfft, FFT.fftn, FFT.ifftn, FFT.rfftn, FFT.fft2, FFT.ifft2,
               FFT.rfft2}
    assert rules_without_a_case(REAL_CASES, [fft_rules], covered) == []
