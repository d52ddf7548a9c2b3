"""Adjoints of containers ("pytrees"): dicts, lists, tuples, namedtuples, dataclasses.

The adjoint of a container has the container's structure: each float leaf gets an
array (or float) of its shape, each other leaf ``None``. Generated code builds it
functionally, one projection at a time: ``dparams = rt.tree_put(params, "W1", dW1)``
for the first value read out of ``params``, ``rt.tree_add_at(dparams, "b1", db1)``
after. When the value turns out to be an array after all (``row = x[0]`` on a
name srcdiff could not tell apart), these fall back to the array rule.
Flattening and mapping use optree; dataclasses are registered with it on first use.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import optree

from .helpers import add

__all__ = ["flat_items", "is_float", "field", "is_container", "register_dataclasses", "tree_zeros", "tree_put", "tree_add_at", "tree_add",
           "list_put", "list_nones", "list_add_at", "pop_adjoint", "drop_adjoint", "entry_adjoint", "filled",
           "NAMESPACE"]

NAMESPACE = "srcdiff"


class field:
    """The key of an attribute read, ``p.W``: ``rt.tree_put(p, rt.field("W"), dW)``."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"field({self.name!r})"


def is_container(x) -> bool:
    """Dicts, lists, tuples (namedtuples too) and dataclass instances."""
    return isinstance(x, (dict, list, tuple)) or (
        dataclasses.is_dataclass(x) and not isinstance(x, type))


_FLAT_LEAVES = (np.ndarray, float, int, bool, np.float64, np.float32, np.float16, np.int64,
                np.int32, np.bool_, np.complex128, np.complex64, complex)


def flat_items(x):
    """``x``'s ``(key, value)`` pairs where ``x`` is a dict, list or tuple (not a subclass:
    a namedtuple is rebuilt by its fields) whose every value is a numpy array or a number;
    else None. The common pytree of a model's parameters, which callers walk without optree
    (each ``tree_map`` costs ~20 µs of a call)."""
    kind = type(x)
    if kind is dict:
        items = list(x.items())
    elif kind is list or kind is tuple:
        items = list(enumerate(x))
    else:
        return None
    for _, v in items:
        if type(v) not in _FLAT_LEAVES:
            return None
    return items


def register_dataclasses(x) -> None:
    """Teach optree the dataclass types in ``x`` (a dataclass's fields are its children).

    Runs on every call of a gradient with a container argument, so it asks optree (C) for
    the leaves and looks only at leaf types it has not seen: a dataclass optree does not
    know yet is a leaf; once registered, its own fields are looked at in the next round.
    (A walk in Python over every node cost ~25 us a call for a dict of two arrays.)"""
    while True:
        found = False
        for leaf in optree.tree_leaves(x, namespace=NAMESPACE):
            cls = type(leaf)
            if cls in _LEAF_TYPES or cls in _REGISTERED:
                continue
            if dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
                names = tuple(f.name for f in dataclasses.fields(cls))
                optree.register_pytree_node(
                    cls, lambda obj, names=names: (tuple(getattr(obj, n) for n in names), None,
                                                   names),
                    lambda _, children, cls=cls, names=names: cls(**dict(zip(names, children))),
                    namespace=NAMESPACE)
                _REGISTERED.add(cls)
                found = True
            else:
                _LEAF_TYPES.add(cls)  # never a dataclass: not asked again
        if not found:
            return


_REGISTERED: set = set()
_LEAF_TYPES: set = set()  # leaf types known not to be dataclasses


def _walk(x):
    yield x
    if isinstance(x, dict):
        for v in x.values():
            yield from _walk(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _walk(v)
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        for f in dataclasses.fields(x):
            yield from _walk(getattr(x, f.name))


def is_float(leaf) -> bool:
    """Whether ``leaf`` is a floating-point number or array (a bool is not)."""
    if type(leaf) is np.ndarray:  # (np.issubdtype costs ~1 µs)
        return leaf.dtype.kind == "f"
    if isinstance(leaf, bool):
        return False
    if isinstance(leaf, float):
        return True
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and np.issubdtype(dtype, np.floating)


def tree_map(fn, tree, *rest):
    """optree's tree_map over leaves (None stays None), dataclasses included."""
    register_dataclasses(tree)
    return optree.tree_map(fn, tree, *rest, namespace=NAMESPACE)


def tree_zeros(x):
    """Zeros with ``x``'s structure: zero arrays (or 0.0) for float leaves, None elsewhere."""
    if (type(x) is list or type(x) is tuple) and all(type(v) is np.ndarray for v in x):
        # the common case, a list of numpy arrays (a loop's states), without a walk per leaf
        zeros = [np.zeros(v.shape, v.dtype) if v.dtype.kind == "f" else None for v in x]
        return zeros if type(x) is list else tuple(zeros)
    if not is_container(x):
        return np.zeros_like(x) if hasattr(x, "shape") else 0.0 if is_float(x) else None
    kind = type(x)
    if kind is dict or kind is list or kind is tuple:  # (plain containers, nested too: no
        values = x.values() if kind is dict else x      # optree walk, ~20 µs a container)
        zeros = [tree_zeros(v) if is_container(v) or is_float(v) else None for v in values]
        return dict(zip(x, zeros)) if kind is dict else zeros if kind is list else tuple(zeros)
    return tree_map(lambda leaf: tree_zeros(leaf) if is_float(leaf) else None, x)


def _is_property(x, key) -> bool:
    """``p.scale`` where ``scale`` is a ``@property`` of the dataclass or namedtuple ``p``."""
    return isinstance(key, field) and is_container(x) and \
        isinstance(getattr(type(x), key.name, None), property)


def _property_adjoint(x, key: field, value):
    """The adjoint of ``x`` read through its property: the getter's derivative, like a
    method's (``self.W`` inside gives ``dp.W``); the getter runs once more to get it."""
    from .link import call_vjp

    _, pullback = call_vjp(getattr(type(x), key.name).fget, x, wrt=(0,))
    return pullback(value)


def _get(x, key):
    return getattr(x, key.name) if isinstance(key, field) else x[key]


def _replace(x, key, value):
    """A copy of container ``x`` with ``x[key]`` (or the field) set to ``value``."""
    if isinstance(key, field):
        if hasattr(x, "_replace"):
            return x._replace(**{key.name: value})
        if key.name not in {f.name for f in dataclasses.fields(x)}:
            from srcdiff.errors import SrcdiffError

            raise SrcdiffError(
                f"srcdiff differentiates the fields of a dataclass, and .{key.name} of "
                f"{type(x).__name__} is not one (a property?); compute it from the fields "
                "in the differentiated function instead.")
        return dataclasses.replace(x, **{key.name: value})
    if isinstance(x, dict):
        return {**x, key: value}
    items = list(x)
    items[key] = value
    return items if isinstance(x, list) else type(x)(*items) if hasattr(x, "_fields") \
        else tuple(items)


def tree_put(x, key, value):
    """The adjoint of ``x`` when only ``x[key]`` (adjoint ``value``) was read from it."""
    if _is_property(x, key):
        return _property_adjoint(x, key, value)
    if not is_container(x):
        if isinstance(key, field):  # x.name of an array srcdiff took for a dataclass field
            from srcdiff.errors import SrcdiffError

            raise SrcdiffError(
                f"srcdiff cannot differentiate the attribute .{key.name} of an array read out "
                "of a container; use a function (np.transpose, np.swapaxes) or wrap the value "
                "in srcdiff.stop_gradient(...)")
        from .rules import getitem_adjoint

        return getitem_adjoint(value, x, key)
    return _replace(tree_zeros(x), key, value)


def tree_add(a, b):
    """Leaf-wise sum of two adjoints of the same structure; None counts as zero."""
    if a is None:
        return b
    if b is None:
        return a
    if type(a) is np.ndarray or not is_container(a):
        return add(a, b)
    if isinstance(a, list) and isinstance(b, tuple) or isinstance(a, tuple) and isinstance(b, list):
        b = type(a)(b)  # a list's adjoint from np.stack's rule comes back as a tuple
    kind = type(a)
    if (kind is list or kind is tuple) and type(b) is kind and len(a) == len(b):
        summed = [tree_add(u, v) for u, v in zip(a, b)]  # (plain containers: no optree walk)
        return summed if kind is list else tuple(summed)
    if kind is dict and type(b) is dict:  # (an adjoint of a dict filled by writes may hold
        return {k: tree_add(a.get(k), b.get(k)) for k in {**a, **b}}  # a key another lacks)
    register_dataclasses(a)
    return optree.tree_map(add, a, b, none_is_leaf=True, namespace=NAMESPACE)


def tree_add_at(d, x, key, value):
    """``d`` (an adjoint of ``x``) plus ``value`` at ``key``."""
    if not is_container(x) or _is_property(x, key):
        return tree_add(d, tree_put(x, key, value))
    return _replace(d, key, tree_add(_get(d, key), value))


# ----- the adjoint of a list built by appends, changed in place -----
# (the ``lists`` stage writes these where the adjoint list is provably the pullback's own:
# ``None`` is an entry with no adjoint yet, and ``xs`` is the primal list, only ever
# appended to, so its first ``len(d)`` entries are those of the version ``d`` belongs to)

def list_put(xs, key, value):
    """``tree_put`` for a list: ``value`` at ``key``, ``None`` (no zero array) elsewhere.

    >>> list_put([1.0, 2.0, 3.0], -1, 5.0)
    [None, None, 5.0]
    """
    d = [None] * len(xs)
    d[key] = value
    return d


def list_nones(xs):
    """``tree_zeros`` for a list: an adjoint with no entry yet."""
    return [None] * len(xs)


def list_add_at(d, key, value):
    """``tree_add_at`` into the list ``d`` itself: ``d[key] += value`` (``None`` is zero)."""
    old = d[key]
    d[key] = value if old is None else tree_add(old, value)  # (a loop's state: most often None)
    return d


def _zeros_at(xs, i):
    return tree_zeros(xs[i])


def pop_adjoint(d, xs):
    """The adjoint of the value the last append put in the list, taken off ``d`` (the adjoint
    of the list before that append is ``d`` after it); zeros if it got none.

    >>> d = [1.0, None]
    >>> pop_adjoint(d, [3.0, 4.0]), d
    (0.0, [1.0])
    """
    g = d.pop()
    return _zeros_at(xs, len(d)) if g is None else g


def drop_adjoint(d):
    """``d`` without its last entry (the adjoint of an appended value nobody needs)."""
    d.pop()
    return d


def entry_adjoint(d, key, xs):
    """``d[key]``, zeros where that entry got no adjoint."""
    g = d[key]
    return _zeros_at(xs, range(len(d))[key]) if g is None else g


def filled(d, xs):
    """A new list: ``d`` with zeros for the entries that got no adjoint, for code that reads
    the adjoint list as a whole."""
    return [_zeros_at(xs, i) if g is None else g for i, g in enumerate(d)]
