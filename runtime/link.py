"""Links from generated code to the derivative of another user function it calls.

``helper_vjp = rt.derivative_of(helper, wrt=("x",))`` stands at the top of a
generated module; the derivative is compiled on its first call (which also makes
recursion work: a function's derivative may call itself) and once only.
"""

from __future__ import annotations

from .trees import is_container

__all__ = ["derivative_of"]


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
        function = self._functions.get(containers)
        if function is None:
            from srcdiff.api import derivative  # the compiler, imported only when needed

            function = derivative(self.fn, self.wrt, False, containers).function
            self._functions[containers] = function
        return function(*args)

    def __repr__(self) -> str:
        return f"derivative_of({self.fn.__qualname__}, wrt={self.wrt})"
