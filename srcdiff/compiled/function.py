"""``srcdiff.jit``: a gradient (or a plain function) run as one numba-compiled function.

>>> import numpy as np, srcdiff
>>> @srcdiff.jit
... @srcdiff.grad
... def loss(x):
...     return np.sum(np.tanh(x) ** 2)
>>> loss(np.ones(3))  # doctest: +SKIP
array([0.41997434, 0.41997434, 0.41997434])
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import threading
import warnings

import numpy as np

from srcdiff import api
from srcdiff.runtime.trees import is_container

from . import kernel as kernels
from . import trees
from .loader import Unsupported, load
from .locate import JitError, located

__all__ = ["jit", "JitFunction", "JitFallbackWarning"]

_OK_CHARS = frozenset(np.typecodes["AllInteger"] + np.typecodes["Float"] + "?") - {"e"}
# argument dtypes a kernel takes: bool, integers, float32/64 (numba has no float16)


_LOOP_UP_TO = 2048  # elements: above, the array kernel, whose transcendental functions are
# numpy's vectorised loops, is faster than one loop calling libm per element (W5: 10**6);
# a loop of arithmetic alone runs at any size
_SLOW = object()  # the fast call's answer where the arguments need the general path


class JitFallbackWarning(UserWarning):
    """``srcdiff.jit(..., fallback=True)`` runs the numpy derivative instead; says why."""


def jit(target=None, *, fallback: bool = False):
    """``target`` (``srcdiff.grad``/``value_and_grad`` of a function, or a plain function)
    compiled with numba in nopython mode: the forward and backward pass, loops and tapes
    included, as one machine-code function, cached on disk. Same call, same results.

    Where something cannot compile, a ``JitError`` names your line and the construct; with
    ``fallback=True`` the numpy derivative runs instead, after a ``JitFallbackWarning``.

    >>> dloss = srcdiff.jit(srcdiff.grad(loss, wrt=("w", "b")))  # doctest: +SKIP
    >>> dw, db = dloss(w, b, x, y)                                 # doctest: +SKIP
    """
    if target is None:
        return functools.partial(jit, fallback=fallback)
    try:
        import numba  # noqa: F401
    except ImportError:
        raise JitError("srcdiff.jit needs numba: pip install 'srcdiff[jit]' (or pip install "
                       "numba)") from None
    if isinstance(target, JitFunction):
        return target
    return JitFunction(target, fallback=fallback)


class JitFunction:
    """The compiled twin of a gradient or a function; ``.source`` is the readable numpy
    derivative, ``.kernel_source`` what numba compiled (after the first call)."""

    def __init__(self, target, *, fallback: bool = False):
        if isinstance(target, api._MethodGrad):  # noqa: SLF001
            raise JitError("srcdiff.jit does not compile the gradient of a bound method yet; "
                           "differentiate a function of the arrays instead")
        self._target = target
        self._fallback = fallback
        self._grad = target if isinstance(target, api.GradFunction) else None
        if self._grad is None and not inspect.isfunction(target):
            raise JitError(f"srcdiff.jit takes srcdiff.grad(f), srcdiff.value_and_grad(f) or a "
                           f"plain Python function, not {target!r}")
        self._spec = self._grad.spec if self._grad else None  # what the gradient returns
        fn = self._spec.fn if self._grad else target
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._caller = api._Caller(fn)  # noqa: SLF001
        self._kernel = None     # kernels.Kernel, built at the first call
        self._dispatcher = None
        self._text = None       # the kernel file's text, as numba saw it
        self._path = None
        self._refused = None    # the JitError that made this function fall back
        self._kinds: dict = {}  # per argument signature: the numpy path's value type and seed
        self._fast = None       # the call for arguments by position of a known signature
        self._lock = threading.RLock()
        self._loop_text = None  # the one-loop kernel's file text (loops.py), where there is one
        self._variants: dict = {}  # container arguments: per structure, the JitFunction of
        # the twin over their leaves (trees.py)
        self._shown = None  # that JitFunction, where the last call had containers

    # ----- what the user reads -----

    @property
    def source(self) -> str:
        """The readable numpy derivative (the reference the kernel is tested against); after
        a call with containers, the derivative of the twin over their leaves (trees.py)."""
        if self._shown is not None:
            return self._shown.source
        return self._grad.source if self._grad else inspect.getsource(self._fn)

    @property
    def kernel_source(self) -> str | None:
        """The source numba compiled: the derivative with its pullback inlined and its
        elementwise chains fused; ``None`` before the first call."""
        return self._text if self._shown is None else self._shown.kernel_source

    @property
    def loop_source(self) -> str | None:
        """The kernel as one loop over the elements, where it is elementwise throughout
        (run when the array arguments share one shape); else None."""
        return self._loop_text if self._shown is None else self._shown.loop_source

    @property
    def kernel_path(self) -> str | None:
        """The kernel's file; numba's cache of its machine code sits beside it."""
        return self._path if self._shown is None else self._shown.kernel_path

    def __repr__(self) -> str:
        return f"<srcdiff.jit of {self._target!r}>"

    # ----- calls -----

    def __call__(self, *args, **kwargs):
        if self._fast is not None and not kwargs:
            result = self._fast(args)
            if result is not _SLOW:
                return result
        if self._refused is not None:
            return self._target(*args, **kwargs)
        args = self._caller.bind(args, kwargs)
        key = _signature(args)
        if key not in self._kinds and not _valid(args):
            if any(is_container(a) for a in args):
                return self._tree_call(args)
            return self._refuse(located(
                f"srcdiff.jit takes numbers, numpy arrays of booleans, integers or floats, and "
                f"containers of them; {self._fn.__qualname__} was called with "
                f"{_describe(args)}. Call it without srcdiff.jit", self._fn, "", None), args, kwargs)
        self._shown = None
        kind = self._kinds.get(key)
        if kind is None:
            with self._lock:  # one compile per signature, whatever the threads
                try:
                    kind = self._kinds.get(key) or self._first_call(args, kwargs, key)
                except JitError as exc:
                    return self._refuse(exc, args, kwargs)
        if self._grad is None:
            return self._dispatcher(*args)
        if self._fast is None and self._caller.params is not None and not self._spec.has_aux:
            self._fast = self._fast_call()
        return self._finish(_pick(kind[4], kind, args)(*args, *kind[1]), args, kind[0])

    def _fast_call(self):
        """``__call__`` for positional arguments of a signature already compiled, as a
        closure over what it needs (~1 us over numba's own dispatch); ``_SLOW`` otherwise."""
        kinds, nargs = self._kinds, len(self._caller.params)
        grad, with_value = self._grad, self._kernel.with_value
        index, single, valued = grad.spec.index, grad.spec.single, grad.spec.with_value
        one = len(index) == 1
        ndarray, signature, gradient, pick = np.ndarray, _signature, _gradient, _pick

        def call(args):
            if len(args) != nargs:
                return _SLOW
            kind = kinds.get(signature(args))
            if kind is None:
                return _SLOW
            result = (pick(kind[4], kind, args) if kind[2] else kind[4])(*args, *kind[1])
            value, grads = result if with_value else (None, result)
            if one:
                x = args[index[0]]
                g = grads
                if not (type(g) is ndarray and type(x) is ndarray and g.dtype == x.dtype
                        and g.shape == x.shape):
                    g = gradient(g, x, args)
                grads = g if single else (g,)
            else:
                grads = tuple([gradient(g, args[i], args) for g, i in zip(grads, index)])
            if valued:
                value_type = kind[0]
                return (value_type(value) if value_type in (float, np.float64, np.float32)
                        else value), grads
            return grads

        return call

    def _tree_call(self, args):
        """A call with container arguments: their leaves to the JitFunction of the twin
        over them made for this structure (trees.py), the gradients rebuilt after."""
        leaves, key = trees.flatten(args)
        inner = self._variants.get(key)
        if inner is None:
            with self._lock:
                try:
                    inner = self._variants.get(key) or self._variant(args, leaves, key)
                except JitError as exc:
                    return self._refuse(exc, args, {})
        try:
            result = inner(*leaves)
        except JitError as exc:  # the first call per leaf types compiles: the user's line
            return self._refuse(exc, args, {})
        self._shown = inner
        if self._grad is None:
            return result
        spec = self._spec
        if spec.with_value:
            value, grads = result
        elif spec.has_aux:
            grads, aux = result
        else:
            grads = result
        grads = trees.rebuild(grads, key, spec.index)
        grads = grads[0] if spec.single else grads
        if spec.with_value:
            return value, grads
        return (grads, aux) if spec.has_aux else grads

    def _variant(self, args, leaves, key) -> JitFunction:
        """The JitFunction of ``self``'s twin over the leaves of the containers ``args``."""
        if self._grad is not None:
            self._grad(*args)  # the numpy path first: its errors are the user's errors
        if self._caller.params is None:
            raise located("srcdiff.jit cannot compile a function of *args or **kwargs with a "
                          "container argument; name its parameters", self._fn, "", None)
        bad = [leaf for leaf in leaves if not _valid((leaf,))]
        if bad:
            raise located(
                f"srcdiff.jit takes containers of numbers and numpy arrays of booleans, "
                f"integers or floats; {self._fn.__qualname__} was called with a container "
                f"holding {_describe(bad)}. Take that value out of the container (a constant "
                "of your module, or an argument the function does not differentiate), or call "
                "it without srcdiff.jit", self._fn, "", None)
        twin, tree = trees.flat_function(self._fn, args, self._caller.params)
        if self._grad is None:  # numba keeps one cache index per name and line, which two
            # processes saving at once can corrupt (the twins' race): the twin gets its own
            twin.__qualname__ = f"{self._fn.__qualname__}.leaves_{trees.digest(twin)}"
            inner = JitFunction(twin)
        else:
            spec = self._spec
            wrt = tuple(leaf.name for p in spec.wrt for leaf in trees.leaves_of(tree[p])
                        if leaf.is_float or isinstance(tree[p], trees.Leaf))
            inner = JitFunction(api.GradFunction(twin, wrt, with_value=spec.with_value,
                                                 has_aux=spec.has_aux))
        self._variants[key] = inner
        return inner

    def _refuse(self, error: JitError, args, kwargs):
        if not self._fallback:
            raise error
        warnings.warn(f"srcdiff.jit runs the numpy derivative of {self._fn.__qualname__}: "
                      f"{error}", JitFallbackWarning, stacklevel=3)
        self._refused = error
        return self._target(*args)

    def _first_call(self, args, kwargs, key):
        """Compile for these argument types; record the numpy path's value type and seed."""
        if self._grad is None:
            self._load_plain()
            kind = (None, (), None, ((), 0), self._dispatcher)
        else:
            reference = self._grad(*args)  # the numpy path: its errors are the user's errors
            aux = self._spec.has_aux
            self._load_derivative()
            value = reference[0] if self._spec.with_value else None
            if aux:  # value_and_grad: ((value, aux), grads); grad: (grads, aux)
                value, aux = value if self._spec.with_value else (None, reference[1])
            if self._kernel.seeded and value is None:  # grad of a vjp form: the output's type
                value = self._derivative.function(*args)[0]
                value = value[0] if self._spec.has_aux else value
            seed = (api._seed(value),) if self._kernel.seeded else ()  # noqa: SLF001
            value = value if self._spec.with_value else None
            dispatcher = self._single(args)
            value_type = type(value) if value is not None else None
            if self._spec.has_aux:  # the numpy path's aux: the types of its leaves
                value_type = (value_type, _aux_types(aux, self._kernel.aux))
            kind = (value_type, seed, *self._loop(args, seed, dispatcher), dispatcher)
        try:
            kind[4].compile(tuple(self._numba_type(a) for a in (*args, *kind[1])))
        except Exception as exc:  # numba's own errors, made readable and located
            if not _is_numba_error(exc):
                raise
            raise self._numba_error(exc) from None
        self._kinds[key] = kind
        return kind

    def _single(self, args):
        """The dispatcher for these arguments: the float32 kernel (``kernel.single``) where
        every float array is float32, else the kernel itself."""
        floats = [a.dtype for a in args if type(a) is np.ndarray and a.dtype.kind == "f"]
        if not floats or any(d != np.float32 for d in floats):
            return self._dispatcher
        try:
            dispatcher, _, _ = load(kernels.single(self._kernel), self._names)
        except Unsupported:
            return self._dispatcher
        return dispatcher

    def _loop(self, args, seed, kernel_dispatcher) -> tuple:
        """``(dispatcher, positions)`` of the one-loop kernel for these argument types
        (``loops.py``) and the positions of the array arguments; ``(None, ())`` where the
        kernel is not elementwise throughout, or the loop does not compile (the array
        kernel runs: compiled all the same)."""
        params = self._caller.params
        arrays = frozenset(p for p, a in zip(params, args) if type(a) is np.ndarray)
        roles = ((None,) if self._kernel.with_value else ()) + self._spec.wrt
        kernel = self._kernel if kernel_dispatcher is self._dispatcher else kernels.single(self._kernel)
        loop = kernels.loop(kernel, arrays, roles, _resolver(_namespace(self._fn)))
        if loop is None:
            return None, ((), 0)
        try:
            dispatcher, _, text = load(loop, self._names)
            dispatcher.compile(tuple(self._numba_type(a) for a in (*args, *seed)))
        except Exception as exc:  # noqa: BLE001  an optimisation: the array kernel stays
            if not (_is_numba_error(exc) or isinstance(exc, Unsupported)):
                raise
            return None, ((), 0)
        self._loop_text = text
        from srcdiff.runtime.numba_twins import SIMD
        from srcdiff.runtime.numba_vecmath import VECTORISED

        # one loop at any size, but where it calls a transcendental function per element (libm),
        # up to _LOOP_UP_TO elements only: beyond, numpy's vectorised loops are faster. exp,
        # tanh, sin and cos are vectorised in the loop (numba_vecmath; libm's only in the rerun
        # for far sines): those alone keep the loop at any size
        libm = [name for name in SIMD if name not in VECTORISED]
        transcendental = re.search(rf"\.np\.({'|'.join(libm)})\(", loop.source)
        limit = _LOOP_UP_TO if transcendental else float("inf")
        return dispatcher, (tuple(i for i, a in enumerate(args) if type(a) is np.ndarray), limit)

    @staticmethod
    def _numba_type(value):
        import numba

        return numba.typeof(value)

    def _finish(self, result, args, value_type):
        spec = self._spec
        if self._kernel.with_value:
            value, grads = result
        else:
            value, grads = None, result
        index = spec.index
        if len(index) == 1:
            grads = (grads,)
        grads = tuple([_gradient(g, args[i], args) for g, i in zip(grads, index)])
        if spec.single:
            grads = grads[0]
        if spec.has_aux:  # the kernel's value is (value, aux), for grad too (a vjp form)
            (value, aux), (value_type, aux_types) = value, value_type
            aux = _rebuilt(aux, self._kernel.aux, aux_types)
        if spec.with_value:
            value = (value_type(value) if value_type in (float, np.float64, np.float32)
                     else value)
            return ((value, aux) if spec.has_aux else value), grads
        return (grads, aux) if spec.has_aux else grads

    # ----- building the kernel -----

    def _load_derivative(self):
        if self._dispatcher is not None:
            return
        spec = self._spec
        derivative = self._derivative = api.derivative(
            spec.fn, spec.wrt, spec.has_aux, (), spec.gradient_only)
        namespace = _namespace(self._fn)
        try:
            self._kernel = kernels.build(derivative.source, _resolver(namespace), _derive)
        except kernels.KernelError as exc:
            raise located(f"srcdiff.jit cannot compile the derivative of "
                          f"{self._fn.__qualname__}: {exc}", self._fn, "", None) from None
        namespace = self._names = _with_helpers(namespace, self._kernel, self._fn)
        self._check_twins()
        try:
            self._dispatcher, self._path, self._text = load(self._kernel, namespace)
        except Unsupported as exc:
            line = _first_line_reading(self._kernel.source, exc.name)
            raise located(f"srcdiff.jit cannot compile this line: {exc}", self._fn,
                          self._kernel.source, line) from None

    def _load_plain(self):
        import numba

        if self._dispatcher is None:
            self._dispatcher = numba.njit(cache=True)(self._fn)
            self._text = inspect.getsource(self._fn)

    def _check_twins(self):
        """Every runtime function the kernel calls has a numba twin; else refused here, at
        the user's line, before numba is asked."""
        from srcdiff.runtime.numba_twins import TWINS

        rt = re.escape(self._kernel.rt)  # rt_jit.<name>: kernel.py's own, all twins
        for k, line in enumerate(self._kernel.source.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for name in re.findall(rf"\b{rt}\.(\w+)", line):
                if name not in TWINS and name != "np":  # rt.np.abs: numpy itself
                    raise located(
                        f"srcdiff.jit cannot compile this line yet: its derivative calls "
                        f"rt.{name}, which has no compiled (numba) form; call the gradient "
                        "without srcdiff.jit, or pass fallback=True to run the numpy "
                        "derivative with a warning", self._owner(self._kernel.source, k),
                        self._kernel.source, k)

    def _numba_error(self, exc) -> JitError:
        text = self._text or ""
        lineno = None
        prefix = self._kernel.name if self._kernel is not None else None
        for file, number in re.findall(r'File "([^"]+)", line (\d+)', str(exc)):
            if self._grad is None:
                lineno = int(number)
            elif prefix and os.path.basename(file).startswith(prefix + "_"):
                lineno = int(number)  # this kernel's file, or its float32 or loop variant
                try:
                    with open(file) as fh:
                        text = fh.read()
                except OSError:
                    pass
        reason = _reason(str(exc))
        if self._grad is None:  # a plain function: numba's line is the user's line
            code = self._fn.__code__
            import linecache

            from .locate import JitLocatedError

            number = lineno or code.co_firstlineno
            line = linecache.getline(code.co_filename, number) or "?"
            return JitLocatedError(
                f"srcdiff.jit cannot compile this line in numba's nopython mode ({reason}); "
                "call the function without srcdiff.jit", code.co_filename, number,
                len(line) - len(line.lstrip()), line.rstrip("\n"))
        statement = text.splitlines()[lineno - 1].strip() if lineno else "?"
        owner = self._owner(text, lineno) if lineno else self._fn
        return located(
            f"srcdiff.jit cannot compile the derivative of this line: its kernel statement "
            f"'{statement}' has no nopython form ({reason}); call the gradient without "
            "srcdiff.jit, or pass fallback=True to run the numpy derivative with a warning",
            owner, text, lineno)

    def _owner(self, text: str, lineno: int):
        """The user's function kernel line ``lineno`` comes from: a helper's, for the
        functions of a helper it calls (links.py), else the differentiated one."""
        owners = self._kernel.owners if self._kernel is not None else {}
        for line in reversed(text.splitlines()[:lineno]):
            if line.startswith("def "):
                return owners.get(line[4:].split("(")[0], self._fn)
        return self._fn


# ----- helpers -----


def _pick(dispatcher, kind, args):
    """The one-loop kernel where there is one, the array arguments share one shape, are
    C-contiguous, not empty and not too many for it (``_loop``), else the array kernel
    ``dispatcher``. (The array kernel allocates an array per statement: for large arrays
    that is page faults as much as arithmetic.)"""
    loop, (positions, limit) = kind[2], kind[3]
    if loop is None:
        return dispatcher
    first = args[positions[0]]
    shape = first.shape
    if not 0 < first.size < limit:
        return dispatcher
    for i in positions:
        a = args[i]
        if a.shape != shape or not a.flags.c_contiguous:
            return dispatcher
    return loop


def _aux_types(aux, kind) -> tuple:
    """The types of the numpy path's aux leaves (``kind``: how the kernel packs it)."""
    leaves = (aux,) if kind == ("leaf",) else tuple(aux.values()) if kind[0] == "dict" else tuple(aux)
    return tuple(type(a) for a in leaves)


def _rebuilt(packed, kind, types):
    """has_aux's auxiliary value from the kernel's tuple of leaves, in the numpy path's
    structure and number types (numba returns a Python float for an np.float64, an int for
    an np.int64)."""
    leaves = (packed,) if kind == ("leaf",) else packed
    leaves = [t(a) if (t is float or issubclass(t, np.generic)) and type(a) is not t else a
              for a, t in zip(leaves, types)]  # np.sum of integers: an np.int64, as numpy's
    if kind == ("leaf",):
        return leaves[0]
    if kind[0] == "dict":
        return dict(zip(kind[1], leaves))
    return list(leaves) if kind == ("list",) else tuple(leaves)


def _gradient(g, x, args):
    """``g`` as the gradient of argument ``x``: its type, dtype and shape. The kernel made
    it fresh (``rt_jit.own``: never memory an argument owns)."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.dtype == x.dtype and \
            g.shape == x.shape:
        return g
    if type(x) is float and type(g) is float:
        return g
    return api._own(api._as_gradient(g, x), args)  # noqa: SLF001


def _signature(args):
    """A hashable key of the argument types (what numba compiles for); ``_valid`` says
    whether a kernel takes them."""
    key = []
    for a in args:
        if type(a) is np.ndarray:
            key.append(a.dtype)
            key.append(a.ndim)
        else:
            key.append(type(a))
    return tuple(key)


def _valid(args) -> bool:
    """Whether every argument is a number or a numpy array of a kind a kernel takes."""
    for a in args:
        kind = type(a)
        if kind is np.ndarray:
            if a.dtype.char not in _OK_CHARS:
                return False
        elif not (kind is float or kind is int or kind is bool or
                  isinstance(a, np.generic) and a.dtype.char in _OK_CHARS):
            return False
    return True


def _describe(args) -> str:
    bad = [a for a in args if not _valid((a,))]
    return ", ".join(f"a {type(a).__name__}" + (f" of {a.dtype}" if hasattr(a, "dtype") else "")
                     for a in bad[:3])


def _namespace(fn) -> dict:
    """The user's globals, with the function's closure values over them."""
    namespace = dict(fn.__globals__)
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            namespace[name] = cell.cell_contents
        except ValueError:
            pass
    return namespace


def _derive(fn, wrt):
    """The derivative source of a helper function the kernel calls, a resolver and the
    namespace of its module (kernel.py's ``derive``)."""
    if not inspect.isfunction(fn):
        raise ValueError(f"{fn!r} is not a Python function")
    namespace = _namespace(fn)
    return api.derivative(fn, wrt, False, ()).source, _resolver(namespace), namespace


def _with_helpers(namespace: dict, kernel, fn) -> dict:
    """The user's namespace and what the helpers read of theirs; a name both read with
    different values cannot be frozen into one kernel file."""
    merged = dict(namespace)
    for name, value in kernel.names.items():
        if name in merged and merged[name] is not value:
            raise located(f"srcdiff.jit cannot compile the derivative of {fn.__qualname__}: "
                          f"'{name}' names one thing in its module and another in a helper's; "
                          "rename one of them", fn, "", None)
        merged[name] = value
    return merged


def _resolver(namespace):
    """What a called expression (``np.tanh``, ``numpy.tanh``, ``th``) names in the user's
    namespace (by identity, whatever its spelling), else None."""
    import libcst as cst

    def resolve(expr):
        if type(expr) is cst.Name:
            return namespace.get(expr.value)
        if type(expr) is cst.Attribute:
            owner = resolve(expr.value)
            return getattr(owner, expr.attr.value, None) if owner is not None else None
        return None

    return resolve


def _first_line_reading(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for k, line in enumerate(source.splitlines(), 1):
        if not line.lstrip().startswith(("#", "from ", "def ")) and pattern.search(line):
            return k
    return None


def _is_numba_error(exc) -> bool:
    """A numba error, or an exception raised inside numba's own code (an assertion of its
    typing of something it does not take, such as a 2-d mask)."""
    from numba.core.errors import NumbaError

    if isinstance(exc, NumbaError):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and f"{os.sep}numba{os.sep}" in tb.tb_frame.f_code.co_filename


def _reason(message: str) -> str:
    """The gist of a numba error message: what a twin said it cannot take, else which
    function numba found no form of and for which argument types, else its first line."""
    said = re.search(r"raised a specific error:\s*\n\s*\w+Error: (.*)", message)
    if said:
        return said.group(1).strip()[:200]
    missing = re.search(r"No implementation of function Function\(<[^>]*?(\w+) at 0x\w+>\) found "
                        r"for signature:\s*\n\s*>>> \w+\((.*)\)", message)
    if missing:
        return f"numba has no {missing.group(1)} for ({missing.group(2).strip()[:160]})"
    if not message.strip():
        return "numba failed while typing it"
    for line in message.splitlines():
        line = line.strip()
        if not line or line.startswith(("Failed in", "During:", "File ", "<source", "^")):
            continue
        return re.sub(r"\s+", " ", line)[:200]
    return "numba could not compile it"
