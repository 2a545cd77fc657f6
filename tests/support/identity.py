"""An identity provider for the tests: signing keys, tokens with its issuer and audience, and
a JWKS endpoint on a real port that can serve, fail or hang."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billing.kit.settings import Settings
from harness.api import token_claims
from harness.servers import ThreadedServer
from harness.stack import Stack

ISSUER = "https://idp.example.test/"
AUDIENCE = "billing-api"


def claims(org: str, role: str = "owner", ttl: int = 600, **extra: Any) -> dict[str, Any]:
    """Claims an identity provider configured with ISSUER/AUDIENCE would issue."""
    return token_claims(org, role, ttl, **{"iss": ISSUER, "aud": AUDIENCE, **extra})


@dataclass
class SigningKey:
    """A private key, its kid and algorithm."""

    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        """The public JWK."""
        public = self.private.public_key()
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        data: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """A token signed with this key (kid in the header unless overridden)."""
        headers = {"kid": self.kid, **header}
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


def rsa_key(kid: str) -> SigningKey:
    """A fresh RS256 key."""
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    """A fresh ES256 key."""
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


HANG_SECONDS = 30.0
"""How long a hanging JWKS endpoint keeps a request waiting (unless told to recover)."""


@dataclass
class JwksServer:
    """A tiny identity provider's key endpoint on a real port; counts fetches.

    `set_mode` switches its behaviour: "ok" serves the keys, "fail" answers 503, "hang"
    keeps each request waiting for HANG_SECONDS or until the mode changes.
    """

    keys: list[SigningKey]
    fetches: int = 0
    mode: str = "ok"
    server: ThreadedServer | None = field(default=None, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def set_mode(self, mode: str) -> None:
        """Serve ("ok"), fail ("fail") or hang ("hang") from now on."""
        self.mode = mode
        if mode == "hang":
            self._released.clear()
        else:
            self._released.set()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/.well-known/jwks.json"

    def start(self) -> JwksServer:
        async def jwks(_: Request) -> JSONResponse:
            self.fetches += 1
            if self.mode == "hang":
                await asyncio.to_thread(self._released.wait, HANG_SECONDS)
            if self.mode != "ok":
                return JSONResponse({"error": "unavailable"}, status_code=503)
            return JSONResponse({"keys": [key.jwk() for key in self.keys]})

        app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])
        self.server = ThreadedServer(app).start()
        return self

    def stop(self) -> None:
        self.set_mode("fail")  # release any hanging request so the server can exit
        if self.server is not None:
            self.server.stop()


def idp_settings(stack: Stack, jwks: JwksServer, **overrides: Any) -> Settings:
    """The stack's settings with JWKS, issuer and audience configured."""
    values = {
        "auth_jwks_url": jwks.url,
        "auth_issuer": ISSUER,
        "auth_audience": AUDIENCE,
        **overrides,
    }
    return stack.settings_with(**values)
