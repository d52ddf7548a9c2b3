"""Gradient objects that travel: ``pickle``, ``cloudpickle``, ``multiprocessing``, Dask workers.

A ``srcdiff.grad(f)`` object pickles as what made it, the function and grad's options, never
as its compiled code (code objects do not pickle); the other side compiles the derivative
again, once per process, when it is first called. Compiling reads the function's source, so
where the other side may have no file to read it from (a function defined in ``__main__``,
which cloudpickle sends by value; a notebook cell; ``exec``), the pickle carries the lines of
the files srcdiff will read; unpickling names each function's code after its file again
(cloudpickle renames it ``<dynamic-code>``) and puts the lines into ``linecache``, where
``inspect.getsource`` finds them::

    >>> import pickle, numpy as np, srcdiff
    >>> def f(x): return np.sum(x ** 2)        # in __main__: its lines travel too
    >>> g = pickle.loads(pickle.dumps(srcdiff.grad(f)))   # doctest: +SKIP
    >>> g(np.ones(2))                                       # doctest: +SKIP
    array([2., 2.])
"""

from __future__ import annotations

import inspect
import linecache
import os
import sys
import types

__all__ = ["by_name", "carried", "restore"]

_MAIN = frozenset({"__main__", "__mp_main__"})  # a script run, or multiprocessing's copy of it


def by_name(obj) -> str | None:
    """``obj``'s qualified name where its module holds it under that name (``@srcdiff.grad``
    on a module-level def): then pickle stores the name, as it does for a function, and
    the other side imports it. Not for cloudpickle in ``__main__``: it sends that module's
    functions by value, to a process (a Dask worker) whose ``__main__`` is another."""
    name = getattr(obj, "__module__", None) or ""
    if name in _MAIN and _cloudpickling():
        return None
    module = sys.modules.get(name)
    target = module
    for part in getattr(obj, "__qualname__", "<").split("."):
        target = getattr(target, part, None)
    return obj.__qualname__ if module is not None and target is obj else None


def _cloudpickling() -> bool:
    """Whether cloudpickle's pickler is what asks (its ``dump`` is on the stack)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith("cloudpickle"):
            return True
        frame = frame.f_back
    return False


def carried(fn) -> dict:
    """What the other side needs to read the source of ``fn`` and of the user functions it
    calls by name, where they travel by value (cloudpickle sends a function of ``__main__``,
    a notebook cell, a local def, a lambda as its code, whose file it renames) and their
    file may be missing there: ``lines`` of each such file, and the file of each such
    function by ``(name, first line)`` (``origins``)."""
    lines, origins = {}, {}
    for function in _functions_reached(fn):
        code = function.__code__
        if function.__module__ not in _MAIN and by_name(function) is not None:
            continue  # pickled by reference: the other side imports its module, file and all
        origins[code.co_name, code.co_firstlineno] = code.co_filename
        if code.co_filename not in lines:
            lines[code.co_filename] = tuple(linecache.getlines(code.co_filename,
                                                               function.__globals__))
    return {"lines": lines, "origins": origins} if origins else {}


def restore(fn, state: dict) -> None:
    """Make what :func:`carried` took readable by ``inspect.getsource`` here: each function's
    code named after its file again, and the lines of a file that is not on disk here in
    ``linecache`` (a script run on this machine too is read from disk as usual)."""
    for filename, lines in state.get("lines", {}).items():
        if not os.path.exists(filename) and filename not in linecache.cache:
            # no modification time: linecache.checkcache keeps the entry (as for IPython's cells)
            linecache.cache[filename] = (sum(map(len, lines)), None, list(lines), filename)
    origins = state.get("origins", {})
    for function in _functions_reached(fn):
        code = function.__code__
        origin = origins.get((code.co_name, code.co_firstlineno))
        if origin is not None and code.co_filename != origin and \
                not os.path.exists(code.co_filename):  # never a function read from a file here
            function.__code__ = _renamed(code, origin)


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    """``code`` and the code nested in it, with ``co_filename`` set to ``filename``."""
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _functions_reached(fn):
    """``fn`` and the Python functions its code names in its globals, transitively."""
    seen: dict[int, types.FunctionType] = {}
    todo = [fn]
    while todo:
        function = todo.pop()
        if not inspect.isfunction(function) or id(function) in seen:
            continue
        seen[id(function)] = function
        for name in _names(function.__code__):
            todo.append(function.__globals__.get(name))
    return list(seen.values())


def _names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # a nested def, lambda or comprehension
            yield from _names(const)
