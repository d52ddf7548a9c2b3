"""gather: a container's adjoint built item by item is written once, as the container.

``reverse`` writes the adjoint of a dict (list, tuple) argument read by keys as
``dparams = rt.tree_put(params, "b2", d_t7)``, a copy of the container with zeros for every
float item, then ``dparams = rt.tree_add_at(dparams, params, "W2", d_t5)`` for each other
key read: a zero array for each item, a sum into it, and a new container each time (an MLP
with its weights in a dict: ~18 % of its gradient). Under a pattern that knows the container
(``dims.Tree``, read only by literal keys: ``shapes.item_trees``), where each key's adjoint is
added once, in statements of one block, this pass writes the last of them as the container
itself and drops the others:

    dparams = rt.tree_put(params, "b2", d_t7)                 (gone)
    ...                                                        ...
    dparams = rt.tree_add_at(dparams, params, "W1", d_t1)  →  dparams = {"W1": d_t1,
                                                                  "b1": rt.tree_zeros(params["b1"]),
                                                                  "b2": d_t7}

An item no key read has the zeros ``tree_put`` gives it (``rt.tree_zeros``). The values are
the same (``zeros + g`` is ``g``); each is a name bound once in the function, so the display
reads the arrays the dropped lines did, and nothing reads the adjoint before the display.
"""

from __future__ import annotations

import json

import libcst as cst

from ..analysis.values import binding_counts, reads
from ..context import Context
from ..names import kept_lines
from .shapes import item_trees, literal_key
from .softmax import assigned

__all__ = ["rewrite"]


def rewrite(module: cst.Module, ctx: Context) -> cst.Module:
    trees = item_trees(ctx) if ctx.dims else {}
    if not trees:
        return module
    vjp = module.body[-1]  # after the module-level links, if any
    counts = binding_counts(vjp)
    gather = _Gather(trees, counts, ctx.rt)
    body = gather.block(vjp.body.body)
    body = [s.with_changes(body=s.body.with_changes(body=gather.block(s.body.body)))
            if type(s) is cst.FunctionDef else s for s in body]
    return module.with_changes(body=[*module.body[:-1], vjp.with_changes(
        body=vjp.body.with_changes(body=body))])


class _Gather:
    def __init__(self, trees: dict, counts: dict, rt: str):
        self.trees, self.counts, self.rt = trees, counts, rt
        self.spelled: dict = {}

    def block(self, statements: list) -> list:
        for container, tree in self.trees.items():
            statements = self.gathered(statements, container, tree)
        return statements

    def gathered(self, statements: list, container: str, tree) -> list:
        """``statements`` with the adjoint of ``container`` built once, where it can be."""
        chain = {}  # statement index -> (key, value name)
        target = None
        for i, stmt in enumerate(statements):
            found = self.step(stmt, container, target)
            if found is not None:
                target = found[0]
                chain[i] = found[1:]
        if not chain:
            return statements
        first, last = min(chain), max(chain)
        keys = [key for key, _ in chain.values()]
        if type(statements[first].body[0].value.func) is not cst.Attribute or \
                statements[first].body[0].value.func.attr.value != "tree_put" or \
                any(statements[i].body[0].value.func.attr.value != "tree_add_at"
                    for i in chain if i != first) or \
                len(set(keys)) != len(keys) or not set(keys) <= set(tree.keys) or \
                self.counts.get(target) != len(chain) or \
                any(target in reads(statements[i]) for i in range(first, last + 1)
                    if i not in chain) or \
                any(self.counts.get(value) != 1 for _, value in chain.values()):
            return statements
        values = dict(chain.values())
        items = [cst.Name(values[k]) if k in values else self.zeros(container, k)
                 for k in tree.keys]
        display = self.display(tree, items, self.key)
        kept = [(s, None if i in chain and i != last else
                 s.with_changes(body=[s.body[0].with_changes(value=display)]) if i == last
                 else s) for i, s in enumerate(statements)]
        return kept_lines(kept)

    def step(self, stmt, container: str, target: str | None):
        """``(target, key, value)`` of ``target = rt.tree_put(container, key, value)`` or
        ``target = rt.tree_add_at(target, container, key, value)``, else None."""
        found = assigned(stmt)
        if found is None:
            return None
        name, value = found
        if not (type(value) is cst.Call and type(value.func) is cst.Attribute and
                type(value.func.value) is cst.Name and value.func.value.value == self.rt and
                value.func.attr.value in ("tree_put", "tree_add_at") and
                not any(a.keyword or a.star for a in value.args)):
            return None
        args = [a.value for a in value.args]
        if value.func.attr.value == "tree_add_at":
            if len(args) != 4 or not (type(args[0]) is cst.Name and args[0].value == name) or \
                    target != name:
                return None
            args = args[1:]
        elif len(args) != 3 or target is not None:
            return None
        x, node, item = args
        key = literal_key(cst.Subscript(x, [cst.SubscriptElement(cst.Index(node))]))
        if type(node) is cst.SimpleString:
            self.spelled[key] = node  # (the user's quotes, for the display)
        tree = self.trees[container]
        if type(key) is int and tree.kind != "dict" and -len(tree.keys) <= key < 0:
            key += len(tree.keys)  # (layers[-1])
        if not (type(x) is cst.Name and x.value == container and key is not None and
                type(item) is cst.Name):
            return None
        return name, key, item.value

    def key(self, key) -> cst.BaseExpression:
        """``key`` as written in the function where it was, else double-quoted."""
        if type(key) is not str:
            return cst.Integer(str(key))
        return self.spelled.get(key) or cst.SimpleString(json.dumps(key))

    def zeros(self, container: str, key) -> cst.Call:
        """``rt.tree_zeros(container[key])``: the item's zeros as ``tree_put`` makes them."""
        item = cst.Subscript(cst.Name(container), [cst.SubscriptElement(cst.Index(
            self.key(key)))])
        return cst.Call(cst.Attribute(cst.Name(self.rt), cst.Name("tree_zeros")),
                        [cst.Arg(item)])

    @staticmethod
    def display(tree, items: list, spell) -> cst.BaseExpression:
        if tree.kind == "dict":
            return cst.Dict([cst.DictElement(spell(k), v) for k, v in zip(tree.keys, items)])
        elements = [cst.Element(v) for v in items]
        if tree.kind == "list":
            return cst.List(elements)
        if len(elements) == 1:  # (x,)
            return cst.Tuple([elements[0].with_changes(comma=cst.Comma())])
        return cst.Tuple(elements)
