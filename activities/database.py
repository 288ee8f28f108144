"""One small database layer under the order book, the API's registry and its audit trail: a SQLite
file (the default, ``<data dir>/orders.db``) or PostgreSQL (``VCF_DATABASE_URL=postgresql://...``).

The stores write their SQL once, in the subset both speak: ``?`` placeholders (translated for
psycopg), ``INSERT ... ON CONFLICT ... DO NOTHING``, row values, ``LIMIT``/``OFFSET``. Rows come
back as dicts. Where the two differ (an identity column, a trigger) a migration step names each
dialect's text (:func:`dialects`).

Each store declares its schema as a list of migrations (:class:`Store`), applied in order at open
and recorded in ``schema_migrations`` (store, version). A new table or column is a new entry at the
end of that list, never an edit of an applied one. Applying them is serialised between processes
(an advisory transaction lock on PostgreSQL, the write lock of ``BEGIN IMMEDIATE`` on SQLite), so
two replicas starting at once both come up with the same schema. A new store, or a new table in
one, looks like this::

    MIGRATIONS: list[list[Step]] = [
        ["CREATE TABLE IF NOT EXISTS referrals (id TEXT PRIMARY KEY, ...)"],   # version 1
        ["ALTER TABLE referrals ADD COLUMN answered_at TEXT"],                # version 2, added later
    ]

    class Referrals(Store):
        name = "referrals"            # its key in schema_migrations
        migrations = MIGRATIONS

        def answer(self, referral_id: str) -> bool:
            with self.database.transaction() as db:
                return db.execute("UPDATE referrals SET answered_at = ? WHERE id = ?",
                                  (utc_now(), referral_id)).rowcount == 1
"""

from __future__ import annotations

import os
import sqlite3
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

POOL_SIZE = 10  # connections per process and database; the worker's 32 activity threads queue for them
# Seconds a write waits for the database (SQLite's busy wait, PostgreSQL's pool, connection and lock
# waits): below an order activity's start-to-close timeout (10 s), so a write that cannot get through
# fails in the worker (logged, retried with backoff) instead of being abandoned by the server
# mid-wait, unseen, with a thread still blocked on it. The API answers 503 after the same wait.
BUSY_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5  # seconds to reach PostgreSQL before a connection attempt fails
POOL_TIMEOUT = BUSY_TIMEOUT  # seconds to wait for a pooled connection (the database down: fail, don't hang)
# SQLite's words for a database that is there but cannot be used just now (another process holds
# its write lock past the wait, the file cannot be opened or written).
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database", "disk I/O error")


class IntegrityError(ValueError):
    """A write broke a constraint of the schema (NOT NULL, CHECK, a trigger), on either backend."""


def as_stored(text: str) -> str:
    """Text as the database keeps and compares it: a NUL as U+FFFD, on both backends. PostgreSQL cannot store
    a NUL, and a write that failed on one would be retried for ever; the API refuses them, but one sent
    straight to a workflow reaches here."""
    return text.replace("\x00", "\ufffd")


class Session:
    """One connection inside a transaction (or a read): ``execute`` with ``?`` placeholders."""

    def __init__(self, raw: Any, dialect: str):
        self.raw, self.dialect = raw, dialect

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor answers ``fetchone``/``fetchall`` (dict rows) and ``rowcount``."""
        if self.dialect == "postgresql" and args:
            sql = sql.replace("%", "%%").replace("?", "%s")  # our SQL has no '?' inside literals
        if any(isinstance(arg, str) and "\x00" in arg for arg in args):
            args = [as_stored(arg) if isinstance(arg, str) else arg for arg in args]
        try:
            return self.raw.execute(sql, tuple(args)) if args else self.raw.execute(sql)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg") and _is_integrity_error(exc):
                raise IntegrityError(str(exc).splitlines()[0]) from exc
            raise

    def lock_table(self, table: str) -> None:
        """Keep other writers of ``table`` out until this transaction ends (readers go on). On
        SQLite the transaction holds the database's write lock already."""
        if self.dialect == "postgresql":
            self.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    def columns(self, table: str) -> set[str]:
        """The column names of ``table`` as the database holds it now."""
        cursor = self.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        cursor.fetchall()
        return {column[0] for column in cursor.description}


Step = str | Mapping[str, str] | Callable[[Session], None]
"""A migration step: portable SQL, one text per dialect (:func:`dialects`), or a function of the session."""


def dialects(*, sqlite: str, postgresql: str) -> Mapping[str, str]:
    """A migration step written once per dialect, where the portable subset has no way to say it."""
    return {"sqlite": sqlite, "postgresql": postgresql}


class Database(ABC):
    """A database opened by URL: ``postgresql://...`` (a connection pool), else a SQLite file path.

    :meth:`transaction` for writes (atomic), :meth:`read` for reads, :meth:`ping` for readiness.
    """

    dialect: str
    path: Path | None = None
    """The SQLite file (None on PostgreSQL)."""

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A context giving a :class:`Session` whose statements commit together or not at all.
        Nested in a transaction of the same thread, it is that transaction (which commits)."""
        held = self._held_session()
        if held is not None:
            yield held
            return
        with self._begin() as session:
            self._holder.session = session
            try:
                yield session
            finally:
                self._holder.session = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction of this thread: a block whose writes are undone alone if it raises,
        the transaction going on (PostgreSQL aborts a whole transaction at a failed statement
        otherwise). Outside one, a transaction of its own."""
        held = self._held_session()
        if held is None:
            with self.transaction():
                yield
            return
        held.execute("SAVEPOINT block")
        try:
            yield
        except BaseException:
            held.execute("ROLLBACK TO SAVEPOINT block")
            held.execute("RELEASE SAVEPOINT block")
            raise
        held.execute("RELEASE SAVEPOINT block")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A context giving a :class:`Session` for reads (inside a transaction of this thread, its
        session: what it wrote so far is seen)."""
        held = self._held_session()
        if held is not None:
            yield held
            return
        with self._reader() as session:
            yield session

    def _held_session(self) -> Session | None:
        return getattr(self._holder, "session", None)

    @property
    def _holder(self) -> threading.local:
        holder = self.__dict__.get("_holder")
        return holder if holder is not None else self.__dict__.setdefault("_holder", threading.local())

    @abstractmethod
    def _begin(self) -> Any:
        """A context giving a new :class:`Session` in a transaction (the dialect's)."""

    @abstractmethod
    def _reader(self) -> Any:
        """A context giving a new :class:`Session` for reads (the dialect's)."""

    def ping(self) -> None:
        """Raise unless the database answers a query."""
        with self.read() as db:
            db.execute("SELECT 1").fetchone()

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections (the database itself stays)."""

    def migrate(self, store: str, migrations: Sequence[Sequence[Step]]) -> None:
        """Apply the migrations of ``store`` not yet recorded, in order, each recorded as applied
        (version = position + 1). Serialised between processes; all in one transaction."""
        with self.transaction() as db:
            self._lock_schema(db)
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (store TEXT NOT NULL, version INTEGER NOT NULL,"
                       " applied_at TEXT NOT NULL, PRIMARY KEY (store, version))")
            done = {row["version"] for row in
                    db.execute("SELECT version FROM schema_migrations WHERE store = ?", (store,)).fetchall()}
            for version, steps in enumerate(migrations, start=1):
                if version in done:
                    continue
                for step in steps:
                    if callable(step):
                        step(db)
                    else:
                        db.execute(step if isinstance(step, str) else step[self.dialect])
                db.execute("INSERT INTO schema_migrations (store, version, applied_at) VALUES (?, ?, ?)",
                           (store, version, utc_now()))

    def _lock_schema(self, db: Session) -> None:  # noqa: B027 - SQLite: BEGIN IMMEDIATE holds it already
        """Hold the schema lock until the transaction ends."""


class SqliteDatabase(Database):
    """A SQLite file, created with mode 0600 (its ``-wal`` and ``-shm`` get the same): it holds
    patient data. One connection per thread, opened on first use and kept (safe across threads and
    processes); WAL so that readers never block the writer; every commit flushed to disk
    (``synchronous=FULL``: an order the activity reported written survives a power cut)."""

    dialect = "sqlite"

    def __init__(self, path: str | Path):
        self.file = self.path = Path(path)
        self.file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.file, os.O_CREAT | os.O_RDWR, 0o600))
        self._connections = threading.local()
        self._connection().execute("PRAGMA journal_mode=WAL")

    def __repr__(self) -> str:
        return f"SqliteDatabase({str(self.file)!r})"

    def _connection(self) -> sqlite3.Connection:
        # Kept open: a connection per operation cost more than the write itself (opening it, and
        # on closing the last one a checkpoint of the WAL into the file with its own disk flush).
        raw: sqlite3.Connection | None = getattr(self._connections, "raw", None)
        if raw is None:
            raw = sqlite3.connect(self.file, timeout=BUSY_TIMEOUT, isolation_level=None)
            raw.row_factory = _dict_row
            raw.execute("PRAGMA synchronous=FULL")
            self._connections.raw = raw
        return raw

    @contextmanager
    def _begin(self) -> Iterator[Session]:
        raw = self._connection()
        try:
            raw.execute("BEGIN IMMEDIATE")  # the write lock at once: no deadlock upgrading a read lock
            yield Session(raw, self.dialect)
            raw.execute("COMMIT")
        except BaseException:
            self.close()  # rolls back whatever is open; the next use starts on a fresh connection
            raise

    @contextmanager
    def _reader(self) -> Iterator[Session]:
        yield Session(self._connection(), self.dialect)

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        raw = getattr(self._connections, "raw", None)
        self._connections.raw = None
        if raw is not None:
            raw.close()


class PostgresDatabase(Database):
    """PostgreSQL through a psycopg 3 connection pool (shared by every store of the process on this
    URL). A connection is checked before it is handed out, so a database that restarted costs one
    failed check, not a failed order."""

    dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.url = url
        self.pool: ConnectionPool = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=POOL_TIMEOUT, open=True, name="vcf",
            check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT,
                    "options": f"-c lock_timeout={int(BUSY_TIMEOUT * 1000)}"})

    def __repr__(self) -> str:
        return "PostgresDatabase(...)"  # the URL may carry a password

    @contextmanager
    def _begin(self) -> Iterator[Session]:
        with self.pool.connection() as raw, raw.transaction():
            yield Session(raw, self.dialect)

    @contextmanager
    def _reader(self) -> Iterator[Session]:
        with self.pool.connection() as raw:
            yield Session(raw, self.dialect)

    def ping(self, timeout: float = 2.0) -> None:
        with self.pool.connection(timeout=timeout) as raw:
            raw.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with _opened_lock:
            if _opened.get(self.url) is self:
                del _opened[self.url]
        self.pool.close()

    def _lock_schema(self, db: Session) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))


_SCHEMA_LOCK = zlib.crc32(b"vcf schema_migrations")  # one advisory lock id for all our migrations
_opened: dict[str, PostgresDatabase] = {}
_opened_lock = threading.Lock()


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (else it is a SQLite file path)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_database(target: str | Path | Database) -> Database:
    """The database ``target`` names: a :class:`Database` as it is, a ``postgresql://`` URL (one
    pool per URL and process, shared by the stores), or a SQLite file path."""
    if isinstance(target, Database):
        return target
    if is_postgres_url(target):
        url = str(target)
        with _opened_lock:
            if url not in _opened:
                _opened[url] = PostgresDatabase(url)
            return _opened[url]
    return SqliteDatabase(target)


class Store:
    """A set of tables with its migrations, on a :class:`Database`.

    A subclass names itself (``name``, its key in ``schema_migrations``) and lists its
    ``migrations``: each a list of steps, applied once, in order, when the store opens.
    """

    name: ClassVar[str]
    migrations: ClassVar[Sequence[Sequence[Step]]] = ()

    def __init__(self, target: str | Path | Database):
        self.database = open_database(target)
        self.database.migrate(self.name, self.migrations)

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return self.database.path

    def ping(self) -> None:
        """Raise unless the database answers."""
        self.database.ping()


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is there but cannot be used just now (locked past the wait,
    down, unreachable): the service is unavailable, and the same request later is safe. Anything
    else (a missing table, bad SQL, a broken constraint) is a bug, not an outage."""
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).startswith(_SQLITE_UNAVAILABLE)
    module = type(exc).__module__
    if module.startswith("psycopg_pool"):
        return type(exc).__name__ in ("PoolTimeout", "PoolClosed", "TooManyRequests")
    if module.startswith("psycopg"):
        import psycopg

        return isinstance(exc, psycopg.OperationalError)  # connection lost or refused, lock_timeout, admin shutdown
    return False


def _is_integrity_error(exc: Exception) -> bool:
    import psycopg

    return isinstance(exc, psycopg.IntegrityError) or getattr(exc, "sqlstate", None) == "P0001"
