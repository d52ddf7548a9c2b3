"""Hessian-vector products: srcdiff.hvp against a hand-written numpy product and JAX's
``jvp(grad(f))`` (eager and ``jax.jit``), side by side in one process.

Workloads:

- ``logistic``: L2-regularised logistic regression, 2000 rows × 50 features (the hand
  product is ``Xᵀ (p (1 - p) ⊙ X v) / n + 0.02 v``, one pass over X each way);
- ``mlp``: a two-layer tanh network's mean squared error in its first weight matrix
  (64 rows, 32 → 64 → 1; the hand product written out with the chain rule twice).

Each tool is timed round-robin (each repeat runs every tool once, in a shuffled order) and
the table reports medians and the ratio to the hand-written product; every tool's result
is checked against the hand product first. Single-threaded BLAS is what the repo's other
benchmarks use: run with ``OMP_NUM_THREADS=1`` for the same conditions.

Run: python benchmarks/second_order.py [--repeats N]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

import srcdiff


def logistic(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.01 * np.sum(w * w)


def logistic_hand(w, X, y, v):
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return X.T @ (p * (1.0 - p) * (X @ v)) / len(y) + 0.02 * v


def mlp(W1, W2, X, y):
    h = np.tanh(X @ W1)
    pred = h @ W2
    return np.mean((pred - y) ** 2)


def mlp_hand(W1, W2, X, y, V):
    n = y.size
    a = X @ W1
    h = np.tanh(a)
    s = 1.0 - h * h                  # tanh'
    r = h @ W2 - y                   # residual
    da = X @ V                       # the tangent of a along V
    dh = s * da
    dr = dh @ W2
    # gradient: X^T [ (2/n) (r W2^T) * s ]; its directional derivative:
    g_h = (2.0 / n) * (r @ W2.T)
    dg_h = (2.0 / n) * (dr @ W2.T)
    ds = -2.0 * h * dh
    return X.T @ (dg_h * s + g_h * ds)


def workloads(rng):
    n, d = 2000, 50
    X = rng.normal(size=(n, d))
    y = (rng.uniform(size=n) < 0.5).astype(float)
    w = rng.normal(size=d) * 0.1
    yield "logistic", logistic, logistic_hand, (w, X, y), rng.normal(size=d)
    Xm = rng.normal(size=(64, 32))
    W1, W2 = rng.normal(size=(32, 64)) * 0.2, rng.normal(size=(64, 1)) * 0.2
    ym = rng.normal(size=(64, 1))
    yield "mlp", mlp, mlp_hand, (W1, W2, Xm, ym), rng.normal(size=W1.shape)


def tools(f, hand, args, v):
    found = {"hand numpy": lambda: hand(*args, v),
             "srcdiff.hvp": lambda: srcdiff.hvp(f, args[0], v, *args[1:])}
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jf = _with_numpy(f, jnp)
        rest = tuple(jnp.asarray(a) for a in args[1:])

        def product(x, v):
            return jax.jvp(lambda x: jax.grad(jf)(x, *rest), (x,), (v,))[1]

        compiled = jax.jit(product)
        jx, jv = jnp.asarray(args[0]), jnp.asarray(v)
        found["jax jvp(grad) eager"] = lambda: np.asarray(product(jx, jv))
        found["jax jvp(grad) jit"] = lambda: np.asarray(compiled(jx, jv).block_until_ready())
    except ImportError:
        pass
    return found


def _with_numpy(f, module):
    import types

    return types.FunctionType(f.__code__, {**f.__globals__, "np": module}, f.__name__)


def time_tools(found, repeats, rng):
    names = list(found)
    for name in names:  # warm: compile, cache
        found[name]()
    samples = {name: [] for name in names}
    for _ in range(repeats):
        random.Random(int(rng.integers(1 << 30))).shuffle(names)
        for name in names:
            start = time.perf_counter()
            found[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: float(np.median(s)) for name, s in samples.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    options = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"| workload | tool | median µs | × hand |\n| --- | --- | --- | --- |")
    for name, f, hand, args, v in workloads(rng):
        found = tools(f, hand, args, v)
        want = hand(*args, v)
        for tool, run in found.items():
            np.testing.assert_allclose(run(), want, rtol=1e-8, atol=1e-10, err_msg=tool)
        medians = time_tools(found, options.repeats, rng)
        for tool, t in medians.items():
            print(f"| {name} | {tool} | {t * 1e6:.1f} | {t / medians['hand numpy']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
