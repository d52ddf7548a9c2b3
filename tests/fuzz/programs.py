"""Random differentiable programs for srcdiff's differential fuzzer (issue 8, item 1).

:func:`programs` is a hypothesis strategy of :class:`Program`: a module of numpy code over the
language srcdiff supports (README, "What is supported") -- straight-line numpy with
broadcasting between scalars, ``(3,)``, ``(2,)`` and ``(2, 3)``, reductions with ``axis``,
matmul/dot/einsum/outer, indexing and views, ``if``/``elif``/``else`` and conditional
expressions, ``for`` over ``range``/rows/``enumerate``/``zip``/tuples/lists, ``while`` with a
counter, ``break``/``continue``/``return`` in loops, ``for``/``while`` ``… else``, helper
functions (keyword arguments, defaults, tuple results unpacked, chains, recursion), dict and
tuple parameters, local array
writes (``out[i] = ...``, ``out[i] += ...``, ``acc += ...``), lists with ``append``, dict and
tuple literals, ``with srcdiff.no_grad():`` and ``srcdiff.stop_gradient``, module constants.
Issue 13 (item 4) added what users write and the fuzzer did not (``tests/fuzz/coverage.py``
maps every construct srcdiff accepts to its feature, ``test_coverage.py`` keeps it so):
containers passed straight to helpers and returned (``containers.py``), comprehensions,
every spelling of an operation, constructors with active fill values, the non-differentiable
table, odd syntax (``idioms.py``), the long tail of numpy and ``math`` functions
(``functions.py``), a Cholesky factor's solves and log-determinant (``FnGen.s_cholesky``),
and side effects srcdiff must refuse (``Program.expect == "refuse"``:
a located ``SrcdiffError`` passes, a wrong value, gradient or crash fails). A construct srcdiff
documents as unsupported may be refused cleanly (``Program.refusable``), never differentiated
wrongly.

Each program is rendered twice:

* the *clean* module, the one srcdiff reads and differentiates (and the one printed on a
  failure): plain, readable numpy code;
* the *oracle* module: the same program in which every non-smooth point -- a branch or loop
  condition, ``np.maximum``/``minimum``/``abs``/``clip``/``max``/``min``/``sign``/``floor``/
  ``%``/``argmax``/``std`` and boolean masks -- goes through a recorder ``_fz`` that measures
  the distance to the kink, every assigned value is range-checked, and every value made in a
  ``no_grad`` block or by ``stop_gradient`` is *frozen*: recorded on the reference run and
  replayed when the finite-difference oracle perturbs the inputs. Frozen values make the
  oracle see exactly the constants srcdiff's ``no_grad`` promises, so those are checked too.

:func:`check_program` runs the oracle module once on the program's inputs (the reference
run), rejects the program when a kink is closer than ``MARGIN`` or a value leaves
``[-VMAX, VMAX]`` (finite differences would not be reliable there), differentiates the clean
function with ``srcdiff.grad`` / ``value_and_grad`` / ``vjp`` (``has_aux`` sometimes) and
holds the result to ``srcdiff.testing.check_grad`` (central differences, float64). It also
checks the forward value, the gradients' types, and that the call left its inputs
unchanged.

Values stay bounded by construction: every expression carries a bound on its magnitude,
``exp`` only sees bounded inputs, ``log``/``sqrt`` only ``e * e + 1.0``-style positive
values, denominators are bounded away from zero, and an expression whose bound grows past
``BOUND`` is passed through ``np.tanh``.

Aliasing is kept out of the generated programs on purpose (it is Python's semantics, not
srcdiff's, that the fuzzer must not get wrong): an array is written in place (``out[i] =``,
``acc +=``) only when it was made by the function and nothing still reads a view of it or
holds it in a list, dict or tuple; inside a loop an outer array is either written in place
or stored/iterated/viewed, never both (the next iteration would see the write).

Profiles: ``fuzz-ci`` (the default of ``tests/test_fuzz.py``: 200 programs, derandomized, a
failure reported unshrunk), ``fuzz-shrink`` (``SRCDIFF_FUZZ=shrink``: the same programs, a
failure shrunk to a minimal program) and ``soak`` (10 000 programs; ``--hypothesis-profile=soak``
or ``SRCDIFF_FUZZ=soak``).
``python -m tests.fuzz.programs --n 5000`` runs a soak that counts outcomes instead of
stopping at the first failure, and saves every failing program.
"""

from __future__ import annotations

import argparse
import collections
import copy
import importlib.util
import itertools
import math
import os
import re
import sys
import tempfile
import traceback
import dataclasses
from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from .model import *  # noqa: F403 (the generator's vocabulary)
from .model import _par, Box
from .idioms import Idioms, REFUSABLE
from .containers import Comprehensions, Containers, DictLoops, box_helper, box_var
from .functions import (SCIPY_HEADER, Functions, LinearAlgebra, SciPy, ShapeFunctions,
                        scipy_available)
from .records import ENABLED as RECORDS_ON, FUNCTIONS_ENABLED as FUNCTIONS_ON
from .records import HEADER as RECORDS_HEADER, Records

__all__ = ["programs", "check_program", "Program", "Result", "MARGIN", "VMAX", "RTOL", "ATOL"]

MARGIN = 1e-3  # smallest distance to a kink (branch condition, max, abs, ...) we accept
VMAX = 1e3     # largest magnitude of any value the program computes
RTOL, ATOL = 1e-4, 1e-6
RTOL32, ATOL32 = 2e-3, 2e-4  # float32 gradients against the float64 twin's
# Known srcdiff bugs the fuzzer tolerates so CI stays green; each has an xfail(strict=True)
# regression test in tests/fuzz/test_regressions.py. Remove the entry when the bug is fixed.
TOLERATED = {
    "index-scalar-is-view",  # `s = b[0]; s += 1.0` is refused (the generator avoids it)
}
# internal crashes recognised by their message: the program counts as "known_bug", not a failure
KNOWN_CRASHES = {"loop-adjoint-init": "were not initialised"}
ALIAS_MODE = "alias-writes" not in TOLERATED or os.environ.get("SRCDIFF_FUZZ_ALIAS") == "1"
OPAQUE_FRESH = "opaque-results-alias" not in TOLERATED  # abs(), math.*, a if c else b: new
FANCY_FRESH = "fancy-is-view" not in TOLERATED  # integer-array indexing copies
SCALAR_INDEX_FRESH = "index-scalar-is-view" not in TOLERATED  # b[0] of a 1-d b is a copy
SCALAR_INDEX_ROOTS = NONE if SCALAR_INDEX_FRESH else None      # None: the base's roots

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.large_base_example]
# CI: 200 programs, the same ones on every run; a failure is reported at once, unshrunk (a
# shrink can take minutes). SRCDIFF_FUZZ=shrink runs the same programs and shrinks a failure.
_CI = dict(max_examples=200, deadline=None, derandomize=True, database=None,
           suppress_health_check=_HEALTH, print_blob=False)
settings.register_profile("fuzz-ci", phases=[Phase.explicit, Phase.reuse, Phase.generate], **_CI)
settings.register_profile("fuzz-shrink", **_CI)
settings.register_profile("soak", max_examples=10_000, deadline=None, database=None,
                          suppress_health_check=_HEALTH, print_blob=True)


def profile_name() -> str:
    """``soak`` (``SRCDIFF_FUZZ=soak`` or ``--hypothesis-profile=soak``), ``fuzz-shrink``
    (``SRCDIFF_FUZZ=shrink``), else ``fuzz-ci``."""
    name = os.environ.get("SRCDIFF_FUZZ") or settings.get_current_profile_name()
    return {"soak": "soak", "shrink": "fuzz-shrink", "fuzz-shrink": "fuzz-shrink"}.get(
        name, "fuzz-ci")


# ----------------------------------------------------------------------------- the recorder


class Recorder:
    """``_fz`` in the oracle module: margins to kinks, value ranges, frozen (no_grad) values."""

    def __init__(self):
        self.recording = True
        self.margin = math.inf
        self.vmax = 0.0
        self._frozen: dict[int, list] = {}
        self.counts: dict[int, int] = {}
        self.where = ""

    def start(self, recording: bool):
        self.recording = recording
        self.counts = {}
        if recording:
            self.margin, self.vmax, self._frozen, self.where = math.inf, 0.0, {}, ""

    def _m(self, distance, what):
        if not self.recording:
            return
        d = np.abs(np.asarray(distance, dtype=np.float64))
        if d.size:
            d = float(np.min(d))
            if d < self.margin:
                self.margin, self.where = d, what

    def gt(self, a, b):
        self._m(np.subtract(a, b), "a comparison")
        return a > b

    def lt(self, a, b):
        self._m(np.subtract(a, b), "a comparison")
        return a < b

    def ge(self, a, b):
        self._m(np.subtract(a, b), "a comparison")
        return a >= b

    def le(self, a, b):
        self._m(np.subtract(a, b), "a comparison")
        return a <= b

    def between(self, lo, a, hi):
        self._m(np.subtract(a, lo), "a chained comparison")
        self._m(np.subtract(a, hi), "a chained comparison")
        return lo < a < hi

    def maximum(self, a, b):
        self._m(np.subtract(a, b), "np.maximum")
        return np.maximum(a, b)

    def minimum(self, a, b):
        self._m(np.subtract(a, b), "np.minimum")
        return np.minimum(a, b)

    def abs(self, a):
        self._m(a, "abs")
        return np.abs(a)

    def clip(self, a, lo, hi):
        self._m(np.subtract(a, lo), "clip")
        self._m(np.subtract(a, hi), "clip")
        return np.clip(a, lo, hi)

    def sign(self, a):
        self._m(a, "np.sign")
        return np.sign(a)

    def floor(self, a):
        self._m(np.subtract(a, np.round(a)), "np.floor")
        return np.floor(a)

    def mod(self, a, c):
        r = np.mod(a, c)
        self._m(np.minimum(r, c - r), "%")
        return a % c

    def _gap(self, a, axis, what):
        a = np.asarray(a, dtype=np.float64)
        if axis is None:
            a = a.reshape(-1)
            axis = 0
        if a.shape[axis] > 1:
            s = np.sort(a, axis=axis)
            self._m(np.take(s, -1, axis) - np.take(s, -2, axis), what)
            self._m(np.take(s, 1, axis) - np.take(s, 0, axis), what)

    def amax(self, a, axis=None, keepdims=False):
        self._gap(a, axis, "max")
        return np.max(a, axis=axis, keepdims=keepdims)

    def amin(self, a, axis=None, keepdims=False):
        self._gap(a, axis, "min")
        return np.min(a, axis=axis, keepdims=keepdims)

    def argmax(self, a):
        self._gap(a, None, "argmax")
        return np.argmax(a)

    def std(self, a, axis=None):
        r = np.std(a, axis=axis)
        self._m(np.asarray(r) * 0.02, "np.std near 0")  # its gradient is 1/std: keep std >= 0.05
        return r

    # pass-through wrappers for the kinks of the non-differentiable functions the generator
    # spells as users do (np.ceil(b), round(s), np.searchsorted(c, s), ...): the oracle wraps
    # the argument, records its distance to the kink and calls the same function on it
    def km(self, a, c=1.0):
        """Kinks at the multiples of ``c`` (floor, ceil, trunc, int, floor_divide by ``c``)."""
        r = np.mod(a, c)
        self._m(np.minimum(r, c - r), "a step at the multiples of a number")
        return a

    def kmh(self, a, c):
        """Kinks half-way between the multiples of ``c`` (math.remainder: round(a / c))."""
        r = np.mod(np.subtract(a, 0.5 * c), c)
        self._m(np.minimum(r, c - r), "a step half-way between multiples")
        return a

    def ki(self, a):
        return self.km(a, 1.0)

    def kh(self, a):
        """Kinks at the half-integers (round, rint)."""
        self._m(np.subtract(np.mod(a, 1.0), 0.5), "round")
        return a

    def kc(self, a, c):
        """A kink where ``a`` equals (any element of) ``c``: comparisons, searchsorted."""
        d = np.subtract.outer(np.ravel(np.asarray(a, dtype=np.float64)),
                              np.ravel(np.asarray(c, dtype=np.float64)))
        self._m(d, "a comparison")
        return a

    def keig(self, a):
        """Kinks where two eigenvalues of the symmetric ``a`` meet (eigh, eigvalsh)."""
        w = np.linalg.eigvalsh(np.asarray(a, dtype=np.float64))
        if w.size > 1:
            self._m(np.diff(w), "equal eigenvalues")
        return a

    def kg(self, a):
        """Kinks where two elements of ``a`` are equal: argmax, argmin, argsort."""
        s = np.sort(np.ravel(np.asarray(a, dtype=np.float64)))
        if s.size > 1:
            self._m(np.diff(s), "argmax/argsort")
        return a

    def frozen(self, site, value):
        if self.recording:
            self._frozen.setdefault(site, []).append(copy.deepcopy(value))
            return value
        n = self.counts.get(site, 0)
        self.counts[site] = n + 1
        return copy.deepcopy(self._frozen[site][n])

    def v(self, value):
        """An assigned value: record its range; the value passes through."""
        if self.recording:
            try:
                leaves = [value] if not isinstance(value, (list, tuple, dict)) else (
                    list(value.values()) if isinstance(value, dict) else list(value))
                for leaf in leaves:
                    a = np.asarray(leaf, dtype=np.float64)
                    if a.size:
                        if not np.all(np.isfinite(a)):
                            self.vmax = math.inf
                        else:
                            self.vmax = max(self.vmax, float(np.max(np.abs(a))))
            except (TypeError, ValueError):
                pass
        return value


# ----------------------------------------------------------------------------- functions


class FnGen(Idioms, Containers, Comprehensions, Functions, ShapeFunctions, LinearAlgebra,
            Records, DictLoops, SciPy):
    """Generates one function body (main or helper), clean and oracle lines side by side."""

    def __init__(self, prog: "ProgramGen", env: dict, *, helpers, names: Names, budget: int,
                 scalar_return: bool, self_name: str):
        self.prog, self.ch = prog, prog.ch
        self.env = dict(env)
        self.helpers = helpers
        self.names = names
        self.lines: list[tuple[int, str, str]] = []
        self.indent = 1
        self.frames: list[Frame] = []
        self.budget = budget
        self.nest = 0
        self.in_no_grad = False
        self.scalar_return = scalar_return
        self.alias = prog.aliasing  # alias mode: arrays the function owns are written freely
        self.self_name = self_name

    # ----- output
    def emit(self, clean: str, oracle: str | None = None):
        self.lines.append((self.indent, clean, clean if oracle is None else oracle))

    # ----- variables
    def arrays(self, shape=None, pred=None):
        return [v for v in self.env.values() if v.kind == "arr" and (shape is None or v.shape == shape)
                and (pred is None or pred(v))]

    def name_e(self, var: Var) -> E:
        if var.kind == "int":
            return E(var.name, var.name, S, var.bound, ATOM, True, NONE)
        if "views-by-name" in TOLERATED:  # srcdiff sees any name as a possible view base
            roots = var.roots | {var.name}
        else:
            roots = var.roots | ({var.name} if var.writable else NONE)
        # a scalar is a value to Python, but srcdiff cannot tell a numpy scalar from a 0-d
        # array: its name is a root too, so `t = s; t += 1.0` is an aliased write here as there
        return E(var.name, var.name, var.shape, var.bound, ATOM, False, roots)

    def set_var(self, var: Var):
        self.env[var.name] = var

    def can_write(self, var: Var) -> bool:
        """May ``var`` (an array) be written in place here?"""
        if not (var.kind == "arr" and var.writable and var.shape != S):
            return False
        if self.alias:
            return True
        return not any(var.name in f.outer and var.name in f.capture for f in self.frames)

    def aug_scalars(self) -> list:
        """Scalars ``s += …`` may update. srcdiff cannot tell a numpy scalar from a 0-d array,
        so there that is a write (unless ``s`` holds a plain number): treat it as one here."""
        return [v for v in self.arrays(S) if v.writable and not v.is_arg and (
            self.alias or not any(v.name in f.outer and v.name in f.capture for f in self.frames))]

    def note_write(self, name: str):
        """``name`` is written in place: decide write mode in enclosing loops, drop its views."""
        if self.alias:
            return
        for f in self.frames:
            if name in f.outer:
                f.write.add(name)
        for v in list(self.env.values()):
            if name in v.roots and v.name != name:
                del self.env[v.name]

    def can_capture(self, e: E) -> bool:
        """May ``e`` be stored (list, dict, tuple, an outer variable, iterated) here?"""
        if self.alias:
            return True
        return not any(r in f.outer and r in f.write for f in self.frames for r in e.roots)

    def note_capture(self, e: E):
        if self.alias:
            return
        # a name stored inside a loop (hs.append(w), w an argument): srcdiff cannot tell the
        # iterations apart and takes a later write into a new w in that loop for a write into
        # what hs holds (README: the analysis is static); leave such a name unwritten there
        if e.src.isidentifier() and e.src in self.env:
            for f in self.frames:
                if e.src in f.outer:
                    f.capture.add(e.src)
        for r in e.roots:
            for f in self.frames:
                if r in f.outer:
                    f.capture.add(r)
            var = self.env.get(r)
            if var is not None and var.writable:
                self.set_var(replace(var, writable=False))

    def owned(self, e: E) -> bool:
        """Alias mode: ``e`` is (a view of) memory the function made, never an argument's."""
        if e.fresh:
            return True
        if not e.roots or BOX in e.roots:
            return False
        return all(r in self.env and self.env[r].writable and not self.env[r].is_arg
                   for r in e.roots)

    def s_alias(self):
        """Alias mode: another name for (part of) an array the function owns."""
        ch = self.ch
        owned = [v for v in self.arrays() if self.can_write(v)]
        if not owned or ch.coin(0.3):
            shape = ch.pick([V, M, U])
            self.assign_var(self.names.new("a"), call("np.tanh", [self.expr(shape, 1)], shape, 1.0))
            owned = [list(self.env.values())[-1]]
        y = ch.pick(owned)
        ye = self.name_e(y)
        views = {V: [("", V), ("[0:2]", U), ("[1:]", U), ("[::-1]", V)],
                 U: [("", U), ("[::-1]", U)],
                 M: [("", M), ("[0]", V), ("[1]", V), ("[:, 1]", U), ("[::-1]", M)]}[y.shape]
        # functions and methods that return a view, or the array itself (real dtype: conj)
        calls = {V: [("np.flip({})", V), ("{}.conj()", V), ("np.atleast_1d({})", V),
                     ("np.array_split({}, 2)[0]", U)],
                 U: [("np.flip({})", U), ("{}.conjugate()", U)],
                 M: [("np.diag({})", U), ("np.diagonal({})", U), ("np.fliplr({})", M),
                     ("np.split({}, 3, axis=1)[1][:, 0]", U), ("{}.conj()", M),
                     ("np.moveaxis({}, 0, 1).T", M)]}[y.shape]
        if ch.coin(0.4):
            self.feature("alias-view-functions")
            text, shape = ch.pick(calls)
            e = E(text.format(y.name), text.format(y.name), shape, y.bound, ATOM, False,
                  ye.roots | {y.name})
        else:
            text, shape = ch.pick(views)
            e = attr(ye, text, shape, y.bound, fresh=False, roots=ye.roots | {y.name})
        z = self.names.new("a")
        self.assign_var(z, e)
        if ch.coin(0.7):  # write through one of the two names (not a read-only view: diag)
            var = self.env[ch.pick([y.name, z] if "diag" not in e.src else [y.name])]
            if self.can_write(var):
                ch.pick([self.s_aug, self.s_setitem])(var)

    def freshen(self, e: E) -> E:
        """``e`` as a new array (so storing it aliases nothing)."""
        if e.fresh or not e.roots:
            return e
        return binop(e, "*", lit(1.0), e.shape, e.bound)

    def stored(self, e: E) -> E:
        """``e`` ready to be stored: captured if allowed, else a fresh copy."""
        if self.can_capture(e):
            self.note_capture(e)
            return e
        return self.freshen(e)

    # ----- expressions
    def bounded(self, e: E, limit=BOUND) -> E:
        if e.bound <= limit:
            return e
        return call(self.ch.pick(["np.tanh", "np.tanh", "np.sin"]), [e], e.shape, 1.0)

    def expr(self, shape, depth: int) -> E:
        if shape == "col":
            return self.col(depth)
        ch = self.ch
        if depth <= 0:
            return self.leaf(shape)
        kind = ch.weighted([
            ("leaf", 3), ("unary", 5), ("binary", 7),
            ("reduce", 3 if shape != M else 0), ("linalg", 2), ("index", 2), ("shape", 1),
            ("kink", 2), ("ifexp", 1), ("call", 3 if self.callables(shape) else 0),
            ("nondiff", 1), ("stopgrad", 1), ("math", 1 if shape == S else 0),
            ("container", 2 if self.container_reads(shape) else 0),
            ("spell", 4), ("ctor", 2 if shape != S else 0), ("nplit", 1), ("nd", 2), ("odd", 1),
            ("func", 3), ("comp", 1 if self.comprehensions() else 0),
            ("shapefn", 2 if shape != S else 0), ("linalg2", 2), ("custom", 1),
            ("fnvalue", 2 if FUNCTIONS_ON else 0), ("method", 2 if self.methods_for(shape) else 0),
            ("scipy", 2 if SCIPY_OK else 0),
        ])
        e = getattr(self, "x_" + kind)(shape, depth - 1)
        assert e.shape == shape, (kind, e.src, e.shape, shape)
        return self.bounded(e)

    def x_leaf(self, shape, d) -> E:
        return self.leaf(shape)

    def leaf(self, shape) -> E:
        ch = self.ch
        vars_ = self.arrays(shape)
        others = [v for v in self.arrays() if v.shape != shape]
        ints = [v for v in self.env.values() if v.kind == "int"] if shape == S else []
        reads = self.container_reads(shape)
        kind = ch.weighted([("var", 12 if vars_ else 0), ("lit", 2 if shape == S else 0),
                            ("const", 1 if shape != S else 0), ("int", 1 if ints else 0),
                            ("container", 4 if reads else 0),
                            ("derived", (3 if vars_ else 12) if others else 0)])
        if kind == "var":
            return self.name_e(ch.pick(vars_))
        if kind == "lit":
            return lit(ch.pick(NICE))
        if kind == "const":
            name = {V: "C3", U: "C2", M: "C23"}[shape]
            return E(name, name, shape, 1.0, ATOM, False, NONE)
        if kind == "int":
            var = ch.pick(ints)
            return binop(self.name_e(var), "*", lit(ch.pick([0.5, 0.25, 0.3])), S, 0.5 * var.bound)
        if kind == "container":
            return ch.pick(reads)()
        return self.derived(shape, ch.pick(others))

    def derived(self, shape, var: Var) -> E:
        """An expression of ``shape`` made from a variable of another shape."""
        ch = self.ch
        e = self.name_e(var)
        b = var.bound
        const = {V: "C3", U: "C2", M: "C23"}
        if var.shape == S:
            return binop(e, "*", E(const[shape], const[shape], shape, 1.0), shape, b)
        if shape == S:
            if var.shape == V or var.shape == U:
                return ch.pick([attr(e, f"[{ch.pick([0, 1, -1])}]", S, b, SCALAR_INDEX_FRESH, SCALAR_INDEX_ROOTS),
                                call("np.sum", [e], S, b * 3)])
            return ch.pick([attr(e, f"[{ch.int(0, 1)}, {ch.int(0, 2)}]", S, b, SCALAR_INDEX_FRESH, SCALAR_INDEX_ROOTS),
                            call("np.mean", [e], S, b)])
        if shape == V:
            if var.shape == M:
                return ch.pick([attr(e, f"[{ch.int(0, 1)}]", V, b),
                                call("np.sum", [e], V, 2 * b, extra=", axis=0")])
            part = attr(e, "[0:1]", (1,), b)
            return call("np.concatenate", [E(f"[{e.src}, {part.src}]", f"[{e.osrc}, {part.osrc}]",
                                             V, b)], V, b)
        if shape == U:
            if var.shape == M:
                return ch.pick([attr(e, f"[:, {ch.int(0, 2)}]", U, b),
                                call("np.mean", [e], U, b, extra=", axis=1")])
            return attr(e, ch.pick(["[0:2]", "[1:]"]), U, b)
        if var.shape == V:
            return ch.pick([binop(e, "*", E("C23", "C23", M, 1.0), M, b),
                            call("np.outer", [E("C2", "C2", U, 1.0), e], M, b)])
        return call("np.outer", [e, E("C3", "C3", V, 1.0)], M, b)

    def col(self, depth) -> E:
        """A ``(2, 1)`` operand that broadcasts against ``(2, 3)``."""
        ch = self.ch
        kind = ch.pick(["reshape", "expand", "none", "keepdims"])
        if kind == "keepdims":
            m = self.expr(M, depth - 1)
            fn = ch.pick(["np.sum", "np.mean"])
            return call(fn, [m], (2, 1), m.bound * (3 if fn == "np.sum" else 1),
                        extra=", axis=1, keepdims=True")
        u = self.expr(U, depth - 1)
        if kind == "reshape":
            return method(u, "reshape", "2, 1", (2, 1), u.bound, fresh=False, roots=u.roots)
        if kind == "expand":
            return call("np.expand_dims", [u, "1"], (2, 1), u.bound, fresh=False, roots=u.roots)
        return attr(u, "[:, None]", (2, 1), u.bound)

    # unary elementwise
    def x_unary(self, shape, d) -> E:
        ch = self.ch
        a = self.expr(shape, d)
        kind = ch.weighted([("tanh", 4), ("sin", 2), ("cos", 1), ("arctan", 1), ("th", 1),
                            ("exp", 2), ("log", 2), ("sqrt", 2), ("square", 1), ("pow2", 2),
                            ("pow3", 1), ("neg", 2), ("log1p", 1), ("expm1", 1), ("sinh", 1),
                            ("cosh", 1), ("arcsin", 1), ("arccos", 1), ("tan", 1),
                            ("power", 1), ("powvar", 1 if shape == S else 0)])
        if kind in ("tanh", "sin", "cos", "arctan"):
            return call(f"np.{kind}", [a], shape, 1.0 if kind != "arctan" else 1.6)
        if kind == "th":
            return call("th", [a], shape, 1.0)
        if kind in ("exp", "expm1", "sinh", "cosh"):
            a = self.bounded(a, 2.0)
            return call(f"np.{kind}", [a], shape, math.exp(a.bound) + 1)
        if kind in ("log", "sqrt", "log1p"):
            sq = binop(a, "*", a, shape, a.bound ** 2)
            inner = sq if kind == "log1p" else binop(sq, "+", lit(1.0), shape, a.bound ** 2 + 1)
            return call(f"np.{kind}", [inner], shape, math.log(a.bound ** 2 + 1) + 1
                        if kind != "sqrt" else a.bound + 1)
        if kind == "square":
            return call("np.square", [a], shape, a.bound ** 2)
        if kind == "pow2":
            return power(a, 2)
        if kind == "pow3":
            a = self.bounded(a, 2.0)
            return power(a, 3)
        if kind == "neg":
            return neg(a)
        if kind in ("arcsin", "arccos", "tan"):
            inner = binop(lit(0.5), "*", call("np.tanh", [a], shape, 1.0), shape, 0.5)
            return call(f"np.{kind}", [inner], shape, 3.2)
        if kind == "power":
            a = self.bounded(a, 2.0)
            return call("np.power", [a, "2"], shape, a.bound ** 2)
        # a positive base to a bounded scalar power
        b = self.bounded(self.expr(S, d), 1.5)
        a = self.bounded(a, 1.7)
        base = binop(binop(a, "*", a, shape, a.bound ** 2), "+", lit(1.0), shape, 4.0)
        return call("np.power", [base, b], shape, 10.0)

    def positive(self, shape, d) -> E:
        """A denominator bounded away from zero (>= 0.5)."""
        ch = self.ch
        kind = ch.pick(["sq", "tanh", "sin", "exp", "lit", "cosh"])
        if kind == "lit":
            return lit(ch.pick([2.0, 1.5, 4.0]))
        a = self.expr(shape, d)
        if kind == "sq":
            return binop(binop(a, "*", a, shape, a.bound ** 2), "+", lit(1.0), shape, 0)
        if kind in ("tanh", "sin"):
            return binop(lit(1.5), "+", call(f"np.{kind}", [a], shape, 1.0), shape, 0)
        a = self.bounded(a, 1.5)
        return call(f"np.{kind}", [a], shape, 0)

    def x_binary(self, shape, d) -> E:
        ch = self.ch
        op = ch.weighted([("+", 5), ("-", 3), ("*", 5), ("/", 2), ("max", 1), ("min", 1),
                          ("where", 1)])
        a = self.expr(shape, d)
        bshape = ch.pick(sub_shapes(shape))
        if op == "/":
            den = self.positive(bshape if bshape != "col" else S, d)
            return binop(a, "/", den, shape, a.bound * 2)
        b = self.expr(bshape, d)
        if b.src == a.src:  # max(a, a), a < a: a kink everywhere
            b = binop(b, "+", lit(0.5), b.shape, b.bound + 0.5)
        if op == "where":
            cshape = ch.pick([shape, S]) if shape != S else S
            c = self.elem_cond(cshape, d)
            if ch.coin(0.5):
                a, b = b, a
            e = call("np.where", [c, a, b], shape, max(a.bound, b.bound))
            return e
        if ch.coin(0.4):
            a, b = b, a
        if op in ("max", "min"):
            fn = {"max": "np.maximum", "min": "np.minimum"}[op]
            return call(fn, [a, b], shape, max(a.bound, b.bound),
                        oname={"max": "_fz.maximum", "min": "_fz.minimum"}[op])
        bound = a.bound + b.bound if op in "+-" else a.bound * b.bound
        return binop(a, op, b, shape, bound)

    def reducible(self, depth, shapes=ARRAYS) -> E:
        return self.expr(self.ch.pick(shapes), depth)

    def x_reduce(self, shape, d) -> E:
        ch = self.ch
        if shape == S:
            a = self.reducible(d)
            n = int(np.prod(a.shape))
            kind = ch.weighted([("sum", 5), ("mean", 3), ("msum", 2), ("mmean", 1), ("max", 2),
                                ("mmax", 1), ("prod", 1), ("var", 1), ("std", 1), ("sumsq", 2)])
            if kind == "sum":
                return call("np.sum", [a], S, a.bound * n)
            if kind == "mean":
                return call("np.mean", [a], S, a.bound)
            if kind == "msum":
                return method(a, "sum", "", S, a.bound * n)
            if kind == "mmean":
                return method(a, "mean", "", S, a.bound)
            if kind == "max":
                fn = ch.pick(["max", "min"])
                return call(f"np.{fn}", [a], S, a.bound, oname=f"_fz.a{fn}")
            if kind == "mmax":
                fn = ch.pick(["max", "min"])
                return method(a, fn, "", S, a.bound, oname=f"_fz.a{fn}")
            if kind == "prod":
                a = self.bounded(a, 1.2)
                return call("np.prod", [a], S, a.bound ** n)
            if kind == "var":
                return call("np.var", [a], S, a.bound ** 2,
                            extra=ch.pick(["", "", ", ddof=1"]))
            if kind == "std":
                return call("np.std", [a], S, a.bound, oname="_fz.std")
            return call("np.sum", [power(a, 2)], S, a.bound ** 2 * n)
        axis, n = (0, 2) if shape == V else (1, 3)
        a = self.expr(M, d)
        kind = ch.weighted([("sum", 4), ("mean", 3), ("msum", 2), ("max", 2), ("var", 1),
                            ("stack", 1 if self.lists(shape) else 0)])
        if kind == "sum":
            return call("np.sum", [a], shape, a.bound * n, extra=f", axis={axis}")
        if kind == "mean":
            return call("np.mean", [a], shape, a.bound, extra=f", axis={axis}")
        if kind == "msum":
            fn = ch.pick(["sum", "mean"])
            return method(a, fn, f"axis={axis}", shape, a.bound * n)
        if kind == "max":
            fn = ch.pick(["max", "min"])
            if ch.coin(0.5):
                return method(a, fn, f"axis={axis}", shape, a.bound, oname=f"_fz.a{fn}")
            return call(f"np.{fn}", [a], shape, a.bound, oname=f"_fz.a{fn}", extra=f", axis={axis}")
        if kind == "var":
            return call("np.var", [a], shape, a.bound ** 2, extra=f", axis={axis}")
        return self.x_container(shape, d, only_stack=True)

    def x_linalg(self, shape, d) -> E:
        ch = self.ch
        if shape == S:
            kind = ch.pick(["matmul", "dot", "inner", "uMv", "trace", "mdot"])
            if kind == "uMv":
                u, m, v = self.expr(U, d), self.expr(M, d), self.expr(V, d)
                return binop(binop(u, "@", m, V, u.bound * m.bound * 2), "@", v, S,
                             u.bound * m.bound * v.bound * 6)
            if kind == "trace":
                a, b = self.expr(M, d), self.expr(M, d)
                return call("np.trace", [binop(a, "@", self.T(b, (3, 2)), (2, 2),
                                               a.bound * b.bound * 3)], S, a.bound * b.bound * 6)
            sh = ch.pick([V, U])
            a, b = self.expr(sh, d), self.expr(sh, d)
            bound = a.bound * b.bound * sh[0]
            if kind == "matmul":
                return binop(a, "@", b, S, bound)
            if kind == "mdot":
                return method(a, "dot", b.src, S, bound, oargs=None) if a.src == a.osrc and \
                    b.src == b.osrc and self.dot_ok(a) else call("np.dot", [a, b], S, bound)
            return call(f"np.{kind}", [a, b], S, bound)
        if shape == V:
            kind = ch.pick(["uM", "MTu", "dot", "einsum", "einsum2"])
            if kind == "einsum2":
                a, b = self.expr(M, d), self.expr(M, d)
                return call("np.einsum", ['"ij,ij->j"', a, b], V, a.bound * b.bound * 2)
            u, m = self.expr(U, d), self.expr(M, d)
            bound = u.bound * m.bound * 2
            if kind == "uM":
                return binop(u, "@", m, V, bound)
            if kind == "MTu":
                return binop(self.T(m, (3, 2)), "@", u, V, bound)
            if kind == "dot":
                return call("np.dot", [u, m], V, bound)
            return call("np.einsum", ['"ij,i->j"', m, u], V, bound)
        if shape == U:
            kind = ch.pick(["Mv", "mdot", "dot", "einsum", "vMT"])
            m, v = self.expr(M, d), self.expr(V, d)
            bound = m.bound * v.bound * 3
            if kind == "Mv":
                return binop(m, "@", v, U, bound)
            if kind == "mdot" and m.src == m.osrc and v.src == v.osrc and self.dot_ok(m):
                return method(m, "dot", v.src, U, bound)
            if kind == "vMT":
                return binop(v, "@", self.T(m, (3, 2)), U, bound)
            if kind == "einsum":
                return call("np.einsum", ['"ij,j->i"', m, v], U, bound)
            return call("np.dot", [m, v], U, bound)
        kind = ch.pick(["outer", "einsum", "mm"])
        if kind == "mm":
            a, b, c = self.expr(M, d), self.expr(M, d), self.expr(M, d)
            ab = binop(a, "@", self.T(b, (3, 2)), (2, 2), a.bound * b.bound * 3)
            return binop(ab, "@", c, M, a.bound * b.bound * c.bound * 6)
        u, v = self.expr(U, d), self.expr(V, d)
        if kind == "outer":
            return call("np.outer", [u, v], M, u.bound * v.bound)
        return call("np.einsum", ['"i,j->ij"', u, v], M, u.bound * v.bound)

    def T(self, a: E, shape) -> E:
        """``a.T``, or ``np.transpose(a)`` where ``.T`` would crash srcdiff (container-attr)."""
        if "container-attr" in TOLERATED and BOX in a.roots:
            return call("np.transpose", [a], shape, a.bound, fresh=False, roots=a.roots)
        return attr(a, ".T", shape, a.bound)

    def dot_ok(self, a: E) -> bool:
        return "global-dot" not in TOLERATED or a.src not in ("C3", "C2", "C23")

    def indexable(self, shape, d) -> E:
        """An array of ``shape`` to index: usually a variable (``h[0]`` reads better)."""
        vars_ = self.arrays(shape)
        if vars_ and self.ch.coin(0.7):
            return self.name_e(self.ch.pick(vars_))
        return self.expr(shape, d)

    def loop_index(self, n):
        """A loop index known to be < n, if any."""
        for f in reversed(self.frames):
            if f.index is not None and f.index_max is not None and f.index_max <= n:
                return f.index
        return None

    def x_index(self, shape, d) -> E:
        ch = self.ch
        if shape == S:
            kind = ch.weighted([("v", 3), ("m", 2), ("loop", 2 if self.loop_index(3) else 0),
                                ("argmax", 1), ("mask", 1)])
            if kind == "m":
                m = self.indexable(M, d)
                return attr(m, f"[{ch.int(0, 1)}, {ch.pick([0, 1, 2, -1])}]", S, m.bound,
                            fresh=SCALAR_INDEX_FRESH, roots=SCALAR_INDEX_ROOTS)
            a = self.indexable(V, d)
            if kind == "v":
                return attr(a, f"[{ch.pick([0, 1, 2, -1])}]", S, a.bound, fresh=SCALAR_INDEX_FRESH, roots=SCALAR_INDEX_ROOTS)
            if kind == "loop":
                return attr(a, f"[{self.loop_index(3)}]", S, a.bound, fresh=SCALAR_INDEX_FRESH, roots=SCALAR_INDEX_ROOTS)
            if kind == "argmax" and a.src == a.osrc:
                s = _par(a, ATOM)[0]
                return E(f"{s}[np.argmax({a.src})]", f"{s}[_fz.argmax({a.osrc})]", S, a.bound, ATOM,
                         SCALAR_INDEX_FRESH, NONE if SCALAR_INDEX_FRESH else a.roots)
            c = self.elem_cond(V, d, subject=a)
            s, o = _par(a, ATOM)
            return E(f"np.sum({s}[{c.src}])", f"np.sum({o}[{c.osrc}])", S, a.bound * 3)
        if shape == V:
            kind = ch.weighted([("row", 3), ("loop", 1 if self.loop_index(2) else 0),
                                ("rev", 1), ("fancy", 1), ("concat", 1), ("loopmod", 1 if self.frames and self.frames[-1].index else 0)])
            if kind in ("row", "loop", "loopmod"):
                m = self.indexable(M, d)
                if kind == "row":
                    idx = str(ch.pick([0, 1, -1]))
                elif kind == "loop":
                    idx = self.loop_index(2)
                else:
                    idx = f"{self.frames[-1].index} % 2"
                return attr(m, f"[{idx}]", V, m.bound)
            if kind == "rev":
                a = self.indexable(V, d)
                return attr(a, "[::-1]", V, a.bound)
            if kind == "fancy":
                a = self.indexable(V, d)
                return attr(a, ch.pick(["[np.array([0, 2, 2])]", "[np.array([1, 0, 1])]"]), V,
                            a.bound, fresh=FANCY_FRESH, roots=NONE if FANCY_FRESH else None)
            u, a = self.expr(U, d), self.indexable(V, d)
            part = attr(a, ch.pick(["[0:1]", "[2:]", "[-1:]"]), (1,), a.bound)
            return call("np.concatenate", [E(f"[{u.src}, {part.src}]", f"[{u.osrc}, {part.osrc}]",
                                             V, 0)], V, max(u.bound, a.bound))
        if shape == U:
            kind = ch.pick(["slice", "col", "fancy"])
            if kind == "col":
                m = self.indexable(M, d)
                return attr(m, f"[:, {ch.pick([0, 1, 2, -1])}]", U, m.bound)
            a = self.indexable(V, d)
            if kind == "fancy":
                return attr(a, ch.pick(["[np.array([2, 0])]", "[np.array([1, 1])]"]), U,
                            a.bound, fresh=FANCY_FRESH, roots=NONE if FANCY_FRESH else None)
            return attr(a, ch.pick(["[0:2]", "[1:]", "[:2]", "[::2]"]), U, a.bound)
        kind = ch.pick(["rev", "stack", "stack1", "concat", "bcast"])
        if kind == "rev":
            m = self.indexable(M, d)
            return attr(m, ch.pick(["[::-1]", "[:, ::-1]"]), M, m.bound)
        if kind == "stack":
            a, b = self.expr(V, d), self.expr(V, d)
            return call("np.stack", [E(f"[{a.src}, {b.src}]", f"[{a.osrc}, {b.osrc}]", M, 0)], M,
                        max(a.bound, b.bound))
        if kind == "stack1":
            es = [self.expr(U, d) for _ in range(3)]
            return call("np.stack", [E("[" + ", ".join(e.src for e in es) + "]",
                                       "[" + ", ".join(e.osrc for e in es) + "]", M, 0)], M,
                        max(e.bound for e in es), extra=", axis=1")
        if kind == "concat":
            a, b = self.indexable(M, d), self.indexable(M, d)
            pa, pb = attr(a, "[0:1]", (1, 3), a.bound), attr(b, "[1:]", (1, 3), b.bound)
            return call("np.concatenate", [E(f"[{pa.src}, {pb.src}]", f"[{pa.osrc}, {pb.osrc}]",
                                             M, 0)], M, max(a.bound, b.bound))
        v = self.expr(V, d)
        return call("np.broadcast_to", [v, "(2, 3)"], M, v.bound, fresh=False, roots=v.roots)

    def x_shape(self, shape, d) -> E:
        ch = self.ch
        if shape == S:
            return self.leaf(S)
        a = self.expr(shape, d)
        view = dict(fresh=False, roots=a.roots)
        if shape == V:
            kind = ch.pick(["reshape", "ravel", "squeeze", "flatten"])
            if kind == "reshape":
                return method(a, "reshape", "-1", V, a.bound, **view)
            if kind == "ravel":
                return call("np.ravel", [a], V, a.bound, **view)
            if kind == "flatten":
                return method(a, "flatten", "", V, a.bound)
            inner = method(a, "reshape", "1, 3", (1, 3), a.bound, **view)
            return call("np.squeeze", [inner], V, a.bound, **view)
        if shape == U:
            inner = call("np.expand_dims", [a, "1"], (2, 1), a.bound, **view)
            return call("np.squeeze", [inner], U, a.bound, extra=", axis=1", **view)
        kind = ch.pick(["TT", "transpose", "swap", "ravel", "reshape"])
        if kind == "TT":
            return self.T(self.T(a, (3, 2)), M)
        if kind == "transpose":
            return call("np.transpose", [self.T(a, (3, 2))], M, a.bound, **view)
        if kind == "swap":
            return call("np.swapaxes", [self.T(a, (3, 2)), "0", "1"], M, a.bound,
                        **view)
        if kind == "ravel":
            return method(method(a, "ravel", "", (6,), a.bound, **view), "reshape", "2, 3", M,
                          a.bound, **view)
        inner = call("np.reshape", [a, "(3, 2)"], (3, 2), a.bound, **view)
        return method(inner, "reshape", "2, 3", M, a.bound, **view)

    def x_kink(self, shape, d) -> E:
        ch = self.ch
        kind = ch.pick(["abs", "babs", "clip", "mclip", "max0"])
        a = self.expr(shape, d)
        if kind == "mclip" and shape == S:  # a Python float has no methods
            kind = "clip"
        if kind == "abs":
            return call("np.abs", [a], shape, a.bound, oname="_fz.abs")
        if kind == "babs":
            return call("abs", [a], shape, a.bound, oname="_fz.abs", fresh=OPAQUE_FRESH)
        if kind == "max0":
            fn = ch.pick(["maximum", "minimum"])
            c = lit(ch.pick([0.0, 0.1, -0.2]))
            return call(f"np.{fn}", [a, c], shape, a.bound, oname=f"_fz.{fn}")
        lo, hi = ch.pick([(-0.5, 0.5), (0.0, 1.0), (-1.0, 0.2)])
        if kind == "clip":
            return call("np.clip", [a, repr(lo), repr(hi)], shape, 1.0, oname="_fz.clip")
        return method(a, "clip", f"{lo!r}, {hi!r}", shape, 1.0, oname="_fz.clip")

    def x_ifexp(self, shape, d) -> E:
        a, b = self.expr(shape, d), self.expr(shape, d)
        c = self.cond(d)
        la, lo = _par(a, OR)
        ca, co = _par(c, OR)
        ra, ro = _par(b, IFX)
        return E(f"{la} if {ca} else {ra}", f"{lo} if {co} else {ro}", shape,
                 max(a.bound, b.bound), IFX, a.fresh and b.fresh and OPAQUE_FRESH,
                 a.roots | b.roots)

    def callables(self, shape):
        return [h for h in self.helpers if len(h.returns) == 1 and h.returns[0] == shape]

    def helper_call(self, h: Helper, d) -> E:
        ch = self.ch
        args = []
        roots = NONE
        keyword = False
        for k, (pname, pshape) in enumerate(h.params):
            if h.recursive and k == 1:
                args.append(str(ch.int(0, 3)))
                continue
            if isinstance(pshape, Box):
                e = self.box_arg(pshape, d)
            else:
                e = self.expr(pshape, d)
                e = self.stored(e) if e.roots else e
            roots |= e.roots
            text = (e.src, e.osrc)
            if k > 0 and not h.recursive and (keyword or ch.coin(0.2)):
                keyword = True
                text = (f"{pname}={e.src}", f"{pname}={e.osrc}")
            args.append(E(*text, pshape))
        for pname, _ in h.defaults:
            if ch.coin(0.3):
                e = self.bounded(self.expr(S, d), 1.5)
                args.append(E(f"{pname}={e.src}", f"{pname}={e.osrc}", S))
        for pname, pshape, _ in h.arr_defaults:  # def helper(u, w0=C3): passed or not
            if ch.coin(0.4):
                e = self.stored(self.bounded(self.expr(pshape, d), 1.5))
                roots |= e.roots
                args.append(E(f"{pname}={e.src}", f"{pname}={e.osrc}", pshape))
        for pname, pshape in h.optional:  # def helper(u, opt=None)
            if ch.coin(0.5):
                e = self.stored(self.bounded(self.expr(pshape, d), 1.5))
                roots |= e.roots
                args.append(E(f"{pname}={e.src}", f"{pname}={e.osrc}", pshape))
        shape = h.returns[0] if len(h.returns) == 1 else None
        self.prog.used.add(h.name)
        if not OPAQUE_FRESH:  # srcdiff takes every name in the arguments as shared from now on
            text = " ".join(a.src if isinstance(a, E) else a for a in args)
            for v in list(self.env.values()):
                if v.writable and re.search(rf"\b{v.name}\b", text):
                    self.set_var(replace(v, writable=False))
        return call(h.name, args, shape, BOUND, fresh=False, roots=roots)

    def x_call(self, shape, d) -> E:
        return self.helper_call(self.ch.pick(self.callables(shape)), d)

    def x_nondiff(self, shape, d) -> E:
        ch = self.ch
        kind = ch.pick(["sign", "floor", "mod", "cmpmul", "floordiv"])
        a = self.expr(shape, d)
        if kind == "mod":
            c = ch.pick([2.0, 1.5])
            s, o = _par(a, MUL)
            return E(f"{s} % {c!r}", f"_fz.mod({a.osrc}, {c!r})", shape, c, MUL)
        b = self.expr(ch.pick(sub_shapes(shape)[:2] if shape != S else [S]), d)
        if kind == "sign":
            f = call("np.sign", [b], b.shape, 1.0, oname="_fz.sign")
            return binop(a, "*", f, shape, a.bound)
        if kind == "floor":
            b = self.bounded(b, 1.0)
            f = call("np.floor", [binop(b, "*", lit(2.0), b.shape, 2.0)], b.shape, 2.0,
                     oname="_fz.floor")
            return binop(a, "*", f, shape, a.bound * 2)
        if kind == "floordiv":
            b = self.bounded(b, 1.0)
            s, o = _par(b, MUL)
            f = E(f"{s} // 0.5", f"_fz.floor({o} / 0.5)", b.shape, 2.0, MUL)
            return binop(a, "*", f, shape, a.bound * 2)
        c = compare(b, ">", lit(ch.pick(THRESH)), b.shape)
        return binop(E(f"({c.src})", f"({c.osrc})", b.shape, 1.0), "*", a, shape, a.bound)

    def x_custom(self, shape, d) -> E:
        """``softplus(e)``: a call srcdiff differentiates with the user's ``@srcdiff.adjoint``."""
        self.feature("custom-adjoint")
        a = self.bounded(self.expr(shape, d), 3.0)
        return call("softplus", [a], shape, a.bound + 1.0, fresh=False)

    def x_stopgrad(self, shape, d) -> E:
        a = self.expr(shape, d)
        site = self.prog.site()
        return E(f"srcdiff.stop_gradient({a.src})", f"_fz.frozen({site}, {a.osrc})", shape,
                 a.bound, ATOM, False, a.roots)

    def x_math(self, shape, d) -> E:
        ch = self.ch
        a = self.expr(S, d)
        kind = ch.pick(["tanh", "sin", "cos", "exp", "sqrt", "log", "atan"])
        if kind == "exp":
            a = self.bounded(a, 2.0)
            return call("math.exp", [a], S, math.exp(a.bound), fresh=OPAQUE_FRESH)
        if kind in ("sqrt", "log"):
            inner = binop(binop(a, "*", a, S, a.bound ** 2), "+", lit(1.0), S, a.bound ** 2 + 1)
            return call(f"math.{kind}", [inner], S, a.bound + 1, fresh=OPAQUE_FRESH)
        return call(f"math.{kind}", [a], S, 1.6, fresh=OPAQUE_FRESH)

    # containers
    def lists(self, shape):
        return [v for v in self.env.values() if v.kind == "list" and v.shape == shape
                and v.min_len >= 1]

    def container_reads(self, shape, only=None):
        """Callables making an E of ``shape`` read out of a container (``only``: that one)."""
        ch = self.ch
        out = []
        for var in self.env.values():
            if only is not None and var.name != only:
                continue
            if var.kind == "dict":
                for key, ksh in var.items:
                    if ksh == shape:
                        out.append(lambda var=var, key=key: E(
                            f'{var.name}["{key}"]', f'{var.name}["{key}"]', shape,
                            var.bound, ATOM, False, frozenset({BOX})))
            elif var.kind == "tuple":
                for k, ksh in enumerate(var.items):
                    if ksh == shape:
                        out.append(lambda var=var, k=k: E(f"{var.name}[{k}]", f"{var.name}[{k}]",
                                                          shape, var.bound, ATOM, False,
                                                          frozenset({BOX})))
            elif var.kind in ("ntuple", "dclass", "rec"):
                for key, ksh in var.items:
                    if ksh == shape:
                        out.append(lambda var=var, key=key: E(
                            f"{var.name}.{key}", f"{var.name}.{key}", shape, var.bound, ATOM,
                            False, frozenset({BOX})))
            elif var.kind == "layers":
                for key, ksh in var.items:
                    if ksh == shape:
                        out.append(lambda var=var, key=key: _same(E(
                            f'{var.name}[{ch.pick([0, 1, -1])}]["{key}"]', None, shape,
                            var.bound, ATOM, False, frozenset({BOX}))))
            elif var.kind == "list" and var.min_len >= 1:
                if var.shape == shape:
                    ks = [-1, 0] if not var.length else list(range(var.length)) + [-var.length]
                    out.append(lambda var=var, ks=ks: E(
                        f"{var.name}[{ch.pick(ks)}]", None, shape, var.bound, ATOM, False,
                        frozenset({BOX})))
            elif var.kind == "nested":
                (s0, s1), s2 = var.items
                for text, ksh in ((f"[0][{ch.int(0, 1)}]", s0 if s0 == s1 else None), ("[0][0]", s0),
                                  ("[0][1]", s1), (ch.pick(["[1]", "[-1]"]), s2)):
                    if ksh == shape:
                        out.append(lambda var=var, text=text: E(
                            f"{var.name}{text}", None, shape, var.bound, ATOM, False,
                            frozenset({BOX})))
        # the lambdas above that left osrc None read the same in both modules
        return [(lambda f=f: _same(f())) for f in out]

    def x_container(self, shape, d, only_stack=False) -> E:
        ch = self.ch
        stackable = [v for v in self.env.values() if v.kind == "list" and v.min_len >= 1 and
                     ((shape == S) or (v.shape == shape))]
        if (only_stack or ch.coin(0.3)) and stackable:
            var = ch.pick(stackable)
            st_ = E(f"np.stack({var.name})", f"np.stack({var.name})", (None,) + var.shape,
                    var.bound)
            if shape == S:
                fn = ch.pick(["np.sum", "np.mean"])
                return call(fn, [st_], S, var.bound * 20)
            fn = ch.pick(["np.sum", "np.mean"])
            return call(fn, [st_], shape, var.bound * 10, extra=", axis=0")
        return ch.pick(self.container_reads(shape))()

    # conditions
    def cond(self, d) -> E:
        ch = self.ch
        ints = self.int_conds()
        kind = ch.weighted([("const", 6), ("two", 2), ("chain", 1), ("bool", 1 if d > 0 else 0),
                            ("not", 1), ("int", 3 if ints else 0),
                            ("allany", 1 if self.comprehensions() else 0)])
        if kind == "allany":
            return self.comp_cond(d)
        if kind == "int":
            return plain_cond(ch.pick(ints))
        if kind == "const":
            return compare(self.cond_subject(d), ch.pick([">", "<", ">=", "<="]),
                           lit(ch.pick(THRESH)))
        if kind == "two":
            a, b = self.cond_subject(d), self.cond_subject(d)
            if a.src == b.src:
                b = binop(b, "+", lit(0.5), S, b.bound + 0.5)
            return compare(a, ch.pick([">", "<"]), b)
        if kind == "chain":
            a = self.cond_subject(d)
            lo, hi = ch.pick([(-0.5, 0.5), (0.0, 1.0), (-1.0, 0.3)])
            s = _par(a, CMP + 1)[0]
            return E(f"{lo!r} < {s} < {hi!r}", f"_fz.between({lo!r}, {a.osrc}, {hi!r})", S, 0,
                     CMP)
        if kind == "not":
            c = self.cond(d - 1)
            return E(f"not ({c.src})", f"not ({c.osrc})", S, 0, NOT)
        a, b = self.cond(d - 1), self.cond(d - 1)
        op, p = ch.pick([("and", AND), ("or", OR)])
        la, lo = _par(a, p + 1)
        ra, ro = _par(b, p + 1)
        return E(f"{la} {op} {ra}", f"{lo} {op} {ro}", S, 0, p)

    def cond_subject(self, d) -> E:
        """A scalar to branch on: usually a reduction of a variable."""
        ch = self.ch
        arrs = [v for v in self.arrays() if v.shape != S]
        if arrs and ch.coin(0.6):
            var = ch.pick(arrs)
            fn = ch.pick(["np.sum", "np.mean"])
            return call(fn, [self.name_e(var)], S, var.bound * 6)
        return self.expr(S, max(d, 1))

    def int_conds(self):
        out = []
        for f in self.frames:
            if f.index:
                out += [f"{f.index} % 2 == 0", f"{f.index} > 0", f"{f.index} == 1",
                        f"{f.index} != 1"]
        for v in self.env.values():
            if v.kind == "int" and v.is_arg:
                out += [f"{v.name} > 1", f"{v.name} == 0", f"{v.name} != 2"]
            elif v.kind == "dict":  # membership: a constant for differentiation
                key = v.items[0][0]
                out += [f'"{key}" in {v.name}', f'"gain" not in {v.name}']
        return out

    def elem_cond(self, shape, d, subject=None) -> E:
        ch = self.ch
        a = subject if subject is not None else self.expr(shape, d)
        return compare(a, ch.pick([">", "<"]), lit(ch.pick(THRESH)), shape)

    # ----- statements
    def block(self, n: int):
        for k in range(n):
            if self.budget <= 0 and k > 0:
                break
            self.statement()

    def statement(self):
        ch = self.ch
        self.budget -= 1
        compound = self.nest < 2 and self.budget > 0
        in_loop = bool(self.frames)
        writable = [v for v in self.arrays() if self.can_write(v)]
        scalars = self.aug_scalars()
        kind = ch.weighted([
            ("assign", 10 if not self.nest else 4),
            ("reassign", (4 if not self.nest else 10) if self.arrays() else 0),
            ("aug", 3 if writable or scalars else 0), ("alloc", 3),
            ("setitem", 7 if writable else 0),
            ("if", 5 if compound else 0), ("for", 7 if compound else 0),
            ("while", 3 if compound else 0), ("jump", 4 if in_loop else 0),
            ("raise", 1 if self.arrays() else 0),
            ("ret", 1 if in_loop and self.scalar_return else 0),
            ("early", 1 if self.scalar_return and not in_loop and self.nest == 0 else 0),
            ("unpack", 2 if [h for h in self.helpers if len(h.returns) > 1] else 0),
            ("list", 2), ("append", 3 if self.appendable() else 0), ("literal", 1),
            ("swap", 1), ("rows", 1 if self.arrays(M) else 0),
            ("no_grad", 2 if not self.in_no_grad else 0), ("annotated", 1),
            ("alias", 6 if self.alias else 0),
            ("odd", 2), ("alloc2", 2), ("cholesky", 2),
            ("recurrence", 3 if self.nest == 0 and not self.frames and self.arrays(M) else 0),
            ("boxret", 3 if [h for h in self.helpers if h.ret_box is not None] else 0),
            ("fnvar", 1 if FUNCTIONS_ON else 0), ("record", 2 if RECORDS_ON else 0),
            ("dictloop", 2 if compound and [v for v in self.env.values() if v.kind == "dict"] else 0),
        ])
        getattr(self, "s_" + kind)()

    def rhs_depth(self):
        return self.ch.int(1, 3)

    def assign_var(self, name: str, e: E, *, annotation: str | None = None):
        """``name = e``, for a new or an existing variable (rebinding)."""
        old = self.env.get(name)
        outer = any(name in f.outer for f in self.frames)
        if outer and e.roots:
            e = self.stored(e)  # a loop-carried view: capture or copy
        if not self.alias and not e.fresh and any(name in f.write for f in self.frames):
            # written in place earlier in the loop: the next iteration's write must not go
            # through an alias (of an argument, too) made here
            e = binop(e, "*", lit(1.0), e.shape, e.bound)
        if e.bound > BOUND:
            e = self.bounded(e)
        if "branch-alias" in TOLERATED and self.nest > 0 and old is not None and not e.fresh \
                and not self.alias:
            e = binop(e, "*", lit(1.0), e.shape, e.bound)  # no alias made inside a branch/loop
        writable = (e.fresh or self.alias and self.owned(e)) and not self.in_no_grad
        var = Var(name, "arr", e.shape, e.bound, writable, e.roots if not e.fresh else NONE)
        if old is not None and old.kind == "arr":
            var = replace(var, is_arg=False)
        target = f"{name}: {annotation}" if annotation else name
        if self.in_no_grad:
            site = self.prog.site()
            self.emit(f"{target} = {e.src}", f"{name} = _fz.frozen({site}, {e.osrc})")
        else:
            self.emit(f"{target} = {e.src}", f"{name} = _fz.v({e.osrc})")
        self.set_var(var)
        # rebinding a writable array leaves its views pointing to the old one: harmless; but
        # a view of the *old* object must not be taken for a view of the new
        if "views-by-name" not in TOLERATED:
            for v in list(self.env.values()):
                if name in v.roots and v.name != name:
                    self.env[v.name] = replace(v, roots=v.roots - {name})

    def new_shape(self):
        return self.ch.pick([V, S, M, U])

    def s_assign(self):
        shape = self.new_shape()
        e = self.expr(shape, self.rhs_depth())
        self.assign_var(self.names.new("s" if shape == S else "a"), e)

    def s_annotated(self):
        shape = self.new_shape()
        e = self.expr(shape, self.rhs_depth())
        self.assign_var(self.names.new("s" if shape == S else "a"), e,
                        annotation="float" if shape == S else "np.ndarray")

    def rebindable(self):
        if "rebind-iterated" not in TOLERATED:
            return self.arrays()
        iterated = set().union(*(f.iterated for f in self.frames)) if self.frames else set()
        return [v for v in self.arrays() if v.name not in iterated]

    def s_reassign(self):
        if not self.rebindable():
            return self.s_assign()
        var = self.ch.pick(self.rebindable())
        e = self.expr(var.shape, self.rhs_depth())
        if e.src == var.name:
            e = self.expr(var.shape, 2)
        if self.frames and self.ch.coin(0.5):
            e = self.bounded(e, 1.0)
        self.assign_var(var.name, e)

    def s_aug(self, var=None):
        ch = self.ch
        cands = [v for v in self.arrays() if self.can_write(v)] + self.aug_scalars()
        var = var or ch.pick(cands)
        op = ch.pick(["+=", "-=", "*=", "/="])
        eshape = ch.pick([s for s in sub_shapes(var.shape) if s != "col"])
        if op == "/=":
            e = self.positive(eshape, self.rhs_depth() - 1)
            bound = var.bound * 2
        else:
            e = self.expr(eshape, self.rhs_depth())
            if op == "*=":
                e = self.bounded(e, 1.2)
            bound = var.bound * e.bound if op == "*=" else var.bound + e.bound
        if "self-aug-view" in TOLERATED and var.shape != S and not e.fresh and \
                var.name in e.roots and not self.alias:
            e = binop(e, "*", lit(1.0), e.shape, e.bound)
        o = f"_fz.v({e.osrc})"
        self.emit(f"{var.name} {op} {e.src}", f"{var.name} {op} {o}")
        self.note_write(var.name)
        if var.shape == S and not self.alias:  # srcdiff takes the names it may alias as
            for root in var.roots:             # written too (a numpy scalar or a 0-d array)
                if root != var.name and root in self.env:
                    del self.env[root]
        self.set_var(replace(var, bound=bound))
        if bound > BOUND * 2:
            self.assign_var(var.name, call("np.tanh", [self.name_e(self.env[var.name])],
                                           var.shape, 1.0))

    def s_alloc(self):
        ch = self.ch
        shape = ch.pick([V, M, U])
        kind = ch.pick(["zeros", "ones", "zeros_like", "mul0"])
        text = {V: "3", U: "2", M: "(2, 3)"}[shape]
        like = self.arrays(shape)
        if kind in ("zeros_like", "mul0") and like:
            src = self.ch.pick(like).name
            text = f"np.zeros_like({src})" if kind == "zeros_like" else f"{src} * 0.0"
        else:
            text = f"np.{'ones' if kind == 'ones' else 'zeros'}({text})"
        name = self.names.new("alloc")
        self.emit(f"{name} = {text}")
        self.set_var(Var(name, "arr", shape, 1.0, True))

    def index_for(self, shape):
        """A write target ``[...]`` of ``shape`` and the shape of what it selects."""
        ch = self.ch
        li3, li2 = self.loop_index(3), self.loop_index(2)
        if shape == V:
            opts = [(f"[{ch.pick([0, 1, 2, -1])}]", S), ("[0:2]", U), ("[1:]", U), ("[:]", V)]
            if li3:
                opts += [(f"[{li3}]", S)] * 3
        elif shape == U:
            opts = [(f"[{ch.pick([0, 1])}]", S), ("[:]", U)]
            if self.frames and self.frames[-1].index:
                opts += [(f"[{self.frames[-1].index} % 2]", S)] * 2
        else:
            r, c = ch.int(0, 1), ch.pick([0, 1, 2, -1])
            opts = [(f"[{r}]", V), (f"[:, {c}]", U), (f"[{r}, {c}]", S), (f"[{r}, :]", V),
                    ("[:, 1:]", (2, 2))]
            if li2:
                opts += [(f"[{li2}]", V)] * 2
            if li3:
                opts += [(f"[{r}, {li3}]", S), (f"[:, {li3}]", U)]
        return ch.pick(opts)

    def s_setitem(self, var=None):
        ch = self.ch
        var = var or ch.pick([v for v in self.arrays() if self.can_write(v)])
        if var.shape == V and ch.coin(0.15):  # a scatter: repeated indices accumulate
            e = self.expr(ch.pick([V, S]), self.rhs_depth())
            fn = ch.pick(["add", "add", "subtract"])
            self.feature("ufunc-at")
            self.emit(f"np.{fn}.at({var.name}, [0, 2, 0], {e.src})",
                      f"np.{fn}.at({var.name}, [0, 2, 0], _fz.v({e.osrc}))")
            self.note_write(var.name)
            self.set_var(replace(var, bound=var.bound + 2 * e.bound))
            return
        index, sel = self.index_for(var.shape)
        eshape = S if sel == (2, 2) or ch.coin(0.25) else sel
        e = self.expr(eshape, self.rhs_depth())
        op = ch.pick(["=", "=", "+=", "-=", "*="]) if ch.coin(0.4) else "="
        if op == "*=":
            e = self.bounded(e, 1.2)
        self.emit(f"{var.name}{index} {op} {e.src}", f"{var.name}{index} {op} _fz.v({e.osrc})")
        self.note_write(var.name)
        bound = max(var.bound, e.bound) if op == "=" else (
            var.bound * e.bound if op == "*=" else var.bound + e.bound)
        self.set_var(replace(var, bound=bound))

    # control flow
    def merge(self, *envs) -> dict:
        """The variables certainly defined after paths ending in ``envs``, conservatively."""
        names = set(envs[0])
        for env in envs[1:]:
            names &= set(env)
        out = {}
        for name in names:
            vs = [env[name] for env in envs]
            v0 = vs[0]
            if any(v.kind != v0.kind or v.shape != v0.shape or v.items != v0.items for v in vs):
                continue
            out[name] = replace(v0, bound=max(v.bound for v in vs),
                                writable=all(v.writable for v in vs),
                                roots=frozenset().union(*(v.roots for v in vs)),
                                min_len=min(v.min_len for v in vs),
                                length=v0.length if all(v.length == v0.length for v in vs) else None,
                                is_arg=all(v.is_arg for v in vs))
        # keep the definition order (readability of later choices)
        return {k: out[k] for k in envs[0] if k in out}

    def sub_block(self, n):
        self.indent += 1
        self.nest += 1
        self.block(n)
        self.nest -= 1
        self.indent -= 1

    def s_if(self):
        ch = self.ch
        c = self.cond(ch.int(0, 2))
        before = dict(self.env)
        self.emit(f"if {c.src}:", f"if {c.osrc}:")
        self.sub_block(ch.int(1, 3))
        envs = [self.env]
        n_elif = ch.int(0, 1) if ch.coin(0.2) else 0
        for _ in range(n_elif):
            self.env = dict(before)
            self.no_emit = True  # no statement may come between the branch and the elif
            c2 = self.cond(ch.int(0, 1))
            self.no_emit = False
            self.emit(f"elif {c2.src}:", f"elif {c2.osrc}:")
            self.sub_block(ch.int(1, 2))
            envs.append(self.env)
        self.env = dict(before)
        if ch.coin(0.6):
            self.emit("else:")
            self.sub_block(ch.int(1, 3))
        envs.append(self.env)
        self.env = self.merge(*envs)

    def open_frame(self, pinned=NONE, index=None, index_max=None) -> Frame:
        viewed = set().union(*(v.roots for v in self.env.values())) if self.env else set()
        frame = Frame(outer=frozenset(self.env), index=index, index_max=index_max)
        for v in self.env.values():
            if v.kind == "arr" and v.writable and v.shape != S and (v.name in viewed or
                                                                    v.name in pinned):
                frame.capture.add(v.name)
        self.frames.append(frame)
        return frame

    def close_frame(self, frame: Frame, before: dict, body_end: dict):
        self.frames.pop()
        env = self.merge(before, body_end, *frame.exits)
        grown = {}
        for name, v in env.items():
            if v.kind == "arr" and name in body_end and body_end[name] is not before.get(name):
                grown[name] = replace(v, bound=v.bound * 2)
        env.update(grown)
        self.env = env
        if self.ch.coin(0.15):  # for … else / while … else: runs where no break left the loop
            self.feature("loop-else")
            self.emit("else:")
            self.sub_block(self.ch.int(1, 2))
            self.env = self.merge(env, self.env)
            grown = {name: self.env[name] for name in grown if name in self.env}
        for name, v in grown.items():  # loop-carried growth: squash what may have grown
            if v.bound > BOUND * 2 and not self.in_no_grad:
                self.assign_var(name, call("np.tanh", [self.name_e(v)], v.shape, 1.0))

    def s_for(self, kind=None, target=None):
        """A for loop; ``kind`` and ``target`` (a list or tuple variable) force one (a helper's
        first statement over its container parameter), whose body then reads the target."""
        ch = self.ch
        rows = self.arrays(M)
        lists = [v for v in self.env.values() if v.kind == "list"]
        layers = [v for v in self.env.values() if v.kind == "layers"]
        tuples = [v for v in self.env.values() if v.kind == "tuple" and len(set(v.items)) == 1]
        sized = [v for v in self.arrays() if v.shape != S]
        kind = kind or ch.weighted([
            ("layers", 6 if layers else 0), ("range", 8),
            ("range_n", 3 if "n" in self.env and self.env["n"].kind == "int" else 0),
            ("rows", 2 if rows else 0), ("enumerate", 2 if rows else 0),
            ("zip", 2 if rows else 0), ("tuple", 1), ("list_for", 2 if lists else 0),
            ("list_enumerate", 1 if lists else 0), ("list_zip", 1 if lists else 0),
            ("tuple_var", 1 if tuples else 0), ("range_len", 2 if sized else 0)])
        before = dict(self.env)
        acc = None
        new_list = None
        if kind in ("range", "tuple", "rows", "enumerate") and ch.coin(0.35):
            new_list = self.make_list()
            before = dict(self.env)
        pinned, targets, iterated = set(), [], set()
        idx = self.names.new("idx") if kind in ("range", "range_n", "enumerate", "list_enumerate",
                                                 "range_len") else None
        k = None
        iterated_list = zipped = None
        if kind == "range":
            k = ch.int(1, 3)
            start = 1 if k > 1 and ch.coin(0.15) else 0
            header = f"for {idx} in range({k}):" if not start else f"for {idx} in range(1, {k}):"
            index_max = k
        elif kind == "range_n":
            header, index_max = f"for {idx} in range(n):", None
        elif kind == "layers":
            lv = ch.pick(layers)
            t = "layer" if "layer" not in self.env else self.names.new("row")
            header = f"for {t} in {lv.name}:"
            targets.append(Var(t, "dict", (), lv.bound, False, frozenset({BOX}), items=lv.items))
            k, index_max = 2, None
        elif kind in ("rows", "enumerate", "zip"):
            m = ch.pick(rows)
            me = self.name_e(m)
            pinned |= me.roots
            iterated.add(m.name)
            row = self.names.new("row")
            targets.append(Var(row, "arr", V, m.bound, False, me.roots))
            index_max = 2
            if kind == "rows":
                header = f"for {row} in {m.name}:"
                if ch.coin(0.2):  # the rows of what an operation makes
                    header = f"for {row} in -{m.name}:"
                    self.feature("loop-over-operation")
                k = 2
            elif kind == "enumerate":
                header = f"for {idx}, {row} in enumerate({m.name}):"
                k = 2
                if ch.coin(0.3):  # counted from 1: idx is a number, not an index
                    header = f"for {idx}, {row} in enumerate({m.name}, 1):"
                    index_max = None
                    self.feature("enumerate-start")
            else:
                others = [v for v in rows if v.name != m.name]
                if others and ch.coin(0.6):
                    other = ch.pick(others)
                else:  # zip needs names: make one
                    self.assign_var(self.names.new("a"), self.stored(self.expr(M, 1)))
                    other = list(self.env.values())[-1]
                    before = dict(self.env)
                oe = self.name_e(other)
                pinned |= oe.roots
                iterated.add(other.name)
                row2 = self.names.new("row")
                header = f"for {row}, {row2} in zip({m.name}, {other.name}):"
                if ch.coin(0.3):  # a nested target
                    idx = self.names.new("idx")
                    header = f"for {idx}, ({row}, {row2}) in enumerate(zip({m.name}, {other.name})):"
                    self.feature("enumerate-zip")
                targets.append(Var(row2, "arr", V, other.bound, False, oe.roots))
                k = 2
        elif kind == "tuple":
            shape = ch.pick([V, S, U])
            es = [self.expr(shape, 1) for _ in range(ch.int(2, 3))]
            es = [self.stored(e) for e in es]
            t = self.names.new("row")
            header = (f"for {t} in ({', '.join(e.src for e in es)}):",
                      f"for {t} in ({', '.join(e.osrc for e in es)}):")
            targets.append(Var(t, "arr", shape, max(e.bound for e in es), False, NONE))
            k, index_max = len(es), None
        elif kind == "range_len":
            a = ch.pick(sized)
            k = index_max = a.shape[0]
            header = ch.pick([f"for {idx} in range(len({a.name})):",
                              f"for {idx} in range({a.name}.shape[0]):"])
            self.feature("range-len")
        elif kind == "tuple_var":
            tv = self.env[target] if target else ch.pick(tuples)
            t = self.names.new("row")
            header = f"for {t} in {tv.name}:"
            targets.append(Var(t, "arr", tv.items[0], tv.bound, False, frozenset({BOX})))
            k, index_max = len(tv.items), None
        else:
            lst = self.env[target] if target else ch.pick(lists)
            iterated_list = lst.name
            t = self.names.new("row")
            header = f"for {t} in {lst.name}:"
            if kind == "list_enumerate":
                header = f"for {idx}, {t} in enumerate({lst.name}):"
                self.feature("enumerate-list")
            elif kind == "list_zip":
                other = ch.pick([v for v in self.env.values() if v.kind == "list"])
                t2 = self.names.new("row")
                header = f"for {t}, {t2} in zip({lst.name}, {other.name}):"
                targets.append(Var(t2, "arr", other.shape, other.bound, False, frozenset({BOX})))
                zipped = other.name
                self.feature("zip-lists")
            targets.append(Var(t, "arr", lst.shape, lst.bound, False, frozenset({BOX})))
            index_max = None
        if target is not None:  # the body reads what the loop runs over
            acc = self.names.new("s")
            self.emit(f"{acc} = 0.0")
            self.set_var(Var(acc, "arr", S, 1.0, True))
            before = dict(self.env)
        if idx is not None:
            targets.append(Var(idx, "int", S, 3.0))
        if kind == "range_n":
            index_max = None
        frame = self.open_frame(pinned=pinned, index=idx, index_max=index_max if kind in (
            "range", "enumerate") else None)
        if iterated_list:
            frame.lists.add(iterated_list)
        if zipped:
            frame.lists.add(zipped)
        frame.iterated |= iterated
        if isinstance(header, tuple):
            self.emit(*header)
        else:
            self.emit(header)
        for t in targets:
            self.set_var(t)
        self.indent += 1
        self.nest += 1
        if new_list is not None:
            self.append_to(new_list, first=True)
        if acc is not None:
            reads = [v for v in targets if v.kind == "arr"]
            terms = [f"np.sum(np.tanh({v.name}))" for v in reads]
            if idx is not None:
                terms[0] = f"{terms[0]} * ({idx} + 1.0)"
            self.emit(f"{acc} = {acc} + " + " + ".join(terms),
                      f"{acc} = _fz.v({acc} + " + " + ".join(terms) + ")")
            self.set_var(Var(acc, "arr", S, 20.0, True))
        self.block(ch.int(1, 3) if acc is None else ch.int(0, 1))
        self.nest -= 1
        self.indent -= 1
        body_end = self.env
        if new_list is not None and new_list in body_end and k:
            before[new_list] = replace(before[new_list], min_len=1)
        self.close_frame(frame, before, body_end)
        if new_list is not None and new_list in self.env and ch.coin(0.8):
            self.use_list(new_list)

    def s_while(self):
        ch = self.ch
        cnt = self.names.new("count")
        self.emit(f"{cnt} = 0")
        self.set_var(Var(cnt, "int", S, 4.0))
        limit = ch.int(1, 4)
        before = dict(self.env)
        if ch.coin(0.5):
            c = self.cond(0)
            cs, co = _par(c, AND + 1)
            header = (f"while {cnt} < {limit} and {cs}:", f"while {cnt} < {limit} and {co}:")
        else:
            header = (f"while {cnt} < {limit}:",) * 2
        frame = self.open_frame()
        self.emit(*header)
        self.indent += 1
        self.nest += 1
        self.emit(f"{cnt} += 1")
        self.block(ch.int(1, 3))
        self.nest -= 1
        self.indent -= 1
        self.close_frame(frame, before, self.env)

    def s_jump(self):
        ch = self.ch
        c = self.cond(ch.int(0, 1))
        word = ch.pick(["break", "continue"])
        self.emit(f"if {c.src}:", f"if {c.osrc}:")
        self.indent += 1
        self.emit(word)
        self.indent -= 1
        self.frames[-1].exits.append(dict(self.env))

    def s_raise(self):
        """An input check that never fires (every value is finite here), with an f-string
        message: the derivative keeps it as written."""
        v = self.ch.pick(self.arrays())
        self.feature("raise")
        self.emit(f"if not np.all(np.isfinite({v.name})):")
        self.indent += 1
        self.emit(f'raise FloatingPointError(f"{v.name} is not finite: '
                  f'{{np.sum(~np.isfinite({v.name}))}} values of {{np.size({v.name})}}")')
        self.indent -= 1

    def s_ret(self):
        c = self.cond(self.ch.int(0, 1))
        e = self.final_scalar()
        self.emit(f"if {c.src}:", f"if {c.osrc}:")
        self.indent += 1
        self.emit(f"return {e.src}", f"return _fz.v({e.osrc})")
        self.indent -= 1

    def s_early(self):
        self.s_ret()

    def s_unpack(self, h=None):
        ch = self.ch
        h = h or ch.pick([h for h in self.helpers if len(h.returns) > 1])
        e = self.helper_call(h, self.ch.int(0, 2))
        names = [self.names.new("s" if sh == S else "a") for sh in h.returns]
        self.emit(f"{', '.join(names)} = {e.src}", f"{', '.join(names)} = _fz.v({e.osrc})")
        for n, sh in zip(names, h.returns):
            self.set_var(Var(n, "arr", sh, BOUND, False, e.roots))

    # lists, dicts, tuples
    def appendable(self):
        """Lists ``append`` may extend: local ones no loop iterates over, never one a helper
        was given or returned (``is_arg``)."""
        blocked = set().union(*(f.lists for f in self.frames)) if self.frames else set()
        return [v for v in self.env.values() if v.kind == "list" and v.name not in blocked
                and not v.is_arg]

    def make_list(self) -> str:
        name = self.names.new("list")
        shape = self.ch.pick([V, S, U, M])
        if self.ch.coin(0.3):
            e = self.stored(self.expr(shape, 1))
            self.emit(f"{name} = [{e.src}]", f"{name} = [{e.osrc}]")
            self.set_var(Var(name, "list", shape, e.bound, min_len=1, length=1))
        else:
            self.emit(f"{name} = []")
            self.set_var(Var(name, "list", shape, 1.0, min_len=0, length=0))
        return name

    def append_to(self, name, first=False):
        var = self.env[name]
        e = self.stored(self.expr(var.shape, self.ch.int(0, 2)))
        self.emit(f"{name}.append({e.src})", f"{name}.append(_fz.v({e.osrc}))")
        var = self.env[name]
        self.set_var(replace(var, bound=max(var.bound, e.bound),
                             min_len=var.min_len + (1 if (not self.frames or first) else 0),
                             length=var.length + 1 if var.length is not None and not self.frames
                             else None))

    def s_list(self):
        name = self.make_list()
        if self.ch.coin(0.5):
            self.append_to(name)
            var = self.env[name]
            if var.length and not self.frames and self.ch.coin(0.3):  # an entry written
                e = self.stored(self.expr(var.shape, 1))
                i = self.ch.pick([0, -1])
                self.feature("list-write")
                self.emit(f"{name}[{i}] = {e.src}", f"{name}[{i}] = _fz.v({e.osrc})")
                self.set_var(replace(var, bound=max(var.bound, e.bound)))

    def s_append(self):
        self.append_to(self.ch.pick(self.appendable()).name)

    def use_list(self, name):
        var = self.env[name]
        if var.min_len < 1:
            return
        ch = self.ch
        kind = ch.pick(["stack", "last", "loop"])
        if kind == "loop":
            t = self.names.new("row")
            acc = self.names.new("s")
            self.emit(f"{acc} = 0.0")
            self.emit(f"for {t} in {name}:")
            self.indent += 1
            self.emit(f"{acc} = {acc} + np.sum(np.tanh({t}))", f"{acc} = _fz.v({acc} + np.sum(np.tanh({t})))")
            self.indent -= 1
            self.set_var(Var(acc, "arr", S, 10.0, True))
            return
        if kind == "stack":
            e = E(f"np.stack({name})", f"np.stack({name})", (None,), var.bound)
            fn = ch.pick(["np.sum", "np.mean"])
            if var.shape == S or ch.coin(0.3):
                r = call(fn, [e], S, var.bound * 10)
            else:
                r = call(fn, [e], var.shape, var.bound * 10, extra=", axis=0")
        else:
            r = E(f"{name}[-1]", f"{name}[-1]", var.shape, var.bound, ATOM, False,
                  frozenset({BOX}))
        self.assign_var(self.names.new("s" if r.shape == S else "a"), r)

    def s_literal(self):
        ch = self.ch
        if ch.coin(0.5):
            keys = ch.pick([("w", "b"), ("a",), ("scale", "shift", "gain")])
            es = [self.stored(self.expr(self.new_shape(), 1)) for _ in keys]
            name = self.names.new("dict")
            body = ", ".join(f'"{k}": {e.src}' for k, e in zip(keys, es))
            obody = ", ".join(f'"{k}": {e.osrc}' for k, e in zip(keys, es))
            self.emit(f"{name} = {{{body}}}", f"{name} = _fz.v({{{obody}}})")
            items = [(k, e.shape) for k, e in zip(keys, es)]
            bound = max(e.bound for e in es)
            if not self.frames and ch.coin(0.3):  # filled by writes: a new key, then a changed one
                e = self.stored(self.expr(self.new_shape(), 1))
                self.feature("dict-write")
                self.emit(f'{name}["extra"] = {e.src}', f'{name}["extra"] = _fz.v({e.osrc})')
                k, shape = items[0]
                e2 = self.bounded(binop(E(f'{name}["{k}"]', f'{name}["{k}"]', shape, bound), "*",
                                        lit(0.5), shape, bound * 0.5), BOUND)
                self.emit(f'{name}["{k}"] = {e2.src}', f'{name}["{k}"] = _fz.v({e2.osrc})')
                items.append(("extra", e.shape))
                bound = max(bound, e.bound)
            self.set_var(Var(name, "dict", (), bound, items=tuple(items)))
        else:
            es = [self.stored(self.expr(self.new_shape(), 1)) for _ in range(ch.int(2, 3))]
            name = self.names.new("tuple")
            self.emit(f"{name} = ({', '.join(e.src for e in es)})",
                      f"{name} = _fz.v(({', '.join(e.osrc for e in es)}))")
            self.set_var(Var(name, "tuple", (), max(e.bound for e in es),
                             items=tuple(e.shape for e in es)))

    def s_swap(self):
        ch = self.ch
        used = set().union(*(v.roots for v in self.env.values())) if self.env else set()
        pairs = [(a, b) for a in self.rebindable() for b in self.rebindable()
                 if a.name < b.name and a.shape == b.shape and a.name not in used and
                 b.name not in used and not a.roots and not b.roots and not a.writable and
                 not b.writable]
        if not pairs:
            return self.s_assign()
        a, b = ch.pick(pairs)
        self.emit(f"{a.name}, {b.name} = {b.name}, {a.name}")
        self.set_var(replace(b, name=a.name, is_arg=False))
        self.set_var(replace(a, name=b.name, is_arg=False))

    def s_rows(self):
        m = self.ch.pick(self.arrays(M))
        me = self.name_e(m)
        if not self.can_capture(me):
            return self.s_assign()
        self.note_capture(me)
        r0, r1 = self.names.new("a"), self.names.new("a")
        self.emit(f"{r0}, {r1} = {m.name}")
        for r in (r0, r1):
            self.set_var(Var(r, "arr", V, m.bound, False, me.roots))

    def s_recurrence(self):
        """An RNN's loop over every row of a matrix ``x`` (``range(x.shape[0])``,
        ``range(len(x))``, ``for x_t in x``): ``h = np.tanh(w @ h + m @ x[t])`` with ``m`` a
        matrix variable and ``w`` a (2, 2) matrix made before the loop, the products spelled
        ``@``, ``np.dot`` or ``.dot``. The ``batch`` stage sums ``m``'s and ``w``'s adjoints
        after the loop, and where ``x`` is an argument the function never rebinds, the
        ``rows`` stage reads its rows from ``x`` instead of the tape. At the function's top
        level only (the stages' loops); ``h`` is a new variable after the loop."""
        ch = self.ch
        self.feature("recurrence-rows")
        x = ch.pick([v for v in self.arrays(M) if v.is_arg] or self.arrays(M))
        others = [v for v in self.arrays(M) if v.name != x.name]
        if others and ch.coin(0.5):
            m = ch.pick(others).name
        else:  # a matrix of its own, made from the others (so its adjoint is a loop's sum)
            e = self.bounded(self.expr(M, ch.int(1, 2)), 1.0)
            m = self.names.new("a")
            self.emit(f"{m} = {e.src}", f"{m} = _fz.v({e.osrc})")
        a = self.bounded(self.expr(M, ch.int(0, 1)), 0.7)
        b = self.bounded(self.expr(M, 0), 0.7)
        (a_s, a_o), (b_s, b_o) = _par(a, ATOM), _par(b, ATOM)
        w = self.names.new("a")
        self.emit(f"{w} = 0.3 * ({a_s} @ {b_s}.T)", f"{w} = _fz.v(0.3 * ({a_o} @ {b_o}.T))")
        h0 = self.bounded(self.expr(U, self.rhs_depth()), 1.0)
        h = self.names.new("a")
        self.emit(f"{h} = {h0.src}", f"{h} = _fz.v({h0.osrc})")
        spelling = ch.pick(["shape", "len", "rows"])
        t = self.names.new("a" if spelling == "rows" else "idx")
        header, row = {"shape": (f"for {t} in range({x.name}.shape[0]):", f"{x.name}[{t}]"),
                       "len": (f"for {t} in range(len({x.name})):", f"{x.name}[{t}]"),
                       "rows": (f"for {t} in {x.name}:", t)}[spelling]
        product = ch.pick(["{} @ {}", "np.dot({}, {})", "{}.dot({})"])
        if ch.coin(0.35):  # the states in a list read only at its end (the lasts stage)
            self.feature("recurrence-list")
            hs = self.names.new("list")
            value = f"np.tanh({product.format(w, hs + '[-1]')} + {product.format(m, row)})"
            self.emit(f"{hs} = [{h}]")
            self.emit(header)
            self.indent += 1
            self.emit(f"{hs}.append({value})", f"{hs}.append(_fz.v({value}))")
            self.indent -= 1
            self.emit(f"{h} = {hs}[-1]")
            self.set_var(Var(h, "arr", U, 1.0, False))
            return
        value = f"np.tanh({product.format(w, h)} + {product.format(m, row)})"
        self.emit(header)
        self.indent += 1
        self.emit(f"{h} = {value}", f"{h} = _fz.v({value})")
        self.indent -= 1
        self.set_var(Var(h, "arr", U, 1.0, False))

    def s_cholesky(self):
        """A Gaussian process's lines as textbooks spell them: ``K`` factored once, the factor
        read by two solves (``K^-1 u``) and by the log-determinant, sometimes once more on its
        own (so the factorisation's rule runs beside the ``factors`` stage's calls,
        ``rt.cholesky_solve`` and ``rt.cholesky_log_diagonal``, which it writes for the lines at
        a function's top level; in a loop or a branch the lines are differentiated as written).
        ``K = m @ m.T + 3 I`` with ``m``'s elements within 1 has its eigenvalues in [3, 9]:
        no kink, ``|K^-1 u| <= |u| / 2``, the factor's diagonal in [1.2, 2.5]. ``K``, the factor
        and an inner solve on its own line are not variables later statements read: the stage
        finds its idiom only where the solve and the transpose are read once."""
        ch = self.ch
        self.feature("cholesky-factor")
        m = self.bounded(self.expr(M, ch.int(0, 1)), 0.7)
        ms, mo = _par(m, ATOM)
        k_name, l_name = self.names.new("a"), self.names.new("a")
        self.emit(f"{k_name} = {ms} @ {ms}.T + 3.0 * np.eye(2)",
                  f"{k_name} = _fz.v({mo} @ {mo}.T + 3.0 * np.eye(2))")
        self.emit(f"{l_name} = np.linalg.cholesky({k_name})",
                  f"{l_name} = _fz.v(np.linalg.cholesky({k_name}))")
        factor = E(l_name, l_name, (2, 2), 2.5)

        def solve():
            u = self.expr(U, self.rhs_depth())
            z = call("np.linalg.solve", [factor, u], U, u.bound)
            if ch.coin(0.3):  # the inner solve on a line of its own
                name = self.names.new("a")
                self.emit(f"{name} = {z.src}", f"{name} = _fz.v({z.osrc})")
                z = E(name, name, U, z.bound)
            upper = ch.pick([f"{l_name}.T", f"np.transpose({l_name})",
                             f"{l_name}.swapaxes(-1, -2)"])
            self.assign_var(self.names.new("a"), call(
                "np.linalg.solve", [E(upper, upper, (2, 2)), z], U, u.bound / 2))

        def log_det():
            q = ch.pick([f"np.sum(np.log(np.diag({l_name})))",
                         f"np.log(np.diag({l_name})).sum()"])
            e = E(q, q, S, 2.0)
            self.assign_var(self.names.new("s"),
                            binop(lit(2.0), "*", e, S, 4.0) if ch.coin(0.3) else e)

        def spd():  # K's own log-determinant and solve: they share one factor in grad
            sign, logdet = self.names.new("a"), self.names.new("s")
            self.emit(f"{sign}, {logdet} = np.linalg.slogdet({k_name})",
                      f"{sign}, {logdet} = _fz.v(np.linalg.slogdet({k_name}))")
            self.set_var(Var(logdet, "arr", S, 2.5, False))
            u = self.expr(U, self.rhs_depth())
            self.assign_var(self.names.new("a"), call(
                "np.linalg.solve", [E(k_name, k_name, (2, 2)), u], U, u.bound / 2))

        parts = ch.pick([(solve, log_det), (log_det, solve)])
        if ch.coin(0.3):  # (rt.slogdet_spd, rt.solve_spd, rt.spd_factor)
            parts = (*parts, spd)
        for part in parts:
            part()
        if ch.coin(0.3):  # the factor read on its own: the factorisation's rule runs too
            u = self.expr(U, 1)
            self.assign_var(self.names.new("a"), binop(factor, "@", u, U, 5.0 * u.bound))

    def s_no_grad(self):
        ch = self.ch
        self.emit("with srcdiff.no_grad():", "if True:  # no_grad: values are frozen")
        self.indent += 1
        self.in_no_grad = True
        for _ in range(ch.int(1, 2)):
            if self.rebindable() and ch.coin(0.3):
                var = ch.pick(self.rebindable())
                self.assign_var(var.name, self.expr(var.shape, self.rhs_depth()))
            else:
                shape = self.new_shape()
                self.assign_var(self.names.new("s" if shape == S else "a"),
                                self.expr(shape, self.rhs_depth()))
        self.in_no_grad = False
        self.indent -= 1

    # returns
    def final_scalar(self) -> E:
        """A scalar combining several live variables (so the gradient sees the program)."""
        ch = self.ch
        arrs = [v for v in self.arrays() if not v.is_arg] or self.arrays()
        terms = []
        for var in list(reversed(arrs))[:ch.int(1, 4)]:
            e = self.name_e(var)
            if var.shape == S:
                terms.append(e if var.bound <= BOUND else call("np.tanh", [e], S, 1.0))
                continue
            kind = ch.pick(["sum", "sumsq", "meantanh", "mean"])
            if kind == "sum":
                terms.append(call("np.sum", [e], S, var.bound * 6))
            elif kind == "sumsq":
                terms.append(call("np.sum", [power(self.bounded(e, 3.0), 2)], S, 54))
            elif kind == "meantanh":
                terms.append(call("np.mean", [call("np.tanh", [e], var.shape, 1.0)], S, 1))
            else:
                terms.append(call("np.mean", [e], S, var.bound))
        if ch.coin(0.3) or not terms:
            terms.append(self.expr(S, 1))
        out = terms[0]
        for t in terms[1:]:
            out = binop(out, "+", t, S, out.bound + t.bound)
        return out

    def some_value(self, shape=None) -> E:
        arrs = [v for v in self.arrays() if not v.is_arg and (shape is None or v.shape == shape)]
        if arrs and self.ch.coin(0.7):
            return self.name_e(self.ch.pick(arrs))
        return self.expr(shape if shape is not None else self.new_shape(), 1)


def _same(e: E) -> E:
    return replace(e, osrc=e.src) if e.osrc is None else e


# ----------------------------------------------------------------------------- programs


Weights = collections.namedtuple("Weights", ["W", "c"])  # the type of a namedtuple argument


@dataclasses.dataclass
class Model:
    """The type of a dataclass argument."""

    W: object
    c: object


@dataclass(frozen=True)
class Param:
    name: str
    kind: str          # "float", "int", "dict", "tuple", "ntuple", "layers", "default"
    shape: tuple = ()
    scalar: str = "float"   # how a float scalar is passed: "float", "float64", "0d"
    items: tuple = ()  # dict: ((key, shape), ...); tuple: (shape, ...)
    value: object = None
    dtype: str = "float64"  # an array argument's dtype (float32: its gradient stays float32)


@dataclass
class Program:
    """A generated program: the clean module, its oracle twin, and how to call srcdiff."""

    source: str
    oracle_source: str
    params: tuple
    call: str          # "grad", "value_and_grad", "vjp", "grad_aux", "value_and_grad_aux"
    wrt: object        # as passed to srcdiff
    wrt_names: tuple
    output: str        # "scalar", "tuple", "dict", "aux"
    seed: int
    main: str = "f"
    aliasing: bool = False   # alias mode: srcdiff may refuse (a view/in-place error), not err
    features: frozenset = frozenset()  # the generator features it uses (tests/fuzz/coverage.py)
    expect: str = "ok"       # "ok": a correct gradient; "refuse": a side effect srcdiff must refuse
    refusable: tuple = ()    # regexes: a SrcdiffError matching one is a clean refusal, not an error
    effects: tuple = ()      # expect "refuse": the lines (stripped) a located refusal may point at

    def call_text(self) -> str:
        args = ", ".join(p.name for p in self.params if p.kind != "default")
        if self.call == "vjp":
            return f"srcdiff.vjp({self.main}, {args})"
        fn = "grad" if self.call.startswith("grad") else "value_and_grad"
        aux = ", has_aux=True" if self.call.endswith("aux") else ""
        return f"srcdiff.{fn}({self.main}, wrt={self.wrt!r}{aux})({args})"

    def __repr__(self) -> str:
        args = make_args(self)[0]
        shown = ", ".join(f"{p.name}={_show(a)}" for p, a in zip(self.params, args))
        return (f"\n{self.source}\n# {self.call_text()}\n# arguments (seed {self.seed}): {shown}\n")


def _show(a):
    if dataclasses.is_dataclass(a):
        return f"{type(a).__name__}(" + ", ".join(
            f"{f.name}={_show(getattr(a, f.name))}" for f in dataclasses.fields(a)) + ")"
    if hasattr(a, "_fields"):
        return f"{type(a).__name__}(" + ", ".join(f"{k}={_show(v)}" for k, v in zip(a._fields, a)) + ")"
    if isinstance(a, list):
        return "[" + ", ".join(_show(v) for v in a) + "]"
    if isinstance(a, dict):
        return "{" + ", ".join(f"{k!r}: {_show(v)}" for k, v in a.items()) + "}"
    if isinstance(a, tuple):
        return "(" + ", ".join(_show(v) for v in a) + ",)"
    if isinstance(a, np.ndarray):
        return f"np.array({np.round(a, 4).tolist()!r})"
    if isinstance(a, np.generic):
        return f"np.float64({float(a)!r})"
    return repr(a)


HEADER = """\
import collections
import dataclasses
import io
import math

import numpy as np
import srcdiff
from numpy import tanh as th

C3 = np.array([0.5, -0.25, 0.75])
C2 = np.array([0.3, -0.6])
C23 = np.array([[0.2, -0.4, 0.6], [-0.1, 0.3, 0.5]])
C33 = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.1, 0.2, 0.6]])
C22 = np.array([[0.6, -0.3], [0.2, 0.5]])
C2S = np.array([-0.5, 0.5])  # sorted, for np.searchsorted
SINK = io.StringIO()  # where print() writes


class Holder:
    \"\"\"An object to set attributes on.\"\"\"
""" + RECORDS_HEADER


SCIPY_OK = scipy_available()
# a function with the user's own adjoint rule (srcdiff.adjoint), put in the module when used
CUSTOM = """

def softplus(z):
    return np.log1p(np.exp(z))


@srcdiff.adjoint(softplus)
def softplus_adjoint(g, z):
    return g / (1.0 + np.exp(-z))
"""


class ProgramGen:
    def __init__(self, draw):
        self.ch = Chooser(draw)
        self.aliasing = False
        self._sites = itertools.count(1)
        self.used = set()   # helpers called from f or another helper
        self.features: set[str] = set()
        self.scipy = False  # the program calls scipy: the module imports it
        self.refusable: list[str] = []  # see Program.refusable
        self.effects: list[str] = []    # see Program.effects

    def site(self) -> int:
        return next(self._sites)

    def render(self, name, params_text, fg: FnGen, doc=None):
        clean, oracle = [f"def {name}({params_text}):"], [f"def {name}({params_text}):"]
        if doc:
            clean.append(f'    """{doc}"""')
            oracle.append(f'    """{doc}"""')
        for indent, c, o in fg.lines:
            clean.append("    " * indent + c)
            oracle.append("    " * indent + o)
        return "\n".join(clean) + "\n", "\n".join(oracle) + "\n"

    def helper(self, k: int, helpers) -> tuple[Helper, str, str]:
        ch = self.ch
        name = f"helper{k}"
        if ch.coin(0.15):  # recursion
            shape = ch.pick([V, S, U])
            fg = FnGen(self, {"a": Var("a", "arr", shape, 1.5, is_arg=True)}, helpers=[],
                       names=Names(["a", "depth"]), budget=0, scalar_return=False,
                       self_name=f"rec{k}")
            inner = fg.expr(shape, 1)
            inner = call(ch.pick(["np.tanh", "np.sin"]),
                         [binop(binop(E("a", "a", shape, 1.5), "*", lit(0.8), shape, 1.2), "+",
                                inner, shape, 3)], shape, 1.0)
            name = f"rec{k}"
            clean = (f"def {name}(a, depth):\n    if depth > 0:\n"
                     f"        a = {name}({inner.src}, depth - 1)\n    return a\n")
            oracle = (f"def {name}(a, depth):\n    if depth > 0:\n"
                      f"        a = {name}({inner.osrc}, depth - 1)\n    return a\n")
            return Helper(name, (("a", shape), ("depth", "int")), (), (shape,), True), clean, oracle
        if ch.coin(0.35):
            return box_helper(self, k, helpers, FnGen)
        n = ch.int(1, 3)
        pnames = ["u", "v", "r"][:n]
        params = tuple((p, ch.pick([V, S, M, U])) for p in pnames)
        defaults = (("scale", ch.pick([0.5, 2.0, 1.5])),) if ch.coin(0.3) else ()
        optional = (("opt", params[0][1]),) if ch.coin(0.2) else ()
        arr_defaults = ((("w0",) + ch.pick([(V, "C3"), (U, "C2"), (M, "C23")])),) if ch.coin(0.2) else ()
        env = {p: Var(p, "arr", sh, 1.5, is_arg=True) for p, sh in params}
        for p, val in defaults:
            env[p] = Var(p, "arr", S, abs(val), is_arg=True)
        for p, sh, _ in arr_defaults:
            env[p] = Var(p, "arr", sh, 1.0, is_arg=True)
        fg = FnGen(self, env, helpers=list(helpers),
                   names=Names(list(env) + ["k", "n"] + [p for p, _ in optional]),
                   budget=ch.int(1, 3), scalar_return=False, self_name=name)
        fg.nest = 1  # at most one level of nesting in helpers
        for p, sh in optional:  # def helper(u, opt=None): if opt is None: opt = ...
            self.features.add("none-default")
            u = params[0][0]
            if ch.coin(0.5):
                fg.emit(f"if {p} is None:")
                fg.emit(f"    {p} = {u} * 0.5")
            else:
                fg.emit(f"if {p} is not None:")
                fg.emit(f"    {u} = {u} + {p}")
                fg.emit("else:")
                fg.emit(f"    {p} = {u} * 0.5")
            fg.set_var(Var(p, "arr", sh, 3.0))
            fg.set_var(Var(u, "arr", sh, 3.0))
        one_expression = not optional and ch.coin(0.3)  # def helper(u): return <expr> (inline)
        if one_expression:
            self.features.add("one-expression-helper")
        else:
            fg.block(ch.int(1, 3))
        nret = 2 if not one_expression and ch.coin(0.35) else 1
        if not one_expression and ch.coin(0.25):  # an early return
            self.features.add("early-tuple-return" if nret == 2 else "helper-early-return")
            if nret == 2:
                self.refusable.append(REFUSABLE["early-tuple-return"])
            c = fg.cond(1)
            es = [fg.bounded(fg.some_value()) for _ in range(nret)]
            fg.emit(f"if {c.src}:", f"if {c.osrc}:")
            fg.emit("    return " + ", ".join(e.src for e in es), "    return " + ", ".join(e.osrc for e in es))
            rets = [fg.bounded(fg.some_value(e.shape)) for e in es]
        else:
            rets = [fg.bounded(fg.some_value()) for _ in range(nret)]
        text = ", ".join(e.src for e in rets)
        otext = ", ".join(e.osrc for e in rets)
        fg.emit(f"return {text}", f"return {otext}")
        ptext = ", ".join(p for p, _ in params) + "".join(f", {p}={v!r}" for p, v in defaults) + \
            "".join(f", {p}={c}" for p, _, c in arr_defaults) + \
            "".join(f", {p}=None" for p, _ in optional)
        if arr_defaults:
            self.features.add("array-default")
        clean, oracle = self.render(name, ptext, fg)
        return Helper(name, params, defaults, tuple(e.shape for e in rets),
                      optional=optional, arr_defaults=arr_defaults), clean, oracle

    def program(self, seed: int) -> Program:
        ch = self.ch
        self.aliasing = ALIAS_MODE and ch.coin(0.5)
        helpers, hsrc = [], []
        for k in range(ch.int(0, 2) if ch.coin(0.6) else 0):
            h, c, o = self.helper(k + 1, helpers)
            helpers.append(h)
            hsrc.append((c, o))
        # parameters of f
        params: list[Param] = []
        for pname in ["x", "w", "b", "y"][:ch.int(1, 4)]:
            shape = ch.pick([V, M, S, U])
            params.append(Param(pname, "float", shape,
                                scalar=ch.pick(["float", "float64", "0d"]) if shape == S else "",
                                dtype="float32" if shape != S and ch.coin(0.08) else "float64"))
        if ch.coin(0.25):
            items = (("w", ch.pick([V, M, U])), ("b", ch.pick([S, V])))
            params.append(Param("params", "dict", items=items))
        if ch.coin(0.1):
            params.append(Param("pair", "tuple", items=(ch.pick([V, S]), ch.pick([V, U]))))
        if ch.coin(0.08):
            params.append(Param("wts", "ntuple", items=(("W", ch.pick([M, V])), ("c", S))))
        if ch.coin(0.1):
            params.append(Param("layers", "layers", items=(("W", M), ("b", U))))
        if ch.coin(0.06):
            params.append(Param("model", "dclass", items=(("W", ch.pick([M, V])), ("c", S))))
        if ch.coin(0.25):
            params.append(Param("n", "int", value=ch.int(0, 3)))
        if ch.coin(0.1):
            params.append(Param("scale", "default", S, value=ch.pick([0.5, 1.5])))
        env = {}
        for p in params:
            if p.kind == "float":
                env[p.name] = Var(p.name, "arr", p.shape, 1.5, is_arg=True)
            elif p.kind == "default":
                env[p.name] = Var(p.name, "arr", S, 1.5, is_arg=True)
            elif p.kind == "dict":
                env[p.name] = Var(p.name, "dict", (), 1.5, is_arg=True, items=p.items)
            elif p.kind in ("tuple", "ntuple", "layers", "dclass"):
                env[p.name] = Var(p.name, p.kind, (), 1.5, is_arg=True, items=p.items)
            else:
                env[p.name] = Var(p.name, "int", S, 3.0, is_arg=True)
        effect = ch.pick(Idioms.EFFECTS) if ch.coin(0.1) else None
        self.features.update(p.kind for p in params if p.kind == "dclass")
        self.features.update("float32" for p in params if p.dtype == "float32")
        output = ch.weighted([("scalar", 12), ("tuple", 3), ("dict", 1), ("aux", 1)])
        fg = FnGen(self, env, helpers=helpers,
                   names=Names([p.name for p in params] + [h.name for h in helpers]),
                   budget=ch.int(3, 12), scalar_return=output == "scalar", self_name="f")
        fg.block(ch.int(2, 7))
        for h in helpers:  # every helper is called somewhere
            if h.name not in self.used:
                if h.ret_box is not None:
                    fg.s_boxret(h)
                elif len(h.returns) > 1:
                    fg.s_unpack(h)
                else:
                    fg.assign_var(fg.names.new("s" if h.returns[0] == S else "a"),
                                  fg.helper_call(h, 1))
        if effect is not None:  # a side effect srcdiff must refuse, read by the loss
            extra = fg.s_effect(effect, f"helper{len(helpers) + 1}")
            if extra is not None:
                hsrc.append(extra)
        loss = fg.final_scalar()
        if output == "scalar":
            ret, oret = loss.src, f"_fz.v({loss.osrc})"
        elif output == "aux":
            aux = fg.some_value()
            ret, oret = f"{loss.src}, {aux.src}", f"_fz.v({loss.osrc}), {aux.osrc}"
        elif output == "tuple":
            es = [loss] + [fg.bounded(fg.some_value()) for _ in range(ch.int(1, 2))]
            if ch.coin(0.3):
                es = es[1:] + es[:1]
            ret = ", ".join(e.src for e in es)
            oret = ", ".join(e.osrc for e in es)
        else:
            other = fg.bounded(fg.some_value())
            ret = f'{{"loss": {loss.src}, "h": {other.src}}}'
            oret = f'{{"loss": {loss.osrc}, "h": {other.osrc}}}'
        fg.emit(f"return {ret}", f"return {oret}")
        ptext = ", ".join(p.name if p.kind != "default" else f"{p.name}={p.value!r}"
                          for p in params)
        doc = "A generated program." if ch.coin(0.1) else None
        clean, oracle = self.render("f", ptext, fg, doc)
        header = HEADER + (CUSTOM if "custom-adjoint" in self.features else "")
        if self.scipy:
            header = header.replace("import srcdiff\n", "import srcdiff\n" + SCIPY_HEADER)
        source = header + "".join(f"\n\n{c}" for c, _ in hsrc) + f"\n\n{clean}"
        oracle_source = header + "".join(f"\n\n{o}" for _, o in hsrc) + f"\n\n{oracle}"
        # how srcdiff is called
        floats = [p for p in params if p.kind in ("float", "dict", "tuple", "ntuple", "layers",
                                                  "dclass")]
        if output in ("tuple", "dict"):
            how = "vjp"
        elif output == "aux":
            how = ch.pick(["grad_aux", "value_and_grad_aux"])
        else:
            how = ch.weighted([("grad", 5), ("value_and_grad", 2), ("vjp", 2)])
        chosen = [p for p in floats if ch.coin(0.7)] or [floats[0]]
        names = tuple(p.name for p in chosen)
        positions = [[p.name for p in params].index(n) for n in names]
        style = ch.pick(["names", "single", "positions"])
        if how == "vjp":
            wrt, names = None, tuple(p.name for p in floats)
        elif style == "single" or len(names) == 1 and ch.coin(0.5):
            wrt, names = (names[0] if ch.coin(0.5) else positions[0]), names[:1]
        elif style == "positions":
            wrt = tuple(positions)
        else:
            wrt = names
        return Program(source, oracle_source, tuple(params), how, wrt, names, output, seed,
                       aliasing=self.aliasing, features=frozenset(self.features),
                       expect="refuse" if self.effects else "ok",
                       refusable=tuple(sorted(set(self.refusable))), effects=tuple(self.effects))


@st.composite
def programs(draw) -> Program:
    """A random program (see the module docstring), with the seed of its inputs."""
    seed = draw(st.integers(0, 2 ** 16))
    return ProgramGen(draw).program(seed)


# ----------------------------------------------------------------------------- checking

_DIR = None
_counter = itertools.count()


def _load(text: str, stem: str, fz=None):
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="srcdiff-fuzz-")
    path = os.path.join(_DIR, f"{stem}.py")
    with open(path, "w") as fh:
        fh.write(text)
    spec = importlib.util.spec_from_file_location(stem, path)
    module = importlib.util.module_from_spec(spec)
    if fz is not None:
        module._fz = fz
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module


def make_args(prog: Program):
    """(all arguments in parameter order, the arguments srcdiff is called with)."""
    rng = np.random.default_rng(prog.seed)
    args = []
    for p in prog.params:
        if p.kind == "float":
            if p.shape == S:
                v = float(rng.uniform(-1.5, 1.5))
                args.append({"float": v, "float64": np.float64(v), "0d": np.array(v)}[p.scalar])
            else:
                args.append(rng.uniform(-1.5, 1.5, p.shape).astype(p.dtype))
        elif p.kind == "dict":
            args.append({k: (rng.uniform(-1.5, 1.5, sh) if sh else float(rng.uniform(-1.5, 1.5)))
                         for k, sh in p.items})
        elif p.kind == "tuple":
            args.append(tuple(rng.uniform(-1.5, 1.5, sh) if sh else float(rng.uniform(-1.5, 1.5))
                              for sh in p.items))
        elif p.kind == "dclass":
            args.append(Model(*(rng.uniform(-1.5, 1.5, sh) if sh else float(rng.uniform(-1.5, 1.5))
                                for _, sh in p.items)))
        elif p.kind == "ntuple":
            args.append(Weights(*(rng.uniform(-1.5, 1.5, sh) if sh else float(rng.uniform(-1.5, 1.5))
                                  for _, sh in p.items)))
        elif p.kind == "layers":
            args.append([{k: rng.uniform(-1.5, 1.5, sh) for k, sh in p.items} for _ in range(2)])
        elif p.kind == "int":
            args.append(p.value)
        else:
            args.append(p.value)
    call = [a for p, a in zip(prog.params, args) if p.kind != "default"]
    return tuple(args), tuple(call)


def _paths(a, path=()):
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            yield from _paths(getattr(a, f.name), path + (f.name,))
    elif isinstance(a, dict):
        for k, v in a.items():
            yield from _paths(v, path + (k,))
    elif isinstance(a, (list, tuple)):
        for k, v in enumerate(a):
            yield from _paths(v, path + (k,))
    else:
        yield path, a


def _leaves(prog, args):
    """Flat float leaves of the arguments: [(param index, path into the container, value)]."""
    return [(i, path, leaf) for i, (p, a) in enumerate(zip(prog.params, args))
            if p.kind in ("float", "dict", "tuple", "ntuple", "layers", "dclass")
            for path, leaf in _paths(a)]


def _replace(a, path, value):
    if not path:
        return value
    k, rest = path[0], path[1:]
    if dataclasses.is_dataclass(a):
        return dataclasses.replace(a, **{k: _replace(getattr(a, k), rest, value)})
    if isinstance(a, dict):
        return {**a, k: _replace(a[k], rest, value)}
    items = list(a)
    items[k] = _replace(items[k], rest, value)
    if isinstance(a, list):
        return items
    return type(a)(*items) if hasattr(a, "_fields") else tuple(items)


def _rebuild(prog, args, leaves, flat):
    args = list(args)
    for (i, path, _), value in zip(leaves, flat):
        args[i] = _replace(args[i], path, value)
    return args


def _same_value(a, b, rtol=1e-9, atol=1e-12, equal_nan=False) -> bool:
    tol = dict(rtol=rtol, atol=atol, equal_nan=equal_nan)
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same_value(getattr(a, f.name), getattr(b, f.name), **tol)
                                          for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            _same_value(a[k], b[k], **tol) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(
            _same_value(x, y, **tol) for x, y in zip(a, b))
    try:
        return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=rtol, atol=atol,
                                                               equal_nan=equal_nan))
    except TypeError:
        return a == b


def _identical(a, b) -> bool:
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_identical(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(
            _identical(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _weighted_sum(out, ct):
    if isinstance(out, dict):
        return sum(_weighted_sum(out[k], ct[k]) for k in out)
    if isinstance(out, tuple):
        return sum(_weighted_sum(o, c) for o, c in zip(out, ct))
    return np.sum(np.asarray(ct, dtype=np.float64) * np.asarray(out, dtype=np.float64))


def _cotangent(out, rng):
    if isinstance(out, dict):
        return {k: _cotangent(v, rng) for k, v in out.items()}
    if isinstance(out, tuple):
        return tuple(_cotangent(v, rng) for v in out)
    if isinstance(out, np.ndarray) and out.ndim:
        return rng.normal(size=out.shape)
    return float(rng.normal())


# outcomes that pass, and how the soak summary groups the others
PASSED = ("ok", "unrefused", "refused", "known_bug")
GROUPS = {"ok": ("ok", "unrefused"), "refused": ("refused", "known_bug"), "reject": ("reject",),
          "wrong": ("wrong_value", "wrong_gradient", "wrong_type", "mutation"),
          "error": ("srcdiff_error", "unlocated", "misplaced"), "crash": ("internal_crash",)}


@dataclass
class Result:
    """How one program fared. ``kind``:

    - ``ok``: value and gradients match; ``unrefused``: a program with a side effect srcdiff
      should refuse (``Program.expect == "refuse"``) came out right all the same;
    - ``refused``: a clean, located ``SrcdiffError`` where one is allowed (a side effect, a
      ``Program.refusable`` construct, an aliasing write in alias mode); ``known_bug``: a
      crash listed in ``KNOWN_CRASHES`` and ``TOLERATED``; ``reject``: not a usable program
      (a kink or a large value, see :func:`check_program`);
    - failures: ``wrong_value``, ``wrong_gradient``, ``wrong_type`` (a gradient of the wrong
      type/shape/dtype), ``mutation`` (the call changed its arguments), ``srcdiff_error`` (a
      refusal of a program srcdiff supports), ``unlocated`` (a refusal without a line),
      ``misplaced`` (a side effect refused at a line that has nothing to do with it),
      ``internal_crash``.
    """

    kind: str
    detail: str = ""
    where: str = ""   # for crashes: the innermost srcdiff frame

    @property
    def passed(self) -> bool:
        return self.kind in PASSED

    def __bool__(self):
        return self.passed


_SRCDIFF_DIRS = None


def _innermost_srcdiff_frame(exc) -> str:
    global _SRCDIFF_DIRS
    if _SRCDIFF_DIRS is None:
        import srcdiff
        import srcdiff.runtime as rt
        _SRCDIFF_DIRS = (os.path.dirname(srcdiff.__file__), os.path.dirname(rt.__file__))
    found = ""
    while exc is not None:
        for fr in traceback.extract_tb(exc.__traceback__):
            if fr.filename.startswith(_SRCDIFF_DIRS) or "<srcdiff" in fr.filename:
                found = f"{os.path.basename(fr.filename)}:{fr.lineno} in {fr.name}"
        exc = exc.__cause__
    return found


def check_program(prog: Program) -> Result:
    """Differentiate ``prog`` with srcdiff and hold it to the finite-difference oracle."""
    import srcdiff
    from srcdiff.api import InternalError
    from srcdiff.testing import check_grad

    stem = f"fuzz_{os.getpid()}_{next(_counter)}"
    fz = Recorder()
    try:
        oracle = _load(prog.oracle_source, stem + "_oracle", fz)
        clean = _load(prog.source, stem)
    except Exception as exc:  # a generator bug: the program does not even import
        return Result("reject", f"generator: module does not load: {exc!r}")
    try:
        return _check(prog, oracle, clean, fz, srcdiff, InternalError, check_grad)
    finally:
        sys.modules.pop(stem, None)
        sys.modules.pop(stem + "_oracle", None)


def _refusal(prog, exc) -> Result:
    """A ``SrcdiffError``: a clean refusal where the program allows one, else a failure."""
    text = f"{type(exc).__name__}: {exc}"
    if any(re.search(rx, str(exc)) for rx in prog.refusable):
        return Result("refused", text)
    if prog.aliasing and ("view" in str(exc) or "in place" in str(exc)):
        return Result("refused", text)  # allowed for aliasing
    if prog.expect == "refuse":
        line = getattr(exc, "text", None)
        if getattr(exc, "lineno", None) is None or line is None:
            return Result("unlocated", text)
        if line.strip() not in prog.effects:
            return Result("misplaced", f"{text}\nexpected at one of: {list(prog.effects)}")
        return Result("refused", text)
    return Result("srcdiff_error", text)


def _as64(a):
    """``a`` with every float32 array made float64 (containers rebuilt)."""
    if isinstance(a, np.ndarray) and a.dtype == np.float32:
        return a.astype(np.float64)
    if dataclasses.is_dataclass(a):
        return dataclasses.replace(a, **{f.name: _as64(getattr(a, f.name)) for f in dataclasses.fields(a)})
    if isinstance(a, dict):
        return {k: _as64(v) for k, v in a.items()}
    if isinstance(a, (list, tuple)):
        items = [_as64(v) for v in a]
        return items if isinstance(a, list) else (type(a)(*items) if hasattr(a, "_fields") else tuple(items))
    return a


def _run(prog, srcdiff, f, call_args, ct):
    """(value or None, gradients) of srcdiff's ``prog.call`` on ``call_args``."""
    if prog.call == "vjp":
        out, pullback = srcdiff.vjp(f, *call_args)
        return out, pullback(ct)
    aux = prog.call.endswith("aux")
    if prog.call.startswith("grad"):
        res = srcdiff.grad(f, wrt=prog.wrt, has_aux=aux)(*call_args)
        return None, (res[0] if aux else res)  # grad returns no value (an aux is not checked)
    value, grads = srcdiff.value_and_grad(f, wrt=prog.wrt, has_aux=aux)(*call_args)
    return value, grads


def _close32(g32, g64, arg) -> str:
    """Why the float32 gradient ``g32`` is not the float64 one ``g64`` for ``arg`` ("" if it is)."""
    if isinstance(g64, dict) or dataclasses.is_dataclass(g64) or isinstance(g64, (list, tuple)):
        if dataclasses.is_dataclass(g64):
            pairs = [(getattr(g32, f.name), getattr(g64, f.name), getattr(arg, f.name))
                     for f in dataclasses.fields(g64)]
        elif isinstance(g64, dict):
            pairs = [(g32[k], g64[k], arg[k]) for k in g64]
        else:
            pairs = list(zip(g32, g64, arg))
        return next((w for w in (_close32(*p) for p in pairs) if w), "")
    if g64 is None:
        return "" if g32 is None else f"{g32!r} where float64 gives None"
    if isinstance(arg, np.ndarray) and (not isinstance(g32, np.ndarray) or g32.dtype != arg.dtype):
        return f"the gradient of a {arg.dtype} argument is {type(g32).__name__} " \
               f"{getattr(g32, 'dtype', '')}"
    scale = max(1.0, float(np.max(np.abs(g64))) if np.size(g64) else 1.0)
    if not np.allclose(np.asarray(g32, np.float64), g64, rtol=RTOL32, atol=ATOL32 * scale):
        return f"float32 {g32!r} against float64 {g64!r}"
    return ""


def _check(prog, oracle, clean, fz, srcdiff, InternalError, check_grad, args=None,
           call_args=None, keep=None) -> Result:
    if args is None:
        args, call_args = make_args(prog)
        if any(getattr(leaf, "dtype", None) == np.float32 for _, _, leaf in _leaves(prog, args)):
            # float32: the float64 twin is held to the oracle, then the float32 call to it
            keep = {}
            res = _check(prog, oracle, clean, fz, srcdiff, InternalError, check_grad,
                         _as64(args), _as64(call_args), keep)
            if not res.passed or "grads" not in keep:
                return res
            f_clean = getattr(clean, prog.main)
            try:
                ref32 = f_clean(*copy.deepcopy(args))
                ref64 = f_clean(*_as64(copy.deepcopy(args)))
            except Exception as exc:
                return Result("reject", f"float32: the program fails in Python: {exc!r}")
            if not _same_value(ref32, ref64, rtol=1e-3, atol=1e-4):  # another branch taken,
                # isinstance(np.sum(w), float) (np.float64 is a float, np.float32 is not)
                return Result("reject", "float32: the program computes another function than "
                              "its float64 twin")
            try:
                value, grads = _run(prog, srcdiff, f_clean, call_args, keep["ct"])
            except srcdiff.SrcdiffError as exc:
                return _refusal(prog, exc)
            except Exception as exc:
                return Result("internal_crash", f"float32: {type(exc).__name__}: {exc}",
                              _innermost_srcdiff_frame(exc))
            if value is not None and not _same_value(
                    value[0] if prog.output == "aux" else value,
                    ref32[0] if prog.output == "aux" else ref32, rtol=1e-5, atol=1e-6):
                return Result("wrong_value", f"float32: srcdiff's value {value!r} != Python's {ref32!r}")
            wrt_args = (list(call_args)
                        if prog.call == "vjp" else
                        [call_args[[p.name for p in prog.params].index(n)] for n in prog.wrt_names])
            g64 = keep["grads"]
            one = prog.call != "vjp" and not isinstance(prog.wrt, tuple)
            pairs = [(grads, g64, wrt_args[0])] if one else list(zip(grads, g64, wrt_args))
            why = next((w for w in (_close32(*p) for p in pairs) if w), "")
            if why:
                return Result("wrong_type" if "argument is" in why else "wrong_gradient",
                              f"float32: {why}")
            return res
    f_oracle, f_clean = getattr(oracle, prog.main), getattr(clean, prog.main)
    # the reference run: margins, ranges, frozen values
    fz.start(recording=True)
    try:
        ref = f_oracle(*copy.deepcopy(args))
    except Exception as exc:
        return Result("reject", f"the program fails in Python: {exc!r}")
    if fz.margin < MARGIN:
        return Result("reject", f"too close to a kink ({fz.where}: {fz.margin:.2g})")
    if not fz.vmax <= VMAX:
        return Result("reject", f"values too large ({fz.vmax:.3g})")
    try:
        clean_out = f_clean(*copy.deepcopy(args))
    except Exception as exc:
        return Result("reject", f"generator: the clean module fails: {exc!r}")
    if not _same_value(clean_out, ref):
        return Result("reject", "generator: the oracle module disagrees with the clean one")
    loss_ref = ref[0] if prog.output == "aux" else ref

    saved = copy.deepcopy(call_args)
    rng = np.random.default_rng(prog.seed + 1)
    ct = _cotangent(ref, rng) if prog.call == "vjp" else None
    try:
        if prog.call == "vjp":
            out, pullback = srcdiff.vjp(f_clean, *call_args)
            grads_all = pullback(ct)
            again = pullback(ct)
            value = out
        else:
            aux = prog.call.endswith("aux")
            if prog.call.startswith("grad"):
                res = srcdiff.grad(f_clean, wrt=prog.wrt, has_aux=aux)(*call_args)
                grads, value = (res[0], ref) if aux else (res, None)
                if aux:
                    value = (loss_ref, res[1])
            else:
                value, grads = srcdiff.value_and_grad(f_clean, wrt=prog.wrt, has_aux=aux)(*call_args)
    except InternalError as exc:
        for key, text in KNOWN_CRASHES.items():
            if key in TOLERATED and text in str(exc):
                return Result("known_bug", f"{key}: {exc}", _innermost_srcdiff_frame(exc))
        return Result("internal_crash", f"{exc}", _innermost_srcdiff_frame(exc))
    except srcdiff.SrcdiffError as exc:
        return _refusal(prog, exc)
    except Exception as exc:
        return Result("internal_crash", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
                      _innermost_srcdiff_frame(exc))
    if not _identical(saved, call_args):
        return Result("mutation", "the call changed its arguments")
    if value is not None and not _same_value(value, ref):
        return Result("wrong_value", f"srcdiff's value {value!r} != Python's {ref!r}")

    # which leaves have gradients, and what srcdiff says they are
    pnames = [p.name for p in prog.params]
    leaves = _leaves(prog, args)
    if prog.call == "vjp":
        if not _same_value(grads_all, again, equal_nan=True):  # (a NaN is found below)
            return Result("wrong_gradient", "calling the pullback twice gave different results")
        by_param = dict(zip(pnames, grads_all))
        for p, g in by_param.items():
            kind = next(q.kind for q in prog.params if q.name == p)
            if kind in ("int", "default") and g is not None and kind == "int":
                return Result("wrong_gradient", f"the int argument {p} got a gradient {g!r}")
    else:
        g = grads if isinstance(prog.wrt, tuple) else (grads,)
        if len(g) != len(prog.wrt_names):
            return Result("wrong_gradient", f"{len(g)} gradients for wrt={prog.wrt!r}")
        by_param = dict(zip(prog.wrt_names, g))
    flat_grads, argnums = [], []
    for n, (i, path, leaf) in enumerate(leaves):
        name = pnames[i]
        if name not in by_param:
            continue
        g = by_param[name]
        if path and type(g) is not type(args[i]):
            return Result("wrong_type", f"gradient of {name} is a {type(g).__name__}, "
                          f"the argument a {type(args[i]).__name__}")
        for k in path:
            if dataclasses.is_dataclass(g) and isinstance(k, str):
                g = getattr(g, k)
                continue
            if not isinstance(g, (dict, tuple, list)):
                return Result("wrong_type", f"gradient of {name} is {type(g).__name__} at {k!r}")
            g = g[k]
        key = "".join(f"[{k!r}]" for k in path) or None
        if g is not None and type(g) is not type(leaf) and not (
                "float64-gradient-is-float" in TOLERATED and type(leaf) is np.float64 and
                type(g) is float):
            return Result("wrong_type", f"gradient of {name}{key or ''} "
                          f"is a {type(g).__name__}, the argument a {type(leaf).__name__}")
        if isinstance(leaf, np.ndarray) and g is not None and (g.shape != leaf.shape or
                                                               g.dtype != leaf.dtype):
            return Result("wrong_type", f"gradient of {name} has shape/dtype "
                          f"{g.shape}/{g.dtype}, the argument {leaf.shape}/{leaf.dtype}")
        flat_grads.append(g)
        argnums.append(n)

    def scalar(*flat):
        fz.start(recording=False)
        # the oracle passes every float as a float64 array: give each leaf its own type back
        # (math.trunc takes a Python float, not a 0-d array)
        flat = [type(leaf)(v) if isinstance(leaf, (float, np.floating)) else v
                for (_, _, leaf), v in zip(leaves, flat)]
        out = f_oracle(*copy.deepcopy(_rebuild(prog, args, leaves, flat)))
        if prog.output == "aux":
            out = out[0]
        return out if ct is None else _weighted_sum(out, ct)

    flat_args = [leaf for _, _, leaf in leaves]
    try:
        check_grad(scalar, flat_args, flat_grads, argnums=argnums, rtol=RTOL, atol=ATOL)
    except AssertionError as exc:
        names = [pnames[leaves[n][0]] + "".join(f"[{k!r}]" for k in leaves[n][1])
                 for n in argnums]
        got = {k: v for k, v in zip(names, flat_grads)}
        return Result("wrong_gradient", f"{exc}\nsrcdiff's gradients: {got!r}")
    except Exception as exc:  # Python itself fails at a perturbed point: not a usable program
        return Result("reject", f"the oracle fails at a perturbed point: {exc!r}")
    if keep is not None:
        keep["grads"], keep["ct"] = (grads_all if prog.call == "vjp" else grads), ct
    return Result("unrefused" if prog.expect == "refuse" else "ok")


# ----------------------------------------------------------------------------- soak runner


def soak(n: int, out_dir: str, seed: int | None = None, report_every: int = 500):
    """Run ``n`` programs, counting outcomes (no stopping at the first failure)."""
    from hypothesis import given
    from hypothesis import seed as hseed

    counts = collections.Counter()
    rejects = collections.Counter()
    os.makedirs(out_dir, exist_ok=True)
    import time
    t0 = time.time()

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[__import__("hypothesis").Phase.generate])
    @given(programs())
    def run(prog):
        res = check_program(prog)
        counts[res.kind] += 1
        if res.kind == "reject":
            rejects[res.detail.split("(")[0].split(":")[0]] += 1
        elif not res.passed or res.kind == "unrefused":
            k = sum(v for key, v in counts.items() if key not in ("ok", "reject"))
            with open(os.path.join(out_dir, f"{res.kind}_{os.getpid()}_{k}.py"), "w") as fh:
                fh.write(f"# {res.kind}: {res.where}\n# {prog.call_text()}\n")
                fh.write("".join(f"# {line}\n" for line in res.detail.splitlines()[:40]))
                fh.write(f"# {repr(prog).splitlines()[-1]}\n")
                fh.write(prog.source)
        total = sum(counts.values())
        if total % report_every == 0:
            print(f"[{time.time() - t0:.0f}s] {total}: {dict(counts)} rejects {dict(rejects)}",
                  flush=True)

    if seed is not None:
        run = hseed(seed)(run)
    from .determinism import no_local_constants
    with no_local_constants():  # the programs of a seed do not depend on what is imported
        run()
    print(f"done in {time.time() - t0:.0f}s: {sum(counts.values())} programs: {dict(counts)}; "
          f"rejects: {dict(rejects)}", flush=True)
    print(summary(counts), flush=True)
    return counts


def summary(counts) -> str:
    """One line of soak figures: programs, then each group of :data:`GROUPS`, and the commit."""
    import subprocess
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        commit = "?"
    groups = ", ".join(f"{g} {sum(counts.get(k, 0) for k in kinds)}" for g, kinds in GROUPS.items())
    return f"programs {sum(counts.values())}: {groups} (commit {commit})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "srcdiff-fuzz-failures"),
                        help="where failing programs are written")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--show", type=int, default=0, help="print N generated programs and exit")
    parser.add_argument("--in-place", action="store_true",
                        help="every grad/value_and_grad call runs the variant for large arrays "
                             "(dead temporaries written in place), whatever the arguments' size")
    args = parser.parse_args(argv)
    if args.in_place:
        from srcdiff.runtime import inplace

        inplace.LARGE = 0
    if args.show:
        from hypothesis import given
        shown = []

        @settings(max_examples=args.show, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(programs())
        def show(prog):
            shown.append(prog)

        show()
        for p in shown[: args.show]:
            print(repr(p))
        return
    soak(args.n, args.out, args.seed)


if __name__ == "__main__":
    main()
