"""The compiled path: ``srcdiff.jit`` runs a generated derivative as one numba function.

``kernel.py`` rewrites the readable numpy derivative into the function numba compiles
(pullback inlined, tapes as lists, elementwise chains fused by ``fuse.py``), ``loader.py``
writes it to a cached file and compiles it, ``locate.py`` places numba's errors at the
user's line, ``trees.py`` flattens container arguments into the kernel's (a twin of the
user's function over their leaves), ``function.py`` is the callable. The numba twins of the runtime functions
live beside their originals, in ``runtime/numba_twins.py``.
"""

from .function import JitFallbackWarning, JitFunction, jit
from .locate import JitError

__all__ = ["jit", "JitFunction", "JitError", "JitFallbackWarning"]
