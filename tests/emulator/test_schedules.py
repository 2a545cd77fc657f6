"""Subscription schedules: the API, the portal's scheduled downgrades and the clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from emulator.client import EmulatorControl
from emulator.hosted import parse_forms, submit_form
from emulator.periods import add_interval
from emulator.server import EmulatorServer
from tests.emulator.conftest import make_client, spec_errors
from tests.emulator.helpers import invalid_request, portal_flow, seed, subscribe

BOTH = [{"type": "decreasing_item_amount"}, {"type": "shortening_interval"}]


def _scheduling(client: Any, catalog: dict[str, Any], conditions: list[Any] = BOTH) -> None:
    """Turn on the configuration's ``schedule_at_period_end`` conditions."""
    client.v1.billing_portal.configurations.update(
        catalog["config"].id,
        params={
            "features": {
                "subscription_update": {"schedule_at_period_end": {"conditions": conditions}}
            }
        },
    )


def _types(control: EmulatorControl, mark: int, *prefixes: str) -> list[str]:
    """The types of the events since ``mark`` (those starting with one of ``prefixes``)."""
    return [
        e["type"] for e in control.events()[mark:] if not prefixes or e["type"].startswith(prefixes)
    ]


SCHEDULE_EVENTS = ("subscription_schedule.", "customer.subscription.")


def _scheduled_downgrade(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> tuple[dict[str, Any], Any, Any, str]:
    """Team monthly switched to Pro monthly in the portal, scheduled: catalog, sub, session, id."""
    catalog = seed(client, control)
    _scheduling(client, catalog)
    sub = subscribe(client, browser, catalog, price="team_month")
    session = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    submit_form(browser, session.url, f"switch-{catalog['month'].id}")  # scheduled
    return catalog, sub, session, client.v1.subscriptions.retrieve(sub.id).schedule


def _period(sub: Any) -> tuple[int, int]:
    """A subscription's current period."""
    item = sub["items"].data[0]
    return item.current_period_start, item.current_period_end


def test_portal_configuration_round_trips_the_new_fields(client: Any) -> None:
    catalog = seed(client)
    features = {
        "customer_update": {"enabled": True, "allowed_updates": ["email", "address", "name"]},
        "subscription_update": {
            "enabled": True,
            "default_allowed_updates": ["price"],
            "products": [
                {"product": catalog["pro"].id, "prices": [catalog["month"].id, catalog["year"].id]}
            ],
            "schedule_at_period_end": {"conditions": BOTH},
        },
    }
    made = client.v1.billing_portal.configurations.create(params={"features": features})
    for cfg in (
        made,
        client.v1.billing_portal.configurations.retrieve(made.id),
        next(c for c in client.v1.billing_portal.configurations.list().data if c.id == made.id),
    ):
        su = cfg.features.subscription_update
        assert [c.type for c in su.schedule_at_period_end.conditions] == [
            "decreasing_item_amount",
            "shortening_interval",
        ]
        assert cfg.features.customer_update.enabled
        assert cfg.features.customer_update.allowed_updates == ["email", "address", "name"]
        assert not spec_errors("billing_portal.configuration", cfg)
    cleared = client.v1.billing_portal.configurations.update(
        made.id,
        params={
            "features": {
                "subscription_update": {"schedule_at_period_end": {"conditions": ""}},
                "customer_update": {"enabled": False, "allowed_updates": ""},
            }
        },
    )
    assert cleared.features.subscription_update.schedule_at_period_end.conditions == []
    assert cleared.features.customer_update.to_dict() == {"allowed_updates": [], "enabled": False}
    assert cleared.features.subscription_update.products[0].product == catalog["pro"].id
    bad = {"schedule_at_period_end": {"conditions": [{"type": "sometimes"}]}}
    err = invalid_request(
        lambda: client.v1.billing_portal.configurations.update(
            made.id, params={"features": {"subscription_update": bad}}
        )
    )
    assert err.param == "features[subscription_update][schedule_at_period_end][conditions][0][type]"


def test_portal_update_information(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    client.v1.billing_portal.configurations.update(
        catalog["config"].id,
        params={"features": {"customer_update": {"allowed_updates": ["email", "address"]}}},
    )
    sub = subscribe(client, browser, catalog)
    session = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    home = browser.get(session.url).text
    assert "Update information" in home
    fields = parse_forms(home)["update-customer"][2]
    assert fields["email"] == "ada@example.com" and "name" not in fields
    mark = len(control.events())
    submit_form(
        browser,
        session.url,
        "update-customer",
        email="grace@example.com",
        address_line1="1 Main St",
        address_city="Paris",
        address_country="FR",
    )
    customer = client.v1.customers.retrieve(sub.customer)
    assert customer.email == "grace@example.com"
    assert (customer.address.line1, customer.address.country) == ("1 Main St", "FR")
    (updated,) = [e for e in control.events()[mark:] if e["type"] == "customer.updated"]
    assert updated["data"]["previous_attributes"]["email"] == "ada@example.com"
    page = submit_form(browser, session.url, "update-customer", email="nope")
    assert not isinstance(page, str) and page.status_code == 400
    client.v1.billing_portal.configurations.update(
        catalog["config"].id, params={"features": {"customer_update": {"enabled": False}}}
    )
    assert "update-customer" not in parse_forms(browser.get(session.url).text)


def test_portal_downgrade_waits_for_the_period_end(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    _scheduling(client, catalog)
    sub = subscribe(client, browser, catalog, price="team_month")  # 50.00 USD a month
    start, end = _period(sub)
    session = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    mark = len(control.events())
    submit_form(browser, session.url, f"switch-{catalog['month'].id}")  # 20.00: less a period
    waiting = client.v1.subscriptions.retrieve(sub.id)
    assert waiting["items"].data[0].price.id == catalog["team_month"].id  # unchanged for now
    assert waiting.latest_invoice == sub.latest_invoice and waiting.schedule
    assert _types(control, mark) == [
        "subscription_schedule.created",
        "customer.subscription.updated",
        "subscription_schedule.updated",
    ]
    linked = control.events("customer.subscription.updated")[-1]["data"]
    assert linked["previous_attributes"] == {"schedule": None}
    sched = client.v1.subscription_schedules.retrieve(
        waiting.schedule, params={"expand": ["phases.items.price"]}
    )
    assert (sched.status, sched.end_behavior, sched.subscription) == ("active", "release", sub.id)
    assert not spec_errors("subscription_schedule", sched)
    now, after = sched.phases
    assert (now.start_date, now.end_date, now.items[0].price.id) == (
        start,
        end,
        catalog["team_month"].id,
    )
    assert (after.start_date, after.items[0].price.id) == (end, catalog["month"].id)
    assert after.end_date == add_interval(end, "month", 1)
    assert sched.current_phase.to_dict() == {"end_date": end, "start_date": start}
    assert f"data-date='{end}'" in browser.get(session.url).text  # p#scheduled-change
    # The period ends: the subscription renews on the new price.
    mark = len(control.events())
    control.advance(end - control.now() + 60)
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert renewed["items"].data[0].price.id == catalog["month"].id
    assert _period(renewed)[0] == end and renewed.schedule == sched.id
    invoice = renewed.latest_invoice
    assert (invoice.billing_reason, invoice.total, invoice.status) == (
        "subscription_cycle",
        2000,
        "paid",
    )
    assert _types(control, mark, *SCHEDULE_EVENTS) == [
        "customer.subscription.updated",
        "subscription_schedule.updated",
    ]
    moved = control.events("customer.subscription.updated")[-1]["data"]["previous_attributes"]
    assert moved["items"]["data"][0]["price"]["id"] == catalog["team_month"].id
    current = client.v1.subscription_schedules.retrieve(sched.id).current_phase
    assert current.start_date == end
    # The last phase ends: the schedule is released, the subscription goes on.
    mark = len(control.events())
    control.advance(after.end_date - control.now() + 60)
    released = client.v1.subscription_schedules.retrieve(sched.id)
    assert (released.status, released.released_subscription, released.subscription) == (
        "released",
        sub.id,
        None,
    )
    assert released.released_at == after.end_date and released.current_phase is None
    final = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert final.schedule is None and final.latest_invoice.total == 2000
    assert _types(control, mark, *SCHEDULE_EVENTS) == [
        "subscription_schedule.released",
        "customer.subscription.updated",
        "customer.subscription.updated",  # the renewal
    ]
    client.v1.events.list(params={"limit": 100})  # every payload checked against the spec


def test_year_to_month_on_the_confirmation_page(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    _scheduling(client, catalog, [{"type": "shortening_interval"}])
    sub = subscribe(client, browser, catalog, price="year")
    start, end = _period(sub)
    item = sub["items"].data[0]
    changes = {"subscription": sub.id, "items": [{"id": item.id, "price": catalog["month"].id}]}
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", changes)
    page = browser.get(flow.url).text
    assert f"<p id='scheduled' data-date='{end}'>Your new plan takes effect on" in page
    assert "id='amount-due' data-amount='0'" in page and "proration-line" not in page
    submit_form(browser, flow.url, "confirm")
    waiting = client.v1.subscriptions.retrieve(sub.id)
    assert waiting["items"].data[0].price.id == catalog["year"].id
    sched = client.v1.subscription_schedules.retrieve(waiting.schedule)
    assert [(p.start_date, p.end_date, p.items[0].price) for p in sched.phases] == [
        (start, end, catalog["year"].id),
        (end, add_interval(end, "month", 1), catalog["month"].id),
    ]
    listed = client.v1.subscription_schedules.list(params={"customer": sub.customer})
    assert [s.id for s in listed.data] == [sched.id]


def test_fewer_seats_wait_for_the_period_end(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    _scheduling(client, catalog, [{"type": "decreasing_item_amount"}])
    sub = subscribe(client, browser, catalog, quantity=3)
    item = sub["items"].data[0]
    fewer = {"subscription": sub.id, "items": [{"id": item.id, "quantity": 1}]}
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", fewer)
    submit_form(browser, flow.url, "confirm")
    waiting = client.v1.subscriptions.retrieve(sub.id)
    assert waiting["items"].data[0].quantity == 3
    phases = client.v1.subscription_schedules.retrieve(waiting.schedule).phases
    assert [(p.items[0].price, p.items[0].quantity) for p in phases] == [
        (catalog["month"].id, 3),
        (catalog["month"].id, 1),
    ]
    more = {"subscription": sub.id, "items": [{"id": item.id, "quantity": 5}]}
    flow = portal_flow(client, sub.customer, "subscription_update_confirm", more)
    submit_form(browser, flow.url, "confirm")  # more seats: now, and the schedule is dropped
    grown = client.v1.subscriptions.retrieve(sub.id)
    assert grown["items"].data[0].quantity == 5 and grown.schedule is None


def test_upgrade_applies_at_once_and_drops_a_scheduled_downgrade(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog, sub, session, sched_id = _scheduled_downgrade(client, browser, control)
    mark = len(control.events())
    submit_form(browser, session.url, f"switch-{catalog['year'].id}")  # more a period: now
    upgraded = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert upgraded["items"].data[0].price.id == catalog["year"].id and upgraded.schedule is None
    assert upgraded.latest_invoice.billing_reason == "subscription_update"
    assert upgraded.latest_invoice.status == "paid"
    assert client.v1.subscription_schedules.retrieve(sched_id).status == "released"
    assert _types(control, mark, *SCHEDULE_EVENTS) == [
        "subscription_schedule.released",
        "customer.subscription.updated",  # schedule: null
        "customer.subscription.updated",  # the new plan
    ]


def test_canceling_the_subscription_cancels_its_schedule(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    _, sub, _, sched_id = _scheduled_downgrade(client, browser, control)
    mark = len(control.events())
    client.v1.subscriptions.cancel(sub.id)
    canceled = client.v1.subscription_schedules.retrieve(sched_id)
    assert canceled.status == "canceled" and canceled.canceled_at and canceled.current_phase is None
    assert _types(control, mark, *SCHEDULE_EVENTS) == [
        "customer.subscription.deleted",
        "subscription_schedule.canceled",
    ]
    err = invalid_request(lambda: client.v1.subscription_schedules.release(sched_id))
    assert "`canceled` status" in str(err.user_message)


def test_schedules_api(client: Any, browser: httpx.Client, control: EmulatorControl) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    start, end = _period(sub)
    sched = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    assert [(p.start_date, p.end_date) for p in sched.phases] == [(start, end)]
    assert client.v1.subscriptions.retrieve(sub.id).schedule == sched.id
    err = invalid_request(
        lambda: client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    )
    assert err.param == "from_subscription" and "already attached" in str(err.user_message)
    err = invalid_request(
        lambda: client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    )
    assert "managed by the subscription schedule" in str(err.user_message)
    err = invalid_request(
        lambda: client.v1.subscription_schedules.update(sched.id, params={"iterations": 2})
    )
    assert (err.code, err.param) == ("parameter_unknown", "iterations")
    month, team = catalog["month"].id, catalog["team_month"].id
    moved = {"phases": [{"items": [{"price": month}], "start_date": start + 1}]}
    err = invalid_request(lambda: client.v1.subscription_schedules.update(sched.id, params=moved))
    assert err.param == "phases[0][start_date]"
    updated = client.v1.subscription_schedules.update(
        sched.id,
        params={
            "phases": [
                {"items": [{"price": month, "quantity": 1}], "end_date": end},
                {"items": [{"price": team, "quantity": 2}]},
            ],
            "metadata": {"why": "more seats"},
        },
    )
    assert [p.items[0].price for p in updated.phases] == [month, team]
    assert updated.phases[1].end_date == add_interval(end, "month", 1)
    assert updated.metadata["why"] == "more seats" and not spec_errors(
        "subscription_schedule", updated
    )
    control.advance(end - control.now() + 60)
    grown = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert (grown["items"].data[0].price.id, grown["items"].data[0].quantity) == (team, 2)
    assert grown.latest_invoice.total == 10000
    mark = len(control.events())
    released = client.v1.subscription_schedules.release(sched.id)
    assert released.status == "released" and released.released_subscription == sub.id
    assert client.v1.subscriptions.retrieve(sub.id).schedule is None
    assert _types(control, mark) == [
        "subscription_schedule.released",
        "customer.subscription.updated",
    ]
    err = invalid_request(lambda: client.v1.subscription_schedules.update(sched.id, params={}))
    assert "`released` status" in str(err.user_message)


def test_a_schedule_ending_with_cancel_completes(
    client: Any, browser: httpx.Client, control: EmulatorControl
) -> None:
    catalog = seed(client, control)
    sub = subscribe(client, browser, catalog)
    sched = client.v1.subscription_schedules.create(params={"from_subscription": sub.id})
    client.v1.subscription_schedules.update(sched.id, params={"end_behavior": "cancel"})
    mark = len(control.events())
    control.advance(_period(sub)[1] - control.now() + 60)
    assert client.v1.subscriptions.retrieve(sub.id).status == "canceled"
    done = client.v1.subscription_schedules.retrieve(sched.id)
    assert done.status == "completed" and done.completed_at
    assert _types(control, mark, *SCHEDULE_EVENTS) == [
        "customer.subscription.deleted",
        "subscription_schedule.completed",
    ]
    other = subscribe(client, browser, catalog)
    second = client.v1.subscription_schedules.create(params={"from_subscription": other.id})
    canceled = client.v1.subscription_schedules.cancel(second.id)
    assert canceled.status == "canceled"
    assert client.v1.subscriptions.retrieve(other.id).status == "canceled"


def test_coupons_and_schedules_survive_a_restart(tmp_path: Path, browser: httpx.Client) -> None:
    state_file = tmp_path / "emulator.json"
    with EmulatorServer(state_file=state_file) as first, EmulatorControl(first.url) as control:
        client = make_client(first.url)
        catalog = seed(client, control)
        _scheduling(client, catalog)
        sub = subscribe(client, browser, catalog, price="team_month")
        client.v1.coupons.create(params={"id": "HALF", "percent_off": 50, "duration": "forever"})
        promo = client.v1.promotion_codes.create(
            params={"promotion": {"type": "coupon", "coupon": "HALF"}, "code": "HALFOFF"}
        )
        client.v1.subscriptions.update(sub.id, params={"discounts": [{"promotion_code": promo.id}]})
        client.v1.coupons.delete("HALF")  # its discount keeps working
        session = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
        submit_form(browser, session.url, f"switch-{catalog['month'].id}")
        sched_id = client.v1.subscriptions.retrieve(sub.id).schedule
    with EmulatorServer(state_file=state_file) as second, EmulatorControl(second.url) as control:
        client = make_client(second.url)
        assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
        assert client.v1.subscription_schedules.retrieve(sched_id).status == "active"
        control.advance(_period(sub)[1] - control.now() + 60)
        renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
        assert renewed["items"].data[0].price.id == catalog["month"].id
        assert renewed.latest_invoice.total == 1000  # 20.00 at half price
