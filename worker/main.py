"""The worker process: runs patient pathways and their order-book activities.

    TEMPORAL_ADDRESS=127.0.0.1:7233 VCF_DATA_DIR=.data python -m worker.main

Configuration: :class:`worker.settings.Settings`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from activities.order_book import OrderBook
from worker.data_dir import DataDirError, private_umask, secure_data_dir
from worker.logging import configure_logging
from worker.runtime import build_worker, connect, run_until_signalled
from worker.settings import Settings


async def run_worker(stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then drain and shut down."""
    settings = Settings()
    secure_data_dir(settings.data_dir)
    client = await connect(settings.temporal_address)
    book = OrderBook(settings.order_book_path)
    async with build_worker(client, book):
        await stop.wait()


def main() -> None:
    """Process entry point; SIGINT/SIGTERM stop the worker cleanly."""
    private_umask()  # the order book (and its -wal, -shm) is its owner's only
    configure_logging(os.environ.get("VCF_LOG_LEVEL", "INFO"))
    try:
        run_until_signalled(run_worker)
    except DataDirError as exc:
        logging.getLogger("vcf.worker").error(str(exc))
        os._exit(1)
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
