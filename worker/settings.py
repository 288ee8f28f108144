"""Configuration from the environment, with every default in one place.

Each process reads :class:`Settings` once at start; the worker and the API must agree on the
data directory, where the order book lives.

==================  ==========================  ============================================
variable            default                     what
==================  ==========================  ============================================
TEMPORAL_ADDRESS    127.0.0.1:7233              the Temporal server (worker, API)
VCF_DATA_DIR        .data                       local state: ``orders.db`` (the order book,
                                                shared by worker and API), ``api-token``,
                                                ``api-keys.json`` (`vcf token`)
VCF_API_HOST        127.0.0.1                   where the API listens
VCF_API_PORT        8000
VCF_API_TOKENS      (unset: the token file)     the API's bearer tokens, comma-separated
VCF_API_PUBLIC_URL  http://127.0.0.1:<port>/    the API's address as clients reach it: every
                                                absolute link it writes (Bundle ``link`` and
                                                ``fullUrl``) starts with it, never with the
                                                request's ``Host`` header
VCF_API_HEADER_TIMEOUT  10                      seconds a client has to send a request's head
                                                (a connection that sends nothing is closed too)
VCF_API_BODY_TIMEOUT    30                      seconds a client has to send a request's body
VCF_API_KEEP_ALIVE_TIMEOUT 5                    seconds an idle connection is kept open
VCF_API_MAX_CONNECTIONS 100                     connections (and requests) served at once;
                                                beyond it, new requests get a plain 503
VCF_API_MAX_HEADER_BYTES 16384                  largest request head (line and headers)
VCF_API_MAX_IN_FLIGHT   32                      above this many requests in progress, the API
                                                reports itself saturated (``/readyz`` 503)
VCF_API_URL         http://127.0.0.1:8000       where the CLI finds the API
VCF_API_TOKEN       (unset: the token file)     the CLI's bearer token
TEMPORAL_PORT       7233                        ``make run``: its dev server's port
TEMPORAL_UI_PORT    8233                        ``make run``: its Web UI's port
VCF_KEY_RING        (unset: the key ring file)  the payload key ring itself, as JSON
                                                (:mod:`security.keyring`; worker, API)
VCF_KEY_RING_FILE   <data dir>/key-ring.json    the key ring file, when VCF_KEY_RING is unset
                                                (``make run`` creates it if missing)
VCF_DEVELOPMENT     false                       development: the API's ``/codec`` routes are
                                                open to loopback callers (``make run`` is)
VCF_CODEC_ORIGINS   (unset: the Web UI's)       browser origins allowed to call ``/codec``,
                                                comma-separated; default
                                                ``http://127.0.0.1:$TEMPORAL_UI_PORT`` and
                                                ``http://localhost:$TEMPORAL_UI_PORT``
VCF_WORKER_CACHED_PATHWAYS 2000                 open pathways a worker keeps in memory; must
                                                hold every pathway it serves (README,
                                                "Measured": memory per cached pathway)
VCF_WORKER_WORKFLOW_TASKS 100                   workflow tasks a worker runs at once
VCF_WORKER_ACTIVITIES   8                       order-book activities at once (one thread each)
==================  ==========================  ============================================

An empty variable counts as unset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ORDER_BOOK_FILE = "orders.db"
TOKEN_FILE = "api-token"
API_KEYS_FILE = "api-keys.json"
KEY_RING_FILE = "key-ring.json"


@dataclass(frozen=True)
class WorkerTuning:
    """How much one worker takes on (defaults set from ``make bench``; README, "Measured")."""

    # Pathways kept in memory between their tasks. A pathway evicted from the cache replays its
    # whole history on its next event, so this must hold every open pathway the worker serves.
    max_cached_workflows: int = 2000
    max_concurrent_workflow_tasks: int = 100
    # One thread per activity slot: the order book is SQLite, whose writes queue anyway.
    max_concurrent_activities: int = 8


class Settings(BaseSettings):
    """The environment's configuration (see the module docstring for each variable)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True)

    temporal_address: str = Field("127.0.0.1:7233", validation_alias="TEMPORAL_ADDRESS")
    data_dir: Path = Field(Path(".data"), validation_alias="VCF_DATA_DIR")
    api_host: str = Field("127.0.0.1", validation_alias="VCF_API_HOST")
    api_port: int = Field(8000, validation_alias="VCF_API_PORT")
    api_tokens: str | None = Field(None, validation_alias="VCF_API_TOKENS")
    api_public_url: str | None = Field(None, validation_alias="VCF_API_PUBLIC_URL")
    api_header_timeout: float = Field(10.0, gt=0, validation_alias="VCF_API_HEADER_TIMEOUT")
    api_body_timeout: float = Field(30.0, gt=0, validation_alias="VCF_API_BODY_TIMEOUT")
    api_keep_alive_timeout: float = Field(5.0, gt=0, validation_alias="VCF_API_KEEP_ALIVE_TIMEOUT")
    api_max_connections: int = Field(100, ge=1, validation_alias="VCF_API_MAX_CONNECTIONS")
    api_max_header_bytes: int = Field(16 * 1024, ge=1024, validation_alias="VCF_API_MAX_HEADER_BYTES")
    api_max_in_flight: int = Field(32, ge=1, validation_alias="VCF_API_MAX_IN_FLIGHT")
    api_url: str = Field("http://127.0.0.1:8000", validation_alias="VCF_API_URL")
    api_token: str | None = Field(None, validation_alias="VCF_API_TOKEN")
    temporal_port: int = Field(7233, validation_alias="TEMPORAL_PORT")
    temporal_ui_port: int = Field(8233, validation_alias="TEMPORAL_UI_PORT")
    key_ring: SecretStr | None = Field(None, validation_alias="VCF_KEY_RING")
    key_ring_file: Path | None = Field(None, validation_alias="VCF_KEY_RING_FILE")
    development: bool = Field(False, validation_alias="VCF_DEVELOPMENT")
    codec_origins_list: str | None = Field(None, validation_alias="VCF_CODEC_ORIGINS")
    worker_cached_pathways: int = Field(WorkerTuning.max_cached_workflows, ge=1,
                                        validation_alias="VCF_WORKER_CACHED_PATHWAYS")
    worker_workflow_tasks: int = Field(WorkerTuning.max_concurrent_workflow_tasks, ge=2,
                                       validation_alias="VCF_WORKER_WORKFLOW_TASKS")
    worker_activities: int = Field(WorkerTuning.max_concurrent_activities, ge=1,
                                   validation_alias="VCF_WORKER_ACTIVITIES")

    @field_validator("api_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else public_base_url(value)

    @property
    def public_url(self) -> str:
        """Where clients reach the API (ends with ``/``): ``VCF_API_PUBLIC_URL``, else the loopback port."""
        return self.api_public_url or f"http://127.0.0.1:{self.api_port}/"

    @property
    def worker_tuning(self) -> WorkerTuning:
        """The worker's cache size and concurrency."""
        return WorkerTuning(max_cached_workflows=self.worker_cached_pathways,
                            max_concurrent_workflow_tasks=self.worker_workflow_tasks,
                            max_concurrent_activities=self.worker_activities)

    @property
    def order_book_path(self) -> Path:
        """The order book's SQLite file (the API's registry shares it)."""
        return self.data_dir / ORDER_BOOK_FILE

    @property
    def token_path(self) -> Path:
        """The development token file (``make run`` prints its token)."""
        return self.data_dir / TOKEN_FILE

    @property
    def api_keys_path(self) -> Path:
        """The local API keys (``vcf token``): names, scopes and digests, never the keys."""
        return self.data_dir / API_KEYS_FILE

    @property
    def key_ring_path(self) -> Path:
        """The key ring file (used when ``VCF_KEY_RING`` is unset)."""
        return self.key_ring_file or self.data_dir / KEY_RING_FILE

    @property
    def codec_origins(self) -> list[str]:
        """Browser origins allowed to call the API's ``/codec`` routes (the Web UI's)."""
        if self.codec_origins_list:
            return [o.strip().rstrip("/") for o in self.codec_origins_list.split(",") if o.strip()]
        return [f"http://127.0.0.1:{self.temporal_ui_port}", f"http://localhost:{self.temporal_ui_port}"]

def public_base_url(value: str) -> str:
    """An http(s) base URL with a host and nothing after its path, ending with ``/``; ValueError otherwise."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None \
            or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("expected an http(s) URL with a host and no user, query or fragment, "
                         "e.g. https://vcf.example.org/")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return parts.geturl().rstrip("/") + "/"
