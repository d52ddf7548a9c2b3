"""srcdiff: reverse-mode automatic differentiation by source transformation.

srcdiff reads a numpy function's source and writes the Python source of its
derivative: a forward pass and a pullback, readable, with no tape.

>>> import numpy as np, srcdiff
>>> def loss(w, b, x, y):
...     return np.mean((x @ w + b - y) ** 2)
>>> dloss = srcdiff.grad(loss, wrt=("w", "b"))
>>> print(dloss.source)  # doctest: +SKIP
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
from .api import GradFunction, grad, value_and_grad, vjp
from .runtime import stop_gradient
from .errors import (
    GradientTypeError,
    InPlaceError,
    NotDifferentiableError,
    SourceUnavailableError,
    SrcdiffError,
    SrcdiffSyntaxError,
)

__all__ = [
    "grad", "value_and_grad", "vjp", "stop_gradient", "GradFunction", "runtime",
    "SrcdiffError", "SrcdiffSyntaxError", "NotDifferentiableError", "InPlaceError",
    "SourceUnavailableError", "GradientTypeError",
]
__version__ = "0.1.0"
