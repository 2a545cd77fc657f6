"""Retention records under reordered and duplicated events: a private emulator holds the events
until the test delivers them, newest first and twice; each cancellation (with the reason and
comment the customer gave in the portal's survey), undo, accepted offer and resubscribe is
recorded once per subscription and period, and `cancellations --json` and `/metrics` say so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.stripe_side import customer_of
from tests.support.journeys import cancel_in_portal, click
from tests.support.metrics import Scrape, scrape
from tests.support.private_stack import (
    PrivateStack,
    deliver,
    new_events,
    settled,
    with_duplicates,
)

DAY = 86_400
MINUTE = 60


async def delivered(private: PrivateStack, bodies: list[bytes], customer: str, seed: int) -> None:
    """POST the bodies newest first with a share again, shuffled; wait until applied."""
    mixed = with_duplicates(bodies[::-1], 1.0, seed=seed)
    assert await deliver(private.api.url, mixed) == []
    await settled(private.settings.database_url, customer=customer)


async def subscribed(private: PrivateStack, api: Api, seen: set[str]) -> str:
    """Pay for `pro` on Checkout and deliver its events; the org's customer."""
    checkout = await api.upgrade("pro")
    await click(checkout["url"], "pay")
    customer = customer_of(private.sdk, api.org)
    await delivered(private, await new_events(private, customer, seen), customer, seed=0)
    return customer


def report(private: PrivateStack, *args: str) -> dict[str, Any]:
    """`python main.py cancellations --json` against the private stack."""
    done = private.cli("cancellations", "--json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def metrics_of(private: PrivateStack) -> Scrape:
    """The private API's `/metrics`, parsed."""
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        return await scrape(http)


def retention_of(private: PrivateStack, customer: str) -> dict[str, Any] | None:
    """The retention offer of the customer's last portal session (None when it made none)."""
    call = portal_sessions_of(private, customer)[-1]
    flow = call["params"]["flow_data"]
    assert flow["type"] == "subscription_cancel"
    found: dict[str, Any] | None = flow["subscription_cancel"].get("retention")
    return found


def portal_sessions_of(private: PrivateStack, customer: str) -> list[dict[str, Any]]:
    """The portal sessions created for the customer in the private emulator."""
    with EmulatorControl(private.emulator.url) as control:
        calls = control.requests(path="/v1/billing_portal/sessions", method="POST")
    return [r for r in calls if r["params"].get("customer") == customer]


async def test_reasons_undo_and_resubscribe_are_recorded_once_whatever_the_order(
    private: PrivateStack,
) -> None:
    """Cancel with a reason (the offer declined), keep the plan, cancel again with another
    reason and a comment: events newest first and doubled leave one standing cancellation with
    the last reason and comment. The period ends (`deleted`: still one), the org subscribes
    again (recorded as a resubscribe), and the events delivered again change nothing."""
    seen: set[str] = set()
    control = EmulatorControl(private.emulator.url)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        api = Api(http)
        customer = await subscribed(private, api, seen)
        assert report(private)["cancellations"] == 0

        first = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        assert retention_of(private, customer) == {
            "type": "coupon_offer",
            "coupon_offer": {"coupon": "stay20"},
        }
        await cancel_in_portal(first["url"], "too_expensive", "Costs too much")
        control.advance(MINUTE)
        home = await api.open_portal()
        await click(home["url"], "renew")  # "Keep my plan"
        control.advance(MINUTE)
        second = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        await cancel_in_portal(second["url"], "missing_features", "We need SSO")
        history = await new_events(private, customer, seen)
        await delivered(private, history, customer, 2)

        found = report(private)
        assert found["cancellations"] == 1 and found["undone"] == 0, found
        assert found["by_feedback"] == {"missing_features": 1}
        [comment] = found["comments"]
        assert (comment["org_id"], comment["feedback"], comment["comment"]) == (
            api.org,
            "missing_features",
            "We need SSO",
        )
        [sub] = private.sdk.v1.subscriptions.list(params={"customer": customer}).data
        assert sub.canceled_at is not None
        assert comment["at"] == datetime.fromtimestamp(sub.canceled_at, UTC).isoformat()
        # One offer per subscription and period, however often the cancel flow opens.
        assert (found["offers_made"], found["offers_accepted"], found["save_rate"]) == (1, 0, 0.0)

        control.advance(sub["items"].data[0].current_period_end - control.now() + MINUTE)
        ended = await new_events(private, customer, seen)
        assert any(json.loads(b)["type"] == "customer.subscription.deleted" for b in ended)
        await delivered(private, ended, customer, 3)
        again = await api.upgrade("pro", "YEAR")  # (another key: the clock moved, not the wall)
        await click(again["url"], "pay")
        back = await new_events(private, customer, seen)
        await delivered(private, back + history, customer, 4)

        found = report(private)
        assert (found["cancellations"], found["resubscribed"]) == (1, 1), found
        assert found["by_reason"] == {"cancellation_requested": 1}
        metrics = await metrics_of(private)
        assert metrics.value("billing_cancellations_total", feedback="missing_features") == 1
        assert metrics.value("billing_cancellations_total", feedback="too_expensive") == 0
        assert metrics.value("billing_retention_offers_made_total") == 1

        # On the new subscription: cancel (a new offer: another subscription), then keep it.
        control.advance(MINUTE)
        cancel = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        await cancel_in_portal(cancel["url"], "unused")
        control.advance(MINUTE)
        await click((await api.open_portal())["url"], "renew")
        await delivered(private, await new_events(private, customer, seen), customer, 5)
        found = report(private)
        assert (found["cancellations"], found["undone"], found["offers_made"]) == (1, 1, 2)
        assert found["by_feedback"] == {"missing_features": 1}  # the undone one is not counted
        metrics = await metrics_of(private)
        assert metrics.value("billing_cancellations_total", feedback="unused") == 1  # it happened
        table = private.cli("cancellations", "--since", "3650")
        assert table.returncode == 0, table.stderr
        for line in ("missing_features", "undone (kept their plan)", "save rate", "We need SSO"):
            assert line in table.stdout, table.stdout


async def test_an_accepted_offer_is_recorded_once_and_shown_on_the_entitlement(
    private: PrivateStack,
) -> None:
    """Accepting the offer gives the subscription the coupon, no cancellation: its events
    reversed and doubled count one accepted offer, and `entitlement.discount` shows it. The
    next cancel flow makes no offer (the subscription has a discount) and its cancellation,
    given no reason, counts under `none`: a save rate of 1 / 2."""
    seen: set[str] = set()
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as http:
        api = Api(http)
        customer = await subscribed(private, api, seen)

        cancel = await api.open_portal("/settings/billing", flow="SUBSCRIPTION_CANCEL")
        landed = await cancel_in_portal(cancel["url"], "too_expensive", accept_offer=True)
        assert landed.endswith("/settings/billing?billing_flow=SUBSCRIPTION_CANCEL"), landed
        accepted = await new_events(private, customer, seen)
        types = {json.loads(b)["type"] for b in accepted}
        assert {"customer.discount.created", "customer.subscription.updated"} <= types
        await delivered(private, accepted, customer, 6)

        state = await api.billing_state()
        assert state["cancelAtPeriodEnd"] is False
        discount = state["discount"]
        assert discount is not None
        assert (discount["coupon"], discount["name"], discount["percentOff"]) == (
            "stay20",
            "20% off for 3 months",
            20.0,
        )
        assert (discount["duration"], discount["durationInMonths"]) == ("REPEATING", 3)
        assert discount["end"] is not None
        found = report(private)
        assert (found["offers_made"], found["offers_accepted"], found["cancellations"]) == (
            1,
            1,
            0,
        )
        assert found["save_rate"] == 1.0

        plain = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
        assert retention_of(private, customer) is None  # already discounted: no offer
        await cancel_in_portal(plain["url"])
        await delivered(private, await new_events(private, customer, seen), customer, 7)
        await delivered(private, accepted, customer, 8)  # late duplicates of the acceptance

        found = report(private)
        assert (found["offers_made"], found["offers_accepted"]) == (1, 1), found
        assert (found["cancellations"], found["by_feedback"]) == (1, {"none": 1})
        assert found["save_rate"] == 0.5
        metrics = await metrics_of(private)
        assert metrics.value("billing_cancellations_total", feedback="none") == 1
        assert metrics.value("billing_retention_offers_accepted_total") == 1
        assert (await api.billing_state())["cancelAtPeriodEnd"] is True
