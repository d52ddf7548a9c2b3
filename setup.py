"""The one compiled part of srcdiff: ``srcdiff._dispatch`` (see srcdiff/_dispatch.c), the first
test of a gradient's call in C. It is optional: where it cannot be built (no C compiler),
pip installs srcdiff without it and each call runs its Python twin (srcdiff/fast_call.py)."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class _NumpyBuildExt(build_ext):
    """build_ext with numpy's headers (numpy is a build requirement: pyproject.toml)."""

    def finalize_options(self):
        super().finalize_options()
        import numpy

        self.include_dirs.append(numpy.get_include())


setup(ext_modules=[Extension("srcdiff._dispatch", ["srcdiff/_dispatch.c"], optional=True)],
      cmdclass={"build_ext": _NumpyBuildExt})
