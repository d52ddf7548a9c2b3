"""Random recurrent loops for the steps stage: each step's nonlinearity drawn from a table
(compositions of tanh, a logistic, sin, exp, squares, quotients), states as vectors or
batches, float64; the gradient with the stage against the one without it (the same
arithmetic per element: to 1e-12) and against central differences."""

import importlib.util

import numpy as np
import pytest

import srcdiff
from srcdiff import pipeline
from srcdiff.testing import check_grad

NONLINEAR = [  # of z, elementwise; each derivative reads the step's values only
    "np.tanh(z)",
    "1.0 / (1.0 + np.exp(-z))",
    "np.sin(z) * 0.5 + z * 0.25",
    "z * z * 0.1 + np.cos(z)",
    "np.tanh(z) * (1.0 - np.tanh(z) * 0.5)",
    "z / (1.0 + z * z)",
    "np.exp(-0.5 * z * z) - 0.3",
    "np.tanh(np.sin(z) + 0.5 * z)",
]
LINEAR = {
    "vector": "z = W @ h + U @ xs[t]",
    "batch": "z = h @ W + xs[t] @ U",
}
OUTPUT = ["np.sum(h)", "np.sum(h * h)", "np.mean(np.tanh(h))"]
N_PROGRAMS = 16


def _program(k: int) -> tuple[str, str]:
    rng = np.random.default_rng(k)
    layout = ("vector", "batch")[k % 2]
    first, second = rng.choice(len(NONLINEAR), size=2)
    nonlinear = NONLINEAR[first].replace("z", "q") if k % 3 == 0 else NONLINEAR[first]
    lines = [LINEAR[layout]]
    if k % 3 == 0:  # two nonlinear steps in a row
        lines += [f"q = {NONLINEAR[second]}", f"h = {nonlinear}"]
    else:
        lines.append(f"h = {nonlinear}")
    body = "\n".join("        " + line for line in lines)
    source = ("import numpy as np\n\n\ndef f(W, U, xs, h0):\n    h = h0\n"
              f"    for t in range(xs.shape[0]):\n{body}\n    return {OUTPUT[k % len(OUTPUT)]}\n")
    return source, layout


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steps_programs")
    found = []
    for k in range(N_PROGRAMS):
        source, layout = _program(k)
        path = folder / f"steps_program_{k}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"steps_program_{k}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append((module.f, layout, source))
    return found


def _args(layout: str, k: int):
    rng = np.random.default_rng(100 + k)
    n, m, steps = 3, 2, 1 + k % 5
    if layout == "vector":
        return (rng.normal(size=(n, n)) * 0.5, rng.normal(size=(n, m)) * 0.5,
                rng.normal(size=(steps, m)), rng.normal(size=n) * 0.3)
    return (rng.normal(size=(n, n)) * 0.5, rng.normal(size=(m, n)) * 0.5,
            rng.normal(size=(steps, 4, m)), rng.normal(size=(4, n)) * 0.3)


@pytest.mark.parametrize("k", range(N_PROGRAMS))
def test_random_loops_with_and_without_the_stage(programs, k, monkeypatch):
    fn, layout, source = programs[k]
    args = _args(layout, k)
    grads = srcdiff.grad(fn, wrt=(0, 1))(*args)
    check_grad(fn, args, grads, argnums=(0, 1))
    monkeypatch.setattr(pipeline, "PIPELINE",
                        tuple(s for s in pipeline.PIPELINE if s[0] != "steps"))
    plain = srcdiff.grad(lambda W, U, xs, h0: fn(W, U, xs, h0), wrt=(0, 1))(*args)
    for a, b in zip(grads, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=source)


def test_the_stage_takes_factors_in_most_of_them(programs):
    taken = 0
    for k, (fn, layout, _) in enumerate(programs):
        grad = srcdiff.grad(fn, wrt=(0, 1))
        grad(*_args(layout, k))
        taken += "rt.each_step(" in grad.source
    assert taken >= N_PROGRAMS // 2
