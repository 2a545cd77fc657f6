"""Cards, PaymentIntents, invoice payments, Stripe's retry schedule and the hosted invoice page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import stripe

from emulator.client import EmulatorControl
from emulator.hosted import parse_forms, submit_form
from emulator.state import EmulatorState
from tests.emulator.conftest import Receiver, spec_errors
from tests.emulator.helpers import (
    DAY,
    assert_valid_events,
    checkout,
    emulator_on_file,
    invalid_request,
    pay,
    seed,
    wait_until,
)

THREE_D_SECURE = "4000 0027 6000 3184"
FAILS_LATER = "4000 0000 0000 0341"
LIST = {
    "status": "all",
    "limit": 100,
    "expand": ["data.customer", "data.latest_invoice.payments"],
}


def _subscribe(client: Any, browser: httpx.Client, catalog: dict[str, Any], card: str) -> Any:
    """A customer subscribed to the monthly price through Checkout with ``card``."""
    customer = client.v1.customers.create(params={"email": "pay@example.com"})
    pay(browser, checkout(client, customer.id, catalog["month"].id), card=card)
    return client.v1.subscriptions.list(params={"customer": customer.id}).data[0]


def _types(control: EmulatorControl, since: int = 0, *prefixes: str) -> list[str]:
    """The types of the events fired after the first ``since``, of the prefixes given."""
    types = [e["type"] for e in control.events()][since:]
    return [t for t in types if not prefixes or t.startswith(prefixes)]


def _latest(client: Any, sub_id: str) -> Any:
    """The subscription's latest invoice with its payments."""
    sub = client.v1.subscriptions.retrieve(sub_id)
    return client.v1.invoices.retrieve(sub.latest_invoice, params={"expand": ["payments"]})


def _intent(client: Any, invoice: Any) -> Any:
    """The PaymentIntent of an invoice's default payment."""
    (payment,) = invoice.payments.data
    assert payment.is_default and payment.payment.type == "payment_intent"
    return client.v1.payment_intents.retrieve(payment.payment.payment_intent)


def _to_renewal(client: Any, control: EmulatorControl, sub: Any) -> None:
    """Advance the clock just past the subscription's period end."""
    end = client.v1.subscriptions.retrieve(sub.id)["items"].data[0].current_period_end
    control.advance(end - control.now() + 10)


def _failed_renewal(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> tuple[Any, Any]:
    """A subscription whose card fails off session, just past its failed renewal; its invoice."""
    catalog = seed(client)
    sub = _subscribe(client, browser, catalog, FAILS_LATER)
    _to_renewal(client, control, sub)
    return sub, _latest(client, sub.id)


def _to_next_attempt(control: EmulatorControl, invoice: Any) -> None:
    """Advance the clock just past the invoice's next payment attempt."""
    control.advance(invoice.next_payment_attempt - control.now() + 10)


def test_checkout_card_and_the_service_read(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    sub = _subscribe(client, browser, catalog, "4242 4242 4242 4242")
    cus = client.v1.customers.retrieve(sub.customer)
    pm = cus.invoice_settings.default_payment_method
    assert pm.startswith("pm_") and sub.default_payment_method == pm
    card = client.v1.payment_methods.retrieve(pm)
    assert (card.customer, card.type, card.card.last4, card.card.brand) == (
        cus.id,
        "card",
        "4242",
        "visa",
    )
    assert not spec_errors("payment_method", card)
    order = _types(control, 0, "customer.", "payment_method.", "invoice.", "payment_intent.")
    assert order[:4] == [
        "customer.created",
        "payment_method.attached",
        "customer.updated",
        "customer.subscription.created",
    ]
    assert order[4:] == [
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    updated = control.events("customer.updated")[0]["data"]
    assert updated["previous_attributes"] == {"invoice_settings": {"default_payment_method": None}}

    listed = client.v1.subscriptions.list(params={"customer": cus.id, **LIST}).data
    (found,) = listed
    assert found.customer.id == cus.id
    invoice = found.latest_invoice
    (payment,) = invoice.payments.data
    assert payment.id.startswith("inpay_") and payment.invoice == invoice.id
    assert (payment.status, payment.amount_requested, payment.amount_paid) == ("paid", 2000, 2000)
    assert payment.status_transitions.paid_at == invoice.status_transitions.paid_at
    assert not spec_errors("invoice", invoice) and not spec_errors("invoice_payment", payment)
    intent = client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    assert (intent.status, intent.amount, intent.amount_received) == ("succeeded", 2000, 2000)
    assert (intent.customer, intent.payment_method) == (cus.id, pm)
    assert intent.description == "Subscription creation" and intent.last_payment_error is None
    assert not spec_errors("payment_intent", intent)
    again = client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments"]})
    assert again.payments.data[0].id == payment.id
    assert "payments" not in client.v1.invoices.retrieve(invoice.id).to_dict()


def test_invoice_lists_and_errors(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    sub = _subscribe(client, browser, catalog, FAILS_LATER)
    other = _subscribe(client, browser, catalog, "4242424242424242")
    _to_renewal(client, control, sub)
    by_sub = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in by_sub] == ["subscription_cycle", "subscription_create"]
    opened = client.v1.invoices.list(params={"customer": sub.customer, "status": "open"}).data
    assert [i.id for i in opened] == [by_sub[0].id]
    assert len(client.v1.invoices.list(params={"customer": other.customer}).data) == 2
    payments = client.v1.invoice_payments.list(params={"invoice": by_sub[0].id}).data
    assert [p.status for p in payments] == ["open"]
    intents = client.v1.payment_intents.list(params={"customer": sub.customer}).data
    assert [i.status for i in intents] == ["requires_payment_method", "succeeded"]
    err = invalid_request(lambda: client.v1.invoices.retrieve("in_nope"))
    assert (err.http_status, err.code) == (404, "resource_missing")
    err = invalid_request(lambda: client.v1.payment_intents.retrieve("pi_nope"))
    assert (err.http_status, err.code) == (404, "resource_missing")
    err = invalid_request(lambda: client.v1.invoices.list(params={"status": "late"}))
    assert err.param == "status"


def test_failed_renewal_follows_the_retry_schedule_then_cancels(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    sub = _subscribe(client, browser, catalog, FAILS_LATER)
    assert sub.status == "active"  # the card paid at Checkout: it fails off session
    start = len(control.events())
    _to_renewal(client, control, sub)
    invoice = _latest(client, sub.id)
    failed_at = control.now()
    assert (invoice.status, invoice.attempt_count, invoice.attempted) == ("open", 1, True)
    assert abs(invoice.next_payment_attempt - (failed_at + 3 * DAY)) < 60
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    intent = _intent(client, invoice)
    assert intent.status == "requires_payment_method" and intent.description == (
        "Subscription update"
    )
    error = intent.last_payment_error
    assert (error.type, error.code, error.decline_code) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    assert error.payment_method.id == sub.default_payment_method
    assert not spec_errors("payment_intent", intent)
    assert _types(control, start) == [
        "customer.subscription.updated",  # the new period
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "customer.subscription.updated",  # past_due
    ]
    waits = []
    for attempt in (2, 3):
        before = invoice.next_payment_attempt
        _to_next_attempt(control, invoice)
        invoice = _latest(client, sub.id)
        assert invoice.attempt_count == attempt and invoice.status == "open"
        waits.append(invoice.next_payment_attempt - before)
        assert _intent(client, invoice).id == intent.id  # one PaymentIntent, confirmed again
    assert [round(w / DAY) for w in waits] == [5, 7]
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    mark = len(control.events())
    _to_next_attempt(control, invoice)
    invoice = _latest(client, sub.id)
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (4, None)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.cancellation_details.reason == "payment_failed"
    assert _types(control, mark, "invoice.", "customer.subscription.") == [
        "invoice.payment_failed",
        "customer.subscription.deleted",
    ]
    failures = wait_until(lambda: len(receiver.events("invoice.payment_failed")) == 4)
    attempts = [e["data"]["object"] for e in receiver.events("invoice.payment_failed")]
    assert failures and [a["attempt_count"] for a in attempts] == [1, 2, 3, 4]
    assert attempts[-1]["next_payment_attempt"] is None
    assert all(a["next_payment_attempt"] for a in attempts[:3])
    control.advance(40 * DAY)  # nothing is retried any more
    assert _latest(client, sub.id).attempt_count == 4
    assert_valid_events(control.events())


def test_a_retry_that_succeeds_recovers_the_subscription(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    sub, invoice = _failed_renewal(client, browser, control)
    control.set_card(sub.customer, fails=False)  # a working card, used by the retry
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"  # not retried yet
    mark = len(control.events())
    _to_next_attempt(control, invoice)
    paid = _latest(client, sub.id)
    assert (paid.status, paid.attempt_count, paid.next_payment_attempt) == ("paid", 2, None)
    assert _intent(client, paid).status == "succeeded"
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active"
    assert _types(control, mark, "invoice.", "customer.subscription.", "payment_intent.") == [
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    recovered = control.events("customer.subscription.updated")[-1]["data"]
    assert recovered["previous_attributes"] == {"status": "past_due"}


def test_three_d_secure_renewal_and_the_hosted_invoice_page(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    sub = _subscribe(client, browser, catalog, THREE_D_SECURE)
    assert sub.status == "active"  # authenticated on the Checkout page
    mark = len(control.events())
    _to_renewal(client, control, sub)
    invoice = _latest(client, sub.id)
    intent = _intent(client, invoice)
    assert intent.status == "requires_action" and intent.next_action.type == "use_stripe_sdk"
    assert intent.next_action.use_stripe_sdk["stripe_js"] == invoice.hosted_invoice_url
    assert intent.last_payment_error is None and not spec_errors("payment_intent", intent)
    assert _types(control, mark, "invoice.payment", "customer.subscription.", "payment_intent.")[
        -4:
    ] == [
        "payment_intent.requires_action",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "customer.subscription.updated",
    ]
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    _to_next_attempt(control, invoice)  # the retry needs the customer again
    invoice = _latest(client, sub.id)
    assert invoice.attempt_count == 2 and _intent(client, invoice).status == "requires_action"
    assert len(control.events("invoice.payment_action_required")) == 2

    page = browser.get(invoice.hosted_invoice_url)
    assert page.status_code == 200 and "Confirm payment" in page.text
    assert "id='amount-due' data-amount='2000'" in page.text and "id='next-attempt'" in page.text
    assert set(parse_forms(page.text)) == {"confirm-payment"}
    mark = len(control.events())
    done = submit_form(browser, invoice.hosted_invoice_url, "confirm-payment")
    assert not isinstance(done, str) and done.status_code == 200
    assert "id='paid'" in done.text and "<span id='status'>paid</span>" in done.text
    assert "confirm-payment" not in done.text
    assert _types(control, mark) == [
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    assert _intent(client, _latest(client, sub.id)).status == "succeeded"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    again = browser.post(invoice.hosted_invoice_url + "/confirm")
    assert again.status_code == 400
    assert_valid_events(control.events())


def test_hosted_invoice_page_pays_with_a_new_card(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    sub, invoice = _failed_renewal(client, browser, control)
    page = browser.get(invoice.hosted_invoice_url)
    assert "Your card was declined." in page.text and set(parse_forms(page.text)) == {"pay"}
    refused = submit_form(browser, invoice.hosted_invoice_url, "pay", card="4000000000000002")
    assert isinstance(refused, httpx.Response) and refused.status_code == 402
    bad = submit_form(browser, invoice.hosted_invoice_url, "pay", card="4242 4242 4242 4241")
    assert isinstance(bad, httpx.Response) and "Your card number is invalid." in bad.text
    assert _latest(client, sub.id).status == "open"
    paid = submit_form(browser, invoice.hosted_invoice_url, "pay", card="5555 5555 5555 4444")
    assert isinstance(paid, httpx.Response) and "id='paid'" in paid.text
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active"
    cus = client.v1.customers.retrieve(sub.customer)
    assert sub.default_payment_method == cus.invoice_settings.default_payment_method
    card = client.v1.payment_methods.retrieve(sub.default_payment_method).card
    assert (card.brand, card.last4) == ("mastercard", "4444")
    control.advance(40 * DAY)  # the new card renews
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert browser.get(f"{control.base_url}/i/in_nope").status_code == 404


def test_api_subscription_with_a_three_d_secure_card_is_incomplete(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "sca@example.com"})
    pm = control.attach_card(customer.id, THREE_D_SECURE)
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method == pm
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": catalog["month"].id}],
            "default_payment_method": pm,
            "expand": ["latest_invoice.payments"],
        }
    )
    assert sub.status == "incomplete" and sub.default_payment_method == pm
    invoice = sub.latest_invoice
    assert invoice.next_payment_attempt is None  # a first invoice is never retried
    assert _intent(client, invoice).status == "requires_action"
    submit_form(browser, invoice.hosted_invoice_url, "confirm-payment")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    err = invalid_request(
        lambda: client.v1.subscriptions.create(
            params={
                "customer": client.v1.customers.create().id,
                "items": [{"price": catalog["month"].id}],
                "default_payment_method": pm,
            }
        )
    )
    assert err.param == "default_payment_method" and "must be attached" in str(err.user_message)
    err = invalid_request(
        lambda: client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": catalog["month"].id}],
                "default_payment_method": "pm_nope",
            }
        )
    )
    assert (err.code, err.param) == ("resource_missing", "default_payment_method")
    assert "No such PaymentMethod: 'pm_nope'" in str(err.user_message)


def test_card_control(client: Any, control: EmulatorControl) -> None:
    customer = client.v1.customers.create(params={"email": "c@example.com"})
    first = control.attach_card(customer.id)
    control.set_card(customer.id, fails=True)
    second = client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
    assert first.startswith("pm_") and second.startswith("pm_") and first != second
    cards = client.v1.payment_methods.list(params={"customer": customer.id}).data
    assert [c.id for c in cards] == [second, first]
    resp = control.http.post(f"/customers/{customer.id}/card", json={"card": "4000000000000002"})
    assert resp.status_code == 402 and resp.json()["error"]["message"] == "Your card was declined."
    resp = control.http.post(f"/customers/{customer.id}/card", json={"card": THREE_D_SECURE})
    body = resp.json()
    assert body["requires_action"] is True and body["fails"] is False


def test_declined_card_at_checkout_is_a_card_error(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    session = checkout(client, None, catalog["month"].id)
    page = submit_form(browser, session.url, "pay", email="x@example.com", card="")
    assert isinstance(page, httpx.Response) and page.status_code == 402
    assert "Your card number is incomplete." in page.text and "id='back'" in page.text
    assert client.v1.customers.list().data == []  # nothing created


def test_payments_survive_a_restart(
    tmp_path: Path, receiver: Receiver, browser: httpx.Client
) -> None:
    state_file = tmp_path / "emulator.json"
    with emulator_on_file(receiver, state_file) as (control, client):
        catalog = seed(client)
        sub = _subscribe(client, browser, catalog, THREE_D_SECURE)
        _to_renewal(client, control, sub)
        invoice = _latest(client, sub.id)
        intent = _intent(client, invoice)
    with emulator_on_file(receiver, state_file) as (control, client):
        again = _latest(client, sub.id)
        assert again.next_payment_attempt == invoice.next_payment_attempt
        assert _intent(client, again).status == "requires_action"
        assert client.v1.payment_methods.retrieve(sub.default_payment_method).card.last4 == "3184"
        _to_next_attempt(control, again)  # the retry survived, and the card still needs 3DS
        retried = _latest(client, sub.id)
        assert retried.attempt_count == 2 and _intent(client, retried).id == intent.id
        assert _intent(client, retried).status == "requires_action"


def test_expanding_payments_through_the_sdk_types(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    sub = _subscribe(client, browser, catalog, "4242424242424242")
    listed = client.v1.subscriptions.list(params={"customer": sub.customer, **LIST})
    invoice = listed.data[0].latest_invoice
    assert isinstance(invoice, stripe.Invoice) and invoice.payments is not None
    assert isinstance(invoice.payments.data[0], stripe.InvoicePayment)


def test_a_state_file_from_before_payments_loads(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator.json"
    old = EmulatorState().dump()
    for name in ("payment_methods", "payment_intents", "invoice_payments"):
        del old["db"][name]
    del old["auth_cards"]
    state_file.write_text(json.dumps(old))
    state = EmulatorState(state_file=state_file)
    assert state.db.payment_methods == {} and state.db.payment_intents == {}
    assert state.db.invoice_payments == {} and state.auth_cards == set()
