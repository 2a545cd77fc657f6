"""Billing portal configurations, sessions (Stripe's validation) and the hosted portal."""

from __future__ import annotations

import re
from typing import Any

import httpx

from emulator.client import EmulatorControl
from emulator.hosted import parse_forms, submit_form
from tests.emulator.conftest import Receiver, spec_errors
from tests.emulator.helpers import (
    APP,
    DAY,
    invalid_request,
    portal_flow,
    prorated,
    seed,
    steady_page,
    subscribe,
    wait_until,
)


def test_configurations_crud(client: Any, control: EmulatorControl, receiver: Receiver) -> None:
    catalog = seed(client)
    cfg = catalog["config"]
    assert cfg.is_default is False and cfg.active  # only the Dashboard's configuration is
    assert cfg.features.subscription_update.products[0].prices == [
        catalog["month"].id,
        catalog["year"].id,
    ]
    assert not spec_errors("billing_portal.configuration", cfg)
    second = client.v1.billing_portal.configurations.create(
        params={"features": {"invoice_history": {"enabled": True}}}
    )
    assert second.is_default is False
    updated = client.v1.billing_portal.configurations.update(
        second.id,
        params={
            "business_profile": {"headline": "Hi"},
            "metadata": {"a": "b"},
            "features": {"subscription_cancel": {"enabled": True, "mode": "immediately"}},
        },
    )
    assert updated.business_profile.headline == "Hi"
    assert updated.features.subscription_cancel.mode == "immediately"
    assert client.v1.billing_portal.configurations.retrieve(second.id).metadata["a"] == "b"
    listed = client.v1.billing_portal.configurations.list(params={"is_default": True})
    assert listed.data == []
    control.set_default_portal(cfg.id)
    listed = client.v1.billing_portal.configurations.list(params={"is_default": True})
    assert [c.id for c in listed.data] == [cfg.id]
    control.set_default_portal(second.id)
    assert client.v1.billing_portal.configurations.retrieve(cfg.id).is_default is False
    updates = wait_until(
        lambda: (
            len(receiver.events("billing_portal.configuration.updated")) == 4
            and receiver.events("billing_portal.configuration.updated")
        )
    )
    assert updates[-1]["data"]["previous_attributes"] == {"is_default": False}


def test_configuration_validation(client: Any) -> None:
    seed(client)
    err = invalid_request(lambda: client.v1.billing_portal.configurations.create(params={}))
    assert err.param == "features"
    err = invalid_request(
        lambda: client.v1.billing_portal.configurations.create(
            params={
                "features": {
                    "subscription_update": {"enabled": True, "default_allowed_updates": ["price"]}
                }
            }
        )
    )
    assert err.param == "features[subscription_update][products]"
    err = invalid_request(
        lambda: client.v1.billing_portal.configurations.create(
            params={"features": {"subscription_cancel": {"enabled": True, "mode": "sometimes"}}}
        )
    )
    assert err.param == "features[subscription_cancel][mode]"
    assert str(err.user_message) == (
        "Invalid features[subscription_cancel][mode]: must be one of at_period_end or immediately"
    )


def test_session_validation(client: Any, browser: httpx.Client, control: EmulatorControl) -> None:
    # No default configuration: API-created configurations never are the default.
    customer = client.v1.customers.create(params={"email": "p@example.com"})
    catalog = seed(client)
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(params={"customer": customer.id})
    )
    assert err.http_status == 400 and err.param is None
    assert str(err.user_message) == (
        "You can't create a portal session in test mode until you save your customer portal "
        "settings in test mode at https://dashboard.stripe.com/test/settings/billing/portal."
    )
    control.set_default_portal(catalog["config"].id)
    assert client.v1.billing_portal.sessions.create(params={"customer": customer.id}).url
    # Unknown customer.
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(params={"customer": "cus_x"})
    )
    assert err.code == "resource_missing" and err.param == "customer"
    sub = subscribe(client, browser, catalog)
    other = client.v1.customers.create(params={"email": "o@example.com"})
    # Someone else's subscription.
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(
            params={
                "customer": other.id,
                "flow_data": {
                    "type": "subscription_cancel",
                    "subscription_cancel": {"subscription": sub.id},
                },
            }
        )
    )
    assert err.param == "flow_data[subscription_cancel][subscription]"
    # Unknown subscription, missing subscription.
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(
            params={
                "customer": other.id,
                "flow_data": {
                    "type": "subscription_update",
                    "subscription_update": {"subscription": "sub_nope"},
                },
            }
        )
    )
    assert err.code == "resource_missing"
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(
            params={"customer": other.id, "flow_data": {"type": "subscription_cancel"}}
        )
    )
    assert err.code == "parameter_missing"
    # A price the configuration does not offer.
    stray = client.v1.prices.create(
        params={
            "product": catalog["pro"].id,
            "currency": "usd",
            "unit_amount": 1,
            "recurring": {"interval": "week"},
        }
    )
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(
            params={
                "customer": sub.customer,
                "flow_data": {
                    "type": "subscription_update_confirm",
                    "subscription_update_confirm": {
                        "subscription": sub.id,
                        "items": [{"id": sub["items"].data[0].id, "price": stray.id}],
                    },
                },
            }
        )
    )
    assert "price" in str(err.param)
    # A feature disabled in the configuration.
    bare = client.v1.billing_portal.configurations.create(
        params={"features": {"invoice_history": {"enabled": True}}}
    )
    item = sub["items"].data[0].id
    flows: dict[str, dict[str, Any] | None] = {
        "subscription_cancel": {"subscription": sub.id},
        "subscription_update": {"subscription": sub.id},
        "subscription_update_confirm": {"subscription": sub.id, "items": [{"id": item}]},
        "payment_method_update": None,
    }
    for flow, details in flows.items():
        err = invalid_request(
            lambda flow=flow, details=details: portal_flow(
                client, sub.customer, flow, details, configuration=bare.id
            )
        )
        assert err.param == "flow_data[type]", flow
        assert f"`{flow.removesuffix('_confirm')}` feature is disabled" in str(err.user_message)
    # A canceled subscription.
    client.v1.subscriptions.cancel(sub.id)
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(
            params={
                "customer": sub.customer,
                "flow_data": {
                    "type": "subscription_cancel",
                    "subscription_cancel": {"subscription": sub.id},
                },
            }
        )
    )
    assert "canceled" in str(err.user_message)
    # after_completion redirect needs a URL.
    err = invalid_request(
        lambda: client.v1.billing_portal.sessions.create(
            params={
                "customer": sub.customer,
                "flow_data": {
                    "type": "payment_method_update",
                    "after_completion": {"type": "redirect"},
                },
            }
        )
    )
    assert err.code == "parameter_missing"


def test_session_object_and_flow(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    client.v1.coupons.create(params={"id": "SAVE20", "percent_off": 20})
    retention = {"type": "coupon_offer", "coupon_offer": {"coupon": "SAVE20"}}
    cancel = {"subscription": sub.id, "retention": retention}
    kept = portal_flow(client, sub.customer, "subscription_cancel", cancel)
    assert kept.flow.subscription_cancel.retention.to_dict() == retention
    assert not spec_errors("billing_portal.session", kept)
    cancel["retention"] = {"type": "coupon_offer"}
    err = invalid_request(lambda: portal_flow(client, sub.customer, "subscription_cancel", cancel))
    assert err.param == "flow_data[subscription_cancel][retention][coupon_offer]"
    session = client.v1.billing_portal.sessions.create(
        params={
            "customer": sub.customer,
            "flow_data": {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": sub.id},
                "after_completion": {
                    "type": "hosted_confirmation",
                    "hosted_confirmation": {"custom_message": "Bye"},
                },
            },
        }
    )
    assert session.return_url == f"{APP}/account"  # the configuration's default_return_url
    assert session.flow.type == "subscription_cancel"
    assert session.flow.subscription_cancel.subscription == sub.id
    assert session.flow.subscription_cancel.retention is None
    assert session.configuration == catalog["config"].id
    assert not spec_errors("billing_portal.session", session)
    page = submit_form(browser, session.url, "confirm")
    assert not isinstance(page, str) and "Bye" in page.text
    # After the flow, the same URL shows the home page with a renew button.
    assert "renew" in parse_forms(browser.get(session.url).text)


def test_portal_home_actions(
    client: Any, browser: httpx.Client, control: EmulatorControl, receiver: Receiver
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    session = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    home = browser.get(session.url)
    forms = parse_forms(home.text)
    assert {
        "cancel",
        "update-payment-method",
        f"switch-{catalog['year'].id}",
        f"switch-{catalog['team_month'].id}",
    } <= set(forms)
    assert "id='invoices'" in home.text and "Acme billing" in home.text
    submit_form(browser, session.url, f"switch-{catalog['team_month'].id}")
    assert (
        client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id
        == catalog["team_month"].id
    )
    submit_form(browser, session.url, "cancel", feedback="unused", comment="meh")
    canceled = client.v1.subscriptions.retrieve(sub.id)
    assert canceled.cancel_at_period_end and canceled.status == "active"
    assert canceled.cancellation_details.comment == "meh"
    submit_form(browser, session.url, "renew")
    assert not client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end
    updates = wait_until(
        lambda: (
            len(receiver.events("customer.subscription.updated")) >= 3
            and receiver.events("customer.subscription.updated")
        )
    )
    assert updates[-1]["data"]["previous_attributes"]["cancel_at_period_end"] is True


def test_cancel_immediately_mode(client: Any, browser: httpx.Client, receiver: Receiver) -> None:
    catalog = seed(client)
    sub = subscribe(client, browser, catalog)
    immediate = client.v1.billing_portal.configurations.create(
        params={"features": {"subscription_cancel": {"enabled": True, "mode": "immediately"}}}
    )
    session = client.v1.billing_portal.sessions.create(
        params={
            "customer": sub.customer,
            "configuration": immediate.id,
            "return_url": f"{APP}/back",
        }
    )
    assert "switch-" not in browser.get(session.url).text
    submit_form(browser, session.url, "cancel")
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    wait_until(lambda: receiver.events("customer.subscription.deleted"))


def test_portal_session_expiry_and_binding(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    stale = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    other = client.v1.customers.create(params={"email": "z@example.com"})
    foreign = client.v1.billing_portal.sessions.create(params={"customer": other.id})
    control.advance(301)
    assert browser.get(stale.url).status_code == 410
    fresh = client.v1.billing_portal.sessions.create(params={"customer": other.id})
    assert browser.get(fresh.url).status_code == 200
    # A session cannot act on another customer's subscription.
    resp = browser.post(f"{fresh.url}/cancel", data={"subscription": sub.id})
    assert resp.status_code == 403
    assert client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False
    assert browser.get(foreign.url).status_code == 410


def _block(page: str, element_id: str) -> str:
    """The inner HTML of the element with an id."""
    found = re.search(rf"id='{element_id}'[^>]*>(.*?)</(ul|b|p)>", page)
    assert found is not None, page
    return found.group(1)


def test_switch_confirmation_shows_plans_and_amount_due(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)  # proration_behavior=create_prorations
    sub = subscribe(client, browser, catalog)
    control.advance(10 * DAY)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    changes = {
        "subscription": sub.id,
        "items": [{"id": item.id, "price": catalog["team_month"].id}],
    }
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", changes)
    page, now = steady_page(browser, control, flow.url)
    assert "<h3>Current plan</h3>" in page and "<h3>New plan</h3>" in page
    assert _block(page, "current-plan") == (
        f"<li data-price='{catalog['month'].id}'>Pro — 20.00 USD / month</li>"
    )
    assert "Team — 50.00 USD / month" in _block(page, "new-plan")
    expected = prorated(5000, now, start, end) - prorated(2000, now, start, end)
    assert 0 < expected < 3000
    assert f"data-amount='{expected}'>{expected / 100:,.2f} USD<" in page
    assert "Amount due today: <b id='amount-due'" in page
    submit_form(browser, flow.url, "confirm")
    switched = client.v1.subscriptions.retrieve(sub.id)
    assert switched["items"].data[0].price.id == catalog["team_month"].id
    assert switched.latest_invoice == sub.latest_invoice  # prorations are not invoiced now
    back = {"subscription": sub.id, "items": [{"id": item.id, "price": catalog["month"].id}]}
    downgrade = portal_flow(client, sub.customer, "subscription_update_confirm", back)
    page, now = steady_page(browser, control, downgrade.url)
    credit = prorated(5000, now, start, end) - prorated(2000, now, start, end)
    assert "data-amount='0'>0.00 USD<" in page
    assert f"Credit to your balance: {credit / 100:,.2f} USD" in page


def test_switch_confirmation_amount_is_what_the_invoice_charges(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    control.advance(10 * DAY)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    yearly = {"subscription": sub.id, "items": [{"id": item.id, "price": catalog["year"].id}]}
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", yearly)
    page, shown_at = steady_page(browser, control, flow.url)
    shown = int(re.search(r"id='amount-due' data-amount='(\d+)'", page).group(1))  # type: ignore[union-attr]
    assert shown == 20000 - prorated(2000, shown_at, start, end)  # a new yearly period starts
    submit_form(browser, flow.url, "confirm")
    switched = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    invoice = switched.latest_invoice
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert not spec_errors("invoice", invoice)
    assert invoice.amount_due == 20000 - prorated(2000, invoice.created, start, end)
    if invoice.created == shown_at:  # the same second: the page and the invoice agree exactly
        assert invoice.amount_due == shown
    credit, charge = invoice.lines.data
    assert credit.amount < 0 and credit.description.startswith("Unused time on Pro after ")
    assert credit.parent.subscription_item_details.proration is True
    assert charge.amount == 20000 and charge.parent.subscription_item_details.proration is False
