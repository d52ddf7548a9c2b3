"""Rule bodies as templates: the one place that turns a runtime rule into source.

A rule whose body is a single ``return`` is inlined: its parameters are holes,
filled by one checked :func:`fill` that refuses a missing or unknown hole, and
the other names it uses (``np``, ``unbroadcast``) are re-spelled for the
generated module: ``numpy`` as the user's own alias for it when there is one,
runtime helpers as ``rt.<name>``.
"""

from __future__ import annotations

import inspect
import textwrap
import types
from dataclasses import dataclass
from functools import lru_cache

import libcst as cst
import numpy as np

import srcdiff.runtime as runtime
from srcdiff.runtime import Rule

from .names import is_node_type, node_fields

__all__ = ["Template", "template_for", "fill", "literal"]


@dataclass(frozen=True)
class Template:
    params: tuple[str, ...]
    results: tuple[cst.BaseExpression | None, ...]  # one per operand; None: zero adjoint
    globals_used: tuple[str, ...]


def literal(value) -> cst.BaseExpression:
    """A Python constant (a parameter's default) as an expression."""
    return cst.parse_expression(repr(value))


# srcdiff's own rule modules, whose one-line rules are inlined
_INLINED_MODULES = tuple(m.__name__ for m in (runtime.rules, runtime.creation, runtime.elementwise,
                                              runtime.reductions, runtime.scalar_math,
                                              runtime.shaping))


@lru_cache(maxsize=None)
def template_for(rule: Rule) -> Template | None:
    """The rule's body as a template, or None when it is more than one ``return``.

    Only srcdiff's own rules are inlined: a user's rule is called by its name, so the
    generated source shows where it is used.
    """
    if rule.raw.__module__ not in _INLINED_MODULES or rule.variadic:
        return None
    try:
        source = textwrap.dedent(inspect.getsource(rule.raw))
    except (OSError, TypeError):
        return None
    funcdef = cst.parse_module(source).body[0]
    params = tuple(inspect.signature(rule.raw).parameters)
    if type(funcdef) is not cst.FunctionDef or funcdef.name.value != rule.raw.__name__ or \
            tuple(p.name.value for p in funcdef.params.params) != params[:len(funcdef.params.params)]:
        return None  # the file changed since it was imported: these lines are another function's
    body = list(funcdef.body.body)
    if len(body) != 1 or type(body[0]) is not cst.SimpleStatementLine:
        return None
    ret = body[0].body[0]
    if type(ret) is not cst.Return or ret.value is None:
        return None
    value = ret.value
    if len(rule.operands) == 1:
        results = (value,)
    elif type(value) is cst.Tuple and len(value.elements) == len(rule.operands):
        results = tuple(e.value for e in value.elements)
    else:
        return None
    results = tuple(None if type(r) is cst.Name and r.value == "None" else _bare(r)
                    for r in results)
    if any(r is not None and len(_code(r)) > MAX_INLINE for r in results):
        return None  # a long formula reads better as a named call: rt.mean_adjoint(...)
    free = set()
    for r in results:
        if r is not None:
            free |= _free_names(r) - set(params)
    rule_globals = rule.raw.__globals__
    for name in free:
        obj = rule_globals.get(name)
        if not (obj is np or getattr(runtime, name, None) is obj):
            return None  # it uses something the generated module cannot name
    return Template(params, results, tuple(sorted(free)))


MAX_INLINE = 60  # longest rule expression (in characters) that is inlined


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _bare(node):
    """The expression on one line, without outer parentheses (rules may wrap long lines)."""
    code = " ".join(_code(node).split())
    node = cst.parse_expression(code)
    return node.with_changes(lpar=[], rpar=[]) if getattr(node, "lpar", None) else node


def _free_names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()

    class Heads(cst.CSTVisitor):
        def visit_Attribute(self, n: cst.Attribute) -> bool:
            n.value.visit(self)
            return False

        def visit_Arg(self, n: cst.Arg) -> bool:
            n.value.visit(self)
            return False

        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

    node.visit(Heads())
    found -= {"None", "True", "False"}
    return found


def fill(template: Template, index: int, holes: dict[str, cst.BaseExpression],
         spelling: dict[str, cst.BaseExpression]) -> cst.BaseExpression | None:
    """Operand ``index``'s adjoint expression with every hole filled; None for a zero adjoint.

    ``holes`` must name every parameter of the rule, no more and no fewer; ``spelling``
    says how to write each global the template uses (``np`` → ``numpy``, ``rt.unbroadcast``).
    """
    if set(holes) != set(template.params):
        missing = set(template.params) - set(holes)
        extra = set(holes) - set(template.params)
        raise ValueError(f"template holes do not match: missing {missing}, unknown {extra}")
    expr = template.results[index]
    if expr is None:
        return None
    replacements = {**{g: spelling[g] for g in template.globals_used}, **holes}
    return _substitute(expr, replacements)


def _substitute(node: cst.CSTNode, replacements: dict[str, cst.BaseExpression]) -> cst.CSTNode:
    """A new copy of ``node`` whose names are ``replacements[name]`` where there is one (not
    attribute names or keywords, which stay the template's own); whitespace, commas and
    parentheses are the template's. A plain walk: libcst's transformer costs several times
    as much (~1.5 ms for the rules of a small MLP)."""
    kind = type(node)
    if kind is cst.Name:
        found = replacements.get(node.value)
        return node.with_changes() if found is None else found
    changes = {}
    for field in node_fields(kind):
        if kind is cst.Attribute and field == "attr" or kind is cst.Arg and field == "keyword":
            continue
        value = getattr(node, field)
        if is_node_type(type(value)):
            changes[field] = _substitute(value, replacements)
        elif type(value) in (tuple, list):
            changes[field] = tuple(_substitute(v, replacements) if is_node_type(type(v)) else v
                                   for v in value)
    return node.with_changes(**changes)


def runtime_spelling(name: str, obj, rt: str, user_globals: dict, avoid) -> cst.BaseExpression:
    """How generated code names ``obj`` (a rule's global): the user's alias, else ``rt.<name>``."""
    if isinstance(obj, types.ModuleType):
        aliases = [alias for alias, value in user_globals.items()
                   if value is obj and alias not in avoid and not alias.startswith("_")]
        if aliases:
            return cst.Name(min(aliases, key=len))
    return cst.Attribute(cst.Name(rt), cst.Name(name))


__all__.append("runtime_spelling")
