"""All-in-one local runner (``make run``): dev server + Web UI, worker, API and a demo patient.

State lives under ``.data/`` (Temporal's SQLite file, the order book), so a second run finds
every pathway where it was. Ctrl-C stops the API, then the worker, then the server.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.order_book import OrderBook
from pathway.contract import Enrollment
from worker.dev_server import DevServer
from worker.logging import configure_logging
from worker.runtime import build_worker, run_until_signalled
from workflows.starter import start_pathway

DEMO_PATIENT = Enrollment(id="pt-demo-0001", fracture_level="L2", height_loss_pct=25, pain_nrs=8,
                          onset_days_before_enrollment=2)


async def run_all(stop: asyncio.Event) -> None:
    """Start everything, print where to look, and run until ``stop`` is set."""
    data_dir = Path(os.environ.get("VCF_DATA_DIR", ".data"))
    server = DevServer(data_dir, port=int(os.environ.get("TEMPORAL_PORT", 7233)),
                       ui_port=int(os.environ.get("TEMPORAL_UI_PORT", 8233)))
    client = await server.start()
    try:
        book = OrderBook(data_dir / "orders.db")
        async with build_worker(client, book):
            try:
                handle = await start_pathway(client, DEMO_PATIENT)
                demo = f"{server.ui_url}/namespaces/default/workflows/{handle.id}"
            except WorkflowAlreadyStartedError:
                demo = f"{server.ui_url}/namespaces/default/workflows (the demo pathway has ended)"
            print(f"\nTemporal Web UI: {server.ui_url}\nDemo patient:    {demo}\n"
                  f"Temporal:        {server.address}\nCtrl-C stops everything.\n", flush=True)
            await stop.wait()
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
