"""Configuration from the environment, with every default in one place.

Each process reads :class:`Settings` once at start; the worker and the API must agree on the
database (``VCF_DATABASE_URL``, or else the data directory's SQLite file), where the order book
lives. The Temporal connection comes from the SDK's environment configuration
(``temporalio.envconfig``, :func:`worker.runtime.connect`): the ``TEMPORAL_*`` variables below,
or a profile in a TOML file; the variables win over the file.

==================  ==========================  ============================================
variable            default                     what
==================  ==========================  ============================================
TEMPORAL_ADDRESS    127.0.0.1:7233              the Temporal frontend, host:port (worker, API;
                                                unset: the profile's, else this default)
TEMPORAL_NAMESPACE  default                     the Temporal namespace (unset: the profile's)
TEMPORAL_API_KEY    (unset)                     an API key (Temporal Cloud); turns TLS on
TEMPORAL_TLS_CLIENT_CERT_PATH (unset)           mTLS: the client certificate (PEM) ...
TEMPORAL_TLS_CLIENT_KEY_PATH  (unset)           ... and its private key; TLS on
TEMPORAL_TLS_SERVER_CA_CERT_PATH (unset)        a private CA for the server's certificate
TEMPORAL_PROFILE    (unset: ``default``)        the profile to read from the TOML file
TEMPORAL_CONFIG_FILE (unset: the SDK's default  a TOML file of profiles (``[profile.NAME]``:
                    ~/.config/temporalio/       address, namespace, api_key, ``tls``
                    temporal.toml)              client_cert_path, client_key_path, ...)
VCF_DATABASE_URL    (unset: SQLite)             ``postgresql://user@host:5432/db``: the order
                                                book, the API's registry and its audit trail in
                                                PostgreSQL (one database for every replica;
                                                the schema is migrated at start). Unset: the
                                                SQLite file ``<data dir>/orders.db`` (one host)
VCF_DATA_DIR        .data                       local state: ``orders.db`` (the order book,
                                                shared by worker and API, unless
                                                VCF_DATABASE_URL is set), ``api-token``,
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
VCF_METRICS_HOST    127.0.0.1                   where the worker's ``/metrics``, ``/healthz``
                                                and ``/readyz`` listen (``worker``, ``dev``)
VCF_METRICS_PORT    9464                        their port; 0 turns them off
VCF_SHUTDOWN_TIMEOUT 30                         seconds the worker lets running activities
                                                finish after SIGTERM before cancelling them
VCF_JWT_ISSUER      (unset: no JWTs)            the identity provider's ``iss``; with the two
                                                below, the API also accepts its JWT access
                                                tokens (:mod:`api.jwt_auth`); all three or none
VCF_JWT_AUDIENCE    (unset)                     the ``aud`` those tokens must name (this API)
VCF_JWT_JWKS_URL    (unset)                     the issuer's JWK Set: https, or http to a
                                                loopback host only
VCF_JWT_LEEWAY      30                          seconds of clock skew allowed on exp and nbf
VCF_JWT_JWKS_MIN_REFRESH 60                     least seconds between two JWKS fetches (an
                                                unknown key id fetches it again, at most so often)
VCF_SUBSCRIPTION_FAILURE_WINDOW 3600            seconds a subscriber may keep failing before its
                                                subscription goes to ``error`` (API)
VCF_SUBSCRIPTION_HOSTS (unset: any host)        hosts subscription endpoints may name,
                                                comma-separated; ``loopback`` names
                                                127.0.0.0/8 and localhost (API)
VCF_WORKER_CACHED_PATHWAYS 2000                 open pathways a worker keeps in memory; must
                                                hold every pathway it serves (README,
                                                "Measured": memory per cached pathway)
VCF_WORKER_WORKFLOW_TASKS 100                   workflow tasks a worker runs at once
VCF_WORKER_ACTIVITIES   32                      order-book activities at once (one thread each)
VCF_WORKER_GC_RESCAN 3600                       seconds between full garbage collections over
                                                every cached pathway (:mod:`worker.collector`);
                                                0: the interpreter's own collector
==================  ==========================  ============================================

An empty variable counts as unset.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
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
    # One thread per activity slot. The writes themselves go one at a time on SQLite (and share a
    # pool of POOL_SIZE connections on PostgreSQL); the slots keep activities queued in the worker
    # rather than on the server: with 8, a burst of events ran at 0.64-0.81x the floor's rate
    # (median 0.67x), with 16-100 at 0.76-0.92x (``make bench``'s burst; README, "Measured").
    max_concurrent_activities: int = 32
    # Seconds between full garbage collections that scan every cached pathway (worker.collector);
    # in between, a full collection scans only what is new. 0: the interpreter's own collector.
    gc_rescan_every: float = 3600.0


class Settings(BaseSettings):
    """The environment's configuration (see the module docstring for each variable)."""

    # hide_input_in_errors: an invalid value may be a secret (a database URL with its password, a key ring).
    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True, hide_input_in_errors=True)

    # The TEMPORAL_* variables are read by temporalio.envconfig (worker.runtime.connect); they are
    # declared here too so that --help lists them and the defaults live in one place.
    temporal_address: str = Field("127.0.0.1:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_api_key: SecretStr | None = Field(None, validation_alias="TEMPORAL_API_KEY")
    temporal_tls_client_cert_path: Path | None = Field(None, validation_alias="TEMPORAL_TLS_CLIENT_CERT_PATH")
    temporal_tls_client_key_path: Path | None = Field(None, validation_alias="TEMPORAL_TLS_CLIENT_KEY_PATH")
    temporal_tls_server_ca_cert_path: Path | None = Field(None, validation_alias="TEMPORAL_TLS_SERVER_CA_CERT_PATH")
    temporal_profile: str | None = Field(None, validation_alias="TEMPORAL_PROFILE")
    temporal_config_file: Path | None = Field(None, validation_alias="TEMPORAL_CONFIG_FILE")
    database_url: SecretStr | None = Field(None, validation_alias="VCF_DATABASE_URL")
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
    metrics_host: str = Field("127.0.0.1", validation_alias="VCF_METRICS_HOST")
    metrics_port: int = Field(9464, ge=0, le=65535, validation_alias="VCF_METRICS_PORT")
    shutdown_timeout: float = Field(30.0, ge=0, validation_alias="VCF_SHUTDOWN_TIMEOUT")
    jwt_issuer: str | None = Field(None, validation_alias="VCF_JWT_ISSUER")
    jwt_audience: str | None = Field(None, validation_alias="VCF_JWT_AUDIENCE")
    jwt_jwks_url: str | None = Field(None, validation_alias="VCF_JWT_JWKS_URL")
    jwt_leeway: float = Field(30.0, ge=0, le=300, validation_alias="VCF_JWT_LEEWAY")
    jwt_jwks_min_refresh: float = Field(60.0, ge=0, validation_alias="VCF_JWT_JWKS_MIN_REFRESH")
    subscription_failure_window: float = Field(3600.0, gt=0, validation_alias="VCF_SUBSCRIPTION_FAILURE_WINDOW")
    subscription_hosts_list: str | None = Field(None, validation_alias="VCF_SUBSCRIPTION_HOSTS")
    worker_cached_pathways: int = Field(WorkerTuning.max_cached_workflows, ge=1,
                                        validation_alias="VCF_WORKER_CACHED_PATHWAYS")
    worker_workflow_tasks: int = Field(WorkerTuning.max_concurrent_workflow_tasks, ge=2,
                                       validation_alias="VCF_WORKER_WORKFLOW_TASKS")
    worker_activities: int = Field(WorkerTuning.max_concurrent_activities, ge=1,
                                   validation_alias="VCF_WORKER_ACTIVITIES")
    worker_gc_rescan: float = Field(WorkerTuning.gc_rescan_every, ge=0, validation_alias="VCF_WORKER_GC_RESCAN")

    @field_validator("jwt_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        # Plain http would let anyone on the path hand us their keys: only to this host.
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme == "https" and parts.hostname:
            return value.strip()
        if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
            return value.strip()
        raise ValueError("expected an https URL (or http to a loopback host), e.g. https://idp.example.org/jwks")

    @model_validator(mode="after")
    def _jwt_all_or_none(self) -> Settings:
        given = {"VCF_JWT_ISSUER": self.jwt_issuer, "VCF_JWT_AUDIENCE": self.jwt_audience,
                 "VCF_JWT_JWKS_URL": self.jwt_jwks_url}
        missing = [name for name, value in given.items() if value is None]
        if 0 < len(missing) < len(given):
            raise ValueError(f"{', '.join(missing)}: required with the other JWT settings (set all three or none)")
        return self

    @field_validator("api_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else public_base_url(value)

    @property
    def public_url(self) -> str:
        """Where clients reach the API (ends with ``/``): ``VCF_API_PUBLIC_URL``, else the loopback port."""
        return self.api_public_url or f"http://127.0.0.1:{self.api_port}/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a PostgreSQL URL, postgresql://user@host:5432/dbname (unset: SQLite)")
        return value

    @property
    def subscription_hosts(self) -> tuple[str, ...] | None:
        """The hosts subscription endpoints may name (None: any)."""
        if not self.subscription_hosts_list:
            return None
        return tuple(h.strip().lower() for h in self.subscription_hosts_list.split(",") if h.strip())

    @property
    def worker_tuning(self) -> WorkerTuning:
        """The worker's cache size, concurrency and garbage collection."""
        return WorkerTuning(max_cached_workflows=self.worker_cached_pathways,
                            max_concurrent_workflow_tasks=self.worker_workflow_tasks,
                            max_concurrent_activities=self.worker_activities,
                            gc_rescan_every=self.worker_gc_rescan)

    @property
    def order_book_path(self) -> Path:
        """The order book's SQLite file (the API's registry shares it), when VCF_DATABASE_URL is unset."""
        return self.data_dir / ORDER_BOOK_FILE

    @property
    def database(self) -> str | Path:
        """Where the order book, the registry and the audit trail live: VCF_DATABASE_URL, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url else self.order_book_path

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

def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_base_url(value: str) -> str:
    """An http(s) base URL with a host and nothing after its path, ending with ``/``; ValueError otherwise."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None \
            or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("expected an http(s) URL with a host and no user, query or fragment, "
                         "e.g. https://vcf.example.org/")
    parts.port  # noqa: B018 - raises ValueError for a port out of range
    return parts.geturl().rstrip("/") + "/"
