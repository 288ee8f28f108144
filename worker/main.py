"""The worker process: runs patient pathways and their order-book activities.

    TEMPORAL_ADDRESS=127.0.0.1:7233 VCF_DATA_DIR=.data python -m worker.main
"""

from __future__ import annotations

import asyncio
import os

from activities.order_book import OrderBook
from worker.logging import configure_logging
from worker.runtime import DEFAULT_DATA_DIR, build_worker, connect, run_until_signalled


async def run_worker(stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then drain and shut down."""
    client = await connect()
    book = OrderBook(DEFAULT_DATA_DIR / "orders.db")
    async with build_worker(client, book):
        await stop.wait()


def main() -> None:
    """Process entry point; SIGINT/SIGTERM stop the worker cleanly."""
    configure_logging(os.environ.get("VCF_LOG_LEVEL", "INFO"))
    run_until_signalled(run_worker)
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
