"""Entitlements: features, product features, active entitlements and the summary event."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from emulator.client import EmulatorControl
from emulator.hosted import submit_form
from emulator.server import EmulatorServer
from tests.emulator.conftest import Receiver
from tests.emulator.helpers import (
    DAY,
    invalid_request,
    monthly_product,
    seed,
    subscribe,
    wait_until,
)

EVENT = "entitlements.active_entitlement_summary.updated"
URL = "/v1/entitlements/active_entitlements"


def _feature(client: Any, key: str, **params: Any) -> Any:
    """A feature named after its lookup key."""
    return client.v1.entitlements.features.create(
        params={"name": key.upper(), "lookup_key": key, **params}
    )


def _product(client: Any, name: str, *keys: str) -> tuple[Any, Any]:
    """A product with a monthly price and new features (by lookup key) attached."""
    prod, price = monthly_product(client, name)
    for key in keys:
        _attach(client, prod.id, _feature(client, key).id)
    return prod, price


def _attach(client: Any, product: str, feature: str) -> Any:
    """Attach a feature to a product."""
    return client.v1.products.features.create(product, params={"entitlement_feature": feature})


def _customer(client: Any) -> Any:
    """A new customer."""
    return client.v1.customers.create(params={"email": "ent@example.com"})


def _subscribe(client: Any, customer: str, *prices: str, **params: Any) -> Any:
    """A subscription through the API."""
    items = [{"price": p} for p in prices]
    return client.v1.subscriptions.create(params={"customer": customer, "items": items, **params})


def _keys(client: Any, customer: str) -> list[str]:
    """The lookup keys of the customer's active entitlements, every page, sorted."""
    listed = client.v1.entitlements.active_entitlements.list(
        params={"customer": customer, "limit": 100}
    )
    return sorted(e.lookup_key for e in listed.auto_paging_iter())


def _summaries(control: EmulatorControl, customer: str) -> list[dict[str, Any]]:
    """The customer's summary events, oldest first."""
    return [e for e in control.events(type=EVENT) if e["data"]["object"]["customer"] == customer]


def _summary_keys(event: dict[str, Any], previous: bool = False) -> list[str]:
    """The lookup keys of a summary event's entitlements (or of the previous ones)."""
    data = event["data"]["previous_attributes"] if previous else event["data"]["object"]
    return sorted(e["lookup_key"] for e in data["entitlements"]["data"])


# -- features ---------------------------------------------------------------------------


def test_feature_create_list_retrieve_update(client: Any) -> None:
    sso = _feature(client, "sso", metadata={"tier": "pro"})
    assert sso.id.startswith("feat_test_") and sso.object == "entitlements.feature"
    assert (sso.name, sso.lookup_key, sso.active, sso.livemode) == ("SSO", "sso", True, False)
    assert sso.metadata.to_dict() == {"tier": "pro"}
    _feature(client, "audit_log")
    found = client.v1.entitlements.features.list(params={"lookup_key": "sso"})
    assert [f.id for f in found.data] == [sso.id] and found.url == "/v1/entitlements/features"
    assert client.v1.entitlements.features.retrieve(sso.id).name == "SSO"
    renamed = client.v1.entitlements.features.update(
        sso.id, params={"name": "Single sign-on", "metadata": {"tier": "", "x": "1"}}
    )
    assert renamed.name == "Single sign-on" and renamed.metadata.to_dict() == {"x": "1"}
    err = invalid_request(lambda: _feature(client, "sso"))
    assert err.http_status == 400 and err.param == "lookup_key"
    assert "A feature with lookup_key 'sso' already exists." in str(err.user_message)
    assert len(client.v1.entitlements.features.list().data) == 2  # nothing created
    err = invalid_request(lambda: _feature(client, "x" * 81, name="X"))
    assert err.param == "lookup_key" and "at most 80" in str(err.user_message)
    err = invalid_request(
        lambda: client.v1.entitlements.features.update(sso.id, params={"lookup_key": "k"})
    )
    assert err.param == "lookup_key" and err.code == "parameter_unknown"
    missing = invalid_request(lambda: client.v1.entitlements.features.retrieve("feat_test_nope"))
    assert missing.http_status == 404 and missing.code == "resource_missing"


def test_archived_features_are_listed_apart(client: Any) -> None:
    kept = _feature(client, "kept")
    gone = _feature(client, "gone")
    archived = client.v1.entitlements.features.update(gone.id, params={"active": False})
    assert archived.active is False
    assert [f.id for f in client.v1.entitlements.features.list().data] == [kept.id]
    listed = client.v1.entitlements.features.list(params={"archived": True})
    assert [f.id for f in listed.data] == [gone.id]
    page = client.v1.entitlements.features.list(params={"archived": False, "limit": 1})
    assert [f.id for f in page.data] == [kept.id] and page.has_more is False


# -- product features -------------------------------------------------------------------


def test_attach_list_retrieve_detach(client: Any) -> None:
    prod, _ = _product(client, "Pro")
    sso = _feature(client, "sso")
    attached = _attach(client, prod.id, sso.id)
    assert attached.id.startswith("prodft_") and attached.object == "product_feature"
    assert attached.entitlement_feature.to_dict() == sso.to_dict()  # the whole feature, inline
    listed = client.v1.products.features.list(prod.id)
    assert [pf.id for pf in listed.data] == [attached.id]
    assert listed.url == f"/v1/products/{prod.id}/features"
    assert (
        client.v1.products.features.retrieve(prod.id, attached.id).entitlement_feature.id == sso.id
    )
    err = invalid_request(lambda: _attach(client, prod.id, sso.id))
    assert err.http_status == 400 and err.param == "entitlement_feature"
    assert len(client.v1.products.features.list(prod.id).data) == 1  # nothing changed
    err = invalid_request(lambda: _attach(client, prod.id, "feat_test_unknown"))
    assert (err.http_status, err.code, err.param) == (
        400,
        "resource_missing",
        "entitlement_feature",
    )
    err = invalid_request(lambda: _attach(client, "prod_unknown", sso.id))
    assert (err.http_status, err.code) == (404, "resource_missing")
    renamed = client.v1.entitlements.features.update(sso.id, params={"name": "SSO v2"})
    again = client.v1.products.features.retrieve(prod.id, attached.id)
    assert again.entitlement_feature.name == renamed.name  # always the current feature
    deleted = client.v1.products.features.delete(prod.id, attached.id)
    assert deleted.to_dict() == {"id": attached.id, "object": "product_feature", "deleted": True}
    assert client.v1.products.features.list(prod.id).data == []
    err = invalid_request(lambda: client.v1.products.features.retrieve(prod.id, attached.id))
    assert err.http_status == 404


def test_archived_feature_cannot_be_attached(client: Any) -> None:
    prod, _ = _product(client, "Pro")
    old = _feature(client, "old")
    client.v1.entitlements.features.update(old.id, params={"active": False})
    err = invalid_request(lambda: _attach(client, prod.id, old.id))
    assert err.http_status == 400 and err.param == "entitlement_feature"
    assert client.v1.products.features.list(prod.id).data == []


def test_product_features_paginate(client: Any) -> None:
    prod, _ = _product(client, "Pro", *(f"f{n:02}" for n in range(12)))
    first = client.v1.products.features.list(prod.id)
    assert len(first.data) == 10 and first.has_more is True
    rest = client.v1.products.features.list(prod.id, params={"starting_after": first.data[-1].id})
    assert len(rest.data) == 2 and rest.has_more is False
    keys = {pf.entitlement_feature.lookup_key for pf in [*first.data, *rest.data]}
    assert keys == {f"f{n:02}" for n in range(12)}


# -- active entitlements ----------------------------------------------------------------


def test_entitlements_follow_subscriptions_across_products(client: Any) -> None:
    _, pro_price = _product(client, "Pro", "sso", "audit")
    team, team_price = _product(client, "Team", "seats")
    audit = client.v1.entitlements.features.list(params={"lookup_key": "audit"}).data[0]
    _attach(client, team.id, audit.id)  # reached through both products
    cus = _customer(client)
    assert _keys(client, cus.id) == []
    _subscribe(client, cus.id, pro_price.id)
    assert _keys(client, cus.id) == ["audit", "sso"]
    _subscribe(client, cus.id, team_price.id)
    assert _keys(client, cus.id) == ["audit", "seats", "sso"]  # audit once
    listed = client.v1.entitlements.active_entitlements.list(
        params={"customer": cus.id, "expand": ["data.feature"]}
    )
    assert listed.url == URL and listed.has_more is False
    ent = next(e for e in listed.data if e.lookup_key == "audit")
    assert ent.id.startswith("ent_test_") and ent.object == "entitlements.active_entitlement"
    assert ent.feature.id == audit.id and ent.feature.object == "entitlements.feature"
    found = client.v1.entitlements.active_entitlements.retrieve(ent.id)
    assert (found.id, found.feature, found.livemode) == (ent.id, audit.id, False)
    other = _customer(client)
    _subscribe(client, other.id, pro_price.id)
    theirs = client.v1.entitlements.active_entitlements.list(params={"customer": other.id})
    assert ent.id not in {e.id for e in theirs.data}  # one id per customer and feature


def test_active_entitlements_errors(client: Any) -> None:
    err = invalid_request(
        lambda: client.v1.entitlements.active_entitlements.list(params={"customer": "cus_nope"})
    )
    assert (err.http_status, err.code, err.param) == (404, "resource_missing", "customer")
    err = invalid_request(lambda: client.v1.entitlements.active_entitlements.list(params={}))
    assert (err.http_status, err.param) == (400, "customer")
    err = invalid_request(lambda: client.v1.entitlements.active_entitlements.retrieve("ent_nope"))
    assert err.http_status == 404


def test_which_statuses_grant(client: Any, control: EmulatorControl) -> None:
    _, price = _product(client, "Pro", "sso")
    trialing = _customer(client)
    sub = _subscribe(client, trialing.id, price.id, trial_period_days=7)
    assert sub.status == "trialing" and _keys(client, trialing.id) == ["sso"]
    client.v1.subscriptions.cancel(sub.id)
    assert _keys(client, trialing.id) == []
    late = _customer(client)
    control.set_card(late.id, True)
    incomplete = _subscribe(client, late.id, price.id)
    assert incomplete.status == "incomplete" and _keys(client, late.id) == []
    control.advance(DAY)
    assert client.v1.subscriptions.retrieve(incomplete.id).status == "incomplete_expired"
    assert _keys(client, late.id) == []
    renewing = _customer(client)
    _subscribe(client, renewing.id, price.id)
    control.set_card(renewing.id, True)
    control.advance(32 * DAY)
    listed = client.v1.subscriptions.list(params={"customer": renewing.id}).data
    assert listed[0].status == "past_due" and _keys(client, renewing.id) == ["sso"]
    assert _summaries(control, late.id) == []


def test_pagination_past_ten(client: Any, control: EmulatorControl) -> None:
    _, price = _product(client, "Pro", *(f"f{n:02}" for n in range(12)))
    cus = _customer(client)
    _subscribe(client, cus.id, price.id)
    first = client.v1.entitlements.active_entitlements.list(params={"customer": cus.id})
    assert len(first.data) == 10 and first.has_more is True
    keys = [e.lookup_key for e in first.data]
    assert keys == [f"f{n:02}" for n in range(11, 1, -1)]  # newest feature first
    rest = client.v1.entitlements.active_entitlements.list(
        params={"customer": cus.id, "starting_after": first.data[-1].id}
    )
    assert [e.lookup_key for e in rest.data] == ["f01", "f00"] and rest.has_more is False
    back = client.v1.entitlements.active_entitlements.list(
        params={"customer": cus.id, "ending_before": rest.data[0].id, "limit": 3}
    )
    assert [e.lookup_key for e in back.data] == ["f04", "f03", "f02"] and back.has_more is True
    (event,) = _summaries(control, cus.id)
    summary = event["data"]["object"]["entitlements"]
    assert [e["lookup_key"] for e in summary["data"]] == keys and summary["has_more"] is True


def test_pagination_past_a_hundred(client: Any) -> None:
    _, price = _product(client, "Pro", *(f"k{n:03}" for n in range(105)))
    cus = _customer(client)
    _subscribe(client, cus.id, price.id)
    page = client.v1.entitlements.active_entitlements.list(
        params={"customer": cus.id, "limit": 100}
    )
    assert len(page.data) == 100 and page.has_more is True
    rest = client.v1.entitlements.active_entitlements.list(
        params={"customer": cus.id, "limit": 100, "starting_after": page.data[-1].id}
    )
    assert len(rest.data) == 5 and rest.has_more is False
    assert len({e.id for e in [*page.data, *rest.data]}) == 105
    err = invalid_request(
        lambda: client.v1.entitlements.active_entitlements.list(
            params={"customer": cus.id, "limit": 101}
        )
    )
    assert err.param == "limit"


# -- the summary event ------------------------------------------------------------------


def test_summary_event_on_every_change(
    client: Any, control: EmulatorControl, receiver: Receiver
) -> None:
    pro, pro_price = _product(client, "Pro", "sso")
    _, team_price = _product(client, "Team", "seats")
    cus = _customer(client)
    sub = _subscribe(client, cus.id, pro_price.id)
    (subscribed,) = _summaries(control, cus.id)
    summary = subscribed["data"]["object"]
    assert summary["object"] == "entitlements.active_entitlement_summary"
    assert (summary["customer"], summary["livemode"]) == (cus.id, False)
    assert summary["entitlements"]["url"] == URL and summary["entitlements"]["has_more"] is False
    listed = client.v1.entitlements.active_entitlements.list(params={"customer": cus.id})
    assert summary["entitlements"]["data"] == [e.to_dict() for e in listed.data]
    assert subscribed["data"]["previous_attributes"] == {
        "entitlements": {"object": "list", "data": [], "has_more": False, "url": URL}
    }
    order = [e["type"] for e in control.events()]
    assert order.index("customer.subscription.created") < order.index(EVENT)

    audit = _feature(client, "audit")
    attached = _attach(client, pro.id, audit.id)
    assert _summary_keys(_summaries(control, cus.id)[-1]) == ["audit", "sso"]
    client.v1.products.features.delete(pro.id, attached.id)
    detached = _summaries(control, cus.id)[-1]
    assert _summary_keys(detached) == ["sso"]
    assert _summary_keys(detached, previous=True) == ["audit", "sso"]
    assert len(_summaries(control, cus.id)) == 3

    client.v1.subscriptions.update(sub.id, params={"metadata": {"note": "no change"}})
    client.v1.entitlements.features.update(audit.id, params={"name": "Audit log"})
    assert len(_summaries(control, cus.id)) == 3  # nothing changed: no event

    item = sub["items"].data[0].id
    client.v1.subscriptions.update(sub.id, params={"items": [{"id": item, "price": team_price.id}]})
    switched = _summaries(control, cus.id)[-1]
    assert _summary_keys(switched) == ["seats"] and _summary_keys(switched, True) == ["sso"]
    order = [e["type"] for e in control.events()]
    assert order[-2:] == ["customer.subscription.updated", EVENT]

    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert len(_summaries(control, cus.id)) == 4  # still entitled until the period ends
    control.advance(32 * DAY)
    ended = _summaries(control, cus.id)[-1]
    assert _summary_keys(ended) == [] and _summary_keys(ended, True) == ["seats"]
    events = control.events()
    deleted = next(n for n, e in enumerate(events) if e["type"] == "customer.subscription.deleted")
    assert deleted < [e["id"] for e in events].index(ended["id"])
    assert ended["created"] == events[deleted]["created"]  # at the end of the period
    assert len(_summaries(control, cus.id)) == 5

    wait_until(lambda: len(receiver.events(EVENT)) == 5)
    verified = [e for e in receiver.verified() if e.type == EVENT]
    assert [e.id for e in verified] == [e["id"] for e in _summaries(control, cus.id)]
    listed_events = client.v1.events.list(params={"type": EVENT})
    assert {e.id for e in listed_events.data} == {e.id for e in verified}


def test_summary_event_on_archive_and_customer_deletion(
    client: Any, control: EmulatorControl
) -> None:
    _, price = _product(client, "Pro", "sso", "audit")
    sso = client.v1.entitlements.features.list(params={"lookup_key": "sso"}).data[0]
    cus = _customer(client)
    _subscribe(client, cus.id, price.id)
    client.v1.entitlements.features.update(sso.id, params={"active": False})
    assert _summary_keys(_summaries(control, cus.id)[-1]) == ["audit"]
    assert _keys(client, cus.id) == ["audit"]
    client.v1.entitlements.features.update(sso.id, params={"active": True})
    assert _summary_keys(_summaries(control, cus.id)[-1]) == ["audit", "sso"]
    client.v1.customers.delete(cus.id)
    gone = _summaries(control, cus.id)[-1]
    assert _summary_keys(gone) == [] and _summary_keys(gone, True) == ["audit", "sso"]
    assert len(_summaries(control, cus.id)) == 4


def test_summary_event_goes_to_the_endpoints_that_want_it(
    client: Any, control: EmulatorControl, receiver: Receiver
) -> None:
    only = control.add_webhook_endpoint(receiver.url, "whsec_only", [EVENT])
    other = control.add_webhook_endpoint(receiver.url, "whsec_other", ["invoice.paid"])
    _, price = _product(client, "Pro", "sso")
    cus = _customer(client)
    _subscribe(client, cus.id, price.id)
    (event,) = _summaries(control, cus.id)
    control.wait_for_deliveries(2, event_id=event["id"])  # the catch-all one and ``only``
    endpoints = {d["endpoint"] for d in control.deliveries() if d["event_id"] == event["id"]}
    assert only["id"] in endpoints and other["id"] not in endpoints
    assert {d["type"] for d in control.deliveries() if d["endpoint"] == only["id"]} == {EVENT}


def test_summary_event_after_a_portal_switch(
    client: Any, control: EmulatorControl, browser: httpx.Client
) -> None:
    catalog = seed(client, control)
    _attach(client, catalog["pro"].id, _feature(client, "sso").id)
    _attach(client, catalog["team"].id, _feature(client, "seats").id)
    sub = subscribe(client, browser, catalog)  # Checkout's hosted page
    assert [_summary_keys(e) for e in _summaries(control, sub.customer)] == [["sso"]]
    portal = client.v1.billing_portal.sessions.create(params={"customer": sub.customer})
    submit_form(browser, portal.url, f"switch-{catalog['team_month'].id}")
    assert [_summary_keys(e) for e in _summaries(control, sub.customer)] == [["sso"], ["seats"]]
    order = [e["type"] for e in control.events()]
    assert order[-1] == EVENT and "customer.subscription.updated" in order[-4:]


def test_summary_webhook_through_the_sdk(client: Any, receiver: Receiver) -> None:
    _, price = _product(client, "Pro", "sso")
    _subscribe(client, _customer(client).id, price.id)
    wait_until(lambda: receiver.events(EVENT))
    (event,) = [e for e in receiver.verified() if e.type == EVENT]
    assert isinstance(event, stripe.Event)
    summary = event.data.object
    assert summary.object == "entitlements.active_entitlement_summary"
    assert [e.lookup_key for e in summary.entitlements.data] == ["sso"]


# -- the dashboard page -----------------------------------------------------------------


def test_dashboard_attaches_and_detaches(
    client: Any, server: EmulatorServer, control: EmulatorControl, browser: httpx.Client
) -> None:
    prod, price = _product(client, "Pro")
    cus = _customer(client)
    _subscribe(client, cus.id, price.id)
    index = browser.get(server.url + "/")
    assert "/_emulator/dashboard/products" in index.text
    url = server.url + "/_emulator/dashboard/products"
    page = browser.get(url)
    assert page.status_code == 200 and "Pro" in page.text and "create-feature" in page.text
    created = submit_form(browser, url, "create-feature", name="Single sign-on", lookup_key="sso")
    assert isinstance(created, httpx.Response) and created.status_code == 200
    sso = client.v1.entitlements.features.list(params={"lookup_key": "sso"}).data[0]
    assert sso.name == "Single sign-on"
    submit_form(browser, url, f"attach-{prod.id}", feature=sso.id)
    (attached,) = client.v1.products.features.list(prod.id).data
    assert attached.entitlement_feature.id == sso.id
    assert _keys(client, cus.id) == ["sso"] and len(_summaries(control, cus.id)) == 1
    html = browser.get(url).text
    assert f"product-feature-{attached.id}" in html and f"attach-{prod.id}" not in html
    submit_form(browser, url, f"detach-{attached.id}")
    assert client.v1.products.features.list(prod.id).data == []
    assert _keys(client, cus.id) == [] and len(_summaries(control, cus.id)) == 2
    submit_form(browser, url, f"archive-{sso.id}")
    assert client.v1.entitlements.features.retrieve(sso.id).active is False
    failed = submit_form(browser, url, "create-feature", name="Again", lookup_key="sso")
    assert isinstance(failed, httpx.Response) and failed.status_code == 400
    assert "already exists" in failed.text and "id='back'" in failed.text


@pytest.mark.parametrize("field", ["name", "lookup_key"])
def test_dashboard_checks_parameters(
    server: EmulatorServer, browser: httpx.Client, client: Any, field: str
) -> None:
    url = server.url + "/_emulator/dashboard/products"
    fields = {"name": "N", "lookup_key": "k", field: "x" * 81}
    failed = submit_form(browser, url, "create-feature", **fields)
    assert isinstance(failed, httpx.Response) and failed.status_code == 400
    assert client.v1.entitlements.features.list().data == []
