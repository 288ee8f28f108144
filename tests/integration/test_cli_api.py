"""The ``vcf`` API subcommands as a script sees them: a real uvicorn (api.main.serve) on a
loopback port, the real dev server and worker, and the CLI run as its own process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from activities.order_book import OrderBook
from api.main import serve
from tests.helpers import eventually, free_port, make_worker
from tests.integration.api_support import TOKEN, build_app, new_patient_id

pytestmark = pytest.mark.asyncio(loop_scope="session")
VCF = str(Path(sys.executable).parent / "vcf")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api_url(dev_env, tmp_path_factory):
    """A real HTTP server for the app, with a worker behind it."""
    book = OrderBook(tmp_path_factory.mktemp("cli") / "orders.db")
    task_queue = f"cli-{uuid.uuid4()}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with make_worker(dev_env, book, task_queue):
        server = asyncio.create_task(serve(build_app(dev_env, book, task_queue, public_url=url), "127.0.0.1", port))
        async with httpx.AsyncClient() as http:
            async def up():
                try:
                    return (await http.get(f"{url}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False
            await eventually(up, timeout=10)
        yield url
        server.cancel()
        with pytest.raises(asyncio.CancelledError):
            await server


async def vcf(url: str, *args: str, token: str = TOKEN) -> tuple[int, str, str]:
    """Run the CLI as a separate process; return (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        VCF, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"VCF_API_URL": url, "VCF_API_TOKEN": token, "PATH": "/usr/bin:/bin"})
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_enroll_event_status_timeline_orders(api_url):
    patient = new_patient_id()
    enroll = ["enroll", "--id", patient, "--level", "L2", "--height-loss", "25", "--pain", "8"]
    code, out, _ = await vcf(api_url, *enroll)
    assert code == 0 and "enrolled" in out
    code, out, _ = await vcf(api_url, *enroll, "--json")
    assert code == 0 and json.loads(out)["created"] is False
    code, _, err = await vcf(api_url, "enroll", "--id", patient, "--level", "L3", "--height-loss", "25", "--pain", "8")
    assert code == 4 and "id:" in err

    code, out, _ = await vcf(api_url, "event", patient, "pain", "nrs=6", "--event-id", "cli-1")
    assert code == 0 and "accepted" in out
    code, out, _ = await vcf(api_url, "event", patient, "pain", "nrs=6", "--event-id", "cli-1")
    assert code == 0 and "already accepted" in out

    async def pain_applied():
        code, out, _ = await vcf(api_url, "status", patient, "--json")
        return code == 0 and json.loads(out)["latest_pain"]["nrs"] == 6
    await eventually(pain_applied)
    code, out, _ = await vcf(api_url, "status", patient)
    assert code == 0 and "latest pain" in out and "NRS 6" in out and "pending orders" in out
    assert "paused" not in out
    code, _, _ = await vcf(api_url, "event", patient, "clinician", "decision=pause", "reason=admitted", "author=dr-c")
    assert code == 0

    async def paused():
        code, out, _ = await vcf(api_url, "status", patient)
        return code == 0 and "running (paused: the schedule is held)" in out
    await eventually(paused)

    code, out, _ = await vcf(api_url, "timeline", patient)
    assert code == 0 and "enrolled" in out and "pain: nrs=6" in out
    code, out, _ = await vcf(api_url, "orders", "--patient", patient)
    assert code == 0 and "ServiceRequest" in out and "72148" in out
    code, out, _ = await vcf(api_url, "orders", "--patient", patient, "--json")
    assert code == 0 and json.loads(out)["resourceType"] == "Bundle"


async def test_exit_codes(api_url):
    code, _, err = await vcf(api_url, "event", "pt-x", "pain", "nrs=11")
    assert code == 2 and "nrs:" in err
    code, _, err = await vcf(api_url, "event", new_patient_id(), "pain", "nrs=3")
    assert code == 3 and "not enrolled" in err
    code, _, err = await vcf(api_url, "status", new_patient_id())
    assert code == 3
    code, _, err = await vcf(api_url, "orders", token="wrong")
    assert code == 1 and "unauthorized" in err
    code, _, err = await vcf("http://127.0.0.1:1", "status", "pt-x")
    assert code == 1 and "cannot reach" in err

    patient = new_patient_id()
    enroll = ["enroll", "--id", patient, "--level", "T12", "--height-loss", "10", "--pain", "4"]
    assert (await vcf(api_url, *enroll))[0] == 0
    code, _, _ = await vcf(api_url, "event", patient, "clinician", "decision=withdraw", "reason=moved", "author=dr-1")
    assert code == 0

    async def ended():
        return (await vcf(api_url, "event", patient, "pain", "nrs=2"))[0] == 4
    await eventually(ended)


async def test_a_patient_key_is_checked_before_it_goes_into_a_path(api_url, tmp_path):
    """'pt-a1/timeline' would reach the timeline route (the API decodes %2F): refused before sending."""
    for command in (["status", "pt-a1/timeline"], ["timeline", ".."], ["event", "a b", "pain", "nrs=4"],
                    ["orders", "--patient", "pt-a1/x"]):
        code, _, err = await vcf(api_url, *command)
        assert code == 2 and "  patient: expected 1-64 of" in err and "Traceback" not in err, (command, err)
    event = tmp_path / "event.json"
    event.write_text('{"type": "pain", "nrs": 4}')
    code, _, err = await vcf(api_url, "event", "pt-x", "pain", "nrs=5", "--file", str(event))
    assert code == 2 and "type: not with --file" in err
    enrollment = tmp_path / "enrollment.json"
    enrollment.write_text('{"id": "pt-f1", "fracture_level": "L2", "height_loss_pct": 25, "pain_nrs": 5}')
    code, _, err = await vcf(api_url, "enroll", str(enrollment), "--id", "pt-other")
    assert code == 2 and "--id: not with a FILE" in err


async def test_not_found_means_the_api_said_so(api_url):
    patient = new_patient_id()
    code, _, err = await vcf(api_url, "status", patient)
    assert code == 3 and "unknown patient" in err
    # A wrong base URL also answers 404, but that is not "unknown patient".
    code, _, err = await vcf(f"{api_url}/wrong-prefix", "status", patient)
    assert code == 1 and "not found" in err


async def test_bad_urls_and_unreadable_files_get_a_message_not_a_traceback(api_url, tmp_path):
    code, _, err = await vcf("http://[::1", "status", "pt-x")
    assert code == 1 and "invalid API URL" in err and "Traceback" not in err
    (tmp_path / "latin1.json").write_bytes('{"id": "pt-\xe9"}'.encode("latin-1"))
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    for command in ("enroll", "simulate"):
        for source, reason in ((tmp_path, "cannot be read"), (tmp_path / "latin1.json", "not UTF-8"),
                               (tmp_path / "binary.json", "not UTF-8")):
            code, _, err = await vcf(api_url, command, str(source))
            assert code == 2 and reason in err and "Traceback" not in err, (command, source, err)


async def test_a_closed_stdout_pipe_ends_quietly(api_url):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as after `vcf orders | head -1`
    proc = await asyncio.create_subprocess_exec(
        VCF, "orders", stdout=write_end, stderr=asyncio.subprocess.PIPE,
        env={"VCF_API_URL": api_url, "VCF_API_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    os.close(write_end)
    _, err = await proc.communicate()
    assert "Traceback" not in err.decode() and "BrokenPipe" not in err.decode(), err.decode()
