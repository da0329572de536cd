"""The ctypes layer matches the C ABI: every struct the package mirrors has
the compiler's size and field offsets (tests/tools/hr_abi_dump), the library
releases the GIL on every call (a CDLL, not a PyDLL), and the package
version is the library's."""
import ctypes
import importlib.metadata
import re

import headroom
from headroom import _lib

from conftest import REPO, tool


def test_every_mirrored_struct_has_the_c_size_and_field_offsets():
    c = dict(line.rsplit(" ", 1) for line in tool("hr_abi_dump").splitlines())
    checked = 0
    for name, st in _lib.STRUCTS.items():
        assert int(c[name]) == ctypes.sizeof(st), f"{name}: C {c[name]} bytes, ctypes {ctypes.sizeof(st)}"
        for field, _ in st._fields_:
            assert int(c[f"{name}.{field}"]) == getattr(st, field).offset, f"{name}.{field}"
            checked += 1
        c_fields = [k for k in c if k.startswith(name + ".")]
        assert len(c_fields) == len(st._fields_), f"{name}: C lists {c_fields}"
    print(f"{len(_lib.STRUCTS)} structs, {checked} fields match")


def test_the_library_is_called_without_the_gil():
    assert isinstance(_lib.lib, ctypes.CDLL) and not isinstance(_lib.lib, ctypes.PyDLL)


def test_the_package_version_is_the_library_version_and_the_header_version():
    header = (REPO / "include" / "headroom" / "common.h").read_text()
    want = re.search(r'#define HR_VERSION "([^"]+)"', header).group(1)
    assert headroom.__version__ == _lib.lib.hr_version().decode() == want


def test_an_installed_distribution_carries_the_same_version():
    try:
        v = importlib.metadata.version("headroom")
    except importlib.metadata.PackageNotFoundError:
        return  # the source tree is not installed; test_install.py installs it
    if headroom.__file__.startswith(str(REPO)):
        return  # another installed copy shadows nothing here
    assert v == headroom.__version__
