"""`openPortal`: a fresh, org-scoped Customer Portal session on every call."""

from __future__ import annotations

from typing import Any

import httpx

from harness.api import APP_URL, Api
from harness.stack import Stack
from harness.stripe_side import (
    customer_of,
    managed_configurations,
    portal_sessions,
    stripe_calls,
)
from tests.support.journeys import subscribe


async def test_org_without_customer_gets_no_customer(api: Api, stack: Stack) -> None:
    before = len(stripe_calls(stack, "/v1/billing_portal/sessions"))
    for flow in (None, "PAYMENT_METHOD_UPDATE", "SUBSCRIPTION_CANCEL"):
        result = await api.open_portal(flow=flow)
        assert result["__typename"] == "BillingError" and result["code"] == "NO_CUSTOMER"
    assert len(stripe_calls(stack, "/v1/billing_portal/sessions")) == before


async def test_portal_for_a_customer_without_subscription(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    await api.upgrade("pro")  # creates the customer, never pays
    customer_id = customer_of(stripe_client, api.org)

    home = await api.open_portal("/settings/billing?tab=invoices")
    assert home == {"__typename": "PortalSession", "url": home["url"], "flow": None}
    [call] = portal_sessions(stack, customer_id)
    assert call["params"]["return_url"] == f"{APP_URL}/settings/billing?tab=invoices"
    assert "flow_data" not in call["params"]
    managed = managed_configurations(stripe_client)
    assert call["params"]["configuration"] == managed[0]

    card = await api.open_portal("/settings/billing?tab=card#top", flow="PAYMENT_METHOD_UPDATE")
    assert card["flow"] == "PAYMENT_METHOD_UPDATE"
    back = f"{APP_URL}/settings/billing?tab=card&billing_flow=PAYMENT_METHOD_UPDATE#top"
    assert portal_sessions(stack, customer_id)[-1]["params"]["flow_data"] == {
        "type": "payment_method_update",
        "after_completion": {"type": "redirect", "redirect": {"return_url": back}},
    }

    for flow in ("SUBSCRIPTION_CANCEL", "SUBSCRIPTION_UPDATE"):
        result = await api.open_portal(flow=flow)
        assert result["__typename"] == "BillingError" and result["code"] == "NO_SUBSCRIPTION"
    assert len(portal_sessions(stack, customer_id)) == 2


async def test_flows_for_a_subscriber(api: Api, stack: Stack, stripe_client: Any) -> None:
    await subscribe(api, "pro")
    customer_id = customer_of(stripe_client, api.org)
    [sub] = stripe_client.v1.subscriptions.list(params={"customer": customer_id}).data

    cancel = await api.open_portal("/account", flow="SUBSCRIPTION_CANCEL")
    assert cancel["flow"] == "SUBSCRIPTION_CANCEL"
    flow_data = portal_sessions(stack, customer_id)[-1]["params"]["flow_data"]
    back = f"{APP_URL}/account?billing_flow=SUBSCRIPTION_CANCEL"
    assert flow_data == {
        "type": "subscription_cancel",
        "subscription_cancel": {
            "subscription": sub.id,
            "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": "stay20"}},
        },
        "after_completion": {"type": "redirect", "redirect": {"return_url": back}},
    }

    update = await api.open_portal(flow="SUBSCRIPTION_UPDATE")
    assert update["flow"] == "SUBSCRIPTION_UPDATE"
    flow_data = portal_sessions(stack, customer_id)[-1]["params"]["flow_data"]
    assert flow_data == {
        "type": "subscription_update",
        "subscription_update": {"subscription": sub.id},
        "after_completion": {
            "type": "redirect",
            "redirect": {
                "return_url": f"{APP_URL}/settings/billing?billing_flow=SUBSCRIPTION_UPDATE"
            },
        },
    }


async def test_every_call_mints_a_new_session(api: Api, stack: Stack, stripe_client: Any) -> None:
    await api.upgrade("pro")
    first, second = await api.open_portal(), await api.open_portal()
    assert first["url"] != second["url"]
    calls = portal_sessions(stack, customer_of(stripe_client, api.org))
    assert len(calls) == 2
    assert calls[0]["idempotency_key"] != calls[1]["idempotency_key"]


async def test_unsafe_return_paths_are_refused_before_stripe(api: Api, stack: Stack) -> None:
    await api.upgrade("pro")
    before = len(stripe_calls(stack, "/v1/billing_portal/sessions"))
    for path in ("https://evil.example", "//evil.example", "settings", "/\\evil.example", ""):
        result = await api.open_portal(path)
        assert result["code"] == "INVALID_RETURN_PATH", path
    assert len(stripe_calls(stack, "/v1/billing_portal/sessions")) == before


async def test_member_is_forbidden(client: httpx.AsyncClient, stack: Stack) -> None:
    owner = Api(client)
    await owner.upgrade("pro")
    member = Api(client, org=owner.org, role="member")
    before = len(stripe_calls(stack, "/v1/billing_portal/sessions"))
    result = await member.open_portal()
    assert result["code"] == "FORBIDDEN"
    assert len(stripe_calls(stack, "/v1/billing_portal/sessions")) == before
