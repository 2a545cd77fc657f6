"""Order cannot matter: an older event whose Stripe read lands late never overwrites the
state a newer event wrote (each re-read and its write happen under the customer's claim)."""

from __future__ import annotations

import asyncio
import json

import httpx

from emulator.client import EmulatorControl
from tests.support.api import Api
from tests.support.journeys import click
from tests.support.world import World, all_events, deliver, settled

DELAY = 2.0


async def _new_events(world: World, customer: str, seen: set[str]) -> list[bytes]:
    """Bodies of the customer's events not delivered yet, oldest first."""
    fresh = [
        e
        for e in reversed(await all_events(world))
        if e["id"] not in seen and customer in json.dumps(e["data"]["object"])
    ]
    seen.update(e["id"] for e in fresh)
    return [json.dumps(e).encode() for e in fresh]


async def test_a_late_stripe_read_does_not_undo_a_newer_event(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.api.url, timeout=30) as client:
        api = Api(client)
        checkout = await api.upgrade("pro")
        await click(checkout["url"], "pay")
        session = await asyncio.to_thread(world.sdk.v1.checkout.sessions.retrieve, checkout["id"])
        customer, subscription = str(session.customer), str(session.subscription)
        seen: set[str] = set()
        assert await deliver(world.api.url, await _new_events(world, customer, seen)) == []
        await settled(world.settings.database_url)
        before = await api.entitlement()
        assert before["plan"] == "pro" and before["cancelAtPeriodEnd"] is False

        # E1: a change that leaves the plan as it is. Its re-read of the subscriptions is
        # answered from this moment's state but lands DELAY seconds later.
        await asyncio.to_thread(
            world.sdk.v1.subscriptions.update, subscription, {"metadata": {"note": "e1"}}
        )
        older = await _new_events(world, customer, seen)
        assert older
        with EmulatorControl(world.emulator.url) as control:
            control.fail("/v1/subscriptions", method="GET", mode="delay", hang_seconds=DELAY)
        first = asyncio.create_task(deliver(world.api.url, older))
        await asyncio.sleep(DELAY / 4)  # E1 is now waiting on its stale answer

        # E2: the customer schedules a cancellation; its event arrives while E1 is in flight.
        await asyncio.to_thread(
            world.sdk.v1.subscriptions.update, subscription, {"cancel_at_period_end": True}
        )
        newer = await _new_events(world, customer, seen)
        assert newer
        assert await deliver(world.api.url, newer) == []
        assert await first == []
        await settled(world.settings.database_url)

        after = await api.entitlement()
    assert after["plan"] == "pro" and after["status"] == "ACTIVE"
    assert after["cancelAtPeriodEnd"] is True, "the late, older read overwrote the newer state"
