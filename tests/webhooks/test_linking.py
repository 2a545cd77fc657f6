"""Which org an event belongs to: customers we never linked, unknown ones, `cancel_at`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from harness.api import Api, new_org
from harness.db import rows
from harness.signing import event_body, post_signed
from harness.stack import Stack
from harness.stripe_side import customer_of, price_id
from harness.timing import eventually
from tests.support.journeys import click, subscribe
from tests.support.private_stack import PrivateStack, all_events, deliver, settled


@pytest.mark.parametrize(
    "event_type",
    ["customer.subscription.updated", "invoice.paid", "customer.deleted"],
)
async def test_events_about_customers_stripe_does_not_know_are_acknowledged(
    client: httpx.AsyncClient, stack: Stack, event_type: str
) -> None:
    """A 2xx, not a retry storm: Stripe answers 404 for the customer, nothing is linked."""
    obj: dict[str, Any] = {"id": "cus_nobodyknows", "object": "customer"}
    if event_type != "customer.deleted":
        obj = {"id": "sub_nobodyknows", "customer": "cus_nobodyknows", "metadata": {}}
    body = event_body(event_type, obj)
    response = await post_signed(client, body)
    assert response.status_code == 200, response.text
    assert response.json()["duplicate"] is False
    event_id = json.loads(body)["id"]

    async def stored() -> dict[str, Any]:
        [row] = await rows(
            stack.settings.database_url,
            "SELECT status, attempts FROM webhook_events WHERE id = :id",
            id=event_id,
        )
        return row

    row = await eventually(stored, lambda r: r["status"] != "received", what="the apply")
    assert (row["status"], row["attempts"]) == ("ignored", 1)
    linked = await rows(
        stack.settings.database_url,
        "SELECT org_id FROM billing_accounts WHERE stripe_customer_id = 'cus_nobodyknows'",
    )
    assert linked == []


async def test_a_stripe_outage_during_a_webhook_is_retried(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """Unlike a 404, a 500 from Stripe is transient: the event is acknowledged, kept as failed
    with its error and a backoff, and the applier retries it on its own once Stripe is back."""
    body = event_body("invoice.paid", {"id": "in_x", "customer": "cus_outage"})
    event_id = json.loads(body)["id"]

    async def stored() -> dict[str, Any]:
        [row] = await rows(
            stack.settings.database_url,
            "SELECT status, attempts, last_error, next_attempt_at FROM webhook_events "
            "WHERE id = :id",
            id=event_id,
        )
        return row

    stack.control.fail("/v1/subscriptions", status=500, count=1000, method="GET")
    try:
        response = await post_signed(client, body)
        assert response.status_code == 200, response.text
        failed = await eventually(stored, lambda r: r["status"] == "failed", what="a failure")
    finally:
        stack.control.clear_faults()
    assert "StripeUnavailable" in failed["last_error"] and failed["next_attempt_at"] is not None
    retried = await eventually(
        stored, lambda r: r["status"] == "ignored", timeout=30, what="the retry"
    )
    assert retried["attempts"] == failed["attempts"] + 1 and retried["last_error"] is None


@pytest.mark.parametrize("checkout_first", [True, False], ids=["checkout-first", "checkout-last"])
async def test_checkout_completed_links_a_customer_we_never_saw(
    private: PrivateStack, checkout_first: bool
) -> None:
    """A customer made outside `upgrade` (no org in its metadata, none on the subscription):
    only `checkout.session.completed` names the org, through `client_reference_id`. Events
    before it are acknowledged and ignored; it links the customer and syncs the plan."""
    org = new_org()
    sdk = private.sdk
    customer = await asyncio.to_thread(sdk.v1.customers.create, {"email": "someone@example.test"})
    price = await asyncio.to_thread(price_id, sdk, "pro_monthly")
    session = await asyncio.to_thread(
        sdk.v1.checkout.sessions.create,
        {
            "mode": "subscription",
            "customer": customer.id,
            "client_reference_id": org,
            "line_items": [{"price": price, "quantity": 1}],
            "success_url": "https://app.example.test/ok",
            "cancel_url": "https://app.example.test/no",
        },
    )
    await click(str(session.url), "pay")
    events = [
        e
        for e in await all_events(private)
        if customer.id in json.dumps(e["data"]["object"]) and e["type"] != "customer.created"
    ]
    checkout = [e for e in events if e["type"] == "checkout.session.completed"]
    others = [e for e in events if e["type"] != "checkout.session.completed"]
    assert checkout and {"customer.subscription.created", "invoice.paid"} <= {
        e["type"] for e in others
    }
    ordered = checkout + others if checkout_first else others + checkout
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client, org)
        for event in ordered:
            assert await deliver(private.api.url, [json.dumps(event).encode()]) == []
            await settled(private.settings.database_url)
            if event in others and not checkout_first:
                assert (await api.entitlement())["hasBillingAccount"] is False
        entitlement = await api.entitlement()
    assert entitlement["plan"] == "pro" and entitlement["status"] == "ACTIVE"
    assert entitlement["hasBillingAccount"] is True
    [account] = await rows(
        private.settings.database_url,
        "SELECT stripe_customer_id FROM billing_accounts WHERE org_id = :org",
        org=org,
    )
    assert account["stripe_customer_id"] == customer.id


async def test_cancel_at_alone_schedules_a_cancellation(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    """Stripe's newer way: `cancel_at` set, `cancel_at_period_end` false."""
    await subscribe(api, "pro")
    [sub] = stripe_client.v1.subscriptions.list(
        params={"customer": customer_of(stripe_client, api.org)}
    ).data
    period_end = sub["items"]["data"][0]["current_period_end"]
    updated = stripe_client.v1.subscriptions.update(sub.id, {"cancel_at": period_end - 3600})
    assert updated.cancel_at_period_end is False and updated.cancel_at == period_end - 3600
    entitlement = await api.wait_for(lambda e: e["cancelAtPeriodEnd"])
    assert entitlement["plan"] == "pro" and entitlement["status"] == "ACTIVE"
