"""The data directory is its owner's only: the API process creates it 0700 and every file in it
0600 (the SQLite -wal and -shm files and the token included), and fixes, with a warning, a
directory that group or others could read. ``make run``'s own files: test_make_run.py."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, eventually, free_port, key_ring_env
from tests.integration.api_support import enrollment, new_patient_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


def modes(data_dir: Path) -> dict[str, int]:
    """Permission bits of the directory ('.') and of everything in it."""
    return {".": stat.S_IMODE(data_dir.stat().st_mode),
            **{str(p.relative_to(data_dir)): stat.S_IMODE(p.stat().st_mode) for p in data_dir.rglob("*")}}


async def run_api(dev_env, data_dir: Path) -> tuple[int, str, dict[str, int]]:
    """``python -m api.main`` (as deployed, umask 022 around it) over ``data_dir``: enroll a patient
    through it while a reader holds the database open (so that its -wal and -shm files exist: the
    last connection to close removes them); return its exit code, its log and the modes then."""
    port = free_port()
    env = {**os.environ, "VCF_DATA_DIR": str(data_dir), "VCF_API_PORT": str(port),
           "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host, **key_ring_env()}
    env.pop("VCF_API_TOKENS", None)
    old = os.umask(0o022)
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api.main", cwd=ROOT, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    finally:
        os.umask(old)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def up():
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return proc.returncode is not None  # it stopped: say so below, not after a timeout
            await eventually(up, timeout=30)
            token = (data_dir / "api-token").read_text().strip()
            old = os.umask(0o022)  # the reader's own umask does not matter: SQLite takes the file's mode
            reader = sqlite3.connect(data_dir / "orders.db", isolation_level=None)
            os.umask(old)
            try:
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM api_enrollments").fetchone()
                r = await http.post("/v1/patients", json=enrollment(new_patient_id()),
                                    headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 201, r.text
                found = modes(data_dir)
            finally:
                reader.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(errors="replace"), found


async def test_the_api_creates_its_data_directory_for_its_owner_only(dev_env, tmp_path):
    data_dir = tmp_path / "open-parent" / "data"
    data_dir.parent.mkdir(mode=0o755)
    code, log, found = await run_api(dev_env, data_dir)
    assert code == 0, log
    assert {"orders.db", "orders.db-wal", "orders.db-shm", "api-token"} <= found.keys(), found
    assert found == {name: 0o700 if name == "." else 0o600 for name in found}, found
    assert "readable by group or others" not in log


async def test_a_data_directory_open_to_others_is_fixed_with_a_warning(dev_env, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / "api-token").write_text("an-old-token-" + os.urandom(8).hex() + "\n")
    os.chmod(data_dir / "api-token", 0o644)
    code, log, found = await run_api(dev_env, data_dir)
    assert code == 0, log
    assert "orders.db-wal" in found and found == {name: 0o700 if name == "." else 0o600 for name in found}, found
    assert "data directory was readable by group or others; fixed" in log
    assert f"{data_dir / 'api-token'} was mode 0644, now 0600" in log
