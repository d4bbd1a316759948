"""Declares the C extension; everything else is in pyproject.toml."""
import os

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
header_dir = os.path.join(here, "..", "c")
if not os.path.exists(os.path.join(header_dir, "shm.h")):
    raise SystemExit("shm.h not found in %s: build from the repository (pip install ./python)" % header_dir)

setup(
    ext_modules=[
        Extension(
            "shm._shm",
            sources=["src/shm/_shm.c"],
            include_dirs=[header_dir],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-O2"],
            depends=[os.path.join(header_dir, "shm.h")],
        )
    ]
)
