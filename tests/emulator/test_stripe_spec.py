"""Tests for the stdlib Stripe OpenAPI validator in tests/support/stripe_spec.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support import stripe_spec as ss

KINDS = [
    "customer",
    "product",
    "price",
    "checkout.session",
    "billing_portal.configuration",
    "billing_portal.session",
    "subscription",
    "subscription_item",
    "invoice",
    "event",
    "webhook_endpoint",
    "entitlements.feature",
    "product_feature",
    "entitlements.active_entitlement",
]


def _customer(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(ss.fixture("customer"))
    obj.update(changes)
    return obj


def _has(problems: list[str], *needles: str) -> bool:
    return any(all(n in p for n in needles) for p in problems)


# ----------------------------------------------------------------------------- loading


def test_spec_and_fixtures_load_and_are_cached() -> None:
    spec = ss.load_spec()
    assert spec["openapi"].startswith("3.")
    assert "customer" in spec["components"]["schemas"]
    assert ss.load_spec() is spec
    assert ss.load_fixtures() is ss.load_fixtures()
    assert "customer" in ss.load_fixtures()["resources"]


def test_spec_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("STRIPE_SPEC_DIR", str(tmp_path))
    assert ss.spec_dir() == tmp_path
    monkeypatch.delenv("STRIPE_SPEC_DIR")
    assert (ss.spec_dir() / "openapi-subset.json").is_file()


# ----------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("kind", KINDS)
def test_fixture_validates_clean(kind: str) -> None:
    assert ss.validate_fixture(kind) == []


@pytest.mark.parametrize("kind", sorted(ss.FIXTURE_KNOWN_DRIFT))
def test_documented_fixture_drift_is_real(kind: str) -> None:
    """Every documented exception is still reported by the raw validator (list never goes stale)."""
    reported = {p.split(":", 1)[0] for p in ss.validate_object(kind, ss.fixture(kind))}
    assert set(ss.FIXTURE_KNOWN_DRIFT[kind]) == reported


def test_drift_filter_does_not_hide_other_problems() -> None:
    problems = ss.validate_object("product", dict(ss.fixture("product"), name=5))
    assert _has(problems, "product.name", "expected string")


# ----------------------------------------------------------------------------- negatives


def test_missing_required_field() -> None:
    obj = _customer()
    del obj["id"]
    assert _has(ss.validate_object("customer", obj), "customer.id", "missing required")


def test_unknown_field() -> None:
    problems = ss.validate_object("customer", _customer(favourite_colour="blue"))
    assert _has(problems, "customer.favourite_colour", "unknown field")


def test_wrong_types() -> None:
    problems = ss.validate_object("customer", _customer(balance="10", livemode=1, created=True))
    assert _has(problems, "customer.balance", "expected integer")
    assert _has(problems, "customer.livemode", "expected boolean")
    assert _has(problems, "customer.created", "expected integer", "boolean")  # bool is no int


def test_bad_enum() -> None:
    problems = ss.validate_object("customer", _customer(tax_exempt="sometimes"))
    assert _has(problems, "customer.tax_exempt", "enum")
    assert _has(ss.validate_object("customer", _customer(object="cust")), "customer.object", "enum")


def test_non_nullable_null_vs_nullable_null() -> None:
    assert _has(ss.validate_object("customer", _customer(livemode=None)), "livemode", "null")
    assert ss.validate_object("customer", _customer(email=None, address=None)) == []


def test_nested_objects_arrays_and_any_of() -> None:
    obj = _customer(address={"city": 1, "planet": "Mars"}, preferred_locales=["en", 2])
    problems = ss.validate_object("customer", obj)
    assert _has(problems, "customer.address.city", "expected string")
    assert _has(problems, "customer.address.planet", "unknown field")
    assert _has(problems, "customer.preferred_locales[1]", "expected string")


def test_metadata_accepts_any_key_but_checks_values() -> None:
    assert ss.validate_object("customer", _customer(metadata={"any": "x", "k2": "y"})) == []
    problems = ss.validate_object("customer", _customer(metadata={"n": 1}))
    assert _has(problems, "customer.metadata.n", "expected string")
    assert _has(ss.validate_object("customer", _customer(metadata={"k": "x" * 501})), "maxLength")


def test_expandable_field_id_or_object() -> None:
    sub = copy.deepcopy(ss.fixture("subscription"))
    sub["customer"] = "cus_123"
    assert ss.validate_fixture("subscription") == []
    assert [p for p in ss.validate_object("subscription", sub) if "customer" in p] == []
    sub["customer"] = ss.fixture("customer")
    assert [p for p in ss.validate_object("subscription", sub) if ".customer" in p] == []
    sub["customer"] = {"id": "cus_1", "object": "customer", "deleted": True}
    assert [p for p in ss.validate_object("subscription", sub) if ".customer" in p] == []
    sub["customer"] = {"id": "cus_1", "object": "customer"}  # expanded but incomplete
    assert _has(ss.validate_object("subscription", sub), "subscription.customer.created")
    sub["customer"] = 42
    assert _has(ss.validate_object("subscription", sub), "subscription.customer", "one of")


def test_event_payload_is_checked_against_its_resource() -> None:
    event = copy.deepcopy(ss.fixture("event"))
    event["type"] = "customer.updated"
    event["data"] = {"object": _customer(), "previous_attributes": {"email": "old@x.io"}}
    assert ss.validate_object("event", event) == []
    event["data"]["object"]["bogus"] = 1
    assert _has(ss.validate_object("event", event), "event.data.object.bogus", "unknown field")


def test_unknown_schema_name() -> None:
    with pytest.raises(KeyError):
        ss.validate_object("no_such_thing", {})


# ----------------------------------------------------------------------------- paths / responses


@pytest.mark.parametrize(
    ("path", "template", "params"),
    [
        ("/v1/customers", "/v1/customers", {}),
        ("/v1/customers/cus_123", "/v1/customers/{customer}", {"customer": "cus_123"}),
        ("/v1/customers/cus_123?expand[]=x", "/v1/customers/{customer}", {"customer": "cus_123"}),
        ("/v1/products/prod_1/features", "/v1/products/{product}/features", {"product": "prod_1"}),
        ("/v1/checkout/sessions/cs_1", "/v1/checkout/sessions/{session}", {"session": "cs_1"}),
        (
            "/v1/subscriptions/sub_1",
            "/v1/subscriptions/{subscription_exposed_id}",
            {"subscription_exposed_id": "sub_1"},
        ),
    ],
)
def test_match_path(path: str, template: str, params: dict[str, str]) -> None:
    assert ss.match_path(path) == (template, params)


def test_unknown_path_or_method() -> None:
    with pytest.raises(KeyError):
        ss.match_path("/v1/nope/x")
    with pytest.raises(KeyError):
        ss.schema_for_response("PATCH", "/v1/customers/cus_1")


def test_schema_for_response() -> None:
    assert ss.schema_for_response("post", "/v1/customers/cus_1") == {
        "$ref": "#/components/schemas/customer"
    }
    get = ss.schema_for_response("GET", "/v1/customers/cus_1")
    assert {b["$ref"].rsplit("/", 1)[1] for b in get["anyOf"]} == {"customer", "deleted_customer"}
    assert ss.schema_for_response("GET", "/v1/customers/cus_1", 404) == {
        "$ref": "#/components/schemas/error"
    }
    assert ss.schema_for_response("GET", "/v1/customers")["properties"]["object"]["enum"] == [
        "list"
    ]


def test_validate_response() -> None:
    deleted = {"id": "cus_1", "object": "customer", "deleted": True}
    assert ss.validate_response("DELETE", "/v1/customers/cus_1", 200, deleted) == []
    assert ss.validate_response("GET", "/v1/customers/cus_1", 200, deleted) == []
    assert ss.validate_response("GET", "/v1/customers/cus_1", 200, ss.fixture("customer")) == []
    page = {"object": "list", "data": [ss.fixture("customer")], "has_more": False}
    assert ss.validate_response("GET", "/v1/customers", 200, dict(page, url="/v1/customers")) == []
    assert _has(ss.validate_response("GET", "/v1/customers", 200, page), "url", "missing")
    error = {"error": {"type": "invalid_request_error", "message": "No such customer: 'x'"}}
    assert ss.validate_response("GET", "/v1/customers/x", 404, error) == []
    assert _has(
        ss.validate_response("GET", "/v1/customers/x", 400, {"error": {"type": "oops"}}), "enum"
    )
    assert _has(ss.validate_response("GET", "/v1/customers/x", 404, deleted), "error.error")


# ----------------------------------------------------------------------------- requests

CHECKOUT_PAIRS = [
    ("mode", "subscription"),
    ("customer", "cus_123"),
    ("line_items[0][price]", "price_123"),
    ("line_items[0][quantity]", "1"),
    ("success_url", "https://app.example/billing?session_id={CHECKOUT_SESSION_ID}"),
    ("cancel_url", "https://app.example/billing"),
    ("client_reference_id", "org_1"),
    ("allow_promotion_codes", "true"),
    ("metadata[org_id]", "42"),
    ("subscription_data[metadata][org_id]", "42"),
    ("subscription_data[trial_period_days]", "14"),
    ("expand[]", "subscription"),
]


def test_checkout_session_create_is_valid() -> None:
    params = ss.decode_form(CHECKOUT_PAIRS)
    assert ss.validate_request("POST", "/v1/checkout/sessions", params) == []


def test_billing_portal_session_with_flow_data_is_valid() -> None:
    params = {
        "customer": "cus_123",
        "return_url": "https://app.example/billing",
        "flow_data": {
            "type": "subscription_update_confirm",
            "subscription_update_confirm": {
                "subscription": "sub_123",
                "items": [{"id": "si_123", "price": "price_456", "quantity": "2"}],
            },
            "after_completion": {
                "type": "redirect",
                "redirect": {"return_url": "https://app.example/done"},
            },
        },
    }
    assert ss.validate_request("POST", "/v1/billing_portal/sessions", params) == []
    params["flow_data"] = {"type": "subscription_cancel", "subscription_cancel": {}}
    problems = ss.validate_request("POST", "/v1/billing_portal/sessions", params)
    assert problems == ["flow_data[subscription_cancel][subscription]: missing required parameter"]


def test_request_rejects_unknown_params_and_bad_enums() -> None:
    params = ss.decode_form([*CHECKOUT_PAIRS, ("colour", "red"), ("line_items[0][sku]", "x")])
    params["mode"] = "subscriptions"
    problems = ss.validate_request("POST", "/v1/checkout/sessions", params)
    assert "Received unknown parameter: colour" in problems
    assert "Received unknown parameter: line_items[0][sku]" in problems
    assert _has(problems, "mode", "'subscriptions'", "enum")
    assert len(problems) == 3


def test_request_coercion_is_lenient_but_not_blind() -> None:
    path = "/v1/checkout/sessions"
    ok = {"mode": "payment", "allow_promotion_codes": True, "expires_at": 1700000000}
    assert ss.validate_request("POST", path, ok) == []
    bad = {"allow_promotion_codes": "yes", "expires_at": "soon", "line_items": "x"}
    problems = ss.validate_request("POST", path, bad)
    assert _has(problems, "allow_promotion_codes", "expected boolean")
    assert _has(problems, "expires_at", "expected integer")
    assert _has(problems, "line_items", "expected array")
    # "" is Stripe's "unset" value where the spec allows it, nowhere else
    assert ss.validate_request("POST", "/v1/customers/cus_1", {"metadata": ""}) == []
    assert _has(ss.validate_request("POST", "/v1/customers/cus_1", {"balance": ""}), "balance")


def test_get_query_params() -> None:
    query = {"limit": "10", "email": "a@b.co", "created": {"gte": "1"}, "expand": ["data.tax"]}
    assert ss.validate_request("GET", "/v1/customers", query) == []
    assert ss.validate_request("GET", "/v1/customers", {"created": "1700000000"}) == []
    problems = ss.validate_request("GET", "/v1/customers", {"limit": "ten", "colour": "x"})
    assert _has(problems, "limit", "expected integer")
    assert "Received unknown parameter: colour" in problems


def test_missing_required_request_param() -> None:
    problems = ss.validate_request("POST", "/v1/products", {"active": "true"})
    assert "name: missing required parameter" in problems


def test_known_params() -> None:
    assert ss.known_params("GET", "/v1/customers/cus_1") == {"expand"}
    listing = ss.known_params("GET", "/v1/customers")
    assert {"limit", "starting_after", "ending_before", "email", "expand"} <= listing
    create = ss.known_params("POST", "/v1/checkout/sessions")
    assert {"mode", "line_items", "success_url", "customer", "metadata"} <= create
    assert "colour" not in create


# ----------------------------------------------------------------------------- form codec


def test_decode_form() -> None:
    assert ss.decode_form(
        [
            ("a[b][0][c]", "v"),
            ("a[b][1][c]", "w"),
            ("expand[]", "x"),
            ("expand[]", "y"),
            ("items[0][price]", "p"),
            ("items[1][price]", "q"),
            ("items[0][quantity]", "2"),
            ("l[][k]", "1"),
            ("l[][j]", "2"),
            ("l[][k]", "3"),
            ("plain", "z"),
        ]
    ) == {
        "a": {"b": [{"c": "v"}, {"c": "w"}]},
        "expand": ["x", "y"],
        "items": [{"price": "p", "quantity": "2"}, {"price": "q"}],
        "l": [{"k": "1", "j": "2"}, {"k": "3"}],
        "plain": "z",
    }


def test_decode_orders_numeric_indices() -> None:
    assert ss.decode_form([("x[10]", "c"), ("x[2]", "b"), ("x[0]", "a")]) == {"x": ["a", "b", "c"]}


def test_encode_form() -> None:
    assert ss.encode_form({"a": True, "b": False, "n": 3, "l": ["x"], "d": {"k": [{"p": 1}]}}) == [
        ("a", "true"),
        ("b", "false"),
        ("n", "3"),
        ("l[0]", "x"),
        ("d[k][0][p]", "1"),
    ]


def test_form_round_trip() -> None:
    params = ss.decode_form(CHECKOUT_PAIRS)
    assert ss.decode_form(ss.encode_form(params)) == params
    nested = {"flow_data": {"type": "t", "x": {"items": [{"id": "a"}, {"id": "b", "q": "2"}]}}}
    assert ss.decode_form(ss.encode_form(nested)) == nested
