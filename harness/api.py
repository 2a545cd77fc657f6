"""Talk to the billing API the way clients do: GraphQL over HTTP with a bearer token, to the
running API or to an in-process app built on other settings."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt

from billing.kit.settings import Settings
from harness.timing import eventually
from server.app import create_app

JWT_SECRET = "test-suite-jwt-secret-0123456789abcdef"
APP_URL = "https://app.example.test"
APP_URLS = {
    "ios": "https://links.example.test/ios",
    "android": "https://links.example.test/android",
}
"""The suite's mobile apps (APP_URLS): their universal links / app links."""

ENTITLEMENT = """
query { entitlement { orgId plan status cancelAtPeriodEnd currentPeriodEnd trialEnd
                      hasBillingAccount limits updatedAt interval seats features } }
"""
BILLING_STATE = """
query { entitlement { plan status interval seats cancelAtPeriodEnd trialEnd currentPeriodEnd
                      requiredAction { code flow invoiceUrl since deadline }
                      pendingChange { plan interval seats effectiveAt }
                      discount { coupon name percentOff amountOff currency duration
                                 durationInMonths end } } }
"""
"""What a client renders the billing state from."""
UPGRADE = """
mutation Upgrade($plan: String!, $interval: BillingInterval! = MONTH, $seats: Int,
                 $app: String) {
  upgrade(plan: $plan, interval: $interval, seats: $seats, app: $app) {
    __typename
    ... on CheckoutSession { id url }
    ... on PortalSession { url flow }
    ... on BillingError { code message }
  }
}
"""
CHANGE_SEATS = """
mutation ChangeSeats($seats: Int!, $returnPath: String! = "/settings/billing", $app: String) {
  changeSeats(seats: $seats, returnPath: $returnPath, app: $app) {
    __typename
    ... on PortalSession { url flow }
    ... on BillingError { code message }
  }
}
"""
OPEN_PORTAL = """
mutation Portal($returnPath: String! = "/settings/billing", $flow: PortalFlow, $app: String) {
  openPortal(returnPath: $returnPath, flow: $flow, app: $app) {
    __typename
    ... on PortalSession { url flow }
    ... on BillingError { code message }
  }
}
"""


def new_org() -> str:
    """A fresh org id, so tests never share billing state."""
    return f"org_{uuid.uuid4().hex[:16]}"


def token_claims(org: str, role: str = "owner", ttl: int = 600, **extra: Any) -> dict[str, Any]:
    """The claims of a token for an org and role, valid for `ttl` seconds; `extra` adds or
    overrides claims, and a claim set to None is left out."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": "user_1", "org_id": org, "org_role": role, "iat": now}
    body["exp"] = now + ttl
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def token(
    org: str, role: str = "owner", *, secret: str = JWT_SECRET, ttl: int = 600, **claims: Any
) -> str:
    """An HS256 token like the app's identity provider would issue."""
    return jwt.encode(token_claims(org, role, ttl, **claims), secret, algorithm="HS256")


class Api:
    """A GraphQL client for one org."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        org: str | None = None,
        role: str = "owner",
        *,
        secret: str = JWT_SECRET,
    ):
        self.client = client
        self.org = org or new_org()
        self.role = role
        self.secret = secret

    def headers(self) -> dict[str, str]:
        """The bearer header for this org and role, signed with the API's secret."""
        return {"authorization": f"Bearer {token(self.org, self.role, secret=self.secret)}"}

    async def raw(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a GraphQL document; return the HTTP response."""
        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        return await self.client.post("/graphql", json=payload, headers=headers or self.headers())

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a document, expect no errors, return `data`."""
        response = await self.raw(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return dict(body["data"])

    async def entitlement(self) -> dict[str, Any]:
        """The org's entitlement."""
        return dict((await self.gql(ENTITLEMENT))["entitlement"])

    async def billing_state(self) -> dict[str, Any]:
        """The org's entitlement as `BILLING_STATE` selects it."""
        return dict((await self.gql(BILLING_STATE))["entitlement"])

    async def upgrade(
        self, plan: str, interval: str = "MONTH", seats: int | None = None, app: str | None = None
    ) -> dict[str, Any]:
        """Call upgrade (seats and app left out when None); return the union member."""
        variables: dict[str, Any] = {"plan": plan, "interval": interval}
        if seats is not None:
            variables["seats"] = seats
        if app is not None:
            variables["app"] = app
        return dict((await self.gql(UPGRADE, variables))["upgrade"])

    async def change_seats(
        self, seats: int, return_path: str = "/settings/billing", app: str | None = None
    ) -> dict[str, Any]:
        """Call changeSeats (app left out when None); return the union member."""
        variables: dict[str, Any] = {"seats": seats, "returnPath": return_path}
        if app is not None:
            variables["app"] = app
        return dict((await self.gql(CHANGE_SEATS, variables))["changeSeats"])

    async def open_portal(
        self,
        return_path: str = "/settings/billing",
        flow: str | None = None,
        app: str | None = None,
    ) -> dict[str, Any]:
        """Call openPortal (flow and app left out when None); return the union member."""
        variables: dict[str, Any] = {"returnPath": return_path}
        if flow:
            variables["flow"] = flow
        if app is not None:
            variables["app"] = app
        return dict((await self.gql(OPEN_PORTAL, variables))["openPortal"])

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll the entitlement until check(entitlement) holds; return it."""
        return await eventually(
            self.entitlement, check, timeout=timeout, what="the entitlement to match"
        )


OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "entitlement": (ENTITLEMENT, {}),
    "openPortal": (OPEN_PORTAL, {"returnPath": "/settings/billing"}),
    "upgrade": (UPGRADE, {"plan": "pro", "interval": "MONTH"}),
    "changeSeats": (CHANGE_SEATS, {"seats": 3}),
}
"""Each operation with variables it accepts, for tests that try them all."""


async def call(http: httpx.AsyncClient, operation: str, bearer: str | None) -> dict[str, Any]:
    """Run one operation with a bearer token (or none); the JSON body."""
    document, variables = OPERATIONS[operation]
    headers = {"authorization": f"Bearer {bearer}"} if bearer is not None else {}
    response = await http.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def error_codes(body: dict[str, Any]) -> list[str | None]:
    """The extensions.code of every GraphQL error in a response body."""
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


@asynccontextmanager
async def app_client(
    settings: Settings,
    clock: Callable[[], float] | None = None,
    jwks_clock: Callable[[], float] | None = None,
    **kwargs: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app built on these settings, and an HTTP client for it; `clock` is the
    time its per-org rate limit counts minutes by, `jwks_clock` its JWKS cache's."""
    app = create_app(settings)
    if clock is not None:
        app.state.services.rate_limit.clock = clock
    if jwks_clock is not None:
        app.state.services.auth.jwks.clock = jwks_clock
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=60, **kwargs
        ) as http:
            yield http
    finally:
        await app.state.services.db.dispose()
