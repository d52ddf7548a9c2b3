"""srcdiff's gradient of an MLP on CuPy, next to a hand-written CuPy gradient.

Run from the repository root on a machine with a CUDA GPU and CuPy
(``pip install -e ".[cuda12]"``):

    python benchmarks/gpu_mlp.py                   # 100 interleaved repeats
    python benchmarks/gpu_mlp.py --repeats 300 --json gpu_mlp.json

The model: ``x`` 1024×1024 (batch 1024), one tanh hidden layer of 1024, 10 outputs, softmax
cross-entropy with one-hot labels, float32; gradients with respect to ``W1, b1, W2, b2``.
The loss is benchmarks/run.py's W3 (``np.`` code, run on the GPU through numpy's dispatch).

What is timed: one gradient call, from the call until the GPU has finished
(``cupy.cuda.Stream.null.synchronize()`` after it), wall clock. Each repeat runs every
tool once in a freshly shuffled order (interleaved), and a cell is the median over the
repeats. Before timing, srcdiff's gradients are checked against the hand-written ones, and
the hand-written ones against numpy on the host.

Without CuPy or without a GPU it exits at once, saying which.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time

import numpy as np

import srcdiff

BATCH, N_IN, N_HIDDEN, N_OUT = 1024, 1024, 1024, 10


def mlp_loss(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (z - lse), axis=1))


def mlp_hand(W1, b1, W2, b2, x, y):
    """A careful hand-written gradient (one-hot y: dloss/dlogits = (softmax - y) / batch).
    The same code runs on numpy and CuPy arrays."""
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    e = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    dlogits = e / np.sum(e, axis=1, keepdims=True)
    dlogits -= y
    dlogits *= 1.0 / x.shape[0]
    da = dlogits @ W2.T
    da *= 1.0 - h * h
    return x.T @ da, np.sum(da, axis=0), h.T @ dlogits, np.sum(dlogits, axis=0)


def make_args(seed=0):
    """Host (numpy) arguments, float32."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, N_IN))
    y = np.eye(N_OUT)[rng.integers(0, N_OUT, size=BATCH)]
    W1 = rng.normal(size=(N_IN, N_HIDDEN)) / np.sqrt(N_IN)
    b1 = 0.1 * rng.normal(size=N_HIDDEN)
    W2 = rng.normal(size=(N_HIDDEN, N_OUT)) / np.sqrt(N_HIDDEN)
    b2 = 0.1 * rng.normal(size=N_OUT)
    return tuple(a.astype(np.float32) for a in (W1, b1, W2, b2, x, y))


def load_cupy():
    """CuPy and a description of GPU 0, or exit saying why there is nothing to run on."""
    try:
        import cupy
    except ImportError:
        sys.exit("gpu_mlp: CuPy is not installed, so there is no GPU to benchmark on; "
                 "install it with pip install -e '.[cuda12]' (or '.[cuda13]') on a CUDA machine")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver or no device
        sys.exit(f"gpu_mlp: CuPy is installed but finds no CUDA GPU ({type(exc).__name__}: {exc})")
    if count == 0:
        sys.exit("gpu_mlp: CuPy is installed but finds no CUDA GPU")
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return cupy, name


def check(cupy, tools, gpu_args, host_args):
    """Every tool's gradients against the hand-written CuPy ones; those against numpy."""
    want = [cupy.asnumpy(g) for g in tools["hand"](*gpu_args)]
    host = mlp_hand(*host_args)
    for w, h, name in zip(want, host, ("W1", "b1", "W2", "b2")):
        np.testing.assert_allclose(w, h, rtol=1e-3, atol=1e-6,
                                   err_msg=f"hand-written CuPy gradient of {name} vs numpy")
    for tool, fn in tools.items():
        grads = fn(*gpu_args)
        if tool == "srcdiff.value_and_grad":
            grads = grads[1]
        if tool == "forward":
            continue
        for g, w, name, a in zip(grads, want, ("W1", "b1", "W2", "b2"), gpu_args):
            assert isinstance(g, cupy.ndarray), f"{tool}: {name} is a {type(g).__name__}"
            assert g.dtype == a.dtype == np.float32 and g.shape == a.shape, (tool, name)
            np.testing.assert_allclose(cupy.asnumpy(g), w, rtol=1e-4, atol=1e-6,
                                       err_msg=f"{tool}: gradient of {name} vs hand-written")


def time_tools(cupy, tools, args, repeats, warmup=5):
    sync = cupy.cuda.Stream.null.synchronize
    names = list(tools)
    for name in names:
        for _ in range(warmup):
            tools[name](*args)
    sync()
    samples = {name: [] for name in names}
    for _ in range(repeats):
        random.shuffle(names)
        for name in names:
            sync()
            start = time.perf_counter()
            tools[name](*args)
            sync()
            samples[name].append(time.perf_counter() - start)
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--json", help="write the medians and quartiles here")
    args = parser.parse_args(argv)

    cupy, gpu = load_cupy()
    host_args = make_args()
    gpu_args = tuple(cupy.asarray(a) for a in host_args)
    wrt = ("W1", "b1", "W2", "b2")
    tools = {
        "hand": mlp_hand,
        "srcdiff.grad": srcdiff.grad(mlp_loss, wrt=wrt),
        "srcdiff.value_and_grad": srcdiff.value_and_grad(mlp_loss, wrt=wrt),
        "forward": mlp_loss,
    }
    check(cupy, tools, gpu_args, host_args)

    samples = time_tools(cupy, tools, gpu_args, args.repeats)
    hand = statistics.median(samples["hand"])
    print(f"GPU: {gpu}; CuPy {cupy.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}")
    print(f"MLP {BATCH}x{N_IN} -> {N_HIDDEN} (tanh) -> {N_OUT}, softmax CE, float32; "
          f"gradient w.r.t. W1, b1, W2, b2; median of {args.repeats} interleaved repeats\n")
    print(f"{'tool':<24}{'median ms':>11}{'q1 ms':>9}{'q3 ms':>9}{'vs hand':>9}")
    report = {"gpu": gpu, "cupy": cupy.__version__, "numpy": np.__version__,
              "repeats": args.repeats, "tools": {}}
    for name in tools:
        s = sorted(samples[name])
        q1, med, q3 = (statistics.quantiles(s, n=4) if len(s) > 1 else (s[0], s[0], s[0]))
        med = statistics.median(s)
        print(f"{name:<24}{med * 1e3:>11.3f}{q1 * 1e3:>9.3f}{q3 * 1e3:>9.3f}{med / hand:>9.2f}")
        report["tools"][name] = {"median_s": med, "q1_s": q1, "q3_s": q3, "vs_hand": med / hand}
    print("\ngradients checked: srcdiff == hand-written CuPy (rtol 1e-4), "
          "hand-written CuPy == numpy on the host (rtol 1e-3)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
