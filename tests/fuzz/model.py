"""The vocabulary of the fuzzer's generator: shapes, expressions rendered twice (clean and
oracle), hypothesis choices, and the variables, loops and helpers a function body tracks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import strategies as st

BOX = "#box"  # a root marking values read out of a list, tuple or dict
BOUND = 6.0    # expressions whose bound exceeds this are squashed with np.tanh

# ----------------------------------------------------------------------------- shapes, E

S, U, V, M = (), (2,), (3,), (2, 3)
ARRAYS = (V, U, M)
ATOM, POW, UNARY, MUL, ADD, CMP, NOT, AND, OR, IFX = 100, 90, 80, 70, 60, 50, 40, 30, 20, 10
NICE = (0.5, 0.3, 1.5, 2.0, 0.7, 0.25, 1.2, -0.4, -0.8, 0.1, 0.9, -1.1)
THRESH = (0.0, 0.2, -0.3, 0.5, 1.0, -1.0, 0.1, -0.6)
NONE = frozenset()


@dataclass(frozen=True)
class E:
    """An expression, rendered for the clean and the oracle module."""

    src: str
    osrc: str
    shape: tuple
    bound: float = 1.0
    prec: int = ATOM
    fresh: bool = True           # a new object (not a view or alias of a variable)
    roots: frozenset = NONE      # writable local arrays it may alias (views of them)


def _par(e: E, p: int) -> tuple[str, str]:
    return (f"({e.src})", f"({e.osrc})") if e.prec < p else (e.src, e.osrc)


def lit(value: float) -> E:
    text = repr(float(value))
    return E(text, text, S, abs(float(value)), UNARY if value < 0 else ATOM)


def call(name: str, args, shape, bound, oname=None, fresh=True, roots=NONE, extra="") -> E:
    cs = ", ".join(a.src if isinstance(a, E) else a for a in args) + extra
    os_ = ", ".join(a.osrc if isinstance(a, E) else a for a in args) + extra
    return E(f"{name}({cs})", f"{oname or name}({os_})", shape, bound, ATOM, fresh, roots)


def method(obj: E, name: str, args: str, shape, bound, fresh=True, roots=NONE, oname=None,
           oargs=None) -> E:
    s, o = _par(obj, ATOM)
    if oname is not None:  # the oracle spells it as a recorder call
        sep = ", " if (oargs or args) else ""
        return E(f"{s}.{name}({args})", f"{oname}({o}{sep}{oargs if oargs is not None else args})",
                 shape, bound, ATOM, fresh, roots)
    return E(f"{s}.{name}({args})", f"{o}.{name}({args})", shape, bound, ATOM, fresh, roots)


def attr(obj: E, text: str, shape, bound, fresh=False, roots=None) -> E:
    """``obj.T``, ``obj[0]``, ``obj[:, 1]``: ``text`` follows the object."""
    s, o = _par(obj, ATOM)
    return E(f"{s}{text}", f"{o}{text}", shape, bound, ATOM, fresh,
             obj.roots if roots is None else roots)


def binop(a: E, op: str, b: E, shape, bound) -> E:
    p = {"+": ADD, "-": ADD, "*": MUL, "/": MUL, "@": MUL, "%": MUL, "//": MUL}[op]
    la, lo = _par(a, p)
    ra, ro = _par(b, p + 1)
    return E(f"{la} {op} {ra}", f"{lo} {op} {ro}", shape, bound, p)


def power(a: E, k: int) -> E:
    s, o = _par(a, ATOM)
    return E(f"{s} ** {k}", f"{o} ** {k}", a.shape, a.bound ** k, POW)


def neg(a: E) -> E:
    s, o = _par(a, UNARY)
    return E(f"-{s}", f"-{o}", a.shape, a.bound, UNARY)


def compare(a: E, op: str, b: E, shape=S) -> E:
    """A comparison on data: the oracle measures how far it is from flipping."""
    name = {">": "gt", "<": "lt", ">=": "ge", "<=": "le"}[op]
    la, lo = _par(a, CMP + 1)
    ra, ro = _par(b, CMP + 1)
    return E(f"{la} {op} {ra}", f"_fz.{name}({a.osrc}, {b.osrc})", shape, 0, CMP)


def plain_cond(text: str) -> E:
    """A condition on integers (loop indices, counters, int arguments): no margin needed."""
    return E(text, text, S, 0, CMP)


def sub_shapes(shape):
    """Operand shapes that broadcast to ``shape`` without changing it."""
    return {S: [S], V: [V, S], U: [U, S], M: [M, V, S, "col"]}[shape]


# ----------------------------------------------------------------------------- choices


class Chooser:
    """Hypothesis draws, arranged so that shrinking goes to the first option / False / lo."""

    def __init__(self, draw):
        self._draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi)) if hi > lo else lo

    def coin(self, p: float) -> bool:
        return self._draw(st.integers(0, 99)) >= 100 - round(100 * p)

    def pick(self, seq):
        seq = list(seq)
        return seq[self.int(0, len(seq) - 1)]

    def weighted(self, pairs):
        pairs = [(k, w) for k, w in pairs if w > 0]
        r = self.int(0, sum(w for _, w in pairs) - 1)
        for k, w in pairs:
            if r < w:
                return k
            r -= w
        raise AssertionError


# ----------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class Var:
    name: str
    kind: str                   # "arr" (scalar or array), "int", "list", "dict", "tuple"
    shape: tuple = ()           # arr: its shape; list: the element shape
    bound: float = 1.5
    writable: bool = False      # a local array nobody else sees: may be written in place
    roots: frozenset = NONE     # writable local arrays this may be a view of
    is_arg: bool = False
    min_len: int = 0            # list: elements certainly there
    items: tuple = ()           # dict: ((key, shape), ...); tuple: (shape, ...);
    #                             nested ([[a, b], c]): ((shape, shape), shape)
    length: int | None = None   # list: its exact length, where known


@dataclass
class Frame:
    """A loop being generated: which outer arrays its body writes in place, which it stores."""

    outer: frozenset
    write: set = field(default_factory=set)
    capture: set = field(default_factory=set)
    exits: list = field(default_factory=list)
    index: str | None = None
    index_max: int | None = None   # the index is < this (a known range), for out[i]
    lists: set = field(default_factory=set)   # lists iterated by this loop: no appends
    iterated: set = field(default_factory=set)  # arrays iterated by this loop


@dataclass
class Helper:
    name: str
    params: tuple               # ((name, shape), ...)
    defaults: tuple             # ((name, literal), ...): scalar parameters with defaults
    returns: tuple              # shapes; one shape: a single value
    recursive: bool = False
    ret_box: "Box | None" = None  # returns a container (list, tuple, dict) the caller reads
    optional: tuple = ()        # ((name, shape), ...): parameters with the default None
    arr_defaults: tuple = ()    # ((name, shape, constant), ...): parameters defaulting to an array


@dataclass(frozen=True)
class Box:
    """A container a helper takes (``helper([a, b])``) or returns: ``kind`` is list, tuple, dict
    or nested (``[[a, b], c]``); ``items`` as in :class:`Var`."""

    kind: str
    items: tuple

    def shapes(self):
        if self.kind == "dict":
            return [sh for _, sh in self.items]
        if self.kind == "nested":
            return [*self.items[0], self.items[1]]
        return list(self.items)


POOLS = {
    "s": ["s", "t", "acc", "r", "q", "e", "m0", "loss"],
    "a": ["h", "a", "c", "z", "g", "p", "o", "hv"],
    "alloc": ["out", "buf", "res"],
    "list": ["hs", "ys", "zs"],
    "dict": ["d", "cfg"],
    "tuple": ["tup", "tp"],
    "count": ["k", "k2", "k3"],
    "idx": ["i", "j", "l"],
    "row": ["row", "col", "item"],
}


class Names:
    def __init__(self, taken=()):
        self.taken = set(taken)

    def new(self, pool: str) -> str:
        for n in itertools.chain(POOLS[pool], (f"{POOLS[pool][0]}{k}" for k in itertools.count(2))):
            if n not in self.taken:
                self.taken.add(n)
                return n
        raise AssertionError


