"""srcdiff benchmarks: gradients by srcdiff against a hand-written numpy gradient and other tools.

Run from the repository root:

    python benchmarks/run.py                 # all workloads, default repeats (~2-3 minutes)
    python benchmarks/run.py --quick         # smoke run, a few repeats (< 30 s)
    python benchmarks/run.py --only W2,W3 --repeats 500 --json medians.json

Every workload is timed in one process, round-robin: each repeat runs every tool once, in a
freshly shuffled order, so slow drifts of the machine (other jobs, CPU clocks) hit all tools
alike. A cell of the table is the median time of a tool divided by the median time of the
hand-written gradient (``hand``), so 1.00 is "as fast as a careful person" and 3.00 is three
times slower. Before anything is timed the hand gradient is checked against finite
differences (``srcdiff.testing.check_grad``) and every tool's gradient against the hand one.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import srcdiff
from srcdiff.testing import check_grad

try:  # optional tools: each row says "skipped" when one is missing
    import autograd
    import autograd.numpy as anp
except Exception as exc:  # pragma: no cover - depends on the environment
    autograd, anp, AUTOGRAD_MISSING = None, None, f"{type(exc).__name__}: {exc}"
else:
    AUTOGRAD_MISSING = None

try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # the float64 workloads stay float64
except Exception as exc:  # pragma: no cover - depends on the environment
    jax, jnp, JAX_MISSING = None, None, f"{type(exc).__name__}: {exc}"
else:
    JAX_MISSING = None

TOOLS = ("hand", "srcdiff.grad", "srcdiff.vag", "srcdiff.jit", "forward", "autograd", "jax",
         "jax.jit")
TOOL_HEADERS = {"srcdiff.vag": "srcdiff.value_and_grad", "jax": "jax eager"}

try:  # srcdiff.jit needs numba (the jit extra); its column says "skipped" without it
    import numba  # noqa: F401
except Exception as exc:  # pragma: no cover - depends on the environment
    NUMBA_MISSING = f"{type(exc).__name__}: {exc}"
else:
    NUMBA_MISSING = None
MIN_SAMPLE_S = 50e-6  # a sample times a batch of k calls lasting at least this long


# =============================================================================================
# Workloads. Each is a plain numpy function (what srcdiff differentiates; autograd and JAX get
# the very same code with `np` bound to autograd.numpy or jax.numpy) and a hand gradient.
# =============================================================================================

# ----- W1: 20 elementwise operations on 3 elements, then a sum (per-call overhead) -----


def w1_f(x):
    a = np.sin(x)                   # 1
    b = a * x                       # 2
    c = np.exp(0.1 * b)             # 3, 4
    d = np.tanh(c - x)              # 5, 6
    e = d / (1.0 + x * x)           # 7, 8, 9
    f = np.cos(e) * a               # 10, 11
    g = f + d                       # 12
    h = np.sqrt(g * g + 1.0)        # 13, 14, 15
    k = h - 0.5 * c                 # 16, 17
    m = np.log(k * k + 2.0)         # 18, 19, 20
    return np.sum(m)


def w1_hand(x):
    a = np.sin(x)
    c = np.exp(0.1 * (a * x))
    d = np.tanh(c - x)
    q = 1.0 + x * x
    e = d / q
    cos_e = np.cos(e)
    g = cos_e * a + d
    h = np.sqrt(g * g + 1.0)
    k = h - 0.5 * c
    # backward, from m = log(k*k + 2)
    dk = 2.0 * k / (k * k + 2.0)
    dg = dk * g / h
    dc = -0.5 * dk
    de = -dg * a * np.sin(e)
    da = dg * cos_e
    du = (dg + de / q) * (1.0 - d * d)       # u = c - x, d = tanh(u)
    dc += du
    db = 0.1 * c * dc                         # b = a * x
    da += db * x
    dx = db * a - du - 2.0 * x * de * e / q + da * np.cos(x)
    return (dx,)


def w1_args(rng, small=False):
    return (rng.uniform(-1.0, 1.0, size=3),)


# ----- W2: least squares, gradients w.r.t. w and the float b -----


def w2_f(w, b, x, y):
    return np.mean((x @ w + b - y) ** 2)


def w2_hand(w, b, x, y):
    g = (x @ w + (b - y)) * (2.0 / y.shape[0])
    return x.T @ g, float(np.sum(g))


def w2_args(rng, small=False):
    x = rng.normal(size=(64, 3))
    return rng.normal(size=3), 0.3, x, x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=64)


# ----- W3: tanh MLP with softmax cross-entropy, float32 -----


def w3_f(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(y * (z - lse), axis=1))


def w3_hand(W1, b1, W2, b2, x, y):
    """Needs one-hot rows in y (each sums to 1): then dloss/dlogits = (softmax - y) / batch."""
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    e = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    dlogits = e / np.sum(e, axis=1, keepdims=True)
    dlogits -= y
    dlogits *= 1.0 / x.shape[0]
    da = dlogits @ W2.T
    da *= 1.0 - h * h
    return x.T @ da, np.sum(da, axis=0), h.T @ dlogits, np.sum(dlogits, axis=0)


def w3_args(rng, small=False):
    batch, n_in, n_hidden, n_out = (6, 5, 7, 4) if small else (128, 64, 256, 10)
    dtype = np.float64 if small else np.float32
    x = rng.normal(size=(batch, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, size=batch)]
    W1 = rng.normal(size=(n_in, n_hidden)) / np.sqrt(n_in)
    b1 = 0.1 * rng.normal(size=n_hidden)
    W2 = rng.normal(size=(n_hidden, n_out)) / np.sqrt(n_hidden)
    b2 = 0.1 * rng.normal(size=n_out)
    return tuple(a.astype(dtype) for a in (W1, b1, W2, b2, x, y))


# ----- W4: a 50-step tanh RNN (a loop) -----


def w4_f(W, U, x, h0):
    h = h0
    for t in range(x.shape[0]):
        h = np.tanh(W @ h + U @ x[t])
    return np.sum(h)


def w4_hand(W, U, x, h0):
    steps = x.shape[0]
    hs = np.empty((steps + 1, h0.shape[0]))   # hs[t] is h before step t
    hs[0] = h0
    xu = x @ U.T                              # U @ x[t] for every t at once
    for t in range(steps):
        hs[t + 1] = np.tanh(W @ hs[t] + xu[t])
    da = np.empty((steps, h0.shape[0]))       # adjoints of the tanh arguments
    dh = np.ones(h0.shape[0])
    for t in range(steps - 1, -1, -1):
        da[t] = dh * (1.0 - hs[t + 1] ** 2)
        dh = W.T @ da[t]
    return da.T @ hs[:-1], da.T @ x


def w4_args(rng, small=False):
    steps, n_hidden, n_in = (5, 4, 3) if small else (50, 64, 64)  # issue #7: size 64
    return (rng.normal(size=(n_hidden, n_hidden)) * 0.9 / np.sqrt(n_hidden),
            rng.normal(size=(n_hidden, n_in)) / np.sqrt(n_in),
            rng.normal(size=(steps, n_in)), np.zeros(n_hidden))


# ----- W5: 10 elementwise operations on 10**6 elements (memory-bandwidth bound) -----


def w5_f(x):
    a = np.sin(x)              # 1
    b = a * x                  # 2
    c = np.exp(-b)             # 3, 4
    d = np.tanh(c + x)         # 5, 6
    e = d * d - a              # 7, 8
    return np.sum(e / (1.0 + c))  # 9, 10


def w5_hand(x):
    a = np.sin(x)
    c = np.exp(-(a * x))
    d = np.tanh(c + x)
    q = 1.0 + c
    de = 1.0 / q                               # d(sum)/de
    dc = (d * d - a) * de                      # d(sum)/dq, negated below
    dc /= -q
    du = (2.0 * d) * de                        # adjoint of u = c + x, through d = tanh(u)
    du *= 1.0 - d * d
    dc += du
    db = dc * c                                # b = a * x, c = exp(-b)
    db = -db
    dx = du + db * a
    dx += (db * x - de) * np.cos(x)            # da = db * x - de
    return (dx,)


def w5_args(rng, small=False):
    return (rng.uniform(-2.0, 2.0, size=20 if small else 10**6),)


# ----- W6: 200 steps of SGD on W2's loss (the timed unit is the whole loop) -----

W6_STEPS, W6_LR = 200, 0.01


def sgd(gradient, w, b, x, y, steps=W6_STEPS, lr=W6_LR):
    """Plain gradient descent; ``gradient(w, b, x, y)`` returns ``(dw, db)``."""
    for _ in range(steps):
        dw, db = gradient(w, b, x, y)
        w = w - lr * dw
        b = b - lr * db
    return w, b


def repeat_loss(loss, w, b, x, y, steps=W6_STEPS):
    """W6's `forward` column: the loss alone, called as often as SGD calls the gradient."""
    for _ in range(steps):
        out = loss(w, b, x, y)
    return out


def w6_args(rng, small=False):
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    return np.zeros(1), 0.0, x, 2.0 * x[:, 0]


# ----- the table of workloads -----


@dataclass
class Workload:
    name: str
    title: str
    f: Callable
    wrt: tuple
    hand: Callable
    make_args: Callable
    max_repeats: int = 10**9
    srcdiff_note: str | None = None          # set: srcdiff cannot differentiate f (yet)
    loop: bool = False                       # W6: tools are run inside sgd()
    notes: list = field(default_factory=list)


WORKLOADS = [
    Workload("W1", "20 elementwise ops, 3 float64, sum", w1_f, ("x",), w1_hand, w1_args),
    Workload("W2", "mean((x@w+b-y)**2), x 64x3, d/dw,db", w2_f, ("w", "b"), w2_hand, w2_args),
    Workload("W3", "tanh MLP 128x64-256-10 + softmax CE, f32", w3_f, ("W1", "b1", "W2", "b2"),
             w3_hand, w3_args),
    Workload("W4", "tanh RNN, 50 steps, 64 hidden", w4_f, ("W", "U"), w4_hand, w4_args,
             max_repeats=60),
    Workload("W5", "10 elementwise ops, 10**6 float64, sum", w5_f, ("x",), w5_hand, w5_args,
             max_repeats=30),
    Workload("W6", "200 SGD steps on W2's loss, x 4x1", w2_f, ("w", "b"), w2_hand, w6_args,
             max_repeats=40, loop=True),
]


# =============================================================================================
# Harness
# =============================================================================================


def with_numpy(f, module):
    """``f``'s own code with ``np`` bound to ``module`` (autograd.numpy, jax.numpy)."""
    return types.FunctionType(f.__code__, {**f.__globals__, "np": module}, f.__name__,
                              f.__defaults__, f.__closure__)


def fresh_copy(f):
    """A new function object with ``f``'s code: srcdiff's cache is per function object."""
    return types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                              f.__closure__)


def as_tuple(g):
    return g if isinstance(g, tuple) else (g,)


def assert_same_gradients(got, want, what, dtype):
    got, want = as_tuple(got), as_tuple(want)
    assert len(got) == len(want), f"{what}: {len(got)} gradients, expected {len(want)}"
    rtol = 2e-4 if dtype == np.float32 else 1e-8
    for i, (a, b) in enumerate(zip(got, want)):
        b = np.asarray(b, dtype=np.float64)
        atol = rtol * max(1e-30, float(np.max(np.abs(b))))
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=rtol, atol=atol,
                                   err_msg=f"{what}: gradient {i} differs from the hand gradient")


def check_hand(wl: Workload, rng) -> None:
    """The hand gradient against finite differences, in float64, on small inputs."""
    args = wl.make_args(rng, small=True)
    args = tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args)
    params = list(wl.f.__code__.co_varnames[:wl.f.__code__.co_argcount])
    argnums = [params.index(n) for n in wl.wrt]
    check_grad(wl.f, args, wl.hand(*args), argnums=argnums)


def check_sgd(gradient, hand_result, args):
    w, b = sgd(gradient, *args)
    np.testing.assert_allclose(np.asarray(w, dtype=float), hand_result[0], rtol=0, atol=1e-10)
    assert abs(float(b) - hand_result[1]) <= 1e-10, (float(b), hand_result[1])


def build_tools(wl: Workload, args) -> dict[str, Callable[[], object]]:
    """Zero-argument callables, one per tool, each checked against the hand gradient."""
    dtype = np.float32 if any(getattr(a, "dtype", None) == np.float32 for a in args) else np.float64
    params = list(wl.f.__code__.co_varnames[:wl.f.__code__.co_argcount])
    argnums = tuple(params.index(n) for n in wl.wrt)
    tools: dict[str, Callable[[], object]] = {}
    hand_result = sgd(wl.hand, *args) if wl.loop else None

    def unit(gradient, block=lambda r: r):
        if wl.loop:
            return lambda: block(sgd(gradient, *args))
        return lambda: block(gradient(*args))

    hand_grads = wl.hand(*args)
    tools["hand"] = unit(wl.hand)
    if wl.loop:
        tools["forward"] = lambda: repeat_loss(wl.f, *args)
    else:
        tools["forward"] = unit(wl.f)

    # srcdiff: built once; the first call compiles, so call it before timing.
    if wl.srcdiff_note is None:
        grad_fn = srcdiff.grad(wl.f, wrt=wl.wrt)
        vag_fn = srcdiff.value_and_grad(wl.f, wrt=wl.wrt)
        if wl.loop:
            check_sgd(grad_fn, hand_result, args)
            vag_grads = lambda *a: vag_fn(*a)[1]  # noqa: E731 - the loop wants gradients only
            check_sgd(vag_grads, hand_result, args)
            tools["srcdiff.grad"] = unit(grad_fn)
            tools["srcdiff.vag"] = unit(vag_grads)
        else:
            for call in ("first call", "cached call"):  # the first call compiles; later ones
                assert_same_gradients(grad_fn(*args), hand_grads,  # take the timed path
                                      f"srcdiff.grad, {call}", dtype)
                value, grads = vag_fn(*args)
                assert_same_gradients(grads, hand_grads, f"srcdiff.value_and_grad, {call}", dtype)
                np.testing.assert_allclose(value, wl.f(*args),
                                           rtol=1e-5 if dtype == np.float32 else 1e-12)
            tools["srcdiff.grad"] = unit(grad_fn)
            tools["srcdiff.vag"] = unit(vag_fn)
        if NUMBA_MISSING is None:
            tools["srcdiff.jit"] = jit_tool(wl, args, hand_grads, hand_result, dtype, unit)
    else:
        try:
            srcdiff.grad(wl.f, wrt=wl.wrt).source
        except srcdiff.SrcdiffError as exc:
            first = str(exc).strip().splitlines()[0]
            wl.notes.append(f"srcdiff raised {type(exc).__name__} as expected: {first}")
        else:
            raise AssertionError(f"{wl.name}: srcdiff was expected to reject {wl.f.__name__}")

    if autograd is not None:
        ag_grad = autograd.grad(with_numpy(wl.f, anp), argnum=argnums if len(argnums) > 1 else argnums[0])
        if wl.loop:
            check_sgd(ag_grad, hand_result, args)
        else:
            assert_same_gradients(ag_grad(*args), hand_grads, "autograd", dtype)
        tools["autograd"] = unit(ag_grad)

    if jax is not None:
        jf = with_numpy(wl.f, jnp)
        jargs = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        eager = jax.grad(jf, argnums=argnums if len(argnums) > 1 else argnums[0])
        jitted = jax.jit(eager)
        block = jax.block_until_ready
        for name, gradient in (("jax", eager), ("jax.jit", jitted)):
            if wl.loop:
                check_sgd(gradient, hand_result, jargs)
                tools[name] = (lambda g: lambda: block(sgd(g, *jargs)))(gradient)
            else:
                assert_same_gradients(block(gradient(*jargs)), hand_grads, name, dtype)
                tools[name] = (lambda g: lambda: block(g(*jargs)))(gradient)
    for tool in tools.values():  # warm-up: compiles, caches, first-touch of memory
        tool()
    return tools


def jit_tool(wl: Workload, args, hand_grads, hand_result, dtype, unit):
    """srcdiff.jit of srcdiff.grad: the first call (compiled, or loaded from numba's disk
    cache) timed and noted, then checked against the hand gradient like the others."""
    jitted = srcdiff.jit(srcdiff.grad(wl.f, wrt=wl.wrt))
    t0 = time.perf_counter()
    first = jitted(*args)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jitted(*args)
    second_s = time.perf_counter() - t0
    kind = next(iter(jitted._kinds.values()))  # noqa: SLF001  the kernel these arguments run
    stats = kind[4].stats  # numba's cache counters
    source = ("loaded from the disk cache" if sum(stats.cache_hits.values()) else "compiled"
              if sum(stats.cache_misses.values()) else "compiled before, in this process")
    loop = kind[2] is not None and srcdiff.compiled.function._pick(None, kind, args) is kind[2]
    wl.notes.append(f"srcdiff.jit first call {first_s:.2f} s ({source}), second call "
                    f"{second_s * 1e6:.0f} µs; runs {'one loop over the elements' if loop else 'the array kernel'}")
    if wl.loop:
        check_sgd(jitted, hand_result, args)
    else:
        assert_same_gradients(first, hand_grads, "srcdiff.jit, first call", dtype)
        assert_same_gradients(jitted(*args), hand_grads, "srcdiff.jit, cached call", dtype)
    return unit(jitted)


def time_workload(tools, repeats, budget_s, rng) -> tuple[dict, dict, int]:
    """Round-robin medians: each repeat runs every tool once (a batch of k calls), shuffled."""
    batch, one = {}, {}
    for name, tool in tools.items():
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            tool()
            best = min(best, time.perf_counter() - t0)
        batch[name] = max(1, math.ceil(MIN_SAMPLE_S / max(best, 1e-9)))
        one[name] = best
    # Tools shorter than 1 ms get one untimed call right before each sample, so the sample
    # finds its code and data in the CPU caches whatever tool ran before it (otherwise tools
    # timed in small batches pay more for the previous tool's cache pollution than others).
    warm_up = {name: one[name] < 1e-3 for name in tools}
    per_round = sum((batch[n] + warm_up[n]) * one[n] for n in tools)
    repeats = max(min(repeats, 5), min(repeats, int(budget_s / max(per_round, 1e-9))))
    samples = {name: [] for name in tools}
    order = list(tools)
    gc.collect()
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            tool, k = tools[name], batch[name]
            if warm_up[name]:
                tool()
            t0 = time.perf_counter()
            for _ in range(k):
                tool()
            samples[name].append((time.perf_counter() - t0) / k)
    stats = {}
    for name, s in samples.items():
        q = statistics.quantiles(s, n=4) if len(s) > 1 else [s[0]] * 3
        stats[name] = {"median_s": statistics.median(s), "p25_s": q[0], "p75_s": q[2],
                       "batch": batch[name], "samples": len(s)}
    return stats, batch, repeats


def transform_cost(runs: int) -> dict:
    """Time to transform W3's loss on a fresh function object, and a second (cached) call."""
    wrt = ("W1", "b1", "W2", "b2")
    first, second = [], []
    for _ in range(runs):
        f = fresh_copy(w3_f)
        t0 = time.perf_counter()
        g = srcdiff.grad(f, wrt=wrt)
        g.source
        t1 = time.perf_counter()
        g.source
        t2 = time.perf_counter()
        first.append(t1 - t0)
        second.append(t2 - t1)
    return {"first_ms": 1e3 * statistics.median(first), "second_us": 1e6 * statistics.median(second),
            "runs": runs}


def versions() -> dict:
    info = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "srcdiff": getattr(srcdiff, "__version__", "?"),
        "autograd": getattr(autograd, "__version__", None) if autograd else f"missing ({AUTOGRAD_MISSING})",
        "jax": jax.__version__ if jax else f"missing ({JAX_MISSING})",
        "numba": numba.__version__ if NUMBA_MISSING is None else f"missing ({NUMBA_MISSING})",
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    if autograd is not None and info["autograd"] is None:
        try:
            from importlib.metadata import version
            info["autograd"] = version("autograd")
        except Exception:
            info["autograd"] = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["machine"] += " / " + line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def format_table(results: dict, workloads) -> str:
    columns = [t for t in TOOLS if t != "hand"]
    headers = ["workload", "hand µs", "hand"] + [TOOL_HEADERS.get(t, t) for t in columns]
    rows = []
    for wl in workloads:
        r = results[wl.name]
        hand = r["tools"]["hand"]["median_s"]
        row = [f"{wl.name} {wl.title}", f"{hand * 1e6:.1f}", "1.00"]
        for t in columns:
            if t in r["tools"]:
                row.append(f"{r['tools'][t]['median_s'] / hand:.2f}")
            elif t.startswith("srcdiff") and wl.srcdiff_note:
                row.append("n/s")
            else:
                row.append("skipped")
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="samples per tool (default 200)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few repeats, small budget")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W2,W3")
    parser.add_argument("--json", metavar="PATH", help="write the raw medians to PATH")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)

    repeats = min(opts.repeats, 7) if opts.quick else opts.repeats
    budget_s = 1.5 if opts.quick else 20.0  # per workload: repeats shrink to fit (min 5)
    wanted = {w.strip().upper() for w in opts.only.split(",") if w.strip()}
    unknown = wanted - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from "
                     f"{[w.name for w in WORKLOADS]}")
    workloads = [w for w in WORKLOADS if not wanted or w.name in wanted]

    info = versions()
    print("srcdiff benchmarks")
    for key, value in info.items():
        print(f"  {key:9s} {value}")
    if AUTOGRAD_MISSING:
        print(f"  note: autograd not importable, its column is skipped ({AUTOGRAD_MISSING})")
    if JAX_MISSING:
        print(f"  note: jax not importable, its columns are skipped ({JAX_MISSING})")
    if NUMBA_MISSING:
        print(f"  note: numba not importable, srcdiff.jit is skipped ({NUMBA_MISSING})")
    print()

    rng = np.random.default_rng(opts.seed)
    order_rng = random.Random(opts.seed)
    results: dict = {}
    t_start = time.perf_counter()
    for wl in workloads:
        t0 = time.perf_counter()
        check_hand(wl, rng)
        args = wl.make_args(rng)
        tools = build_tools(wl, args)
        stats, batch, used = time_workload(tools, min(repeats, wl.max_repeats), budget_s, order_rng)
        results[wl.name] = {"title": wl.title, "repeats": used, "tools": stats, "notes": wl.notes}
        print(f"{wl.name}: {used} repeats, batches {batch}, {time.perf_counter() - t0:.1f} s")
        for note in wl.notes:
            print(f"  {note}")

    print()
    print("median time / median time of the hand-written gradient (lower is faster); "
          "n/s = not supported by srcdiff")
    print(format_table(results, workloads))

    transform = None
    if not wanted or "W3" in wanted:
        transform = transform_cost(5 if opts.quick else 20)
        print()
        print(f"transform of W3's loss (fresh function, srcdiff.grad(...).source): "
              f"{transform['first_ms']:.1f} ms median of {transform['runs']}; "
              f"second .source: {transform['second_us']:.1f} µs")
    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s")

    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump({"versions": info, "repeats_requested": repeats, "workloads": results,
                       "transform": transform}, fh, indent=2)
        print(f"wrote {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
