"""Configuration from the environment, with every default in one place.

Each process reads :class:`Settings` once at start; the worker and the API must agree on the
data directory, where the order book lives.

==================  ==========================  ============================================
variable            default                     what
==================  ==========================  ============================================
TEMPORAL_ADDRESS    127.0.0.1:7233              the Temporal server (worker, API)
VCF_DATA_DIR        .data                       local state: ``orders.db`` (the order book,
                                                shared by worker and API), ``api-token``
VCF_API_HOST        127.0.0.1                   where the API listens
VCF_API_PORT        8000
VCF_API_TOKENS      (unset: the token file)     the API's bearer tokens, comma-separated
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
==================  ==========================  ============================================

An empty variable counts as unset.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ORDER_BOOK_FILE = "orders.db"
TOKEN_FILE = "api-token"
KEY_RING_FILE = "key-ring.json"


class Settings(BaseSettings):
    """The environment's configuration (see the module docstring for each variable)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True)

    temporal_address: str = Field("127.0.0.1:7233", validation_alias="TEMPORAL_ADDRESS")
    data_dir: Path = Field(Path(".data"), validation_alias="VCF_DATA_DIR")
    api_host: str = Field("127.0.0.1", validation_alias="VCF_API_HOST")
    api_port: int = Field(8000, validation_alias="VCF_API_PORT")
    api_tokens: str | None = Field(None, validation_alias="VCF_API_TOKENS")
    api_url: str = Field("http://127.0.0.1:8000", validation_alias="VCF_API_URL")
    api_token: str | None = Field(None, validation_alias="VCF_API_TOKEN")
    temporal_port: int = Field(7233, validation_alias="TEMPORAL_PORT")
    temporal_ui_port: int = Field(8233, validation_alias="TEMPORAL_UI_PORT")
    key_ring: SecretStr | None = Field(None, validation_alias="VCF_KEY_RING")
    key_ring_file: Path | None = Field(None, validation_alias="VCF_KEY_RING_FILE")
    development: bool = Field(False, validation_alias="VCF_DEVELOPMENT")
    codec_origins_list: str | None = Field(None, validation_alias="VCF_CODEC_ORIGINS")

    @property
    def order_book_path(self) -> Path:
        """The order book's SQLite file (the API's registry shares it)."""
        return self.data_dir / ORDER_BOOK_FILE

    @property
    def token_path(self) -> Path:
        """The development token file (``make run`` prints its token)."""
        return self.data_dir / TOKEN_FILE

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
