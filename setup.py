"""The optional compiled reader loop (``spamdrill/logs/_fastloop.pyx``).

Everything else is in pyproject.toml. The extension is built with Cython and the system C
compiler when both are there; when either is missing, or the build fails, the package
installs without it and ``spamdrill logs`` reads in pure Python (the same results).
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PYX = Path("src/spamdrill/logs/_fastloop.pyx")


class OptionalBuildExt(build_ext):
    """A failed build is a warning: the pure-Python reader is the fallback."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            print(f"spamdrill: compiled reader not built ({exc}); pure Python",
                  file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"spamdrill: {ext.name} not built ({exc}); pure Python", file=sys.stderr)


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("spamdrill: Cython not installed; pure-Python reader", file=sys.stderr)
        return []
    try:
        return cythonize([Extension("spamdrill.logs._fastloop", [str(PYX)])],
                         compiler_directives={"language_level": "3"}, quiet=True)
    except Exception as exc:
        print(f"spamdrill: Cython failed ({exc}); pure-Python reader", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
