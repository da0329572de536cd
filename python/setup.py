"""Build of the headroom Python package (metadata in pyproject.toml).

The wheel carries libheadroom.so: the shared library CMake built is copied
into the package (headroom/libheadroom.so, where headroom/_lib.py looks
first), so an installed package needs no LD_LIBRARY_PATH — only the Debian
libraries libheadroom links (cJSON, PCRE2, libpng, zlib, OpenBLAS). Which
library: $HEADROOM_LIB, else ../build/libheadroom.so (the tree's Release
build). The package version is that library's hr_version(), so the two can
never disagree. Nothing is compiled here and nothing is downloaded.
"""
import ctypes
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def shared_library():
    path = os.environ.get("HEADROOM_LIB") or os.path.join(HERE, "..", "build", "libheadroom.so")
    if not os.path.isfile(path):
        raise SystemExit(f"headroom: {path} not found: build the library first "
                         "(cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build) "
                         "or set HEADROOM_LIB to a libheadroom.so")
    return os.path.realpath(path)


LIB = shared_library()
VERSION = ctypes.CDLL(LIB).hr_version
VERSION.restype = ctypes.c_char_p
VERSION = VERSION().decode()


class BuildWithLibrary(build_py):
    """Copies libheadroom.so (its real file, not the symbolic link) into the package."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "headroom", "libheadroom.so")
        shutil.copyfile(LIB, dest)
        os.chmod(dest, 0o755)


class BinaryDistribution(Distribution):
    """The wheel holds a compiled library: platform-specific, not pure Python."""

    def has_ext_modules(self):
        return True


setup(version=VERSION, cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
