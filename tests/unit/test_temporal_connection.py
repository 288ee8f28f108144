"""The Temporal connection comes from the SDK's environment configuration (variables over a TOML
profile), with Settings' defaults for what neither names; one function, worker.runtime.connect."""

from __future__ import annotations

import os

import pytest
from temporalio.service import TLSConfig

from server.main import build_parser
from worker.runtime import TemporalConfigError, temporal_connection
from worker.settings import Settings

PROFILES = """
[profile.prod]
address = "temporal.hospital.example:7233"
namespace = "vcf-prod"

[profile.cloud]
address = "vcf.a1b2c.tmprl.cloud:7233"
namespace = "vcf.a1b2c"
api_key = "from-the-file"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No TEMPORAL_* variable and no default config file but the test's own."""
    for name in [n for n in os.environ if n.startswith("TEMPORAL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_nothing_configured_is_the_local_dev_server():
    assert temporal_connection(Settings()) == {"target_host": "127.0.0.1:7233", "namespace": "default"}


def test_the_variables_name_address_namespace_and_api_key(monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "vcf")
    monkeypatch.setenv("TEMPORAL_API_KEY", "k-123")
    config = temporal_connection(Settings())
    assert config["target_host"] == "temporal.example:7233" and config["namespace"] == "vcf"
    assert config["api_key"] == "k-123" and config["tls"] is True  # an API key implies TLS


def test_mtls_client_certificate_and_key(monkeypatch, tmp_path):
    (tmp_path / "client.pem").write_text("CERT")
    (tmp_path / "client.key").write_text("KEY")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    tls = temporal_connection(Settings())["tls"]
    assert isinstance(tls, TLSConfig) and (tls.client_cert, tls.client_private_key) == (b"CERT", b"KEY")


def test_a_toml_profile_and_the_variables_over_it(monkeypatch, tmp_path):
    (tmp_path / "temporal.toml").write_text(PROFILES)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "temporal.toml"))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    assert temporal_connection(Settings()) == {"target_host": "temporal.hospital.example:7233",
                                               "namespace": "vcf-prod"}
    monkeypatch.setenv("TEMPORAL_PROFILE", "cloud")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "elsewhere:7233")  # a variable wins over the file
    config = temporal_connection(Settings())
    assert (config["target_host"], config["namespace"], config["api_key"]) == \
        ("elsewhere:7233", "vcf.a1b2c", "from-the-file")


def test_a_profile_that_is_not_there_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "temporal.toml").write_text(PROFILES)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "temporal.toml"))
    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    with pytest.raises(TemporalConfigError, match="staging"):
        temporal_connection(Settings())


def test_help_lists_the_connection_and_database_variables():
    text = build_parser().format_help()
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS_CLIENT_CERT_PATH",
                 "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "VCF_DATABASE_URL"):
        assert name in text, name


def test_a_database_url_must_be_postgresql_and_is_not_echoed(monkeypatch):
    monkeypatch.setenv("VCF_DATABASE_URL", "mysql://vcf:s3cret@db/vcf")
    with pytest.raises(ValueError, match="VCF_DATABASE_URL") as err:
        Settings()
    assert "s3cret" not in str(err.value)
    monkeypatch.setenv("VCF_DATABASE_URL", "postgresql://vcf:s3cret@db:5432/vcf")
    settings = Settings()
    assert settings.database == "postgresql://vcf:s3cret@db:5432/vcf" and "s3cret" not in repr(settings)
