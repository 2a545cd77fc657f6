"""Seats: a per-seat plan's quantity through `upgrade` and `changeSeats` over GraphQL, Stripe's
confirmation page, and the webhook; every refusal answers its code with nothing sent."""

from __future__ import annotations

from typing import Any

import httpx

from emulator.hosted import submit_form_async
from harness.api import APP_URL, Api
from harness.stack import Stack
from harness.stripe_side import customer_of, portal_sessions, price_id, stripe_calls
from tests.support.journeys import click, subscribe

PLANS = "query { plans { slug seats { min max } } }"


def confirm_items(call: dict[str, Any]) -> list[dict[str, str]]:
    """The items of a `subscription_update_confirm` portal session request."""
    flow = call["params"]["flow_data"]
    assert flow["type"] == "subscription_update_confirm"
    return list(flow["subscription_update_confirm"]["items"])


def item_of(stripe_client: Any, customer: str) -> Any:
    """The single item of the customer's single subscription, as Stripe has it now."""
    [sub] = stripe_client.v1.subscriptions.list(params={"customer": customer}).data
    [item] = sub["items"]["data"]
    return item


async def test_plans_show_the_seat_range_of_per_seat_plans(api: Api) -> None:
    plans = {p["slug"]: p["seats"] for p in (await api.gql(PLANS))["plans"]}
    assert plans == {"free": None, "pro": None, "team": None, "business": {"min": 2, "max": 200}}


async def test_checkout_sells_the_seats_asked_for_or_the_minimum(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    default = await api.upgrade("business")
    assert default["__typename"] == "CheckoutSession"
    [call] = stripe_calls(stack, "/v1/checkout/sessions", mentions=api.org)
    assert call["params"]["line_items"] == [
        {"price": price_id(stripe_client, "business_monthly"), "quantity": "2"}
    ]

    seven = await api.upgrade("business", seats=7)
    assert seven["__typename"] == "CheckoutSession" and seven["id"] != default["id"]
    await click(seven["url"], "pay")
    paid = await api.wait_for(lambda e: e["plan"] == "business")
    assert (paid["seats"], paid["interval"], paid["status"]) == (7, "MONTH", "ACTIVE")
    assert paid["limits"] == {"projects": 1000, "seats": 7}
    assert item_of(stripe_client, customer_of(stripe_client, api.org)).quantity == 7


async def test_a_plan_that_is_not_per_seat_has_no_seats(api: Api) -> None:
    paid = await subscribe(api, "pro", "YEAR")
    assert (paid["seats"], paid["interval"]) == (None, "YEAR")
    assert paid["limits"] == {"projects": 50, "seats": 10}  # the plans file's limit


async def test_invalid_seats_are_refused_before_stripe(api: Api, stack: Stack) -> None:
    for plan, seats in (("pro", 2), ("business", 1), ("business", 201), ("business", 0)):
        result = await api.upgrade(plan, seats=seats)
        assert result["__typename"] == "BillingError", result
        assert result["code"] == "INVALID_SEATS", result
    for seats in (0, -3, 1_000_000):
        result = await api.change_seats(seats)
        assert result["code"] == "INVALID_SEATS", result
    assert (await api.change_seats(3))["code"] == "NO_SUBSCRIPTION"  # not even a customer
    assert [r for r in stack.control.requests() if api.org in str(r["params"])] == []


async def test_change_seats_opens_stripes_confirmation_and_the_webhook_applies_it(
    api: Api, stack: Stack, stripe_client: Any
) -> None:
    await subscribe(api, "business", seats=3)
    customer = customer_of(stripe_client, api.org)
    assert (await api.change_seats(3))["code"] == "ALREADY_ON_PLAN"
    for refused in (1, 201):
        assert (await api.change_seats(refused))["code"] == "INVALID_SEATS"
    assert (await api.change_seats(5, "//evil.example"))["code"] == "INVALID_RETURN_PATH"
    assert portal_sessions(stack, customer) == []

    link = await api.change_seats(5, "/team/members?tab=seats#list")
    assert link["__typename"] == "PortalSession" and link["flow"] == "SUBSCRIPTION_UPDATE"
    [call] = portal_sessions(stack, customer)
    item = item_of(stripe_client, customer)
    assert confirm_items(call) == [
        {"id": item.id, "price": price_id(stripe_client, "business_monthly"), "quantity": "5"}
    ]
    assert call["params"]["return_url"] == f"{APP_URL}/team/members?tab=seats#list"
    back = f"{APP_URL}/team/members?tab=seats&billing_flow=SUBSCRIPTION_UPDATE#list"  # the marker before the fragment
    assert call["params"]["flow_data"]["after_completion"] == {
        "type": "redirect",
        "redirect": {"return_url": back},
    }
    assert (await api.entitlement())["seats"] == 3  # nothing changes until Stripe says so

    async with httpx.AsyncClient() as browser:
        page = (await browser.get(link["url"])).text
    assert "id='new-seats'>5<" in page and "id='current-seats'>3<" in page, page
    landed = await click(link["url"], "confirm")
    assert landed == back
    changed = await api.wait_for(lambda e: e["seats"] == 5)
    assert changed["limits"] == {"projects": 1000, "seats": 5}
    assert item_of(stripe_client, customer).quantity == 5


async def test_change_seats_needs_a_per_seat_subscription_and_the_billing_role(
    client: httpx.AsyncClient, api: Api, stack: Stack, stripe_client: Any
) -> None:
    await subscribe(api, "pro")
    assert (await api.change_seats(3))["code"] == "INVALID_SEATS"  # pro is not per seat
    assert portal_sessions(stack, customer_of(stripe_client, api.org)) == []

    member = Api(client, org=api.org, role="member")
    assert (await member.change_seats(3))["code"] == "FORBIDDEN"


async def test_a_plan_switch_carries_the_seats(api: Api, stack: Stack, stripe_client: Any) -> None:
    await subscribe(api, "pro")
    customer = customer_of(stripe_client, api.org)
    business = price_id(stripe_client, "business_monthly")

    raised = await api.upgrade("business")  # one seat today: raised to the plan's minimum
    four = await api.upgrade("business", seats=4)
    assert {raised["__typename"], four["__typename"]} == {"PortalSession"}
    first, second = portal_sessions(stack, customer)
    assert [i["quantity"] for i in confirm_items(first)] == ["2"]
    assert [i["price"] for i in confirm_items(second)] == [business]
    assert [i["quantity"] for i in confirm_items(second)] == ["4"]
    await click(four["url"], "confirm")
    await api.wait_for(lambda e: e["plan"] == "business" and e["seats"] == 4)

    assert (await api.upgrade("business"))["code"] == "ALREADY_ON_PLAN"  # keeps 4 seats
    assert (await api.upgrade("business", seats=4))["code"] == "ALREADY_ON_PLAN"
    more = await api.upgrade("business", seats=6)  # same plan, more seats: not "already"
    yearly = await api.upgrade("business", "YEAR")
    back = await api.upgrade("pro")
    assert {more["__typename"], yearly["__typename"], back["__typename"]} == {"PortalSession"}
    _, _, to_more, to_yearly, to_pro = portal_sessions(stack, customer)
    assert [(i["price"], i["quantity"]) for i in confirm_items(to_more)] == [(business, "6")]
    assert [(i["price"], i["quantity"]) for i in confirm_items(to_yearly)] == [
        (price_id(stripe_client, "business_yearly"), "4")
    ]
    assert [i["quantity"] for i in confirm_items(to_pro)] == ["1"]


async def test_the_portal_changes_seats_within_the_plans_bounds(
    api: Api, stripe_client: Any
) -> None:
    await subscribe(api, "business", seats=3)
    home = await api.open_portal()
    async with httpx.AsyncClient(timeout=30) as browser:
        refused = await submit_form_async(browser, home["url"], "seats", quantity="201")
        assert isinstance(refused, httpx.Response) and refused.status_code == 400
        assert "at most 200" in refused.text
        await submit_form_async(browser, home["url"], "seats", quantity="7")
    changed = await api.wait_for(lambda e: e["seats"] == 7)
    assert changed["limits"] == {"projects": 1000, "seats": 7}
    assert item_of(stripe_client, customer_of(stripe_client, api.org)).quantity == 7
