"""`entitlement.features`: the plan's features in the plans file and the customer's active
entitlements in Stripe, following every Stripe-side change through the webhook alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.stack import Stack
from harness.stripe_side import customer_of, new_feature, price_id
from tests.support.journeys import click, subscribe
from tests.support.live import pushed_until, subscribed
from tests.support.private_stack import PrivateStack, deliver, new_events, settled

SUMMARY = "entitlements.active_entitlement_summary.updated"


def active_entitlements(stripe_client: Any, customer: str) -> list[str]:
    """Lookup keys of the customer's active entitlements, as Stripe has them (every page)."""
    found = stripe_client.v1.entitlements.active_entitlements.list(
        params={"customer": customer, "limit": 100}
    )
    return sorted(e.lookup_key for e in found.auto_paging_iter())


def types(bodies: list[bytes]) -> list[str]:
    """The event types of signed bodies, in order."""
    return [json.loads(body)["type"] for body in bodies]


async def test_features_follow_the_plan_and_end_with_the_subscription(
    api: Api, stripe_client: Any
) -> None:
    assert (await api.entitlement())["features"] == ["exports"]  # the default plan's
    team = await subscribe(api, "team")
    assert team["features"] == ["exports", "priority_support", "sso"]
    customer = customer_of(stripe_client, api.org)
    assert active_entitlements(stripe_client, customer) == team["features"]  # Stripe agrees

    switch = await api.upgrade("pro")
    assert switch["__typename"] == "PortalSession", switch
    await click(switch["url"], "confirm")
    pro = await api.wait_for(lambda e: e["plan"] == "pro")
    assert pro["features"] == ["exports", "priority_support"]

    [sub] = stripe_client.v1.subscriptions.list(params={"customer": customer}).data
    stripe_client.v1.subscriptions.cancel(sub.id)
    ended = await api.wait_for(lambda e: e["status"] == "CANCELED")
    assert (ended["plan"], ended["features"]) == ("free", ["exports"])
    assert active_entitlements(stripe_client, customer) == []


async def test_a_feature_granted_in_stripe_alone_shows_and_is_pushed(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    """A Dashboard product outside the plans file: its plan is the default one, and its
    features come from Stripe only, attached and detached by hand."""
    tag = api.org[-8:]
    product = stripe_client.v1.products.create(params={"name": f"Add-on {tag}"})
    price = stripe_client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    first = new_feature(stripe_client, f"addon_{tag}", product.id)
    assert (await api.upgrade("pro"))["__typename"] == "CheckoutSession"  # makes the customer
    customer = customer_of(stripe_client, api.org)
    stripe_client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": price.id}]}
    )
    added = await api.wait_for(lambda e: e["status"] == "ACTIVE")
    assert (added["plan"], added["features"]) == ("free", [f"addon_{tag}", "exports"])

    async with subscribed(stack.api.url, api.org) as live:
        current = await live.next()
        assert current == added
        new_feature(stripe_client, f"beta_{tag}", product.id)
        pushed = await pushed_until(live, current, lambda e: f"beta_{tag}" in e["features"])
        assert pushed[-1]["features"] == [f"addon_{tag}", f"beta_{tag}", "exports"]
        stripe_client.v1.products.features.delete(product.id, first)
        gone = await pushed_until(live, pushed[-1], lambda e: f"addon_{tag}" not in e["features"])
        assert gone[-1]["features"] == [f"beta_{tag}", "exports"]
        assert gone[-1]["updatedAt"] > added["updatedAt"]
    assert await api.entitlement() == gone[-1]


async def test_summaries_late_reordered_or_repeated_never_roll_features_back(
    private: PrivateStack,
) -> None:
    """More than a page of active entitlements (100), every one read; a feature attached in
    Stripe shows only once its summary event arrives; older summaries delivered after newer
    ones, and again, leave Stripe's current set."""
    url, sdk = private.settings.database_url, private.sdk
    product = str(sdk.v1.prices.retrieve(price_id(sdk, "pro_monthly")).product)
    extra = [f"extra_{i:03}" for i in range(101)]
    attachments = {key: new_feature(sdk, key, product) for key in extra}
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client)
        checkout = await api.upgrade("pro")
        await click(checkout["url"], "pay")
        session = await asyncio.to_thread(sdk.v1.checkout.sessions.retrieve, checkout["id"])
        customer, seen = str(session.customer), set[str]()
        with EmulatorControl(private.emulator.url) as control:
            control.clear_requests()
            assert await deliver(private.api.url, await new_events(private, customer, seen)) == []
            await settled(url, customer=customer)
            reads = {
                path: len(control.requests(path=path, method="GET"))
                for path in ("/v1/subscriptions", "/v1/entitlements/active_entitlements")
            }
        everything = sorted(["exports", "priority_support", *extra])
        assert (await api.entitlement())["features"] == everything
        # Each apply read both lists: 2 pages of entitlements per one of subscriptions.
        assert reads["/v1/entitlements/active_entitlements"] == 2 * reads["/v1/subscriptions"]

        new_feature(sdk, "late", product)
        attached = await new_events(private, customer, seen)
        assert types(attached) == [SUMMARY]
        await asyncio.sleep(0.5)  # the API reads only its rows: nothing until the webhook
        assert (await api.entitlement())["features"] == everything

        sdk.v1.products.features.delete(product, attachments["extra_000"])
        detached = await new_events(private, customer, seen)
        assert types(detached) == [SUMMARY]
        assert await deliver(private.api.url, detached) == []  # the newer one first
        await settled(url, customer=customer)
        now = sorted(["exports", "late", "priority_support", *extra[1:]])
        assert (await api.entitlement())["features"] == now
        assert await deliver(private.api.url, attached * 3 + detached) == []  # late, repeated
        await settled(url, customer=customer)
        assert (await api.entitlement())["features"] == now
