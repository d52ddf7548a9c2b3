"""Array-module dispatch: numpy or CuPy, chosen by the arrays passed in.

Generated code and rules never create arrays with plain ``numpy.zeros``; they
use the ``*_like`` functions (which numpy dispatches to the argument's own
library through ``__array_function__``) or the module returned here.

>>> array_module(np.ones(3)) is np
True
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["array_module"]


def array_module(*xs):
    """The array library (numpy or CuPy) that owns ``xs``; numpy for plain Python numbers."""
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        return cupy.get_array_module(*xs)
    return np
