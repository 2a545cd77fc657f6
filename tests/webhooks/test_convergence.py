"""60 orgs' lifecycles, delivered duplicated, shuffled and concurrent (and across a crash):
every entitlement ends equal to Stripe's state, no event applied twice, none lost."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from emulator.client import EmulatorControl
from harness.db import rows
from harness.stack import Stack
from tests.support.lifecycles import bodies_of, customers_by_org, expected, live_orgs
from tests.support.private_stack import (
    PENDING_SQL,
    PrivateStack,
    all_events,
    deliver,
    settled,
    with_duplicates,
)

ORGS = 60
"""Each variant of `live_through` (i % 3, 5, 7 and 11) at least five times over."""
DUPLICATES = 0.3


@pytest.mark.parametrize("crash", [False, True], ids=["steady", "crash-mid-burst"])
async def test_convergence(private: PrivateStack, stack: Stack, crash: bool) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=60) as client:
        orgs = await live_orgs(private, client, ORGS)
        with EmulatorControl(private.emulator.url) as control:
            control.advance(35 * 86_400)

        events = await all_events(private)
        bodies = with_duplicates(bodies_of(events), DUPLICATES, seed=1234 + crash)
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

        customers = await customers_by_org(private)
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
