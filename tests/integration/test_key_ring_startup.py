"""A worker or API without a usable key ring refuses to start (exit 2), naming what is wrong:
never a process that runs and leaves pathways stuck on payloads it cannot read."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.asyncio(loop_scope="session")


def start_process(module: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VCF_KEY_RING")}
    return subprocess.run([sys.executable, "-m", module], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**environ, "VCF_DATA_DIR": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:1", **env})


@pytest.mark.parametrize("module", ["worker.main", "api.main"])
async def test_without_a_usable_key_ring_the_process_refuses_to_start(module, tmp_path):
    missing = await asyncio.to_thread(start_process, module, tmp_path)
    assert missing.returncode == 2 and str(tmp_path / "key-ring.json") in missing.stderr
    wrong_current = json.dumps({"current": "k2", "keys": {"k1": base64.b64encode(b"\x01" * 32).decode()}})
    named = await asyncio.to_thread(start_process, module, tmp_path, VCF_KEY_RING=wrong_current)
    assert named.returncode == 2 and "current key 'k2' is not in the key ring" in named.stderr
    short = json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(b"\x01" * 16).decode()}})
    (tmp_path / "ring.json").write_text(short)
    sized = await asyncio.to_thread(start_process, module, tmp_path, VCF_KEY_RING_FILE=str(tmp_path / "ring.json"))
    assert sized.returncode == 2 and "key 'k1': expected 32 bytes" in sized.stderr
