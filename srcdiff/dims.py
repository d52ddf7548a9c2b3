"""A call's array shapes as symbols: what a derivative may be specialised for.

The shapes pass (``transforms/shapes.py``) drops ``rt.unbroadcast(g, x)`` only where it can
prove ``g`` has ``x``'s shape. Without the arguments it knows little: ``X @ w`` has some
shape. Given a *pattern* of the arguments it knows much more. Each numpy array argument
gives its axes as symbols: lengths of 1 stay ``1`` (they broadcast), equal lengths share
one symbol, different lengths get different ones. A Python or numpy number has the shape
``()``. For ``lsq(w, b, X, y)`` called with shapes (3,), a float, (64, 3) and (64,):

    (("n0",), (), ("n1", "n0"), ("n1",))

so ``X @ w`` has the shape ``("n1",)``, that of ``y``: the adjoint of ``X @ w + b - y``
needs no sum. A pattern holds for every call with the same equalities, whatever the
lengths: (5,), a float, (1000, 5), (1000,) is the same pattern, and the same compiled
derivative. Different symbols always stand for different lengths, so a broadcast of two
different symbols is an error the forward pass raises before any adjoint runs.

A length that is a small multiple of smaller ones says so: for an LSTM's ``Wx`` (32, 256),
``Wh`` (64, 256), ``h0`` (16, 64), 256 is ``"n1[4*n2,8*n0]"`` (4 times 64, 8 times 32), and the
gate ``z[:, n:2 * n]`` of ``n = h0.shape[1]`` has the length of ``h0``'s second axis.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = ["pattern", "cuts", "multiple", "name_of", "Tree", "shapes_in"]

_NUMBERS = (float, int, bool, np.floating, np.integer, np.bool_)


@dataclass(frozen=True)
class Tree:
    """The pattern of a dict (string keys), list or tuple argument whose every item is a
    numpy array, a number or such a container: its kind, its keys (a list's or tuple's
    positions) in order, and each item's pattern. ``params = {"W": (64, 32), "b": (32,)}``
    is ``Tree("dict", ("W", "b"), (("n0", "n1"), ("n1",)))``: the same keys in the same order
    and the same shapes make the same pattern."""

    kind: str
    keys: tuple
    items: tuple

    def item(self, key):
        """The pattern of the item at ``key``, else None."""
        for k, v in zip(self.keys, self.items):
            if k == key and type(k) is type(key):
                return v
        return None


def shapes_in(entry):
    """The array shapes of one argument's pattern: itself, or a tree's items', in order."""
    if type(entry) is Tree:
        for item in entry.items:
            yield from shapes_in(item)
    elif entry:
        yield entry


def _shape_of(a, plain):
    """An argument's shape, ``()``, None (a plain value) or a ``_Container``; ``False`` for
    a value of another kind (no pattern for the call)."""
    kind = type(a)
    if kind is np.ndarray:
        return a.shape
    if isinstance(a, _NUMBERS):
        return ()
    if kind is dict and all(type(k) is str for k in a):
        items = tuple([_shape_of(v, plain) for v in a.values()])
        return False if False in items or None in items else \
            _Container(("dict", tuple(a), items))
    if kind is list or kind is tuple:
        items = tuple([_shape_of(v, plain) for v in a])
        return False if False in items or None in items else \
            _Container((kind.__name__, tuple(range(len(a))), items))
    if kind in plain:
        return None
    return False


class _Container(tuple):
    """``(kind, keys, items)``: a container's lengths, before they are named (a tuple, so a
    call's shapes are one cache key)."""

    __slots__ = ()


def _lengths_in(found):
    for shape in found:
        if type(shape) is _Container:
            yield from _lengths_in(shape[2])
        elif shape:
            yield from shape


def _named(shape, names):
    if type(shape) is _Container:
        return Tree(shape[0], shape[1], tuple(_named(s, names) for s in shape[2]))
    return shape if not shape else tuple(names[n] for n in shape)


@functools.lru_cache(maxsize=512)
def _patterns(found: tuple, relations: bool) -> tuple:
    """The pattern of a call whose arguments have the shapes ``found`` (once per shapes)."""
    names = _symbols(tuple(_lengths_in(found)), relations)
    return tuple(_named(shape, names) for shape in found)


def pattern(args, plain: frozenset, relations: bool = True) -> tuple | None:
    """The pattern of ``args``: per argument its symbolic shape, ``()`` for a number, None for
    another value of a ``plain`` type (a string, None); None for the whole call where an
    argument is of any other kind (a container, a CuPy or Dask array: those keep the general
    derivative). ``relations``: with the multiples (see :func:`cuts`; without them a batch of
    another size is the same pattern whatever it divides). A dict, list or tuple of arrays
    and numbers (nested too) has a :class:`Tree` of its items' patterns."""
    found = []
    for a in args:
        shape = _shape_of(a, plain)
        if shape is False:
            return None
        found.append(shape)
    return _patterns(tuple(found), relations)


_FACTOR = 8  # the largest ratio of two lengths taken as a relation (8 heads, 4 gates)


@functools.lru_cache(maxsize=256)
def _symbols(lengths: tuple, relations: bool = True) -> dict:
    """Each length's symbol: ``1`` for 1; else ``"n<k>"``, numbered in the order the lengths
    first appear, followed by its relations to smaller lengths it is a multiple of (at most
    ``_FACTOR`` times, not 0 or 1): 256 beside 64 and 32 is ``"n2[4*n1,8*n0]"``, so a slice
    ``z[:, n:2 * n]`` of ``n = 64`` (``"n1"``) has a known length."""
    names: dict = {1: 1}
    for n in lengths:
        if n not in names:
            names[n] = f"n{len(names) - 1}"
    plain = dict(names)
    distinct = sorted(set(lengths) - {0, 1}) if relations else []
    for i, n in enumerate(distinct):
        relations = [f"{n // m}*{plain[m]}" for m in distinct[:i] if n % m == 0 and n // m <= _FACTOR]
        if relations:
            names[n] = f"{names[n]}[{','.join(relations)}]"
    return names


@functools.lru_cache(maxsize=4096)  # (the shape facts ask for the same symbols in every round)
def multiple(symbol) -> tuple[str, dict] | None:
    """The name of a symbol and its relations: ``"n2[4*n1,8*n0]"`` → ``("n2", {"n1": 4, "n0":
    8})``; None for 1. (Cached: the dict is shared, not to be changed.)"""
    if symbol == 1 or type(symbol) is not str:
        return None
    name, _, rest = symbol.partition("[")
    relations = {}
    for part in filter(None, rest.rstrip("]").split(",")):
        m, _, base = part.partition("*")
        relations[base] = int(m)
    return name, relations


def name_of(symbol) -> str | None:
    """The name of a symbol without its relations (``"n2"``); None for 1."""
    found = multiple(symbol)
    return None if found is None else found[0]


_SPLITS = ("split", "array_split", "hsplit", "vsplit", "dsplit")


def cuts(fn) -> bool:
    """Whether ``fn``'s source cuts arrays by lengths it computes, where the multiples in a
    pattern can prove a shape: a slice with a bound that is not a literal (``z[:, n:2 * n]``),
    or a call of ``split``. Other functions get patterns without them: their variants do not
    multiply with the batch sizes that happen to divide another length."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    found = _CUTS.get(code)
    if found is None:
        if len(_CUTS) >= 4096:  # (functions made over and over: keep their code objects few)
            _CUTS.clear()
        found = _CUTS[code] = _cuts(fn)
    return found


_CUTS: dict = {}


def _cuts(fn) -> bool:
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):  # no source, or a lambda's line
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Slice) and any(
                b is not None and not _literal(b) for b in (node.lower, node.upper)):
            return True
        if isinstance(node, ast.Call) and (
                isinstance(node.func, ast.Attribute) and node.func.attr in _SPLITS or
                isinstance(node.func, ast.Name) and node.func.id in _SPLITS):
            return True
    return False


def _literal(node) -> bool:
    import ast

    while isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int
