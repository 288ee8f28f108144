"""The worker process: runs patient pathways and their order-book activities.

    TEMPORAL_ADDRESS=127.0.0.1:7233 VCF_DATA_DIR=.data python -m worker.main

Configuration: :class:`worker.settings.Settings`. Without a usable key ring (``VCF_KEY_RING``
or its file) the worker refuses to start, naming what is wrong, and exits 2; a data directory
another user owns is refused (exit 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from temporalio.converter import DataConverter

from activities.order_book import OrderBook
from security.codec import data_converter
from security.keyring import KeyRingError, configured_key_ring
from worker.data_dir import DataDirError, private_umask, secure_data_dir
from worker.logging import configure_logging
from worker.runtime import build_worker, connect, run_until_signalled
from worker.settings import Settings

log = logging.getLogger("worker")


async def run_worker(stop: asyncio.Event, settings: Settings, converter: DataConverter) -> None:
    """Run until ``stop`` is set, then drain and shut down."""
    secure_data_dir(settings.data_dir)
    client = await connect(settings.temporal_address, data_converter=converter)
    book = OrderBook(settings.order_book_path)
    async with build_worker(client, book, tuning=settings.worker_tuning):
        await stop.wait()


def main() -> None:
    """Process entry point; SIGINT/SIGTERM stop the worker cleanly."""
    private_umask()  # the order book (and its -wal, -shm) is its owner's only
    configure_logging(os.environ.get("VCF_LOG_LEVEL", "INFO"))
    settings = Settings()
    try:
        converter = data_converter(configured_key_ring(settings))
    except KeyRingError as exc:
        log.error("worker cannot start", extra={"reason": str(exc)})
        sys.stderr.flush()
        os._exit(2)
    try:
        run_until_signalled(lambda stop: run_worker(stop, settings, converter))
    except DataDirError as exc:
        log.error(str(exc))
        os._exit(1)
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
