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
import copy
import os
import sys
import tempfile
import time

import numpy as np

from .forward import soak
from .programs import _load, check_program, make_args


def check_second(prog) -> tuple[str, str]:
    """``(kind, detail)``: skip, ok, refused, wrong or crash."""
    import srcdiff
    from srcdiff.testing import numeric_vjp

    if prog.output != "scalar" or prog.expect != "ok" or prog.call == "vjp":
        return "skip", "not a scalar gradient program"
    if "stop_gradient" in prog.source or "no_grad" in prog.source:
        # a value held constant is constant for every order (as in JAX and PyTorch), but the
        # first gradient still reads it, and finite differences of |grad|^2 move it
        return "skip", "a stop_gradient or no_grad value (constant for every order)"
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(),
                                                      "srcdiff-second-failures"))
    args = parser.parse_args(argv)
    counts = soak(args.n, args.out, args.seed, report_every=100, check=check_second)
    return 1 if counts["wrong"] or counts["crash"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
