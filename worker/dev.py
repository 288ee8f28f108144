"""All-in-one local runner (``make run``): dev server + Web UI, worker, HTTP API, demo patient.

State lives under ``.data/`` (Temporal's SQLite file, the order book), so a second run finds
every pathway where it was. Ctrl-C stops the API, then the worker, then the server.
Ports: TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233), VCF_API_HOST/VCF_API_PORT (127.0.0.1:8000).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from activities.order_book import OrderBook
from api.app import create_app
from api.auth import ensure_dev_token, load_tokens
from api.main import order_book_path, serve
from pathway.contract import Enrollment
from worker.dev_server import DevServer
from worker.logging import configure_logging
from worker.runtime import build_worker, run_until_signalled
from workflows.models import workflow_id_for

DEMO_PATIENT = Enrollment(id="pt-demo-0001", fracture_level="L2", height_loss_pct=25, pain_nrs=8,
                          onset_days_before_enrollment=2)


async def enroll_demo_patient(api_url: str, token: str, api: asyncio.Task, timeout: float = 30) -> None:
    """Enroll the demo patient through the API, as a care system would (idempotent)."""
    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as http:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if api.done():
                api.result()  # raises why the API stopped
            try:
                answer = await http.post("/v1/patients", json=DEMO_PATIENT.model_dump(mode="json"))
                break
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"demo enrollment refused: {answer.status_code} {answer.text}")


async def run_all(stop: asyncio.Event) -> None:
    """Start everything, print where to look, and run until ``stop`` is set."""
    data_dir = Path(os.environ.get("VCF_DATA_DIR", ".data"))
    server = DevServer(data_dir, port=int(os.environ.get("TEMPORAL_PORT", 7233)),
                       ui_port=int(os.environ.get("TEMPORAL_UI_PORT", 8233)))
    api_host, api_port = os.environ.get("VCF_API_HOST", "127.0.0.1"), int(os.environ.get("VCF_API_PORT", 8000))
    client = await server.start()
    try:
        book = OrderBook(order_book_path(data_dir))
        token = ensure_dev_token(data_dir)
        app = create_app(client=client, order_book=book, tokens=load_tokens(data_dir))
        async with build_worker(client, book):
            api = asyncio.create_task(serve(app, api_host, api_port))
            api_url = f"http://{api_host}:{api_port}"
            await enroll_demo_patient(api_url, token, api)
            demo = f"{server.ui_url}/namespaces/default/workflows/{workflow_id_for(DEMO_PATIENT.id)}"
            print(f"\nTemporal Web UI: {server.ui_url}\nDemo patient:    {demo}\n"
                  f"HTTP API:        {api_url}/docs\n"
                  f"API token:       {token}  (in {data_dir / 'api-token'})\n"
                  f"Temporal:        {server.address}\nCtrl-C stops everything.\n", flush=True)
            await asyncio.wait([api, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            if api.done():
                api.result()  # the API stopped by itself: say why
            api.cancel()
            await asyncio.gather(api, return_exceptions=True)
    finally:
        server.stop()


def main() -> None:
    """Entry point of ``make run``."""
    configure_logging(os.environ.get("VCF_LOG_LEVEL", "WARNING"))
    run_until_signalled(run_all)
    print("Stopped.", flush=True)
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
