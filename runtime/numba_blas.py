"""numpy's own BLAS for the matrix products of compiled kernels (``srcdiff.jit``).

numba's ``a @ b`` calls the BLAS of scipy's wheel (``scipy.linalg.cython_blas``); numpy's
wheel brings its own OpenBLAS, the one the numpy path and hand-written numpy gradients use,
and here a newer and faster one: W3's ``x.T @ da`` (64x128 @ 128x256, float32) took 43.7 us
through numba, 37.6 through numpy. The gemm of numpy's library is registered with LLVM under
a name of ours, so a kernel calls it by name (numba's disk cache keeps the name, not an
address) and its matrix products are numpy's, bit for bit. Where numpy's library is not
found (a numpy built against another BLAS), ``GEMM`` is empty and numba's own product runs.

>>> import numba, numpy as np
>>> from srcdiff.runtime import numba_twins as rt_jit
>>> numba.njit(lambda a, b: rt_jit.matmul(a, b))(np.ones((2, 3)), np.ones((3, 4)))  # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
from numba import types

__all__ = ["GEMM", "LIBRARY", "product"]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS's enums


def _library():
    """numpy's OpenBLAS (the ILP64 scipy-openblas of numpy's wheels), loaded, and its path."""
    root = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(root, "libscipy_openblas64_*.so*"))):
        try:
            return path, ctypes.CDLL(path)
        except OSError:
            continue
    return None, None


def _register() -> tuple[str, dict]:
    """``(library file name, {numba float type: its gemm as an external function})``."""
    import llvmlite.binding as ll

    path, lib = _library()
    gemm = {}
    for char, kind in (("s", types.float32), ("d", types.float64)):
        try:
            fn = getattr(lib, f"scipy_cblas_{char}gemm64_")
        except AttributeError:  # (lib None too)
            return "", {}
        name = f"srcdiff_numpy_{char}gemm64"
        ll.add_symbol(name, ctypes.cast(fn, ctypes.c_void_p).value)
        i32, i64, ptr = types.int32, types.int64, types.uintp
        gemm[kind] = types.ExternalFunction(name, types.void(
            i32, i32, i32, i64, i64, i64, kind, ptr, i64, ptr, i64, kind, ptr, i64))
    return os.path.basename(path), gemm


LIBRARY, GEMM = _register()


def product(gemm, a, b):
    """The implementation of ``a @ b`` for two C- or F-contiguous matrices of one float type
    (numba types ``a``, ``b``) by numpy's ``gemm``; an F-contiguous operand (``x.T``) is a
    transposed C one, a flag to BLAS, never a copy."""
    dtype = np.dtype(str(a.dtype)).type
    one, zero = dtype(1.0), dtype(0.0)
    a_rows, b_rows = a.layout == "C", b.layout == "C"
    ta, tb = _NO_TRANS if a_rows else _TRANS, _NO_TRANS if b_rows else _TRANS

    def impl(a, b):
        m, k = a.shape
        if b.shape[0] != k:
            raise ValueError("matmul: the operands' inner sizes differ")
        n = b.shape[1]
        out = np.empty((m, n), dtype)
        if m == 0 or n == 0:
            return out
        if k == 0:
            out[:] = 0
            return out
        gemm(_ROW_MAJOR, ta, tb, m, n, k, one, a.ctypes.data, k if a_rows else m,
             b.ctypes.data, n if b_rows else k, zero, out.ctypes.data, n)
        return out

    return impl
