"""comprehensions: list comprehensions, generator expressions, sum/max/min become loops.

Before/after source for the pass itself, then gradients of every form against finite
differences (several shapes, through grad, value_and_grad and vjp)."""

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad, check_vjp

from ..helpers import code_lines, make_function, run_until


def after(fn):
    """The function body after the pass, without markers."""
    return [line.rstrip() for line in code_lines(run_until(fn, "comprehensions"))
            if not line.strip().startswith("#")][1:]


def test_a_list_comprehension_assigned_to_a_name_builds_that_name():
    fn = make_function("""
        def f(ps, x):
            heads = [np.tanh(q * x) for q in ps]
            return np.sum(np.stack(heads))
    """)
    assert after(fn) == [
        "    heads = []",
        "    for q in ps:",
        "        heads.append(np.tanh(q * x))",
        "    return np.sum(np.stack(heads))",
    ]


def test_sum_of_a_generator_with_a_filter_is_an_accumulating_loop():
    fn = make_function("""
        def f(ps):
            penalty = sum(np.sum(p ** 2) for p in ps if p.ndim > 1)
            return penalty
    """)
    assert after(fn) == [
        "    penalty = 0",
        "    for p in ps:",
        "        if p.ndim > 1:",
        "            penalty = penalty + np.sum(p ** 2)",
        "    return penalty",
    ]


def test_nested_comprehensions_compute_their_inner_parts_inside_the_loop():
    fn = make_function("""
        def f(ps, x):
            return sum([sum(a * b for a in ps) for b in ps if np.sum(b) > 0])
    """)
    assert after(fn) == [
        "    _sum1 = 0",
        "    for b in ps:",
        "        if np.sum(b) > 0:",
        "            _sum2 = 0",
        "            for a in ps:",
        "                _sum2 = _sum2 + a * b",
        "            _sum1 = _sum1 + _sum2",
        "    return _sum1",
    ]


def test_a_comprehension_variable_used_elsewhere_is_renamed():
    fn = make_function("""
        def f(ps, x):
            ys = [x * 2.0 for x in ps]
            return np.sum(ys[0] * x)
    """)
    assert after(fn)[1:3] == ["    for x_1 in ps:", "        ys.append(x_1 * 2.0)"]


def test_max_of_two_values_is_a_conditional_expression():
    fn = make_function("""
        def f(a, b):
            return max(a, b * 2.0)
    """)
    assert after(fn) == ["    return b * 2.0 if b * 2.0 > a else a"]


def test_the_markers_stay_on_the_first_statement():
    fn = make_function("""
        def f(ps):
            return sum(np.sum(p) for p in ps)
    """)
    lines = code_lines(run_until(fn, "comprehensions"))
    assert lines[1].strip().startswith("# line ") and "return sum(np.sum(p) for p in ps)" in lines[1]
    assert lines[2].strip() == "_sum1 = 0"


FUNCTIONS = {
    "list_comp": "return np.sum(np.stack([np.tanh(q * x) for q in ps]))",
    "list_comp_zip": ("heads = [np.sin(q) * k for q, k in zip(ps, ps[::-1])]\n"
                      "    return np.sum(np.stack(heads) * x)"),
    "list_comp_enumerate": "return np.sum(np.stack([p * (i + 1.0) for i, p in enumerate(ps)]) * x)",
    "list_comp_filter": "return np.sum(np.stack([p * x for p in ps if np.sum(p) > 0.0]))",
    "list_comp_range": "return np.sum(np.stack([ps[i] * ps[i + 1] for i in range(len(ps) - 1)]))",
    "nested": "m = [[np.sum(a * b * x) for a in ps] for b in ps]\n    return sum(sum(r) for r in m)",
    "sum_generator": "return 1e-3 * sum(np.sum(p ** 2) for p in ps) + np.sum(x)",
    "sum_list_comp": "return sum([np.sum(p * x) for p in ps])",
    "sum_of_list": "ys = [p * x for p in ps]\n    return np.sum(sum(ys))",
    "sum_with_start": "return np.sum(sum((p * x for p in ps), x))",
    "sum_double_for": "return sum(np.sum(a * b) for a in ps for b in ps)",
    "max_generator": "return max(np.sum(p * x) for p in ps)",
    "min_list": "vs = [np.sum(p * x) for p in ps]\n    return min(vs)",
    "max_two": "return max(np.sum(x), np.sum(ps[0] * x)) + min(np.sum(x), 0.25)",
    "any_filter": "return np.sum(x) * 2.0 if any(np.sum(p) > 1.0 for p in ps) else np.sum(x * x)",
    "list_of_generator": "return np.sum(np.stack(list(np.cos(p) for p in ps)) * x)",
    "reversed_loop": "s = 0.0\n    for c in reversed(ps):\n        s = s * 0.5 + np.sum(c * x)\n    return s",
    "zip_of_paths": ("s = 0.0\n    for a, b in zip(ps[:2], ps[1:]):\n        s = s + np.sum(a * b * x)\n"
                     "    return s"),
    "no_grad": "with srcdiff.no_grad():\n        w = [np.sum(p) for p in ps]\n    return np.sum(x) * w[0]",
}


@pytest.mark.parametrize("shape", [(3,), (2, 3), ()], ids=["vector", "matrix", "scalar"])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_lowered_forms_match_finite_differences(name, shape):
    fn = make_function(f"def f(ps, x):\n    {FUNCTIONS[name]}\n")
    rng = np.random.default_rng(3)
    ps = [rng.uniform(0.2, 1.0, size=shape) * s for s in (1.0, -0.7, 1.3)]
    x = rng.uniform(-1.0, 1.0, size=shape)
    dps, dx = srcdiff.grad(fn, wrt=(0, 1))(ps, x)
    assert isinstance(dps, list) and len(dps) == 3
    for i in range(3):
        check_grad(lambda p, i=i: fn(ps[:i] + [p] + ps[i + 1:], x), (ps[i],), (dps[i],))
    check_grad(lambda v: fn(ps, v), (x,), (dx,))
    value, (_, dx2) = srcdiff.value_and_grad(fn, wrt=(0, 1))(ps, x)
    np.testing.assert_allclose(value, fn(ps, x))
    np.testing.assert_allclose(dx2, dx)
    out, pullback = srcdiff.vjp(fn, ps, x)
    check_vjp(lambda v: fn(ps, v), (x,), (pullback(2.0)[1],), cotangent=2.0)


def test_the_generated_source_reads_as_a_loop():
    fn = make_function("""
        def f(ps, x):
            heads = [np.tanh(q * x) for q in ps]
            return np.sum(np.stack(heads))
    """)
    source = srcdiff.grad(fn, wrt=(0, 1)).source
    assert "heads = []" in source and "rt.append_in_place(heads" in source
    assert "# adjoint of: heads = [np.tanh(q * x) for q in ps]" in source


DICT_LOOPS = {  # a function of (params, x), params a dict of two arrays
    "values_in_a_generator": "return 1e-3 * sum(np.sum(p ** 2) for p in params.values()) + np.sum(params['w'] * x)",
    "items": ("s = 0.0\n    for k, v in params.items():\n        s = s + np.sum(v * x) * (2.0 if k == 'w' else 1.0)\n"
              "    return s"),
    "keys": "s = 0.0\n    for k in params.keys():\n        s = s + np.sum(params[k] ** 2 * x)\n    return s",
    "values_comprehension": "return np.sum(np.stack([np.tanh(v) for v in params.values()]) * x)",
}


@pytest.mark.parametrize("name", sorted(DICT_LOOPS))
def test_loops_over_the_values_items_and_keys_of_a_dict(name):
    fn = make_function(f"def f(params, x):\n    {DICT_LOOPS[name]}\n")
    params = {"w": np.array([0.5, -1.0]), "b": np.array([0.3, 0.7])}
    x = np.array([1.5, -0.5])
    dparams, dx = srcdiff.grad(fn, wrt=(0, 1))(params, x)
    assert set(dparams) == {"w", "b"}
    for key in params:
        check_grad(lambda v, key=key: fn({**params, key: v}, x), (params[key],), (dparams[key],))
    check_grad(lambda v: fn(params, v), (x,), (dx,))
