"""srcdiff: reverse-mode automatic differentiation by source transformation.

srcdiff reads a numpy function's source and writes the Python source of its
derivative: a forward pass and a pullback, readable, with no tape.

>>> import numpy as np, srcdiff
>>> def loss(w, b, x, y):
...     return np.mean((x @ w + b - y) ** 2)
>>> dloss = srcdiff.grad(loss, wrt=("w", "b"))
>>> print(dloss.source)  # doctest: +SKIP

The compiler (and libcst) is imported on first use of ``grad``, ``vjp``…, so generated
code, which imports only ``srcdiff.runtime``, runs with numpy and the runtime alone.
"""

import importlib.util as _util
import sys as _sys
from pathlib import Path as _Path

if _util.find_spec(__name__ + ".runtime") is None:  # pragma: no cover - a bare source checkout
    # Installs map the top-level runtime/ to srcdiff.runtime (pyproject's package-dir);
    # a checkout on sys.path gets the same mapping here.
    _spec = _util.spec_from_file_location(
        __name__ + ".runtime", _Path(__file__).parent.parent / "runtime" / "__init__.py")
    _sys.modules[_spec.name] = _module = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)

from . import runtime  # noqa: E402
from .errors import (  # noqa: E402
    GradientTypeError,
    InPlaceError,
    NotDifferentiableError,
    SourceUnavailableError,
    SrcdiffError,
    SrcdiffSyntaxError,
)
from .runtime import no_grad, stop_gradient  # noqa: E402

_COMPILER = {"grad", "value_and_grad", "vjp", "GradFunction", "adjoint"}
_TOOLS = {"check": "tools.check", "explain": "tools.explain"}  # name -> its module
_FORWARD = {"jvp", "make_jvp", "jacfwd", "jacrev", "hvp", "make_hvp", "hessian"}  # forward.py
_COMPILED = {"jit"}  # compiled/: numba, imported on the first call of jit

__all__ = [
    "grad", "value_and_grad", "vjp", "adjoint", "jvp", "make_jvp", "jacfwd", "jacrev", "hvp",
    "make_hvp", "hessian", "stop_gradient", "no_grad", "GradFunction",
    "runtime", "SrcdiffError", "SrcdiffSyntaxError", "NotDifferentiableError", "InPlaceError",
    "SourceUnavailableError", "GradientTypeError", "check", "explain", "jit",
]
__version__ = "0.1.0"


def __getattr__(name):
    if name in _COMPILER:
        from . import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    if name in _TOOLS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_TOOLS[name]}"), name)
        globals()[name] = value
        return value
    if name in _FORWARD:
        from . import forward

        value = getattr(forward, name)
        globals()[name] = value
        return value
    if name in _COMPILED:
        from . import compiled

        value = getattr(compiled, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'srcdiff' has no attribute {name!r}")
