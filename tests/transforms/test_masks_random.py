"""Random programs for the masks stage: a ReLU drawn from its spellings, of a value drawn
from a table, in a loss drawn from a table (products with the ReLU and not); the gradient
with the stage against the one without it (the rules' arithmetic: equal where finite, NaN
where it is NaN) at values with exact ties, and against central differences away from them."""

import importlib.util

import numpy as np
import pytest

import srcdiff
from srcdiff import pipeline
from srcdiff.testing import check_grad

RELU = [
    "r = b * (b > 0)",
    "r = (0 < b) * b",
    "r = np.where(b > 0, b, 0.0)",
    "r = np.maximum(b, 0.0)",
    "r = np.maximum(0, b)",
]
VALUE = ["b = x - 0.25", "b = x * w", "b = np.sin(x) + w", "b = x"]
LOSS = [
    "np.sum(r * r)",
    "np.mean(r ** 2)",
    "3.0 * np.sum(r * r)",
    "np.sum(r * r * w)",
    "np.sum(r * w) + np.sum(r * r)",   # r read twice: the mask stays
    "np.sum(np.sin(r))",               # not a product with r: the mask stays
]
N_PROGRAMS = 30


def _program(k: int) -> str:
    rng = np.random.default_rng(k)
    relu, value, loss = (rng.choice(len(t)) for t in (RELU, VALUE, LOSS))
    return (f"import numpy as np\n\n\ndef f(x, w):\n    {VALUE[value]}\n    {RELU[relu]}\n"
            f"    return {LOSS[loss]}\n")


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("masks_programs")
    found = []
    for k in range(N_PROGRAMS):
        source = _program(k)
        path = folder / f"masks_program_{k}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"masks_program_{k}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append((module.f, source))
    return found


def _args(k: int):
    rng = np.random.default_rng(200 + k)
    shape = ((5,), (3, 4))[k % 2]
    x = rng.uniform(-1.0, 1.0, size=shape)
    x.reshape(-1)[:2] = (0.25, 0.0)  # ties: b == 0 for some spellings of b
    return x, rng.uniform(0.5, 1.5, size=shape)


@pytest.mark.parametrize("k", range(N_PROGRAMS))
def test_random_relus_with_and_without_the_stage(programs, k, monkeypatch):
    fn, source = programs[k]
    x, w = _args(k)
    grads = srcdiff.grad(fn, wrt=(0, 1))(x, w)
    monkeypatch.setattr(pipeline, "PIPELINE",
                        tuple(s for s in pipeline.PIPELINE if s[0] != "masks"))
    plain = srcdiff.grad(lambda x, w: fn(x, w), wrt=(0, 1))(x, w)
    for a, b in zip(grads, plain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=source)
    monkeypatch.undo()
    smooth = (np.random.default_rng(k).uniform(0.3, 1.0, size=x.shape) *
              np.where(np.arange(x.size).reshape(x.shape) % 2, 1.0, -1.0), w)
    check_grad(fn, smooth, srcdiff.grad(fn, wrt=(0, 1))(*smooth), argnums=(0, 1))


def test_the_stage_drops_the_mask_in_many_of_them(programs):
    dropped = 0
    for k, (fn, _) in enumerate(programs):
        grad = srcdiff.grad(fn, wrt=(0, 1))
        grad(*_args(k))
        dropped += "db = dr\n" in grad.source
    assert N_PROGRAMS // 5 <= dropped < N_PROGRAMS
