"""The full customer journey with the real SDK, hosted pages and signed webhooks."""

from __future__ import annotations

from typing import Any

import httpx
import stripe

from emulator.client import EmulatorControl
from emulator.hosted import submit_form
from tests.emulator.conftest import WEBHOOK_SECRET, Receiver, spec_errors
from tests.emulator.helpers import APP, checkout, pay, seed, wait_until
from tests.support import stripe_spec


def _portal(client: Any, customer: str, **params: Any) -> Any:
    """A portal session for a customer."""
    return client.v1.billing_portal.sessions.create(
        params={"customer": customer, "return_url": f"{APP}/account", **params}
    )


def test_full_journey(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client, control)
    prices = client.v1.prices.list(
        params={"lookup_keys": ["pro_month", "pro_year"], "expand": ["data.product"]}
    )
    assert {p.recurring.interval for p in prices.data} == {"month", "year"}
    assert all(p.product.name == "Pro" for p in prices.data)

    customer = client.v1.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "metadata": {"org_id": "org_1"}}
    )
    session = checkout(client, customer.id, catalog["month"].id)
    assert session.url.startswith(control.base_url + "/c/pay/")
    assert session.status == "open" and session.payment_status == "unpaid"

    landed = pay(browser, session)
    assert landed == f"{APP}/done?session={session.id}"
    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["subscription"]})
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.customer == customer.id and done.client_reference_id == "org_1"
    sub = done.subscription
    assert sub.status == "active" and sub.metadata["org_id"] == "org_1"
    item = sub["items"].data[0]
    assert item.price.id == catalog["month"].id
    assert "current_period_end" not in sub.to_dict()
    assert item.current_period_end > item.current_period_start
    assert not spec_errors("subscription", sub)

    # Signed webhooks in Stripe's order.
    wait_until(lambda: receiver.events("checkout.session.completed"))
    events = receiver.verified(WEBHOOK_SECRET)
    types = [e.type for e in events]
    order = [
        "customer.subscription.created",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    assert [t for t in types if t in order] == order
    for raw in receiver.events():
        assert not stripe_spec.validate_object("event", raw), raw["type"]
    completed = next(e for e in events if e.type == "checkout.session.completed")
    assert completed.data.object.subscription == sub.id

    # Portal, one page per flow.
    home = _portal(client, customer.id)
    page = browser.get(home.url)
    assert page.status_code == 200
    assert f"switch-{catalog['year'].id}" in page.text and "id='return'" in page.text
    assert f"switch-{catalog['month'].id}" not in page.text

    # subscription_update: choose the yearly price.
    flow = _portal(
        client,
        customer.id,
        flow_data={"type": "subscription_update", "subscription_update": {"subscription": sub.id}},
    )
    result = submit_form(browser, flow.url, f"switch-{catalog['year'].id}")
    assert not isinstance(result, str) and result.status_code == 200
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub["items"].data[0].price.id == catalog["year"].id

    # subscription_update_confirm: back to monthly, redirected to the given URL.
    flow = _portal(
        client,
        customer.id,
        flow_data={
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "subscription": sub.id,
                "items": [
                    {"id": sub["items"].data[0].id, "price": catalog["month"].id, "quantity": 1}
                ],
            },
            "after_completion": {"type": "redirect", "redirect": {"return_url": f"{APP}/updated"}},
        },
    )
    assert submit_form(browser, flow.url, "confirm") == f"{APP}/updated"
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub["items"].data[0].price.id == catalog["month"].id

    # payment_method_update.
    flow = _portal(client, customer.id, flow_data={"type": "payment_method_update"})
    result = submit_form(browser, flow.url, "update-payment-method")
    assert not isinstance(result, str) and result.status_code == 200

    # subscription_cancel: cancel at period end, stays active.
    flow = _portal(
        client,
        customer.id,
        flow_data={"type": "subscription_cancel", "subscription_cancel": {"subscription": sub.id}},
    )
    submit_form(browser, flow.url, "confirm", feedback="too_expensive")
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active" and sub.cancel_at_period_end is True
    period_end = sub["items"].data[0].current_period_end
    assert sub.cancel_at == period_end
    assert sub.cancellation_details.feedback == "too_expensive"
    wait_until(
        lambda: any(
            e["data"]["object"].get("cancel_at_period_end")
            for e in receiver.events("customer.subscription.updated")
        )
    )

    # Past the period end: deleted.
    now = control.now()
    control.advance(period_end - now + 60)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "canceled" and sub.ended_at == period_end
    deleted = wait_until(lambda: receiver.events("customer.subscription.deleted"))
    assert deleted[0]["data"]["object"]["id"] == sub.id
    assert deleted[0]["data"]["object"]["status"] == "canceled"
    # Verified with the SDK even though the emulator clock moved.
    assert stripe.Webhook.construct_event(
        receiver.received[-1].body.decode(),
        receiver.received[-1].headers["stripe-signature"],
        WEBHOOK_SECRET,
    )
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []
    listed = client.v1.subscriptions.list(params={"customer": customer.id, "status": "all"})
    assert [s.id for s in listed.data] == [sub.id]


def test_checkout_without_customer_creates_one(
    client: Any, browser: httpx.Client, receiver: Receiver
) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["month"].id)
    pay(browser, session, email="new@example.com")
    done = client.v1.checkout.sessions.retrieve(session.id)
    customer = client.v1.customers.retrieve(done.customer)
    assert customer.email == "new@example.com"
    assert done.customer_details.email == "new@example.com"


def test_cancel_link_and_second_payment(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "x@example.com"})
    session = checkout(client, customer.id, catalog["month"].id)
    assert submit_form(browser, session.url, "cancel") == f"{APP}/pricing"
    pay(browser, session)
    again = browser.get(session.url)
    assert again.status_code in (400, 410)
    listed = client.v1.subscriptions.list(params={"customer": customer.id})
    assert len(listed.data) == 1
