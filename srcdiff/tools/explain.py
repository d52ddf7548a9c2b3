"""explain: what srcdiff knows about a gradient, line by line.

For each ``wrt`` parameter and each line, whether it is active (the line gets adjoint
code); for each loop, what its tape keeps per iteration and how many bytes that is for
the given arguments (or random ones of the given shapes); how much memory the forward pass
keeps for the pullback and the peak of the backward pass; and, for a gradient that is
identically zero, the statement that breaks the dependence.

>>> e = srcdiff.explain(loss, wrt=("w", "b"), shapes={"w": (3,), "b": (), "x": (64, 3), "y": (64,)})
>>> print(e)  # doctest: +SKIP
>>> srcdiff.grad(loss, wrt="w").explain(w, b, x, y)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass

import libcst as cst
import numpy as np

from srcdiff.runtime import trees

from ..errors import SrcdiffError
from ..pipeline import parameters
from . import measure
from .lines import read_lines
from ..source import get_source
from ..transforms.normalize import local_variables
from .tapes import spelled, tape_loops

__all__ = ["explain", "Explanation", "LoopTape", "arguments_of_shapes"]


@dataclass(frozen=True)
class LoopTape:
    """The tape of the loop on ``line``: an iteration keeps ``kept`` (``measure.Kept``; the
    second iteration's, where the loop state is the previous iteration's)."""

    line: int
    text: str
    tape: str
    iterations: int
    kept: tuple
    per_iteration: tuple[int, int]  # least and most bytes an iteration adds
    total: int  # every buffer the tape keeps alive, counted once
    values: tuple = ()  # (temporary, what it holds in the user's names): ("_t3", "W @ h")
    runs: int = 1  # how often the loop ran: an inner loop once per iteration of the outer
    kind: str = "tape"  # "checkpoints": kept every K iterations (``# srcdiff: checkpoint``);
    # "again": the tape the pullback fills running a stretch of them again (its last stretch)


@dataclass(frozen=True)
class Explanation:
    function: str
    filename: str
    wrt: tuple[str, ...]
    arguments: tuple[tuple[str, str], ...]  # (parameter, "64x3 float64" / "float" …)
    lines: tuple[tuple[int, str, tuple[str, ...]], ...]  # (line, text, status per wrt)
    loops: tuple[LoopTape, ...]
    forward_kept: int
    backward_peak: int
    zero: tuple[tuple[str, int, str], ...]  # (parameter, line, why its gradient is zero)

    def __str__(self) -> str:
        return _render(self)

    def as_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)


def explain(fn, wrt=None, *args, shapes: dict | None = None, pytree=(), seed: int = 0,
            has_aux: bool | None = None, **kwargs) -> Explanation:
    """What srcdiff knows about the gradient of ``fn`` with respect to ``wrt``, measured on
    ``args`` (and ``kwargs``), or on random arguments of ``shapes`` (``{"x": (64, 3), "b":
    (), "n": 10}``: a tuple is an array's shape, ``()`` a float, an int or float that value).
    ``pytree``: the ``wrt`` parameters passed as dicts, lists or dataclasses (by default,
    those whose argument is one); ``has_aux``: ``fn`` returns ``(loss, aux)`` (by default,
    a gradient's own setting). ``fn`` may be a ``srcdiff.grad`` object: its wrt is the
    default."""
    from ..api import _Caller, _resolve_wrt, derivative

    own = getattr(fn, "wrt", None)
    aux = bool(getattr(fn, "_has_aux", False)) if has_aux is None else has_aux
    fn = getattr(fn, "__wrapped__", fn)
    if not inspect.isfunction(fn):
        raise SrcdiffError(f"srcdiff.explain expects a function defined with 'def', got {fn!r}")
    names, _ = _resolve_wrt(fn, own if wrt is None and own is not None else 0 if wrt is None
                            else wrt)
    if shapes is not None:
        if args or kwargs:
            raise SrcdiffError("give explain either arguments or shapes=, not both")
        args = arguments_of_shapes(fn, shapes, seed)
    else:
        args = _Caller(fn).bind(args, kwargs)
    containers = tuple(_resolve_wrt(fn, tuple(pytree))[0]) if pytree else tuple(
        p for p in names if trees.is_container(args[parameters(fn).index(p)]))
    facts = read_lines(fn, names, containers, has_aux=aux)
    compiled = derivative(fn, names, aux, containers)
    loops = tape_loops(cst.parse_module(compiled.source))
    local_names = local_variables(get_source(fn).funcdef)
    ran = measure.run(compiled.function, args, {loop.tape: loop.names for loop in loops},
                      tuple(loop.tape for loop in loops if loop.kind == "again"), aux)
    tapes = []
    for loop in sorted(loops, key=lambda loop: loop.line):
        m = ran.tapes.get(loop.tape)
        if m is not None:
            temps = loop.temps
            values = tuple((n, spelled(temps[n], temps, local_names)) for n in loop.names
                           if n in temps)
            tapes.append(LoopTape(loop.line, loop.text, loop.tape, m.iterations, m.shown,
                                  m.per_iteration, m.total, values, m.runs, loop.kind))
    lines = tuple((line, text, tuple(facts.status.get((line, p), "") for p in names))
                  for line, text in sorted(facts.texts.items()))
    zero = tuple((p, line, why) for p, (line, why) in facts.zero.items())
    described = tuple((p, _described(a)) for p, a in zip(parameters(fn), args))
    return Explanation(fn.__qualname__, fn.__code__.co_filename, names, described, lines,
                       tuple(tapes), ran.forward_kept, ran.backward_peak, zero)


def arguments_of_shapes(fn, shapes: dict, seed: int = 0) -> tuple:
    """Random float64 arguments of the given shapes (standard normal), in parameter order."""
    rng = np.random.default_rng(seed)
    params = parameters(fn)
    missing = [p for p in params if p not in shapes and
               inspect.signature(fn).parameters[p].default is inspect.Parameter.empty]
    if missing:
        raise SrcdiffError(f"explain needs a shape or value for every parameter of "
                           f"{fn.__qualname__}; missing: {', '.join(missing)}")
    unknown = sorted(set(shapes) - set(params))
    if unknown:
        raise SrcdiffError(f"{', '.join(unknown)}: not parameters of {fn.__qualname__}{params}")
    args = []
    for p in params:
        if p not in shapes:
            args.append(inspect.signature(fn).parameters[p].default)
            continue
        spec = shapes[p]
        if isinstance(spec, tuple) and spec:
            args.append(rng.standard_normal(spec))
        elif spec == ():
            args.append(float(rng.standard_normal()))
        else:
            args.append(spec)
    return tuple(args)


def _described(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{'x'.join(map(str, a.shape)) or '()'} {a.dtype}"
    return type(a).__name__


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


_MARKS = {"active": "A", "varied": "v", "": "."}


def _render(e: Explanation) -> str:
    args = ", ".join(f"{p}: {d}" for p, d in e.arguments)
    out = [f"{e.function} ({e.filename}), gradient with respect to {', '.join(e.wrt)}",
           f"  arguments: {args}", "",
           "activity  (A: active, the line gets adjoint code; v: varies with the parameter, but "
           "the output does not use it differentiably; .: no derivative with respect to it)"]
    width = max(len(p) for p in e.wrt)
    out.append(f"  {'line':>5}  " + " ".join(f"{p:>{width}}" for p in e.wrt))
    for line, text, status in e.lines:
        marks = " ".join(f"{_MARKS[s]:>{width}}" for s in status)
        out.append(f"  {line:>5}  {marks}   {text}")
    if e.loops:
        out += ["", "loops"]
    for loop in e.loops:
        least, most = loop.per_iteration
        each = _size(least) if least == most else f"{_size(least)} to {_size(most)}"
        runs = f" in {loop.runs} runs" if loop.runs > 1 else ""
        if loop.kind == "checkpoints":
            out.append(f"  line {loop.line}: {loop.text}   checkpointed: {loop.iterations} "
                       f"states kept; {loop.tape} keeps per checkpoint:")
        elif loop.kind == "again":
            out.append(f"    the backward pass runs it again, a stretch at a time, onto "
                       f"{loop.tape}; a stretch of {loop.iterations} iterations keeps per "
                       "iteration:")
        else:
            out.append(f"  line {loop.line}: {loop.text}   {loop.iterations} iterations{runs}; "
                       f"{loop.tape} keeps per iteration:")
        values = dict(loop.values)
        for k in loop.kept:
            shape = "x".join(map(str, k.shape)) if k.shape else ("()" if k.shape == () else "")
            what = f"{_size(k.nbytes)} ({k.note})" if k.note == "an inner loop's tape" else \
                f"0 B ({k.note})" if k.note else _size(k.nbytes)
            value = f"  = {values[k.name]}" if k.name in values else ""
            out.append(f"      {k.name:<8} {shape:>9} {k.dtype:<8} {what:<28}{value}".rstrip())
        unit, whole = ("checkpoint", "in all") if loop.kind == "checkpoints" else \
            ("iteration", "for the stretch") if loop.kind == "again" else ("iteration", "in all")
        out.append(f"    = {each} of new arrays per {unit}; {_size(loop.total)} {whole} "
                   "(every array it keeps alive, once, views' bases included)")
    out += ["", "memory", f"  the forward pass keeps {_size(e.forward_kept)} for the pullback; "
            f"the backward pass peaks at {_size(e.backward_peak)} above the arguments"]
    for p, line, why in e.zero:
        out.append(f"\nthe gradient with respect to {p} is identically zero: {why}")
    return "\n".join(out)
