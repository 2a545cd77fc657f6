"""Tokens that must be refused, every way a bearer token can be wrong, for every transport's
authorization tests (HTTP and WebSocket)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from harness.api import JWT_SECRET
from tests.support.identity import JwksServer, SigningKey, claims, ec_key, rsa_key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand (for headers a library would refuse to produce)."""
    head = b64(json.dumps(header).encode())
    payload = b64(json.dumps(body).encode())
    return f"{head}.{payload}.{b64(signature)}"


def hs256_with(secret: bytes, body: dict[str, Any], **header: Any) -> str:
    """An HS256 token with any bytes as the secret (PyJWT refuses a PEM as HMAC secret)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", **header}).encode())
    payload = b64(json.dumps(body).encode())
    signing_input = f"{head}.{payload}".encode()
    return f"{head}.{payload}.{b64(hmac.new(secret, signing_input, hashlib.sha256).digest())}"


def public_pem(key: SigningKey) -> bytes:
    return bytes(
        key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


BadToken = Callable[[str, JwksServer], str | None]


def rsa_of(jwks: JwksServer) -> SigningKey:
    return jwks.keys[0]


def ec_of(jwks: JwksServer) -> SigningKey:
    return jwks.keys[1]


BAD_TOKENS: dict[str, BadToken] = {
    "no token": lambda org, j: None,
    "not a jwt": lambda org, j: "not-a-jwt",
    "alg none, no signature": lambda org, j: forged({"alg": "none", "typ": "JWT"}, claims(org)),
    "alg None with signature": lambda org, j: forged({"alg": "None"}, claims(org), b"sig"),
    "alg NONE": lambda org, j: forged({"alg": "NONE"}, claims(org)),
    "HS256 signed with the RSA public key PEM": lambda org, j: hs256_with(
        public_pem(rsa_of(j)), claims(org), kid="rsa-1"
    ),
    "HS256 signed with the RSA JWK as text": lambda org, j: hs256_with(
        json.dumps(rsa_of(j).jwk()).encode(), claims(org), kid="rsa-1"
    ),
    "HS512 with the right secret": lambda org, j: jwt.encode(
        claims(org), JWT_SECRET, algorithm="HS512"
    ),
    "HS256 with a wrong secret": lambda org, j: jwt.encode(
        claims(org), "another-secret-of-at-least-32-chars!", algorithm="HS256"
    ),
    "RS256 signed by a key the IdP does not publish": lambda org, j: rsa_key("rsa-1").sign(
        claims(org)
    ),
    "RS256 header on the EC key's kid": lambda org, j: rsa_key("x").sign(claims(org), kid="ec-1"),
    "ES256 header on the RSA key's kid": lambda org, j: ec_key("x").sign(claims(org), kid="rsa-1"),
    "unknown kid": lambda org, j: rsa_key("rsa-404").sign(claims(org)),
    "no kid": lambda org, j: jwt.encode(claims(org), rsa_of(j).private, algorithm="RS256"),
    "wrong iss": lambda org, j: rsa_of(j).sign(claims(org, iss="https://evil.example.test/")),
    "no iss": lambda org, j: rsa_of(j).sign(claims(org, iss=None)),
    "wrong aud": lambda org, j: rsa_of(j).sign(claims(org, aud="another-api")),
    "no aud": lambda org, j: rsa_of(j).sign(claims(org, aud=None)),
    "HS256 with wrong aud": lambda org, j: jwt.encode(
        claims(org, aud="another-api"), JWT_SECRET, algorithm="HS256"
    ),
    "expired": lambda org, j: rsa_of(j).sign(claims(org, ttl=-120)),
    "HS256 expired": lambda org, j: jwt.encode(claims(org, ttl=-120), JWT_SECRET, "HS256"),
    "no exp": lambda org, j: ec_of(j).sign(claims(org, exp=None)),
    "exp not a number": lambda org, j: rsa_of(j).sign(claims(org, exp="tomorrow")),
    "nbf in the future": lambda org, j: rsa_of(j).sign(claims(org, nbf=int(time.time()) + 600)),
    "no sub": lambda org, j: rsa_of(j).sign(claims(org, sub=None)),
    "no org claim": lambda org, j: rsa_of(j).sign(claims(org, org_id=None)),
    "org claim is a list": lambda org, j: rsa_of(j).sign(claims(org, org_id=[org, "org_b"])),
    "org claim with odd characters": lambda org, j: rsa_of(j).sign(claims(org, org_id=f"{org}/..")),
    "org claim with a trailing newline": lambda org, j: rsa_of(j).sign(
        claims(org, org_id=f"{org}\n")
    ),
    "HS256 org claim with a trailing newline": lambda org, j: jwt.encode(
        claims(org, org_id=f"{org}\n"), JWT_SECRET, "HS256"
    ),
    "no role claim": lambda org, j: rsa_of(j).sign(claims(org, org_role=None)),
    "tampered payload": lambda org, j: ".".join(
        [
            rsa_of(j).sign(claims(org)).split(".")[0],
            b64(json.dumps(claims(org, org_role="owner", org_id="org_other")).encode()),
            rsa_of(j).sign(claims(org)).split(".")[2],
        ]
    ),
}
