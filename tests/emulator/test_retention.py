"""The portal's cancel flow with a retention coupon offer, the reason survey, renewing, and
``after_completion`` redirects, driven through the SDK and the hosted pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from emulator.client import EmulatorControl
from emulator.hosted import parse_forms, submit_form
from tests.emulator.helpers import APP, DAY, invalid_request, portal_flow, seed, subscribe

RETENTION = "flow_data[subscription_cancel][retention]"
COUPON_PARAM = f"{RETENTION}[coupon_offer][coupon]"


@pytest.fixture
def setup(client: Any, browser: httpx.Client, control: EmulatorControl) -> tuple[Any, Any]:
    """A default portal configuration (cancel at period end, reasons on) and a 20.00 USD
    monthly subscription: (catalog, subscription)."""
    catalog = seed(client, control)
    return catalog, subscribe(client, browser, catalog)


def _coupon(client: Any, **params: Any) -> Any:
    """A coupon."""
    return client.v1.coupons.create(params=params)


def _offer_flow(client: Any, sub: Any, coupon: str, return_url: str | None = None) -> Any:
    """A subscription_cancel flow offering a coupon (redirecting to return_url when given)."""
    details = {
        "subscription": sub.id,
        "retention": {"type": "coupon_offer", "coupon_offer": {"coupon": coupon}},
    }
    extra: dict[str, Any] = {}
    if return_url is not None:
        extra["after_completion"] = {"type": "redirect", "redirect": {"return_url": return_url}}
    return portal_flow(client, sub.customer, "subscription_cancel", details, **extra)


def _text(page: str, element_id: str) -> str | None:
    """The text of the element with an id (None when absent)."""
    found = re.search(rf"id='{element_id}'[^>]*>(.*?)</", page)
    return found.group(1) if found else None


def _step_two(browser: httpx.Client, url: str, **fields: str) -> str:
    """Send the cancel form (step 1) and return the page it leads to."""
    page = submit_form(browser, url, "confirm", **fields)
    assert isinstance(page, httpx.Response) and page.status_code == 200, page
    return page.text


def test_retention_validation(client: Any, control: EmulatorControl, setup: Any) -> None:
    _catalog, sub = setup
    bad_type = {
        "subscription": sub.id,
        "retention": {"type": "pause", "coupon_offer": {"coupon": "X"}},
    }
    err = invalid_request(
        lambda: portal_flow(client, sub.customer, "subscription_cancel", bad_type)
    )
    assert (err.http_status, err.param) == (400, f"{RETENTION}[type]")
    assert err.error is not None and err.error.type == "invalid_request_error"
    err = invalid_request(lambda: _offer_flow(client, sub, "NOPE"))
    assert (err.http_status, err.code, err.param) == (400, "resource_missing", COUPON_PARAM)
    assert str(err.user_message) == "No such coupon: 'NOPE'"
    _coupon(client, id="GONE", percent_off=10)
    client.v1.coupons.delete("GONE")
    err = invalid_request(lambda: _offer_flow(client, sub, "GONE"))
    assert (err.param, str(err.user_message)) == (COUPON_PARAM, "No such coupon: 'GONE'")
    _coupon(client, id="LATE", percent_off=10, redeem_by=control.now() + 60)
    control.advance(120)
    err = invalid_request(lambda: _offer_flow(client, sub, "LATE"))
    assert (err.http_status, err.param) == (400, COUPON_PARAM)
    assert "expired" in str(err.user_message)
    _coupon(client, id="EURO", amount_off=500, currency="eur")
    err = invalid_request(lambda: _offer_flow(client, sub, "EURO"))
    assert err.param == COUPON_PARAM
    _coupon(client, id="TEN", percent_off=10, duration="forever")
    client.v1.subscriptions.update(sub.id, params={"discounts": [{"coupon": "TEN"}]})
    err = invalid_request(lambda: _offer_flow(client, sub, "TEN"))
    assert (err.http_status, err.param) == (400, RETENTION)
    assert "already has a discount" in str(err.user_message)


def test_accepting_the_offer_discounts_and_keeps_the_subscription(
    client: Any, browser: httpx.Client, control: EmulatorControl, setup: Any
) -> None:
    _catalog, sub = setup
    _coupon(
        client,
        id="STAY20",
        name="Stay with us",
        percent_off=20,
        duration="repeating",
        duration_in_months=3,
    )
    back = f"{APP}/account?offer={{answer}}&x=1#plan"
    session = _offer_flow(client, sub, "STAY20", back)
    retention = session.flow.subscription_cancel.retention.to_dict()
    assert retention == {"type": "coupon_offer", "coupon_offer": {"coupon": "STAY20"}}
    first = browser.get(session.url).text
    assert "name='feedback'" in first and "<option value='too_expensive'>" in first
    assert {"subscription", "comment", "feedback"} <= set(parse_forms(first)["confirm"][2])
    assert "retention-offer" not in first
    page = _step_two(browser, session.url, feedback="too_expensive", comment="pricey")
    assert "id='retention-offer'" in page
    assert _text(page, "offer-terms") == "20% off for 3 months"
    assert _text(page, "offer-name") == "Stay with us"
    forms = parse_forms(page)
    assert {"accept-offer", "decline-offer"} <= set(forms) and "confirm" not in forms
    assert "Accept offer</button>" in page and "No thanks, cancel</button>" in page
    assert browser.get(session.url).text == page  # the offer waits for an answer
    waiting = client.v1.subscriptions.retrieve(sub.id)
    assert not waiting.cancel_at_period_end and waiting.discounts == []
    assert submit_form(browser, session.url, "accept-offer") == back  # exactly as given
    kept = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["discounts.source.coupon"]})
    assert kept.status == "active" and kept.cancel_at_period_end is False
    assert kept.cancel_at is None and kept.canceled_at is None
    assert kept.cancellation_details.to_dict() == {
        "comment": None,
        "feedback": None,
        "reason": None,
    }
    (discount,) = kept.discounts
    assert discount.subscription == sub.id and discount.end is not None
    assert discount.source.coupon.id == "STAY20" and discount.source.coupon.percent_off == 20
    listed = client.v1.subscriptions.list(
        params={"customer": sub.customer, "expand": ["data.discounts.source.coupon"]}
    )
    assert listed.data[0].discounts[0].source.coupon.name == "Stay with us"
    assert client.v1.coupons.retrieve("STAY20").times_redeemed == 1
    (created,) = control.events("customer.discount.created")
    assert created["data"]["object"]["id"] == discount.id
    updated = control.events("customer.subscription.updated")[-1]
    assert updated["data"]["previous_attributes"] == {"discounts": []}
    assert updated["data"]["object"]["discounts"] == [discount.id]
    assert control.events("customer.subscription.deleted") == []
    client.v1.events.list(params={"limit": 100})  # every payload checked against the spec
    home = browser.get(session.url).text  # the flow is done: the portal home, no offer
    assert "retention-offer" not in home and "cancel" in parse_forms(home)
    again = browser.post(f"{session.url}/accept-offer", data={"subscription": sub.id})
    assert again.status_code == 400
    assert len(client.v1.subscriptions.retrieve(sub.id).discounts) == 1  # answered once
    control.advance(32 * DAY)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    invoice = renewed.latest_invoice
    assert (invoice.subtotal, invoice.total) == (2000, 1600)
    assert invoice.discounts == [discount.id]


def test_declining_the_offer_cancels_with_the_reason(
    client: Any, browser: httpx.Client, control: EmulatorControl, setup: Any
) -> None:
    _catalog, sub = setup
    _coupon(client, id="TEN", percent_off=10, duration="forever")
    _coupon(client, id="FIVE", amount_off=500, currency="usd", duration="once")
    other = _offer_flow(client, sub, "TEN")  # after_completion: the portal home
    page = _step_two(browser, other.url)
    assert _text(page, "offer-terms") == "10% off forever"
    assert _text(page, "offer-name") is None
    back = f"{APP}/account?canceled=1#bye"
    session = _offer_flow(client, sub, "FIVE", back)
    page = _step_two(browser, session.url, feedback="unused", comment="not using it")
    assert _text(page, "offer-terms") == "$5.00 off once"
    assert submit_form(browser, session.url, "decline-offer") == back
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.status == "active" and canceled.cancel_at_period_end is True
    assert canceled.cancel_at == canceled["items"].data[0].current_period_end
    assert canceled.cancellation_details.to_dict() == {
        "comment": "not using it",
        "feedback": "unused",
        "reason": "cancellation_requested",
    }
    assert canceled.discounts == []
    assert client.v1.coupons.retrieve("FIVE").times_redeemed == 0
    assert control.events("customer.discount.created") == []
    # The other session's offer cannot be taken any more: the subscription is set to cancel.
    stale = browser.get(other.url).text
    assert "id='offer-unavailable'" in stale and "accept-offer" not in parse_forms(stale)
    resp = browser.post(f"{other.url}/accept-offer", data={"subscription": sub.id})
    assert resp.status_code == 400
    assert client.v1.subscriptions.retrieve(sub.id).discounts == []


def test_cancel_without_offer_then_renew(
    client: Any, browser: httpx.Client, control: EmulatorControl, setup: Any
) -> None:
    _catalog, sub = setup
    back = f"{APP}/account?flow=cancel&next={{plan}}#done"
    session = portal_flow(
        client,
        sub.customer,
        "subscription_cancel",
        {"subscription": sub.id},
        after_completion={"type": "redirect", "redirect": {"return_url": back}},
    )
    assert session.flow.subscription_cancel.retention is None
    result = submit_form(
        browser, session.url, "confirm", feedback="too_expensive", comment="too much"
    )
    assert result == back  # canceled at once: no offer step
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.cancel_at_period_end is True
    details = {
        "comment": "too much",
        "feedback": "too_expensive",
        "reason": "cancellation_requested",
    }
    assert canceled.cancellation_details.to_dict() == details
    home = browser.get(session.url).text
    assert "renew" in parse_forms(home)
    submit_form(browser, session.url, "renew")
    renewed = client.v1.subscriptions.retrieve(sub.id)
    assert renewed.cancel_at_period_end is False
    assert renewed.cancel_at is None and renewed.canceled_at is None
    assert renewed.cancellation_details.to_dict() == {
        "comment": None,
        "feedback": None,
        "reason": None,
    }
    updated = control.events("customer.subscription.updated")[-1]
    previous = updated["data"]["previous_attributes"]
    assert previous["cancel_at_period_end"] is True
    assert previous["cancel_at"] == canceled.cancel_at
    assert previous["canceled_at"] == canceled.canceled_at
    assert previous["cancellation_details"] == details
    assert updated["data"]["object"]["cancellation_details"] == {
        "comment": None,
        "feedback": None,
        "reason": None,
    }


def test_after_completion_redirect_for_every_flow(
    client: Any, browser: httpx.Client, setup: Any
) -> None:
    catalog, sub = setup
    item = sub["items"].data[0].id

    def redirect(flow: str, details: dict[str, Any] | None, form_id: str, back: str) -> Any:
        after = {"type": "redirect", "redirect": {"return_url": back}}
        session = portal_flow(client, sub.customer, flow, details, after_completion=after)
        assert submit_form(browser, session.url, form_id) == back, flow
        return session

    redirect("payment_method_update", None, "update-payment-method", f"{APP}/pm?ok=1&a=b#card")
    assert client.v1.customers.retrieve(sub.customer).invoice_settings.default_payment_method
    redirect(
        "subscription_update",
        {"subscription": sub.id},
        f"switch-{catalog['team_month'].id}",
        f"{APP}/plan?changed={{1}}#new",
    )
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == (
        catalog["team_month"].id
    )
    confirm = {"subscription": sub.id, "items": [{"id": item, "price": catalog["month"].id}]}
    redirect("subscription_update_confirm", confirm, "confirm", f"{APP}/confirmed?x=%20y#z")
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == (
        catalog["month"].id
    )
    done = redirect("payment_method_update", None, "update-payment-method", APP)
    again = browser.post(f"{done.url}/payment-method", data={"card": "4242424242424242"})
    assert again.status_code == 303  # the flow is done: back to the portal home this time
    assert again.headers["location"] == f"/p/session/{done.id}"
