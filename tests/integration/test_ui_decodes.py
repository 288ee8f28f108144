"""The Web UI of `make run` shows the demo patient decoded, in a real browser, while the server
holds ciphertext: Playwright drives Debian's Chromium (the ``chromium`` on the PATH, which
``make browser`` installs) to the demo patient's page and finds its enrollment, and
``temporal workflow show`` without the codec finds none of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess

import pytest
from playwright.async_api import Page, async_playwright

from tests.helpers import free_port
from tests.integration.cleartext import clear_text
from tests.integration.dev_runner import Runner
from worker.dev import DEMO_PATIENT
from worker.runtime import binary
from workflows.models import workflow_id_for

pytestmark = pytest.mark.asyncio(loop_scope="session")

# engineering-notes.md: no sandbox as root, no GPU, nothing fetched from outside.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
# The demo patient's enrollment as the UI's input view prints it (decoded JSON, indented).
ENROLLMENT_SHOWN = [f'"fracture_level": "{DEMO_PATIENT.fracture_level}"',
                    f'"height_loss_pct": {DEMO_PATIENT.height_loss_pct:g}',
                    f'"onset_days_before_enrollment": {DEMO_PATIENT.onset_days_before_enrollment}']
TIMER_NAME = "opioid review"  # the one alarm's name (the earliest due step): user metadata, encrypted too
ENCRYPTED_SHOWN = base64.b64encode(b"binary/encrypted").decode()  # the UI prints a payload it cannot decode
UI_WAIT_MS = 60_000


def chromium() -> str:
    """Debian's chromium on the PATH; the test fails (never skips) without it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not on the PATH: `make browser` installs Debian's package (as root with apt-get), "
                    "or install it yourself (apt-get install chromium)")
    return path


async def shown_on(page: Page, texts: list[str]) -> None:
    """Wait until the page shows every text (the UI polls and renders as payloads come back decoded)."""
    await page.wait_for_function("texts => texts.every(t => document.body.innerText.includes(t))", arg=texts,
                                 timeout=UI_WAIT_MS)


async def test_the_web_ui_shows_the_demo_patient_decoded_and_the_server_holds_ciphertext(tmp_path):
    executable = chromium()
    ports = {"TEMPORAL_PORT": free_port(), "TEMPORAL_UI_PORT": free_port(), "VCF_API_PORT": free_port()}
    runner = Runner(tmp_path / "data", ports)
    try:
        await runner.wait_for("Ctrl-C stops everything.")
        workflow_id = workflow_id_for(DEMO_PATIENT.id)
        shown = await asyncio.to_thread(subprocess.run, [
            binary("temporal"), "workflow", "show", "--workflow-id", workflow_id, "--output", "json",
            "--address", f"127.0.0.1:{ports['TEMPORAL_PORT']}"], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        stored = clear_text(json.loads(shown.stdout))
        fields = [f'"{name}"' for name in DEMO_PATIENT.model_dump() if name != "id"]  # "id" is a word of the CLI's JSON
        assert [f for f in [*fields, TIMER_NAME] if f in stored] == []

        page_url = f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}/namespaces/default/workflows/{workflow_id}"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1600})
                await page.goto(page_url)
                try:
                    await shown_on(page, [*ENROLLMENT_SHOWN, TIMER_NAME])
                finally:
                    screenshot = tmp_path / "demo-patient.png"
                    await page.screenshot(path=str(screenshot), full_page=True)
                    print(f"screenshot of the demo patient's page: {screenshot}")
                # The control: the same page with the codec out of reach shows ciphertext, no enrollment.
                blind = await browser.new_page(viewport={"width": 1400, "height": 1600})
                await blind.route("**/codec/**", lambda route: route.abort())
                await blind.goto(page_url)
                await shown_on(blind, [ENCRYPTED_SHOWN])
                text = await blind.inner_text("body")
                assert [t for t in [*ENROLLMENT_SHOWN, TIMER_NAME] if t in text] == []
            finally:
                await browser.close()
        assert await runner.stop() == 0
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
