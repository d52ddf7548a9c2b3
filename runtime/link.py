"""Links from generated code to the derivative of another user function it calls.

``helper_vjp = rt.derivative_of(helper, wrt=("x",))`` stands at the top of a
generated module; the derivative is compiled on its first call (which also makes
recursion work: a function's derivative may call itself) and once only.
"""

from __future__ import annotations

__all__ = ["derivative_of"]


class derivative_of:
    """``derivative_of(f, wrt)(*args) -> (value, pullback)``, compiled on first use."""

    __slots__ = ("fn", "wrt", "_function")

    def __init__(self, fn, wrt: tuple[str, ...]):
        self.fn, self.wrt, self._function = fn, tuple(wrt), None

    def __call__(self, *args):
        function = self._function
        if function is None:
            from srcdiff.api import derivative  # the compiler, imported only when needed

            function = self._function = derivative(self.fn, self.wrt).function
        return function(*args)

    def __repr__(self) -> str:
        return f"derivative_of({self.fn.__qualname__}, wrt={self.wrt})"
