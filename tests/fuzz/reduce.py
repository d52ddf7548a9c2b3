"""Shrink a failing program the soak saved to a few lines, for tests/fuzz/findings.md.

    python -m tests.fuzz.reduce /tmp/srcdiff-fuzz-failures/wrong_gradient_123_4.py

The soak (``python -m tests.fuzz.programs``) writes each failing program with its call and its
arguments in comments. This deletes chunks of lines (then single lines, then whole helper
functions) for as long as the program still compiles and fails the same way, and prints the
result with srcdiff's answer and the finite-difference one. A failure is "the same" when it has
the same kind: a ``SrcdiffError`` of the same class whose message starts the same, an internal
crash of the same exception class, or a gradient or value that disagrees with Python's.
"""

from __future__ import annotations

import argparse
import collections
import copy
import importlib.util
import itertools
import os
import re
import sys
import tempfile

import numpy as np

_DIR = tempfile.mkdtemp(prefix="srcdiff-reduce-")
_count = itertools.count()


def _load(text: str):
    stem = f"reduce_{next(_count)}"
    path = os.path.join(_DIR, stem + ".py")
    with open(path, "w") as fh:
        fh.write(text)
    spec = importlib.util.spec_from_file_location(stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module


def parse(path: str):
    """(source, call text, arguments text) of a program the soak saved."""
    text = open(path).read()
    comments = [ln[2:] for ln in text.splitlines() if ln.startswith("# ")]
    call = next(c for c in comments if c.startswith("srcdiff."))
    args = next(c for c in comments if c.startswith("# arguments") or c.startswith("arguments"))
    args = args.split(": ", 1)[1]
    source = "\n".join(ln for ln in text.splitlines() if not ln.startswith("# "))
    return source.lstrip("\n") + "\n", call, args


def outcome(source: str, call: str, args: str) -> tuple[str, str]:
    """How srcdiff fares on ``source``: ("ok", ""), ("error", class + message start),
    ("crash", class), ("wrong", detail) or ("invalid", why)."""
    import srcdiff
    from srcdiff.api import InternalError
    from srcdiff.testing import check_vjp

    from .programs import Weights
    try:
        tree = compile(source, "<reduce>", "exec", flags=0x400)  # ast.PyCF_ONLY_AST
        if any(type(n).__name__ == "FunctionDef" and not any(
                type(m).__name__ == "Return" for m in __import__("ast").walk(n)) for n in tree.body):
            return "invalid", "a function without a return"
        module = _load(source)
    except Exception as exc:
        return "invalid", repr(exc)
    ns = {"np": np, "srcdiff": srcdiff, "Weights": Weights, **vars(module)}
    try:
        values = eval(f"dict({args})", ns)
    except Exception as exc:
        return "invalid", repr(exc)
    names = list(values)
    fn = getattr(module, "f", None)
    if fn is None:
        return "invalid", "no f"
    try:
        ref = fn(*copy.deepcopy(list(values.values())))
    except Exception as exc:
        return "invalid", f"Python: {exc!r}"
    ns.update(values)
    try:
        got = eval(call.replace("srcdiff.grad(", "srcdiff.value_and_grad(", 1)
                   if "has_aux" not in call and "srcdiff.grad(" in call else call, ns)
    except InternalError as exc:
        return "crash", type(exc.__cause__ or exc).__name__
    except srcdiff.SrcdiffError as exc:
        return "error", f"{type(exc).__name__}: {str(exc).split(chr(39))[0]}"
    except Exception as exc:
        return "crash", type(exc).__name__
    # compare every gradient with central differences
    import ast
    node = ast.parse(call, mode="eval").body.func  # srcdiff.grad(f, wrt=...)(args)
    kw = {k.arg: ast.literal_eval(k.value) for k in getattr(node, "keywords", [])}
    aux = kw.get("has_aux", False)
    floats = [i for i, v in enumerate(values.values())
              if isinstance(v, (float, np.ndarray, np.floating))]
    if "wrt" not in kw:  # vjp: (out, pullback), checked for one cotangent
        from .programs import _cotangent, _weighted_sum
        out, pullback = got
        ct = _cotangent(ref, np.random.default_rng(1))
        grads = pullback(ct)
        checks = [(k, grads[k]) for k in floats]
        weigh = lambda out: _weighted_sum(out, ct)  # noqa: E731
    else:
        wrt = kw["wrt"]
        value, grads = got if not aux else (None, got[0])
        one = not isinstance(wrt, tuple)
        wrt = (wrt,) if one else wrt
        grads = (grads,) if one else grads
        idx = [w if isinstance(w, int) else names.index(w) for w in wrt]
        checks = [(k, g) for k, g in zip(idx, grads) if k in floats]
        weigh = lambda out: out[0] if aux else out  # noqa: E731
        if value is not None and not np.allclose(value, ref[0] if aux else ref):
            return "wrong", f"value {value!r} != {ref!r}"
    for k, g in checks:
        x = list(values.values())[k]

        def scalar(v, k=k):
            vals = list(copy.deepcopy(list(values.values())))
            vals[k] = v
            return weigh(fn(*vals))
        try:
            check_vjp(scalar, (np.asarray(x, dtype=np.float64) if isinstance(x, np.ndarray)
                               else float(x),), (g,), rtol=1e-4, atol=1e-6)
        except AssertionError as exc:
            return "wrong", f"{names[k]}: " + str(exc).splitlines()[-1][:200]
        except Exception as exc:
            return "invalid", f"oracle: {exc!r}"
    return "ok", ""


def _blocks(lines):
    """Index ranges of top-level functions other than f."""
    starts = [i for i, ln in enumerate(lines) if ln.startswith("def ")] + [len(lines)]
    return [(a, b) for a, b in zip(starts, starts[1:]) if not lines[a].startswith("def f(")]


def reduce(source: str, call: str, args: str, log=print) -> str:
    want = outcome(source, call, args)
    log(f"failure: {want}")
    same = (lambda o: o == want) if want[0] in ("error", "crash") else (lambda o: o[0] == want[0])
    lines = source.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith(("def ", "class Holder")))
    fixed, body = lines[:header], lines[header:]

    def ok(candidate):
        return same(outcome("\n".join(fixed + candidate) + "\n", call, args))

    changed = True
    while changed:
        changed = False
        for a, b in reversed(_blocks(body)):  # whole helpers
            cand = body[:a] + body[b:]
            if ok(cand):
                body, changed = cand, True
        n = max(len(body) // 2, 1)
        while n >= 1:
            i = 0
            while i < len(body):
                cand = body[:i] + body[i + n:]
                if cand and ok(cand):
                    body, changed = cand, True
                else:
                    i += 1
            n //= 2
    result = "\n".join(fixed + body) + "\n"
    log(f"reduced: {outcome(result, call, args)}")
    return "\n".join(body).strip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    seen = collections.Counter()
    for path in args.paths:
        source, call, values = parse(path)
        print(f"==== {path}\n# {call}\n# {values}")
        print(reduce(source, call, values))
        seen[path] += 1


if __name__ == "__main__":
    main()
