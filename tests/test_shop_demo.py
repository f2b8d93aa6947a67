"""The online store example (examples/shop, issue 6) at its small size: every claim of the
demo's report must hold (normal load, shipping down, payments slow and the chain of calls,
a poison order replayed from the dead-letter queue, kill -9 of the broker), and the run is
bounded (demo.py gives up on any one wait after 20 s; this test after 120 s in all).

The demo starts its own broker (build/switchboard) on free loopback ports, so AMQP_URL and
SB_TARGET do not apply. The shop's C services are built here (make -C examples/shop) if
the toolchain is there; without it the test is skipped.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BUILD = pathlib.Path(os.environ.get("SB_BUILD", REPO / "build"))
if not BUILD.is_absolute():
    BUILD = (pathlib.Path(__file__).parent / BUILD).resolve()   # relative to tests/, as elsewhere
TIMEOUT_S = 120

pytestmark = pytest.mark.fresh_broker


def build_shop():
    missing = [t for t in ("make", "cc") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"no {' and '.join(missing)}: cannot build examples/shop")
    if not os.path.exists("/usr/include/amqp.h"):
        pytest.skip("librabbitmq-dev (amqp.h) is not installed: cannot build examples/shop")
    if not (BUILD / "switchboard").exists():
        subprocess.run(["make", "-C", str(REPO), f"BUILD={BUILD}", "all"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
    r = subprocess.run(["make", "-C", str(REPO / "examples/shop"), f"OUT={BUILD / 'shop'}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"make -C examples/shop failed:\n{r.stdout}{r.stderr}"
    assert "warning" not in r.stderr, f"compiler warnings in examples/shop:\n{r.stderr}"


def test_shop_demo_small_every_claim_holds():
    pytest.importorskip("pika")
    build_shop()
    env = dict(os.environ, SB_BUILD=str(BUILD), SHOP_DEMO_SIZE="small")
    env.pop("AMQP_URL", None)
    p = subprocess.Popen([sys.executable, str(REPO / "examples/shop/demo.py"), "--small"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out, _ = p.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)      # demo.py stops its broker and services on SIGTERM
        try:
            out, _ = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        pytest.fail(f"the shop demo did not finish within {TIMEOUT_S} s:\n{out}")
    print(out)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    assert p.returncode == 0, f"the shop demo failed (exit {p.returncode}):\n{out}"
    assert last.startswith("shop: ") and "lost 0" in last and last.endswith("PASS"), out
