"""200 orgs' lifecycles, delivered duplicated, shuffled and concurrent (and across a crash):
every entitlement ends equal to Stripe's state, no event applied twice, none lost."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import pytest

from tests.support.api import Api
from tests.support.db import rows
from tests.support.journeys import click
from tests.support.stack import Stack
from tests.support.world import CONCURRENCY, PENDING_SQL, World, all_events, deliver, settled

ORGS = 200
DUPLICATES = 0.3
PLAN_OF = {"pro_monthly": "pro", "pro_yearly": "pro", "team_monthly": "team"}


async def live_through(world: World, client: httpx.AsyncClient, i: int) -> Api:
    """One org's lifecycle, through the API and the hosted pages."""
    api = Api(client)
    plan = "team" if i % 3 == 0 else "pro"
    checkout = await api.upgrade(plan)
    await click(checkout["url"], "pay")
    if i % 5 == 0:
        flow = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        await click(flow["url"], "confirm")
    elif i % 5 == 1:
        switch = await api.upgrade("pro", "YEAR")
        await click(switch["url"], "confirm")
    session = await asyncio.to_thread(world.sdk.v1.checkout.sessions.retrieve, checkout["id"])
    customer = str(session.customer)
    if i % 7 == 2:
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{world.emulator.url}/_emulator/customers/{customer}/card", json={"fails": True}
            )
    if i % 11 == 3:
        await asyncio.to_thread(world.sdk.v1.customers.delete, customer)
    return api


def expected(world: World, org: str, customer: str) -> dict[str, Any]:
    """The entitlement Stripe's state implies (each org here has one subscription)."""
    cus = world.sdk.v1.customers.retrieve(customer)
    if cus.to_dict().get("deleted"):
        return {
            "plan": "free",
            "status": "CANCELED",
            "hasBillingAccount": False,
            "cancelAtPeriodEnd": False,
        }
    [sub] = world.sdk.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
    paid = sub.status in ("trialing", "active", "past_due")
    lookup = sub["items"]["data"][0]["price"]["lookup_key"]
    return {
        "plan": PLAN_OF[lookup] if paid else "free",
        "status": sub.status.upper(),
        "hasBillingAccount": True,
        "cancelAtPeriodEnd": sub.status != "canceled"
        and bool(sub.cancel_at_period_end or sub.cancel_at),
    }


@pytest.mark.parametrize("crash", [False, True], ids=["steady", "crash-mid-burst"])
async def test_convergence(world: World, stack: Stack, crash: bool) -> None:
    async with httpx.AsyncClient(base_url=world.api.url, timeout=60) as client:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def guarded(i: int) -> Api:
            async with gate:
                return await live_through(world, client, i)

        orgs = await asyncio.gather(*(guarded(i) for i in range(ORGS)))
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{world.emulator.url}/_emulator/clock/advance", json={"seconds": 35 * 86_400}
            )

        events = await all_events(world)
        rng = random.Random(1234 + crash)
        bodies = [json.dumps(e).encode() for e in events]
        bodies += rng.sample(bodies, int(len(bodies) * DUPLICATES))
        rng.shuffle(bodies)
        same_second = len(events) - len(
            {(e["created"], e["data"]["object"].get("customer")) for e in events}
        )
        assert same_second > 0  # the burst includes events of one customer in the same second

        if crash:
            halfway = asyncio.Event()
            task = asyncio.create_task(deliver(world.api.url, bodies, halfway))
            await halfway.wait()
            world.api.kill()
            unacknowledged = await task
            assert unacknowledged, "the crash should have cut some deliveries"
            [left] = await rows(world.settings.database_url, PENDING_SQL)
            assert left["n"] > 0, "the crash should have left stored events unapplied"
            world.restart_api()
            bodies = unacknowledged
        assert await deliver(world.api.url, bodies) == []
        await settled(world.settings.database_url)

        accounts = await rows(
            world.settings.database_url, "SELECT org_id, stripe_customer_id FROM billing_accounts"
        )
        customers = {a["org_id"]: a["stripe_customer_id"] for a in accounts}
        for api in orgs:
            customer = customers[api.org]
            want = await asyncio.to_thread(expected, world, api.org, customer)
            got = await api.entitlement()
            assert {k: got[k] for k in want} == want, (api.org, customer)

    ids = [e["id"] for e in events]
    every = await rows(
        world.settings.database_url, "SELECT id, status, attempts FROM webhook_events"
    )
    stored = [r for r in every if r["id"] in set(ids)]
    assert len(stored) == len(ids)  # none lost
    assert {r["attempts"] for r in stored} == {1}  # none applied twice
    assert {r["status"] for r in stored} <= {"processed", "ignored"}
