"""Checkout Sessions: creation rules, retrieve, list, expire, line items, hosted page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.hosted import submit_form
from emulator.server import EmulatorServer
from tests.emulator.conftest import API_KEY, Receiver, spec_errors
from tests.emulator.helpers import APP, checkout, pay, seed, wait_until
from tests.support import stripe_spec


def test_session_object(client: Any) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "c@example.com"})
    session = checkout(client, customer.id, catalog["month"].id, trial_days=7)
    assert session.id.startswith("cs_test_") and session.mode == "subscription"
    assert session.customer == customer.id and session.metadata["org_id"] == "org_1"
    assert session.allow_promotion_codes is True and session.amount_subtotal == 2000
    assert session.cancel_url == f"{APP}/pricing"
    assert "{CHECKOUT_SESSION_ID}" in session.success_url
    assert not spec_errors("checkout.session", session)
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items", "customer"]}
    )
    assert expanded.customer.email == "c@example.com"
    assert expanded.line_items.data[0].price.id == catalog["month"].id
    assert not spec_errors("checkout.session", expanded)
    listed = client.v1.checkout.sessions.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [session.id]


def test_line_items_endpoint(server: EmulatorServer, client: Any) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["month"].id)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as h:
        body = h.get(f"/v1/checkout/sessions/{session.id}/line_items").json()
    assert body["object"] == "list" and body["data"][0]["quantity"] == 1
    assert not stripe_spec.validate_object("item", body["data"][0])


def test_create_validation(client: Any) -> None:
    catalog = seed(client)
    one_time = client.v1.prices.create(
        params={"product": catalog["pro"].id, "currency": "usd", "unit_amount": 100}
    )
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"line_items": [{"price": catalog["month"].id, "quantity": 1}]}, "mode"),
        ({"mode": "subscription"}, "line_items"),
        (
            {"mode": "subscription", "line_items": [{"price": "price_nope", "quantity": 1}]},
            "line_items[0][price]",
        ),
        (
            {"mode": "subscription", "line_items": [{"price": one_time.id, "quantity": 1}]},
            "line_items",
        ),
        (
            {"mode": "payment", "line_items": [{"price": catalog["month"].id, "quantity": 1}]},
            "mode",
        ),
        (
            {
                "mode": "subscription",
                "customer": "cus_nope",
                "line_items": [{"price": catalog["month"].id, "quantity": 1}],
            },
            "customer",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": catalog["month"].id, "quantity": 1}],
                "subscription_data": {"trial_period_days": 0},
            },
            "subscription_data[trial_period_days]",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": catalog["month"].id, "quantity": 1}],
                "subscription_data": {"trial_days": 3},
            },
            "subscription_data[trial_days]",
        ),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.checkout.sessions.create(params={"success_url": f"{APP}/ok", **params})
        assert info.value.param == param, params


def test_expire(
    server: EmulatorServer, client: Any, browser: httpx.Client, receiver: Receiver
) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["month"].id)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None
    assert not spec_errors("checkout.session", expired)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    assert browser.get(session.url).status_code == 410
    wait_until(lambda: receiver.events("checkout.session.expired"))


def test_expires_with_the_clock(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["month"].id)
    later = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": catalog["month"].id, "quantity": 1}],
            "success_url": f"{APP}/done",
            "expires_at": control.now() + 2 * 3600,
        }
    )
    control.advance(3600)
    assert client.v1.checkout.sessions.retrieve(later.id).status == "open"
    control.advance(24 * 3600)  # nobody opens the pages: the clock alone expires them
    for cs in (later, session):
        expired = client.v1.checkout.sessions.retrieve(cs.id)
        assert expired.status == "expired" and expired.url is None
    events = wait_until(
        lambda: (
            len(receiver.events("checkout.session.expired")) == 2
            and receiver.events("checkout.session.expired")
        )
    )
    assert [e["data"]["object"]["id"] for e in events] == [later.id, session.id]
    assert events[0]["created"] == later.expires_at
    assert browser.get(session.url).status_code == 410


def test_hosted_page_shows_items(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["year"].id, trial_days=30)
    page = browser.get(session.url)
    assert "Pro" in page.text and "200.00 USD" in page.text and "30-day free trial" in page.text
    assert "id='pay'" in page.text and "id='cancel'" in page.text


def test_payment_and_setup_modes(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    fee = client.v1.prices.create(
        params={"product": catalog["pro"].id, "currency": "usd", "unit_amount": 900}
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": fee.id, "quantity": 1}],
            "success_url": f"{APP}/paid",
        }
    )
    assert pay(browser, session, email="p@example.com") == f"{APP}/paid"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.payment_status == "paid" and done.subscription is None
    setup = client.v1.checkout.sessions.create(
        params={"mode": "setup", "currency": "usd", "success_url": f"{APP}/saved"}
    )
    assert pay(browser, setup, email="s@example.com") == f"{APP}/saved"
    assert client.v1.checkout.sessions.retrieve(setup.id).status == "complete"


def test_declined_card_page_links_back(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "d@example.com"})
    session = checkout(client, customer.id, catalog["month"].id)
    declined = submit_form(browser, session.url, "pay", card="4000 0000 0000 0002")
    assert not isinstance(declined, str) and declined.status_code == 402
    back = re.search(r"<a id='back' href='([^']+)'", declined.text)
    assert back is not None, declined.text
    assert urljoin(str(declined.url), back.group(1)) == session.url
    assert pay(browser, session, card="4242 4242 4242 4242") == f"{APP}/done?session={session.id}"


def test_checkout_page_names_the_customer(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    cases = [
        ({"email": "e@example.com", "name": "Eve"}, "e@example.com"),
        ({"name": "Ned"}, "Ned"),
        ({}, None),
    ]
    for params, shown in cases:
        customer = client.v1.customers.create(params=params)
        page = browser.get(checkout(client, customer.id, catalog["month"].id).url).text
        assert customer.id not in page
        if shown:
            assert f"Paying as <b>{shown}</b>" in page
        else:
            assert "Paying as" not in page
        # Like Stripe, Checkout asks for the email only a customer without one.
        assert ("name='email'" in page) is ("email" not in params)
        assert (
            "<button type='submit'>Subscribe</button>" in page
        )  # Stripe's label, mode subscription


def test_checkout_saves_the_email_a_customer_lacked(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"metadata": {"org_id": "org_1"}})
    session = checkout(client, customer.id, catalog["month"].id)
    pay(browser, session, email="owner@example.com")
    assert client.v1.customers.retrieve(customer.id).email == "owner@example.com"
    again = browser.get(checkout(client, customer.id, catalog["month"].id).url).text
    assert "Paying as <b>owner@example.com</b>" in again and "name='email'" not in again
