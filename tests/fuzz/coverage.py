"""Every construct srcdiff accepts, and the generator feature that writes it (issue 13, item 4).

The constructs come from srcdiff's own tables, not from a list kept here:

* syntax: every libcst statement, expression and operator class that
  ``srcdiff.transforms.validate.UNSUPPORTED`` does not refuse (a construct taken out of that
  table is accepted from then on, and must be generated);
* functions: every primitive with an adjoint rule (``srcdiff.runtime.registry.RULES``: numpy,
  ``math``, builtins, the operators) and every entry of the non-differentiable table
  (``srcdiff.runtime.NONDIFFERENTIABLE``);
* methods and attributes: ``srcdiff.analysis.calls.METHODS`` and ``ATTRIBUTES``, and the
  non-differentiable ``NONDIFFERENTIABLE_METHODS`` and ``NONDIFFERENTIABLE_ATTRIBUTES``;
* idioms: the shapes of code issue 13 found untested (:data:`IDIOMS`), each a generator
  feature recorded in ``Program.features``.

:data:`COVERAGE` maps each construct to the feature of ``tests/fuzz/programs.py`` that writes
it (a method of ``FnGen``/``ProgramGen`` or a tag recorded in ``Program.features``).
``tests/fuzz/test_coverage.py`` fails when a construct srcdiff accepts has no entry, and when
the generator, over a fixed sample, never writes one (each construct is *observed* in the
generated source: node types, callees resolved by identity, method and attribute names).

``python -m tests.fuzz.coverage --n 600`` prints the table with what a sample observed.
"""

from __future__ import annotations

import argparse
import builtins
import importlib
import importlib.util
import inspect
import operator
import sys
import types

import libcst as cst
import numpy as np

from .records import ENABLED as RECORDS_ON, FUNCTIONS_ENABLED as FUNCTIONS_ON
from .records import RETURNED_FUNCTIONS_ENABLED as RETURNED_ON

# ----------------------------------------------------------------------------- the table

# construct -> the generator feature that writes it ("FnGen.x_binary": a method; a bare name:
# a tag in Program.features)
COVERAGE: dict[str, str] = {
    # statements
    "syntax:Assign": "FnGen.s_assign", "syntax:AnnAssign": "FnGen.s_annotated",
    "syntax:AugAssign": "FnGen.s_aug", "syntax:Return": "FnGen.s_ret",
    "syntax:Break": "FnGen.s_jump", "syntax:Continue": "FnGen.s_jump",
    "syntax:Expr": "print", "syntax:Pass": "pass", "syntax:Assert": "assert",
    "syntax:Raise": "raise",
    "syntax:If": "FnGen.s_if", "syntax:For": "FnGen.s_for", "syntax:While": "FnGen.s_while",
    "syntax:TryStar": "effect-trystar", "syntax:FunctionDef": "ProgramGen.helper",
    "syntax:With": "FnGen.s_no_grad", "syntax:ListComp": "list-comprehension",
    "syntax:GeneratorExp": "generator-expression", "syntax:DictComp": "dict-comprehension",
    "syntax:SetComp": "set-comprehension",
    "builtins.all": "builtin-all-any", "builtins.any": "builtin-all-any",
    "builtins.sum": "builtin-sum",
    # expressions
    "syntax:Attribute": "FnGen.x_shape", "syntax:BinaryOperation": "FnGen.x_binary",
    "syntax:BooleanOperation": "FnGen.cond", "syntax:Call": "FnGen.x_unary",
    "syntax:Comparison": "FnGen.cond", "syntax:ConcatenatedString": "print",
    "syntax:Dict": "FnGen.s_literal", "syntax:Ellipsis": "ellipsis-index",
    "syntax:Float": "FnGen.leaf", "syntax:IfExp": "FnGen.x_ifexp", "syntax:Imaginary": "complex",
    "syntax:Integer": "FnGen.x_index", "syntax:List": "FnGen.make_list",
    "syntax:Name": "FnGen.leaf", "syntax:SimpleString": "FnGen.s_literal",
    "syntax:Subscript": "FnGen.x_index", "syntax:Tuple": "FnGen.s_literal",
    "syntax:UnaryOperation": "FnGen.x_unary",
    "syntax:Index": "FnGen.x_index", "syntax:Slice": "FnGen.x_index",
    "syntax:Element": "FnGen.s_literal", "syntax:DictElement": "FnGen.s_literal",
    # operators
    "syntax:Add": "FnGen.x_binary", "syntax:Subtract": "FnGen.x_binary",
    "syntax:Multiply": "FnGen.x_binary", "syntax:Divide": "FnGen.x_binary",
    "syntax:Power": "FnGen.x_unary", "syntax:MatrixMultiply": "FnGen.x_linalg",
    "syntax:Modulo": "FnGen.x_nondiff", "syntax:FloorDivide": "FnGen.x_nondiff",
    "syntax:BitAnd": "bit-masks", "syntax:BitOr": "bit-masks", "syntax:BitXor": "bit-masks",
    "syntax:LeftShift": "int-shifts", "syntax:RightShift": "int-shifts",
    "syntax:BitInvert": "bit-masks", "syntax:Minus": "FnGen.x_unary", "syntax:Not": "FnGen.cond",
    "syntax:Plus": "unary-plus", "syntax:And": "FnGen.cond", "syntax:Or": "FnGen.cond",
    "syntax:Equal": "FnGen.int_conds", "syntax:NotEqual": "FnGen.int_conds",
    "syntax:GreaterThan": "FnGen.cond", "syntax:GreaterThanEqual": "FnGen.cond",
    "syntax:LessThan": "FnGen.cond", "syntax:LessThanEqual": "FnGen.cond",
    "syntax:In": "FnGen.int_conds", "syntax:NotIn": "FnGen.int_conds",
    "syntax:Is": "none-default", "syntax:IsNot": "none-default",
    "syntax:AddAssign": "FnGen.s_aug", "syntax:SubtractAssign": "FnGen.s_aug",
    "syntax:MultiplyAssign": "FnGen.s_aug", "syntax:DivideAssign": "FnGen.s_aug",
    "syntax:PowerAssign": "aug-operators", "syntax:ModuloAssign": "aug-operators",
    "syntax:FloorDivideAssign": "aug-operators", "syntax:MatrixMultiplyAssign": "aug-operators",
    "syntax:BitAndAssign": "aug-operators", "syntax:BitOrAssign": "aug-operators",
    "syntax:BitXorAssign": "aug-operators", "syntax:LeftShiftAssign": "aug-operators",
    "syntax:RightShiftAssign": "aug-operators",
    # primitives with adjoint rules: operators
    "operator.add": "FnGen.x_binary", "operator.sub": "FnGen.x_binary",
    "operator.mul": "FnGen.x_binary", "operator.truediv": "FnGen.x_binary",
    "operator.pow": "FnGen.x_unary", "operator.matmul": "FnGen.x_linalg",
    "operator.mod": "FnGen.x_nondiff", "operator.neg": "FnGen.x_unary",
    "operator.getitem": "FnGen.x_index",
    "srcdiff.runtime.helpers.append": "FnGen.append_to",
    "srcdiff.runtime.helpers.setitem": "FnGen.s_setitem",
    "builtins.abs": "FnGen.x_kink",
    # math
    **{f"math.{n}": "math-functions" for n in
       "acos asin atan cos cosh exp expm1 fabs log log1p sin sinh sqrt tan tanh".split()},
    # numpy, elementwise
    **{f"numpy.{n}": "FnGen.x_unary" for n in
       "exp expm1 log log1p sqrt square sin cos tan tanh sinh cosh arcsin arccos arctan "
       "power negative".split()},
    **{f"numpy.{n}": "ufunc-spelling" for n in
       "add subtract multiply divide absolute remainder".split()},
    "numpy.maximum": "relu-spellings", "numpy.minimum": "relu-spellings",
    "numpy.where": "relu-spellings", "numpy.clip": "FnGen.x_kink",
    # numpy, reductions
    "numpy.sum": "FnGen.x_reduce", "numpy.mean": "FnGen.x_reduce", "numpy.max": "FnGen.x_reduce",
    "numpy.min": "FnGen.x_reduce", "numpy.prod": "FnGen.x_reduce", "numpy.var": "FnGen.x_reduce",
    "numpy.std": "FnGen.x_reduce", "numpy.amax": "reduction-spellings",
    "numpy.amin": "reduction-spellings",
    # numpy, shapes and linear algebra
    **{f"numpy.{n}": "FnGen.x_shape" for n in
       "reshape transpose swapaxes squeeze ravel expand_dims".split()},
    "numpy.concatenate": "FnGen.x_index", "numpy.stack": "FnGen.x_index",
    "numpy.broadcast_to": "FnGen.x_index", "numpy.copy": "copy",
    "numpy.dot": "FnGen.x_linalg", "numpy.inner": "FnGen.x_linalg",
    "numpy.outer": "FnGen.x_linalg", "numpy.trace": "FnGen.x_linalg",
    "numpy.einsum": "FnGen.x_linalg", "numpy.matmul": "matmul-spellings",
    # numpy, constructors that take a value (differentiated)
    "numpy.full": "ctor-full", "numpy.full_like": "ctor-full-like",
    "numpy.linspace": "ctor-linspace", "numpy.arange": "ctor-arange",
    "numpy.array": "np-array-literal", "numpy.asarray": "np-array-literal",
    # the non-differentiable table
    **{f"numpy.{n}": "nondiff-table" for n in
       "shape ndim size argmax argmin argsort argwhere nonzero flatnonzero searchsorted floor "
       "ceil round rint trunc fix floor_divide greater greater_equal less less_equal equal "
       "not_equal logical_and logical_or logical_not logical_xor isnan isinf isfinite isclose "
       "allclose array_equal all any count_nonzero can_cast".split()},
    "numpy.sign": "FnGen.x_nondiff",
    **{f"numpy.{n}": "ctor-ones-like-times" for n in "ones ones_like zeros_like".split()},
    "numpy.zeros": "FnGen.s_alloc", "numpy.empty": "ctor-empty",
    "numpy.empty_like": "ctor-empty", "numpy.eye": "ctor-eye", "numpy.identity": "ctor-eye",
    "numpy.result_type": "ctor-dtype",
    "builtins.len": "shape-attributes", "builtins.range": "FnGen.s_for",
    "builtins.print": "print", "builtins.isinstance": "nondiff-table",
    "builtins.int": "nondiff-table", "builtins.bool": "nondiff-table",
    "builtins.round": "nondiff-table",
    **{f"math.{n}": "nondiff-table" for n in "floor ceil trunc isnan isinf isfinite".split()},
    "srcdiff.runtime.nondiff.stop_gradient": "FnGen.x_stopgrad",
    # the long tail (tests/fuzz/functions.py)
    **{f"numpy.{n}": "function-table" for n in
       "arcsinh arccosh arctanh exp2 log2 log10 cbrt reciprocal fabs deg2rad radians rad2deg "
       "degrees positive conjugate sinc nan_to_num hypot arctan2 logaddexp logaddexp2 fmax fmin "
       "fmod copysign float_power heaviside ldexp nextafter nansum nanmean nanmax nanmin ptp "
       "average cumsum cumprod diff vecdot matvec vecmat nanprod nanstd nanvar nancumsum "
       "nancumprod cumulative_sum cumulative_prod".split()},
    **{f"math.{n}": "function-table" for n in
       "asinh acosh atanh exp2 log2 log10 cbrt radians degrees erf erfc gamma lgamma hypot "
       "atan2 fmod copysign pow ldexp nextafter remainder fsum prod dist".split()},
    **{f"numpy.{n}": "shape-functions" for n in
       "flip fliplr flipud roll rot90 sort partition take take_along_axis bincount "
       "sliding_window_view choose diag "
       "diagonal "
       "repeat tile tril triu moveaxis pad hstack vstack column_stack dstack atleast_1d "
       "atleast_2d atleast_3d split array_split hsplit vsplit dsplit".split()},
    **{f"numpy.{n}": "shape-functions" for n in  # runtime/statistics.py
       "median nanmedian quantile nanquantile percentile nanpercentile convolve correlate interp "
       "cov corrcoef trapezoid ediff1d".split()},
    **{f"numpy.{n}": "shape-functions" for n in "meshgrid broadcast_arrays".split()},  # grids.py
    **{f"numpy.{n}": "shape-functions" for n in  # runtime/building.py
       "append insert delete block resize compress extract diagflat rollaxis matrix_transpose "
       "unstack asanyarray ascontiguousarray asfortranarray astype real_if_close logspace "
       "geomspace polyadd polysub polymul polyval vander polyder polyint polyfit i0 gradient "
       "select".split()},
    **{f"method:{n}": "shape-functions" for n in "take choose diagonal repeat".split()},
    **{f"numpy.linalg.{n}": "linear-algebra" for n in
       "det slogdet norm inv cholesky matrix_power qr eigvalsh eigh solve svd lstsq pinv".split()},
    **{f"numpy.{n}": "linear-algebra" for n in "vdot tensordot cross kron".split()},
    **{f"numpy.{n}": "linear-algebra" for n in  # functions.NP_FFT
       "fft ifft rfft irfft fft2 ifft2 rfft2 irfft2 fftn ifftn rfftn irfftn fftshift ifftshift "
       "real imag angle".split()},
    "attribute:real": "linear-algebra", "attribute:imag": "linear-algebra",
    **{f"scipy.special.{n}": "scipy" for n in
       "erf erfc erfinv erfcinv expit log_expit logit gammaln psi polygamma xlogy xlog1py beta "
       "betaln i0 i1 ive logsumexp softmax log_softmax".split()},
    **{f"scipy.stats.norm.{n}": "scipy" for n in "logpdf pdf cdf sf logcdf logsf".split()},
    "scipy.stats.t.logpdf": "scipy", "scipy.stats.multivariate_normal.logpdf": "scipy",
    **{f"scipy.linalg.{n}": "scipy" for n in "solve_triangular cho_factor cho_solve expm".split()},
    # methods and attributes
    **{f"method:{n}": "FnGen.x_reduce" for n in "sum mean max min".split()},
    **{f"method:{n}": "reduction-spellings" for n in "prod var std".split()},
    **{f"method:{n}": "method-spellings" for n in "transpose swapaxes squeeze trace".split()},
    "method:reshape": "FnGen.x_shape", "method:ravel": "FnGen.x_shape",
    "method:flatten": "FnGen.x_shape", "method:dot": "dot-method", "method:astype": "conversions",
    "builtins.float": "conversions", "method:clip": "FnGen.x_kink",
    "method:copy": "copy",
    **{f"method:{n}": "function-table" for n in "cumsum cumprod conj conjugate".split()},
    **{f"method:{n}": "nondiff-table" for n in "argmax argmin argsort nonzero round all any".split()},
    "attribute:T": "FnGen.T",
    **{f"attribute:{n}": "shape-attributes" for n in "shape ndim size itemsize nbytes".split()},
    "attribute:dtype": "ctor-dtype",
}

# the idioms of issue 13 (item 4), each a tag the generator records
IDIOMS: dict[str, str] = {
    "a max-shifted softmax: exp(m - max(m)) / sum(exp(m - max(m)))": "softmax",
    "a logistic sigmoid: 1.0 / (1.0 + np.exp(-x)), 1 / (1 + np.exp(-x))": "sigmoid",
    "the square of a 2-norm: np.linalg.norm(r) ** 2": "squared-norm",
    "a Cholesky factor's solves and log-determinant: L = np.linalg.cholesky(K); "
    "np.linalg.solve(L.T, np.linalg.solve(L, u)); np.sum(np.log(np.diag(L)))": "cholesky-factor",
    "an RNN's loop over every row of a matrix: h = np.tanh(w @ h + m @ x[t]), "
    "for x_t in x": "recurrence-rows",
    "an RNN's states in a list read only at its end: hs = [h]; hs.append(np.tanh(w @ hs[-1] "
    "+ m @ x[t])); h = hs[-1]": "recurrence-list",
    "a helper that returns one expression (written where it is called): def helper1(u): "
    "return np.tanh(u * 2.0)": "one-expression-helper",
    "list((a, b)) / tuple([a, b]) of values: the displays they make": "sequence-calls",
    "the spellings of a product and a reduction (np.linalg.matmul, multi_dot, einsum with a "
    "transposed operand, np.add.reduce)": "reduction-spellings",
    "a list literal passed to a helper: helper([a, a * 2.0])": "list-literal-to-helper",
    "a tuple literal passed to a helper: helper((u, v))": "tuple-literal-to-helper",
    "a dict literal passed to a helper: helper({'w': a})": "dict-literal-to-helper",
    "a nested list passed to a helper: helper([[a, b], c])": "nested-list-to-helper",
    "a list built in the body, then passed: xs = [a]; xs.append(b); helper(xs)":
        "built-list-to-helper",
    "a local list passed to a helper": "local-list-to-helper",
    "a helper that indexes its container": "index-container-param",
    "a helper that unpacks its container: u, v = xs": "unpack-container-param",
    "a helper that unpacks a nested container: inner, c = xs": "unpack-nested-param",
    "a helper that loops over its list: for c in xs": "loop-over-list-param",
    "a helper that loops over its tuple": "loop-over-tuple-param",
    "for i, c in enumerate(xs) over a list parameter": "enumerate-list-param",
    "for c, d in zip(xs, ys) over list parameters": "zip-list-params",
    "a helper that returns its container": "return-container-param",
    "a helper that returns a new list or dict": "return-new-container",
    "the caller unpacks a returned container": "unpack-returned-container",
    "the caller loops over a returned list": "loop-over-returned-list",
    "the caller stacks a returned list": "stack-returned-list",
    "the caller indexes a returned container (refused or right)": "index-returned-container",
    "np.stack((a, b)) of a tuple": "np-stack-tuple",
    "np.concatenate((u, v)) of a tuple": "np-concatenate-tuple",
    "np.array([s1, s2]), np.asarray([...]): scalars, rows, nested lists": "np-array-literal",
    "np.full(shape, s) with an active s, also an array fill": "ctor-full",
    "np.full_like(x, s): a number or an array fill": "ctor-full-like",
    "np.linspace(s0, s1, n)": "ctor-linspace",
    "np.arange(s, s + 2.5)": "ctor-arange",
    "np.ones_like(x) * s, np.zeros_like(x) + s, s * np.ones(n)": "ctor-ones-like-times",
    "an allocation with an active fill, written later (out[i] += ...)": "FnGen.s_alloc2",
    "tuple-returning helpers with an early return (refused or right)": "early-tuple-return",
    "a helper with an early return of one value": "helper-early-return",
    "a parameter with the default None": "none-default",
    "np.dot, x.dot, @, np.matmul, np.inner, np.einsum": "matmul-spellings",
    "x.sum()/np.sum(x), x.mean()/np.mean(x), np.amax, x.prod(), x.var(), x.std()":
        "reduction-spellings",
    "x.T/np.transpose(x)/x.transpose()/x.swapaxes(0, 1)": "method-spellings",
    "np.maximum(0, x), np.maximum(x, 0), np.where(x > 0, x, 0)": "relu-spellings",
    "np.add, np.subtract, np.multiply, np.divide, np.negative, np.absolute, np.remainder":
        "ufunc-spelling",
    "x.copy(), np.copy(x)": "copy",
    "x.shape[0], len(x), x.size, x.ndim, np.shape(x)": "shape-attributes",
    "for i in range(len(x)), range(x.shape[0])": "range-len",
    "for i, c in enumerate(list), zip(list, list)": "enumerate-list",
    "side effect: a helper appends to a list it was passed": "effect-helper-append",
    "side effect: y *= 2.0 on an array a helper was passed": "effect-helper-imul",
    "side effect: y.fill(s) in a helper": "effect-helper-fill",
    "side effect: np.copyto(y, v) in a helper": "effect-helper-copyto",
    "side effect: y[0] = s in a helper": "effect-helper-setitem",
    "side effect: np.multiply(y, 2.0, out=y)": "effect-out-kw",
    "side effect: np.tanh(y, y), an output by position": "effect-out-pos",
    "side effect: np.negative(y, y) in a helper": "effect-helper-out-pos",
    "side effect: np.copyto(y, x)": "effect-copyto",
    "side effect: setattr(obj, 'v', a)": "effect-setattr",
    "side effect: obj.v = a": "effect-attr-assign",
    "side effect: xs.extend([a])": "effect-extend",
    "side effect: xs.insert / xs.pop / xs.reverse": "effect-list-method",
    "side effect: y.fill(s)": "effect-fill",
    "side effect: np.add.at(y, i, s)": "effect-add-at",
    "side effect on an argument: np.copyto(x, v)": "effect-arg-copyto",
    "side effect on an argument: x.fill(s)": "effect-arg-fill",
    "try/except* (refused)": "effect-trystar",
    "complex intermediate values (refused or right)": "complex",
    "dataclass arguments": "dclass",
    "float32 array arguments (gradients stay float32)": "float32",
    "for v in d.values()": "dict-values", "for k, v in d.items()": "dict-items",
    "for k in d.keys()": "dict-keys",
    "a function with the user's own rule (@srcdiff.adjoint)": "custom-adjoint",
    "a helper parameter whose default is an array: def helper(u, w0=C3)": "array-default",
    "views made by functions (np.flip, np.diag, x.conj()), then written (alias mode)":
        "alias-view-functions",
    "a list comprehension, stacked, summed, made an array": "list-comprehension",
    "a generator expression in sum(...)": "generator-expression",
    "a comprehension with an if clause": "comprehension-filter",
    "a dict comprehension, its values summed (a key may repeat)": "dict-comprehension",
    "a set comprehension of constants, counted": "set-comprehension",
    "for … else / while … else (break or not)": "loop-else",
    "list concatenation: np.stack([... for ...] + [np.zeros(3)]) (refused or right)":
        "list-concatenation",
    "all(...) / any(...) of a comprehension in a condition": "builtin-all-any",
}

# functions as values (tests/fuzz/records.py; a returned one is off until O18 is fixed)
FUNCTION_IDIOMS: dict[str, str] = {
    "a function passed as an argument: apply(np.tanh, x), apply(helper1, x)":
        "function-as-argument",
    "a function bound to a name: act = np.sin; act(x)": "function-bound-to-a-name",
    "a function read out of a dict: acts['t'](x)": "function-in-a-dict",
}
RECORD_IDIOMS: dict[str, str] = {
    "a record built in the function: Pair(a, b), Rec(W, c)": "record-built",
    "a method of the user's own record: r.apply(x) with self.W inside": "method-of-a-record",
    "dict(a=..., b=...) and list(xs)": "dict-call",
    "list(xs) of a list": "list-call",
}
if RECORDS_ON:
    IDIOMS.update(RECORD_IDIOMS)
if FUNCTIONS_ON:
    IDIOMS.update(FUNCTION_IDIOMS)
if RETURNED_ON:
    IDIOMS["a function returned by a helper: pick(1)(x)"] = "function-returned"

# constructs srcdiff's tables accept that this Python cannot parse: construct -> an example,
# which the test checks does not compile here (on a newer Python the entry lapses)
UNPARSEABLE = {
    "syntax:TypeAlias": "type Vec = list[float]\n",
    "syntax:TemplatedString": "t = t'{x}'\n",
    "syntax:LazyImport": "lazy import numpy\n",
    "syntax:LazyImportFrom": "lazy from numpy import tanh\n",
    "syntax:StarredDictComp": "d = {**e for e in es}\n",
}

# ----------------------------------------------------------------------------- derivation

_SYNTAX_BASES = ("BaseSmallStatement", "BaseCompoundStatement", "BaseExpression", "BaseBinaryOp",
                 "BaseUnaryOp", "BaseBooleanOp", "BaseCompOp", "BaseAugOp", "BaseSlice",
                 "BaseElement", "BaseDictElement")


def label(obj) -> str:
    """``numpy.tanh``, ``math.exp``, ``operator.add``, ``scipy.special.erf``,
    ``scipy.stats.norm.logpdf``: a callee's name."""
    name = getattr(obj, "__name__", repr(obj))
    owner = getattr(obj, "__self__", None)
    if owner is not None and type(owner).__module__.startswith("scipy.stats"):
        return f"scipy.stats.{type(owner).__name__.removesuffix('_gen')}.{name}"
    if isinstance(obj, np.ufunc):
        special = sys.modules.get("scipy.special")
        if getattr(np, name, None) is not obj and getattr(special, name, None) is obj:
            return f"scipy.special.{name}"
        return f"numpy.{name}"
    module = getattr(obj, "__module__", None) or ""
    module = {"_operator": "operator"}.get(module, module)
    if module.startswith("numpy"):
        module = "numpy.linalg" if module.startswith("numpy.linalg") else "numpy"
    elif module.startswith("scipy."):
        module = ".".join(module.split(".")[:2])
    return f"{module}.{name}"


# runtime functions only generated code calls (forward mode's tangent code, which second order
# differentiates again): tests/test_forward.py covers them, not the generator of user programs;
# and the solves the linear-algebra rules call (tests/runtime/test_solvers.py)
GENERATED_ONLY = frozenset({"srcdiff.runtime.helpers.guard",
                            "srcdiff.runtime.tangents.broadcast_tangent",
                            "srcdiff.runtime.tangents.zero_tangent",
                            "srcdiff.runtime.solvers.triangular_solve",
                            "srcdiff.runtime.solvers.matrix_solve",
                            "srcdiff.runtime.solvers.inverse",
                            # lowered from user spellings (transforms/canonical.py, softmax.py),
                            # which the "relu-spellings" and "softmax" features write
                            "srcdiff.runtime.helpers.where_positive",
                            "srcdiff.runtime.helpers.softmax",
                            "srcdiff.runtime.helpers.log_softmax",
                            # (transforms/sigmoid.py), which the "sigmoid" feature writes
                            "srcdiff.runtime.helpers.sigmoid",
                            # (transforms/norms.py), which the "squared-norm" feature writes
                            "srcdiff.runtime.helpers.squared_norm",
                            # (transforms/normalize.py: np.add.at into a local array), which
                            # the "ufunc-at" feature writes
                            "srcdiff.runtime.shaping.added_at",
                            # lowered from user spellings by transforms/factors.py, which the
                            # "cholesky-factor" feature writes
                            "srcdiff.runtime.linalg.cholesky_solve",
                            "srcdiff.runtime.linalg.cholesky_log_diagonal",
                            "srcdiff.runtime.linalg.slogdet_spd",
                            "srcdiff.runtime.linalg.solve_spd"})


def accepted() -> dict[str, str]:
    """Every construct srcdiff accepts: label -> where the fact comes from."""
    from srcdiff.analysis import calls
    from srcdiff.runtime import NONDIFFERENTIABLE, NONDIFFERENTIABLE_METHODS
    from srcdiff.runtime.nondiff import NONDIFFERENTIABLE_ATTRIBUTES
    from srcdiff.runtime.registry import RULES
    from srcdiff.transforms.validate import UNSUPPORTED

    from srcdiff.transforms import validate

    out = {}
    bases = tuple(getattr(cst, b) for b in _SYNTAX_BASES)
    # statements and expressions: validate's allowlist SUPPORTED where it has one (f06c3e0),
    # else whatever UNSUPPORTED does not list; operators and parts: not in UNSUPPORTED
    allow = getattr(validate, "SUPPORTED", None)
    constructs = (cst.BaseCompoundStatement, cst.BaseSmallStatement, cst.BaseExpression)
    for name, cls in vars(cst).items():
        if not (inspect.isclass(cls) and issubclass(cls, bases) and not inspect.isabstract(cls)
                and not name.startswith("Base")):
            continue
        if allow is not None and issubclass(cls, constructs):
            if cls in allow:
                out[f"syntax:{name}"] = "validate.SUPPORTED"
        elif cls not in UNSUPPORTED:
            out[f"syntax:{name}"] = "validate (not in UNSUPPORTED)"
    if allow is not None:
        out["syntax:FunctionDef"] = "validate.SUPPORTED"  # a helper
        out["syntax:With"] = "validate.SUPPORTED"  # srcdiff.no_grad() only
    from srcdiff.runtime import registry
    for package, module in registry.OPTIONAL.items():  # scipy's rules, where scipy is installed
        if importlib.util.find_spec(package) is not None:
            importlib.import_module(module)
    for obj in RULES:  # srcdiff's own rules (not those a user, test or program registered)
        if label(obj).split(".")[0] in ("numpy", "math", "builtins", "operator", "srcdiff",
                                        "scipy") and label(obj) not in GENERATED_ONLY:
            out[label(obj)] = "RULES"
    for obj in NONDIFFERENTIABLE:
        if label(obj) not in GENERATED_ONLY:
            out[label(obj)] = "NONDIFFERENTIABLE"
    for name in calls.METHODS:
        out[f"method:{name}"] = "calls.METHODS"
    for name in NONDIFFERENTIABLE_METHODS:
        out[f"method:{name}"] = "NONDIFFERENTIABLE_METHODS"
    for name in calls.ATTRIBUTES:
        out[f"attribute:{name}"] = "calls.ATTRIBUTES"
    for name in NONDIFFERENTIABLE_ATTRIBUTES:
        out[f"attribute:{name}"] = "NONDIFFERENTIABLE_ATTRIBUTES"
    return out


def unparseable() -> dict[str, str]:
    """The :data:`UNPARSEABLE` entries whose example indeed does not compile here."""
    out = {}
    for key, example in UNPARSEABLE.items():
        try:
            compile(example, "<example>", "exec")
        except SyntaxError:
            out[key] = example
    return out


# ----------------------------------------------------------------------------- observation


def _namespace():
    import srcdiff

    from .functions import SCIPY_HEADER, scipy_available
    from .programs import HEADER
    ns = {"builtins": builtins}
    exec(HEADER, ns)
    if scipy_available():
        exec(SCIPY_HEADER, ns)
    ns["srcdiff"] = srcdiff
    return ns


# python's ast names for the operators srcdiff's calls.BINARY / UNARY key by libcst class
_AST_OPS = {"Add": "Add", "Sub": "Subtract", "Mult": "Multiply", "Div": "Divide", "Pow": "Power",
            "MatMult": "MatrixMultiply", "Mod": "Modulo", "FloorDiv": "FloorDivide",
            "USub": "Minus"}


def observe(source: str, ns=None, syntax: bool = True) -> set[str]:
    """The constructs (labels as in :func:`accepted`) in the functions of a module's source:
    callees resolved by identity, methods, attributes and operators from Python's ``ast``;
    with ``syntax``, the libcst node types too (a libcst parse is ~10x slower)."""
    import ast

    from srcdiff.analysis import calls
    from srcdiff.runtime.helpers import append, setitem

    ns = ns if ns is not None else _namespace()
    ops = {name: label(calls.BINARY.get(getattr(cst, c)) or calls.UNARY.get(getattr(cst, c)))
           for name, c in _AST_OPS.items()
           if calls.BINARY.get(getattr(cst, c)) or calls.UNARY.get(getattr(cst, c))}
    seen: set[str] = set()
    tree = ast.parse(source)
    for fn in (s for s in tree.body if isinstance(s, ast.FunctionDef)):
        for n in ast.walk(fn):
            kind = type(n)
            if kind in (ast.BinOp, ast.UnaryOp, ast.AugAssign) and type(n.op).__name__ in ops:
                seen.add(ops[type(n.op).__name__])
            elif kind is ast.Subscript:
                seen.add(label(operator.getitem) if isinstance(n.ctx, ast.Load) else label(setitem))
            elif kind is ast.Call:
                obj = _resolve(n.func, ns)
                if obj is not None and callable(obj):
                    seen.add(label(obj))
                elif isinstance(n.func, ast.Attribute):
                    seen.add(f"method:{n.func.attr}")
                    if n.func.attr == "append":
                        seen.add(label(append))
            elif kind is ast.Attribute and not isinstance(_resolve(n.value, ns), types.ModuleType):
                seen.add(f"attribute:{n.attr}")
    if syntax:
        from srcdiff.names import nodes  # a plain walk, trivia left out (libcst's is slower)

        module = cst.parse_module(source)
        for fn in (s for s in module.body if isinstance(s, cst.FunctionDef)):
            seen.update(f"syntax:{type(node).__name__}" for node in nodes(fn))
    return seen


def _resolve(node, ns):
    """The object a dotted name ``np.linalg.norm`` stands for (ast nodes), or None (a local
    variable, a method of a value)."""
    import ast

    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = ns.get(node.id, getattr(builtins, node.id, None))
    if base is None or parts and not isinstance(base, (types.ModuleType, type)):
        return None if parts else base
    obj = base
    for p in reversed(parts):
        obj = getattr(obj, p, None)
        if obj is None:
            return None
    return obj


# ----------------------------------------------------------------------------- a sample


class RoundRobin:
    """A deterministic stand-in for the generator's hypothesis ``Chooser``: each call site takes
    its options in turn (``coin(p)`` is true a fraction ``p`` of the time), so a few hundred
    programs go through every branch of every feature, in a fraction of a second each."""

    def __init__(self):
        self.turns: dict = {}
        self.credit: dict = {}

    @staticmethod
    def _site(n, depth):
        frame = sys._getframe(depth + 1)  # the generator's line that asked
        return frame.f_code, frame.f_lineno, n

    def _next(self, n: int) -> int:
        key = self._site(n, 3)
        k = self.turns.get(key, 0)
        self.turns[key] = k + 1
        return k % n

    def int(self, lo: int, hi: int) -> int:
        return lo + self._next(hi - lo + 1) if hi > lo else lo

    def coin(self, p: float) -> bool:
        key = self._site(0, 1)
        c = self.credit.get(key, 0.5) + p
        self.credit[key] = c - (c >= 1.0)
        return c >= 1.0

    def pick(self, seq):
        seq = list(seq)
        return seq[self._next(len(seq))]

    def weighted(self, pairs):
        return [k for k, w in pairs if w > 0][self._next(len([k for k, w in pairs if w > 0]))]


def generate(n: int):
    """``n`` programs from the generator driven by :class:`RoundRobin` (deterministic)."""
    from .programs import ProgramGen

    rr = RoundRobin()
    for k in range(n):
        gen = ProgramGen(None)
        gen.ch = rr
        yield gen.program(k)


def sample(n: int, want=None):
    """(constructs observed, features recorded, programs generated) over at most ``n`` of
    :func:`generate`'s programs, stopping once every construct and feature of ``want`` has been
    seen; the libcst node types are read until every syntax construct of ``want`` has been."""
    ns = _namespace()
    want = set(want or ())
    syntax = {k for k in want if k.startswith("syntax:")}
    seen: set[str] = set()
    features: set[str] = set()
    count = 0
    for prog in generate(n):
        count += 1
        seen.update(observe(prog.source, ns, syntax=bool(syntax - seen) or not want))
        features.update(prog.features)
        if want and want <= seen | features:
            break
    return seen, features, count


def wanted() -> set[str]:
    """What the generator must write: every construct srcdiff accepts (that this Python can
    parse) and every idiom's feature tag."""
    return (set(accepted()) - set(unparseable())) | {
        f for f in IDIOMS.values() if "." not in f}


def feature_exists(feature: str) -> bool:
    """A ``Class.method`` of the generator, or a tag (checked against a sample elsewhere)."""
    if "." not in feature:
        return True
    from . import programs
    cls, name = feature.split(".", 1)
    return hasattr(getattr(programs, cls, None), name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    args = parser.parse_args(argv)
    seen, features, count = sample(args.n)
    print(f"{count} programs")
    acc, skip = accepted(), unparseable()
    print("| construct | where srcdiff accepts it | generator feature | seen |")
    print("| --- | --- | --- | --- |")
    for key in sorted(acc):
        feat = COVERAGE.get(key, "**none**") if key not in skip else "(not Python syntax here)"
        mark = "yes" if key in seen else ("-" if key in skip else "**no**")
        print(f"| `{key}` | {acc[key]} | {feat} | {mark} |")
    print("\n| idiom | feature | seen |\n| --- | --- | --- |")
    for text, feat in IDIOMS.items():
        ok = feat in features if "." not in feat else feature_exists(feat)
        print(f"| {text} | {feat} | {'yes' if ok else '**no**'} |")
    stale = sorted(set(COVERAGE) - set(acc))
    if stale:
        print(f"\nentries for constructs srcdiff no longer accepts (or refuses): {stale}")


if __name__ == "__main__":
    main()
