"""Every object kind the emulator returns matches the spec and Stripe's example object."""

from __future__ import annotations

import json
from typing import Any

import httpx

from emulator import spec
from emulator.server import EmulatorServer
from emulator.tools.generate import KINDS as GENERATED
from tests.emulator.conftest import API_KEY, Receiver
from tests.emulator.helpers import checkout, pay, seed, wait_until
from tests.support import stripe_spec

# Kinds the spec subset has no schema for: their templates keep the fixture's fields.
UNSPECIFIED = ["deleted_product_feature", "entitlements.active_entitlement_summary"]
KINDS = [kind for kind in GENERATED if kind not in UNSPECIFIED]
"""Every other kind the emulator has a template for."""
NOT_FETCHED = {
    "payment_intent",
    "invoice_payment",
    "payment_method",
    "coupon",
    "promotion_code",
    "discount",
    "subscription_schedule",
}
"""Kinds `test_every_kind_from_the_api` does not fetch yet (their templates are checked)."""


def _expected_keys(kind: str) -> set[str]:
    """Stripe's example object's fields that the spec has, plus fields the spec requires."""
    schema = stripe_spec.load_spec()["components"]["schemas"][kind]
    props = set(schema["properties"])
    return (set(stripe_spec.fixture(kind)) & props) | set(schema.get("required", []))


def test_templates_match_fixture_fields() -> None:
    for kind in KINDS:
        assert set(spec.template(kind)) == _expected_keys(kind), kind
    for kind in UNSPECIFIED:
        assert set(spec.template(kind)) == set(stripe_spec.fixture(kind)), kind


def test_every_kind_from_the_api(
    server: EmulatorServer, browser: httpx.Client, client: Any, receiver: Receiver
) -> None:
    catalog = seed(client)
    feature = client.v1.entitlements.features.create(params={"name": "SSO", "lookup_key": "sso"})
    attached = client.v1.products.features.create(
        catalog["pro"].id, params={"entitlement_feature": feature.id}
    )
    customer = client.v1.customers.create(params={"email": "s@example.com"})
    session = checkout(client, customer.id, catalog["month"].id)
    pay(browser, session)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers) as http:

        def get(path: str, **params: Any) -> Any:
            resp = http.get(path, params=params)
            assert resp.status_code == 200, resp.text
            return resp.json()

        cs = get(f"/v1/checkout/sessions/{session.id}", **{"expand[]": "line_items"})
        sub = get(f"/v1/subscriptions/{cs['subscription']}", **{"expand[]": "latest_invoice"})
        portal = http.post(
            "/v1/billing_portal/sessions",
            data={"customer": customer.id, "configuration": catalog["config"].id},
        ).json()
        endpoint = http.post(
            "/v1/webhook_endpoints", data={"url": "https://x.test/h", "enabled_events[]": "*"}
        ).json()
        objects: dict[str, Any] = {
            "customer": get(f"/v1/customers/{customer.id}"),
            "product": get(f"/v1/products/{catalog['pro'].id}"),
            "price": get(f"/v1/prices/{catalog['month'].id}"),
            "checkout.session": cs,
            "item": cs["line_items"]["data"][0],
            "billing_portal.configuration": get(
                f"/v1/billing_portal/configurations/{catalog['config'].id}"
            ),
            "billing_portal.session": portal,
            "subscription": sub,
            "subscription_item": sub["items"]["data"][0],
            "invoice": sub["latest_invoice"],
            "line_item": sub["latest_invoice"]["lines"]["data"][0],
            "event": get("/v1/events")["data"][0],
            "webhook_endpoint": endpoint,
            "deleted_webhook_endpoint": http.delete(
                f"/v1/webhook_endpoints/{endpoint['id']}"
            ).json(),
            "deleted_product": http.delete(
                f"/v1/products/{http.post('/v1/products', data={'name': 'T'}).json()['id']}"
            ).json(),
            "entitlements.feature": get(f"/v1/entitlements/features/{feature.id}"),
            "product_feature": get(f"/v1/products/{catalog['pro'].id}/features/{attached.id}"),
            "entitlements.active_entitlement": get(
                "/v1/entitlements/active_entitlements", customer=customer.id
            )["data"][0],
        }
        summary = next(e for e in get("/v1/events")["data"] if e["type"].startswith("entitle"))
        unspecified = {
            "deleted_product_feature": http.delete(
                f"/v1/products/{catalog['pro'].id}/features/{attached.id}"
            ).json(),
            "entitlements.active_entitlement_summary": summary["data"]["object"],
        }
        objects["deleted_customer"] = http.delete(f"/v1/customers/{customer.id}").json()
    assert set(objects) == set(KINDS) - NOT_FETCHED
    for kind, obj in objects.items():
        assert not stripe_spec.validate_object(kind, obj), (kind, json.dumps(obj)[:300])
        expected = _expected_keys(kind)
        extra = {"line_items"} if kind == "checkout.session" else set()
        if kind == "webhook_endpoint":
            extra = {"secret"}
        assert set(obj) == expected | extra, kind
    for kind, obj in unspecified.items():
        assert set(obj) == set(stripe_spec.fixture(kind)), kind
    assert unspecified["deleted_product_feature"]["deleted"] is True
    wait_until(lambda: receiver.events("customer.deleted"))
    for event in receiver.events():
        assert not stripe_spec.validate_object("event", event), event["type"]
