"""Fixtures of the integration lane: the HTTP API over the dev server, with a real worker; a real
PostgreSQL server; a database of each backend."""

from __future__ import annotations

import uuid

import pytest
import pytest_asyncio

from activities.database import Database, open_database
from activities.order_book import OrderBook
from tests.helpers import make_worker
from tests.integration.api_support import Stack, build_app, http_client
from tests.postgres import PostgresServer

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (started on first use, stopped at once after)."""
    server = PostgresServer().start()
    yield server
    server.remove()


def new_database(backend: str, request: pytest.FixtureRequest, folder) -> Database:
    """An empty database of ``backend``: a SQLite file in ``folder``, or a new PostgreSQL database."""
    if backend == "sqlite":
        return open_database(folder / "orders.db")
    return open_database(request.getfixturevalue("postgres").new_database())


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path):
    """An empty database, once per backend (SQLite file, PostgreSQL)."""
    db = new_database(request.param, request, tmp_path)
    yield db
    db.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets ``STACK_BACKENDS = BACKENDS`` runs its ``stack`` tests on each backend."""
    backends = getattr(metafunc.module, "STACK_BACKENDS", None)
    if backends and "stack" in metafunc.fixturenames:
        metafunc.parametrize("stack", backends, indirect=True, scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_env, tmp_path_factory, request):
    """The app, a running worker on its own task queue, and an HTTP client (one per module); the
    order book, registry and audit trail on SQLite, or on the backend the module parametrizes."""
    database = new_database(getattr(request, "param", "sqlite"), request, tmp_path_factory.mktemp("api"))
    book = OrderBook(database)
    task_queue = f"api-{uuid.uuid4()}"
    try:
        async with make_worker(dev_env, book, task_queue):
            app = build_app(dev_env, book, task_queue)
            async with http_client(app) as http:
                yield Stack(dev_env, app, book, task_queue, http)
    finally:
        database.close()
