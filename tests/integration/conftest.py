"""Fixtures of the integration lane: the HTTP API over the dev server, with a real worker."""

from __future__ import annotations

import uuid

import pytest_asyncio

from activities.order_book import OrderBook
from tests.helpers import make_worker
from tests.integration.api_support import Stack, build_app, http_client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(dev_env, tmp_path_factory):
    """The app, a running worker on its own task queue, and an HTTP client (one per module)."""
    book = OrderBook(tmp_path_factory.mktemp("api") / "orders.db")
    task_queue = f"api-{uuid.uuid4()}"
    async with make_worker(dev_env, book, task_queue):
        app = build_app(dev_env, book, task_queue)
        async with http_client(app) as http:
            yield Stack(dev_env, app, book, task_queue, http)
