"""Container (pytree) arguments of ``srcdiff.jit``: flattened at the boundary, rebuilt after.

A kernel takes numbers and arrays. A dict, list, tuple, namedtuple or dataclass argument is
flattened with optree into its leaves, which the kernel takes as separate arguments; the
kernel is built from a twin of your function that reads the leaves where yours reads the
container with keys written in the source, at the same lines of your file:

Before::

    def loss(params, x):
        h = np.tanh(x @ params["W"] + params["b"])
        return np.sum(h ** 2) * len(params)

After (``flat_function``)::

    def loss(params_W, params_b, x):
        h = np.tanh(x @ params_W + params_b)
        return np.sum(h ** 2) * 2

The gradient of each leaf comes back from the kernel and is put in the argument's structure
(``rebuild``): the same types as the numpy path, ``None`` for leaves that are not floats.
A structure is known when the twin is made: another structure makes another twin. A
container read any other way (iterated, passed whole to a function, indexed by a value
computed when it runs) is refused at its line.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import hashlib
import re
from dataclasses import dataclass, replace

import libcst as cst
import numpy as np
import optree

from srcdiff.runtime import trees as rt_trees

from .locate import JitLocatedError

__all__ = ["Leaf", "Node", "flatten", "flat_function", "rebuild", "leaves_of", "describe", "digest"]

_MARK = "__srcdiff_tree_"  # a container read part way (params["enc"]) while rewriting


@dataclass(frozen=True)
class Leaf:
    """One leaf: its flat argument's name, whether it is a float (gets a gradient)."""

    name: str
    is_float: bool


@dataclass(frozen=True)
class Node:
    """A container: its type, its children by key (dict keys, positions), its field names
    (a namedtuple's or dataclass's: read as attributes)."""

    kind: type
    children: dict
    fields: tuple = ()


def _is_float(leaf) -> bool:
    """A Python float or a floating-point array or numpy number: a leaf with a gradient."""
    if type(leaf) is np.ndarray:
        return leaf.dtype.kind == "f"
    return type(leaf) is float or not isinstance(leaf, bool) and (isinstance(leaf, float) or
                                                                  np.issubdtype(getattr(
                                                                      leaf, "dtype", np.dtype(object)), np.floating))


_PLAIN = frozenset({np.ndarray, float, int, bool})  # leaves that are no dataclass


def flatten(args) -> tuple[tuple, tuple]:
    """``(leaves, key)``: every argument's leaves in order (a container's as optree orders
    them, numbers and arrays as they are), and the key of the structure: per argument its
    treespec (None for a leaf) and which leaves are floats."""
    leaves, key = [], []
    for a in args:
        if rt_trees.is_container(a):
            flat, spec = optree.tree_flatten(a, namespace=rt_trees.NAMESPACE)
            if any(type(x) not in _PLAIN and dataclasses.is_dataclass(x) for x in flat):
                rt_trees.register_dataclasses(a)  # optree learns a dataclass type once
                flat, spec = optree.tree_flatten(a, namespace=rt_trees.NAMESPACE)
            leaves += flat
            key.append((spec, tuple(_is_float(x) for x in flat)))
        else:
            leaves.append(a)
            key.append(None)
    return tuple(leaves), tuple(key)


def rebuild(grads, key, wrt_index) -> tuple:
    """The gradients of the arguments at ``wrt_index`` from the kernel's leaf gradients
    (``grads``, float leaves only, in order) and the arguments' structure ``key``
    (``flatten``): a container's in its structure, ``None`` for a leaf that is not a float,
    as the numpy path gives them."""
    grads, out = iter(grads), []
    for i in wrt_index:
        if key[i] is None:
            out.append(next(grads))
            continue
        spec, floats = key[i]
        out.append(optree.tree_unflatten(spec, [next(grads) if f else None for f in floats]))
    return tuple(out)


def describe(value, name: str, taken: set) -> Leaf | Node:
    """The tree of ``value`` with a fresh leaf name for each leaf (``params_W1``), in
    optree's leaf order; ``taken``: names already used (grows)."""
    if not rt_trees.is_container(value) and value is not None:
        leaf_name = name
        while leaf_name in taken:
            leaf_name += "_"
        taken.add(leaf_name)
        return Leaf(leaf_name, _is_float(value))
    if value is None:
        return Node(type(None), {})
    children, _, entries = optree.tree_flatten_one_level(value, namespace=rt_trees.NAMESPACE)[:3]
    keys = entries
    fields = tuple(value._fields) if hasattr(value, "_fields") else tuple(
        f.name for f in dataclasses.fields(value)) if dataclasses.is_dataclass(value) else ()
    return Node(type(value), {k: describe(c, f"{name}_{_spelled(k)}", taken)
                              for k, c in zip(keys, children)}, fields)


def _spelled(key) -> str:
    return re.sub(r"\W", "_", str(key)).strip("_") or "k"


def leaves_of(node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    return [leaf for child in node.children.values() for leaf in leaves_of(child)]


def flat_function(fn, args, params: tuple[str, ...]):
    """The twin of ``fn`` over the leaves of its container arguments ``args`` (bound to
    ``params``) and its parameters' tree (``{param: Leaf | Node}``); raises a located
    ``JitLocatedError`` where a container is read in a way a kernel cannot take."""
    from srcdiff.made import make_functions, register
    from srcdiff.names import names_in
    from srcdiff.source import get_source

    source = get_source(fn)
    funcdef = source.funcdef
    taken = set(names_in(source.module)) | set(params)  # grows with the leaves' names
    tree = {p: describe(a, p, taken) if rt_trees.is_container(a) else Leaf(p, _is_float(a))
            for p, a in zip(params, args)}
    if type(funcdef.body) is not cst.IndentedBlock or source.lifted or source.one_line:
        raise _error(source, funcdef, "a one-line def or nested functions with a container "
                     "argument; write the function out over several lines")
    rewriter = _Reader(source, {p: n for p, n in tree.items() if isinstance(n, Node)})
    body = funcdef.body.visit(rewriter)
    rewriter.check(body)
    if funcdef.params.kwonly_params or funcdef.params.star_arg not in (None, cst.MaybeSentinel.DEFAULT) \
            or funcdef.params.star_kwarg is not None or funcdef.params.posonly_params:
        raise _error(source, funcdef, "*args, **kwargs, keyword-only or positional-only "
                     "parameters with a container argument")
    new_params = []  # each container's leaves where it stood, on its line (the lines stay)
    for param in funcdef.params.params:
        node = tree.get(param.name.value)
        if not isinstance(node, Node):
            new_params.append(param.with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT))
            continue
        leaves = leaves_of(node)
        if not leaves:
            continue
        new_params += [cst.Param(cst.Name(leaf.name), comma=cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))) for leaf in leaves[:-1]]
        new_params.append(cst.Param(cst.Name(leaves[-1].name), comma=param.comma))
    new = funcdef.with_changes(params=funcdef.params.with_changes(params=new_params), body=body)
    line = source.file_line(source.line_of(source.module, funcdef))
    twin = make_functions(fn, [(new.with_changes(leading_lines=()), line)])[0]
    twin.__qualname__ = fn.__qualname__
    register(twin, replace(source, fn=twin, text=None, module=source.module.with_changes(body=[new])))
    return twin, tree


def digest(twin) -> str:
    """A short hash of the twin's source (which leaves it takes, how it reads them)."""
    from srcdiff.made import source_of

    return hashlib.sha1(source_of(twin).module.code.encode()).hexdigest()[:12]


def _error(source, node, what: str) -> JitLocatedError:
    line = source.line_of(source.module, node)
    text = source.line_text(line)
    return JitLocatedError(
        f"srcdiff.jit cannot compile {what}; call the gradient without srcdiff.jit, or pass "
        "fallback=True to run the numpy derivative with a warning",
        source.filename, source.file_line(line), len(text) - len(text.lstrip()), text)


class _Reader(cst.CSTTransformer):
    """Container reads with keys written in the source become the leaves' names; what is
    read part way is a marker name, recorded with the node it came from (``check``)."""

    def __init__(self, source, containers: dict):
        super().__init__()
        self.source = source
        self.names = dict(containers)  # a parameter or an alias -> its Node
        self.marks: dict[str, tuple] = {}  # marker -> (Node, the original expression)
        self.depth = 0  # inside a compound statement: no aliases there
        self.targets = 0  # inside an assignment's target

    # ----- reads -----

    def _mark(self, node, original):
        if isinstance(node, Leaf):
            return cst.Name(node.name)
        if node.kind is type(None):
            return cst.Name("None")
        mark = f"{_MARK}{len(self.marks)}"
        self.marks[mark] = (node, original)
        return cst.Name(mark)

    def _held(self, expr):
        return self.marks[expr.value][0] if type(expr) is cst.Name and \
            expr.value in self.marks else None

    def leave_Name(self, original, updated):
        node = self.names.get(updated.value)
        return self._mark(node, original) if node is not None else updated

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)  # f(params=...): a keyword

    def leave_Param(self, original, updated):
        return updated.with_changes(name=original.name)

    def visit_AssignTarget(self, node):
        self.targets += 1

    def leave_AssignTarget(self, original, updated):
        self.targets -= 1
        return updated

    def visit_AugAssign_target(self, node):
        self.targets += 1

    def leave_AugAssign_target(self, node):
        self.targets -= 1

    def leave_Subscript(self, original, updated):
        node = self._held(updated.value)
        if node is None:
            return updated
        if self.targets:
            raise self._refused(original, "writes into a container")
        key = _literal(updated.slice[0].slice.value) if len(updated.slice) == 1 and isinstance(
            updated.slice[0].slice, cst.Index) else _NO_KEY
        if node.fields and not issubclass(node.kind, tuple):
            key = _NO_KEY  # a dataclass: read by attribute only
        if isinstance(key, int) and not isinstance(key, bool) and issubclass(node.kind, (list, tuple)):
            key = key + len(node.children) if -len(node.children) <= key < 0 else key
        if key is _NO_KEY or key not in node.children:
            raise self._refused(original, "reads a container with a key computed when it runs, "
                                "or one it does not hold")
        return self._mark(node.children[key], original)

    def leave_Attribute(self, original, updated):
        updated = updated.with_changes(attr=original.attr)  # x.params: not the parameter
        node = self._held(updated.value)
        if node is None:
            return updated
        name = updated.attr.value
        if self.targets:
            raise self._refused(original, "writes into a container")
        if name not in node.fields:
            raise self._refused(original, f"reads .{name}, which is not a field of the "
                                f"{node.kind.__name__}")
        key = node.fields.index(name) if issubclass(node.kind, tuple) else name
        return self._mark(node.children[key], original)

    def leave_Call(self, original, updated):
        node = self._held(updated.args[0].value) if len(updated.args) == 1 else None
        if node is not None and _is_name(updated.func, "len") and \
                self.source.fn.__globals__.get("len", builtins.len) is builtins.len:
            return cst.Integer(str(len(node.children)))
        return updated

    # ----- aliases: p = params["enc"]; W, b = params["layer"] -----

    def visit_IndentedBlock(self, node):
        self.depth += 1

    def leave_IndentedBlock(self, original, updated):
        self.depth -= 1
        return updated

    def leave_Assign(self, original, updated):
        node = self._held(updated.value)
        if node is None or len(updated.targets) != 1:
            return updated
        target = updated.targets[0].target
        if self.depth == 1 and type(target) is cst.Name:
            self.names[target.value] = node
            return cst.Pass()
        if type(target) in (cst.Tuple, cst.List) and issubclass(node.kind, (list, tuple)) \
                and len(target.elements) == len(node.children) and all(
                    type(e.value) is cst.Name for e in target.elements):
            children = list(node.children.values())
            if all(isinstance(c, Leaf) for c in children):
                values = cst.Tuple([cst.Element(cst.Name(c.name)) for c in children])
                return updated.with_changes(value=values)
        return updated

    # ----- what is left -----

    def check(self, body) -> None:
        """Refuses the first container still read as a whole (iterated, passed on)."""
        from libcst import matchers as m

        left = {n.value for n in m.findall(body, m.Name())} & set(self.marks)
        if left:
            first = min(left, key=lambda k: int(k[len(_MARK):]))
            raise self._refused(self.marks[first][1], "uses a container as a whole (iterates "
                                "over it, passes it to a function, rebinds or returns it)")

    def _refused(self, original, what: str) -> JitLocatedError:
        line = self.source.line_of(self.source.module, original)
        code = self.source.module.code_for_node(original)
        text = self.source.line_text(line)
        col = text.find(code.split("\n")[0]) if code.split("\n")[0] in text else \
            len(text) - len(text.lstrip())
        return JitLocatedError(
            f"srcdiff.jit passes the arrays of a container argument to the kernel one by one, "
            f"so it reads a container only with keys written in the source (params[\"W\"], "
            f"p.W, layers[0], len(layers)); '{code}' {what}. Read its arrays with such keys, "
            "pass them as separate arguments, or call the gradient without srcdiff.jit "
            "(fallback=True runs the numpy derivative with a warning)",
            self.source.filename, self.source.file_line(line), max(col, 0), text)


_NO_KEY = object()


def _literal(expr):
    try:
        return ast.literal_eval(cst.Module(body=[]).code_for_node(expr))
    except (ValueError, SyntaxError, TypeError):
        return _NO_KEY


def _is_name(expr, name: str) -> bool:
    return type(expr) is cst.Name and expr.value == name
