"""Replays each libFuzzer target's committed corpus (fuzz/corpus/<target>/):
every input must run without a crash, leak or sanitizer report."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("SB_BUILD", ROOT / "build")).resolve()
TARGETS = sorted(p.stem for p in (ROOT / "fuzz").glob("fuzz_*.c"))


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_corpus_replays_clean(target):
    exe = BUILD / "fuzz" / target
    corpus = ROOT / "fuzz" / "corpus" / target
    assert exe.exists(), f"{exe} not built: run `make fuzz-bins`"
    assert corpus.is_dir() and any(corpus.iterdir()), f"no seed corpus in {corpus}"
    r = subprocess.run([str(exe), "-runs=0", str(corpus)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"{target} failed on its corpus:\n{r.stderr[-4000:]}"
