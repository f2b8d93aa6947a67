"""Runs the amqplib (Node) tests in node/ against the broker under test."""
import os
import pathlib
import shutil
import subprocess

import pytest

NODE_DIR = pathlib.Path(__file__).parent / "node"

pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")),
                                reason="node/npm not installed")


def test_amqplib_node_suite_passes(broker):
    if not (NODE_DIR / "node_modules" / "amqplib").exists():
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci failed:\n{r.stdout}\n{r.stderr}"
    env = dict(os.environ, AMQP_URL=broker.amqp_url)
    r = subprocess.run(["node", "--test"], cwd=NODE_DIR, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"node --test failed:\n{r.stdout}\n{r.stderr}"
    assert "# fail 0" in r.stdout, r.stdout
