"""All-in-one local runner (``make run``): dev server + Web UI, worker, HTTP API, demo patient.

State lives in the data directory (``.data/``, mode 0700: Temporal's SQLite file, the order
book, the development key ring ``key-ring.json``, mode 0600, created on the first run unless a
key ring is configured), so a second run finds every pathway where it was. The server stores
payloads encrypted; its Web UI decodes them through the API's ``/codec`` routes, open to
loopback callers since this is development. Ctrl-C stops the API, then the worker, then the
server. Ports and places: :class:`worker.settings.Settings` (TEMPORAL_PORT, TEMPORAL_UI_PORT,
VCF_API_HOST, VCF_API_PORT, VCF_DATA_DIR, VCF_KEY_RING, VCF_KEY_RING_FILE, VCF_CODEC_ORIGINS,
VCF_METRICS_HOST and VCF_METRICS_PORT: the worker's ``/metrics``, ``/healthz``, ``/readyz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import timedelta

import httpx

from activities.order_book import OrderBook
from api.app import create_app
from api.auth import ensure_dev_token, load_tokens
from api.jwt_auth import jwt_verifier
from api.main import serve
from api.server import ServerLimits
from pathway.contract import Enrollment
from security.codec import data_converter
from security.keyring import KeyRing, configured_key_ring, ensure_key_ring_file
from worker.data_dir import DataDirError, private_umask, secure_data_dir
from worker.dev_server import DevServer
from worker.logging import configure_logging
from worker.ops import OpsPortError, Readiness, exporter_address, ops_app, serving
from worker.runtime import build_worker, configure_runtime, run_until_signalled
from worker.settings import Settings
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


def development_key_ring(settings: Settings) -> tuple[KeyRing, str]:
    """The configured key ring if there is one (``VCF_KEY_RING``, ``VCF_KEY_RING_FILE``), else the
    data directory's, created on first use; and where it came from."""
    if settings.key_ring is not None or settings.key_ring_file is not None:
        source = "VCF_KEY_RING" if settings.key_ring is not None else str(settings.key_ring_path)
        return configured_key_ring(settings), source
    ring, created = ensure_key_ring_file(settings.key_ring_path)
    return ring, f"{settings.key_ring_path}{', created now' if created else ''}"


async def run_all(stop: asyncio.Event) -> None:
    """Start everything, print where to look, and run until ``stop`` is set."""
    settings = Settings()
    secure_data_dir(settings.data_dir)  # 0700, its files 0600: the key ring, the order book, Temporal's state
    api_host, api_port = settings.api_host, settings.api_port
    api_url = f"http://{api_host}:{api_port}"
    ring, ring_source = development_key_ring(settings)
    exporter = exporter_address() if settings.metrics_port else None
    configure_runtime(metrics_address=exporter)  # before the first client: the Runtime carries the exporter
    server = DevServer(settings.data_dir, port=settings.temporal_port, ui_port=settings.temporal_ui_port,
                       codec_endpoint=f"{api_url}/codec", namespace=settings.temporal_namespace)
    client = await server.start(data_converter(ring))
    try:
        book = OrderBook(settings.database)
        token = ensure_dev_token(settings.token_path)
        app = create_app(client=client, order_book=book, tokens=load_tokens(settings), keys_file=settings.api_keys_path,
                         jwt=jwt_verifier(settings), public_url=settings.public_url,
                         max_in_flight=settings.api_max_in_flight, codec_origins=settings.codec_origins,
                         codec_open_on_loopback=True, subscription_failure_window=settings.subscription_failure_window,
                         subscription_hosts=settings.subscription_hosts)
        async with contextlib.AsyncExitStack() as stack:
            metrics = "off (VCF_METRICS_PORT=0)"
            if exporter is not None:
                await stack.enter_async_context(serving(ops_app(exporter, Readiness(client, book.ping)),
                                                        settings.metrics_host, settings.metrics_port))
                metrics = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics  (API: {api_url}/metrics)"
            await stack.enter_async_context(build_worker(
                client, book, public_url=settings.public_url, tuning=settings.worker_tuning,
                graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_timeout)))
            api = asyncio.create_task(serve(app, api_host, api_port, ServerLimits.from_settings(settings)))
            await enroll_demo_patient(api_url, token, api)
            demo = f"{server.ui_url}/namespaces/{client.namespace}/workflows/{workflow_id_for(DEMO_PATIENT.id)}"
            print(f"\nTemporal Web UI: {server.ui_url}\nDemo patient:    {demo}\n"
                  f"HTTP API:        {api_url}/docs\n"
                  f"Worker metrics:  {metrics}\n"
                  f"API token:       {token}  (in {settings.token_path})\n"
                  f"Payload codec:   {api_url}/codec  (key ring {ring_source}; current key {ring.current})\n"
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
    private_umask()  # the data directory and all in it, temporal.db included (the server inherits it)
    configure_logging(os.environ.get("VCF_LOG_LEVEL", "WARNING"))
    try:
        run_until_signalled(run_all)
    except (DataDirError, OpsPortError) as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        os._exit(1)
    print("Stopped.", flush=True)
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
