"""Runs every cmocka unit-test binary (built by `make unit-bins`) as a pytest item,
so `make test` ends with one summary line that counts every test."""
import os
import pathlib
import subprocess

import pytest

BUILD = pathlib.Path(os.environ.get("SB_BUILD", "../build")).resolve()
SRC = pathlib.Path(__file__).parent / "unit"
NAMES = sorted(p.stem for p in SRC.glob("test_*.c"))


@pytest.mark.parametrize("name", NAMES)
def test_unit_binary(name):
    exe = BUILD / "tests" / name
    assert exe.exists(), f"{exe} not built: run `make unit-bins`"
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{name} failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
