"""Which names may depend on a differentiated argument, read off the user's source before any
lowering: a cheap, conservative stand-in for activity analysis where a message must be given
early (validate refuses a set comprehension of such values at its line).

    def f(x, ps):                           (wrt: x and ps)
        h = x * 2.0                         h varies with x
        dims = {np.ndim(p) for p in ps}     p varies, np.ndim(p) does not carry it (a constant)
        return np.sum(h) * len(dims)

It may name more than activity analysis does (a value read only by ``len``), never fewer.
"""

from __future__ import annotations

import libcst as cst

from srcdiff.runtime import NONDIFFERENTIABLE
from srcdiff.runtime.nondiff import NONDIFFERENTIABLE_ATTRIBUTES

from ..context import Context
from ..names import children, nodes
from .calls import resolve

__all__ = ["varied_names", "bound_names", "carries"]


def varied_names(funcdef: cst.FunctionDef, ctx: Context) -> frozenset[str]:
    """The names that may depend on a ``wrt`` argument: every assignment, loop and
    comprehension target whose value :func:`carries` one, in any order, until nothing
    changes."""
    bindings = []
    for n in nodes(funcdef.body):
        if type(n) is cst.Assign:
            bindings += [(t.target, n.value) for t in n.targets]
        elif type(n) in (cst.AugAssign, cst.AnnAssign) and n.value is not None:
            bindings.append((n.target, n.value))
        elif type(n) in (cst.For, cst.CompFor):
            bindings.append((n.target, n.iter))
    local = bound_names(funcdef, ctx)
    varied, grown = set(ctx.wrt), True
    while grown:
        grown = False
        for target, value in bindings:
            names = {t.value for t in nodes(target) if type(t) is cst.Name} - varied
            if names and carries(value, varied, ctx, local):
                varied |= names
                grown = True
    return frozenset(varied)


def bound_names(funcdef: cst.FunctionDef, ctx: Context) -> frozenset[str]:
    """The parameters and every name the function assigns or loops over (its local names)."""
    targets = [t.target for n in nodes(funcdef.body) if type(n) is cst.Assign for t in n.targets]
    targets += [n.target for n in nodes(funcdef.body)
                if type(n) in (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor)]
    return frozenset(ctx.params) | {t.value for target in targets for t in nodes(target)
                                    if type(t) is cst.Name}


def carries(expr, varied, ctx: Context, local) -> bool:
    """Whether ``expr`` may hold a value of a ``varied`` name: not through the functions and
    attributes srcdiff proves constant (``len``, ``np.ndim``, ``x.shape``) or a comparison."""
    kind = type(expr)
    if kind is cst.Name:
        return expr.value in varied
    if kind is cst.Comparison:
        return False
    if kind in (cst.ListComp, cst.SetComp, cst.GeneratorExp):  # its items; its targets are
        return carries(expr.elt, varied, ctx, local)             # bindings of their own
    if kind is cst.DictComp:
        return carries(expr.key, varied, ctx, local) or carries(expr.value, varied, ctx, local)
    if kind is cst.Attribute:
        return expr.attr.value not in NONDIFFERENTIABLE_ATTRIBUTES and \
            carries(expr.value, varied, ctx, local)
    if kind is cst.Call:
        try:
            constant = resolve(expr.func, ctx, local) in NONDIFFERENTIABLE
        except TypeError:  # an object that cannot be hashed
            constant = False
        if constant:
            return False
    return any(carries(child, varied, ctx, local) for child in children(expr))
