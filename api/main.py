"""The API process: ``python -m api.main``, and :func:`serve` for embedding in another program.

Configuration: :class:`worker.settings.Settings` (the ``TEMPORAL_*`` connection, ``VCF_API_HOST``,
``VCF_API_PORT``, ``VCF_DATABASE_URL`` or ``VCF_DATA_DIR`` for the order book, ``VCF_DATA_DIR`` for
the token file, ``VCF_API_TOKENS``;
the key ring ``VCF_KEY_RING`` or its file, without which it refuses to start and exits 2; for
``/codec``, ``VCF_CODEC_ORIGINS`` and ``VCF_DEVELOPMENT``; for the identity provider's JWT access
tokens, ``VCF_JWT_ISSUER``, ``VCF_JWT_AUDIENCE`` and ``VCF_JWT_JWKS_URL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from activities.order_book import OrderBook
from api.app import create_app
from api.auth import load_tokens
from api.jwt_auth import jwt_verifier
from api.server import ServerLimits, uvicorn_config
from security.codec import data_converter
from security.keyring import KeyRingError, configured_key_ring
from worker.data_dir import private_umask, secure_data_dir
from worker.logging import configure_logging
from worker.runtime import connect
from worker.settings import Settings

log = logging.getLogger("api")


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the program embedding it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, limits: ServerLimits | None = None) -> None:
    """Serve ``app`` until cancelled; for use inside another asyncio program (no signal handlers).

    Cancelling the task stops accepting connections, lets requests in flight finish, then
    re-raises the cancellation. A server that cannot start raises RuntimeError (uvicorn itself
    would exit the whole process, skipping the host program's clean-up). ``limits``: timeouts and
    caps (:class:`api.server.ServerLimits`; its defaults unless given).
    """
    server = _EmbeddedServer(uvicorn_config(app, host, port, limits))

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:
            raise RuntimeError(f"the HTTP API could not start on {host}:{port} (is the port in use?)") from None

    task = asyncio.ensure_future(run())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise


async def _main() -> None:
    settings = Settings()
    secure_data_dir(settings.data_dir)
    # Lazily: an API started before Temporal answers /readyz (and Temporal's calls) with 503 until it is up.
    client = await connect(settings, data_converter=data_converter(configured_key_ring(settings)), lazy=True)
    app = create_app(client=client, order_book=OrderBook(settings.database), tokens=load_tokens(settings),
                     keys_file=settings.api_keys_path, jwt=jwt_verifier(settings), public_url=settings.public_url,
                     max_in_flight=settings.api_max_in_flight,
                     codec_origins=settings.codec_origins, codec_open_on_loopback=settings.development,
                     subscription_failure_window=settings.subscription_failure_window,
                     subscription_hosts=settings.subscription_hosts)
    log.info("api listening", extra={"host": settings.api_host, "port": settings.api_port})
    task = asyncio.ensure_future(serve(app, settings.api_host, settings.api_port, ServerLimits.from_settings(settings)))
    # serve() leaves signals to its host: here SIGTERM (and SIGINT) stop it gracefully.
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main() -> None:
    """Entry point of ``python -m api.main``."""
    private_umask()  # what this process writes in the data directory is its owner's only
    configure_logging(os.environ.get("VCF_LOG_LEVEL", "INFO"))
    code = 0
    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # serve() could not start (port in use), the data dir is not ours, bad Temporal config
        log.error(str(exc))
        code = 1
    except KeyRingError as exc:  # no usable key ring: refuse to start, naming what is wrong
        log.error("api cannot start", extra={"reason": str(exc)})
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without interpreter teardown: the Temporal core runtime can crash it (sdk-python #300).
    os._exit(code)


if __name__ == "__main__":
    main()
