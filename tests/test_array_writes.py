"""Writes into local arrays: out[i] = v, out[i] += v, slices, reads before overwrites."""

import re

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .helpers import make_function

rng = np.random.default_rng(3)

WRITES = """
    def fill(x, w):
        out = np.zeros((3, 2))
        for i in range(3):
            out[i] = np.tanh(x[i] * w)
        out[:, 0] = out[:, 0] * 2.0 + w[0]
        out[1, 1] += x[0, 0]
        h = np.zeros(4)
        h[0] = w[1]
        for i in range(1, 4):
            h[i] = h[i - 1] * w[0] + 1.0
        acc = w * 0.0
        acc += x[0]
        return np.sum(out ** 2) + np.sum(h) + np.sum(acc * w)
"""


def test_writes_match_finite_differences():
    fn = make_function(WRITES)
    for _ in range(5):
        x, w = rng.normal(size=(3, 2)), rng.normal(size=2)
        check_grad(fn, (x, w), srcdiff.grad(fn, wrt=(0, 1))(x, w))


def test_overwritten_element_gets_no_gradient_from_its_old_value():
    fn = make_function("""
        def f(x):
            y = x * 3.0
            y[0] = 7.0
            return np.sum(y)
    """)
    np.testing.assert_allclose(srcdiff.grad(fn)(np.ones(3)), [0.0, 3.0, 3.0])


def test_writes_are_functional_in_the_generated_source():
    fn = make_function(WRITES)
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert re.search(r"out_\d+ = rt\.setitem\(out_\d+, rt\.at\[i\], ", source)
    assert "rt.setitem_adjoint" in source or "rt.setitem(d" in source


@pytest.mark.parametrize("body", [
    "v = out[0:2]\n    out[0] = 5.0\n    return np.sum(v * x)",
    "v = out.T\n    out[1] = x[0]\n    return np.sum(v)",
    "v = out\n    out[0] = 1.0\n    return np.sum(v * x)",
])
def test_reading_a_view_after_a_write_is_refused(body):
    fn = make_function(f"def f(x):\n    out = x * 2.0\n    {body}\n")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="view of 'out'"):
        srcdiff.grad(fn)(np.ones(3))


def test_view_carried_across_loop_iterations_is_refused():
    fn = make_function("""
        def f(x):
            out = x * 1.0
            v = out[0:1]
            for i in range(2):
                s = np.sum(v)
                v = out[0:1]
                out[0] = s + x[1]
            return np.sum(out)
    """)
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="view of 'out'"):
        srcdiff.grad(fn)(np.ones(3))


RECORDS = """
    import collections
    import dataclasses
    import types

    Pair = collections.namedtuple("Pair", ["a", "b"])

    @dataclasses.dataclass
    class Rec:
        a: object
        b: object

    def f(x):
        out = np.ones(3)
        kept = {make}
        out[1:] = np.tanh(x) * np.ones(2)
        return np.sum(kept.a * x)
"""


@pytest.mark.parametrize("make", ["Pair(out[0:2], x)", "Rec(a=out[0:2], b=x)",
                                  "types.SimpleNamespace(a=out[0:2], b=x)"])
def test_a_view_kept_in_a_record_and_read_after_a_write_is_refused(make):
    """O23: a record built by a call keeps what it is given, as a tuple does."""
    fn = make_function(RECORDS.format(make=make), name="f")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="'kept' may share memory with 'out'"):
        srcdiff.value_and_grad(fn)(0.7)


def test_a_copy_kept_in_a_record_differentiates():
    fn = make_function(RECORDS.format(make="Pair(out[0:2].copy(), x)"), name="f")
    value, grad = srcdiff.value_and_grad(fn)(0.7)
    np.testing.assert_allclose(value, fn(0.7))
    check_grad(fn, (0.7,), (grad,))


def test_writes_into_arguments_stay_errors():
    fn = make_function("""
        def f(x):
            x[0] = 1.0
            return np.sum(x)
    """)
    with pytest.raises(srcdiff.InPlaceError, match="copy"):
        srcdiff.grad(fn)(np.ones(3))


HELPERS = """
    def softplus(z):
        return np.log1p(np.exp(z))

    @srcdiff.adjoint(softplus)
    def softplus_adjoint(g, z):
        return g / (1.0 + np.exp(-z))

    def joined(z):
        return np.concatenate([z, z[:1]])

    def clipped(z):
        if np.sum(z) > 0.0:
            return np.where(z > 0.0, z, 0.1 * z)
        return np.tanh(z)

    def head(z):
        return z[1:]

    def same(z):
        return np.asarray(z)

    def doubled(z):
        return z * 2.0

    def turned(z):
        return z.T.copy()

    def f(x):
        x = x * 1.0
        w = HELPER(x[1:])
        x[:] = np.power(np.tanh(x), 2)
        return np.sum(w[:2] * x[1:3])
"""


@pytest.mark.parametrize("helper", ["softplus", "joined", "clipped"])
def test_a_helper_whose_every_return_is_a_new_numpy_array_shares_nothing(helper):
    """Fuzzer seed 93: a helper's result was taken to may hold its argument, so writing into
    that argument afterwards was refused; where every return of the helper is a numpy call
    that makes a new array (with its own adjoint, too), it holds nothing of it."""
    f = make_function(HELPERS.replace("HELPER", helper), name="f")
    for x in (np.array([0.3, -0.5, 0.8]), np.array([0.7, 0.2, -0.4, 0.1])):
        check_grad(f, (x,), (srcdiff.grad(f)(x),))


@pytest.mark.parametrize("helper", ["head", "same", "doubled", "turned"])
def test_a_helper_that_may_return_what_it_was_given_still_shares_it(helper):
    """A view (z[1:], np.asarray(z)), a product and a method's result (a list's * 2 and
    .copy() hold its elements) are not proved new: the write is refused at its line."""
    f = make_function(HELPERS.replace("HELPER", helper), name="f")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="'w' may share memory with 'x'") as info:
        srcdiff.grad(f)(np.array([0.3, -0.5, 0.8]))
    assert info.value.lineno > 0 and info.value.filename.endswith(".py")


@pytest.mark.parametrize("body", ["return np.negative(z, z)", "return np.add(z, 1.0, z)",
                                  "return np.concatenate((z, z), 0, out)",
                                  "np = z\n        return np.copy()"])
def test_a_numpy_call_that_may_return_its_output_argument_is_not_new(body):
    """A ufunc's positional output (np.negative(z, z) is z), a join's, and a name that only
    looks like numpy's: the result may be what the helper was given, so the write is refused."""
    source = HELPERS.replace("    def head(z):\n        return z[1:]",
                             f"    def head(z, out=None):\n        {body}").replace("HELPER", "head")
    f = make_function(source, name="f")
    with pytest.raises(srcdiff.SrcdiffSyntaxError, match="'w' may share memory with 'x'"):
        srcdiff.grad(f)(np.array([0.3, -0.5, 0.8]))


# ----- np.add.at and np.subtract.at into a local array: repeated indices accumulate -----

SCATTERS = {
    "repeats": """
        def f(x, y):
            z = np.zeros(3)
            np.add.at(z, [0, 1, 1, 2], y)
            np.subtract.at(z, [2, 2], x[:2])
            return np.sum(z ** 2) + np.sum(x)
    """,
    "rows of a matrix": """
        def f(x, y):
            acc = np.zeros((3, 2))
            np.add.at(acc, np.array([2, 0, 2, 2]), np.outer(y, x[:2]))
            return np.sum(np.tanh(acc) * acc)
    """,
    "a number at pairs of indices": """
        def f(x, y):
            grid = np.ones((2, 3)) * x[0]
            np.add.at(grid, (np.array([0, 1, 0]), np.array([2, 2, 2])), y[0] * y[1])
            return np.sum(grid ** 3)
    """,
    "in a loop": """
        def f(x, y):
            hist = np.zeros(2)
            for k in range(4):
                np.add.at(hist, [k % 2, 0], x[k] * y[k])
            return np.sum(np.sin(hist))
    """,
}


@pytest.mark.parametrize("name", sorted(SCATTERS))
def test_add_at_into_a_local_array_matches_finite_differences(name):
    fn = make_function(SCATTERS[name])
    args = (rng.normal(size=4), rng.normal(size=4))
    value, grads = srcdiff.value_and_grad(fn, wrt=(0, 1))(*args)
    assert value == pytest.approx(fn(*args))
    check_grad(fn, args, grads, argnums=(0, 1))
    out, tangent = srcdiff.jvp(fn, args, (np.ones(4), np.zeros(4)))
    from srcdiff.testing import check_jvp
    check_jvp(fn, args, (np.ones(4), np.zeros(4)), tangent)


def test_add_at_is_a_new_version_in_the_generated_source():
    fn = make_function(SCATTERS["repeats"])
    grad = srcdiff.grad(fn, wrt=(0, 1))
    grad(np.ones(4), np.ones(4))
    assert "z_1 = rt.added_at(z, [0, 1, 1, 2], y)" in grad.source


def test_add_at_into_an_argument_or_through_an_alias_stays_an_error():
    into_argument = make_function("""
        def f(x, y):
            np.add.at(x, [0, 0], y[:2])
            return np.sum(x)
    """)
    with pytest.raises(srcdiff.InPlaceError):
        srcdiff.grad(into_argument, wrt=(0, 1))(np.ones(4), np.ones(4))
    through_alias = make_function("""
        def f(x, y):
            z = np.zeros(4)
            w = z[1:]
            np.add.at(z, [1, 1], y[:2])
            return np.sum(w * x[1:])
    """)
    with pytest.raises(srcdiff.SrcdiffError, match="w"):
        srcdiff.grad(through_alias, wrt=(0, 1))(np.ones(4), np.ones(4))
