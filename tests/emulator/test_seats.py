"""Per-seat plans: quantities through Checkout, renewals, the portal's confirm flow and its
own seats form, and adjustable quantities in portal configurations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from emulator.client import EmulatorControl
from emulator.hosted import parse_forms, submit_form
from tests.emulator.conftest import spec_errors
from tests.emulator.helpers import (
    APP,
    DAY,
    checkout,
    invalid_request,
    pay,
    portal_flow,
    prorated,
    seed,
    steady_page,
    subscribe,
)

TIMES = "\u00d7"
SEATS_MAX = 50


def _portal_config(
    client: Any,
    catalog: dict[str, Any],
    *,
    proration: str = "create_prorations",
    allowed: tuple[str, ...] = ("price", "quantity"),
) -> Any:
    """Business adjusts its seats (1 to 50), Pro does not."""
    return client.v1.billing_portal.configurations.create(
        params={
            "default_return_url": f"{APP}/account",
            "features": {
                "invoice_history": {"enabled": True},
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": list(allowed),
                    "proration_behavior": proration,
                    "products": [
                        {
                            "product": catalog["business"].id,
                            "prices": [catalog["business_month"].id, catalog["business_year"].id],
                            "adjustable_quantity": {
                                "enabled": True,
                                "minimum": 1,
                                "maximum": SEATS_MAX,
                            },
                        },
                        {
                            "product": catalog["pro"].id,
                            "prices": [catalog["month"].id, catalog["year"].id],
                        },
                    ],
                },
            },
        }
    )


def seed_seats(client: Any, control: EmulatorControl, **config: Any) -> dict[str, Any]:
    """``seed``'s catalog plus Business ($10 a seat a month, $100 a year) and a default portal
    configuration where Business's quantity is adjustable."""
    catalog = seed(client)
    business = client.v1.products.create(params={"name": "Business"})
    catalog["business"] = business
    for key, amount, interval in (("month", 1000, "month"), ("year", 10000, "year")):
        catalog[f"business_{key}"] = client.v1.prices.create(
            params={
                "product": business.id,
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": interval},
            }
        )
    catalog["seats_config"] = _portal_config(client, catalog, **config)
    control.set_default_portal(catalog["seats_config"].id)
    return catalog


def _text(page: str, element_id: str) -> str:
    """The inner text of the element with an id."""
    found = re.search(rf"id='{element_id}'[^>]*>(.*?)</", page)
    assert found is not None, page
    return found.group(1)


def _proration_rows(page: str) -> list[tuple[str, int]]:
    """(description, cents) of each row of ``table#proration``."""
    return [
        (text, int(amount))
        for amount, text in re.findall(
            r"<tr class='proration-line' data-amount='(-?\d+)'[^>]*><td>(.*?)</td>", page
        )
    ]


def _day(ts: int) -> str:
    """Stripe's date in proration descriptions: ``06 Dec 2026``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%d %b %Y")


def _updates(control: EmulatorControl, sub_id: str) -> list[dict[str, Any]]:
    """The subscription's customer.subscription.updated events, oldest first."""
    return [
        e
        for e in control.events("customer.subscription.updated")
        if e["data"]["object"]["id"] == sub_id
    ]


# -- Checkout -----------------------------------------------------------------------------


def test_checkout_quantity_validation(client: Any) -> None:
    catalog = seed(client)
    base = {"mode": "subscription", "success_url": f"{APP}/ok"}
    for bad in (0, -2):
        err = invalid_request(
            lambda bad=bad: client.v1.checkout.sessions.create(
                params={**base, "line_items": [{"price": catalog["month"].id, "quantity": bad}]}
            )
        )
        assert err.http_status == 400 and err.param == "line_items[0][quantity]"
        assert err.code == "parameter_invalid_integer"
        assert str(err.user_message) == "This value must be greater than or equal to 1."
    err = invalid_request(
        lambda: client.v1.checkout.sessions.create(
            params={**base, "line_items": [{"price": catalog["month"].id, "quantity": "two"}]}
        )
    )
    assert err.param == "line_items[0][quantity]" and str(err.user_message) == (
        "Invalid integer: two"
    )
    err = invalid_request(
        lambda: client.v1.checkout.sessions.create(
            params={
                **base,
                "line_items": [
                    {"price": catalog["month"].id, "quantity": 1},
                    {"price": catalog["team_month"].id},
                ],
            }
        )
    )
    assert err.param == "line_items[1]"
    assert str(err.user_message) == "Quantity is required. Add `quantity` to `line_items[1]`"
    assert client.v1.checkout.sessions.list().data == []


def test_checkout_with_seats(client: Any, browser: httpx.Client, control: EmulatorControl) -> None:
    catalog = seed_seats(client, control)
    customer = client.v1.customers.create(params={"email": "seats@example.com"})
    session = checkout(client, customer.id, catalog["business_month"].id, quantity=3)
    assert session.amount_subtotal == 3000 and session.amount_total == 3000
    [line] = client.v1.checkout.sessions.line_items.list(session.id).data
    assert line.quantity == 3 and line.amount_total == 3000 and line.description == "Business"
    assert not spec_errors("item", line)
    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert expanded.line_items.data[0].quantity == 3
    page = browser.get(session.url).text
    assert f"<td>3 {TIMES} Business</td>" in page
    assert _text(page, "quantity-0") == "3"
    assert "10.00 USD / month" in page and "30.00 USD / month" in page
    assert _text(page, "total") == "30.00 USD"
    pay(browser, session)
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.amount_total == 3000 and done.payment_status == "paid"
    sub = client.v1.subscriptions.retrieve(done.subscription, params={"expand": ["latest_invoice"]})
    [item] = sub["items"].data
    assert item.quantity == 3 and item.price.id == catalog["business_month"].id
    invoice = sub.latest_invoice
    assert invoice.amount_paid == 3000 and invoice.billing_reason == "subscription_create"
    [first] = invoice.lines.data
    assert first.quantity == 3 and first.amount == 3000
    assert first.description == f"3 {TIMES} Business (at $10.00 / month)"
    assert not spec_errors("subscription", sub) and not spec_errors("invoice", invoice)


# -- renewals -----------------------------------------------------------------------------


def test_renewals_invoice_every_seat(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control)
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    item = sub["items"].data[0]
    control.advance(item.current_period_end - control.now() + 10)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    invoice = renewed.latest_invoice
    assert invoice.billing_reason == "subscription_cycle" and invoice.amount_paid == 3000
    assert invoice.lines.data[0].quantity == 3
    # Five seats from now on, without prorations: the next renewal charges five.
    updated = client.v1.subscriptions.update(
        sub.id, params={"items": [{"id": item.id, "quantity": 5}], "proration_behavior": "none"}
    )
    assert updated["items"].data[0].quantity == 5
    assert updated.latest_invoice == renewed.latest_invoice.id
    change = _updates(control, sub.id)[-1]["data"]
    assert change["previous_attributes"]["items"]["data"][0]["quantity"] == 3
    assert change["object"]["items"]["data"][0]["quantity"] == 5
    end = updated["items"].data[0].current_period_end
    control.advance(end - control.now() + 10)
    invoice = client.v1.subscriptions.retrieve(
        sub.id, params={"expand": ["latest_invoice"]}
    ).latest_invoice
    assert invoice.billing_reason == "subscription_cycle" and invoice.amount_paid == 5000
    [line] = invoice.lines.data
    assert line.quantity == 5 and line.amount == 5000
    assert line.description == f"5 {TIMES} Business (at $10.00 / month)"


# -- the confirm flow ---------------------------------------------------------------------


def test_confirm_flow_previews_the_seat_change(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control)  # create_prorations
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    control.advance(10 * DAY)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    seats = {
        "subscription": sub.id,
        "items": [{"id": item.id, "price": catalog["business_month"].id, "quantity": 5}],
    }
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", seats)
    assert flow.flow.subscription_update_confirm.items[0].quantity == 5
    assert not spec_errors("billing_portal.session", flow)
    page, now = steady_page(browser, control, flow.url)
    assert _text(page, "current-seats") == "3" and _text(page, "new-seats") == "5"
    credit, charge = -prorated(3000, now, start, end), prorated(5000, now, start, end)
    assert _proration_rows(page) == [
        (f"Unused time on 3 {TIMES} Business after {_day(now)}", credit),
        (f"Remaining time on 5 {TIMES} Business after {_day(now)}", charge),
    ]
    assert 0 < credit + charge < 2000
    assert f"id='proration-total' data-amount='{credit + charge}'" in page
    assert f"id='amount-due' data-amount='{credit + charge}'" in page
    assert _text(page, "amount-due") == f"{(credit + charge) / 100:,.2f} USD"
    assert "id='credit'" not in page
    home = submit_form(browser, flow.url, "confirm")  # after_completion: the portal home
    assert not isinstance(home, str) and _text(home.text, "current-seats") == "5"
    changed = client.v1.subscriptions.retrieve(sub.id)
    assert changed["items"].data[0].quantity == 5
    assert changed["items"].data[0].price.id == catalog["business_month"].id
    assert changed.latest_invoice == sub.latest_invoice  # same interval: nothing invoiced now
    [update] = _updates(control, sub.id)
    assert update["data"]["previous_attributes"]["items"]["data"][0]["quantity"] == 3
    # Fewer seats: a credit, nothing due.
    fewer = {"subscription": sub.id, "items": [{"id": item.id, "quantity": 2}]}
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", fewer)
    page, now = steady_page(browser, control, flow.url)
    assert _text(page, "current-seats") == "5" and _text(page, "new-seats") == "2"
    total = sum(amount for _, amount in _proration_rows(page))
    assert total == prorated(2000, now, start, end) - prorated(5000, now, start, end) < 0
    assert "id='amount-due' data-amount='0'" in page
    assert f"Credit to your balance: {-total / 100:,.2f} USD" in page


def test_confirm_flow_invoices_what_it_previewed(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control, proration="always_invoice")
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    control.advance(10 * DAY)
    item = sub["items"].data[0]
    seats = {"subscription": sub.id, "items": [{"id": item.id, "quantity": 4}]}
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", seats)
    page, shown_at = steady_page(browser, control, flow.url)
    rows = _proration_rows(page)
    submit_form(browser, flow.url, "confirm")
    changed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert changed["items"].data[0].quantity == 4
    invoice = changed.latest_invoice
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert not spec_errors("invoice", invoice)
    credit, charge = invoice.lines.data
    assert (credit.quantity, charge.quantity) == (3, 4)
    assert credit.parent.subscription_item_details.proration is True
    assert charge.parent.subscription_item_details.proration is True
    start, end = item.current_period_start, item.current_period_end
    at = invoice.created  # what the change invoiced, whichever second it ran in
    assert (credit.amount, charge.amount) == (
        -prorated(3000, at, start, end),
        prorated(4000, at, start, end),
    )
    assert invoice.amount_due == credit.amount + charge.amount
    if invoice.created == shown_at:  # the same second: the page and the invoice agree exactly
        assert [(line.description, line.amount) for line in (credit, charge)] == rows
        assert invoice.amount_due == sum(amount for _, amount in rows)


def test_confirm_flow_quantity_validation(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control)
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    item = sub["items"].data[0].id
    param = "flow_data[subscription_update_confirm][items][0][quantity]"
    for bad in (0, -1):
        details = {"subscription": sub.id, "items": [{"id": item, "quantity": bad}]}
        err = invalid_request(
            lambda details=details: portal_flow(
                client, sub.customer, "subscription_update_confirm", details
            )
        )
        assert err.param == param and err.code == "parameter_invalid_integer"
        assert str(err.user_message) == "This value must be greater than or equal to 1."
    details = {"subscription": sub.id, "items": [{"id": item, "quantity": "many"}]}
    err = invalid_request(
        lambda: portal_flow(client, sub.customer, "subscription_update_confirm", details)
    )
    assert err.param == param and str(err.user_message) == "Invalid integer: many"


def test_switching_price_keeps_the_seats(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control)
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    item = sub["items"].data[0]
    yearly = {
        "subscription": sub.id,
        "items": [{"id": item.id, "price": catalog["business_year"].id}],
    }
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", yearly)
    page = browser.get(flow.url).text
    assert _text(page, "current-seats") == "3" and _text(page, "new-seats") == "3"
    submit_form(browser, flow.url, "confirm")
    switched = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert switched["items"].data[0].quantity == 3
    assert switched["items"].data[0].price.id == catalog["business_year"].id
    assert switched.latest_invoice.lines.data[-1].amount == 30000  # a new year, three seats
    # The portal home's plan switch keeps them too.
    home = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    submit_form(browser, home.url, f"switch-{catalog['business_month'].id}")
    back = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
    assert back.price.id == catalog["business_month"].id and back.quantity == 3


# -- portal configurations ----------------------------------------------------------------


def test_configuration_adjustable_quantity(client: Any, control: EmulatorControl) -> None:
    catalog = seed_seats(client, control)
    cfg = client.v1.billing_portal.configurations.retrieve(catalog["seats_config"].id)
    update = cfg.features.subscription_update
    assert update.default_allowed_updates == ["price", "quantity"]
    business, pro = update.products
    assert business.adjustable_quantity.to_dict() == {
        "enabled": True,
        "maximum": SEATS_MAX,
        "minimum": 1,
    }
    assert pro.adjustable_quantity.to_dict() == {"enabled": False, "maximum": None, "minimum": 1}
    assert not spec_errors("billing_portal.configuration", cfg)
    products = [{"product": catalog["business"].id, "prices": [catalog["business_month"].id]}]
    updated = client.v1.billing_portal.configurations.update(
        cfg.id,
        params={
            "features": {
                "subscription_update": {
                    "enabled": True,
                    "default_allowed_updates": ["quantity"],
                    "products": [{**products[0], "adjustable_quantity": {"enabled": True}}],
                }
            }
        },
    )
    update = updated.features.subscription_update
    assert update.default_allowed_updates == ["quantity"]
    assert update.products[0].adjustable_quantity.to_dict() == {
        "enabled": True,
        "maximum": None,
        "minimum": 1,
    }
    assert not spec_errors("billing_portal.configuration", updated)
    # A maximum below the minimum, a value of the wrong type.
    limits: list[tuple[dict[str, Any], str]] = [
        ({"enabled": True, "minimum": 5, "maximum": 2}, "maximum"),
        ({"enabled": True, "minimum": "few"}, "minimum"),
    ]
    for adjustable, name in limits:
        err = invalid_request(
            lambda adjustable=adjustable: client.v1.billing_portal.configurations.update(
                cfg.id,
                params={
                    "features": {
                        "subscription_update": {
                            "enabled": True,
                            "products": [{**products[0], "adjustable_quantity": adjustable}],
                        }
                    }
                },
            )
        )
        param = f"features[subscription_update][products][0][adjustable_quantity][{name}]"
        assert err.http_status == 400 and err.param == param
    unchanged = client.v1.billing_portal.configurations.retrieve(cfg.id)
    assert unchanged.features.subscription_update.default_allowed_updates == ["quantity"]


# -- the portal's seats form --------------------------------------------------------------


def test_portal_home_updates_seats(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control, proration="always_invoice")
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    control.advance(5 * DAY)
    session = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    page = browser.get(session.url).text
    method, action, fields = parse_forms(page)["seats"]
    assert (method, action) == ("POST", f"/p/session/{session.id}/quantity")
    assert fields == {"subscription": sub.id, "item": sub["items"].data[0].id, "quantity": "3"}
    assert "id='quantity' name='quantity' value='3' step='1' min='1' max='50'" in page
    assert _text(page, "current-seats") == "3" and "Update seats" in page
    result = submit_form(browser, session.url, "seats", quantity=7)
    assert not isinstance(result, str) and result.url.path == f"/p/session/{session.id}"
    assert _text(result.text, "current-seats") == "7"
    changed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert changed["items"].data[0].quantity == 7
    invoice = changed.latest_invoice  # always_invoice: the prorated difference is charged now
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert [line.quantity for line in invoice.lines.data] == [3, 7]
    assert 0 < invoice.amount_paid < 4000
    [update] = _updates(control, sub.id)
    assert update["data"]["previous_attributes"]["items"]["data"][0]["quantity"] == 3
    # Outside the product's limits, or not a whole number: a 400 page, nothing changes.
    for bad, message in (
        (SEATS_MAX + 1, f"The quantity must be at most {SEATS_MAX}."),
        (0, "This value must be greater than or equal to 1."),
        ("2.5", "Invalid integer: 2.5"),
    ):
        refused = submit_form(browser, session.url, "seats", quantity=bad)
        assert not isinstance(refused, str) and refused.status_code == 400
        assert message in refused.text
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].quantity == 7
    assert len(_updates(control, sub.id)) == 1


def test_seats_form_only_where_quantity_is_adjustable(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control)
    pro = subscribe(client, browser, catalog)  # Pro's quantity is not adjustable
    session = client.v1.billing_portal.sessions.create(params={"customer": pro.customer})
    assert "seats" not in parse_forms(browser.get(session.url).text)
    refused = browser.post(
        f"{session.url}/quantity",
        data={"subscription": pro.id, "item": pro["items"].data[0].id, "quantity": "2"},
    )
    assert refused.status_code == 400 and "not enabled" in refused.text
    # Business, but the configuration does not allow quantity updates.
    prices_only = _portal_config(client, catalog, allowed=("price",))
    business = subscribe(client, browser, catalog, "business_month", quantity=2)
    session = client.v1.billing_portal.sessions.create(
        params={"customer": business.customer, "configuration": prices_only.id}
    )
    assert "seats" not in parse_forms(browser.get(session.url).text)
    refused = browser.post(
        f"{session.url}/quantity",
        data={"subscription": business.id, "item": business["items"].data[0].id, "quantity": "4"},
    )
    assert refused.status_code == 400
    assert client.v1.subscriptions.retrieve(business.id)["items"].data[0].quantity == 2
    assert _updates(control, business.id) == []


def test_update_flow_offers_seats(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed_seats(client, control)
    sub = subscribe(client, browser, catalog, "business_month", quantity=3)
    flow = portal_flow(
        client,
        sub.customer,
        "subscription_update",
        {"subscription": sub.id},
        after_completion={"type": "redirect", "redirect": {"return_url": f"{APP}/seats"}},
    )
    forms = parse_forms(browser.get(flow.url).text)
    assert {"seats", f"switch-{catalog['business_year'].id}"} <= set(forms)
    assert submit_form(browser, flow.url, "seats", quantity=12) == f"{APP}/seats"
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].quantity == 12
