"""The whole compiler, in order: each stage is one module in ``srcdiff/transforms``.

>>> import numpy as np
>>> def f(x): return np.sum(np.sin(x))
>>> print(compile_derivative(f, wrt=("x",)).source)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass

from . import codegen
from .analysis import fresh
from .analysis.dtypes import FLOAT64
from .context import Context
from .names import names_in
from .source import get_source
from .transforms import (accumulate, augment, batch, canonical, checkpoint, comprehensions, dce, desugar, doubles, elements, gather, factor, factors, keys,
                         fuse, guards, inline, inplace, jumps, lasts, lists, locate, masks, no_grad, normalize, products, ranks, release, rename, rows, splits, stacks, transposes,
                         norms, reductions, relus, returns, reverse, rowdots, seed, shapes, sigmoid, simplify, softmax, spread, steps, tangent, tapes, tiles,
                         validate)

__all__ = ["PIPELINE", "FORWARD", "Derivative", "compile_derivative", "compile_tangent"]

PIPELINE = (
    ("validate", validate.rewrite),    # reject unsupported syntax, with positions
    ("locate", locate.rewrite),        # tie each statement to its line: `# line N: ...`
    ("comprehensions", comprehensions.rewrite),  # [f(v) for v in xs], sum(...) → loops
    ("lasts", lasts.rewrite),          # hs = [h0]; hs.append(f(hs[-1])); hs[-1] → one variable, hs_last
    ("no_grad", no_grad.rewrite),      # with no_grad(): → rt.stop_gradient(...) on each value
    ("desugar", desugar.rewrite),      # a += b → a = a + b; a < b < c → a < b and b < c
    ("keys", keys.rewrite),            # cache = {}; cache["z1"] = e; cache["z1"] → cache_z1 = e; cache_z1
    ("jumps", jumps.rewrite),          # break / continue / return in loops → flags
    ("returns", returns.rewrite),      # early returns → one return at the end
    ("normalize", normalize.rewrite),  # one primitive operation per assignment
    ("inline", inline.rewrite),        # s = sigmoid(z) of a one-expression helper → its expression
    ("canonical", canonical.rewrite),  # np.matmul, x.dot, matmul-like einsum → @ / np.dot
    ("softmax", softmax.rewrite),      # e = np.exp(s - max); p = e / sum(e) → rt.softmax(s)
    ("sigmoid", sigmoid.rewrite),      # e = np.exp(-z); s = 1.0 / (1.0 + e) → rt.sigmoid(z)
    ("norms", norms.rewrite),          # n = np.linalg.norm(r); s = n ** 2 → rt.squared_norm(r)
    ("rename", rename.rewrite),        # one assignment per name
    ("factors", factors.rewrite),      # solve(L.T, solve(L, b)), sum(log(diag(L))) of L = cholesky(K) → one call each
    ("reverse", reverse.rewrite),      # forward pass + pullback, for active variables only
    ("simplify", simplify.rewrite),    # fold constants, drop * 1, + 0, ** 1
    ("shapes", shapes.rewrite),        # drop rt.unbroadcast where the shapes provably match
    ("guards", guards.rewrite),        # drop rt.guard(v, g) where v is provably positive
    ("seed", seed.rewrite),            # grad only: seed 1.0, no value returned, spread seeds folded
    ("factor", factor.rewrite),        # rt.unbroadcast(-g * f, x) → -rt.unbroadcast(g, x) * f, f of x's shape
    ("spread", spread.rewrite),        # a + rt.sum_adjoint(g, x, keepdims=True) → a + g, a of x's shape
    ("masks", masks.rewrite),          # db = dr * (b > 0) of dr = 2 * r, r = b * (b > 0) → db = dr
    ("lists", lists.rewrite),          # a list built by appends: in place, its adjoint too
    ("list shapes", shapes.rewrite_lists),  # shapes known: hs[-1]'s adjoint has h's shape
    ("stacks", stacks.rewrite),        # shapes known: np.sum(np.stack(hs)) gives each entry one number
    ("tapes", tapes.rewrite),          # tapes keep what the pullback reads, no array for its shape
    ("dce", dce.rewrite),              # remove what nobody reads
    ("blanks", stacks.rewrite_blanks),  # shapes known: np.stack(hs) read for its shape → rt.blank(np.stack, hs)
    ("checkpoint", checkpoint.rewrite),  # `# srcdiff: checkpoint`: a state every K steps, recomputed
    ("batch", batch.rewrite),          # a loop's matmul accumulations: one matmul after it
    ("accumulate", accumulate.rewrite),  # dx + rt.getitem_adjoint(…) → in place, where dx is unshared
    ("tiles", tiles.rewrite),          # an adjoint from several slices of x: rt.slices_adjoint(x, (g, key), ...)
    ("ranks", ranks.rewrite),          # shapes known: rt.matmul_adjoint_x2(g, X, w) → g @ X
    ("doubles", doubles.rewrite),      # dr = g * r; dr = dr + g * r (r @ r's) → dr = 2 * g * r
    ("transposes", transposes.rewrite),  # shapes known: np.swapaxes(A.swapaxes(-1, -2) @ G, 1, 2) → G.swapaxes(-1, -2) @ A
    ("rowdots", rowdots.rewrite),      # shapes known: np.sum(g * p, axis=-1, keepdims=True) → rt.row_dots(g, p)
    ("products", products.rewrite),    # shapes known, small arrays: X @ w, np.dot(X, w) → X.dot(w)
    ("rows", rows.rewrite),            # shapes known: a sum's rows xs[t] and carried states read xs and the tape's states
    ("steps", steps.rewrite),          # shapes known: 1 - h * h of taped h, every step at once
    ("fuse", fuse.rewrite),            # grad only: the pullback in line, f_grad returns gradients
    ("gather", gather.rewrite),        # shapes known: dparams = rt.tree_put(...), rt.tree_add_at(...) per key → one dict
    ("augment", augment.rewrite),      # float64 arrays of known shapes: r = _t2 - y → r -= y, _t2 not read again
    ("elements", elements.rewrite),    # float64 arrays of known shapes: dx = rt.add_at(dx, g, x, key=rt.at[i]) → dx[i] += g
    ("inplace", inplace.rewrite),      # large arrays only: r = b * m → r = rt.imul(b, m), b not read again
    ("relus", relus.rewrite),          # large arrays only: c = b > 0; r = rt.imul(b, c) → rt.positive_product_into(b)
    ("reductions", reductions.rewrite),  # shapes known: np.mean(v) → rt.mean_all(v), numpy's values
    ("splits", splits.rewrite),        # shapes known: np.split(x, 4, axis=1) → rt.split, the same views
    ("release", release.rewrite),      # shapes known: a loop step ends by deleting what only it reads
)


# forward mode (srcdiff.jvp): the same front stages, then a tangent after each statement
FORWARD = (
    *PIPELINE[:PIPELINE.index(("rename", rename.rewrite)) + 1],
    ("tangent", tangent.rewrite),      # f_jvp(x, dx): each primal statement, then its tangent
    ("guards", guards.rewrite),        # drop rt.guard(v, g) where v is provably positive
)


@dataclass(frozen=True)
class Derivative:
    """A compiled derivative: ``function(*args) -> (value, pullback)`` and its source; with
    ``gradient_only``, ``function(*args) -> gradients`` (a bare one for a single ``wrt``), or
    ``(value, gradients)`` where it was compiled ``with_value``."""

    function: object
    source: str
    wrt: tuple[str, ...]
    gradient_only: bool = False
    fresh: tuple = ()  # gradient-only: per wrt, a new array of its shape (analysis/fresh.py)


def parameters(fn) -> tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind in kinds)


def compile_derivative(fn, wrt: tuple[str, ...], has_aux: bool = False, trace=None,
                       containers: tuple[str, ...] = (), gradient: bool = False,
                       in_place: bool = False, with_value: bool = False,
                       dims: tuple | None = None, float64: bool = False) -> Derivative:
    """Run every stage on ``fn``; ``trace`` (a file) receives the source after each stage.

    ``has_aux``: ``fn`` returns ``(loss, aux)``; only ``loss`` is differentiated.
    ``containers``: the ``wrt`` parameters passed as dicts/lists/tuples/dataclasses.
    ``gradient``: only the gradient is wanted (``srcdiff.grad``); where the output is
    provably one real number, the result is ``gradient_only``.
    ``in_place``: the variant for large arrays, whose dead temporaries take results in place
    (the ``inplace`` stage). ``with_value`` (with ``gradient``): for ``value_and_grad``; a
    ``gradient_only`` result then returns ``(value, gradients)``. ``dims``: the pattern of the
    arguments' shapes (``srcdiff.dims.pattern``, one entry per parameter) the derivative may
    assume: it is called only with arguments of that pattern. ``float64`` (with ``dims``): it
    is called only with float64 arrays and with numbers that are Python's or numpy float64
    (``srcdiff.analysis.dtypes.float64_call``), whose temporaries then take results in place
    (the ``augment`` stage).
    """
    options = frozenset({"has_aux"} if has_aux else {seed.GRADIENT} if gradient else ())
    options = options | {seed.WITH_VALUE} if gradient and with_value else options
    options = options | {inplace.INPLACE} if in_place else options
    options = options | {FLOAT64} if float64 and dims is not None else options
    ctx = _context(fn, wrt, options, containers, dims)
    module = ctx.source.module
    gradient_only = False
    for label, stage in PIPELINE:
        module = stage(module, ctx)
        gradient_only = gradient_only or label == "seed" and seed.applied(module)
        if trace is not None:
            print(f"# ----- after {label} -----\n{module.code}", file=trace)
    text = codegen.module_text(module, ctx)
    made = fresh.fresh_gradients(module, ctx) if gradient_only else ()
    return Derivative(codegen.load(text, ctx), text, ctx.wrt, gradient_only, made)


def compile_tangent(fn, wrt: tuple[str, ...], containers: tuple[str, ...] = (),
                    trace=None, tangent_first: bool = False) -> Derivative:
    """Forward mode: ``function(*args, *tangents) -> (value, tangent)``, one tangent per
    ``wrt`` parameter, in ``wrt``'s order; ``(tangent, value)`` with ``tangent_first``."""
    options = {"tangent", tangent.TANGENT_FIRST} if tangent_first else {"tangent"}
    ctx = _context(fn, wrt, frozenset(options), containers)
    module = ctx.source.module
    for label, stage in FORWARD:
        module = stage(module, ctx)
        if trace is not None:
            print(f"# ----- after {label} -----\n{module.code}", file=trace)
    text = codegen.module_text(module, ctx)
    return Derivative(codegen.load(text, ctx), text, ctx.wrt)


def _context(fn, wrt, options, containers, dims=None) -> Context:
    source = get_source(fn)
    names = names_in(source.module) | set(fn.__code__.co_names)
    rt = "rt"
    while rt in names or f"{rt}_jit" in names:  # srcdiff.jit's kernels call rt_jit too
        rt += "_"
    params = parameters(fn)
    known = () if dims is None else tuple((p, d) for p, d in zip(params, dims) if d is not None)
    return Context(source=source, params=params, wrt=tuple(wrt), rt=rt, options=options,
                   containers=frozenset(containers), dims=known)


def trace(fn, wrt=("x",)) -> None:  # pragma: no cover - convenience for the REPL
    compile_derivative(fn, wrt, trace=sys.stdout)
