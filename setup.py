"""Builds the optional C Merkle core; if it cannot be built, datasov installs without it."""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # no compiler, no headers: fall back to pure Python
            print(f"warning: erasure._merkle not built ({err}); using the pure-Python Merkle path", file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as err:
            print(f"warning: {ext.name} not built ({err}); using the pure-Python Merkle path", file=sys.stderr)


setup(
    ext_modules=[
        Extension(
            "erasure._merkle",
            sources=["erasure/_merkle.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
