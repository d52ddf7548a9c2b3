"""How srcdiff's gradients of long loops scale with the number of steps.

    python benchmarks/loops.py            # n = 1 000, 10 000, 100 000 (about 20 s)
    python benchmarks/loops.py --quick    # n = 1 000, 4 000

For each loop and each n, the median over a few repeats of srcdiff's gradient, the plain
Python loop (the forward function alone) and a hand-written numpy gradient of the same
loop (checked by finite differences first), with the time per step. A per-step time that
stays flat as n grows is linear scaling; one that grows with n is quadratic.

- ``scalar``:  ``s = s * w + 1.0`` on floats (the loop machinery alone);
- ``read``:    ``s = s + np.tanh(x[t] * w) * x[t]`` (an indexing adjoint per step, into dx);
- ``fill``:    ``out[t] = np.tanh(x[t] * w)`` then ``np.sum(out * out)`` (an array write per
  step: each write copies ``out``, so this one is still quadratic in time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import srcdiff  # noqa: E402
from srcdiff.testing import check_grad  # noqa: E402


def scalar(w, n):
    s = 0.0
    for t in range(n):
        s = s * w + 1.0
    return s


def scalar_hand(w, n):
    s, ds = 0.0, 0.0  # forward mode is the simplest exact hand gradient of a scalar recurrence
    for t in range(n):
        s, ds = s * w + 1.0, ds * w + s
    return ds


def read(x, w):
    s = 0.0
    for t in range(x.shape[0]):
        s = s + np.tanh(x[t] * w) * x[t]
    return s


def read_hand(x, w):
    th = np.tanh(x * w)
    dth = 1.0 - th * th
    return th + x * dth * w, np.sum(x * dth * x)


def fill(x, w):
    out = np.zeros(x.shape[0])
    for t in range(x.shape[0]):
        out[t] = np.tanh(x[t] * w)
    return np.sum(out * out)


def fill_hand(x, w):
    th = np.tanh(x * w)
    g = 2.0 * th * (1.0 - th * th)
    return g * w, np.sum(g * x)


def _median(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = (1000, 4000) if args.quick else (1000, 10_000, 100_000)
    rng = np.random.default_rng(0)

    x0, w0 = rng.normal(size=5), 0.7
    check_grad(lambda w: scalar(w, 6), (0.9,), (scalar_hand(0.9, 6),))
    check_grad(read, (x0, w0), read_hand(x0, w0))
    check_grad(fill, (x0, w0), fill_hand(x0, w0))

    g_scalar = srcdiff.grad(scalar, wrt=0)
    g_read = srcdiff.grad(read, wrt=(0, 1))
    g_fill = srcdiff.grad(fill, wrt=(0, 1))
    print(f"{'loop':8s} {'n':>8s} {'srcdiff':>10s} {'per step':>10s} {'forward':>10s} "
          f"{'hand':>10s} {'srcdiff/forward':>16s}")
    for name, grad, fwd, hand, make in (
            ("scalar", g_scalar, scalar, scalar_hand, lambda n: (0.999, n)),
            ("read", g_read, read, read_hand, lambda n: (rng.normal(size=n), 0.7)),
            ("fill", g_fill, fill, fill_hand, lambda n: (rng.normal(size=n), 0.7))):
        for n in sizes:
            a = make(n)
            repeats = 1 if name == "fill" and n >= 100_000 else 3 if n >= 100_000 else 5
            t_grad = _median(lambda: grad(*a), repeats)
            t_fwd = _median(lambda: fwd(*a), repeats)
            t_hand = _median(lambda: hand(*a), repeats)
            print(f"{name:8s} {n:8d} {t_grad * 1e3:8.1f}ms {t_grad / n * 1e6:8.2f}us "
                  f"{t_fwd * 1e3:8.1f}ms {t_hand * 1e3:8.2f}ms {t_grad / t_fwd:16.1f}")


if __name__ == "__main__":
    main()
