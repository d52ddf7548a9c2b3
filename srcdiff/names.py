"""Fresh, readable names for temporaries and adjoints, never clashing with the user's."""

from __future__ import annotations

import dataclasses
from collections import Counter

import libcst as cst

__all__ = ["Namer", "Renamed", "children", "is_kind", "is_node_type", "names_in", "node_fields",
           "nodes", "occurrences", "kept_lines"]


def nodes(node: cst.CSTNode, skip=None):
    """``node`` and every node below it but trivia (whitespace, comments, punctuation), depth
    first; below a node for which ``skip(n)`` is true nothing is visited. A plain walk over
    the dataclass fields: several times faster than libcst's visitors, which rebuild the
    tree they visit."""
    stack = [node]
    pop, push = stack.pop, stack.extend
    name = cst.Name
    while stack:
        n = pop()
        yield n
        if type(n) is name or skip is not None and skip(n):
            continue
        below = children(n)
        if below:
            below.reverse()
            push(below)


def children(node: cst.CSTNode) -> list:
    """The nodes right below ``node``, in the order of its fields, trivia excluded."""
    found = []
    kind = type(node)
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _fields(kind)
    for field in fields:
        value = getattr(node, field)
        kind = type(value)
        if kind is tuple or kind is list:
            for v in value:
                node_kind = _IS_NODE.get(type(v))
                if node_kind is None:
                    node_kind = is_node_type(type(v))
                if node_kind:
                    found.append(v)
        else:
            node_kind = _IS_NODE.get(kind)
            if node_kind is None:
                node_kind = is_node_type(kind)
            if node_kind:
                found.append(value)
    return found


_IS_NODE: dict[type, bool] = {}


def is_node_type(kind: type) -> bool:
    """``issubclass(kind, cst.CSTNode)``, remembered per type: ``isinstance`` against libcst's
    abstract classes costs a Python-level ``ABCMeta.__instancecheck__`` call each time."""
    found = _IS_NODE.get(kind)
    if found is None:
        found = _IS_NODE[kind] = issubclass(kind, cst.CSTNode)
    return found


_FIELDS: dict[type, tuple[str, ...]] = {}


def node_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node type that may hold nodes but trivia (whitespace, punctuation)."""
    return _fields(kind)


def _fields(kind: type) -> tuple[str, ...]:
    found = _FIELDS.get(kind)
    if found is None:
        found = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind)
                                      if not f.name.startswith("whitespace") and f.name not in _TRIVIA)
    return found


# fields that hold only whitespace, comments and punctuation
_TRIVIA = frozenset({"lpar", "rpar", "leading_lines", "lines_after_decorators", "trailing_whitespace",
                     "header", "footer", "comma", "dot", "equal", "colon", "semicolon",
                     "first_colon", "second_colon", "lbracket", "rbracket", "lbrace", "rbrace",
                     "newline", "indent"})


def spelled(node: cst.CSTNode) -> Counter:
    """How often each identifier is spelled in ``node`` (attribute names and keywords too):
    a name spelled as often in one block as in the whole function is read nowhere else."""
    counts: Counter = Counter()
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is cst.Name:
            counts[n.value] += 1
        else:
            stack.extend(children(n))  # (not libcst's ``n.children``: a visitor per node)
    return counts


def names_in(node: cst.CSTNode) -> set[str]:
    """Every identifier spelled in ``node`` (variables, parameters, attribute heads)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        kind = type(n)
        if kind is cst.Name:
            found.add(n.value)
        elif kind is cst.SimpleStatementLine:
            found |= _line_names(n)
        else:
            stack.extend(children(n))
    return found


# id(line) -> (line, the names in it): most passes keep most lines as they are (the same
# objects), and nearly every pass asks for the names of the whole module
_LINE_NAMES: dict[int, tuple[cst.SimpleStatementLine, frozenset[str]]] = {}


def _line_names(line: cst.SimpleStatementLine) -> frozenset[str]:
    entry = _LINE_NAMES.get(id(line))
    if entry is None or entry[0] is not line:  # not seen, or another line by the same id
        if len(_LINE_NAMES) >= 4096:
            _LINE_NAMES.clear()
        entry = (line, frozenset(n.value for n in nodes(line) if type(n) is cst.Name))
        _LINE_NAMES[id(line)] = entry
    return entry[1]


def is_kind(kind: type, cls: type) -> bool:
    """``issubclass(kind, cls)``, remembered (see :func:`is_node_type`)."""
    found = _KINDS.get((kind, cls))
    if found is None:
        found = _KINDS[kind, cls] = issubclass(kind, cls)
    return found


_KINDS: dict[tuple[type, type], bool] = {}


def occurrences(node: cst.CSTNode) -> Counter:
    """How often each name is spelled in ``node``."""
    return Counter(n.value for n in nodes(node) if type(n) is cst.Name)


class Renamed(cst.CSTTransformer):
    """Variables renamed by ``names`` (old -> new): never an attribute's own name
    (``x.v``), nor a keyword's (``f(v=1)``)."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def leave_Name(self, original, updated):
        return updated.with_changes(value=self.names.get(updated.value, updated.value))

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)


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


def with_blocks(stmt: cst.BaseCompoundStatement, rewrite) -> cst.BaseCompoundStatement:
    """``stmt`` (``if``/``for``/``while``/``with``) with ``rewrite`` (an indented block to a
    new one) applied to each block it holds: its body, its ``else``, an ``elif`` chain's."""
    stmt = stmt.with_changes(body=rewrite(stmt.body))
    orelse = getattr(stmt, "orelse", None)
    if type(orelse) is cst.Else:
        stmt = stmt.with_changes(orelse=orelse.with_changes(body=rewrite(orelse.body)))
    elif type(orelse) is cst.If:
        stmt = stmt.with_changes(orelse=with_blocks(orelse, rewrite))
    return stmt


def kept_lines(pairs) -> list:
    """The statements of ``pairs`` (``(statement, what replaces it)``, None where it goes):
    the leading lines of each one that goes (its comments: ``# backward``) go in front of the
    next one kept."""
    result, carried = [], []
    for stmt, new in pairs:
        if new is None:
            carried += stmt.leading_lines
            continue
        if carried:
            new, carried = new.with_changes(leading_lines=[*carried, *new.leading_lines]), []
        result.append(new)
    return result
