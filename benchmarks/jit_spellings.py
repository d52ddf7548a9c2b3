"""srcdiff.jit on the spelling matrix (benchmarks/spellings.py, issue #16): for every
spelling of every workload, the compiled gradient against the hand-written one, or the
reason srcdiff.jit refuses it.

Run from the repository root (numba needed: pip install "srcdiff[jit]"):

    python benchmarks/jit_spellings.py            # every workload, a few minutes (compiles)
    python benchmarks/jit_spellings.py --only lsq,mlp --repeats 50

Each gradient is checked against the hand gradient before it is timed (a mismatch stops the
run). A cell is median(srcdiff.jit) / median(hand), with srcdiff.grad's (the numpy path) in
parentheses; timing is round-robin in one process, BLAS on one thread (as spellings.py).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one BLAS thread: set before numpy loads its BLAS
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import spellings  # noqa: E402
import srcdiff  # noqa: E402
from run import assert_same_gradients, sgd  # noqa: E402


def cell(wl, label, fn, args, hand_grads, dtype, repeats, rng) -> str:
    """``jit/hand (grad/hand)`` for one spelling, or ``refused: <why>``."""
    numpy_path = srcdiff.grad(fn, wrt=wl.wrt)
    compiled = srcdiff.jit(srcdiff.grad(fn, wrt=wl.wrt))
    try:
        got = sgd(compiled, *args) if wl.loop else compiled(*args)
    except srcdiff.SrcdiffError as exc:
        return "refused: " + str(exc).splitlines()[0][:90]
    if wl.loop:
        want = sgd(wl.hand, *args)
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-10)
    else:
        assert_same_gradients(got, hand_grads, f"{wl.name} / {label}: srcdiff.jit", dtype)
    tools = {name: (lambda g: (lambda: sgd(g, *args)) if wl.loop else (lambda: g(*args)))(g)
             for name, g in (("hand", wl.hand), ("grad", numpy_path), ("jit", compiled))}
    for tool in tools.values():
        tool()
    batch = {}
    for name, tool in tools.items():
        t0 = time.perf_counter()
        tool()
        batch[name] = max(1, int(50e-6 / max(time.perf_counter() - t0, 1e-9)) + 1)
    samples = {name: [] for name in tools}
    order = list(tools)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            t0 = time.perf_counter()
            for _ in range(batch[name]):
                tools[name]()
            samples[name].append((time.perf_counter() - t0) / batch[name])
    med = {name: statistics.median(s) for name, s in samples.items()}
    return f"{med['jit'] / med['hand']:.2f} ({med['grad'] / med['hand']:.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. lsq,mlp")
    parser.add_argument("--repeats", type=int, default=30)
    opts = parser.parse_args(argv)
    wanted = {w.strip() for w in opts.only.split(",") if w.strip()}
    rng, order_rng = np.random.default_rng(0), random.Random(0)
    print("srcdiff.jit / hand (srcdiff.grad / hand), medians, one BLAS thread")
    for wl in spellings.WORKLOADS:
        if wanted and wl.name not in wanted:
            continue
        if wl.needs:
            try:
                __import__(wl.needs)
            except ImportError:
                print(f"{wl.name}: skipped ({wl.needs} missing)")
                continue
        args = wl.make_args(rng)
        dtype = np.float32 if any(getattr(a, "dtype", None) == np.float32 for a in args) else np.float64
        hand_grads = None if wl.loop else wl.hand(*args)
        print(f"{wl.name}: {wl.title}")
        for label, fn in wl.spellings.items():
            t0 = time.perf_counter()
            result = cell(wl, label, fn, args, hand_grads, dtype, opts.repeats, order_rng)
            print(f"  {label:40s} {result}   [{time.perf_counter() - t0:.1f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
