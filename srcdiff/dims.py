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

import numpy as np

__all__ = ["pattern", "cuts", "multiple", "name_of"]

_NUMBERS = (float, int, bool, np.floating, np.integer, np.bool_)


def pattern(args, plain: frozenset, relations: bool = True) -> tuple | None:
    """The pattern of ``args``: per argument its symbolic shape, ``()`` for a number, None for
    another value of a ``plain`` type (a string, None); None for the whole call where an
    argument is of any other kind (a container, a CuPy or Dask array: those keep the general
    derivative). ``relations``: with the multiples (see :func:`cuts`; without them a batch of
    another size is the same pattern whatever it divides)."""
    found = []
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            found.append(a.shape)
        elif isinstance(a, _NUMBERS):
            found.append(())
        elif kind in plain:
            found.append(None)
        else:
            return None
    names = _symbols([n for shape in found if shape for n in shape], relations)
    return tuple(shape if not shape else tuple(names[n] for n in shape) for shape in found)


_FACTOR = 8  # the largest ratio of two lengths taken as a relation (8 heads, 4 gates)


def _symbols(lengths: list, relations: bool = True) -> dict:
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
