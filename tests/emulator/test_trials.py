"""Card-less trials (``payment_method_collection=if_required``), their end behaviours, and the
other Checkout options (tax, tax ids, billing address, promotion codes)."""

from __future__ import annotations

from typing import Any

import httpx

from emulator.client import EmulatorControl
from emulator.hosted import parse_forms, submit_form
from tests.emulator.conftest import Receiver, spec_errors
from tests.emulator.helpers import (
    APP,
    DAY,
    assert_valid_events,
    invalid_request,
    pay,
    portal_flow,
    seed,
    wait_until,
)

SUMMARY = "entitlements.active_entitlement_summary.updated"


def _session(client: Any, price: str, customer: str | None = None, **extra: Any) -> Any:
    """A subscription-mode Checkout Session with ``extra`` parameters."""
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": f"{APP}/done",
        **extra,
    }
    if customer:
        params["customer"] = customer
    return client.v1.checkout.sessions.create(params=params)


def _trial(client: Any, price: str, behavior: str | None = None, **extra: Any) -> Any:
    """A 14-day trial Session collecting a card only if required (``behavior``: what the trial
    does at its end without one)."""
    data: dict[str, Any] = {"trial_period_days": 14}
    if behavior:
        data["trial_settings"] = {"end_behavior": {"missing_payment_method": behavior}}
    return _session(
        client, price, payment_method_collection="if_required", subscription_data=data, **extra
    )


def _start(client: Any, browser: httpx.Client, session: Any) -> Any:
    """Start the trial without a card; returns the subscription."""
    assert pay(browser, session, email="trial@example.com") == f"{APP}/done"
    done = client.v1.checkout.sessions.retrieve(session.id)
    return client.v1.subscriptions.retrieve(done.subscription)


def _entitled(client: Any, customer: str) -> list[str]:
    """The lookup keys of the customer's active entitlements."""
    listed = client.v1.entitlements.active_entitlements.list(params={"customer": customer})
    return [e.lookup_key for e in listed.data]


def _types(control: EmulatorControl, since: int) -> list[str]:
    """The types of the events fired after the first ``since``."""
    return [e["type"] for e in control.events()][since:]


def _to_trial_end(control: EmulatorControl, sub: Any) -> None:
    """Advance the clock just past the trial's end."""
    control.advance(sub.trial_end - control.now() + 10)


def test_cardless_trial_then_invoice_and_recovery(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client)
    session = _trial(client, catalog["month"].id)
    assert session.payment_method_collection == "if_required"
    page = browser.get(session.url).text
    assert "Start trial" in page and "id='card-optional'" in page
    assert parse_forms(page)["pay"][2]["card"] == ""
    sub = _start(client, browser, session)
    assert sub.status == "trialing" and sub.default_payment_method is None
    assert sub.trial_settings.end_behavior.missing_payment_method == "create_invoice"
    cus = client.v1.customers.retrieve(sub.customer)
    assert cus.invoice_settings.default_payment_method is None
    assert control.events("payment_method.attached") == []
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.payment_status, done.amount_total) == ("no_payment_required", 0)

    control.advance(11 * DAY + 60)
    warned = wait_until(lambda: receiver.events("customer.subscription.trial_will_end"))
    assert warned[0]["data"]["object"]["trial_end"] == sub.trial_end
    mark = len(control.events())
    _to_trial_end(control, sub)
    sub = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice.payments"]})
    invoice = sub.latest_invoice
    assert sub.status == "past_due" and invoice.billing_reason == "subscription_cycle"
    assert (invoice.status, invoice.amount_due, invoice.attempt_count) == ("open", 2000, 1)
    assert abs(invoice.next_payment_attempt - (control.now() + 3 * DAY)) < 60
    intent = client.v1.payment_intents.retrieve(invoice.payments.data[0].payment.payment_intent)
    assert (intent.status, intent.payment_method, intent.last_payment_error) == (
        "requires_payment_method",
        None,
        None,
    )
    assert _types(control, mark) == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    control.advance(invoice.next_payment_attempt - control.now() + 10)  # no card: fails again
    assert client.v1.invoices.retrieve(invoice.id).attempt_count == 2
    flow = portal_flow(
        client, sub.customer, "payment_method_update", configuration=catalog["config"].id
    )
    submit_form(browser, flow.url, "update-payment-method")
    paid = client.v1.invoices.retrieve(invoice.id)
    assert paid.status == "paid" and paid.next_payment_attempt is None
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    control.advance(40 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_trial_end_cancels_without_a_card(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    sub = _start(client, browser, _trial(client, catalog["month"].id, "cancel"))
    assert sub.trial_settings.end_behavior.missing_payment_method == "cancel"
    mark = len(control.events())
    _to_trial_end(control, sub)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled" and ended.ended_at == sub.trial_end
    assert _types(control, mark) == [
        "customer.subscription.trial_will_end",
        "customer.subscription.deleted",
    ]
    assert len(client.v1.invoices.list(params={"subscription": sub.id}).data) == 1  # the trial's


def test_trial_end_pauses_then_a_saved_card_resumes(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    feature = client.v1.entitlements.features.create(params={"name": "SSO", "lookup_key": "sso"})
    client.v1.products.features.create(
        catalog["pro"].id, params={"entitlement_feature": feature.id}
    )
    sub = _start(client, browser, _trial(client, catalog["month"].id, "pause"))
    assert _entitled(client, sub.customer) == ["sso"]
    mark = len(control.events())
    _to_trial_end(control, sub)
    paused = client.v1.subscriptions.retrieve(sub.id)
    assert paused.status == "paused" and _entitled(client, sub.customer) == []
    assert _types(control, mark) == [
        "customer.subscription.trial_will_end",
        "customer.subscription.paused",
        "customer.subscription.updated",
        SUMMARY,
    ]
    updated = control.events("customer.subscription.updated")[-1]["data"]
    assert updated["previous_attributes"] == {"status": "trialing"}
    control.advance(45 * DAY)  # stays paused, nothing invoiced
    assert client.v1.subscriptions.retrieve(sub.id).status == "paused"
    assert len(client.v1.invoices.list(params={"subscription": sub.id}).data) == 1
    mark = len(control.events())
    control.attach_card(sub.customer)
    now = control.now()
    resumed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert resumed.status == "active" and abs(resumed.billing_cycle_anchor - now) < 5
    item = resumed["items"].data[0]
    assert abs(item.current_period_start - now) < 5 and item.current_period_end > now + 27 * DAY
    invoice = resumed.latest_invoice
    assert (invoice.status, invoice.amount_paid) == ("paid", 2000)
    assert invoice.period_start == item.current_period_start
    assert _types(control, mark) == [
        "payment_method.attached",
        "customer.updated",
        "customer.subscription.resumed",
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        SUMMARY,
    ]
    assert _entitled(client, sub.customer) == ["sso"]
    resumed_event = control.events("customer.subscription.updated")[-1]
    assert resumed_event["data"]["previous_attributes"]["status"] == "paused"
    assert_valid_events(control.events())


def test_paused_trial_resumes_from_the_portal(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    sub = client.v1.subscriptions.create(
        params={
            "customer": client.v1.customers.create(params={"email": "p@example.com"}).id,
            "items": [{"price": catalog["month"].id}],
            "trial_period_days": 7,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    _to_trial_end(control, sub)
    assert client.v1.subscriptions.retrieve(sub.id).status == "paused"
    flow = portal_flow(
        client, sub.customer, "payment_method_update", configuration=catalog["config"].id
    )
    submit_form(browser, flow.url, "update-payment-method", card="4000 0027 6000 3184")
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"  # authenticated there


def test_a_card_may_still_be_entered(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    session = _trial(client, catalog["month"].id, "cancel")
    pay(browser, session, email="card@example.com", card="4242 4242 4242 4242")
    sub = client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    assert sub.default_payment_method and sub.status == "trialing"
    _to_trial_end(control, sub)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"  # charged, not canceled


def test_if_required_without_a_trial_needs_a_card(client: Any, browser: httpx.Client) -> None:
    catalog = seed(client)
    session = _session(client, catalog["month"].id, payment_method_collection="if_required")
    assert "Subscribe" in browser.get(session.url).text
    page = submit_form(browser, session.url, "pay", email="x@example.com", card="")
    assert isinstance(page, httpx.Response) and page.status_code == 402
    assert "Your card number is incomplete." in page.text
    err = invalid_request(
        lambda: client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [{"price": catalog["month"].id, "quantity": 1}],
                "payment_method_collection": "if_required",
            }
        )
    )
    assert err.param in ("mode", "payment_method_collection")


def test_checkout_options_on_the_session_and_page(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "tax@example.com"})
    session = _session(
        client,
        catalog["month"].id,
        customer.id,
        automatic_tax={"enabled": True},
        customer_update={"address": "auto", "name": "auto"},
        tax_id_collection={"enabled": True},
        billing_address_collection="required",
        allow_promotion_codes=True,
    )
    assert session.automatic_tax.enabled is True
    assert session.automatic_tax.status == "requires_location_inputs"
    assert session.tax_id_collection.enabled is True
    assert (session.billing_address_collection, session.allow_promotion_codes) == (
        "required",
        True,
    )
    assert not spec_errors("checkout.session", session)
    fields = parse_forms(browser.get(session.url).text)["pay"][2]
    assert {"address_line1", "address_country", "tax_id", "promotion_code"} <= set(fields)
    refused = submit_form(browser, session.url, "pay")
    assert isinstance(refused, httpx.Response) and refused.status_code == 400
    assert "Your billing address is incomplete." in refused.text and "id='back'" in refused.text
    address = {
        "address_line1": "1 Rue de Rivoli",
        "address_city": "Paris",
        "address_postal_code": "75001",
        "address_country": "fr",
    }
    assert pay(browser, session, tax_id="FR 40303265045", **address) == f"{APP}/done"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.automatic_tax.status == "complete" and done.status == "complete"
    assert done.customer_details.address.line1 == "1 Rue de Rivoli"
    assert done.customer_details.address.country == "FR"
    assert [t.to_dict() for t in done.customer_details.tax_ids] == [
        {"type": "eu_vat", "value": "FR40303265045"}
    ]
    assert client.v1.customers.retrieve(customer.id).address.city == "Paris"
    assert not spec_errors("checkout.session", done)


def test_automatic_tax_needs_an_address(client: Any) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "noaddr@example.com"})
    err = invalid_request(
        lambda: _session(client, catalog["month"].id, customer.id, automatic_tax={"enabled": True})
    )
    assert "requires a valid address on the Customer" in str(err.user_message)
    with_ids = _session(
        client, catalog["month"].id, customer.id, tax_id_collection={"enabled": True}
    )
    assert with_ids.tax_id_collection.to_dict() == {"enabled": True, "required": "never"}
    updating = _session(
        client,
        catalog["month"].id,
        customer.id,
        automatic_tax={"enabled": True},
        customer_update={"shipping": "auto"},
    )
    assert updating.automatic_tax.status == "requires_location_inputs"
    client.v1.customers.update(
        customer.id, params={"address": {"line1": "1 Main St", "country": "US"}}
    )
    ok = _session(client, catalog["month"].id, customer.id, automatic_tax={"enabled": True})
    assert ok.automatic_tax.status == "complete"
    new = _session(client, catalog["month"].id, automatic_tax={"enabled": True})
    assert new.automatic_tax.status == "requires_location_inputs"


def test_promotion_code_at_checkout(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client)
    client.v1.coupons.create(params={"id": "HALF", "percent_off": 50, "duration": "once"})
    promo = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": "HALF"}, "code": "WELCOME"}
    )
    session = _session(client, catalog["month"].id, allow_promotion_codes=True)
    bad = submit_form(browser, session.url, "pay", email="p@example.com", promotion_code="NOPE")
    assert isinstance(bad, httpx.Response) and bad.status_code == 400
    assert "This code is invalid." in bad.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    pay(browser, session, email="p@example.com", promotion_code="welcome")
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.total_details.amount_discount == 1000 and done.amount_total == 1000
    assert [d.to_dict() for d in done.discounts] == [{"coupon": "HALF", "promotion_code": promo.id}]
    sub = client.v1.subscriptions.retrieve(done.subscription, params={"expand": ["latest_invoice"]})
    assert sub.latest_invoice.amount_paid == 1000
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    assert not spec_errors("checkout.session", done)
