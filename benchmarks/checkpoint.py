"""Memory and time of a checkpointed loop (``# srcdiff: checkpoint``) against its plain tape.

    python benchmarks/checkpoint.py                 # n = 10 000 steps of a 300-vector RNN cell
    python benchmarks/checkpoint.py --n 2000 --size 100
    OPENBLAS_NUM_THREADS=1 python benchmarks/checkpoint.py   # steadier times on a busy machine

For each schedule, the peak of traced memory (tracemalloc: numpy reports its arrays to it)
during one gradient call, and the median time of a few calls. The gradients of every
schedule are checked equal to the plain tape's first (to 1e-12).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import srcdiff  # noqa: E402

SOURCE = """
import numpy as np

def loss(h, W, b):
    DIRECTIVE
    for t in range(N):
        h = np.tanh(W @ h + b) * 0.5 + h * 0.5
    return np.sum(h * h)
"""

SCHEDULES = [("tape (no directive)", ""), ("every=10", "# srcdiff: checkpoint every=10"),
             ("every=1000", "# srcdiff: checkpoint every=1000"),
             ("every=⌈√n⌉ (no every=)", "# srcdiff: checkpoint")]


def _function(directive: str, n: int):
    text = re.sub(r"\bN\b", str(n), SOURCE.replace("DIRECTIVE", directive))
    path = os.path.join(tempfile.mkdtemp(), f"checkpoint_bench_{abs(hash(directive))}.py")
    with open(path, "w") as f:
        f.write(text)
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    h = rng.standard_normal(args.size)
    W = rng.standard_normal((args.size, args.size)) / np.sqrt(args.size)
    b = rng.standard_normal(args.size) * 0.1
    step = h.nbytes
    print(f"n = {args.n} steps, state {args.size} float64 ({step / 1e3:.0f} kB)")
    print(f"{'schedule':<26}{'peak MB':>10}{'per step':>12}{'time s':>10}   (per step: peak / n, in states)")
    first = None
    for label, directive in SCHEDULES:
        grad = srcdiff.grad(_function(directive, args.n), wrt=(0, 1, 2))
        got = grad(h, W, b)
        if first is None:
            first = got
        for g, w in zip(got, first):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
        tracemalloc.start()
        grad(h, W, b)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            grad(h, W, b)
            times.append(time.perf_counter() - start)
        print(f"{label:<26}{peak / 1e6:>10.1f}{peak / args.n / step:>10.2f} x{statistics.median(times):>10.2f}")


if __name__ == "__main__":
    main()
