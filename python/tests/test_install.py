"""The package installs offline with Debian's pip, setuptools and wheel
(`pip install --no-build-isolation ./python`), carries libheadroom.so inside
itself, and works from Debian's /usr/bin/python3 (installed with --target)
and from a virtual environment made with --system-site-packages (NumPy from
Debian). Each install computes logits bit-identical to the source tree's.
The source is copied into a temporary tree first, so the in-tree build
leaves nothing in the checkout."""
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import headroom
from headroom import _lib

from conftest import ASAN, MODEL, REPO, require

pytestmark = pytest.mark.skipif(ASAN, reason="an ASan library loads only with the sanitizer runtime preloaded")

PROBE = """
import importlib.metadata, sys, numpy as np, headroom
m = headroom.Model.load(sys.argv[1], threads=1)
np.save(sys.argv[2], m.logits(m.tokenize("Once upon a time")))
print(headroom._lib.path, headroom.__version__, importlib.metadata.version("headroom"), headroom.__file__)
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of python/ beside a build/libheadroom.so, as in the repository."""
    require(MODEL)
    root = tmp_path_factory.mktemp("src")
    shutil.copytree(REPO / "python", root / "python",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".pytest_cache"))
    (root / "build").mkdir()
    shutil.copyfile(_lib.path, root / "build" / "libheadroom.so")
    return root


def env_without_the_tree():
    env = {k: v for k, v in os.environ.items() if k not in ("HEADROOM_LIB", "PYTHONPATH")}
    env["PIP_NO_INDEX"] = "1"  # offline: nothing may be downloaded
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def probe(python, tmp_path, env):
    out = tmp_path / "logits.npy"
    r = subprocess.run([python, "-c", PROBE, str(MODEL), str(out)], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lib_path, version, dist_version, init = r.stdout.split()
    m_ref = headroom.Model.load(MODEL, threads=1)
    ref = m_ref.logits(m_ref.tokenize("Once upon a time"))
    m_ref.close()
    assert np.array_equal(np.load(out), ref), "the installed package computes other logits"
    return pathlib.Path(lib_path), version, dist_version, pathlib.Path(init)


def test_pip_install_target_works_from_debian_python(source, tmp_path):
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--target",
                        str(site), str(source / "python")], capture_output=True, text=True, env=env_without_the_tree())
    assert r.returncode == 0, r.stdout + r.stderr
    env = env_without_the_tree()
    env["PYTHONPATH"] = str(site)
    lib_path, version, dist_version, init = probe("/usr/bin/python3", tmp_path, env)
    assert lib_path == site / "headroom" / "libheadroom.so" and init.parent == site / "headroom"
    assert version == dist_version == headroom.__version__
    wheel = next(site.glob("headroom-*.dist-info")) / "WHEEL"
    assert "Root-Is-Purelib: false" in wheel.read_text()


def test_pip_install_works_in_a_venv_with_system_site_packages(source, tmp_path):
    venv = tmp_path / "venv"
    r = subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", str(source / "python")],
                       capture_output=True, text=True, env=env_without_the_tree())
    assert r.returncode == 0, r.stdout + r.stderr
    lib_path, version, dist_version, init = probe(py, tmp_path, env_without_the_tree())
    assert str(lib_path).startswith(str(venv)) and str(init).startswith(str(venv))
    assert version == dist_version == headroom.__version__
    r = subprocess.run([py, "-c", "import numpy; print(numpy.__file__)"], capture_output=True, text=True)
    assert r.stdout.startswith("/usr/lib/python3/dist-packages/"), "NumPy must come from Debian"


def test_a_missing_library_is_a_clear_error(source, tmp_path):
    env = env_without_the_tree()
    env["HEADROOM_LIB"] = str(tmp_path / "nowhere" / "libheadroom.so")
    env["PYTHONPATH"] = str(source / "python")
    r = subprocess.run(["/usr/bin/python3", "-c", "import headroom"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "cannot find libheadroom.so" in r.stderr and "HEADROOM_LIB" in r.stderr
    env.pop("HEADROOM_LIB")
    shutil.rmtree(source / "python" / "build", ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--target",
                        str(tmp_path / "t"), str(source / "python")],
                       capture_output=True, text=True, env={**env, "HEADROOM_LIB": str(tmp_path / "none.so")})
    assert r.returncode != 0 and "build the library first" in (r.stdout + r.stderr)
