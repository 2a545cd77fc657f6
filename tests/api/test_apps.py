"""Client apps (`APP_URLS`, the `app` argument): every URL a mutation builds is on the named
app's URL (Checkout's success and cancel, the portal's return and after-completion), the
returnPath rules hold on it, and an unknown app is refused before anything reaches Stripe."""

from __future__ import annotations

from typing import Any

import httpx

from harness.api import APP_URLS, Api
from harness.stack import Stack
from harness.stripe_side import customer_of, portal_sessions, stripe_calls
from tests.support.journeys import cancel_in_portal, click, subscribe

IOS = APP_URLS["ios"]
ANDROID = APP_URLS["android"]


def after_completion(call: dict[str, Any]) -> str:
    """The redirect URL of a portal session's after-completion."""
    after = call["params"]["flow_data"]["after_completion"]
    assert after["type"] == "redirect", after
    return str(after["redirect"]["return_url"])


async def test_checkout_for_an_app_returns_to_it(api: Api, stack: Stack) -> None:
    session = await api.upgrade("pro", app="ios")
    assert session["__typename"] == "CheckoutSession"
    [call] = stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)
    params = call["params"]
    assert params["success_url"] == (
        f"{IOS}/settings/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert params["cancel_url"] == f"{IOS}/settings/billing?checkout=canceled"
    landed = await click(session["url"], "pay")
    assert landed.startswith(f"{IOS}/settings/billing?checkout=success&session_id=cs_"), landed


async def test_every_portal_flow_comes_back_to_the_app(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    await subscribe(api, "business", seats=2)
    customer = customer_of(stripe_client, api.org)

    home = await api.open_portal("/account", app="android")
    assert home["__typename"] == "PortalSession"
    [call] = portal_sessions(stack, customer)
    assert call["params"]["return_url"] == f"{ANDROID}/account"
    assert "flow_data" not in call["params"]

    for flow in ("PAYMENT_METHOD_UPDATE", "SUBSCRIPTION_UPDATE", "SUBSCRIPTION_CANCEL"):
        link = await api.open_portal("/account?from=app", flow=flow, app="ios")
        assert link["flow"] == flow
        call = portal_sessions(stack, customer)[-1]
        assert call["params"]["return_url"] == f"{IOS}/account?from=app"
        assert after_completion(call) == f"{IOS}/account?from=app&billing_flow={flow}"

    switch = await api.upgrade("business", "YEAR", app="ios")
    assert switch["flow"] == "SUBSCRIPTION_UPDATE"
    call = portal_sessions(stack, customer)[-1]
    assert call["params"]["return_url"] == f"{IOS}/settings/billing"
    assert after_completion(call) == f"{IOS}/settings/billing?billing_flow=SUBSCRIPTION_UPDATE"

    seats = await api.change_seats(4, "/team", app="android")
    assert seats["flow"] == "SUBSCRIPTION_UPDATE"
    call = portal_sessions(stack, customer)[-1]
    assert after_completion(call) == f"{ANDROID}/team?billing_flow=SUBSCRIPTION_UPDATE"

    # Completing a flow lands on the app's link with no further click.
    assert (
        await click(seats["url"], "confirm") == f"{ANDROID}/team?billing_flow=SUBSCRIPTION_UPDATE"
    )
    cancel = await api.open_portal(flow="SUBSCRIPTION_CANCEL", app="ios")
    landed = await cancel_in_portal(cancel["url"], "unused")
    assert landed == f"{IOS}/settings/billing?billing_flow=SUBSCRIPTION_CANCEL"


async def test_an_unknown_app_is_refused_before_stripe(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    await subscribe(api, "business", seats=2)
    customer = customer_of(stripe_client, api.org)
    checkouts = len(stripe_calls(stack, "/v1/checkout/sessions"))
    for app in ("web", "IOS", "ios ", "", "x" * 300):
        calls = (
            api.open_portal(app=app),
            api.open_portal(flow="SUBSCRIPTION_CANCEL", app=app),
            api.upgrade("pro", app=app),
            api.change_seats(3, app=app),
        )
        for call in calls:
            result = await call
            assert result["__typename"] == "BillingError", (app, result)
            assert result["code"] == "UNKNOWN_APP", (app, result)
            assert "https://" not in result["message"]  # names apps, never their URLs
    assert portal_sessions(stack, customer) == []
    assert len(stripe_calls(stack, "/v1/checkout/sessions")) == checkouts


async def test_unknown_app_comes_before_the_customer_and_the_return_path(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    fresh = Api(client)  # no Stripe customer yet
    assert (await fresh.open_portal(app="web"))["code"] == "UNKNOWN_APP"
    assert (await fresh.open_portal(app="ios"))["code"] == "NO_CUSTOMER"
    assert (await fresh.open_portal("//evil.example", app="ios"))["code"] == "INVALID_RETURN_PATH"
    assert (await fresh.change_seats(3, app="web"))["code"] == "UNKNOWN_APP"
    assert stripe_calls(stack, "/v1/customers", mentions=fresh.org) == []
    member = Api(client, org=fresh.org, role="member")
    assert (await member.upgrade("pro", app="ios"))["code"] == "FORBIDDEN"


async def test_return_path_rules_hold_on_the_app(api: Api, stack: Stack) -> None:
    await api.upgrade("pro")  # a customer, so a portal may open
    before = len(stripe_calls(stack, "/v1/billing_portal/sessions"))
    for path in ("/../admin", "//evil.example", "/%2e%2e/admin", "https://evil.example", "/a\\b"):
        result = await api.open_portal(path, app="ios")
        assert result["code"] == "INVALID_RETURN_PATH", path
    assert len(stripe_calls(stack, "/v1/billing_portal/sessions")) == before
