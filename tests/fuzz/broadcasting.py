"""Broadcasting programs: random elementwise, masked, reduced, indexed and matrix-product
expressions (and loops over a list of states or a range) over arguments of small shapes with
lengths of 1, each called with several patterns of shapes, against finite differences.

The shape patterns (``srcdiff/dims.py``) make ``grad`` compile one variant per pattern of its
arguments' shapes; this generator draws the shapes each call gets, so one gradient runs
several of its variants. It found O32 (``tests/fuzz/findings.md``).

    python -m tests.fuzz.broadcasting --n 300 --seed 1 [--in-place]

checks ``grad`` against finite differences and ``value_and_grad`` against both (its value
against the function's); ``--in-place`` runs every call through the variant for large
arrays. It prints the failing programs with their shapes and generated source, then the
counts: ``ok``,
``invalid`` (numpy itself refuses the shapes, or the value is not finite), ``wrong``, ``error``
(srcdiff raised where numpy did not).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import tempfile
import warnings

import numpy as np

import srcdiff
from srcdiff.testing import check_grad

SHAPES = [(3,), (2, 3), (1, 3), (2, 1), (1,), (), (3, 1), (1, 1), (2, 3, 1), (1, 2, 3)]
UNARY = ["np.tanh({})", "np.sin({})", "({}) * ({} > 0.1)", "np.where({0} > 0, {0}, 0.3 * {0})",
         "np.maximum({}, 0.2)", "({}).T", "np.exp(0.3 * {})", "({})[0]", "({})[:, None]",
         "({})[None]", "np.swapaxes({}, 0, -1)", "np.where({0} > 0.5, {0}, 1.0)",
         "({}) * (({}) < 0.8)"]
BINARY = ["({}) + ({})", "({}) * ({})", "({}) - ({})", "({}) / (1.5 + ({}) ** 2)",
          "({}) @ ({})", "np.dot({}, {})", "np.maximum({}, {})"]
REDUCE = ["np.sum({}, axis=-1, keepdims=True)", "np.mean({}, axis=0, keepdims=True)",
          "({}).sum(axis=-1, keepdims=True)", "np.max({}, axis=-1, keepdims=True)",
          "np.sum({}, axis=0)", "({}).mean(-1)", "np.sum({}, -1, keepdims=True)"]


def expr(rng, names, depth):
    """A random expression over ``names``, ``depth`` operations deep at most."""
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(names)
    kind = rng.random()
    if kind < 0.35:
        t = rng.choice(UNARY)
        e = expr(rng, names, depth - 1)
        return t.format(e, e) if t.count("{}") == 2 else t.format(e)
    if kind < 0.8:
        return rng.choice(BINARY).format(expr(rng, names, depth - 1), expr(rng, names, depth - 1))
    return rng.choice(REDUCE).format(expr(rng, names, depth - 1))


def program(rng, n):
    """The source of ``f(a0, ..., a{n-1})``: a few temporaries, maybe a loop, a sum."""
    names = [f"a{i}" for i in range(n)]
    lines = [f"def f({', '.join(names)}):"]
    for k in range(rng.randint(1, 3)):
        lines.append(f"    t{k} = {expr(rng, names, 3)}")
        names = names + [f"t{k}"]
    if rng.random() < 0.3:  # a loop over a list of states
        lines += [f"    hs = [{rng.choice(names)}]",
                  f"    for i in range({rng.randint(1, 3)}):",
                  f"        hs.append(np.tanh(hs[-1] * 0.5 + {rng.choice(names)}))"]
        names = names + [rng.choice(["hs[-1]", "np.stack(hs)", "hs[0]"])]
    if rng.random() < 0.3:  # a loop over a range with indexing
        a = rng.choice(names)
        lines += [f"    h = {rng.choice(names)}",
                  f"    for i in range(np.shape({a})[0] if np.ndim({a}) else 1):",
                  f"        h = np.sin(h * 0.7 + ({a})[i] if np.ndim({a}) else h)"]
        names = names + ["h"]
    lines.append(f"    return np.sum({expr(rng, names, 2)})")
    return "\n".join(lines) + "\n"


def load(src, i, folder):
    """The function ``f`` of ``src``, from a file in ``folder`` (srcdiff reads the source)."""
    path = os.path.join(folder, f"p{i}.py")
    open(path, "w").write("import numpy as np\n" + src)
    spec = importlib.util.spec_from_file_location(f"p{i}", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.f


def run(n, seed, show=print) -> dict:
    """Draw and check ``n`` programs; the counts of each outcome."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="srcdiff-broadcasting-") as folder:
        return _run(n, rng, show, folder)


def _run(n, rng, show, folder) -> dict:
    stats = dict(ok=0, invalid=0, wrong=0, error=0)
    for i in range(n):
        nargs = rng.randint(1, 3)
        src = program(rng, nargs)
        f = load(src, i, folder)
        g = srcdiff.grad(f, wrt=tuple(range(nargs)))
        vg = srcdiff.value_and_grad(f, wrt=tuple(range(nargs)))
        done = []  # (args, gradients) of the calls that passed: called again at the end
        for trial in range(4):
            shapes = [rng.choice(SHAPES) for _ in range(nargs)]
            nrng = np.random.default_rng(rng.randint(0, 10**6))
            args = tuple(nrng.uniform(0.3, 1.2, s) if s else float(nrng.uniform(0.3, 1.2)) for s in shapes)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    out = f(*args)
                    if not np.isfinite(out) or np.ndim(out):
                        raise ValueError
            except Exception:
                stats["invalid"] += 1
                continue
            try:
                grads = g(*args)
                value, again = vg(*args)
            except Exception as exc:
                stats["error"] += 1
                show(f"ERROR {shapes} {type(exc).__name__}: {str(exc)[:200]}\n{src}")
                continue
            try:
                check_grad(f, args, grads, argnums=tuple(range(nargs)), rtol=1e-4, atol=1e-5)
                for gi, a in zip(grads, args):
                    assert np.shape(gi) == np.shape(a)
                np.testing.assert_allclose(value, out, rtol=1e-12)  # value_and_grad's own
                for a, b in zip(grads, again):
                    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
                stats["ok"] += 1
                done.append((args, grads))
            except AssertionError as exc:
                stats["wrong"] += 1
                show(f"WRONG {shapes} {str(exc)[:300]}\n{src}\ngrad:\n{g.source}\n"
                     f"value_and_grad:\n{vg.source}")
        for args, grads in done:  # again, now through the per-call wrapper's lookup of the
            for a, b in zip(grads, g(*args)):  # variant compiled for those shapes
                if not np.allclose(a, b, rtol=1e-12, atol=1e-14):
                    stats["wrong"] += 1
                    show(f"WRONG on a second call {[np.shape(x) for x in args]}\n{src}\n{g.source}")
                    break
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-place", action="store_true",
                        help="every call runs the variant for large arrays (runtime/inplace.py)")
    args = parser.parse_args(argv)
    if args.in_place:
        from srcdiff.runtime import inplace

        inplace.LARGE = 0
    stats = run(args.n, args.seed)
    print(stats)
    return 1 if stats["wrong"] or stats["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
