"""Random recurrent cells: gates cut from one array, a bias, steps over a sequence.

The program fuzzer's shapes (2, 3 and (2, 3)) have no lengths that are multiples of one
another, and its arrays are smaller than a page, so it never reaches what srcdiff does for an
LSTM-like loop under a pattern of shapes: slices and ``np.split`` pieces proved by multiples
(``transforms/shapes.py``, ``tiles``, ``splits``), a tape that keeps a blank of the array the
gates were cut from (``tapes``), the terms of ``dW`` copied into rows (``rt.Terms``), the
bias's adjoint summed once from them (``rt.terms_sum``), the forward step's sums written in
place (``augment``). This generator writes such cells, each from independent choices:

* the number of gates (2-4) and how they are cut: literal multiples of ``n``, bounds in
  names, ``np.split`` with the axis by keyword, positionally or as -1;
* each gate's function (tanh, a hand-written sigmoid, a helper ``sigmoid``, sin, a Gaussian);
* each product's spelling (``@``, ``np.dot``, ``x.dot``, ``np.matmul``);
* the bias (none, ``+ b``, ``+ b[None, :]``), the loop (``range`` and ``xs[t]``, or over
  ``xs``), the state update, the loss (the last state, or every state, summed through a list);
* sizes: batches of 1-16 rows, hidden sizes 1-32, 1-4 steps (arrays under and over a page).

Each cell's ``srcdiff.grad`` (and ``value_and_grad``) is held to central differences
(``srcdiff.testing.check_grad``) and its value to the function's. A ``SrcdiffError`` is a
refusal; a wrong value or any other exception is written to the output folder.

    python -m tests.fuzz.cells --n 300 --seed 1 --out /tmp/cells
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import traceback

import numpy as np

GATES = ["np.tanh({})", "1.0 / (1.0 + np.exp(-{}))", "sigmoid({})", "np.sin({}) * 0.5",
         "np.exp(-{0} * {0})"]
PRODUCTS = ["{a} @ {b}", "np.dot({a}, {b})", "{a}.dot({b})", "np.matmul({a}, {b})"]


def cell_source(rng: np.random.Generator) -> tuple[str, dict]:
    """The source of one random cell ``cell(W, U, b, xs, h0)`` and the choices made."""
    k = int(rng.integers(2, 5))
    cut = str(rng.choice(["slices", "named", "split", "split_positional", "split_negative"]))
    bias = str(rng.choice(["none", "plain", "row"]))
    loop = str(rng.choice(["range", "iterate"]))
    loss = str(rng.choice(["last", "every"]))
    px, ph = (str(rng.choice(PRODUCTS)) for _ in range(2))
    lines = ["import numpy as np", "", "", "def sigmoid(z):", "    return 1.0 / (1.0 + np.exp(-z))",
             "", "", "def cell(W, U, b, xs, h0):", "    n = h0.shape[1]", "    h, c = h0, h0 * 0.5"]
    if loss == "every":
        lines.append("    hs = []")
    if loop == "range":
        lines += ["    for t in range(xs.shape[0]):", "        x_t = xs[t]"]
    else:
        lines.append("    for x_t in xs:")
    z = px.format(a="x_t", b="W") + " + " + ph.format(a="h", b="U")
    z += {"none": "", "plain": " + b", "row": " + b[None, :]"}[bias]
    lines.append(f"        z = {z}")
    names = [f"g{j}" for j in range(k)]
    if cut == "slices":
        pieces = ["z[:, :n]"] + [f"z[:, {j} * n:{j + 1} * n]" if j > 1 else "z[:, n:2 * n]"
                                 for j in range(1, k - 1)] + [f"z[:, {k - 1} * n:]" if k > 2 else "z[:, n:]"]
    elif cut == "named":
        lines += [f"        e{j} = {j} * n" for j in range(1, k)]
        pieces = ["z[:, :n]"] + [f"z[:, e{j}:e{j + 1}]" for j in range(1, k - 1)] + [f"z[:, e{k - 1}:]"]
    else:
        axis = {"split": "axis=1", "split_positional": "1", "split_negative": "axis=-1"}[cut]
        lines.append(f"        {', '.join(f'p{j}' for j in range(k))} = np.split(z, {k}, {axis})")
        pieces = [f"p{j}" for j in range(k)]
    for name, piece in zip(names, pieces):
        lines.append(f"        {name} = {GATES[int(rng.integers(len(GATES)))].format(piece)}")
    rest = " * ".join(names[1:])
    lines.append(f"        c = {names[0]} * c + {rest}" if rng.random() < 0.7 else
                 f"        c = {rest} + c * {names[0]}")
    lines.append("        h = np.tanh(c) * " + ("g1" if rng.random() < 0.5 else "0.5"))
    if loss == "every":
        lines += ["        hs.append(h)", "    return np.sum(np.stack(hs)) + np.sum(h * h)"]
    else:
        lines.append("    return np.sum(h * h)")
    choices = dict(k=k, cut=cut, bias=bias, loop=loop, loss=loss, products=(px, ph))
    return "\n".join(lines) + "\n", choices


def cell_args(rng: np.random.Generator, k: int):
    batch = int(rng.choice([1, 2, 3, 16]))
    n = int(rng.choice([1, 2, 3, 8, 32]))
    n_in, steps = int(rng.choice([2, 5])), int(rng.integers(1, 5))
    return (rng.normal(size=(n_in, k * n)) / np.sqrt(n_in), rng.normal(size=(n, k * n)) / np.sqrt(n),
            0.1 * rng.normal(size=k * n), rng.normal(size=(steps, batch, n_in)),
            0.1 * rng.normal(size=(batch, n)))


# what the generated derivative of a cell may show, counted over a soak (the paths reached)
MARKERS = {"blank": "rt.blank_like(", "rows": "rt.Terms(", "bias sum": "rt.terms_sum(",
           "joined": "rt.slices_joined(", "split": "rt.split(", "in place": " += "}


def check_cell(source: str, args, path: str, reached: dict | None = None) -> tuple[str, str]:
    """``(kind, detail)``: ok, refused, wrong or crash; ``reached`` counts ``MARKERS``."""
    import srcdiff
    from srcdiff.testing import check_grad

    with open(path, "w") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = module.cell
    try:
        grad = srcdiff.grad(fn, wrt=(0, 1, 2))
        for _ in range(2):  # the general call, then the variant written for the pattern
            check_grad(fn, args, grad(*args), argnums=(0, 1, 2))
        value, again = srcdiff.value_and_grad(fn, wrt=(0, 1, 2))(*args)
        np.testing.assert_allclose(value, fn(*args), rtol=1e-12)
        check_grad(fn, args, again, argnums=(0, 1, 2))
    except srcdiff.SrcdiffError as exc:
        return "refused", str(exc).splitlines()[0]
    except AssertionError as exc:
        return "wrong", f"{exc}\n\n{grad.source}"
    except Exception:  # noqa: BLE001 (a crash is a finding, whatever it is)
        return "crash", traceback.format_exc()
    if reached is not None:
        for name, marker in MARKERS.items():
            reached[name] = reached.get(name, 0) + (marker in grad.source)
    return "ok", ""


def soak(n: int, seed: int, out: str | None, reached: dict | None = None) -> dict:
    counts: dict[str, int] = {}
    work = tempfile.mkdtemp(prefix="srcdiff-cells-")
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        source, choices = cell_source(rng)
        args = cell_args(rng, choices["k"])
        kind, detail = check_cell(source, args, os.path.join(work, f"cell_{seed}_{i}.py"), reached)
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("wrong", "crash") and out:
            os.makedirs(out, exist_ok=True)
            shapes = ", ".join(str(np.shape(a)) for a in args)
            with open(os.path.join(out, f"{kind}_{seed}_{i}.py"), "w") as fh:
                fh.write(f"# {kind}: seed {seed}, cell {i}, argument shapes {shapes}\n")
                fh.write("".join(f"# {line}\n" for line in detail.splitlines()[:60]))
                fh.write(source)
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="where to write each wrong or crashing cell")
    ns = parser.parse_args(argv)
    reached: dict[str, int] = {}
    counts = soak(ns.n, ns.seed, ns.out, reached)
    print(f"cells {ns.n}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("derivatives showing: " + ", ".join(f"{k} {reached.get(k, 0)}" for k in MARKERS))
    return 1 if counts.get("wrong") or counts.get("crash") else 0


if __name__ == "__main__":
    sys.exit(main())
