"""Fresh, readable names for temporaries and adjoints, never clashing with the user's."""

from __future__ import annotations

from collections import Counter

import libcst as cst

__all__ = ["Namer", "names_in", "occurrences"]


def names_in(node: cst.CSTNode) -> set[str]:
    """Every identifier spelled in ``node`` (variables, parameters, attribute heads)."""
    found: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

    node.visit(Collect())
    return found


def occurrences(node: cst.CSTNode) -> Counter:
    """How often each name is spelled in ``node``."""
    found: Counter = Counter()

    class Count(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found[n.value] += 1

    node.visit(Count())
    return found


class Namer:
    """Hands out names unused in the module and by the reserved set (globals, builtins).

    >>> n = Namer({"x", "_t1"})
    >>> n.temp(), n.adjoint("x"), n.adjoint("_t2")
    ('_t2', 'dx', 'd_t2')
    """

    def __init__(self, taken: set[str]):
        self._taken = set(taken)
        self._adjoints: dict[str, str] = {}

    def fresh(self, base: str) -> str:
        name, n = base, 0
        while name in self._taken:
            n += 1
            name = f"{base}_{n}"
        self._taken.add(name)
        return name

    def fresh_numbered(self, prefix: str) -> str:
        """``_c1``, ``_c2`` …: the next unused numbered name with ``prefix``."""
        n = 1
        while f"{prefix}{n}" in self._taken:
            n += 1
        self._taken.add(f"{prefix}{n}")
        return f"{prefix}{n}"

    def temp(self) -> str:
        n = 1
        while f"_t{n}" in self._taken:
            n += 1
        self._taken.add(f"_t{n}")
        return f"_t{n}"

    def version(self, name: str) -> str:
        """A new name for a reassigned variable: ``h`` → ``h_1``, ``h_2`` …"""
        return self.fresh_numbered(f"{name}_")

    def adjoint(self, name: str) -> str:
        """The adjoint's name for ``name``: ``dpred`` for ``pred``, ``d_t1`` for ``_t1``."""
        if name not in self._adjoints:
            base = "d" + name
            candidate = base
            while candidate in self._taken:
                candidate += "_"
            self._taken.add(candidate)
            self._adjoints[name] = candidate
        return self._adjoints[name]
