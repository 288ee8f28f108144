"""Shared fixtures: the real Temporal servers from PyPI, started once per test session.

Tests sit in lanes, one folder each, and each folder marks its tests (``pytest -m unit``):
``unit/`` pure code, no Temporal, network or subprocess; ``workflow/`` the time-skipping test
server; ``integration/`` the dev server, HTTP, real processes and databases.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.order_book import OrderBook
from cli.simulate import start_test_server
from pathway.guideline import load_definition, released_definitions
from tests.helpers import DEV_SUGGEST_CONTINUE_AS_NEW, TEST_CONVERTER, TESTS
from worker.collector import keep_full_collections_short
from worker.runtime import binary, configure_runtime
from workflows import search_attributes as sa

# The test process starts and drops many workers: the interpreter's own collector, not one that
# keeps what survives (worker.collector, for a worker's long-lived cached pathways).
keep_full_collections_short(0)

LANES = ("unit", "workflow", "integration")
# The server fixtures a lane may use: none in the unit lane, the time-skipping server in the workflow lane.
SERVERS = {"ts_env": "workflow", "dev_env": "integration"}


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    """End the process without interpreter teardown (Temporal core exit crash, sdk-python #300)."""
    code = yield
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def lane_of(item: pytest.Item) -> str:
    """The lane a test sits in: the first folder under tests/."""
    path = item.path.resolve()  # TESTS is resolved too: a checkout under a symlink still matches
    parts = path.relative_to(TESTS).parts if path.is_relative_to(TESTS) else ()
    if len(parts) < 2 or parts[0] not in LANES:
        raise pytest.UsageError(f"{item.nodeid}: a test must sit in one of the lanes tests/{{{','.join(LANES)}}}/")
    lane = parts[0]
    for fixture, first_lane in SERVERS.items():
        if fixture in getattr(item, "fixturenames", ()) and LANES.index(lane) < LANES.index(first_lane):
            raise pytest.UsageError(f"{item.nodeid}: {fixture} is for tests/{first_lane}/ and later lanes, not {lane}")
    return lane


def pytest_collection_modifyitems(config, items):
    """Mark each test with its lane, and run the lanes fastest first (a module's tests stay together)."""
    for item in items:
        item.add_marker(getattr(pytest.mark, lane_of(item)))
    items.sort(key=lambda item: LANES.index(lane_of(item)))


@pytest.fixture(autouse=True, scope="session")
def _show_worker_errors():
    logging.basicConfig(level=logging.WARNING)
    configure_runtime(core_level="ERROR")


@pytest.fixture(scope="session")
def definition():
    """The current pathway definition from seeds/."""
    return load_definition()


@pytest.fixture(scope="session")
def definition_v1_1():
    """The guideline as released before the clinical safety rules (patients enrolled on it keep it)."""
    return released_definitions()["vcf-1.1"]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ts_env():
    """The time-skipping test server (one global clock: use it from one test at a time), its
    client encrypting payloads with the tests' key ring."""
    env = await start_test_server(TEST_CONVERTER)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env(tmp_path_factory):
    """The real dev server (SQLite file, custom search attributes, frequent continue-as-new), its
    client encrypting payloads with the tests' key ring."""
    db = tmp_path_factory.mktemp("temporal") / "temporal.db"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), dev_server_database_filename=str(db),
        search_attributes=sa.ALL, data_converter=TEST_CONVERTER,
        dev_server_extra_args=["--dynamic-config-value",
                               f"limit.historyCount.suggestContinueAsNew={DEV_SUGGEST_CONTINUE_AS_NEW}"])
    yield env
    await env.shutdown()


@pytest.fixture
def order_book(tmp_path):
    """A fresh SQLite order book."""
    return OrderBook(tmp_path / "orders.db")


@pytest.fixture
def task_queue():
    """A task queue of this test's own."""
    return f"test-{uuid.uuid4()}"
