"""srcdiff's runtime: what generated derivative code calls, and nothing of the compiler.

Generated modules import it as ``rt``::

    from srcdiff import runtime as rt
"""

import sys

import numpy as np

from . import building, creation, elementwise, fft, grids, linalg, reductions, registry, rules, scalar_math, shaping
from .backend import array_module, register_array_module, reshape, scatter_add
from .helpers import append, append_in_place, blank, blank_like, count, split, unpacked, guard, setitem, add, at, expand_reduced, inverse_permutation, log_softmax, sigmoid, softmax, squared_norm, unbroadcast, where_positive, zeros_like
from .helpers import dot_all, dot_rows, matmul_rows, mean_all, row_dots, rows_dot, rows_matmul, sum_all
from . import inplace
from .inplace import (iadd, imul, ipow, isub, itruediv, larger_adjoint_into, positive_part_into,
                      positive_product_into, spare, where_adjoint_x_into, where_adjoint_y_into,
                      where_positive_into)
from .nondiff import (NONDIFFERENTIABLE, NONDIFFERENTIABLE_METHODS, keys, no_grad, outer_shape,
                      stop_gradient)
from .registry import OPTIONAL, RULES, Rule, adjoint, rule_for
from .link import call_jvp, call_vjp, default_of, derivative_of, tangent_of
from .tape import Tape, Terms, carried, check_recomputed, checkpoint_every, each_step
from .trees import field, is_container, tree_add, tree_add_at, tree_put, tree_zeros
from .trees import drop_adjoint, entry_adjoint, filled, list_add_at, list_nones, list_put, pop_adjoint
from .rules import add_at, add_into, slices_joined, split_joined, spread_number, terms_sum
from .rules import *  # noqa: F401,F403  the rule functions, called as rt.<name>_adjoint
from .building import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .fft import *  # noqa: F401,F403
from .grids import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .scalar_math import *  # noqa: F401,F403
from .shaping import *  # noqa: F401,F403
from . import statistics, tangents
from .tangents import *  # noqa: F401,F403  forward mode's tangent rules and helpers
from .statistics import *  # noqa: F401,F403

__all__ = [
    "setitem", "append", "count", "guard", "add_at", "add_into",
    "np", "rules", "building", "creation", "elementwise", "fft", "grids", "linalg", "reductions", "scalar_math", "shaping", "array_module", "register_array_module", "reshape", "scatter_add", "add", "at",
    "expand_reduced", "inverse_permutation", "unbroadcast", "zeros_like", "matmul_rows", "rows_matmul", "dot_rows", "rows_dot", "row_dots", "dot_all", "sum_all", "mean_all",
    "NONDIFFERENTIABLE", "NONDIFFERENTIABLE_METHODS", "stop_gradient", "no_grad", "keys", "outer_shape", "RULES", "Rule", "adjoint", "rule_for", "Tape", "Terms", "each_step", "carried", "checkpoint_every", "check_recomputed", "derivative_of", "call_vjp", "default_of", "field", "is_container", "tree_add", "tree_add_at", "tree_put", "tangents", "tangent_of", "call_jvp",
    "tree_zeros", "where_positive", "softmax", "log_softmax", "sigmoid", "squared_norm", "append_in_place", "drop_adjoint", "entry_adjoint", "filled", "list_add_at", "list_nones",
    "list_put", "pop_adjoint", "inplace", "iadd", "imul", "ipow", "isub", "itruediv", "spare",
    "where_adjoint_x_into", "where_adjoint_y_into", "larger_adjoint_into", "where_positive_into",
    "positive_part_into", "positive_product_into", "blank", "blank_like", "spread_number", "terms_sum", "split_joined", "slices_joined", "split", "unpacked",
]


def __getattr__(name: str):
    """A rule of an optional library (``scipy_rules.py``), once that library is imported:
    generated code calls it as ``rt.<name>`` like the others."""
    registry._load_optional()
    for module in map(sys.modules.get, OPTIONAL.values()):
        if module is not None and name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
