"""JWT configuration and the reading of an identity provider's JWK Set (pure: no network)."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from api.jwt_auth import jwt_verifier, looks_like_jwt, signing_keys
from worker.settings import Settings

JWT_ENV = {"VCF_JWT_ISSUER": "https://idp.test", "VCF_JWT_AUDIENCE": "vcf-api",
           "VCF_JWT_JWKS_URL": "https://idp.test/jwks"}


def settings(monkeypatch, **env: str) -> Settings:
    for name in JWT_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_jwts_are_off_unless_configured_and_need_all_three_settings(monkeypatch):
    assert jwt_verifier(settings(monkeypatch)) is None
    verifier = jwt_verifier(settings(monkeypatch, **JWT_ENV))
    assert verifier is not None and (verifier.issuer, verifier.audience) == ("https://idp.test", "vcf-api")
    assert verifier.jwks.url == "https://idp.test/jwks" and verifier.leeway == 30
    with pytest.raises(ValidationError, match="VCF_JWT_AUDIENCE, VCF_JWT_JWKS_URL: required with the other"):
        settings(monkeypatch, VCF_JWT_ISSUER="https://idp.test")


@pytest.mark.parametrize("url", ["http://idp.test/jwks", "ftp://idp.test/jwks", "https:///jwks", "jwks.json"])
def test_the_jwks_url_is_https_or_loopback_http(monkeypatch, url):
    with pytest.raises(ValidationError, match="expected an https URL"):
        settings(monkeypatch, **{**JWT_ENV, "VCF_JWT_JWKS_URL": url})
    for loopback in ("http://127.0.0.1:9000/jwks", "http://localhost/jwks", "http://[::1]:8080/jwks"):
        assert settings(monkeypatch, **{**JWT_ENV, "VCF_JWT_JWKS_URL": loopback}).jwt_jwks_url == loopback


def jwk(key, algorithm: str, **members) -> dict:
    return {**json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(key)), **members}


def test_only_rs256_and_es256_signature_keys_with_an_id_are_kept():
    rsa_key = rsa.generate_private_key(65537, 2048)
    small_rsa = rsa.generate_private_key(65537, 1024)
    p256, p384 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    keys = signing_keys({"keys": [
        jwk(rsa_key.public_key(), "RS256", kid="rsa", use="sig"),
        jwk(p256.public_key(), "ES256", kid="ec"),
        jwk(rsa_key.public_key(), "RS256", kid="for-encryption", use="enc"),
        jwk(rsa_key.public_key(), "RS256", kid="other-alg", alg="RS512"),
        jwk(rsa_key.public_key(), "RS256"),  # no kid
        jwk(small_rsa.public_key(), "RS256", kid="too-small"),
        jwk(p384.public_key(), "ES384", kid="p384"),
        jwk(rsa_key, "RS256", kid="private"),  # a private key published by mistake is not used
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        "not a key",
    ]})
    assert {kid: k.algorithm for kid, k in keys.items()} == {"rsa": "RS256", "ec": "ES256"}
    with pytest.raises(ValueError, match="JWK Set"):
        signing_keys([])


def test_only_three_part_tokens_are_taken_for_jwts():
    assert looks_like_jwt("eyJh.eyJi.c2ln") and looks_like_jwt("eyJh.eyJi.")
    assert not looks_like_jwt("vcf_abc-DEF_123") and not looks_like_jwt("a.b") and not looks_like_jwt("a.b.c.d")
