"""Linear regression on the GPU: PyTorch's ``.to(device)``, with srcdiff and CuPy.

The loss is plain numpy code. Given CuPy arrays, numpy's dispatch protocols run every
``np.`` call on the GPU, and the gradient srcdiff generates does too: CuPy arrays in,
CuPy gradients out, nothing copied to the host until you ask (``.get()``).

Run: python examples/gpu_linear_regression.py          (CuPy when a GPU is present)
     python examples/gpu_linear_regression.py --cpu    (numpy, whatever is installed)

Install CuPy with srcdiff's extra for your CUDA: ``pip install "srcdiff[cuda12]"``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import srcdiff


def loss(w, b, x, y):
    return np.mean((x @ w + b - y) ** 2)


def pick_device(force_cpu: bool = False):
    """``(xp, description)``: CuPy when it imports and sees a GPU, else numpy, and why."""
    if force_cpu:
        return np, "numpy (CPU), as asked with --cpu"
    try:
        import cupy
    except ImportError:
        return np, "numpy (CPU): CuPy is not installed (pip install 'srcdiff[cuda12]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver, no device: fall back, saying why
        return np, f"numpy (CPU): CuPy found no GPU ({type(exc).__name__}: {exc})"
    if count == 0:
        return np, "numpy (CPU): CuPy found no GPU"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return cupy, f"CuPy {cupy.__version__} on GPU 0 ({name})"


def to_host(a):
    """A numpy copy of ``a`` (CuPy arrays have ``.get()``)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def fit(xp, steps: int = 100, lr: float = 0.01):
    """Gradient descent on ``loss``; returns ``(w, b, first loss, last loss)`` on ``xp``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = x @ np.array([[2.0], [-1.0], [0.5]]) + 0.3 + 0.01 * rng.normal(size=(100, 1))
    w, b = np.zeros((3, 1)), np.zeros(1)
    # .to(device): one explicit copy of each array to the GPU (a no-op for numpy)
    x, y, w, b = (xp.asarray(a) for a in (x, y, w, b))

    dloss = srcdiff.value_and_grad(loss, wrt=("w", "b"))
    first = None
    for _ in range(steps):
        value, (dw, db) = dloss(w, b, x, y)
        first = value if first is None else first
        w, b = w - lr * dw, b - lr * db
    return w, b, first, loss(w, b, x, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="use numpy even if a GPU is present")
    args = parser.parse_args(argv)
    xp, device = pick_device(args.cpu)
    print("device :", device)
    start = time.perf_counter()
    w, b, first, last = fit(xp)
    if xp is not np:
        xp.cuda.Device().synchronize()
    seconds = time.perf_counter() - start
    print(f"arrays : {type(w).__module__}.{type(w).__name__} (gradients came back the same type)")
    print(f"loss   : {float(first):.4f} -> {float(last):.4f} after 100 steps of lr 0.01 "
          f"({seconds:.2f} s, including the one-off transform)")
    print("w      :", np.round(to_host(w).ravel(), 4))
    print("b      :", np.round(to_host(b), 4))


if __name__ == "__main__":
    main()
