"""Orgs living through Stripe on a private stack: journeys through the API and the hosted pages,
the events they leave, and the entitlement Stripe's state implies."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.db import rows
from tests.support.journeys import cancel_in_portal, click
from tests.support.private_stack import CONCURRENCY, PrivateStack
from webhooks.handlers import target_of

EVENTS_SQL = "SELECT id, customer_id, status, attempts, last_error, next_attempt_at, lag_ms FROM webhook_events"


async def subscribe_orgs(private: PrivateStack, count: int) -> list[Api]:
    """`count` orgs each pay a pro Checkout through the private API (no event delivered yet)."""
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=60) as client:

        async def one() -> Api:
            async with gate:
                api = Api(client)
                checkout = await api.upgrade("pro")
                assert checkout["__typename"] == "CheckoutSession", checkout
                await click(checkout["url"], "pay")
                return api

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def all_on_pro(private: PrivateStack, orgs: list[Api]) -> None:
    """Every org's entitlement, read through the private API, is Pro and active."""
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        for api in orgs:
            got = await Api(client, api.org).entitlement()
            assert (got["plan"], got["status"]) == ("pro", "ACTIVE"), (api.org, got)


def target_customer(event: dict[str, Any]) -> str | None:
    """The customer the service applies an event for (None: stored as ignored at once)."""
    target = target_of(event["type"], event)
    return target.customer_id if target else None


def bodies_of(events: list[dict[str, Any]]) -> list[bytes]:
    """Events as Stripe delivers them."""
    return [json.dumps(e).encode() for e in events]


async def customers_by_org(private: PrivateStack) -> dict[str, str]:
    """org id -> the Stripe customer the service linked it to."""
    found = await rows(
        private.settings.database_url, "SELECT org_id, stripe_customer_id FROM billing_accounts"
    )
    return {r["org_id"]: r["stripe_customer_id"] for r in found}


def subscription_reads(control: EmulatorControl, customer: str) -> list[dict[str, Any]]:
    """The applier's re-reads of one customer: subscription lists filtered on it."""
    return [
        r
        for r in control.requests(path="/v1/subscriptions", method="GET")
        if r["params"].get("customer") == customer
    ]


PLAN_OF = {"pro_monthly": "pro", "pro_yearly": "pro", "team_monthly": "team"}


async def live_through(private: PrivateStack, client: httpx.AsyncClient, i: int) -> Api:
    """One org's lifecycle, through the API and the hosted pages."""
    api = Api(client)
    plan = "team" if i % 3 == 0 else "pro"
    checkout = await api.upgrade(plan)
    assert checkout["__typename"] == "CheckoutSession", checkout
    await click(checkout["url"], "pay")
    if i % 5 == 0:
        flow = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        await cancel_in_portal(flow["url"])
    elif i % 5 == 1:
        switch = await api.upgrade("pro", "YEAR")
        await click(switch["url"], "confirm")
    session = await asyncio.to_thread(private.sdk.v1.checkout.sessions.retrieve, checkout["id"])
    customer = str(session.customer)
    if i % 7 == 2:
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{private.emulator.url}/_emulator/customers/{customer}/card", json={"fails": True}
            )
    if i % 11 == 3:
        await asyncio.to_thread(private.sdk.v1.customers.delete, customer)
    return api


async def live_orgs(private: PrivateStack, client: httpx.AsyncClient, count: int) -> list[Api]:
    """`count` orgs, the i-th living through `live_through`'s variant i, CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def guarded(i: int) -> Api:
        async with gate:
            return await live_through(private, client, i)

    return list(await asyncio.gather(*(guarded(i) for i in range(count))))


def expected(private: PrivateStack, org: str, customer: str) -> dict[str, Any]:
    """The entitlement Stripe's state implies (each org here has one subscription)."""
    cus = private.sdk.v1.customers.retrieve(customer)
    if cus.to_dict().get("deleted"):
        return {
            "plan": "free",
            "status": "CANCELED",
            "hasBillingAccount": False,
            "cancelAtPeriodEnd": False,
        }
    [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
    paid = sub.status in ("trialing", "active", "past_due")
    lookup = sub["items"]["data"][0]["price"]["lookup_key"]
    return {
        "plan": PLAN_OF[lookup] if paid else "free",
        "status": sub.status.upper(),
        "hasBillingAccount": True,
        "cancelAtPeriodEnd": sub.status != "canceled"
        and bool(sub.cancel_at_period_end or sub.cancel_at),
    }
