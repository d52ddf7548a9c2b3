"""comprehensions, continued (issue 15): dict and set comprehensions, and a generator
expression or ``map(f, xs)`` as the argument of ``tuple``, ``list``, ``sorted``, ``sum``,
``max``. Before/after source for the pass, then every form through grad, value_and_grad and
vjp against finite differences (tests/end_to_end.py) on several shapes, broadcasting and
Python floats included; what stays refused, refused at its line."""

from __future__ import annotations

import numpy as np
import pytest

import srcdiff
from srcdiff.errors import SrcdiffError
from srcdiff.testing import check_grad

from ..end_to_end import (F, check_float32_gradients, check_grad_by_finite_differences,
                          check_gradients_on_duck_arrays, check_value_and_grad,
                          check_vjp_of_array_output, draw)
from ..helpers import make_function
from .test_comprehensions import after

# ----- the pass itself -----


def test_a_dict_comprehension_writes_each_key_into_the_dict_it_names():
    fn = make_function("""
        def f(params):
            sq = {k: np.sum(v ** 2) for k, v in params.items() if k != "b"}
            return sq["w"]
    """)
    assert after(fn) == [
        "    sq = {}",
        "    for k, v in params.items():",
        "        if k != \"b\":",
        "            sq[k] = np.sum(v ** 2)",
        "    return sq[\"w\"]",
    ]


def test_a_set_comprehension_collects_a_list_then_makes_the_set():
    fn = make_function("""
        def f(x, ps):
            dims = {np.ndim(p) for p in ps}
            return np.sum(x) * len(dims)
    """)
    assert after(fn) == [
        "    dims = []",
        "    for p in ps:",
        "        dims.append(np.ndim(p))",
        "    dims = set(dims)",
        "    return np.sum(x) * len(dims)",
    ]


def test_a_loop_over_a_set_runs_over_a_list_of_it():
    fn = make_function("""
        def f(x, ps):
            dims = {np.ndim(p) for p in ps}
            return sum(x * d for d in dims)
    """)
    assert after(fn)[4:] == [
        "    _sum1 = 0",
        "    for d in list(dims):",
        "        _sum1 = _sum1 + x * d",
        "    return _sum1",
    ]


def test_map_of_a_function_is_a_generator_expression():
    fn = make_function("""
        def helper(a, b):
            return a * b

        def f(xs, w):
            return sum(map(helper, xs, xs)) + np.stack(tuple(map(np.sin, xs)))
    """, name="f")
    assert after(fn) == [
        "    _sum1 = 0",
        "    for _item1, _item2 in zip(xs, xs):",
        "        _sum1 = _sum1 + helper(_item1, _item2)",
        "    _items1 = []",
        "    for _item3 in xs:",
        "        _items1.append(np.sin(_item3))",
        "    return _sum1 + np.stack(tuple(_items1))",
    ]


# ----- gradients against finite differences -----

PROGRAMS = {
    "dict_of_items": """
        def f(u, v):
            params = {"u": u, "v": v}
            sq = {k: np.sum(p ** 2) for k, p in params.items()}
            return sq["u"] + 2.0 * sq["v"] * sq["u"]
        """,
    "dict_over_zip_with_a_filter": """
        NAMES = ("a", "b", "c")

        def f(u, v):
            ws = [u, v, u * v]
            d = {name: w * 2.0 for name, w in zip(NAMES, ws) if name != "b"}
            return np.sum(d["a"] * d["c"])
        """,
    "dict_of_lists_nested": """
        def f(u, v):
            params = {"u": u, "v": v}
            scaled = {k: [np.sin(p * s) for s in (1.0, 2.0)] for k, p in params.items()}
            return np.sum(scaled["u"][1] * scaled["v"][0])
        """,
    "dict_two_clauses_string_keys": """
        def f(u, v):
            params = {"u": u, "v": v}
            cross = {a + b: np.sum(params[a] * params[b]) for a in ("u", "v") for b in ("u", "v")
                     if a <= b}
            return cross["uv"] + cross["uu"] * cross["vv"]
        """,
    "dict_values_summed": """
        def f(u, v):
            params = {"u": u, "v": v}
            act = {k: np.tanh(p) for k, p in params.items()}
            return sum(np.sum(a * a) for a in act.values())
        """,
    "dict_key_written_twice": """
        def f(u, v):
            d = {"w" if np.ndim(p) < 9 else "z": np.sum(p) * 3.0 for p in (u, v)}
            return d["w"] * np.sum(u)
        """,
    "set_of_constants": """
        def f(u, v):
            dims = {np.ndim(p) + 1 for p in (u, v)}
            t = 0.0
            for d in dims:
                t = t + d * np.sum(u * v)
            return t + np.sum(v) * max(dims) * len(dims)
        """,
    "set_of_a_set": """
        def f(u, v):
            dims = {np.ndim(p) for p in (u, v)}
            more = {d + 1 for d in dims}
            sizes = [np.sum(p) for p in (u, v)]
            return np.sum(u * v) * max(more) + sizes[0] * len(dims)
        """,
    "tuple_of_generator": """
        def f(u, v):
            return np.sum(np.stack(tuple(np.sin(s * u) * v for s in (0.5, 1.0, 2.0))))
        """,
    "stack_of_list_of_generator": """
        def f(u, v):
            return np.sum(np.sum(np.stack(list(np.cos(u * s) for s in (1.0, 3.0))), axis=0) * v)
        """,
    "sorted_constants": """
        def f(u, v):
            ks = sorted(3.0 - s for s in (1.0, 2.0, 0.5))
            return np.sum(u * ks[0] + v * ks[-1])
        """,
    "map_of_a_function": """
        def energy(a):
            return np.sum(a ** 2)

        def f(u, v):
            return sum(map(energy, (u, v, u * v)))
        """,
    "map_of_two_sequences": """
        def coupling(a, b):
            return np.sum(np.tanh(a * b))

        def f(u, v):
            us = [u, 2.0 * u]
            return max(map(coupling, us, (v, v * v))) + sum(map(np.sum, us))
        """,
}
SHAPES = [[(3,), (3,)], [(2, 3), (3,)], [F, (4,)], [F, F]]
CASES = [pytest.param(name, shapes, id=f"{name}-{'-'.join(map(str, shapes))}".replace(" ", ""))
         for name in PROGRAMS for shapes in SHAPES]


def _function(name):
    return make_function(PROGRAMS[name], name="f")


@pytest.mark.parametrize("name, shapes", CASES)
def test_grad_matches_finite_differences(name, shapes):
    check_grad_by_finite_differences(_function(name), draw(shapes, seed=5, dom=(0.2, 1.2)))


@pytest.mark.parametrize("name, shapes", CASES)
def test_value_and_grad(name, shapes):
    check_value_and_grad(_function(name), draw(shapes, seed=6, dom=(0.2, 1.2)))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_float32_in_float32_out(name):
    check_float32_gradients(_function(name), draw([(2, 3), (3,)], seed=7, dom=(0.2, 1.2)))


# max(...) compares values on the host; a dict of lists written by key unbroadcasts the
# list (np.shape of a list of device arrays: a host sync, srcdiff's, not this pass's)
ON_THE_HOST = {"set_of_constants", "set_of_a_set", "map_of_two_sequences", "dict_of_lists_nested"}


@pytest.mark.parametrize("name", sorted(set(PROGRAMS) - ON_THE_HOST))
def test_gradients_on_duck_arrays(name):
    check_gradients_on_duck_arrays(_function(name), draw([(2, 3), (3,)], seed=7, dom=(0.2, 1.2)))


ARRAY_OUTPUTS = {
    "dict_of_arrays": """
        def f(u, v):
            d = {k: p * 3.0 for k, p in zip(("u", "v"), (u, v))}
            return d["u"] * d["v"]
        """,
    "dict_of_items_returned_whole": """
        def f(u, v):
            params = {"u": u, "v": v}
            e = {k: np.exp(p) for k, p in params.items()}
            return np.concatenate([np.ravel(w) for w in e.values()])
        """,
    "tuple_of_map": """
        def scaled(p, w):
            return p * w

        def f(u, v):
            t = tuple(map(scaled, (u, np.sin(u)), (v, v)))
            return t[0] - t[1] * t[1]
        """,
}


@pytest.mark.parametrize("name", sorted(ARRAY_OUTPUTS))
@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (3,)]], ids=str)
def test_vjp_of_array_outputs(name, shapes):
    fn = make_function(ARRAY_OUTPUTS[name], name="f")
    check_vjp_of_array_output(fn, draw(shapes, seed=8), np.random.default_rng(9))


def test_a_dict_comprehension_over_a_dict_argument_gives_a_dict_gradient():
    fn = make_function("""
        def f(params, x):
            sq = {k: np.sum((p * x) ** 2) for k, p in params.items()}
            return sq["w"] + 2.0 * sq["b"]
    """)
    rng = np.random.default_rng(1)
    params, x = {"w": rng.standard_normal(3), "b": rng.standard_normal(3)}, rng.standard_normal(3)
    dparams = srcdiff.grad(fn)(params, x)
    for k in params:
        check_grad(lambda p, k=k: fn(dict(params, **{k: p}), x), (params[k],), (dparams[k],))


# ----- refused, at the user's line -----

REFUSED = [
    ("a set of values that need a gradient", "s = {", """
        def f(xs):
            s = {v * 2.0 for v in xs}
            return sum(s)
        """),
    ("a set of arrays, only counted", "s = {", """
        def f(x):
            s = {np.sin(v) for v in x}
            return len(s) * np.sum(x)
        """),
    ("a set of what a list comprehension made", "s = {", """
        def f(x):
            vals = [np.sum(v) for v in x]
            s = {w * 1.0 for w in vals}
            return np.sum(x) * len(s)
        """),
    ("sorted of values that need a gradient", "sorted", """
        def f(x):
            return np.sum(np.stack(sorted(np.sin(v) for v in x)))
        """),
    ("a map kept as a value", "map(", """
        def energy(a):
            return np.sum(a ** 2)

        def f(x):
            m = map(energy, x)
            return sum(m)
        """),
    ("map of one argument", "map(", """
        def f(x):
            return np.sum(np.stack(list(map(np.sin))))
        """),
    ("a generator expression passed to numpy", "(np", """
        def f(x):
            return np.sum(np.stack((np.sin(v) for v in x)))
        """),
    ("a dict comprehension in a while test", "while", """
        def f(x):
            while len({k: 1.0 for k in ("a", "b")}) < 1:
                x = x * 2.0
            return np.sum(x)
        """),
]


@pytest.mark.parametrize("what, token, source", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_the_line(what, token, source):
    fn = make_function(source, name="f")
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(fn)(np.array([0.3, -0.4, 0.5]) if "xs" not in source else [0.3, 0.8])
    message = str(info.value)
    lines = open(fn.__code__.co_filename).read().splitlines()
    number = next(i for i, l in enumerate(lines, 1) if token in l and "def " not in l)
    assert f"line {number}\n    {lines[number - 1].strip()}" in message, message
