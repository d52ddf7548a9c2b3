"""Gradient objects travel: ``pickle`` and ``cloudpickle`` round trips, and calls in other
processes (``concurrent.futures.ProcessPoolExecutor``, ``multiprocessing``), including a
function whose source is in no file the other process can read (a notebook cell), which
cloudpickle sends by value. Every gradient is checked against finite differences.

The worker processes are spawned (not forked): they start without the parent's memory, so
they have neither its compiled derivatives nor its ``linecache``, as on a Dask worker.
"""

from __future__ import annotations

import linecache
import multiprocessing
import pickle
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import srcdiff
from srcdiff.testing import check_grad

try:
    import cloudpickle
except ImportError:  # the srcdiff[dask] extra brings it; pickle's tests run without it
    cloudpickle = None

needs_cloudpickle = pytest.mark.skipif(cloudpickle is None, reason="needs cloudpickle")
PICKLERS = [pytest.param(pickle, id="pickle"),
            pytest.param(cloudpickle, id="cloudpickle", marks=needs_cloudpickle)]


def mlp_loss(w1, w2, x, y):
    h = np.tanh(x @ w1)
    return np.mean((h @ w2 - y) ** 2)


@srcdiff.grad(wrt=("w1", "w2"))
def mlp_grad(w1, w2, x, y):  # the decorated function: the module holds the gradient object
    h = np.tanh(x @ w1)
    return np.mean((h @ w2 - y) ** 2)


class Model:
    def __init__(self, scale):
        self.scale = scale

    def loss(self, w, x):
        return np.sum(np.sin(self.scale * x * w))


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))


def check_mlp(grads, args):
    check_grad(mlp_loss, args, grads, argnums=(0, 1))


@pytest.mark.parametrize("module", PICKLERS)
@pytest.mark.parametrize("called_first", [False, True], ids=["fresh", "called"])
def test_grad_round_trip(module, called_first):
    g = srcdiff.grad(mlp_loss, wrt=(0, 1))
    args = data()
    if called_first:  # compiled, with its fast path: still pickles (no code objects inside)
        g(*args)
    again = module.loads(module.dumps(g))
    assert again.wrt == ("w1", "w2")
    check_mlp(again(*args), args)
    assert "def mlp_loss_grad" in again.source


@pytest.mark.parametrize("module", PICKLERS)
def test_value_and_grad_single_wrt_and_has_aux(module):
    args = data(1)
    vg = module.loads(module.dumps(srcdiff.value_and_grad(mlp_loss, wrt="w2")))
    value, dw2 = vg(*args)
    assert value == pytest.approx(mlp_loss(*args))
    assert isinstance(dw2, np.ndarray) and dw2.shape == args[1].shape  # one wrt: no tuple
    check_grad(mlp_loss, args, (dw2,), argnums=(1,))

    def with_aux(w1, w2, x, y):
        return mlp_loss(w1, w2, x, y), np.max(x)
    aux_grad = module.loads(module.dumps(srcdiff.grad(with_aux, has_aux=True))) \
        if module is cloudpickle else None  # a local function: only cloudpickle sends it
    if aux_grad is not None:
        dw1, aux = aux_grad(*args)
        assert aux == np.max(args[2])
        check_grad(mlp_loss, args, (dw1,), argnums=(0,))


@pytest.mark.parametrize("module", PICKLERS)
def test_decorated_function_and_method(module):
    args = data(2)
    again = module.loads(module.dumps(mlp_grad))
    assert again is mlp_grad if module is pickle else True  # pickle: by name, as a function
    check_mlp(again(*args), args)
    model = Model(0.7)
    dm = module.loads(module.dumps(srcdiff.grad(model.loss)))
    w, x = np.linspace(0.1, 1.0, 4), np.linspace(-1.0, 1.0, 4)
    check_grad(lambda w, x: model.loss(w, x), (w, x), (dm(w, x),), argnums=(0,))


# ----- in other processes -----

CELL = '''
import numpy as np

def cell_helper(z):
    return np.tanh(z) * z

def cell_loss(w, x):
    return np.sum(cell_helper(x @ w)) + 0.5 * np.sum(w ** 2)
'''


def notebook_function():
    """``cell_loss`` as IPython defines it: compiled from a cell whose lines are only in this
    process's ``linecache``, under a name that is no file."""
    filename = "<ipython-input-19-cell>"
    linecache.cache[filename] = (len(CELL), None, CELL.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    exec(compile(CELL, filename, "exec"), namespace)
    return namespace["cell_loss"]


def _call(payload, args):  # in the worker: unpickle what the parent sent, and call it
    return cloudpickle.loads(payload)(*args)


def _call_grad(args):
    return mlp_grad(*args)


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        yield executor


@needs_cloudpickle
def test_a_notebook_functions_gradient_runs_in_a_worker_process(pool):
    fn = notebook_function()
    rng = np.random.default_rng(3)
    args = (rng.normal(size=3), rng.normal(size=(6, 3)))
    payload = cloudpickle.dumps(srcdiff.grad(fn))
    got = pool.submit(_call, payload, args).result()  # the worker has no such cell
    check_grad(fn, args, (got,), argnums=(0,))


def test_gradients_in_a_process_pool_and_multiprocessing(pool):
    batches = [data(seed) for seed in range(4)]
    for args, grads in zip(batches, pool.map(_call_grad, batches)):
        check_mlp(grads, args)
    g = srcdiff.grad(mlp_loss, wrt=(0, 1))
    with multiprocessing.get_context("spawn").Pool(1) as mp_pool:
        results = mp_pool.starmap(g, batches[:2])  # the gradient object itself is sent
    for args, grads in zip(batches, results):
        check_mlp(grads, args)


SCRIPT = '''
import multiprocessing, pickle, sys
from concurrent.futures import ProcessPoolExecutor
import cloudpickle, numpy as np, srcdiff

def loss(w, x):
    return np.sum(np.exp(np.sin(x * w)))

@srcdiff.grad
def decorated(w, x):
    return np.sum(np.exp(np.sin(x * w)))

def call(g, w, x):
    return g(w, x)

if __name__ == "__main__":
    w, x = np.linspace(0.1, 0.9, 5), np.linspace(-1.0, 2.0, 5)
    g = srcdiff.grad(loss)
    g(w, x)  # called once here: compiled, and still picklable
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = [pool.submit(call, h, w, x).result() for h in (g, decorated)]
    sent = [cloudpickle.dumps(h) for h in (g, decorated)]  # for a process with another __main__
    sys.stdout.buffer.write(pickle.dumps((w, x, remote, sent)))
'''


@needs_cloudpickle
def test_a_scripts_main_function_travels_to_other_processes(tmp_path):
    """A spawned worker (multiprocessing re-imports the script as its __main__) and, with
    cloudpickle, a process whose __main__ is another one (this one, as for a Dask worker),
    where the script's file is gone."""
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    path.unlink()
    w, x, remote, sent = pickle.loads(result.stdout)
    here = [cloudpickle.loads(payload)(w, x) for payload in sent]
    for grad in remote + here:
        check_grad(lambda w, x: np.sum(np.exp(np.sin(x * w))), (w, x), (grad,), argnums=(0,))
