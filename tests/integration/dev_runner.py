"""`make run`'s runner (``python -m worker.dev``) as a child process, for the tests that drive it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, free_port


class Runner:
    """One ``python -m worker.dev`` process with its own ports and data directory."""

    def __init__(self, data_dir: Path, ports: dict[str, int]):
        # Every port its own, the worker's metrics port too (a busy one stops the runner).
        ports = {"VCF_METRICS_PORT": free_port(), **ports}
        env = {**os.environ, "VCF_DATA_DIR": str(data_dir), **{k: str(v) for k, v in ports.items()}}
        self.process = subprocess.Popen([sys.executable, "-m", "worker.dev"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []

    async def wait_for(self, text: str, timeout: float = 90) -> None:
        async def read() -> None:
            while True:
                line = await asyncio.to_thread(self.process.stdout.readline)
                if not line:
                    raise AssertionError("runner exited:\n" + "".join(self.output))
                self.output.append(line)
                if text in line:
                    return

        await asyncio.wait_for(read(), timeout)

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        await self.wait_for("Stopped.", timeout=60)
        return await asyncio.to_thread(self.process.wait, 30)
