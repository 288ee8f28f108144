"""The worker process: runs patient pathways and their order-book activities.

    TEMPORAL_ADDRESS=127.0.0.1:7233 VCF_DATABASE_URL=postgresql://... python -m worker.main

Configuration: :class:`worker.settings.Settings`. Without a usable key ring (``VCF_KEY_RING``
or its file) the worker refuses to start, naming what is wrong, and exits 2; a data directory
another user owns, or a metrics port it cannot bind, is refused (exit 1).

``VCF_METRICS_HOST:VCF_METRICS_PORT`` (default 127.0.0.1:9464; port 0: off) serves ``/metrics``
(Temporal's and the pathway's), ``/healthz`` and ``/readyz`` (:mod:`worker.ops`). On SIGTERM
or SIGINT the worker stops polling, answers ``/readyz`` 503, lets running activities finish for
up to ``VCF_SHUTDOWN_TIMEOUT`` seconds (then cancels them) and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from datetime import timedelta

from temporalio.converter import DataConverter

from activities.order_book import OrderBook
from security.codec import data_converter
from security.keyring import KeyRingError, configured_key_ring
from worker.data_dir import DataDirError, private_umask, secure_data_dir
from worker.logging import configure_logging
from worker.ops import OpsPortError, Readiness, exporter_address, ops_app, serving
from worker.runtime import TemporalConfigError, build_worker, configure_runtime, connect, run_until_signalled
from worker.settings import Settings

log = logging.getLogger("worker")


async def run_worker(stop: asyncio.Event, settings: Settings, converter: DataConverter) -> None:
    """Run until ``stop`` is set, then drain and shut down."""
    secure_data_dir(settings.data_dir)
    exporter = exporter_address() if settings.metrics_port else None
    configure_runtime(metrics_address=exporter)  # before the client: the Runtime carries the exporter
    client = await connect(settings, data_converter=converter)
    book = OrderBook(settings.database)
    readiness = Readiness(client, book.ping)
    # Built (its stores opened and migrated) before /readyz can answer: ready means ready to work.
    worker = build_worker(client, book, public_url=settings.public_url, tuning=settings.worker_tuning,
                          graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_timeout))
    async with contextlib.AsyncExitStack() as stack:
        if exporter is not None:  # outlives the worker: probes and scrapes are answered while it drains
            await stack.enter_async_context(serving(ops_app(exporter, readiness), settings.metrics_host,
                                                    settings.metrics_port))
        async with worker:
            await stop.wait()
            readiness.draining = True
            log.info("worker draining", extra={"timeout_s": settings.shutdown_timeout})
        log.info("worker stopped")


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
    except (DataDirError, OpsPortError, TemporalConfigError) as exc:
        log.error(str(exc))
        os._exit(1)
    os._exit(0)  # skip interpreter teardown: Temporal core exit crash (sdk-python #300)


if __name__ == "__main__":
    main()
