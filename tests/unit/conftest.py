"""The unit lane stays pure: a unit test that starts a process or opens a connection fails at once
(it belongs in tests/integration/). The servers' fixtures are refused by the root conftest."""

from __future__ import annotations

import socket
import subprocess

import pytest


def _refuse(*args, **kwargs):
    raise AssertionError("a unit test starts no process and opens no connection: move it to tests/integration/")


@pytest.fixture(autouse=True)
def _no_processes_or_connections(monkeypatch):
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
