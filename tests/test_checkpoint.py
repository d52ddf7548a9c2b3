"""Loop checkpointing (``# srcdiff: checkpoint``): the gradient of the uncheckpointed loop,
the oracle's, through grad, value_and_grad and vjp; located refusals; memory that falls."""

import re
import tracemalloc

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import LocatedError, SrcdiffError

from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_a_number, check_vjp_of_array_output, draw)
from .helpers import make_function

# name -> (source with a DIRECTIVE line and N iterations, argument shapes); every case runs
# through the harnesses checkpointed, and its twin without the directive gives the gradient
# the checkpointed one must equal
CASES = {
    "branch_and_helper": ("""
        def helper(h, w):
            return np.tanh(h * w)

        def f(x, w):
            h = x
            c = x * 0.5
            DIRECTIVE
            for t in range(N):
                a = helper(h, w)
                if np.sum(a) > 0:
                    h = a + c * 0.1
                else:
                    h = a * 0.9
                c = c * np.cos(h)
            return np.sum(h * c)
    """, [(2, 3), (3,)]),  # w broadcasts against the rows of x
    "several_arrays_and_a_number": ("""
        def f(x, w, a):
            h = x
            v = np.cos(x)
            s = 0.0
            DIRECTIVE
            for t in range(N):
                h, v = np.sin(v * w) * a, h + 0.5 * v
                s = s + np.sum(h * h) * (t + 1)
            return s + np.sum(v)
    """, [(4,), (4,), F]),
    "scalars_only": ("""
        def f(x, a):
            y = x
            DIRECTIVE
            for t in range(N):
                y = np.sin(y) * a + 0.1 * t
            return y * y
    """, [F, F]),
    "nested_loop_and_stride": ("""
        def f(x, w):
            s = np.sum(x) * 0.0
            DIRECTIVE
            for t in range(1, 2 * N + 1, 2):
                y = np.sin(x * t) * w
                for i in range(2):
                    y = y * np.cos(y + i)
                s = s + np.sum(y) * s * 0.1 + np.sum(y)
            return s
    """, [(3,), ()]),
    # a list read only at its end is one variable (the lasts stage): a state like h above
    "a_list_read_at_its_end": ("""
        def f(x, w):
            hs = [x]
            DIRECTIVE
            for t in range(N):
                hs.append(np.sin(hs[-1] * w) + 0.1)
            return np.sum(hs[-1] ** 2)
    """, [(3,), (3,)]),
}

# (K, N) pairs: K dividing N, not dividing it, N < K, N = 0, K = 1; None: K = ⌈√N⌉
SCHEDULES = [(3, 6), (3, 7), (4, 2), (3, 0), (1, 4), (None, 10)]


def _steps(source: str, directive: str, n: int) -> str:
    return re.sub(r"\bN\b", str(n), source.replace("DIRECTIVE", directive))


def _pair(name, every, n):
    source, shapes = CASES[name]
    directive = "# srcdiff: checkpoint" + ("" if every is None else f" every={every}")
    checked = make_function(_steps(source, directive, n), name="f")
    plain = make_function(_steps(source, "", n), name="f")
    return checked, plain, draw(shapes, seed=n)


@pytest.mark.parametrize("every,n", SCHEDULES, ids=[f"K{k}-n{n}" for k, n in SCHEDULES])
@pytest.mark.parametrize("name", sorted(CASES))
def test_checkpointed_gradient_is_the_uncheckpointed_one(name, every, n):
    checked, plain, args = _pair(name, every, n)
    wrt = tuple(range(len(args)))
    assert "_checkpoints1" in srcdiff.grad(checked, wrt=wrt).source
    got, want = srcdiff.grad(checked, wrt=wrt)(*args), srcdiff.grad(plain, wrt=wrt)(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(CASES))
def test_checkpointed_gradient_is_the_oracles(name):
    checked, _, args = _pair(name, 3, 7)
    check_grad_by_finite_differences(checked, args)
    check_value_and_grad(checked, args)
    check_vjp_of_a_number(checked, args)


def test_array_output_float32_and_duck_arrays():
    """vjp of an array output, float32 in and out, and no host sync on a device array."""
    source = """
        def f(x, w):
            h = x
            # srcdiff: checkpoint every=2
            for t in range(5):
                h = np.tanh(h * w) + 0.1 * t
            return h OUT
    """
    args = draw([(2, 3), (3,)], seed=4)
    check_vjp_of_array_output(make_function(source.replace("OUT", "")), args,
                              np.random.default_rng(5))
    total = make_function(source.replace("return h OUT", "return np.sum(h * h)"))
    check_float32_gradients(total, args)
    check_gradients_on_duck_arrays(total, args)


def test_the_loop_index_read_after_the_loop():
    """The adjoint reads each iteration's t, which the recomputation makes again."""
    fn = make_function("""
        def f(x):
            s = x * 0.0
            # srcdiff: checkpoint every=3
            for t in range(7):
                s = s + np.sin(x * t) * s + x
            return np.sum(s) * t
    """)
    check_grad_by_finite_differences(fn, draw([(3,)], seed=6))


def test_directive_at_the_end_of_the_header_and_the_source_shows_the_recomputation():
    fn = make_function("""
        def f(x, w):
            h = x
            for t in range(5):  # srcdiff: checkpoint every=2
                h = np.tanh(h * w)
            return np.sum(h)
    """)
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "srcdiff: checkpoint" not in source  # the directive became the code below
    for line in ("for _k1, t in enumerate(_steps1):", "if _k1 % 2 == 0:",
                 "_checkpoints1.push(h_1)", "for _j1 in reversed(range(len(_checkpoints1) - 1)):",
                 "h_1_again = _checkpoints1[_j1]", "for t in _steps1[_j1 * 2:_j1 * 2 + 2]:",
                 "rt.check_recomputed(h_1_again, _checkpoints1[_j1 + 1],",
                 "# adjoint of: h = np.tanh(h * w)"):
        assert line in source, line
    assert "_tape1.push" not in source.split("def f_pullback")[0]  # no tape in the forward pass
    check_grad_by_finite_differences(fn, draw([(3,), (3,)]))


REFUSED = [
    ("while", """
        def f(x):
            i = 0
            # srcdiff: checkpoint
            while i < 3:
                x = np.sin(x)
                i = i + 1
            return np.sum(x)
    """, "'while' loops"),
    ("rows", """
        def f(x):
            s = 0.0
            # srcdiff: checkpoint
            for row in x:
                s = s + np.sum(np.sin(row))
            return s
    """, "range"),
    ("nested", """
        def f(x):
            for i in range(2):
                # srcdiff: checkpoint every=2
                for t in range(3):
                    x = np.sin(x)
            return np.sum(x)
    """, "inside another loop"),
    ("in_a_branch", """
        def f(x):
            if np.sum(x) > 0:
                # srcdiff: checkpoint every=2
                for t in range(3):
                    x = np.sin(x)
            return np.sum(x)
    """, "inside an 'if'"),
    ("in_a_no_grad_block", """
        def f(x):
            with srcdiff.no_grad():
                # srcdiff: checkpoint
                for t in range(3):
                    x = np.sin(x)
            return np.sum(x)
    """, "inside a 'with' block"),
    ("in_a_loop_else", """
        def f(x):
            for i in range(2):
                x = x * 2.0
            else:
                # srcdiff: checkpoint
                for t in range(3):
                    x = np.sin(x)
            return np.sum(x)
    """, "in a loop's 'else'"),
    ("break", """
        def f(x):
            # srcdiff: checkpoint every=2
            for t in range(3):
                x = np.sin(x)
                if np.sum(x) > 5:
                    break
            return np.sum(x)
    """, "'break'"),
    ("every_zero", """
        def f(x):
            # srcdiff: checkpoint every=0
            for t in range(3):
                x = np.sin(x)
            return np.sum(x)
    """, "does not understand"),
    ("misspelled", """
        def f(x):
            for t in range(3):  # srcdiff: checkpoint each=2
                x = np.sin(x)
            return np.sum(x)
    """, "does not understand"),
    ("not_a_loop", """
        def f(x):
            # srcdiff: checkpoint
            y = np.sin(x)
            return np.sum(y)
    """, "belongs on the line above"),
    ("appends_in_place", """
        def f(x):
            hs = [x]
            # srcdiff: checkpoint every=2
            for t in range(3):
                hs.append(np.sin(hs[-1]))
            return np.sum(hs[-1] ** 2) + np.sum(hs[0])
    """, "appends to a list"),
    ("print", """
        def f(x):
            # srcdiff: checkpoint every=2
            for t in range(3):
                x = np.sin(x)
                print(t)
            return np.sum(x)
    """, "would run again"),
]


@pytest.mark.parametrize("source,message", [(s, m) for _, s, m in REFUSED],
                         ids=[name for name, _, _ in REFUSED])
def test_a_directive_srcdiff_cannot_follow_is_refused_at_its_loop(source, message):
    fn = make_function(source)
    with pytest.raises(LocatedError, match=re.escape(message)) as info:
        srcdiff.grad(fn)(np.ones(3) * 0.5)
    err = info.value
    lines = open(err.filename).read().splitlines()
    loop = next(i for i, text in enumerate(lines, 1) if "srcdiff: checkpoint" in text)
    if lines[loop - 1].strip().startswith("#"):
        loop += 1  # the directive stands above its statement
    assert err.lineno == loop and err.text == lines[loop - 1]


def test_a_loop_that_draws_random_numbers_is_refused_when_recomputed():
    fn = make_function("""
        def f(x, rng):
            # srcdiff: checkpoint every=2
            for t in range(4):
                x = np.sin(x) + rng.standard_normal(x.shape)
            return np.sum(x)
    """)
    with pytest.raises(SrcdiffError, match="computed other values"):
        srcdiff.grad(fn)(np.ones(3), np.random.default_rng(0))


def test_an_inactive_loop_keeps_nothing_and_needs_no_checkpoint():
    fn = make_function("""
        def f(x, w):
            z = w * 1.0
            # srcdiff: checkpoint every=2
            for t in range(3):
                z = np.sin(z)
            return np.sum(x * 2.0) + np.sum(z)
    """)
    source = srcdiff.grad(fn).source
    assert "_checkpoints" not in source and "srcdiff: checkpoint" not in source
    check_grad_by_finite_differences(fn, draw([(3,), (3,)]), wrt=(0,))


STEPS = """
    def f(x, w):
        h = x
        DIRECTIVE
        for t in range(N):
            h = np.tanh(h * w + 0.1)
        return np.sum(h)
"""


def _peak(fn, args) -> int:
    """Bytes at the peak of one gradient call, from tracemalloc (numpy reports its arrays)."""
    grad = srcdiff.grad(fn, wrt=(0, 1))
    grad(*args)  # compiled before measuring
    tracemalloc.start()
    try:
        grad(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_falls_with_checkpoints():
    """2000 steps of a 500-vector: the tape keeps ~3 arrays a step; K = ⌈√n⌉ keeps ~2√n."""
    n, args = 2000, draw([(500,), (500,)])
    plain = _peak(make_function(_steps(STEPS, "", n)), args)
    every = _peak(make_function(_steps(STEPS, "# srcdiff: checkpoint", n)), args)
    assert every < plain / 8, (plain, every)


def test_the_readme_listing_is_the_generated_source():
    """Each line of the README's listing (less its '...') is in the source it shows."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Long loops: checkpointing")[1]
    example, listing = re.findall(r"```python\n(.*?)```", section, re.S)[:2]
    fn = make_function(example, name="loss")
    stable = lambda text: re.sub(r"'\w+\.py', \d+", "'F', N", re.sub(r"line \d+", "line N", text))  # noqa: E731
    source = stable(srcdiff.grad(fn, wrt=("h", "W")).source)
    for line in stable(listing).splitlines():
        if line.strip() != "...":
            assert line + "\n" in source, line
