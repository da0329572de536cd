"""Shared fixtures of the Python tests (run by tests/test_python.sh under
ctest, or directly: /usr/bin/python3 -m pytest python/tests).

The package is imported from the source tree (python/) unless
HEADROOM_TEST_INSTALLED is set; libheadroom.so is HEADROOM_LIB (ctest sets
it to the leg's build) or the tree's build/. Shared data (../shared) that is
missing fails the tests in CI (CI=true) and skips them locally — never a
silent pass, as tests/check.h does for the C tests.
"""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
if not os.environ.get("HEADROOM_TEST_INSTALLED"):
    sys.path.insert(0, str(REPO / "python"))
    os.environ.setdefault("HEADROOM_LIB", str(REPO / "build" / "libheadroom.so"))

import headroom  # noqa: E402

SHARED = pathlib.Path(os.environ.get("HR_SHARED_DIR", REPO.parent / "shared"))
BUILD = pathlib.Path(os.environ.get("HR_BINARY_DIR", REPO / "build"))
TOOLS = pathlib.Path(os.environ.get("HR_TOOLS_DIR", BUILD))
CLI = pathlib.Path(os.environ.get("HR_CLI", BUILD / "headroom"))
MODEL = SHARED / "models" / "stories260K" / "stories260K.bin"
GGUF = SHARED / "models" / "stories260K" / "stories260K.gguf"
TEXT = SHARED / "data" / "text" / "tinystories_val.txt"
ASAN = os.environ.get("HR_SANITIZE", "").upper() in ("ON", "1", "TRUE")


def require(*paths):
    """Shared data or built tools a test needs: missing is a failure in CI, a skip locally."""
    for p in paths:
        if not pathlib.Path(p).exists():
            if os.environ.get("CI", "") not in ("", "false", "0"):
                pytest.fail(f"{p} is missing (CI={os.environ['CI']}: required)")
            pytest.skip(f"{p} is missing")


def cli(*args, check=True, **kw):
    """Runs the headroom CLI; returns the CompletedProcess (text mode)."""
    require(CLI)
    r = subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"headroom {' '.join(map(str, args))} failed: {r.stderr}")
    return r


def cli_error(*args):
    """The message of a CLI run that must fail: its one line after "headroom: error: "."""
    r = cli(*args, check=False)
    assert r.returncode == 1 and r.stderr.startswith("headroom: error: "), r.stderr
    return r.stderr.splitlines()[0][len("headroom: error: "):]


def tool(name, *args):
    require(TOOLS / name)
    r = subprocess.run([str(TOOLS / name), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"{name} failed: {r.stderr}"
    return r.stdout


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shapes {a.shape} and {b.shape}"
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def assert_bits(a, b, what):
    """a and b identical bit for bit (float32); prints the max difference."""
    a, b = np.asarray(a), np.asarray(b)
    d = max_diff(a, b)
    print(f"{what}: max |diff| = {d:.3g} (bit for bit required)")
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), f"{what}: differs (max |diff| {d:.3g})"


@pytest.fixture(scope="session")
def model():
    require(MODEL)
    m = headroom.Model.load(MODEL, threads=1)
    yield m
    m.close()


@pytest.fixture(scope="session")
def text():
    require(TEXT)
    return TEXT


@pytest.fixture(scope="session")
def ids(model):
    return model.tokenize("Once upon a time, there was a little girl named Lily. She loved to play in the park "
                          "with her dog Max.")


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory, text):
    """The CLI's head lab on 512 calibration tokens (seed 3), shared by the study tests."""
    d = tmp_path_factory.mktemp("lab")
    cli("heads", MODEL, "--text", text, "--out", d / "lab", "--tokens", 512, "--seed", 3, "--threads", 1,
        "--methods", "ablation,ablation_kl,sink,streaming,prev_token,induction,entropy", "--top", 2)
    return d / "lab"
