"""A test double for a GPU array: numpy's dispatch protocols, and no way to host memory.

``DuckArray`` wraps a numpy array the way a ``cupy.ndarray`` wraps device memory. numpy
functions reach it only through ``__array_ufunc__`` and ``__array_function__`` (which
unwrap, call numpy, and wrap array results again), and, like CuPy, it refuses every
*implicit* trip to the host:

- ``__array__`` raises ``TypeError``, with CuPy's message: ``np.asarray(d)``,
  ``np.zeros(d.shape) + d`` and every other silent conversion fails loudly;
- a ufunc or numpy function that mixes a ``DuckArray`` with a ``numpy.ndarray`` raises
  ``TypeError`` (CuPy raises for the same implicit host-to-device copy); numpy *scalars*
  and Python numbers (complex ones too) are fine, as on CuPy;
- ``ufunc.at``/``reduce``/... are not handled (``NotImplemented``), as in CuPy's
  ``__array_ufunc__``, so ``np.add.at(d, ...)`` fails: scatter-adds must go through the
  array module (``DuckModule.scatter_add``, CuPy's ``cupyx.scatter_add``);
- reductions give 0-d arrays, never numpy scalars (CuPy has no scalar type);
- where a CuPy function takes less than numpy's, the double takes what CuPy takes
  (``_CUPY_LIMITS``): ``np.tensordot`` needs two arrays and contracts no axis of a 0-d
  one, as ``cupy.tensordot`` (numpy takes a number, and ``axes=([], [])`` with a 0-d one).

What CuPy does allow, explicitly, the double allows too, and counts: ``float()``,
``int()``, ``bool()`` and ``.item()`` of a one-element array (each a device-to-host copy
and a synchronisation on a GPU), and ``.get()`` (an explicit copy to a numpy array, which
only tests call). ``HOST_SYNCS`` counts the first kind so tests can assert that
differentiating array code performs none; srcdiff needs one only where the API promises a
host number (the gradient of a Python float argument is a Python float).

Index keys may hold numpy arrays (CuPy copies host index arrays to the device), so
``x[np.array([0, 2])]`` works as on CuPy.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from srcdiff.runtime.backend import register_array_module

__all__ = ["DuckArray", "DuckModule", "HostConversionError", "HOST_SYNCS", "dk", "wrap"]


class HostConversionError(TypeError):
    """An implicit conversion between the duck array and host (numpy) memory."""


class _Counter:
    def __init__(self):
        self.count = 0
        self.where: list[str] = []

    def hit(self, what: str):
        self.count += 1
        self.where.append(what)

    def reset(self):
        self.count = 0
        self.where.clear()


HOST_SYNCS = _Counter()


def _refuse(what: str):
    raise HostConversionError(
        f"implicit conversion between a DuckArray and numpy ({what}) is not allowed: "
        "a GPU array would need a device/host copy here")


def _unwrap(value, what: str):
    """DuckArrays to their numpy data, recursively; a numpy array operand is refused."""
    if type(value) is DuckArray:
        return value._data
    if isinstance(value, np.ndarray):
        _refuse(f"a numpy.ndarray operand in {what}")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v, what) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, what) for k, v in value.items()}
    return value


def _unwrap_key(key):
    """An index key: DuckArrays unwrapped; numpy index arrays allowed (CuPy accepts them)."""
    if type(key) is DuckArray:
        return key._data
    if isinstance(key, tuple):
        return tuple(_unwrap_key(k) for k in key)
    return key


def _wrap(value):
    """numpy results as DuckArrays (numpy scalars become 0-d arrays, as CuPy returns)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return DuckArray(np.asarray(value))
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _tensordot_limits(a, b, axes=2):
    """``cupy.tensordot``'s: it reads ``a.ndim`` and ``b.ndim`` (a Python number has none),
    and refuses to contract axes of a 0-d operand, even none of them (``axes=([], [])``)."""
    for x in (a, b):
        if type(x) is not DuckArray:
            raise AttributeError(f"'{type(x).__name__}' object has no attribute 'ndim' "
                                 "(cupy.tensordot takes arrays only)")
    if (a.ndim == 0 or b.ndim == 0) and axes != 0 and axes != ((), ()):
        raise ValueError("An input is zero-dim while axes has dimensions")


_CUPY_LIMITS = {np.tensordot: _tensordot_limits}


class _Flags:
    """CuPy's flags: no ``writeable`` (CuPy arrays are always writeable)."""

    def __init__(self, flags):
        self.c_contiguous = flags.c_contiguous
        self.f_contiguous = flags.f_contiguous
        self.owndata = flags.owndata


class DuckArray(NDArrayOperatorsMixin):
    """An n-d array that numpy can dispatch to but never convert (see the module docstring)."""

    __slots__ = ("_data",)
    __array_priority__ = 100

    def __init__(self, data):
        if not isinstance(data, np.ndarray):
            raise TypeError("DuckArray wraps a numpy.ndarray; use duckarray.wrap(...)")
        self._data = data

    # ----- numpy's dispatch protocols -----

    def __array__(self, dtype=None, copy=None):
        raise HostConversionError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            return NotImplemented  # as CuPy: no ufunc.at/reduce/accumulate through numpy
        for x in inputs + tuple(kwargs.get("out", ())):
            if not isinstance(x, (DuckArray, np.ndarray, np.generic, int, float, complex, bool)):
                return NotImplemented
        inputs = _unwrap(inputs, f"np.{ufunc.__name__}")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _unwrap(out, f"np.{ufunc.__name__}(out=...)")
        result = ufunc(*inputs, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        for t in types:
            if not issubclass(t, (DuckArray, np.ndarray)):
                return NotImplemented
        name = f"np.{func.__name__}"
        limit = _CUPY_LIMITS.get(func)
        if limit is not None:
            limit(*args, **kwargs)
        return _wrap(func(*_unwrap(args, name), **_unwrap(kwargs, name)))

    # ----- attributes -----

    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    size = property(lambda self: self._data.size)
    real = property(lambda self: _wrap(self._data.real))  # as CuPy's, on the device
    imag = property(lambda self: _wrap(self._data.imag))
    itemsize = property(lambda self: self._data.itemsize)
    nbytes = property(lambda self: self._data.nbytes)
    T = property(lambda self: DuckArray(self._data.T))
    mT = property(lambda self: DuckArray(self._data.mT))
    flags = property(lambda self: _Flags(self._data.flags))

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        for row in self._data:
            yield _wrap(row)

    def __getitem__(self, key):
        return _wrap(self._data[_unwrap_key(key)])

    def __setitem__(self, key, value):
        self._data[_unwrap_key(key)] = _unwrap(value, "__setitem__")

    def __repr__(self):
        return f"DuckArray({self._data!r})"

    # ----- explicit conversions, as CuPy allows them (counted) -----

    def _scalar(self, what):
        if self._data.size != 1:
            raise TypeError(f"only one-element arrays can be converted by {what}")
        HOST_SYNCS.hit(what)
        return self._data.reshape(()).item()

    def __float__(self):
        return float(self._scalar("float()"))

    def __int__(self):
        return int(self._scalar("int()"))

    def __bool__(self):
        return bool(self._scalar("bool()"))

    def item(self):
        return self._scalar(".item()")

    def get(self):
        """A numpy copy (CuPy's explicit device-to-host transfer); only tests call it."""
        return self._data.copy()

    # ----- methods (CuPy has them; they return DuckArrays) -----

    def astype(self, dtype, copy=True, **kwargs):
        return DuckArray(self._data.astype(dtype, copy=copy, **kwargs))

    def copy(self, order="C"):
        return DuckArray(self._data.copy(order=order))

    def reshape(self, *shape, **kwargs):
        return DuckArray(self._data.reshape(*shape, **kwargs))

    def transpose(self, *axes):
        return DuckArray(self._data.transpose(*axes))

    def fill(self, value):
        self._data.fill(_unwrap(value, "fill"))


def _method(name):
    def method(self, *args, **kwargs):
        where = f".{name}()"
        return _wrap(getattr(self._data, name)(*_unwrap(args, where), **_unwrap(kwargs, where)))

    method.__name__ = name
    return method


for _name in ("sum mean max min prod var std argmax argmin swapaxes squeeze ravel flatten "
              "dot clip trace round all any nonzero cumsum cumprod conj conjugate diagonal repeat "
              "take").split():
    setattr(DuckArray, _name, _method(_name))


def wrap(x):
    """A numpy array (or list) as a DuckArray; anything else (a Python float, a numpy
    scalar) unchanged: those are host values on CuPy too."""
    if isinstance(x, np.ndarray):
        return DuckArray(x.copy())
    return x


class DuckModule:
    """The array module of ``DuckArray`` (what ``cupy`` is to ``cupy.ndarray``): numpy's
    functions, taking and giving DuckArrays, plus ``scatter_add``.

    Functions are made once per name, so ``dk.tanh is dk.tanh`` (srcdiff resolves calls
    by identity).
    """

    __name__ = "duckarray"
    ndarray = DuckArray

    def __init__(self):
        self._functions = {}

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        functions = self.__dict__["_functions"]
        if name in functions:
            return functions[name]
        target = getattr(np, name)  # AttributeError for names numpy lacks
        if not callable(target) or isinstance(target, type):
            return target  # dtypes, constants: the same objects as numpy's
        wrapper = _module_function(target, name)
        functions[name] = wrapper
        return wrapper

    @staticmethod
    def scatter_add(a, key, values):
        """``np.add.at(a, key, values)`` on the duck's data (CuPy: ``cupyx.scatter_add``)."""
        if type(a) is not DuckArray:
            raise TypeError("scatter_add needs a DuckArray to add into")
        np.add.at(a._data, _unwrap_key(key), _unwrap(values, "scatter_add"))

    @staticmethod
    def asarray(x, dtype=None):
        """Host data onto the "device": the explicit copy, as ``cupy.asarray``."""
        if type(x) is DuckArray:
            return x if dtype is None else x.astype(dtype)
        return DuckArray(np.array(x, dtype=dtype))

    array = asarray

    @staticmethod
    def asnumpy(x):
        return x.get() if type(x) is DuckArray else np.asarray(x)


def _module_function(target, name):
    @functools.wraps(target)
    def function(*args, **kwargs):
        where = f"dk.{name}"
        limit = _CUPY_LIMITS.get(target)
        if limit is not None:
            limit(*args, **kwargs)
        return _wrap(target(*_unwrap(args, where), **_unwrap(kwargs, where)))

    function.__module__ = "duckarray"
    return function


dk = DuckModule()
register_array_module(DuckArray, dk)


# numpy's constructors that take values do not dispatch to another array library (``like=``
# aside): on a device one calls the library's own (``cupy.array``, ``cupy.full``)
_CONSTRUCTORS = (np.array, np.asarray, np.full)


def on_device(primal, fn):
    """``primal`` (a numpy function, or a wrapper of ``fn``) as the device library would
    run it: a constructor of ``_CONSTRUCTORS`` builds the DuckArray its twin would."""
    if fn not in _CONSTRUCTORS:
        return primal

    def construct(*args, **options):
        return DuckArray(np.asarray(primal(*_host(args), **options)))

    return construct


def _host(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_host(v) for v in value)
    return value.get() if isinstance(value, DuckArray) else value
