"""`upgrade`: Checkout for new subscribers, a confirmed portal switch for subscribers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness.api import APP_URL, Api
from harness.stack import Stack
from harness.stripe_side import (
    customer_of,
    managed_configurations,
    portal_sessions,
    price_id,
    stripe_calls,
)
from tests.support.journeys import click, subscribe


async def test_new_org_gets_a_checkout_session(api: Api, stack: Stack, stripe_client: Any) -> None:
    result = await api.upgrade("pro")
    assert result["__typename"] == "CheckoutSession"
    assert result["url"].startswith(stack.emulator.url) and result["id"].startswith("cs_")

    [customer_call] = stripe_calls(stack, "/v1/customers", mentions=api.org)
    assert customer_call["params"] == {"metadata": {"org_id": api.org}}
    assert customer_call["idempotency_key"] == f"org:{api.org}:customer:first"
    customer_id = customer_of(stripe_client, api.org)

    [checkout] = stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)
    params = checkout["params"]
    assert params["mode"] == "subscription"
    assert params["customer"] == customer_id
    assert params["line_items"] == [
        {"price": price_id(stripe_client, "pro_monthly"), "quantity": "1"}
    ]
    assert params["client_reference_id"] == api.org
    assert params["metadata"] == {"org_id": api.org}
    assert params["subscription_data"] == {"metadata": {"org_id": api.org}}
    assert params["success_url"] == (
        f"{APP_URL}/settings/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert params["cancel_url"] == f"{APP_URL}/settings/billing?checkout=canceled"
    # The suite's plans file has no [checkout]: every option at its default, sent as such.
    assert params["allow_promotion_codes"] == "false"
    assert params["automatic_tax"] == {"enabled": "false"}
    assert params["tax_id_collection"] == {"enabled": "false"}
    assert params["billing_address_collection"] == "auto"
    assert "customer_update" not in params and "payment_method_collection" not in params
    assert checkout["idempotency_key"].startswith(f"org:{api.org}:checkout:{customer_id}:")

    entitlement = await api.entitlement()
    assert (entitlement["plan"], entitlement["status"], entitlement["hasBillingAccount"]) == (
        "free",
        "NONE",
        True,
    )


async def test_yearly_and_trial_prices(api: Api, stack: Stack, stripe_client: Any) -> None:
    yearly = await api.upgrade("pro", "YEAR")
    assert yearly["__typename"] == "CheckoutSession"
    [call] = stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)
    assert call["params"]["line_items"][0]["price"] == price_id(stripe_client, "pro_yearly")

    other = Api(api.client)
    await other.upgrade("team")
    [call] = stripe_calls(stack, "/v1/checkout/sessions", mentions=other.org)
    assert call["params"]["subscription_data"] == {
        "metadata": {"org_id": other.org},
        "trial_period_days": "14",
    }


async def test_ten_concurrent_upgrades_create_one_customer(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    results = await asyncio.gather(*(api.upgrade("pro") for _ in range(10)))
    assert {r["__typename"] for r in results} == {"CheckoutSession"}
    customer_id = customer_of(stripe_client, api.org)
    sessions = stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)
    assert {s["params"]["customer"] for s in sessions} == {customer_id}
    assert len({r["id"] for r in results}) == 1  # the same logical checkout, replayed


async def test_unknown_plans(api: Api, stack: Stack) -> None:
    for plan, interval in (
        ("enterprise", "MONTH"),
        ("free", "MONTH"),
        ("team", "YEAR"),
        ("", "MONTH"),
    ):
        result = await api.upgrade(plan, interval)
        assert result["__typename"] == "BillingError" and result["code"] == "UNKNOWN_PLAN", result
    assert stripe_calls(stack, "/v1/customers", mentions=api.org) == []


async def test_member_role_is_forbidden(client: httpx.AsyncClient, stack: Stack) -> None:
    member = Api(client, role="member")
    result = await member.upgrade("pro")
    assert result["code"] == "FORBIDDEN"
    assert stripe_calls(stack, "/v1/customers", mentions=member.org) == []


async def test_subscriber_switches_plan_through_the_portal(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    await subscribe(api, "pro")
    same = await api.upgrade("pro")
    assert same["__typename"] == "BillingError" and same["code"] == "ALREADY_ON_PLAN"

    switch = await api.upgrade("pro", "YEAR")
    assert switch["__typename"] == "PortalSession" and switch["flow"] == "SUBSCRIPTION_UPDATE"
    # No second checkout.
    assert len(stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)) == 1
    customer_id = customer_of(stripe_client, api.org)
    [portal_call] = portal_sessions(stack, customer_id)
    assert portal_call["params"]["flow_data"]["type"] == "subscription_update_confirm"
    managed = managed_configurations(stripe_client)
    assert [portal_call["params"]["configuration"]] == managed  # API-made ones are not default
    after = portal_call["params"]["flow_data"]["after_completion"]
    assert after == {
        "type": "redirect",
        "redirect": {"return_url": f"{APP_URL}/settings/billing?billing_flow=SUBSCRIPTION_UPDATE"},
    }
    confirm = portal_call["params"]["flow_data"]["subscription_update_confirm"]
    [sub] = stripe_client.v1.subscriptions.list(params={"customer": customer_id}).data
    assert confirm["subscription"] == sub.id
    assert confirm["items"] == [
        {
            "id": sub["items"]["data"][0]["id"],
            "price": price_id(stripe_client, "pro_yearly"),
            "quantity": "1",
        }
    ]

    await click(switch["url"], "confirm")
    await api.wait_for(lambda e: e["plan"] == "pro" and e["status"] == "ACTIVE")
    again = await api.upgrade("pro", "YEAR")
    assert again["code"] == "ALREADY_ON_PLAN"

    to_team = await api.upgrade("team")
    assert to_team["__typename"] == "PortalSession"
    await click(to_team["url"], "confirm")
    entitlement = await api.wait_for(lambda e: e["plan"] == "team")
    assert entitlement["limits"] == {"projects": 500, "seats": 50}


async def test_unauthenticated_mutation(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": 'mutation { upgrade(plan: "pro") { __typename } }'}
    )
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
