"""srcdiff: reverse-mode automatic differentiation by source transformation.

srcdiff reads a numpy function's source and writes the Python source of its
derivative: a forward pass and a pullback, readable, with no tape.

>>> import numpy as np, srcdiff
>>> def loss(w, b, x, y):
...     return np.mean((x @ w + b - y) ** 2)
>>> dloss = srcdiff.grad(loss, wrt=("w", "b"))
>>> print(dloss.source)  # doctest: +SKIP
"""

from . import runtime
from .api import GradFunction, grad, value_and_grad, vjp
from .errors import (
    GradientTypeError,
    InPlaceError,
    NotDifferentiableError,
    SourceUnavailableError,
    SrcdiffError,
    SrcdiffSyntaxError,
)

__all__ = [
    "grad", "value_and_grad", "vjp", "GradFunction", "runtime",
    "SrcdiffError", "SrcdiffSyntaxError", "NotDifferentiableError", "InPlaceError",
    "SourceUnavailableError", "GradientTypeError",
]
__version__ = "0.1.0"
