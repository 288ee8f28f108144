"""A real PostgreSQL server for the tests, in a temporary directory (Debian's ``postgresql``
package: ``initdb`` and ``pg_ctl``). It refuses to run as root, so as root it runs as the
``postgres`` system user. Missing binaries fail the test with how to install them: never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port

INSTALL = "install the PostgreSQL server binaries: `apt-get install -y postgresql` (Debian/Ubuntu)"
USER = "vcf"


def server_binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (``pg_config --bindir``, else the PATH)."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(bindir))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    pytest.fail(f"PostgreSQL's initdb and pg_ctl were not found: {INSTALL}", pytrace=False)


class PostgresServer:
    """One ``postgres`` on a free loopback port, trusting local connections, its data in a
    temporary directory; :meth:`new_database` gives each test a database of its own."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.dir = Path(tempfile.mkdtemp(prefix="vcf-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:  # the server refuses root: its files belong to the postgres system user
            try:
                shutil.chown(self.dir, "postgres", "postgres")
            except LookupError:
                pytest.fail(f"no `postgres` system user to run the server as: {INSTALL}", pytrace=False)

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        """initdb (first time only), then start and wait until it accepts connections."""
        data = self.dir / "data"
        if not data.exists():
            done = self._run("initdb", "-D", str(data), "-A", "trust", "-U", USER, "--no-locale", "-E", "UTF8")
            if done.returncode:
                pytest.fail(f"initdb failed: {done.stderr or done.stdout}", pytrace=False)
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        done = self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "server.log"), "-w", "start")
        if done.returncode:
            log = (self.dir / "server.log").read_text() if (self.dir / "server.log").exists() else ""
            pytest.fail(f"PostgreSQL did not start: {done.stderr or done.stdout}\n{log[-2000:]}", pytrace=False)
        return self

    def stop(self) -> None:
        """Stop at once (nothing to keep: the data is the tests')."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of one database on this server."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        """Stop, then delete the data directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
