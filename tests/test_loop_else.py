"""``for … else`` and ``while … else`` (issue 15): desugar runs the ``else`` block after the
loop where no ``break`` left it (a flag set right before each ``break``: ``_broke1 = True``,
then ``if not _broke1:``), and right after the loop where nothing breaks. Every program
through grad, value_and_grad and vjp against finite differences (tests/end_to_end.py), with
a limit that breaks at once, one that never breaks, and one the data decides; nested loops;
the generated source."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

from .end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                         check_gradients_on_duck_arrays, check_value_and_grad,
                         check_vjp_of_array_output, draw)
from .helpers import code_lines, make_function, run_until

PROGRAMS = {
    "for_else_break": """
        def f(u, v):
            h = u
            for t in range(4):
                h = np.tanh(h * v + 0.3)
                if np.sum(h * h) > LIMIT:
                    break
            else:
                h = h * v + u
            return np.sum(h ** 2)
        """,
    "while_else_break": """
        def f(u, v):
            h = u
            k = 0
            while k < 4:
                h = np.sin(h) * v + u
                k += 1
                if np.sum(np.abs(h)) > LIMIT:
                    break
            else:
                h = h * h
            return np.sum(h)
        """,
    "nested_inner_breaks": """
        def f(u, v):
            s = u * 0.0
            for i in range(3):
                for j in range(3):
                    s = s + np.sin(u * (i + 1.0)) * v
                    if np.sum(s) > LIMIT * (j + 1.0):
                        break
                else:
                    s = s * 0.5
            else:
                s = s + u * v
            return np.sum(s * s)
        """,
    "outer_breaks_inner_else": """
        def f(u, v):
            s = u * v
            for i in range(3):
                for w in (u, v):
                    s = np.cos(s) * w
                else:
                    s = s + 1.0
                if np.sum(s) > LIMIT:
                    break
            else:
                s = s * u
            return np.sum(s)
        """,
    "else_block_breaks_the_outer_loop": """
        def f(u, v):
            s = u * 1.0
            for i in range(4):
                for j in range(2):
                    s = np.sin(s) * v + u
                    if np.sum(s) > LIMIT * (i + 1):
                        break
                else:
                    s = s * 0.9
                    if np.sum(s * s) > LIMIT:
                        break
                    continue
                s = s + 1.0
            else:
                s = s - v
            return np.sum(s * s)
        """,
    "continue_elif_break_and_return_in_else": """
        def f(u, v):
            acc = u * 0.0
            for w in (u, v, u * v):
                if np.sum(w) < -LIMIT:
                    continue
                elif np.sum(w) > LIMIT:
                    break
                acc = acc + w * w
            else:
                return np.sum(acc * v) * 2.0
            return np.sum(acc * u)
        """,
    "else_without_break_and_a_comprehension": """
        def f(u, v):
            h = u
            k = 0
            while k < LIMIT:
                h = h * v
                k += 1
            else:
                h = sum([h * s for s in (1.0, 2.0)])
            for t in range(2):
                h = np.sin(h)
            else:
                h = h + v
            return np.sum(h)
        """,
}
LIMITS = {"breaks_at_once": 0.0, "never_breaks": 1e9, "data": 1.5}
SHAPES = [[(3,), (3,)], [(2, 3), (3,)], [F, (4,)], [F, F]]
CASES = [pytest.param(name, limit, shapes,
                      id=f"{name}-{limit}-{'-'.join(map(str, shapes))}".replace(" ", ""))
         for name in PROGRAMS for limit in LIMITS for shapes in SHAPES]


def _function(name, limit):
    limit = LIMITS[limit] if name != "else_without_break_and_a_comprehension" else 2
    return make_function(f"LIMIT = {limit}\n" + PROGRAMS[name].replace("\n        ", "\n"),
                         name="f")


@pytest.mark.parametrize("name, limit, shapes", CASES)
def test_grad_matches_finite_differences(name, limit, shapes):
    check_grad_by_finite_differences(_function(name, limit), draw(shapes, seed=11, dom=(0.2, 1.1)))


@pytest.mark.parametrize("name, limit, shapes", CASES)
def test_value_and_grad(name, limit, shapes):
    check_value_and_grad(_function(name, limit), draw(shapes, seed=12, dom=(0.2, 1.1)))


@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_float32_in_float32_out(name, limit):
    check_float32_gradients(_function(name, limit), draw([(2, 3), (3,)], seed=13, dom=(0.2, 1.1)))


def test_an_else_on_the_device_makes_no_host_sync():
    """Where no test reads a device value (a counter), the else block stays on the device."""
    fn = _function("else_without_break_and_a_comprehension", "data")
    check_gradients_on_duck_arrays(fn, draw([(2, 3), (3,)], seed=16, dom=(0.2, 1.1)))


def test_the_loops_take_the_paths_the_tests_mean():
    """The limits do what their names say: at once the break is taken, never it is not."""
    fn = _function("for_else_break", "breaks_at_once")
    u, v = draw([(3,), (3,)], seed=11, dom=(0.2, 1.1))
    assert fn(u, v) == pytest.approx(np.sum(np.tanh(u * v + 0.3) ** 2))
    fn = _function("for_else_break", "never_breaks")
    h = u
    for _ in range(4):
        h = np.tanh(h * v + 0.3)
    assert fn(u, v) == pytest.approx(np.sum((h * v + u) ** 2))


ARRAY_OUTPUT = """
LIMIT = {limit}

def f(u, v):
    h = u
    for w in (v, u, v):
        h = np.tanh(h * w)
        if np.sum(h) > LIMIT:
            break
    else:
        h = h * u + v
    return h * v
"""


@pytest.mark.parametrize("limit", sorted(LIMITS))
@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (3,)]], ids=str)
def test_vjp_of_an_array_output(limit, shapes):
    fn = make_function(ARRAY_OUTPUT.format(limit=LIMITS[limit]), name="f")
    args = draw(shapes, seed=14, dom=(0.2, 1.1))
    check_vjp_of_array_output(fn, args, np.random.default_rng(15))


def test_desugar_sets_a_flag_before_each_break_and_tests_it_after_the_loop():
    fn = make_function("""
        def f(x, n):
            for t in range(n):
                x = x * 2.0
                if np.sum(x) > 1.0:
                    break
            else:
                x = x + 1.0
            return np.sum(x)
    """)
    lines = [line for line in code_lines(run_until(fn, "desugar")) if not line.strip().startswith("#")]
    assert lines[1:] == [
        "    _broke1 = False",
        "    for t in range(n):",
        "        x = x * 2.0",
        "        if np.sum(x) > 1.0:",
        "            _broke1 = True",
        "            break",
        "    if not _broke1:",
        "        x = x + 1.0",
        "    return np.sum(x)",
    ]


def test_an_else_that_nothing_skips_runs_right_after_the_loop():
    fn = make_function("""
        def f(x):
            while np.sum(x) < 4.0:
                x = x * 2.0
            else:
                x = x + 1.0
            return np.sum(x)
    """)
    lines = [line for line in code_lines(run_until(fn, "desugar")) if not line.strip().startswith("#")]
    assert lines[1:] == [
        "    while np.sum(x) < 4.0:",
        "        x = x * 2.0",
        "    x = x + 1.0",
        "    return np.sum(x)",
    ]


def test_the_pullback_of_the_else_reads_as_its_own_block():
    fn = make_function("""
        def f(x, n):
            for t in range(n):
                x = np.sin(x)
                if np.sum(x) > 1.0:
                    break
            else:
                x = x * 3.0
            return np.sum(x)
    """)
    source = srcdiff.grad(fn).source
    else_line = fn.__code__.co_firstlineno + 5
    assert f"# adjoint of: else:  (line {else_line})" in source
    assert "not _broke1" in source
    check_grad_by_finite_differences(fn, (np.array([0.3, 0.1]), 3), wrt=(0,))


# ----- early returns of a tuple or a dict inside a loop (jumps keeps each part) -----

RETURNS = {
    "tuple": """
        LIMIT = {limit}

        def f(u, v):
            h = u
            for t in range(3):
                h = np.tanh(h * v)
                if np.sum(h) > LIMIT:
                    return h * 2.0, np.sum(h)
            return h, np.sum(h * v)
        """,
    "dict_in_nested_loops": """
        LIMIT = {limit}

        def f(u, v):
            h = u
            for w in (u, v):
                for t in range(2):
                    h = np.sin(h) * w
                    if np.sum(h) > LIMIT:
                        return {{"h": h, "s": np.sum(h * u)}}
            return {{"h": h * v, "s": np.sum(h)}}
        """,
    "tuple_from_a_while_with_else": """
        LIMIT = {limit}

        def f(u, v):
            h = u * v
            k = 0
            while k < 3:
                k += 1
                h = np.cos(h) + u
                if np.sum(h) > LIMIT:
                    return h, np.sum(h * h)
            else:
                h = h * v
            return h - u, np.sum(h)
        """,
}
RETURN_LIMITS = {"returns_at_once": -1e9, "never_returns": 1e9, "data": 2.0}


def _pair(out):
    return out if isinstance(out, tuple) else (out["h"], out["s"])


@pytest.mark.parametrize("limit", sorted(RETURN_LIMITS))
@pytest.mark.parametrize("name", sorted(RETURNS))
@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (3,)], [F, (3,)]], ids=str)
def test_early_returns_of_a_tuple_or_dict_in_a_loop(name, limit, shapes):
    """vjp of the structured output against finite differences of <cotangent, output>; grad
    and value_and_grad through a scalar function that calls it as a helper."""
    fn = make_function(RETURNS[name].format(limit=RETURN_LIMITS[limit]), name="f")
    args = draw(shapes, seed=17, dom=(0.2, 1.1))
    rng = np.random.default_rng(18)
    want = _pair(fn(*args))
    c = rng.standard_normal(np.shape(want[0]))
    cotangent = (c, 3.0) if isinstance(fn(*args), tuple) else {"h": c, "s": 3.0}
    out, pullback = srcdiff.vjp(fn, *args)
    for got, expected in zip(_pair(out), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12)

    def weighted(u, v):
        a, s = _pair(fn(u, v))
        return np.sum(a * c) + 3.0 * s

    check_grad(weighted, args, pullback(cotangent))
    caller = make_function(CALLERS["dict" if name.startswith("dict") else "tuple"], name="g")
    caller.__globals__["F"] = fn  # a helper that returns early from its loop
    check_grad_by_finite_differences(caller, args)
    check_value_and_grad(caller, args)


CALLERS = {
    "tuple": """
        def g(u, v):
            a, s = F(u, v)
            return np.sum(a * a) + s
        """,
    "dict": """
        def g(u, v):
            d = F(u, v)
            return np.sum(d["h"] * d["h"]) + d["s"]
        """,
}
