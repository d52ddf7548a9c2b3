"""Forward mode and second order: ``jvp``, ``make_jvp``, ``jacfwd``, ``jacrev``, ``hvp``,
``hessian``, with JAX's argument conventions.

>>> import numpy as np, srcdiff
>>> def f(x): return np.sin(x) * x
>>> out, tangent = srcdiff.jvp(f, (np.array([0.5, 1.0]),), (np.ones(2),))  # doctest: +SKIP

``jvp`` runs the source ``srcdiff.transforms.tangent`` writes: the function with, after each
statement, the statement for its tangent. ``hvp`` differentiates that source once more, in
reverse mode: the gradient of ``x ↦ ⟨∇f(x), v⟩`` computed as the gradient of the directional
derivative ``x ↦ jvp(f, x, v)``, which is the Hessian times ``v`` (reverse over forward; the
same product as forward over reverse, for the cost of about one gradient of the tangent code).
"""

from __future__ import annotations

import inspect
import weakref

import numpy as np
import optree

from srcdiff.runtime import trees

from srcdiff.runtime.tangents import zero_tangent

from .api import (_Caller, _has_float_leaf, _is_complex, _is_float, _resolve_wrt, compiled_once,
                  derivative, vjp)
from .errors import GradientTypeError, NotDifferentiableError, SrcdiffError
from .pipeline import Derivative, compile_tangent, parameters

__all__ = ["jvp", "make_jvp", "jacfwd", "jacrev", "hvp", "make_hvp", "hessian",
           "tangent_derivative"]



def tangent_derivative(fn, wrt: tuple[str, ...], containers: tuple[str, ...] = (),
                       tangent_first: bool = False) -> Derivative:
    """The compiled forward-mode derivative of ``fn``: ``function(*args, *tangents)``, one
    tangent per ``wrt`` parameter; compiled once per ``wrt`` and containers."""
    key = ("tangent", fn.__code__, tuple(wrt), tuple(containers), tangent_first)
    return compiled_once(fn, key, lambda: compile_tangent(
        fn, tuple(wrt), tuple(containers), tangent_first=tangent_first), " in forward mode")


def _is_complex_tree(x) -> bool:
    return any(_is_complex(leaf) for leaf in optree.tree_leaves(x, namespace=trees.NAMESPACE))


def _differentiable(x) -> bool:
    return _is_float(x) or trees.is_container(x) and _has_float_leaf(x)


class JvpFunction:
    """``make_jvp(f, wrt)``: called as ``f`` is, plus ``tangents=`` (one per ``wrt``
    parameter, in order, each of its parameter's structure), it returns ``(value, tangent)``.
    ``.source`` is the generated forward-mode code."""

    def __init__(self, fn, wrt=0):
        if not callable(fn):
            raise SrcdiffError(f"srcdiff.make_jvp expects a function, got {fn!r}")
        self._fn = fn
        self._wrt, self._single = _resolve_wrt(fn, wrt)
        self._caller = _Caller(fn)
        self._index = tuple(parameters(fn).index(n) for n in self._wrt)

    @property
    def wrt(self) -> tuple[str, ...]:
        return self._wrt

    @property
    def source(self) -> str:
        return tangent_derivative(self._fn, self._wrt).source

    def __call__(self, *args, tangents, **kwargs):
        args = self._caller.bind(args, kwargs)
        tangents = (tangents,) if self._single else tuple(tangents)
        if len(tangents) != len(self._wrt):
            raise SrcdiffError(f"make_jvp of {self._fn.__qualname__} takes one tangent per wrt "
                               f"parameter {self._wrt}, got {len(tangents)}")
        for name, i, t in zip(self._wrt, self._index, tangents):
            _check_tangent(self._fn, name, args[i], t)
        containers = tuple(n for n, i in zip(self._wrt, self._index)
                           if trees.is_container(args[i]))
        function = tangent_derivative(self._fn, self._wrt, containers).function
        value, tangent = function(*args, *tangents)
        return value, _owned_tangent(tangent, (args, tangents))

    def __repr__(self) -> str:
        return f"<srcdiff.make_jvp of {self._fn.__qualname__} wrt {self._wrt}>"


def _check_tangent(fn, name, primal, t) -> None:
    """A tangent of the argument's structure and shapes, real like it (else a clear error)."""
    if type(primal) is np.ndarray and type(t) is np.ndarray and primal.shape == t.shape and \
            primal.dtype.kind == "f" and t.dtype.kind == "f":
        return  # the common case, without a walk of the structure (jacfwd calls it per entry)
    trees.register_dataclasses(primal)  # optree walks a dataclass's fields once it knows it
    if _is_complex_tree(primal) or _is_complex_tree(t):
        raise GradientTypeError(
            f"srcdiff's forward mode takes real values; {fn.__qualname__}'s argument {name!r} "
            "or its tangent is complex. Use reverse mode (srcdiff.vjp) for complex values.")
    shapes = optree.tree_map(np.shape, primal, namespace=trees.NAMESPACE)
    try:
        given = optree.tree_map(np.shape, t, namespace=trees.NAMESPACE)
    except Exception:  # noqa: BLE001 - reported below
        given = None
    if given != shapes:
        raise SrcdiffError(
            f"the tangent of {fn.__qualname__}'s argument {name!r} must have the argument's "
            f"structure and shapes {shapes}, got {given}")


def make_jvp(fn, wrt=0) -> JvpFunction:
    """Forward mode of ``fn`` with respect to ``wrt`` (positions or names): a callable
    ``(*args, tangents=...) -> (value, tangent)`` with the generated code as ``.source``."""
    return JvpFunction(fn, wrt)


def _owned_tangent(tangent, given):
    """``tangent`` with each array that is one of the ``given`` arguments' or tangents' own
    (the tangent of ``x * 1.0`` is the caller's tangent itself) copied: the caller owns the
    result, to change in place without changing what it passed."""
    inputs = {id(leaf) for leaf in _leaves(given)[0] if hasattr(leaf, "copy")}
    if not inputs:
        return tangent
    return trees.tree_map(lambda t: t.copy() if id(t) in inputs and hasattr(t, "copy") and
                          not isinstance(t, (float, int, complex, np.generic)) else t, tangent)


def jvp(fn, primals, tangents):
    """``(fn(*primals), J·tangents)``: the value and its directional derivative along
    ``tangents`` (one per primal, of the primal's structure; JAX's ``jax.jvp``).

    A primal that is not floating point (an int, a flag) takes no tangent: pass ``None`` (or
    zeros, which are ignored)."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise SrcdiffError(f"jvp takes one tangent per primal: {len(primals)} primals, "
                           f"{len(tangents)} tangents")
    params = parameters(fn)
    for i, (p, t) in enumerate(zip(primals, tangents)):
        if t is not None and (_is_complex_tree(p) or _is_complex_tree(t)):
            _check_tangent(fn, params[i] if i < len(params) else str(i), p, t)  # refuses
    wrt = tuple(i for i, (p, t) in enumerate(zip(primals, tangents))
                if t is not None and _differentiable(p))
    if not wrt:
        out = fn(*primals)
        return out, zero_tangent(out)
    if len(primals) > len(params):
        raise SrcdiffError(f"jvp: {fn.__qualname__} takes {len(params)} arguments, "
                           f"got {len(primals)}")
    return JvpFunction(fn, wrt)(*primals, tangents=tuple(tangents[i] for i in wrt))


# ----- Jacobians -----


def _leaves(x):
    return optree.tree_flatten(x, namespace=trees.NAMESPACE)


def _basis(x):
    """The unit tangents of ``x`` (an array, a number or a pytree of them), one per entry."""
    leaves, spec = _leaves(x)
    sizes = [int(np.size(leaf)) for leaf in leaves]
    for k, leaf in enumerate(leaves):
        for j in range(sizes[k]):
            unit = [np.zeros(np.shape(v), dtype=np.result_type(v, 1.0)) for v in leaves]
            unit[k].reshape(-1)[j] = 1.0
            unit = [u if np.ndim(v) or hasattr(v, "shape") else float(u)
                    for u, v in zip(unit, leaves)]
            yield optree.tree_unflatten(spec, unit)


def _assemble(columns, x, out):
    """Stack per-entry results into a Jacobian: ``columns`` holds one ``out``-structured value
    per entry of ``x``; the result has ``out``'s structure, each leaf of shape
    ``out_leaf.shape + x_leaf.shape`` in ``x``'s structure."""
    x_leaves, x_spec = _leaves(x)
    out_leaves, out_spec = _leaves(out)
    sizes = [int(np.size(v)) for v in x_leaves]
    starts = np.cumsum([0, *sizes])
    per_column = [_leaves(c)[0] for c in columns]
    blocks = []
    for m, o in enumerate(out_leaves):
        parts = []
        for k, v in enumerate(x_leaves):
            stacked = np.stack([np.asarray(per_column[c][m], dtype=float).reshape(np.shape(o))
                                for c in range(starts[k], starts[k + 1])], axis=-1) \
                if sizes[k] else np.zeros(np.shape(o) + (0,))
            parts.append(stacked.reshape(np.shape(o) + np.shape(v)))
        blocks.append(optree.tree_unflatten(x_spec, parts))
    return optree.tree_unflatten(out_spec, blocks)


def _wrt_positions(fn, wrt) -> tuple[tuple[int, ...], bool]:
    names, single = _resolve_wrt(fn, wrt)
    params = parameters(fn)
    return tuple(params.index(n) for n in names), single


def jacfwd(fn, wrt=0):
    """The Jacobian of ``fn`` with respect to ``wrt``, by forward mode (one ``jvp`` per entry
    of the argument): ``jacfwd(f)(*args)`` has shape ``out.shape + x.shape`` (pytrees: the
    output's structure, each leaf holding the argument's structure)."""
    positions, single = _wrt_positions(fn, wrt)
    jvp_function, caller = JvpFunction(fn, positions), _Caller(fn)

    def jacobian(*args):
        args = caller.bind(args, {})
        found = []
        tangents_zero = [zero_tangent(args[q]) for q in positions]
        for p in positions:
            columns, out = [], None
            for unit in _basis(args[p]):
                ts = list(tangents_zero)
                ts[positions.index(p)] = unit
                out, column = jvp_function(*args, tangents=tuple(ts))
                columns.append(column)
            if out is None:
                out = fn(*args)
            found.append(_assemble(columns, args[p], out))
        return found[0] if single else tuple(found)

    return jacobian


def jacrev(fn, wrt=0):
    """The Jacobian of ``fn`` with respect to ``wrt``, by reverse mode (one pullback per entry
    of the output); the same shapes as :func:`jacfwd`."""
    positions, single = _wrt_positions(fn, wrt)
    caller = _Caller(fn)

    def jacobian(*args):
        args = caller.bind(args, {})
        out, pullback = vjp(fn, *args)
        rows = [pullback(unit) for unit in _basis(out)]
        found = []
        for p in positions:
            per_row = [row[p] if row[p] is not None else zero_tangent(args[p]) for row in rows]
            front = _assemble(per_row, out, args[p])  # x-structure of out.shape
            found.append(_transpose_blocks(front, out, args[p]))
        return found[0] if single else tuple(found)

    return jacobian


def _transpose_blocks(front, out, x):
    """``front`` (``x``'s structure, leaves ``x.shape + out.shape``) as ``out``'s structure with
    leaves ``out.shape + x.shape``."""
    x_leaves, x_spec = _leaves(x)
    out_leaves, out_spec = _leaves(out)
    front_leaves = _leaves(front)[0]  # x-major: for each x leaf, the out leaves
    blocks = []
    for m, o in enumerate(out_leaves):
        parts = []
        for k, v in enumerate(x_leaves):
            block = np.asarray(front_leaves[k * len(out_leaves) + m])
            nx = np.ndim(v)
            parts.append(np.moveaxis(block, tuple(range(nx)),
                                     tuple(range(block.ndim - nx, block.ndim))))
        blocks.append(optree.tree_unflatten(x_spec, parts))
    return optree.tree_unflatten(out_spec, blocks)


# ----- second order -----


def _gradient_parts(gradient, args, keywords, wrt):
    """For a call ``gradient(*args, **keywords)`` of ``srcdiff.grad(f)``: its spec, ``f``'s
    arguments bound in parameter order, and the names of the call's positional arguments at
    ``wrt``."""
    spec = gradient.spec
    params = parameters(spec.fn)
    if len(args) > len(params):
        raise SrcdiffError(f"{spec.fn.__qualname__} takes {len(params)} arguments, got "
                           f"{len(args)}")
    if not spec.gradient_only:
        raise SrcdiffError(
            f"srcdiff differentiates a call of srcdiff.grad({spec.fn.__qualname__}) without "
            "has_aux or the value; call srcdiff.grad(f) itself inside the function")
    return spec, _Caller(spec.fn).bind(args, keywords), tuple(params[i] for i in wrt)


def _containers(names, fn, bound):
    params = parameters(fn)
    return tuple(n for n in names if trees.is_container(bound[params.index(n)]))


def _second_order(fn, compile_it):
    """``compile_it()``: the second derivative of ``fn`` (a function called through a
    ``srcdiff.grad`` object). Where ``fn`` itself calls a ``srcdiff.grad`` function, that is a
    third derivative, refused at ``fn``'s own ``def`` line rather than in generated code."""
    try:
        return compile_it()
    except NotDifferentiableError as exc:
        if "a third derivative" not in str(exc):
            raise
        lines, first = inspect.getsourcelines(fn)
        raise NotDifferentiableError(
            f"srcdiff cannot take a third derivative: {fn.__qualname__} calls a srcdiff.grad "
            "function, and a function that calls srcdiff.grad of "
            f"{fn.__qualname__} is differentiated in turn (grad of grad of grad). srcdiff "
            "composes two derivatives: take srcdiff.hvp or srcdiff.hessian of the innermost "
            "function instead of a gradient of a gradient.", fn.__code__.co_filename, first,
            0, lines[0].rstrip("\n")) from None


def gradient_pullback(gradient, args, keywords, wrt):
    """The pullback of a call of ``gradient = srcdiff.grad(f)`` (wrt ``w``): for a cotangent
    ``u`` of its result, the gradient in the call's arguments at ``wrt`` of
    ``⟨∇_w f, u⟩`` — a Hessian-vector product (and mixed second derivatives for the other
    arguments), computed by reverse mode over forward mode's tangent code of ``f``."""
    spec, bound, names = _gradient_parts(gradient, args, keywords, wrt)
    fn = spec.fn

    def pullback(u):
        us = (u,) if spec.single else tuple(u)
        us = tuple(zero_tangent(bound[parameters(fn).index(w)]) if t is None else t
                   for w, t in zip(spec.wrt, us))
        tangent_fn = tangent_derivative(fn, spec.wrt, _containers(spec.wrt, fn, bound),
                                        tangent_first=True).function
        second = _second_order(fn, lambda: derivative(tangent_fn, names, has_aux=True,
                                                      containers=_containers(names, fn, bound)))
        _, inner = second.function(*bound, *us)
        return inner(1.0)

    return pullback


def gradient_tangent(gradient, args, keywords, wrt, tangents):
    """The value and tangent of a call of ``gradient = srcdiff.grad(f)`` (wrt ``w``) whose
    arguments at ``wrt`` move along ``tangents``: the gradient in ``w`` of the directional
    derivative of ``f`` along them (the Hessian, symmetric, times the tangents)."""
    spec, bound, names = _gradient_parts(gradient, args, keywords, wrt)
    fn = spec.fn
    value = gradient(*args, **keywords)
    tangent_fn = tangent_derivative(fn, names, _containers(names, fn, bound),
                                    tangent_first=True).function
    second = _second_order(fn, lambda: derivative(tangent_fn, spec.wrt, has_aux=True,
                                                  containers=_containers(spec.wrt, fn, bound)))
    _, inner = second.function(*bound, *tangents)
    tangent = inner(1.0)
    if not spec.single and len(spec.wrt) == 1:
        tangent = (tangent,)
    return value, tangent


class HvpFunction:
    """``make_hvp(f, wrt)``: called as ``f`` is, plus ``v=`` (of the ``wrt`` argument's
    structure), it returns the Hessian of the scalar ``f`` times ``v``. ``.source`` is the
    generated code: reverse mode over forward mode's tangent code."""

    def __init__(self, fn, wrt=0):
        positions, single = _wrt_positions(fn, wrt)
        if not single and len(positions) != 1:
            raise SrcdiffError("make_hvp takes one wrt argument")
        self._fn, self._position = fn, positions[0]
        self._name = parameters(fn)[self._position]
        self._caller = _Caller(fn)

    @property
    def source(self) -> str:
        tangent_fn = tangent_derivative(self._fn, (self._name,), tangent_first=True).function
        return derivative(tangent_fn, (self._name,), has_aux=True).source

    def __call__(self, *args, v, **kwargs):
        args = self._caller.bind(args, kwargs)
        _check_tangent(self._fn, self._name, args[self._position], v)
        return _hvp_at(self._fn, self._position, args, v)

    def __repr__(self) -> str:
        return f"<srcdiff.make_hvp of {self._fn.__qualname__} wrt {self._name!r}>"


def make_hvp(fn, wrt=0) -> HvpFunction:
    """Hessian-vector products of the scalar ``fn`` in its argument ``wrt``:
    ``make_hvp(f)(x, *args, v=v)``, with the generated code as ``.source``."""
    return HvpFunction(fn, wrt)


def hvp(fn, x, v, *args):
    """The Hessian of the scalar ``fn(x, *args)`` at ``x`` times ``v`` (``x``, ``v`` arrays or
    pytrees of the same structure), in ``x``'s structure."""
    made = _HVPS.get(fn)  # one per function: its binding of arguments is worked out once
    if made is None:
        made = _HVPS[fn] = HvpFunction(fn, 0)
    return made(x, *args, v=v)


_HVPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hessian(fn, wrt=0):
    """The Hessian of the scalar ``fn`` with respect to one argument ``wrt``: shape
    ``x.shape + x.shape`` for an array ``x`` (one :func:`hvp` per entry of ``x``)."""
    positions, single = _wrt_positions(fn, wrt)
    if not single and len(positions) != 1:
        raise SrcdiffError("hessian takes one wrt argument")
    p = positions[0]

    def hess(*args):
        args = _Caller(fn).bind(args, {})
        x = args[p]

        def along(unit):
            return _hvp_at(fn, p, args, unit)

        columns = [along(unit) for unit in _basis(x)]
        return _assemble(columns, x, x)

    return hess


def _hvp_at(fn, p, args, v):
    """The gradient, in argument ``p``, of the directional derivative along ``v``: reverse mode
    over the tangent code, which returns ``(tangent, value)`` and is differentiated in its
    tangent alone (the value rides along as an auxiliary result)."""
    name = parameters(fn)[p]
    containers = (name,) if trees.is_container(args[p]) else ()
    tangent_fn = tangent_derivative(fn, (name,), containers, tangent_first=True).function
    gradient = derivative(tangent_fn, (name,), has_aux=True, containers=containers)
    (directional, out), pullback = gradient.function(*args, v)
    if np.ndim(out) != 0:
        raise GradientTypeError(f"a Hessian needs {fn.__qualname__} to return a scalar, got "
                                f"shape {np.shape(out)}")
    return pullback(1.0)
