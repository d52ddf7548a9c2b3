"""The public API: ``grad``, ``value_and_grad`` and ``vjp``.

>>> import numpy as np, srcdiff
>>> def f(x):
...     return np.sum(x ** 2)
>>> srcdiff.grad(f)(np.array([1.0, 2.0]))  # doctest: +SKIP
array([2., 4.])
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
import weakref

import numpy as np
import optree

from srcdiff.runtime import trees
from srcdiff.runtime.backend import is_dask
from srcdiff.runtime import inplace as _inplace

from . import dims, portable
from .analysis.dtypes import float64_call
from .errors import GradientTypeError, SrcdiffError
from .fast_call import specialised_call
from .pipeline import Derivative, compile_derivative, parameters

__all__ = ["grad", "value_and_grad", "vjp", "adjoint", "GradFunction", "GradSpec"]

# ----- compiled derivatives, cached per function object -----

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_cache_lock = threading.RLock()


class InternalError(SrcdiffError):
    """srcdiff failed in a way it should not have; the message asks for a report."""


def derivative(fn, wrt: tuple[str, ...], has_aux: bool = False,
               containers: tuple[str, ...] = (), gradient: bool = False,
               in_place: bool = False, with_value: bool = False,
               dims: tuple | None = None, float64: bool = False) -> Derivative:
    """The compiled derivative of ``fn`` with respect to ``wrt``, compiled once (per set of
    ``wrt`` parameters passed as containers); ``gradient``: for ``grad``, which needs no
    value (see ``Derivative.gradient_only``), or ``value_and_grad`` (``with_value``);
    ``in_place``: the variant for large arrays; ``dims``: the variant for arguments of one
    pattern of shapes (:func:`srcdiff.dims.pattern`); ``float64`` (with ``dims``): for
    float64 arrays (:func:`srcdiff.analysis.dtypes.float64_call`)."""
    if not inspect.isfunction(fn):
        return compile_derivative(fn, wrt)  # raises SourceUnavailableError, saying why
    float64 = float64 and dims is not None
    key = (fn.__code__, wrt, has_aux, containers, gradient, in_place, with_value, dims, float64)
    return compiled_once(fn, key, lambda: compile_derivative(
        fn, wrt, has_aux, containers=containers, gradient=gradient, in_place=in_place,
        with_value=with_value, dims=dims, float64=float64))


def compiled_once(fn, key, build, mode: str = ""):
    """``build()``, run once per function object and ``key`` and kept (``derivative``, and
    forward mode's ``tangent_derivative``, whose keys differ); a failure that is not a
    SrcdiffError is srcdiff's own bug and says so. The lock is reentrant: compiling a derivative
    may compile another one it links to (second order reads a helper's tangent code)."""
    per_fn = _cache.get(fn)
    if per_fn is not None and key in per_fn:
        return per_fn[key]
    with _cache_lock:
        per_fn = _cache.setdefault(fn, {})
        if key not in per_fn:
            try:
                per_fn[key] = build()
            except SrcdiffError:
                raise
            except Exception as exc:  # a bug in srcdiff: never let it look like the user's
                raise InternalError(
                    f"srcdiff failed while differentiating {fn.__qualname__}{mode} "
                    f"({type(exc).__name__}: {exc}). This is a bug in srcdiff; please report "
                    "it with the function's source.") from exc
        return per_fn[key]


# ----- arguments and results -----


_is_float = trees.is_float  # (the pytrees' own test of a leaf)


def _has_float_leaf(x) -> bool:
    trees.register_dataclasses(x)  # a dataclass is a leaf to optree until registered: not a float
    return any(_is_float(leaf) for leaf in optree.tree_leaves(x, namespace=trees.NAMESPACE))


def _check_differentiable(fn, name: str, value) -> None:
    if _is_float(value):
        return
    if trees.is_container(value):
        items = trees.flat_items(value)
        if items is not None and any(_is_float(v) for _, v in items):
            return
        trees.tree_map(lambda leaf: leaf, value)  # registers dataclasses with optree
        if _has_float_leaf(value):
            return
        raise GradientTypeError(
            f"cannot differentiate {fn.__qualname__} with respect to '{name}': the "
            f"{type(value).__name__} holds no floating-point value; leave it out of wrt.")
    what = getattr(value, "dtype", type(value).__name__)
    if isinstance(value, (int, np.integer)) or np.issubdtype(np.dtype(str(what)) if isinstance(
            what, np.dtype) else np.dtype("O"), np.integer):
        hint = f"pass it as a float ({name}=float(...) or {name}.astype(float))"
    else:
        hint = "srcdiff differentiates Python floats and floating-point arrays"
    raise GradientTypeError(
        f"cannot differentiate {fn.__qualname__} with respect to '{name}': it is {what}, not a "
        f"floating-point value; {hint}, or leave it out of wrt.")


def _as_gradient(g, x):
    """``g`` with the type, shape and dtype of the argument ``x``; a fresh, writable array.

    Arrays stay in ``x``'s own library (a CuPy argument gets a CuPy gradient, on its device);
    a Python float or numpy scalar argument gets a host number, which for a device ``g`` is
    one explicit transfer.
    """
    if type(g) is np.ndarray and type(x) is np.ndarray and g.dtype == x.dtype and \
            x.dtype.kind == "f" and g.shape == x.shape:  # the common case, as below at once
        flags = g.flags
        return g if flags.writeable and flags.owndata else g.copy()
    if trees.is_container(x):  # a pytree: the same structure, None for non-float leaves
        kind = type(x)
        if (kind is dict or kind is list or kind is tuple) and type(g) is kind and \
                len(g) == len(x) and (kind is not dict or g.keys() == x.keys()):
            # (plain containers, nested too: no optree walk)
            items = x.items() if kind is dict else enumerate(x)
            out = [_as_gradient(g[k], leaf) if g[k] is not None and (
                _is_float(leaf) or trees.is_container(leaf)) else None for k, leaf in items]
            return dict(zip(x, out)) if kind is dict else kind(out)
        return trees.tree_map(lambda leaf, d: _as_gradient(d, leaf) if d is not None and
                              _is_float(leaf) else None, x, g) if g is not None else None
    if _is_complex(g):  # never cast away: a real argument's adjoint is real
        raise GradientTypeError(
            "srcdiff computed a complex gradient for a real argument: a complex value reached "
            "an operation srcdiff did not know was complex (a value made by a function it does "
            "not know returns complex numbers). Take np.real(...), np.imag(...) or np.abs(...) "
            "of that value where it is made.")
    if is_dask(g) or is_dask(x):
        return _dask_gradient(g, x)
    if isinstance(x, np.generic):  # before float: np.float64 is a float too
        if isinstance(g, (np.ndarray, np.generic, float, int)):
            return x.dtype.type(g)
        return x.dtype.type(float(g))  # a 0-d device array: no implicit host conversion
    if isinstance(x, float):
        return float(g)
    shape, dtype = np.shape(x), x.dtype
    if type(g) is type(x):
        flags = getattr(g, "flags", None)  # CuPy's flags have no 'writeable'
        if g.dtype == dtype and np.shape(g) == shape:
            if flags is None or getattr(flags, "writeable", True) and flags.owndata:
                return g
            return g.copy()  # a view of the right array (a transpose's adjoint): one plain copy
    elif isinstance(g, (float, int, np.generic)) and type(x) is not np.ndarray:
        return np.full_like(x, g, dtype=dtype)  # a scalar adjoint, made in x's library
    return np.broadcast_to(g, shape).astype(dtype, copy=True)


def _dask_gradient(g, x):
    """A gradient computed by Dask stays lazy: a Dask array of ``x``'s shape and dtype, of
    ``x``'s chunks where ``x`` is a Dask array. A number or numpy argument gets a Dask array
    too (``float(g)`` would compute the whole graph here, and again for the others)."""
    dtype = x.dtype if hasattr(x, "dtype") else np.dtype(type(x))
    if not is_dask(g):  # a constant adjoint (0.0 for an unused argument): made in x's chunks
        return np.full_like(x, g, dtype=dtype)
    g = np.broadcast_to(g, np.shape(x)).astype(dtype, copy=False)
    return g.rechunk(x.chunks) if is_dask(x) and g.chunks != x.chunks else g


_NUMPY_FLOATS = (np.float64, np.float32, np.float16)  # numpy scalars a wrt argument may be
_SEEDS = {float: 1.0, np.float64: np.float64(1.0), np.float32: np.float32(1.0)}  # by type


def _large(args) -> bool:
    """Whether an argument is a numpy array of ``LARGE`` elements or more: the call runs the
    derivative's variant that writes temporaries in place (``transforms/inplace.py``).
    Never with an argument of another kind of array or a container: a Dask graph, say, may
    hold a numpy temporary it reads later."""
    large, found = _inplace.LARGE, False  # (read here: tests set it to 0: every call in place)
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            found = found or a.size >= large
        elif kind not in _PLAIN and kind not in _NUMPY_FLOATS:
            return False
    return found


_PATTERNS = 8  # shape patterns compiled per gradient; further ones share the general variant
_PLAIN_CALLS = 64  # kinds and shapes of calls remembered (then forgotten and found again)


def _call_key(args) -> tuple:
    """What picks a plain call's derivative: each argument's shape where it is a numpy array,
    else its type (with the shapes, this decides the pattern and whether large arrays are
    written in place), and last whether its arrays are all float64 (``float64_call``: the
    variant whose temporaries take results in place). ``fast_call`` builds the same tuple."""
    return (*(a.shape if type(a) is np.ndarray else type(a) for a in args), float64_call(args))


def _tree_key(args) -> tuple | None:
    """What picks a call's derivative where its arguments are numbers, numpy arrays and
    dicts (string keys), lists and tuples of them, nested: the kind of each, each array's
    shape and dtype, each container's keys. Arguments of one key pass the general call's
    checks alike (dtypes decide what is refused and how it is compiled), so a second call
    of a key skips them (``GradFunction._tree_call``); None for any other argument."""
    key = []
    for a in args:
        part = _tree_part(a)
        if part is None:
            return None
        key.append(part)
    return tuple(key)


def _tree_part(a):
    kind = type(a)
    if kind is np.ndarray:
        return a.shape, a.dtype.char
    if kind in _PLAIN or kind in _NUMPY_FLOATS:
        return kind
    if kind is dict:
        parts = tuple([_tree_part(v) for v in a.values()])
        return None if None in parts or not all(type(k) is str for k in a) else \
            (dict, tuple(a), parts)
    if kind is list or kind is tuple:
        parts = tuple([_tree_part(v) for v in a])
        return None if None in parts else (kind, parts)
    return None


def _tree_gradient(fn, g, x, taken: set, gradient_only: bool):
    """The gradient of the argument ``x`` from its adjoint ``g``: of ``x``'s structure and
    each leaf's dtype and shape, owned by the caller (never an argument's array nor another
    gradient's: ``taken`` holds the ids of both, and grows)."""
    items = trees.flat_items(x)
    if items is None or type(g) is not type(x) or len(g) != len(x) or \
            type(x) is dict and g.keys() != x.keys():
        if gradient_only:
            _check_real(fn, g)
        return _owned(_as_gradient(g, x), taken)
    out = []
    for k, leaf in items:
        d = g[k]
        if type(d) is np.ndarray and type(leaf) is np.ndarray and d.dtype == leaf.dtype and \
                d.shape == leaf.shape and leaf.dtype.kind == "f":  # the common case: a
            if not (d.flags.writeable and d.flags.owndata) or id(d) in taken:  # fresh array
                d = d.copy()
        elif d is None or not _is_float(leaf):
            out.append(None)
            continue
        else:
            if gradient_only:
                _check_real(fn, d)
            d = _as_gradient(d, leaf)
            if id(d) in taken and hasattr(d, "copy"):
                d = d.copy()
        taken.add(id(d))
        out.append(d)
    return dict(zip(x, out)) if type(x) is dict else type(x)(out)


def _owned(g, taken: set):
    """``g`` with each array leaf whose id is in ``taken`` copied; every leaf's id added."""
    kind = type(g)
    if kind is dict:
        return {k: _owned(v, taken) for k, v in g.items()}
    if kind is list or kind is tuple:
        return kind([_owned(v, taken) for v in g])
    if trees.is_container(g):
        return trees.tree_map(lambda leaf: _owned(leaf, taken), g)
    if g is not None and id(g) in taken and hasattr(g, "copy"):
        g = g.copy()
    taken.add(id(g))
    return g


def _own(g, args):
    """``g``, or a copy where it is one of the arguments: the derivative of ``x * y`` with
    respect to ``x`` may be ``y`` itself, and a gradient never shares the caller's memory."""
    for a in args:
        if g is a and hasattr(a, "copy"):  # numbers are immutable: shared or not, the same
            return a.copy()
    return g


def _apart(grads: tuple) -> tuple:
    """``grads`` with each array (a leaf of a container too) that is an earlier one copied:
    d/dx and d/dy of ``np.sum(np.sin(x + y))`` are one array, and the caller owns each
    gradient, to change in place without changing another."""
    seen: set[int] = set()

    def one(g):
        if g is None or isinstance(g, (float, int, complex, np.generic)) or \
                not hasattr(g, "copy"):
            return g  # numbers are immutable: shared or not, the same
        if id(g) in seen:
            return g.copy()
        seen.add(id(g))
        return g

    def each(g):
        items = trees.flat_items(g) if type(g) is dict else None  # (no optree walk)
        return {k: one(v) for k, v in items} if items is not None else trees.tree_map(one, g)

    return tuple(each(g) for g in grads)


def _seed(out):
    if isinstance(out, (float, int)):
        return 1.0
    if isinstance(out, np.generic):  # a numpy scalar: 1 of its dtype, without an array
        return out.dtype.type(1.0)
    return np.ones_like(out)


def _is_complex(x) -> bool:
    return isinstance(x, complex) or getattr(getattr(x, "dtype", None), "kind", "") == "c"


def _refuse_complex(fn, args) -> None:
    """srcdiff's rules are real rules: a complex value anywhere in the arguments (in ``wrt`` or
    not) could make an intermediate complex under a real output (``np.abs(x * y)``), whose
    gradient they would get wrong. Refused, never differentiated."""
    leaves, walked = [], []
    for arg in args:
        items = trees.flat_items(arg)
        if items is None:
            trees.register_dataclasses(arg)  # (dataclasses: see _has_float_leaf)
            walked.append(arg)
        else:  # a dict or list of arrays and numbers: its values are its leaves
            leaves += (v for _, v in items)
    if walked:
        leaves += optree.tree_leaves(walked, namespace=trees.NAMESPACE)
    for leaf in leaves:
        if _is_complex(leaf):
            raise GradientTypeError(
                f"srcdiff does not differentiate complex numbers, and {fn.__qualname__} was "
                f"called with a complex value ({type(leaf).__name__}"
                f"{' of dtype ' + str(leaf.dtype) if hasattr(leaf, 'dtype') else ''}); pass "
                "real and imaginary parts as separate real arrays.")


_PLAIN = frozenset({float, int, bool, str, type(None)})


def _maybe_complex(x) -> bool:
    """Whether ``x`` is complex or may hold a complex value (a container or an object: the
    general path looks inside); cheap for arrays and numbers (~0.1 us)."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None:
        return getattr(dtype, "kind", "c") == "c"
    return type(x) not in _PLAIN


def _check_real(fn, g) -> None:
    """A gradient-only derivative has no value to check: a complex gradient says it was
    complex (the only way a provable scalar is not a real one)."""
    if isinstance(g, complex) or getattr(getattr(g, "dtype", None), "kind", "f") == "c":
        raise GradientTypeError(
            f"grad needs {fn.__qualname__} to return a real floating-point scalar, but it "
            "returned a complex one; differentiate its real part (np.real(...)) or its "
            "absolute value.")


def _check_scalar(fn, out) -> None:
    if isinstance(out, (float, int)) and not isinstance(out, bool):
        return
    if _is_float(out) and np.ndim(out) == 0:
        return
    if hasattr(out, "shape"):
        detail = f"an array of shape {tuple(out.shape)}" if np.ndim(out) else f"a {out.dtype} value"
    else:
        detail = f"a {type(out).__name__}"
    raise GradientTypeError(
        f"grad needs {fn.__qualname__} to return a floating-point scalar, but it returned "
        f"{detail}. For a non-scalar output use srcdiff.vjp(f, *args) and pass a cotangent to "
        "the pullback; or reduce the output (np.sum, np.mean) inside the function.")


def _resolve_wrt(fn, wrt) -> tuple[tuple[str, ...], bool]:
    """``wrt`` as parameter names, and whether one gradient (not a tuple) is returned."""
    params = parameters(fn)
    single = not isinstance(wrt, (tuple, list))
    names = []
    for item in ((wrt,) if single else wrt):
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise SrcdiffError(f"wrt entries are parameter positions or names, not {item!r}")
        if isinstance(item, int):
            if not -len(params) <= item < len(params):
                raise SrcdiffError(f"wrt={item} is out of range: {fn.__qualname__} has "
                                   f"{len(params)} parameters {params}")
            item = params[item]
        elif item not in params:
            raise SrcdiffError(f"wrt={item!r} is not a parameter of {fn.__qualname__}; its "
                               f"parameters are {params}")
        names.append(item)
    if len(set(names)) != len(names):
        raise SrcdiffError(f"wrt names a parameter twice: {tuple(names)}")
    if not names:
        raise SrcdiffError("wrt is empty: name at least one parameter to differentiate")
    return tuple(names), single


class _Caller:
    """Binds a call's arguments to the function's parameters, in parameter order."""

    def __init__(self, fn):
        self.fn = fn
        self.signature = inspect.signature(fn)
        self.params = parameters(fn)
        kinds = {p.kind for p in self.signature.parameters.values()}
        if inspect.Parameter.VAR_POSITIONAL in kinds or inspect.Parameter.VAR_KEYWORD in kinds:
            self.params = None  # validate reports *args/**kwargs with the source position

    def bind(self, args, kwargs) -> tuple:
        if self.params is None:
            return args  # *args/**kwargs: compiling reports them with their position
        if not kwargs and len(args) == len(self.params):
            return args
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments[p] for p in (self.params or ()))


# ----- grad and value_and_grad -----


@dataclasses.dataclass(frozen=True)
class GradSpec:
    """What a gradient object differentiates and returns, for the code that builds on it
    (``srcdiff.jit``, second order): ``fn`` with respect to ``wrt`` (``index``: their
    positions), one bare gradient (``single``) or a tuple, the value too (``with_value``),
    ``fn`` returning ``(loss, aux)`` (``has_aux``)."""

    fn: object
    wrt: tuple[str, ...]
    index: tuple[int, ...]
    single: bool
    with_value: bool
    has_aux: bool

    @property
    def gradient_only(self) -> bool:
        """Only the gradient is wanted (``srcdiff.grad`` without has_aux)."""
        return not self.with_value and not self.has_aux


class GradFunction:
    """The gradient of ``fn``: call it like ``fn``; ``.source`` is the generated code."""

    def __init__(self, fn, wrt=0, *, with_value: bool = False, has_aux: bool = False):
        if not callable(fn):
            raise SrcdiffError(f"srcdiff.grad expects a function, got {fn!r}; to choose the "
                               "argument write srcdiff.grad(f, wrt=...) or @srcdiff.grad(wrt=...)")
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._wrt, self._single = _resolve_wrt(fn, wrt)
        self._caller = _Caller(fn)
        self._with_value = with_value
        self._has_aux = has_aux
        self._index = tuple(parameters(fn).index(n) for n in self._wrt)
        self._gradient = not has_aux  # grad and value_and_grad: the seed is 1 (seed.py)
        self._plain = None  # (code, parameter count) of the function the calls below are for
        # a plain call's key (see _call_key) -> (function, gradient only, in place, dims, float64)
        self._calls: dict = {}
        self._functions: dict = {}  # the same keys -> function, for gradient-only variants
        self._patterns: set = set()  # the shape patterns compiled for (at most _PATTERNS)
        # .source shows the variant last called: a key of _calls, or (containers, in place, dims)
        self._last = None
        self._shown = ((), False, None, False)
        self._fast = None  # the plain call of gradient-only derivatives: see _install_fast
        # calls with containers of arrays: _tree_key -> (code, function, gradient only, shown)
        self._trees: dict = {}

    @property
    def wrt(self) -> tuple[str, ...]:
        return self._wrt

    @property
    def spec(self) -> GradSpec:
        """What this gradient differentiates and returns (see :class:`GradSpec`)."""
        return GradSpec(self._fn, self._wrt, self._index, self._single, self._with_value,
                        self._has_aux)

    @property
    def source(self) -> str:
        """The generated Python source of the forward pass and its pullback."""
        entry = self._calls.get(self._last)
        containers, in_place, dims, float64 = ((), *entry[2:]) if entry is not None \
            else self._shown
        return derivative(self._fn, self._wrt, self._has_aux, containers,
                          self._gradient, in_place, self._with_value, dims, float64).source

    def __call__(self, *args, **kwargs):
        return self._other_call(args, kwargs)

    def _other_call(self, args, kwargs):
        """A call the written-out one (``_install_fast``) does not take."""
        if not kwargs and self._plain is not None:
            return self._plain_call(args)
        if not kwargs and self._trees:
            return self._tree_call(args)
        return self._general_call(args, kwargs)

    def _pattern(self, args) -> tuple | None:
        """The shape pattern to compile for (``srcdiff.dims``), None for the general
        variant: for container arguments, and for patterns beyond the first ``_PATTERNS``
        (a function called with ever new ranks and equalities compiles only so often)."""
        found = dims.pattern(args, _PLAIN, dims.cuts(self._fn))
        if found is None or found in self._patterns:
            return found
        if len(self._patterns) >= _PATTERNS:
            return None
        self._patterns.add(found)
        return found

    def _general_call(self, args, kwargs):
        args = self._caller.bind(args, kwargs)
        containers = tuple(n for n, i in zip(self._wrt, self._index) if trees.is_container(args[i]))
        _refuse_complex(self._fn, args)
        in_place = _large(args)
        plain = not containers and self._caller.params is not None
        # (containers too: a dict or list of arrays has a tree of their shapes, dims.Tree)
        pattern = self._pattern(args) if self._caller.params is not None else None
        float64 = pattern is not None and float64_call(args)
        compiled = derivative(self._fn, self._wrt, self._has_aux, containers, self._gradient,
                              in_place, self._with_value, pattern, float64)
        function, gradient_only = compiled.function, compiled.gradient_only
        self._last, self._shown = None, (containers, in_place, pattern, float64)
        tree_key = _tree_key(args) if containers and pattern is not None and not kwargs and \
            len(self._trees) < _PLAIN_CALLS else None  # checked below: the next call of
        remember = tree_key is not None and tree_key not in self._trees  # it skips the checks
        if plain:
            code = self._fn.__code__
            if self._plain is None or self._plain[0] is not code or \
                    len(self._calls) >= _PLAIN_CALLS:
                self._calls, self._functions = {}, {}  # (a new __code__: none of them holds)
                self._install_fast(None)
            self._plain = (code, len(self._caller.params))
            key = _call_key(args)
            self._calls[key] = (function, gradient_only, in_place, pattern, float64)
            if gradient_only:
                self._functions[key] = function
                if self._fast is None:
                    self._install_fast(self._fast_call(self._functions, key, compiled.fresh))
            self._last = key
        for name, i in zip(self._wrt, self._index):
            if not _is_float(args[i]):
                _check_differentiable(self._fn, name, args[i])
        if remember:
            self._trees[tree_key] = (self._fn.__code__, function, gradient_only, self._shown)
        out, grads = self._run(function, gradient_only, args)
        if gradient_only:
            for g in grads:
                _check_real(self._fn, g)
        grads = _apart(tuple(_own(_as_gradient(g, args[i]), args)
                             for g, i in zip(grads, self._index)))
        return self._result(out, grads)

    def _run(self, function, gradient_only: bool, args) -> tuple:
        """``(value, gradients)`` of a compiled derivative: the value None for a gradient-only
        one without it, the gradients a tuple, one per ``wrt`` parameter."""
        if gradient_only:
            out, grads = function(*args) if self._with_value else (None, function(*args))
        else:
            out, pullback = function(*args)
            loss = out[0] if self._has_aux else out
            _check_scalar(self._fn, loss)
            grads = pullback(_seed(loss))
        # (the derivative returns a bare adjoint for one parameter)
        return out, (grads,) if len(self._wrt) == 1 else grads

    def _result(self, out, grads: tuple):
        """What the call returns, from the value and one gradient per ``wrt`` parameter."""
        if self._single:
            grads = grads[0]
        if self._with_value:
            return out, grads  # with has_aux, out is (loss, aux)
        return (grads, out[1]) if self._has_aux else grads

    def _tree_call(self, args):
        """The call of a function given dicts, lists or tuples of arrays (a model's
        parameters), arguments whose kinds, shapes and dtypes (``_tree_key``) a general call
        has already checked: the derivative it compiled, without those checks again."""
        entry = self._trees.get(_tree_key(args))
        if entry is None or entry[0] is not self._fn.__code__:
            return self._general_call(args, {})
        _, function, gradient_only, self._shown = entry
        self._last = None
        out, grads = self._run(function, gradient_only, args)
        taken = {id(leaf) for a in args for leaf in (a.values() if type(a) is dict else a
                                                     if type(a) in (list, tuple) else (a,))}
        return self._result(out, tuple(_tree_gradient(self._fn, g, args[i], taken, gradient_only)
                                       for g, i in zip(grads, self._index)))

    def _plain_call(self, args):
        """The call for the common case, with every check of the general path but cheaper:
        each ``wrt`` argument a Python float or a floating-point numpy array, all arguments
        given by position, a derivative compiled for arguments of these kinds and shapes."""
        code, nargs = self._plain
        if len(args) != nargs or self._fn.__code__ is not code:
            return self._general_call(args, {})
        key = _call_key(args)
        entry = self._calls.get(key)
        if entry is None:  # another variant (large arrays, another pattern), not compiled yet
            return self._general_call(args, {})
        function, gradient_only = entry[0], entry[1]
        for i in self._index:
            x = args[i]
            if type(x) is not float and type(x) not in _NUMPY_FLOATS and \
                    (type(x) is not np.ndarray or x.dtype.kind != "f"):
                return self._general_call(args, {})
        for x in args:  # a complex value outside wrt, maybe in a container: refused there
            if _maybe_complex(x):
                return self._general_call(args, {})
        self._last = key
        if gradient_only:
            out, grads = function(*args) if self._with_value else (None, function(*args))
        else:
            out, pullback = function(*args)
            loss = out[0] if self._has_aux else out
            seed = _SEEDS.get(type(loss))
            if seed is None:  # a 0-d array, an int, or not a scalar at all: the general checks
                _check_scalar(self._fn, loss)
                seed = _seed(loss)
            grads = pullback(seed)
        if len(self._index) == 1:  # the derivative returns a bare adjoint for one parameter
            grads = self._plain_gradient(grads, args[self._index[0]], args, gradient_only)
            if not self._single:
                grads = (grads,)  # wrt=("x",): a tuple of one
        else:
            grads = _apart(tuple([self._plain_gradient(g, args[i], args, gradient_only)
                                  for g, i in zip(grads, self._index)]))
        if self._with_value:
            return out, grads
        return (grads, out[1]) if self._has_aux else grads

    def _fast_call(self, functions, first=None, fresh=()):
        """``_plain_call`` for gradient-only derivatives (``functions``: by ``_call_key``),
        written out for this signature (see :mod:`srcdiff.fast_call`) as a ``__call__``
        that hands other arguments to ``_other_call``; the key ``first`` is tested first, its
        function's gradients ``fresh`` (``Derivative.fresh``) checked for dtype and type only.
        Per call ~0.5 µs instead of ~3."""
        return specialised_call(self._fn, functions, len(self._caller.params), self._index,
                                self._single, GradFunction._other_call, self._plain_gradient,
                                _maybe_complex, _NUMPY_FLOATS, _PLAIN, self, self._with_value,
                                first, fresh)

    def _install_fast(self, call):
        """Make ``call`` (or, for None, the general one) this gradient's ``__call__``: Python
        finds ``__call__`` on the type, so the written-out call lives in a class of this
        gradient's own (a frame and the arguments' tuple less than a call through it)."""
        self._fast = call
        if call is None:
            self.__class__ = GradFunction
        else:
            self.__class__ = type("GradFunction", (GradFunction,), {
                "__call__": call, "__module__": GradFunction.__module__,
                "__qualname__": GradFunction.__qualname__, "__doc__": GradFunction.__doc__})

    def _plain_gradient(self, g, x, args, gradient_only):
        """``_as_gradient(g, x)``, without a copy for a fresh array of ``x``'s dtype and shape."""
        if type(g) is np.ndarray:
            if type(x) is np.ndarray and g.base is None and g.dtype == x.dtype and \
                    g.shape == x.shape and g.flags.writeable:
                for a in args:  # d/dx sum(x * y) may be y itself: a gradient is never an argument
                    if g is a:
                        return g.copy()
                return g  # fresh, of the argument's dtype and shape: as it is
        elif type(x) is float and (type(g) is np.float64 or type(g) is float):
            return float(g)  # what _as_gradient gives a Python float
        if gradient_only:
            _check_real(self._fn, g)
        return _own(_as_gradient(g, x), args)

    def explain(self, *args, shapes=None, **kwargs):
        """What srcdiff knows about this gradient, measured on these arguments (or on random
        ones of ``shapes``): see :func:`srcdiff.explain`. ``print(dloss.explain(w, x))``"""
        from .tools.explain import explain

        return explain(self, None, *args, shapes=shapes, **kwargs)

    def __repr__(self) -> str:
        kind = "value_and_grad" if self._with_value else "grad"
        return f"<srcdiff.{kind} of {self._fn.__qualname__} wrt {self._wrt}>"

    def __reduce__(self):
        """Pickled by name where its module holds it (``@srcdiff.grad`` on a def), else as the
        function, grad's options and the source lines the other side may lack; the other side
        compiles again (see :mod:`srcdiff.portable`)."""
        name = portable.by_name(self)
        if name is not None:
            return name
        wrt = self._wrt[0] if self._single else self._wrt
        return _unpickle, (self._fn, wrt, self._with_value, self._has_aux,
                           portable.carried(self._fn))


def _unpickle(fn, wrt, with_value, has_aux, carried) -> GradFunction:
    portable.restore(fn, carried)
    return GradFunction(fn, wrt, with_value=with_value, has_aux=has_aux)


def grad(fn=None, wrt=0, has_aux: bool = False):
    """The gradient of a scalar-valued ``fn`` with respect to the parameters in ``wrt``.

    ``wrt`` is a parameter position or name, or a tuple of them: an int or a name gives one
    gradient, a tuple gives a tuple. Use as ``grad(f)``, ``@grad`` or ``@grad(wrt=...)``.
    With ``has_aux=True``, ``fn`` returns ``(loss, aux)`` and the call ``(gradient, aux)``.

    >>> @grad(wrt=("w", "b"))
    ... def loss(w, b, x): return np.sum((x * w + b) ** 2)
    >>> dw, db = loss(1.0, 0.0, np.ones(3))  # doctest: +SKIP
    """
    if fn is None:
        return functools.partial(grad, wrt=wrt, has_aux=has_aux)
    if _is_bound_method(fn):
        return _MethodGrad(fn, wrt, has_aux=has_aux)
    return GradFunction(fn, wrt, has_aux=has_aux)


def value_and_grad(fn=None, wrt=0, has_aux: bool = False):
    """Like :func:`grad`, but the call returns ``(value, gradient)``; with ``has_aux=True``,
    ``((loss, aux), gradient)``.

    >>> value, dw = value_and_grad(loss)(w, b, x, y)  # doctest: +SKIP
    """
    if fn is None:
        return functools.partial(value_and_grad, wrt=wrt, has_aux=has_aux)
    if _is_bound_method(fn):
        return _MethodGrad(fn, wrt, with_value=True, has_aux=has_aux)
    return GradFunction(fn, wrt, with_value=True, has_aux=has_aux)


def _is_bound_method(fn) -> bool:
    return inspect.ismethod(fn) and inspect.isfunction(fn.__func__)


class _MethodGrad:
    """The gradient of a bound method (``srcdiff.grad(model.loss)``): its function's gradient,
    called with the object first; ``wrt`` counts the method's own parameters, and the object's
    arrays are constants."""

    def __init__(self, method, wrt=0, **options):
        self._self = method.__self__
        shifted = tuple(w + 1 if isinstance(w, int) else w for w in
                        (wrt if isinstance(wrt, tuple) else (wrt,)))
        self._grad = GradFunction(method.__func__, shifted if isinstance(wrt, tuple) else
                                  shifted[0], **options)

    def __call__(self, *args, **kwargs):
        return self._grad(self._self, *args, **kwargs)

    @property
    def source(self) -> str:
        return self._grad.source


# ----- vjp -----


def vjp(fn, *args):
    """Run ``fn(*args)`` and return ``(out, pullback)``; ``pullback(v)`` gives one gradient
    per positional argument (``None`` for arguments that are not floating point).

    >>> out, pullback = vjp(np_function, x, w)  # doctest: +SKIP
    >>> dx, dw = pullback(np.ones_like(out))     # doctest: +SKIP
    """
    if _is_bound_method(fn):  # model.loss: the object's arrays are constants
        out, pullback = vjp(fn.__func__, fn.__self__, *args)
        return out, lambda v: pullback(v)[1:]
    caller = _Caller(fn)
    args = caller.bind(args, {})
    _refuse_complex(fn, args)
    params = parameters(fn)
    floats = tuple(i for i, a in enumerate(args) if _is_float(a) or trees.is_container(a)
                   and _has_float_leaf(a))
    wrt = tuple(params[i] for i in floats)
    containers = tuple(params[i] for i in floats if trees.is_container(args[i]))
    if not wrt:
        return fn(*args), _NoGradPullback(len(args))
    out, pullback = derivative(fn, wrt, False, containers).function(*args)
    return out, _Pullback(fn, pullback, out, args, floats)


class _Pullback:
    """``pullback(v)``: the vector-Jacobian product; may be called any number of times.

    ``v`` has the structure of the output: an array (or float) of its shape, a tuple of those
    for a tuple output, a dict with the same keys for a dict output; ``None`` stands for zeros.
    """

    def __init__(self, fn, pullback, out, args, floats):
        self._fn, self._pullback, self._out, self._args, self._floats = fn, pullback, out, args, floats

    def __call__(self, v):
        grads = self._pullback(_cotangent(self._fn, v, self._out, "output"))
        if len(self._floats) == 1:
            grads = (grads,)
        result = [None] * len(self._args)
        for g, i in zip(grads, self._floats):  # never v itself (d/dx of x + y is v) nor an argument
            result[i] = _own(_as_gradient(g, self._args[i]), (*self._args, v))
        return _apart(tuple(result))


def _cotangent(fn, v, out, where: str):
    """``v`` checked against the output's structure and shapes; ``None`` leaves become zeros."""
    if isinstance(out, tuple):
        if not isinstance(v, (tuple, list)) or len(v) != len(out):
            raise GradientTypeError(f"{fn.__qualname__} returned a tuple of {len(out)}; pass a "
                                    f"cotangent tuple of {len(out)} (got {type(v).__name__})")
        return tuple(_cotangent(fn, a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(v, out)))
    if isinstance(out, dict):
        if not isinstance(v, dict) or set(v) != set(out):
            raise GradientTypeError(f"{fn.__qualname__} returned a dict with keys {sorted(out)}; "
                                    "pass a cotangent dict with the same keys")
        return {k: _cotangent(fn, v[k], out[k], f"{where}[{k!r}]") for k in out}
    if v is None:
        return np.zeros_like(out) if hasattr(out, "shape") else 0.0
    if np.shape(v) != np.shape(out):
        raise GradientTypeError(
            f"the cotangent for {where} has shape {np.shape(v)}, but {fn.__qualname__} returned "
            f"shape {np.shape(out)} there; pass one value per output element")
    if hasattr(out, "shape") and not isinstance(out, (np.ndarray, np.generic)):
        return _device_cotangent(fn, v, out, where)
    return v


def _device_cotangent(fn, v, out, where: str):
    """A cotangent for an output of another array library (CuPy): a number is made into an
    array of that library; a numpy array is refused rather than copied to the device."""
    if isinstance(v, (float, int, np.generic)) or type(v) is np.ndarray and v.ndim == 0:
        value = v.item() if isinstance(v, (np.ndarray, np.generic)) else v
        dtype = out.dtype if np.issubdtype(out.dtype, np.floating) else np.float64
        return np.full_like(out, value, dtype=dtype)
    if isinstance(v, np.ndarray) and not is_dask(out):  # Dask takes numpy operands lazily
        raise GradientTypeError(
            f"the cotangent for {where} is a numpy array, but {fn.__qualname__} returned a "
            f"{type(out).__module__}.{type(out).__name__} there; pass the cotangent in the same "
            "array library (for CuPy: cupy.asarray(v)); srcdiff does not copy it to the device")
    return v


class _NoGradPullback:
    def __init__(self, n):
        self._n = n

    def __call__(self, v):
        return (None,) * self._n


# ----- custom adjoints -----


def adjoint(*primitives, broadcasting: bool = False):
    """Give srcdiff the adjoint of a function it cannot read (a C function, a compiled
    library) or should not (a hand-written, numerically better rule for your own function).

    The decorated rule takes ``g`` (the adjoint of the output), optionally ``ans`` (the
    output), then the function's array arguments (operands), then its options with
    defaults; it returns one adjoint per operand (``None`` for zero). Generated code calls
    it by its name, so define it where the differentiated function can see it.

    >>> import math
    >>> @adjoint(math.lgamma)
    ... def lgamma_adjoint(g, x):
    ...     return g * digamma(x)  # doctest: +SKIP
    """
    from srcdiff.runtime import adjoint as register

    return register(*primitives, broadcasting=broadcasting, checked=True)
