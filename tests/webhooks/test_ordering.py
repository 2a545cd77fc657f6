"""Order cannot matter: an older event whose Stripe read lands late never overwrites the
state a newer event wrote (each re-read and its write happen under the customer's lock)."""

from __future__ import annotations

import asyncio
import json

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.timing import eventually
from tests.support.journeys import click
from tests.support.lifecycles import subscription_reads
from tests.support.private_stack import PrivateStack, deliver, new_events, settled

DELAY = 2.0


async def test_a_late_stripe_read_does_not_undo_a_newer_event(private: PrivateStack) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client)
        checkout = await api.upgrade("pro")
        await click(checkout["url"], "pay")
        session = await asyncio.to_thread(private.sdk.v1.checkout.sessions.retrieve, checkout["id"])
        customer, subscription = str(session.customer), str(session.subscription)
        seen: set[str] = set()
        assert await deliver(private.api.url, await new_events(private, customer, seen)) == []
        await settled(private.settings.database_url)
        before = await api.entitlement()
        assert before["plan"] == "pro" and before["cancelAtPeriodEnd"] is False

        # E1: a change that leaves the plan as it is. Its re-read of the subscriptions is
        # answered from this moment's state but lands DELAY seconds later.
        await asyncio.to_thread(
            private.sdk.v1.subscriptions.update, subscription, {"metadata": {"note": "e1"}}
        )
        older = await new_events(private, customer, seen)
        assert older
        with EmulatorControl(private.emulator.url) as control:
            control.clear_requests()
            control.fail("/v1/subscriptions", method="GET", mode="delay", hang_seconds=DELAY)
            first = asyncio.create_task(deliver(private.api.url, older))
            await eventually(
                lambda: asyncio.to_thread(subscription_reads, control, customer),
                what="E1's re-read, answered and held back",
            )  # E1 is now waiting on its stale answer

        # E2: the customer schedules a cancellation; its event arrives while E1 is in flight.
        await asyncio.to_thread(
            private.sdk.v1.subscriptions.update, subscription, {"cancel_at_period_end": True}
        )
        newer = await new_events(private, customer, seen)
        assert newer
        assert await deliver(private.api.url, newer) == []
        assert await first == []
        await settled(private.settings.database_url)

        after = await api.entitlement()
    assert after["plan"] == "pro" and after["status"] == "ACTIVE"
    assert after["cancelAtPeriodEnd"] is True, "the late, older read overwrote the newer state"


async def test_late_and_repeated_seat_changes_never_roll_the_quantity_back(
    private: PrivateStack,
) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client)
        checkout = await api.upgrade("business", seats=3)
        await click(checkout["url"], "pay")
        session = await asyncio.to_thread(private.sdk.v1.checkout.sessions.retrieve, checkout["id"])
        customer = str(session.customer)
        seen: set[str] = set()
        bought = await new_events(private, customer, seen)
        for seats in (5, 4):  # two seat changes, each confirmed on Stripe's page
            link = await api.change_seats(seats)
            await click(link["url"], "confirm")
        changes = await new_events(private, customer, seen)
        quantities = [
            item["quantity"]
            for body in changes
            if (event := json.loads(body))["type"] == "customer.subscription.updated"
            for item in event["data"]["object"]["items"]["data"]
        ]
        assert quantities == [5, 4]  # each event's payload carries the quantity of its moment

        # Newest first, then the purchase, then every event again.
        everything = list(reversed(changes)) + bought + bought + changes
        assert await deliver(private.api.url, everything) == []
        await settled(private.settings.database_url)
        after = await api.entitlement()
    assert (after["plan"], after["seats"], after["limits"]["seats"]) == ("business", 4, 4)
