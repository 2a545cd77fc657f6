"""Helpers for the hardening tests: in-process apps on other settings, the emulator's log,
a local JWKS server, and a guard against the rate-limit minute turning over mid-test."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from billing.ratelimit import WINDOW_SECONDS
from billing.settings import Settings
from tests.conftest import Stack
from tests.support.api import ENTITLEMENT, OPEN_PORTAL, UPGRADE
from tests.support.db import rows
from tests.support.servers import ThreadedServer
from web import create_app

ISSUER = "https://idp.example.test/"
AUDIENCE = "billing-api"


@asynccontextmanager
async def app_client(settings: Settings, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app built on these settings, and an HTTP client for it."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=60, **kwargs
        ) as http:
            yield http
    finally:
        await app.state.billing.db.dispose()


def new_org() -> str:
    """A fresh org id."""
    return f"org_{uuid.uuid4().hex[:16]}"


def stripe_calls(
    stack: Stack, path: str, method: str = "POST", mentions: str | None = None
) -> list[dict[str, Any]]:
    """Requests the emulator received on a path, optionally only those whose params
    mention a string (an org id or a customer id)."""
    found = stack.control.requests(path=path, method=method)
    if mentions is None:
        return found
    return [r for r in found if mentions in str(r["params"])]


async def customer_id(stack: Stack, org: str) -> str | None:
    """The org's Stripe customer id as the service stored it."""
    found = await rows(
        stack.settings.database_url,
        "SELECT stripe_customer_id FROM billing_accounts WHERE org_id = :org",
        org=org,
    )
    return str(found[0]["stripe_customer_id"]) if found else None


def wait_for_fresh_window(needed: float = 20.0) -> None:
    """Sleep into the next rate-limit window when fewer than `needed` seconds are left in
    this one, so a test's calls all fall in one window."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < needed:
        time.sleep(left + 0.05)


def error_codes(body: dict[str, Any]) -> list[str | None]:
    """The extensions.code of every GraphQL error in a response body."""
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


# A JWKS endpoint -------------------------------------------------------------------------


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


OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "entitlement": (ENTITLEMENT, {}),
    "openPortal": (OPEN_PORTAL, {"returnPath": "/settings/billing"}),
    "upgrade": (UPGRADE, {"plan": "pro", "interval": "MONTH"}),
}


async def call(http: httpx.AsyncClient, operation: str, token: str | None) -> dict[str, Any]:
    """Run one operation with a bearer token (or none); the JSON body."""
    document, variables = OPERATIONS[operation]
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    response = await http.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def claims(org: str, role: str = "owner", ttl: int = 600, **extra: Any) -> dict[str, Any]:
    """Claims an identity provider configured with ISSUER/AUDIENCE would issue."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "user_1",
        "org_id": org,
        "org_role": role,
        "iat": now,
        "exp": now + ttl,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}
