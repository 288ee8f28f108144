"""The system under drill, each part its own process on loopback: the Temporal dev server (its
SQLite file kept across restarts), two workers (``vcf-server worker``) and the API
(``vcf-server api``), started, killed and restarted by :class:`Supervisor`.

Every process gets the same environment: the drill's data directory (order book and registry),
its key ring, its token. ``VCF_DATABASE_URL``, when set in the drill's own environment, is passed
on unchanged, so a PostgreSQL order book is drilled the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client

from security.codec import data_converter
from security.keyring import KeyRing
from worker.dev_server import DevServer

WORKER_COUNT = 2


# Below Linux's ephemeral range (32768-60999): a port the kernel gives out for outgoing connections
# can be taken by one between our choosing it and a server binding it.
_PORTS = range(20000, 32768)


def free_port() -> int:
    """A loopback port nothing is bound to right now, outside the range outgoing connections use."""
    while True:
        port = random.choice(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another
            return port


@dataclass
class Supervisor:
    """Starts and stops the drill's processes; counts what it did to them."""

    data_dir: Path
    suggest_continue_as_new: int
    token: str = "drill-token"
    key_ring: KeyRing = field(default_factory=KeyRing.generate)
    workers: list[subprocess.Popen | None] = field(default_factory=lambda: [None] * WORKER_COUNT)
    api: subprocess.Popen | None = None
    worker_kills: int = 0
    server_restarts: int = 0
    workers_exited: int = 0  # workers that stopped by themselves (e.g. started while the server was down)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.api_port = free_port()
        # Each worker its own /metrics, /healthz and /readyz port (one busy port would stop the other).
        self.metrics_ports = [free_port() for _ in range(WORKER_COUNT)]
        self.server = DevServer(self.data_dir, port=free_port(), ui_port=free_port(),
                                dynamic_config={"limit.historyCount.suggestContinueAsNew":
                                                str(self.suggest_continue_as_new)})
        self.client: Client | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def order_book_path(self) -> Path:
        """The SQLite order book (and the API's registry) every process shares."""
        return self.data_dir / "orders.db"

    def env(self) -> dict[str, str]:
        """The environment of every worker and API process."""
        return {**os.environ, "TEMPORAL_ADDRESS": self.server.address, "VCF_DATA_DIR": str(self.data_dir),
                "VCF_KEY_RING": self.key_ring.to_json(), "VCF_API_TOKENS": self.token,
                "VCF_API_PORT": str(self.api_port), "VCF_LOG_LEVEL": "INFO"}

    def _spawn(self, command: str, log_name: str, **env: str) -> subprocess.Popen:
        with open(self.data_dir / log_name, "ab") as log:  # the child keeps its own copy of the file
            return subprocess.Popen([sys.executable, "-m", "server.main", command], env={**self.env(), **env},
                                    stdout=log, stderr=subprocess.STDOUT)

    async def start(self) -> None:
        """The server, the workers, then the API, once each answers."""
        self.client = await self.server.start(data_converter(self.key_ring))
        for i in range(WORKER_COUNT):
            self.start_worker(i)
        self.api = self._spawn("api", "api.log")
        await self._api_ready()

    def start_worker(self, index: int) -> None:
        """(Re)start worker ``index``."""
        self.workers[index] = self._spawn("worker", f"worker-{index}.log",
                                          VCF_METRICS_PORT=str(self.metrics_ports[index]))

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index``: no draining, no goodbye; its tasks time out and go elsewhere."""
        process = self.workers[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.worker_kills += 1
        self.workers[index] = None

    async def watch(self, stop: asyncio.Event) -> None:
        """Start again any worker that exited by itself, as a process manager would (a worker that
        starts while the server is down cannot connect and exits), until ``stop``."""
        while not stop.is_set():
            for index, process in enumerate(self.workers):
                if process is not None and process.poll() is not None:
                    self.workers_exited += 1
                    self.start_worker(index)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def restart_server(self, down_for: float) -> None:
        """Stop the dev server, wait ``down_for`` seconds, start it on the same database file."""
        self.server.stop()
        await asyncio.sleep(down_for)
        self.client = await self.server.start(data_converter(self.key_ring))
        self.server_restarts += 1

    async def _api_ready(self, timeout: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(base_url=self.api_url) as http:
            while True:
                if self.api is not None and self.api.poll() is not None:
                    raise RuntimeError(f"the API exited (code {self.api.returncode}); see {self.data_dir / 'api.log'}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"the API did not answer within {timeout:g}s")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """The API, the workers (gracefully), then the server."""
        for process in [self.api, *self.workers]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [self.api, *self.workers]:
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.server.stop()

    def logs(self, prefix: str) -> list[Path]:
        """The log files of one kind of process (``worker``, ``api``, ``temporal-server``)."""
        return sorted(self.data_dir.glob(f"{prefix}*.log"))
