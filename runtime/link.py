"""Links from generated code to the derivative of another user function it calls.

``helper_vjp = rt.derivative_of(helper, wrt=("x",))`` stands at the top of a
generated module; the derivative is compiled on its first call (which also makes
recursion work: a function's derivative may call itself) and once only.

A function known only when the code runs — an argument (``f(y, theta)``), a method of a
user object (``model.nll(X)``), one read out of a dict — is called through
``rt.call_vjp(f, y, theta, wrt=(1,))``, which finds the derivative of whatever function
arrives, by identity, compiled once per function and ``wrt``.
"""

from __future__ import annotations

import inspect
import threading
import types

from .helpers import zeros_like
from .registry import rule_for
from .trees import is_container, tree_zeros

__all__ = ["derivative_of", "tangent_of", "call_vjp", "call_jvp", "default_of", "is_gradient"]


class derivative_of:
    """``derivative_of(f, wrt)(*args) -> (value, pullback)``, compiled on first use (once per
    set of ``wrt`` arguments that arrive as containers, like ``grad`` itself)."""

    __slots__ = ("fn", "wrt", "_functions", "_index")

    def __init__(self, fn, wrt: tuple[str, ...]):
        self.fn, self.wrt, self._functions, self._index = fn, tuple(wrt), {}, None

    def __call__(self, *args):
        if self._index is None:
            names = self.fn.__code__.co_varnames[:self.fn.__code__.co_argcount +
                                                 self.fn.__code__.co_kwonlyargcount]
            self._index = tuple(names.index(n) for n in self.wrt)
        containers = tuple(n for n, i in zip(self.wrt, self._index) if is_container(args[i]))
        return self.function(containers)(*args)

    def function(self, containers: tuple[str, ...] = ()):
        """The compiled function (for the ``wrt`` parameters passed as ``containers``)."""
        function = self._functions.get(containers)
        if function is None:
            function = self._functions[containers] = self._compile(containers)
        return function

    def _compile(self, containers):
        from srcdiff.api import derivative  # the compiler, imported only when needed

        return derivative(self.fn, self.wrt, False, containers).function

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fn.__qualname__}, wrt={self.wrt})"


class tangent_of(derivative_of):
    """``tangent_of(f, wrt)(*args, *tangents) -> (value, tangent)``: forward mode's link to
    another user function, compiled on first use like :class:`derivative_of`."""

    __slots__ = ()

    def _compile(self, containers):
        from srcdiff.forward import tangent_derivative  # the compiler, only when needed

        return tangent_derivative(self.fn, self.wrt, containers).function


def call_vjp(fn, *args, wrt: tuple[int, ...] = (), wrt_self=None, **keywords):
    """``fn(*args, **keywords)`` and its pullback, which returns the adjoints of the
    positional arguments at ``wrt`` (and first, with ``wrt_self``, of that object, whose
    method ``fn`` is), a bare adjoint where there is one. Keywords are passed along, not
    differentiated.

    >>> import numpy as np
    >>> def scale(x, s): return x * s
    >>> value, pullback = call_vjp(scale, np.ones(2), 3.0, wrt=(0,))  # doctest: +SKIP
    """
    owner, wrt_self = wrt_self, wrt_self is not None and wrt_self is not False
    if is_gradient(fn):  # a srcdiff.grad function: its adjoint is a Hessian-vector product
        from srcdiff.forward import gradient_pullback  # the compiler, only when needed

        return fn(*args, **keywords), gradient_pullback(fn, args, keywords, wrt)
    rule = rule_for(fn) if not wrt_self and not keywords else None
    if rule is not None and len(args) >= len(rule.leading) and \
            rule.takes(len(args) - len(rule.leading)):  # np.sin as a value: its rule
        return _by_rule(rule, fn, args, wrt)
    if wrt_self and not (isinstance(fn, types.MethodType) and not isinstance(fn.__self__, type)):
        return _not_through_self(fn, owner, args, wrt, keywords)  # self.act(x), a @staticmethod
    function, positional = fn, args
    if isinstance(fn, types.MethodType):  # model.nll: the function, the object first
        function, positional = fn.__func__, (fn.__self__, *args)
    if not isinstance(function, types.FunctionType) or wrt_self and function is fn:
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(
            f"srcdiff cannot differentiate a call of {fn!r}: it differentiates Python functions "
            "and the methods of your own objects when they arrive as values; give it a rule "
            "with @srcdiff.adjoint, or wrap its inputs in srcdiff.stop_gradient(...).")
    code = function.__code__
    if code.co_flags & inspect.CO_VARARGS:  # def total(*xs): called as total((x, y))
        return _packed_call(function, positional, len(positional) - len(args), wrt, wrt_self,
                            keywords)
    params = code.co_varnames[:code.co_argcount]
    offset = len(positional) - len(args)
    names = tuple(params[i + offset] for i in wrt)
    if wrt_self:
        names = (params[0], *names)
    return _linked(derivative_of, function, names, _bound(function, positional, keywords))()


def _bound(function, positional, keywords) -> tuple:
    """The arguments of a call in parameter order (keywords and defaults bound by name)."""
    params = function.__code__.co_varnames[:function.__code__.co_argcount]
    if keywords or len(positional) < len(params):
        bound = inspect.signature(function).bind(*positional, **keywords)
        bound.apply_defaults()
        return tuple(bound.arguments[p] for p in params)
    return positional


def _linked(kind, function, names, positional):
    """A call of the link of ``kind`` (derivative_of, tangent_of) for ``function`` and ``names``,
    made once per pair and kept, with ``positional`` (further arguments may follow)."""
    key = (kind, function, names)
    link = _DYNAMIC.get(key)
    if link is None:
        with _LOCK:
            link = _DYNAMIC.setdefault(key, kind(function, names))
    return lambda *more: link(*positional, *more)


def call_jvp(fn, *args, wrt: tuple[int, ...] = (), **keywords):
    """Forward mode's ``rt.call_vjp``: ``fn(*primals, **keywords)`` and its tangent, where
    ``args`` are the positional arguments followed by one tangent for each position in
    ``wrt``. ``fn`` is a Python function (its jvp, compiled once per function and ``wrt``) or
    what ``srcdiff.grad`` returned (a Hessian-vector product)."""
    primals, tangents = args[:len(args) - len(wrt)], args[len(args) - len(wrt):]
    if is_gradient(fn):
        from srcdiff.forward import gradient_tangent  # the compiler, only when needed

        return gradient_tangent(fn, primals, keywords, wrt, tangents)
    if not isinstance(fn, types.FunctionType) or fn.__code__.co_flags & (
            inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        from srcdiff.errors import SrcdiffError

        raise SrcdiffError(
            f"srcdiff's forward mode cannot differentiate a call of {fn!r}: it differentiates "
            "Python functions with named parameters (and srcdiff.grad functions) when they "
            "arrive as values; use reverse mode (srcdiff.vjp) for this call.")
    names = tuple(fn.__code__.co_varnames[i] for i in wrt)
    return _linked(tangent_of, fn, names, _bound(fn, primals, keywords))(*tangents)


def is_gradient(fn) -> bool:
    """What ``srcdiff.grad`` returns (srcdiff/api.py's GradFunction, not imported here)."""
    kind = type(fn)
    return kind.__name__ == "GradFunction" and kind.__module__ == "srcdiff.api"


def _packed_call(function, positional, offset, wrt, wrt_self, keywords):
    """A call of ``def total(a, *xs)``: its twin ``total(a, xs)`` called with the extra
    arguments as one tuple; the adjoint of that tuple gives each extra argument's."""
    from srcdiff.errors import SrcdiffError

    if keywords or function.__code__.co_flags & inspect.CO_VARKEYWORDS:
        raise SrcdiffError(
            f"srcdiff differentiates a call of {function.__qualname__}, which takes *args, with "
            "positional arguments only (no keywords, no **kwargs); pass them by position.")
    from srcdiff.made import packed  # the compiler, imported only when needed

    code = function.__code__
    n = code.co_argcount
    names = (*code.co_varnames[:n], code.co_varnames[n + code.co_kwonlyargcount])  # then *xs
    picked = [i + offset for i in wrt]
    if not picked and not wrt_self:
        return function(*positional), lambda g: None
    wanted = tuple(dict.fromkeys(names[min(i, n)] for i in [*([0] * wrt_self), *picked]))
    twin = packed(function)
    # keyword-only parameters keep their defaults, passed after the tuple, in the order a
    # derivative takes its parameters
    keyword_only = code.co_varnames[n:n + code.co_kwonlyargcount]
    defaults = [(function.__kwdefaults__ or {})[k] for k in keyword_only]
    value, pullback = call_vjp(twin, *positional[:n], tuple(positional[n:]), *defaults,
                               wrt=tuple(names.index(w) for w in wanted))

    def unpacked(g):
        grads = pullback(g)
        grads = dict(zip(wanted, grads if len(wanted) > 1 else (grads,)))
        rest = grads.get(names[n]) or (None,) * (len(positional) - n)
        out = [grads[names[i]] if i < n else rest[i - n] for i in picked]
        out = [zeros_like(positional[i]) if g is None else g for i, g in zip(picked, out)]
        if wrt_self:
            out.insert(0, grads[names[0]])
        return out[0] if len(out) == 1 else tuple(out)

    return value, unpacked


def _not_through_self(fn, owner, args, wrt, keywords):
    """``self.act(x)`` where ``act`` is a ``@staticmethod`` or a ``@classmethod``: the object
    ``owner`` does not reach the function, so its adjoint is zeros of its structure, before
    those of ``wrt``."""
    zeros = None if owner is True else tree_zeros(owner)  # (True: code generated before)
    if not wrt:
        return fn(*args, **keywords), lambda g: zeros
    value, pullback = call_vjp(fn, *args, wrt=wrt, **keywords)

    def with_self(g):
        grads = pullback(g)
        return (zeros, *(grads if len(wrt) > 1 else (grads,)))

    return value, with_self


def _by_rule(rule, fn, args, wrt):
    """``fn(*args)`` and a pullback made of ``fn``'s adjoint rule."""
    value = fn(*args)
    n = len(rule.leading)  # np.einsum's subscripts: an option, given first, with no adjoint
    leading, operands = dict(zip(rule.leading, args[:n])), args[n:]

    def pullback(g):
        grads = rule.call(g, *([value] if rule.takes_ans else []), *operands, **leading)
        grads = (None,) * n + (tuple(grads) if len(operands) > 1 else (grads,))
        picked = [zeros_like(args[i]) if grads[i] is None else grads[i] for i in wrt]
        return picked[0] if len(picked) == 1 else tuple(picked)

    return value, pullback


_DYNAMIC: dict = {}  # (derivative_of or tangent_of, function, wrt names) -> the link
_LOCK = threading.Lock()


def default_of(fn, name: str):
    """The default value of ``fn``'s parameter ``name`` (an array default the generated code
    passes on explicitly: ``helper_vjp(x, rt.default_of(helper, "c"))``)."""
    return inspect.signature(fn).parameters[name].default
