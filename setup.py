"""The compiled parts of srcdiff, both optional: where they cannot be built (no C compiler),
pip installs srcdiff without them and the same answers come from Python and numpy.

- ``srcdiff._dispatch`` (srcdiff/_dispatch.c): the first test of a gradient's call in C; its
  Python twin is srcdiff/fast_call.py;
- ``srcdiff.runtime._kernels`` (runtime/_kernels.c): one-pass mask selections for the
  in-place runtime (a ReLU and its adjoint); without it runtime/inplace.py uses numpy's
  spellings. Its loops are written for the compiler to vectorize (-O3)."""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class _NumpyBuildExt(build_ext):
    """build_ext with numpy's headers (numpy is a build requirement: pyproject.toml)."""

    def finalize_options(self):
        super().finalize_options()
        import numpy

        self.include_dirs.append(numpy.get_include())


_VECTORIZED = [] if sys.platform == "win32" else ["-O3", "-fno-trapping-math", "-ffp-contract=off"]

setup(ext_modules=[Extension("srcdiff._dispatch", ["srcdiff/_dispatch.c"], optional=True),
                   Extension("srcdiff.runtime._kernels", ["runtime/_kernels.c"], optional=True,
                             extra_compile_args=_VECTORIZED)],
      cmdclass={"build_ext": _NumpyBuildExt})
