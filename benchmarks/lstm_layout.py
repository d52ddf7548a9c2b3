"""Issue #16: how much of the LSTM cell's ratio is the hand gradient's layout?

Run from the repository root:

    python benchmarks/lstm_layout.py            # about 20 s
    python benchmarks/lstm_layout.py --repeats 100

``spellings.py``'s LSTM hand gradient (``lstm_hand``) works transposed: one column per
example, so that each gate is a contiguous block of rows. The user's functions keep the
(batch, 4n) rows and cut the gates as column slices, and srcdiff differentiates the
operations as written. Here a third gradient, ``lstm_hand_rows``, takes the hand
gradient's careful steps (the input products of every step at once, preallocated gates,
cells and ``tanh(c)`` written in place, one product per weight gradient) in the user's
layout; it is checked against finite differences and against ``lstm_hand`` first. Timing
is ``run.py``'s (round-robin, shuffled, medians), BLAS on one thread; each tool is reported
as its time over ``lstm_hand``'s and over ``lstm_hand_rows``'s. The result depends on the
machine's load: see benchmarks/README.md (issue #16's thirteenth pass).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one BLAS thread: set before numpy loads its BLAS
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import srcdiff  # noqa: E402
from srcdiff.testing import check_grad  # noqa: E402


def _load(name: str):
    """A sibling benchmark module (benchmarks/ is not a package), once per process."""
    if f"srcdiff_benchmarks_{name}" in sys.modules:  # (the tests load spellings.py too)
        return sys.modules[f"srcdiff_benchmarks_{name}"]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"srcdiff_benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sp = _load("spellings")
bench = sp.bench  # run.py, as spellings.py loaded it


def lstm_hand_rows(Wx, Wh, b, xs, h0, c0):
    """``lstm_hand``'s steps in the user's layout: (batch, 4n) rows, gates as column slices."""
    steps, batch, n = xs.shape[0], h0.shape[0], h0.shape[1]
    act = xs @ Wx                                   # (steps, batch, 4n): z, then the gates
    act += b
    hs = np.empty((steps + 1, batch, n))
    cs = np.empty((steps + 1, batch, n))
    tanh_c = np.empty((steps, batch, n))
    hs[0], cs[0] = h0, c0
    for t in range(steps):
        z = act[t]
        z += hs[t] @ Wh
        sig = z[:, :3 * n]
        np.negative(sig, out=sig)
        np.exp(sig, out=sig)
        sig += 1.0
        np.reciprocal(sig, out=sig)
        np.tanh(z[:, 3 * n:], out=z[:, 3 * n:])
        i, f, o, g = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
        np.multiply(f, cs[t], out=cs[t + 1])
        cs[t + 1] += i * g
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
    dz = np.empty_like(act)
    dh = 2.0 * hs[steps]
    dc = np.zeros((batch, n))
    for t in range(steps - 1, -1, -1):
        z, d = act[t], dz[t]
        i, f, o, g = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
        di, df, do, dg = d[:, :n], d[:, n:2 * n], d[:, 2 * n:3 * n], d[:, 3 * n:]
        np.multiply(dh, tanh_c[t], out=do)
        do *= o * (1.0 - o)
        dh *= o
        dh *= 1.0 - tanh_c[t] * tanh_c[t]
        dc += dh
        np.multiply(dc, g, out=di)
        di *= i * (1.0 - i)
        np.multiply(dc, cs[t], out=df)
        df *= f * (1.0 - f)
        np.multiply(dc, i, out=dg)
        dg *= 1.0 - g * g
        dc *= f
        dh = d @ Wh.T
    rows = dz.reshape(-1, dz.shape[-1])
    return (xs.reshape(-1, xs.shape[-1]).T @ rows, hs[:-1].reshape(-1, n).T @ rows,
            rows.sum(axis=0))


def check(rng) -> None:
    """The row-layout gradient against finite differences (small) and ``lstm_hand`` (timed
    size); every srcdiff spelling against ``lstm_hand`` at the timed size."""
    small = sp.lstm_args(rng, small=True)
    check_grad(sp.lstm_slices, small, lstm_hand_rows(*small), argnums=(0, 1, 2))
    args = sp.lstm_args(rng)
    want = sp.lstm_hand(*args)
    for got in [lstm_hand_rows(*args)] + [srcdiff.grad(f, wrt=(0, 1, 2))(*args)
                                          for f in (sp.lstm_slices, sp.lstm_split)]:
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of timing at most")
    options = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    check(rng)
    args = sp.lstm_args(rng)
    tools = {"hand (transposed)": lambda: sp.lstm_hand(*args),
             "hand (user's layout)": lambda: lstm_hand_rows(*args)}
    for label, f in (("slices", sp.lstm_slices), ("np.split", sp.lstm_split)):
        gradient = srcdiff.grad(f, wrt=(0, 1, 2))
        gradient(*args)
        tools[f"srcdiff.grad ({label})"] = lambda gradient=gradient: gradient(*args)
    stats, _, repeats = bench.time_workload(tools, options.repeats, options.budget,
                                            random.Random(0))
    medians = {name: s["median_s"] for name, s in stats.items()}
    hand, rows = medians["hand (transposed)"], medians["hand (user's layout)"]
    print(f"LSTM, 10 steps, batch 16, 32 -> 64: {repeats} repeats, medians")
    print("| tool | µs | / hand (transposed) | / hand (user's layout) |")
    print("| --- | ---: | ---: | ---: |")
    for name, t in medians.items():
        print(f"| {name} | {t * 1e6:.1f} | {t / hand:.3f} | {t / rows:.3f} |")


if __name__ == "__main__":
    main()
