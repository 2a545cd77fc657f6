"""Talk to the billing API the way clients do: GraphQL over HTTP with a bearer token."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import jwt

T = TypeVar("T")
JWT_SECRET = "test-suite-jwt-secret-0123456789abcdef"
APP_URL = "https://app.example.test"

ENTITLEMENT = """
query { entitlement { orgId plan status cancelAtPeriodEnd currentPeriodEnd trialEnd
                      hasBillingAccount limits updatedAt } }
"""
UPGRADE = """
mutation Upgrade($plan: String!, $interval: BillingInterval! = MONTH) {
  upgrade(plan: $plan, interval: $interval) {
    __typename
    ... on CheckoutSession { id url }
    ... on PortalSession { url flow }
    ... on BillingError { code message }
  }
}
"""
OPEN_PORTAL = """
mutation Portal($returnPath: String! = "/settings/billing", $flow: PortalFlow) {
  openPortal(returnPath: $returnPath, flow: $flow) {
    __typename
    ... on PortalSession { url flow }
    ... on BillingError { code message }
  }
}
"""


def new_org() -> str:
    """A fresh org id, so tests never share billing state."""
    return f"org_{uuid.uuid4().hex[:16]}"


def token(
    org: str, role: str = "owner", *, secret: str = JWT_SECRET, ttl: int = 600, **claims: Any
) -> str:
    """An HS256 token like the app's identity provider would issue."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": "user_1", "org_id": org, "org_role": role, "iat": now}
    body["exp"] = now + ttl
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


class Api:
    """A GraphQL client for one org."""

    def __init__(self, client: httpx.AsyncClient, org: str | None = None, role: str = "owner"):
        self.client = client
        self.org = org or new_org()
        self.role = role

    def headers(self) -> dict[str, str]:
        """The bearer header for this org and role."""
        return {"authorization": f"Bearer {token(self.org, self.role)}"}

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

    async def upgrade(self, plan: str, interval: str = "MONTH") -> dict[str, Any]:
        """Call upgrade; return the union member."""
        return dict((await self.gql(UPGRADE, {"plan": plan, "interval": interval}))["upgrade"])

    async def open_portal(
        self, return_path: str = "/settings/billing", flow: str | None = None
    ) -> dict[str, Any]:
        """Call openPortal; return the union member."""
        variables: dict[str, Any] = {"returnPath": return_path}
        if flow:
            variables["flow"] = flow
        return dict((await self.gql(OPEN_PORTAL, variables))["openPortal"])

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll the entitlement until check(entitlement) holds."""
        deadline = time.monotonic() + timeout
        while True:
            current = await self.entitlement()
            if check(current):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"entitlement never matched: {current}")
            await asyncio.sleep(0.05)


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    """The result of awaiting `work`, and how many seconds it took."""
    started = time.monotonic()
    result = await work
    return result, time.monotonic() - started


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until an async check passes."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.05)
