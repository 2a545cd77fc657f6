"""Each subscription lifecycle, driven by the emulator's hosted pages and clock, as the API sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from harness.api import Api
from harness.db import rows
from harness.stack import Stack
from harness.stripe_side import customer_of, price_id
from harness.timing import eventually
from tests.support.journeys import cancel_in_portal, click, subscribe
from webhooks.handlers import HANDLERS

DAY = 86_400


def _ts(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value).timestamp()


def _subscription(stripe_client: Any, org: str) -> Any:
    [sub] = stripe_client.v1.subscriptions.list(
        params={"customer": customer_of(stripe_client, org), "status": "all"}
    ).data
    return sub


async def test_subscribe(api: Api, stack: Stack, stripe_client: Any) -> None:
    entitlement = await subscribe(api, "pro")
    sub = _subscription(stripe_client, api.org)
    item = sub["items"]["data"][0]
    assert entitlement["status"] == "ACTIVE" and entitlement["plan"] == "pro"
    assert entitlement["limits"] == {"projects": 50, "seats": 10}
    assert entitlement["hasBillingAccount"] is True and entitlement["cancelAtPeriodEnd"] is False
    assert _ts(entitlement["currentPeriodEnd"]) == item["current_period_end"]
    assert entitlement["updatedAt"] is not None

    async def stored() -> list[dict[str, Any]]:
        return await rows(
            stack.settings.database_url,
            "SELECT type, status, attempts, lag_ms FROM webhook_events WHERE payload LIKE :org",
            org=f"%{api.org}%",
        )

    def delivered(events: list[dict[str, Any]]) -> bool:
        settled = all(e["status"] != "received" for e in events)
        return settled and {e["type"] for e in events} >= {
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid",
        }

    events = await eventually(stored, delivered, what="the checkout's events to be handled")
    for event in events:
        expected = "processed" if event["type"] in HANDLERS else "ignored"
        assert (event["status"], event["attempts"]) == (expected, 1), event
    assert all(e["lag_ms"] is not None for e in events)


async def test_trial_then_active(api: Api, stack: Stack, stripe_client: Any) -> None:
    entitlement = await subscribe(api, "team")
    assert entitlement["status"] == "TRIALING" and entitlement["plan"] == "team"
    sub = _subscription(stripe_client, api.org)
    assert _ts(entitlement["trialEnd"]) == sub.trial_end
    stack.control.advance(15 * DAY)
    entitlement = await api.wait_for(lambda e: e["status"] == "ACTIVE")
    assert entitlement["plan"] == "team"


async def test_switch_plan_in_the_portal(api: Api, stack: Stack, stripe_client: Any) -> None:
    await subscribe(api, "pro")
    portal = await api.open_portal()
    await click(portal["url"], f"switch-{price_id(stripe_client, 'team_monthly')}")
    entitlement = await api.wait_for(lambda e: e["plan"] == "team")
    assert entitlement["status"] == "ACTIVE"


async def test_cancel_at_period_end(api: Api, stack: Stack, stripe_client: Any) -> None:
    await subscribe(api, "pro")
    flow = await api.open_portal(flow="SUBSCRIPTION_CANCEL")
    await cancel_in_portal(flow["url"])
    entitlement = await api.wait_for(lambda e: e["cancelAtPeriodEnd"])
    assert entitlement["plan"] == "pro" and entitlement["status"] == "ACTIVE"
    sub = _subscription(stripe_client, api.org)
    assert sub.status == "active" and sub.cancel_at_period_end is True

    stack.control.advance(32 * DAY)
    entitlement = await api.wait_for(lambda e: e["status"] == "CANCELED")
    assert entitlement["plan"] == "free" and entitlement["cancelAtPeriodEnd"] is False
    assert entitlement["limits"] == {"projects": 3, "seats": 1}
    assert entitlement["hasBillingAccount"] is True

    # An ended subscription keeps the customer: the portal opens, flows need a subscription.
    assert (await api.open_portal())["__typename"] == "PortalSession"
    assert (await api.open_portal(flow="SUBSCRIPTION_CANCEL"))["code"] == "NO_SUBSCRIPTION"
    again = await api.upgrade("pro")
    assert again["__typename"] == "CheckoutSession"


async def test_payment_failure_then_recovery(api: Api, stack: Stack, stripe_client: Any) -> None:
    await subscribe(api, "pro")
    stack.control.set_card(customer_of(stripe_client, api.org), fails=True)
    stack.control.advance(32 * DAY)
    entitlement = await api.wait_for(lambda e: e["status"] == "PAST_DUE")
    assert entitlement["plan"] == "pro"  # Stripe is still retrying: keep the plan

    stack.control.set_card(customer_of(stripe_client, api.org), fails=False)
    portal = await api.open_portal(flow="PAYMENT_METHOD_UPDATE")
    await click(portal["url"], "update-payment-method")
    entitlement = await api.wait_for(lambda e: e["status"] == "ACTIVE")
    assert entitlement["plan"] == "pro"


async def test_customer_deleted(api: Api, stack: Stack, stripe_client: Any) -> None:
    await subscribe(api, "pro")
    stripe_client.v1.customers.delete(customer_of(stripe_client, api.org))
    entitlement = await api.wait_for(lambda e: not e["hasBillingAccount"])
    assert entitlement["plan"] == "free" and entitlement["status"] == "CANCELED"
    assert (await api.open_portal())["code"] == "NO_CUSTOMER"
    # Upgrading again creates exactly one new customer.
    result = await api.upgrade("pro")
    assert result["__typename"] == "CheckoutSession"
    customer_of(stripe_client, api.org)  # asserts there is exactly one
