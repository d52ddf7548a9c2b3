"""The adjoint-rule table: ``@adjoint(np.tanh)`` registers one runnable rule.

A rule is an ordinary function ``rule(g, [ans,] *operands, **options)``:

- ``g`` is the adjoint of the primitive's output; ``ans``, when the rule names it
  as its second parameter, is the primal output;
- the *operands* are the parameters without a default; the rule returns one
  adjoint per operand (a bare value when there is only one), ``None`` meaning zero;
  a ``*operands`` parameter takes any number of further operands (``np.einsum``): the
  rule returns one adjoint per operand it is given, bare when it is given one;
- parameters with a default, and keyword-only ones, mirror the primitive's options
  (``axis``, ``keepdims``);
- ``allowed={"mode": OneOf("reduced", ...)}`` lists the values of an option the rule
  differentiates: the compiler refuses any other constant at the user's line, and the rule
  refuses one that only a run shows (a variable) before it computes anything.

``broadcasting=True`` marks primitives whose operands broadcast against each
other: the rule body is written for equal shapes and the table sums each
adjoint back to its operand's shape with :func:`unbroadcast`, in this one place.
The compiler may inline a rule whose body is a single ``return``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .backend import numpy_twin
from .helpers import unbroadcast
from .options import OneOf, refusal

__all__ = ["Rule", "RULES", "adjoint", "rule_for"]


@dataclass(frozen=True)
class Rule:
    """One registered adjoint: the raw function (for inlining) and how to call it."""

    primitive: object
    raw: Callable
    call: Callable
    name: str
    takes_ans: bool
    operands: tuple[str, ...]
    options: tuple[str, ...]
    broadcasting: bool
    sequence: bool = False  # the primitive returns a list or tuple (np.split, slogdet): g is one
    variadic: str | None = None  # the rule's *operands: any number of operands after these
    leading: tuple[str, ...] = ()  # options the primitive takes first, by position (subscripts)
    signature: inspect.Signature | None = None  # how calls bind, where the primitive's does not say
    allowed: tuple[tuple[str, OneOf], ...] = ()  # option -> the values the rule differentiates

    def takes(self, count: int) -> bool:
        """Whether the rule takes ``count`` operands."""
        return count == len(self.operands) or self.variadic is not None and \
            count >= len(self.operands)

RULES: dict[object, Rule] = {}


def _signature_parts(fn):
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].name != "g":
        raise TypeError(f"adjoint rule {fn.__name__} must take 'g' first")
    params = params[1:]
    takes_ans = bool(params) and params[0].name == "ans"
    if takes_ans:
        params = params[1:]
    variadic = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)
    params = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    operands = tuple(p.name for p in params
                     if p.default is p.empty and p.kind is not p.KEYWORD_ONLY)
    options = tuple(p.name for p in params if p.name not in operands)
    return takes_ans, operands, options, variadic


def adjoint(*primitives, broadcasting: bool = False, checked: bool = False,
            sequence: bool = False, leading: tuple[str, ...] = (), signature=None,
            allowed: dict[str, OneOf] | None = None):
    """Register the decorated function as the adjoint of each of ``primitives``.

    ``sequence=True``: the primitive returns a list or tuple of arrays (``np.split``,
    ``np.linalg.slogdet``); ``g`` is then a tuple with one adjoint per item, ``None`` for
    an item whose adjoint is zero, and the compiler lets the result be unpacked
    (``sign, logdet = np.linalg.slogdet(K)``) and indexed (``parts[0]``).

    ``leading``: options the primitive takes as its first positional arguments, before its
    operands, where it has no parameter names for them: ``np.einsum(subscripts, *operands)``
    is ``@adjoint(np.einsum, leading=("subscripts",))`` on
    ``einsum_adjoint(g, *operands, subscripts, optimize=False)``; the compiler passes them
    to the rule by keyword and never differentiates them.

    ``signature``: a function whose signature says how calls of the primitive bind to
    operands and options, for a primitive whose own signature does not name them:
    ``scipy.stats.norm.logpdf`` takes ``(x, *args, **kwds)``, its rule is registered with
    ``signature=`` a ``def _loc_scale(x, loc=0.0, scale=1.0)``, so ``loc=mu`` is an operand.

    ``allowed``: the values of an option the rule differentiates (``allowed={"mode":
    OneOf("reduced", advice="write q, r = np.linalg.qr(a)")}``); the option's default must be
    one of them. The compiler refuses a call with another constant value at its line; a value
    known only when the code runs (a variable) is checked by the rule before it computes.

    ``checked=True`` (what ``srcdiff.adjoint`` uses for users' rules) makes every call check
    that the rule returned one adjoint per operand, each of its operand's shape.
    """
    allowed_items = tuple((allowed or {}).items())

    def register(fn):
        takes_ans, operands, options, variadic = _signature_parts(fn)
        if not set(leading) <= set(options):
            raise TypeError(f"adjoint rule {fn.__name__}: leading={leading} must name options")
        defaults = inspect.signature(fn).parameters
        for option, one_of in allowed_items:
            if option not in options or not one_of.admits(defaults[option].default):
                raise TypeError(f"adjoint rule {fn.__name__}: allowed names {option!r}, which "
                                "must be an option whose default is allowed")
        call = fn
        if broadcasting:
            call = _with_unbroadcast(fn, takes_ans)
        if checked:
            call = _checked(call, fn, takes_ans, operands, variadic, primitives)
        if allowed_items:
            call = _admitting(call, fn, allowed_items)
        for primitive in primitives:
            RULES[primitive] = Rule(primitive, fn, call, fn.__name__, takes_ans, operands,
                                    options, broadcasting, sequence, variadic, tuple(leading),
                                    None if signature is None else inspect.signature(signature),
                                    allowed_items)
        return call

    return register


def _admitting(inner, fn, allowed):
    """``inner`` (the call of rule ``fn``), refusing an option value that ``fn`` does not
    differentiate before computing anything (a value the compiler could not read)."""

    @functools.wraps(fn)
    def call(g, *args, **options):
        for option, one_of in allowed:
            if option in options and not one_of.admits(options[option]):
                from srcdiff.errors import SrcdiffError

                rule = next(r for r in RULES.values() if r.raw is fn)
                raise SrcdiffError(f"srcdiff cannot differentiate "
                                   f"{refusal(rule, option, options[option])}")
        return inner(g, *args, **options)

    call.__wrapped__ = fn
    return call


def _with_unbroadcast(fn, takes_ans):
    @functools.wraps(fn)
    def call(g, *args, **options):
        values = args[1:] if takes_ans else args
        grads = fn(g, *args, **options)
        if len(values) == 1:
            return unbroadcast(grads, values[0])
        return tuple(None if d is None else unbroadcast(d, x) for d, x in zip(grads, values))

    call.__wrapped__ = fn
    return call


def _checked(call, fn, takes_ans, fixed, variadic, primitives):
    from srcdiff.errors import SrcdiffError

    what = ", ".join(getattr(p, "__qualname__", repr(p)) for p in primitives)

    @functools.wraps(fn)
    def checked(g, *args, **options):
        values = args[1:] if takes_ans else args
        operands = fixed if variadic is None else (
            *fixed, *(f"{variadic}[{i}]" for i in range(len(values) - len(fixed))))
        grads = call(g, *args, **options)
        if len(operands) == 1 and not isinstance(grads, (tuple, list)):
            results = (grads,)
        elif isinstance(grads, (tuple, list)) and len(grads) == len(operands):
            results = tuple(grads)
        else:
            count = len(grads) if isinstance(grads, (tuple, list)) else "one value"
            raise SrcdiffError(
                f"the adjoint rule {fn.__name__} for {what} returned {count}, but it must return "
                f"one adjoint per operand ({', '.join(operands)}), None for a zero adjoint")
        for name, d, x in zip(operands, results, values):
            if d is not None and np.shape(d) != np.shape(x):
                raise SrcdiffError(
                    f"the adjoint rule {fn.__name__} for {what} returned an adjoint of shape "
                    f"{np.shape(d)} for operand '{name}', whose shape is {np.shape(x)}")
        return grads

    checked.__wrapped__ = fn
    return checked


def rule_for(primitive) -> Rule | None:
    """The rule registered for ``primitive``, looked up by identity.

    A function of another array library that stands for a numpy one (``cupy.tanh``, found
    by name in the ``cupy`` namespace) gets the numpy function's rule: the rules run on
    that library's arrays through numpy's dispatch protocols.
    """
    if len(_LOADED) < len(OPTIONAL):
        _load_optional()
    try:
        rule = RULES.get(primitive)
    except TypeError:  # unhashable callables have no rule
        return None
    if rule is None:
        twin = numpy_twin(primitive)
        if twin is not None:
            rule = RULES.get(twin)
    return rule


# Rules for an optional library live in a module of their own, imported the first time a rule
# is looked up after that library was: no function of it can reach the compiler before, and
# ``import srcdiff`` does not import scipy. package -> the module holding its rules.
OPTIONAL: dict[str, str] = {"scipy": "srcdiff.runtime.scipy_rules"}
_LOADED: set[str] = set()  # the packages of OPTIONAL whose rules are registered (or failed to)


def _load_optional() -> None:
    for package, module in OPTIONAL.items():
        if package in sys.modules and package not in _LOADED:
            try:
                importlib.import_module(module)  # registers its rules; concurrent callers wait
            except ImportError as exc:  # a broken install: srcdiff works on without these rules
                warnings.warn(f"srcdiff: no adjoint rules for {package} ({exc})", stacklevel=3)
            _LOADED.add(package)
