"""A kernel's source as a file on disk, imported and compiled by numba with its cache on.

numba caches a compiled function next to its source file, keyed by the file's path and
time stamp, so each kernel is written once to a file named by a hash of its text (in
``$SRCDIFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/srcdiff`` or ``~/.cache/srcdiff``, under
``jit/``): a second process finds the file unchanged and loads the machine code instead of
compiling. What the kernel reads besides its arguments (numpy, ``math``, numbers and arrays
of the user's module) is frozen into it when it compiles, as numba does for every global;
their values are part of the hash, so a changed number compiles a new kernel.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import os
import sys
import types

import numpy as np

from .kernel import Kernel
from .links import names_read

__all__ = ["cache_dir", "free_names", "load", "Unsupported"]


class Unsupported(Exception):
    """A name the kernel reads whose value cannot be frozen into it; ``name`` says which."""

    def __init__(self, name: str, why: str):
        super().__init__(why)
        self.name = name


def cache_dir() -> str:
    root = os.environ.get("SRCDIFF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "srcdiff")
    return os.path.join(root, "jit")


def free_names(source: str, params=()) -> list[str]:
    """The names the kernel's functions read that they neither receive nor assign, nor
    define (a helper's forward and backward functions, links.py)."""
    import ast

    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    defined = {fn.name for fn in functions}
    free = []
    for fn in functions:
        free += [n for n in names_read(fn) if n not in defined and n not in free]
    return free


def _header_line(name: str, value, extra: dict) -> str:
    """One line of the kernel file giving ``name`` its value, or ``Unsupported``."""
    if isinstance(value, types.ModuleType):
        return f"import {value.__name__} as {name}"
    if type(value) in (int, float, bool):
        return f"{name} = {value!r}"
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        digest = hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        extra[name] = value
        return f"# {name}: a {value.dtype} array of shape {value.shape}, sha1 {digest} (frozen)"
    owner = sys.modules.get(getattr(value, "__module__", None) or "")
    attr = getattr(value, "__name__", None)
    if owner is not None and attr and getattr(owner, attr, None) is value and \
            owner.__name__.split(".")[0] in ("numpy", "math", "cmath"):
        return f"from {owner.__name__} import {attr} as {name}"
    raise Unsupported(name, f"'{name}' is a {type(value).__name__}, which a compiled kernel cannot "
                      "read; pass it as an argument (arrays, numbers) or compute it inside")


def load(kernel: Kernel, namespace: dict):
    """The kernel as a numba dispatcher (nopython, cached), and the file it lives in.

    ``namespace`` gives the values of the names the kernel reads (the user's globals and
    closure); raises ``Unsupported`` for one that cannot be frozen into machine code.
    """
    import numba

    from srcdiff.runtime import numba_twins  # noqa: F401  registers the twins with numba

    extra: dict = {}
    lines = []
    for name in free_names(kernel.source, kernel.params):
        if name in (kernel.rt, f"{kernel.rt}_jit") or hasattr(builtins, name) and name not in namespace:
            continue
        if name not in namespace:
            raise Unsupported(name, f"'{name}' is not defined")
        lines.append(_header_line(name, namespace[name], extra))
    head, body = kernel.source.split("\n\n\n", 1)
    text = "\n".join([head, *lines]) + "\n\n\n" + body.lstrip("\n")
    # numba's cache of a kernel keeps the twins it inlined, and invalidates only when the
    # kernel's own file changes: the twins' source is part of the name, so a changed twin
    # (a new srcdiff) compiles new kernels instead of running stale machine code
    digest = hashlib.sha1(f"{numba.__version__}\n{_twins_digest()}\n{text}".encode()).hexdigest()[:20]
    folder = cache_dir()
    path = os.path.join(folder, f"{kernel.name}_{digest}.py")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)  # atomic: another process never reads half a file
    if path in _dispatchers:
        return _dispatchers[path], path, text
    module_name = f"srcdiff_kernel_{digest}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        module.__dict__.update(extra)
        spec.loader.exec_module(module)
        sys.modules[module_name] = module
    for helper in kernel.helpers:  # the user's helpers: compiled where the kernel calls them
        setattr(module, helper, numba.njit(cache=True)(getattr(module, helper)))
    dispatcher = _dispatchers[path] = numba.njit(cache=True, error_model=kernel.error_model)(
        getattr(module, kernel.name))
    return dispatcher, path, text


_dispatchers: dict = {}  # one numba dispatcher per kernel file in this process


def _twins_digest() -> str:
    """A hash of the source of the twins the kernels call, as this process imported them
    (``numba_twins.SOURCE_DIGEST``); ``_TWINS`` overrides it (tests)."""
    if _TWINS is not None:
        return _TWINS
    from srcdiff.runtime import numba_twins

    return numba_twins.SOURCE_DIGEST


_TWINS = None
