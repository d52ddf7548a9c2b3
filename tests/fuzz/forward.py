"""Forward mode on the fuzzer's programs: ``srcdiff.jvp`` held to reverse mode.

Each generated program that reverse mode differentiates correctly (``check_program`` passes it
against the finite-difference oracle) is run once more through ``srcdiff.jvp`` along a random
tangent of every floating argument; the tangent must satisfy ``<u, J v> = <J^T u, v>`` with
the reverse-mode pullback of a random cotangent ``u``, and the value must be Python's. A
``SrcdiffError`` from forward mode is a refusal (counted, never a failure); a wrong tangent,
a wrong value or any other exception is a failure, written to the output folder.

    python -m tests.fuzz.forward --n 1000 --seed 5 --out /tmp/forward-failures
"""

from __future__ import annotations

import argparse
import collections
import copy
import os
import sys
import tempfile
import time

import numpy as np
import optree
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hseed

from .programs import _cotangent, _load, _same_value, check_program, make_args, programs


def _random_tangent(a, rng):
    from srcdiff.runtime import trees

    def leaf(v):
        if isinstance(v, float):
            return float(rng.normal())
        if getattr(v, "dtype", None) is not None and v.dtype.kind == "f":
            return rng.normal(size=np.shape(v)).astype(v.dtype)
        return v

    trees.register_dataclasses(a)
    floats = [leaf for leaf in optree.tree_leaves(a, namespace=trees.NAMESPACE)
              if isinstance(leaf, float) or getattr(leaf, "dtype", np.dtype(int)).kind == "f"]
    if not floats:
        return None
    return optree.tree_map(leaf, a, namespace=trees.NAMESPACE)


def _vdot(a, b) -> float:
    from srcdiff.runtime import trees

    total = 0.0
    for u, v in zip(optree.tree_leaves(a, namespace=trees.NAMESPACE),
                    optree.tree_leaves(b, namespace=trees.NAMESPACE)):
        if u is None or v is None or getattr(np.asarray(v), "dtype", None).kind not in "fc":
            continue
        total += float(np.sum(np.asarray(u, dtype=np.float64) * np.asarray(v, dtype=np.float64)))
    return total


def check_forward(prog) -> tuple[str, str]:
    """``(kind, detail)``: ``skip`` (reverse mode did not pass it, or its output carries an
    auxiliary value), ``ok``, ``refused``, ``wrong`` or ``crash``."""
    import srcdiff

    if prog.output == "aux" or prog.expect != "ok":
        return "skip", "an auxiliary output or a side effect to refuse"
    result = check_program(prog)
    if result.kind != "ok":
        return "skip", f"reverse mode: {result.kind}"
    stem = f"fuzzfwd_{os.getpid()}_{time.perf_counter_ns()}"
    try:
        clean = _load(prog.source, stem)
        f = getattr(clean, prog.main)
        _, call_args = make_args(prog)
        call_args = tuple(a.astype(np.float64) if getattr(a, "dtype", None) == np.float32 else a
                          for a in call_args)
        rng = np.random.default_rng(prog.seed + 7)
        tangents = [_random_tangent(a, rng) for a in call_args]
        try:
            out, tangent = srcdiff.jvp(f, copy.deepcopy(call_args), tangents)
        except srcdiff.SrcdiffError as exc:
            return "refused", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a crash is a failure
            return "crash", f"{type(exc).__name__}: {exc}"
        expected = f(*copy.deepcopy(call_args))
        if not _same_value(out, expected):
            return "wrong", f"value {out!r} != Python's {expected!r}"
        u = _cotangent(expected, rng)
        try:  # vjp differentiates every floating argument, check_program only its wrt
            _, pullback = srcdiff.vjp(f, *copy.deepcopy(call_args))
            grads = pullback(u)
        except srcdiff.SrcdiffError as exc:
            return "skip", f"reverse mode refuses vjp: {type(exc).__name__}"
        lhs = _vdot(u, tangent)
        rhs = sum(_vdot(g, t) for g, t in zip(grads, tangents) if t is not None and g is not None)
        if not np.isclose(lhs, rhs, rtol=1e-7, atol=1e-9):
            return "wrong", f"<u, jvp(v)> = {lhs!r} but <vjp(u), v> = {rhs!r}"
        return "ok", ""
    finally:
        sys.modules.pop(stem, None)


def soak(n: int, out_dir: str, seed: int | None = None, report_every: int = 250,
         check=None):
    """Run ``check`` (``check_forward`` by default: ``prog -> (kind, detail)``) on ``n``
    generated programs, counting kinds; a wrong or crashing program is written to ``out_dir``.
    tests/fuzz/second.py runs its own check through this too."""
    check = check or check_forward
    counts, refusals, skips = collections.Counter(), collections.Counter(), collections.Counter()
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck),
              phases=[__import__("hypothesis").Phase.generate])
    @given(programs())
    def run(prog):
        kind, detail = check(prog)
        counts[kind] += 1
        if kind == "skip":
            skips[detail] += 1
        if kind == "refused":
            refusals[detail.split(":")[1].strip()[:70] if ":" in detail else detail] += 1
        if kind in ("wrong", "crash"):
            with open(os.path.join(out_dir, f"{kind}_{os.getpid()}_{sum(counts.values())}.py"),
                      "w") as fh:
                fh.write("".join(f"# {line}\n" for line in detail.splitlines()[:40]))
                fh.write(f"# {repr(prog).splitlines()[-1]}\n{prog.source}")
        total = sum(counts.values())
        if total % report_every == 0:
            print(f"[{time.time() - t0:.0f}s] {total}: {dict(counts)}", flush=True)

    if seed is not None:
        run = hseed(seed)(run)
    from .determinism import no_local_constants
    with no_local_constants():
        run()
    print(f"done in {time.time() - t0:.0f}s: {dict(counts)}", flush=True)
    print(f"  skipped: {dict(skips.most_common(8))}")
    for reason, k in refusals.most_common(15):
        print(f"  refused {k}: {reason}")
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(),
                                                      "srcdiff-forward-failures"))
    args = parser.parse_args(argv)
    counts = soak(args.n, args.out, args.seed)
    return 1 if counts["wrong"] or counts["crash"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
