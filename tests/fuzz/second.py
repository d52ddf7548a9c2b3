"""Grad of grad on the fuzzer's programs: ``|∇_x f|²`` differentiated, held to finite
differences of the first derivative.

For each generated program ``f`` that reverse mode differentiates correctly (``check_program``
passes it) with a scalar output and a float64 array argument ``x`` in its ``wrt``, the module
gets ``g(<f's parameters>) = np.sum(grad(f, wrt=x)(...) ** 2)``; ``srcdiff.grad(g, wrt=x)``
(reverse mode over a call of a gradient: a Hessian-vector product) is compared with central
differences of ``g`` computed through first-order gradients. A ``SrcdiffError`` is a refusal,
never a failure; a wrong value or any other exception is written to the output folder.

    python -m tests.fuzz.second --n 500 --seed 7 --out /tmp/second-failures
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
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hseed

from .programs import _load, check_program, make_args, programs


def check_second(prog) -> tuple[str, str]:
    """``(kind, detail)``: skip, ok, refused, wrong or crash."""
    import srcdiff
    from srcdiff.testing import numeric_vjp

    if prog.output != "scalar" or prog.expect != "ok" or prog.call == "vjp":
        return "skip", "not a scalar gradient program"
    names = [p.name for p in prog.params]
    args, call_args = make_args(prog)
    arrays = [n for n in prog.wrt_names
              if getattr(call_args[names.index(n)], "dtype", None) == np.float64
              and np.ndim(call_args[names.index(n)]) >= 1]
    if not arrays or any(p.kind == "default" for p in prog.params):
        return "skip", "no float64 array in wrt"
    if check_program(prog).kind != "ok":
        return "skip", "reverse mode does not pass it"
    x = arrays[0]
    params = ", ".join(names)
    source = (prog.source + f"\n\n_first = srcdiff.grad({prog.main}, wrt={x!r})\n\n\n"
              f"def _norm({params}):\n    return np.sum(_first({params}) ** 2)\n")
    stem = f"fuzzsecond_{os.getpid()}_{time.perf_counter_ns()}"
    try:
        module = _load(source, stem)
        g = module._norm
        p = names.index(x)
        try:
            got = srcdiff.grad(g, wrt=x)(*copy.deepcopy(call_args))
        except srcdiff.SrcdiffError as exc:
            return "refused", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a crash is a failure
            return "crash", f"{type(exc).__name__}: {exc}"
        expected = numeric_vjp(g, list(copy.deepcopy(call_args)), p)
        if np.shape(got) != np.shape(expected) or not np.allclose(got, expected, rtol=1e-4,
                                                                   atol=1e-5):
            return "wrong", f"grad of |grad|^2: {got!r}, finite differences {expected!r}"
        return "ok", ""
    finally:
        sys.modules.pop(stem, None)


def soak(n: int, out_dir: str, seed: int | None = None, report_every: int = 100):
    counts, refusals = collections.Counter(), collections.Counter()
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck),
              phases=[__import__("hypothesis").Phase.generate])
    @given(programs())
    def run(prog):
        kind, detail = check_second(prog)
        counts[kind] += 1
        if kind == "refused":
            refusals[detail[:90]] += 1
        if kind in ("wrong", "crash"):
            with open(os.path.join(out_dir, f"{kind}_{os.getpid()}_{sum(counts.values())}.py"),
                      "w") as fh:
                fh.write("".join(f"# {line}\n" for line in detail.splitlines()[:40]))
                fh.write(f"# {repr(prog).splitlines()[-1]}\n{prog.source}")
        if sum(counts.values()) % report_every == 0:
            print(f"[{time.time() - t0:.0f}s] {sum(counts.values())}: {dict(counts)}", flush=True)

    if seed is not None:
        run = hseed(seed)(run)
    from .determinism import no_local_constants
    with no_local_constants():
        run()
    print(f"done in {time.time() - t0:.0f}s: {dict(counts)}", flush=True)
    for reason, k in refusals.most_common(10):
        print(f"  refused {k}: {reason}")
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(),
                                                      "srcdiff-second-failures"))
    args = parser.parse_args(argv)
    counts = soak(args.n, args.out, args.seed)
    return 1 if counts["wrong"] or counts["crash"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
