"""Subscription lifecycle over the emulator clock: trials, renewals, failures, deletion."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.hosted import submit_form
from tests.emulator.conftest import Receiver, spec_errors
from tests.emulator.helpers import APP, DAY, checkout, pay, seed, subscribe, wait_until
from tests.support import stripe_spec


def test_trial_then_active(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog, trial_days=14)
    assert sub.status == "trialing"
    assert sub.trial_end - sub.trial_start == 14 * DAY
    assert sub["items"].data[0].current_period_end == sub.trial_end
    session = client.v1.checkout.sessions.list(params={"subscription": sub.id}).data[0]
    assert session.payment_status == "no_payment_required"
    first = wait_until(lambda: receiver.events("invoice.paid"))
    assert first[0]["data"]["object"]["amount_paid"] == 0
    control.advance(12 * DAY)
    wait_until(lambda: receiver.events("customer.subscription.trial_will_end"))
    assert client.v1.subscriptions.retrieve(sub.id).status == "trialing"
    control.advance(3 * DAY)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active"
    item = sub["items"].data[0]
    assert item.current_period_start == sub.trial_end
    paid = wait_until(
        lambda: len(receiver.events("invoice.paid")) >= 2 and receiver.events("invoice.paid")
    )
    invoice = paid[-1]["data"]["object"]
    assert invoice["amount_paid"] == 2000 and invoice["billing_reason"] == "subscription_cycle"
    assert invoice["parent"]["subscription_details"]["subscription"] == sub.id
    assert sub.latest_invoice == invoice["id"]


def test_renewals_move_the_period(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    end = sub["items"].data[0].current_period_end
    control.advance(end - control.now() + 10)
    renewed = client.v1.subscriptions.retrieve(sub.id)
    item = renewed["items"].data[0]
    assert item.current_period_start == end and item.current_period_end > end
    assert renewed.status == "active"
    control.advance(62 * DAY)  # two more renewals
    wait_until(lambda: len(receiver.events("invoice.paid")) == 4)
    updated = receiver.events("customer.subscription.updated")
    assert len(updated) == 3
    assert "items" in updated[0]["data"]["previous_attributes"]


def test_payment_failure_and_recovery_in_portal(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    control.set_card(sub.customer, fails=True)
    control.advance(32 * DAY)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "past_due"
    failed = wait_until(lambda: receiver.events("invoice.payment_failed"))
    invoice = failed[0]["data"]["object"]
    assert invoice["status"] == "open" and invoice["attempted"] is True
    assert invoice["amount_remaining"] == 2000
    wait_until(
        lambda: any(
            e["data"]["object"]["status"] == "past_due"
            for e in receiver.events("customer.subscription.updated")
        )
    )
    portal = client.v1.billing_portal.sessions.create(
        params={
            "customer": sub.customer,
            "configuration": catalog["config"].id,
            "flow_data": {"type": "payment_method_update"},
        }
    )
    page = submit_form(browser, portal.url, "update-payment-method")
    assert not isinstance(page, str) and page.status_code == 200
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    paid = wait_until(
        lambda: [
            e for e in receiver.events("invoice.paid") if e["data"]["object"]["id"] == invoice["id"]
        ]
    )
    assert paid[0]["data"]["object"]["status"] == "paid"
    wait_until(
        lambda: (
            receiver.events("customer.subscription.updated")[-1]["data"]["object"]["status"]
            == "active"
        )
    )


def test_declined_card_at_checkout(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "d@example.com"})
    session = checkout(client, customer.id, catalog["month"].id)
    result = submit_form(browser, session.url, "pay", card="4000 0000 0000 0002")
    assert not isinstance(result, str) and result.status_code == 402
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []
    pay(browser, session)  # a good card works
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_card_that_fails_later(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "l@example.com"})
    pay(browser, checkout(client, customer.id, catalog["month"].id), card="4000000000000341")
    sub = client.v1.subscriptions.list(params={"customer": customer.id}).data[0]
    assert sub.status == "active"
    control.advance(32 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_cancel_at_timestamp(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    when = control.now() + 5 * DAY
    sub = client.v1.subscriptions.update(sub.id, params={"cancel_at": when})
    assert sub.cancel_at == when and sub.cancel_at_period_end is False
    control.advance(6 * DAY)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "canceled" and sub.ended_at == when
    wait_until(lambda: receiver.events("customer.subscription.deleted"))


def test_update_cancel_at_period_end_and_undo(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    sub = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert sub.cancel_at_period_end and sub.cancel_at == sub["items"].data[0].current_period_end
    assert sub.canceled_at is not None and sub.status == "active"
    sub = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert not sub.cancel_at_period_end and sub.cancel_at is None and sub.canceled_at is None


def test_change_price_and_interval(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    item = sub["items"].data[0]
    same = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": catalog["team_month"].id}],
            "proration_behavior": "none",
            "metadata": {"changed": "yes"},
        },
    )
    assert same["items"].data[0].price.id == catalog["team_month"].id
    assert same["items"].data[0].current_period_end == item.current_period_end
    assert same.metadata.to_dict() == {"org_id": "org_1", "changed": "yes"}
    yearly = client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "price": catalog["year"].id}]}
    )
    new_item = yearly["items"].data[0]
    assert new_item.current_period_end - new_item.current_period_start >= 365 * DAY
    assert yearly.latest_invoice != sub.latest_invoice
    events = wait_until(
        lambda: [
            e
            for e in receiver.events("customer.subscription.updated")
            if "items" in e["data"]["previous_attributes"]
        ]
    )
    assert events


def test_delete_subscription_now(client: Any, browser: httpx.Client, receiver: Receiver) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    client.v1.subscriptions.update(sub.id, params={"metadata": {"note": "ok"}})
    wait_until(lambda: receiver.events("customer.subscription.deleted"))


def test_create_subscription_directly(client: Any, control: EmulatorControl) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "api@example.com"})
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": catalog["month"].id}],
            "trial_period_days": 7,
            "metadata": {"k": "v"},
            "expand": ["latest_invoice"],
        }
    )
    assert sub.status == "trialing" and sub.latest_invoice.amount_due == 0
    assert not spec_errors("invoice", sub.latest_invoice)
    control.set_card(customer.id, fails=True)
    failing = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog["team_month"].id}]}
    )
    assert failing.status == "incomplete"
    control.advance(DAY)
    assert client.v1.subscriptions.retrieve(failing.id).status == "incomplete_expired"


def test_customer_deletion_cancels_subscriptions(
    client: Any, browser: httpx.Client, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    deleted = client.v1.customers.delete(sub.customer)
    assert deleted.deleted is True and deleted.id == sub.customer
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    again = client.v1.customers.retrieve(sub.customer)
    assert again.deleted is True
    events = wait_until(lambda: receiver.events("customer.deleted"))
    assert not stripe_spec.validate_object("event", events[0])
    types = [e["type"] for e in receiver.events()]
    assert types.index("customer.subscription.deleted") < types.index("customer.deleted")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(sub.customer, params={"name": "x"})


def test_checkout_success_url_placeholder(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": catalog["month"].id, "quantity": 2}],
            "success_url": f"{APP}/ok/{{CHECKOUT_SESSION_ID}}/x",
        }
    )
    assert pay(browser, session, email="q@example.com") == f"{APP}/ok/{session.id}/x"
    sub = client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    assert sub["items"].data[0].quantity == 2


def test_subscription_list_filters(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    trialing = subscribe(client, browser, catalog, trial_days=30)
    customer = client.v1.customers.create(params={"email": "b@example.com"})
    yearly = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog["year"].id}]}
    )
    by_status = client.v1.subscriptions.list(params={"status": "trialing"})
    assert [s.id for s in by_status.data] == [trialing.id]
    by_price = client.v1.subscriptions.list(params={"price": catalog["year"].id})
    assert [s.id for s in by_price.data] == [yearly.id]
    assert len(client.v1.subscriptions.list().data) == 2
    client.v1.subscriptions.cancel(yearly.id)
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "canceled"}).data] == [
        yearly.id
    ]
    assert len(client.v1.subscriptions.list(params={"status": "all"}).data) == 2
    expanded = client.v1.customers.retrieve(customer.id, params={"expand": ["subscriptions"]})
    assert expanded.subscriptions.data == []


def test_checkout_session_metadata_update(client: Any) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["month"].id)
    updated = client.v1.checkout.sessions.update(session.id, params={"metadata": {"k": "v"}})
    assert updated.metadata.to_dict() == {"org_id": "org_1", "k": "v"}
