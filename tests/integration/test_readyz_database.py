"""``/readyz`` follows the database: 503 naming it while PostgreSQL is down, 200 once it is back; a
request that needs the database meanwhile is a 503 naming it too (retry later), never a 500."""

from __future__ import annotations

import pytest

from activities.order_book import OrderBook
from tests.helpers import eventually
from tests.integration.api_support import AUTH, build_app, http_client
from tests.postgres import PostgresServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_readyz_is_503_while_postgres_is_down_and_200_when_it_is_back(dev_env):
    server = PostgresServer().start()  # a server of its own: this test stops it
    book = OrderBook(server.new_database())
    try:
        async with http_client(build_app(dev_env, book, "unused"), authenticated=False) as http:
            assert (await http.get("/readyz")).json()["ready"] is True
            server.stop()
            r = await http.get("/readyz")
            assert r.status_code == 503, r.text
            assert [d for d in r.json()["detail"] if d.startswith("database: not answering")], r.json()
            assert not [d for d in r.json()["detail"] if d.startswith("temporal")]
            assert (await http.get("/healthz")).status_code == 200  # alive all the same
            orders = await http.get("/v1/orders", headers=AUTH)
            assert orders.status_code == 503, orders.text
            assert orders.headers["retry-after"] and "database" in " ".join(orders.json()["detail"])
            server.start()

            async def ready():
                return (await http.get("/readyz")).status_code == 200
            assert await eventually(ready, timeout=20), "the pool did not reconnect"
    finally:
        book.database.close()
        server.remove()
