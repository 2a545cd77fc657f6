"""60 orgs' lifecycles, delivered duplicated, shuffled and concurrent (and across a crash):
every entitlement ends equal to Stripe's state, no event applied twice, none lost."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest

from harness.api import Api
from harness.db import rows
from harness.stack import Stack
from tests.support.lifecycles import expected, live_through
from tests.support.private_stack import (
    CONCURRENCY,
    PENDING_SQL,
    PrivateStack,
    all_events,
    deliver,
    settled,
)

ORGS = 60
"""Each variant of `live_through` (i % 3, 5, 7 and 11) at least five times over."""
DUPLICATES = 0.3


@pytest.mark.parametrize("crash", [False, True], ids=["steady", "crash-mid-burst"])
async def test_convergence(private: PrivateStack, stack: Stack, crash: bool) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=60) as client:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def guarded(i: int) -> Api:
            async with gate:
                return await live_through(private, client, i)

        orgs = await asyncio.gather(*(guarded(i) for i in range(ORGS)))
        async with httpx.AsyncClient() as http:
            await http.post(
                f"{private.emulator.url}/_emulator/clock/advance", json={"seconds": 35 * 86_400}
            )

        events = await all_events(private)
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
            task = asyncio.create_task(deliver(private.api.url, bodies, halfway))
            await halfway.wait()
            private.api.kill()
            unacknowledged = await task
            assert unacknowledged, "the crash should have cut some deliveries"
            [left] = await rows(private.settings.database_url, PENDING_SQL)
            assert left["n"] > 0, "the crash should have left stored events unapplied"
            private.restart_api()
            bodies = unacknowledged
        assert await deliver(private.api.url, bodies) == []
        await settled(private.settings.database_url)

        accounts = await rows(
            private.settings.database_url, "SELECT org_id, stripe_customer_id FROM billing_accounts"
        )
        customers = {a["org_id"]: a["stripe_customer_id"] for a in accounts}
        for api in orgs:
            customer = customers[api.org]
            want = await asyncio.to_thread(expected, private, api.org, customer)
            got = await api.entitlement()
            assert {k: got[k] for k in want} == want, (api.org, customer)

    ids = [e["id"] for e in events]
    every = await rows(
        private.settings.database_url, "SELECT id, status, attempts FROM webhook_events"
    )
    stored = [r for r in every if r["id"] in set(ids)]
    assert len(stored) == len(ids)  # none lost
    assert {r["attempts"] for r in stored} == {1}  # none applied twice
    assert {r["status"] for r in stored} <= {"processed", "ignored"}
