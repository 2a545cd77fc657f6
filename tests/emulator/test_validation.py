"""Parameter values are checked against the spec's request schemas, as Stripe does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import stripe

from emulator.server import EmulatorServer
from tests.emulator.conftest import API_KEY
from tests.emulator.helpers import invalid_request, portal_flow, seed


def _error(call: Callable[[], Any]) -> stripe.InvalidRequestError:
    """The InvalidRequestError a call raises (a 400 invalid_request_error)."""
    err = invalid_request(call)
    assert err.http_status == 400
    assert err.error is not None and err.error.type == "invalid_request_error"
    return err


def test_enums(client: Any) -> None:
    err = _error(lambda: client.v1.customers.create(params={"tax_exempt": "sometimes"}))
    assert err.param == "tax_exempt"
    assert str(err.user_message) == "Invalid tax_exempt: must be one of exempt, none, or reverse"
    assert client.v1.customers.list().data == []  # nothing was created
    assert client.v1.customers.create(params={"tax_exempt": "reverse"}).tax_exempt == "reverse"
    listing = _error(lambda: client.v1.subscriptions.list(params={"status": "alive"}))
    assert listing.param == "status" and "must be one of active, all, canceled" in str(
        listing.user_message
    )


def test_nested_enums_name_the_full_param(client: Any) -> None:
    pro = client.v1.products.create(params={"name": "Pro"})
    err = _error(
        lambda: client.v1.prices.create(
            params={
                "product": pro.id,
                "currency": "usd",
                "unit_amount": 100,
                "recurring": {"interval": "fortnight"},
            }
        )
    )
    assert err.param == "recurring[interval]"
    assert str(err.user_message) == (
        "Invalid recurring[interval]: must be one of day, month, week, or year"
    )
    customer = client.v1.customers.create(params={"email": "v@example.com"})
    err = _error(lambda: portal_flow(client, customer.id, "subscription_pause"))
    assert err.param == "flow_data[type]"
    err = _error(
        lambda: client.v1.billing_portal.configurations.update(
            seed(client)["config"].id,
            params={"features": {"subscription_update": {"proration_behavior": "sometimes"}}},
        )
    )
    assert err.param == "features[subscription_update][proration_behavior]"


def test_scalar_types_and_lengths(client: Any) -> None:
    pro = client.v1.products.create(params={"name": "Pro"})
    price = {"product": pro.id, "currency": "usd"}
    err = _error(lambda: client.v1.prices.create(params={**price, "unit_amount": "12.5"}))
    assert err.param == "unit_amount" and str(err.user_message) == "Invalid integer: 12.5"
    err = _error(lambda: client.v1.products.create(params={"name": "X", "active": "yes"}))
    assert err.param == "active" and str(err.user_message) == "Invalid boolean: yes"
    err = _error(lambda: client.v1.customers.create(params={"name": "n" * 257}))
    assert err.param == "name" and "must be at most 256 characters" in str(err.user_message)
    assert client.v1.customers.create(params={"name": "n" * 256}).name == "n" * 256
    err = _error(lambda: client.v1.prices.create(params={**price, "unit_amount": ""}))
    assert err.param == "unit_amount"
    assert "You passed an empty string for 'unit_amount'" in str(err.user_message)


def test_hashes_arrays_and_required_keys(client: Any) -> None:
    err = _error(lambda: client.v1.customers.create(params={"address": "Paris"}))
    assert err.param == "address" and str(err.user_message) == "Invalid hash"
    err = _error(
        lambda: client.v1.checkout.sessions.create(
            params={"mode": "subscription", "line_items": "price_x"}
        )
    )
    assert err.param == "line_items" and str(err.user_message) == "Invalid array"
    err = _error(
        lambda: client.v1.checkout.sessions.create(
            params={"mode": "subscription", "line_items": [{"prise": "price_x"}]}
        )
    )
    assert err.param == "line_items[0][prise]" and err.code == "parameter_unknown"
    customer = client.v1.customers.create(params={"email": "r@example.com"})
    after = {"redirect": {"return_url": "https://app.test/"}}  # no type
    err = _error(
        lambda: portal_flow(client, customer.id, "payment_method_update", after_completion=after)
    )
    assert err.code == "parameter_missing"
    assert err.param == "flow_data[after_completion][type]"


def test_empty_string_unsets_where_the_spec_allows(client: Any) -> None:
    customer = client.v1.customers.create(
        params={"email": "u@example.com", "metadata": {"a": "b"}, "tax_exempt": "exempt"}
    )
    cleared = client.v1.customers.update(customer.id, params={"metadata": "", "tax_exempt": ""})
    assert cleared.metadata.to_dict() == {}
    config = seed(client)["config"]
    updated = client.v1.billing_portal.configurations.update(
        config.id, params={"business_profile": {"headline": ""}, "default_return_url": ""}
    )
    assert updated.business_profile.headline is None and updated.default_return_url is None


def test_raw_form_values(server: EmulatorServer) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as h:
        hashed = h.post("/v1/customers", data={"email[user]": "x"}).json()["error"]
        listed = h.get("/v1/customers", params={"limit": "ten"}).json()["error"]
        created = h.get("/v1/customers", params={"created[gte]": "1", "limit": "3"})
    assert hashed["param"] == "email" and hashed["message"].startswith("Invalid string")
    assert listed == {
        "type": "invalid_request_error",
        "message": "Invalid integer: ten",
        "param": "limit",
        "request_log_url": listed["request_log_url"],
    }
    assert created.status_code == 200


def _many(n: int) -> dict[str, str]:
    """Metadata with n keys."""
    return {f"key_{i}": "v" for i in range(n)}


KEY_41 = "k" * 41
VALUE_501 = "v" * 501
KEY_MESSAGE = (
    "Metadata keys can have up to 40 characters, but you passed in a key that is 41 "
    f"characters. Invalid key: {KEY_41}"
)
VALUE_MESSAGE = (
    "Metadata values can have up to 500 characters, but you passed in a value that is 501 "
    f"characters. Invalid value: {VALUE_501}"
)
COUNT_MESSAGE = (
    "Metadata can have up to 50 keys, but you've set 51. Email us at "
    "support+metadata@stripe.com for more information."
)


def test_metadata_limits_on_every_endpoint(client: Any) -> None:
    catalog = seed(client)
    customer = client.v1.customers.create(params={"email": "m@example.com", "metadata": {"a": "b"}})
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": catalog["month"].id}]}
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": catalog["month"].id, "quantity": 1}],
            "success_url": "https://app.test/ok",
        }
    )
    line = [{"price": catalog["month"].id, "quantity": 1}]
    calls: list[tuple[Callable[[], Any], str, str]] = [
        (
            lambda: client.v1.customers.create(params={"metadata": {KEY_41: "v"}}),
            f"metadata[{KEY_41}]",
            KEY_MESSAGE,
        ),
        (
            lambda: client.v1.customers.update(customer.id, params={"metadata": _many(51)}),
            "metadata",
            COUNT_MESSAGE,
        ),
        (
            lambda: client.v1.products.create(params={"name": "P", "metadata": {"k": VALUE_501}}),
            "metadata[k]",
            VALUE_MESSAGE,
        ),
        (
            lambda: client.v1.prices.update(catalog["month"].id, params={"metadata": _many(51)}),
            "metadata",
            COUNT_MESSAGE,
        ),
        (
            lambda: client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "line_items": line,
                    "success_url": "https://app.test/ok",
                    "subscription_data": {"metadata": {KEY_41: "v"}},
                }
            ),
            f"subscription_data[metadata][{KEY_41}]",
            KEY_MESSAGE,
        ),
        (
            lambda: client.v1.checkout.sessions.update(
                session.id, params={"metadata": {"k": VALUE_501}}
            ),
            "metadata[k]",
            VALUE_MESSAGE,
        ),
        (
            lambda: client.v1.subscriptions.update(sub.id, params={"metadata": _many(51)}),
            "metadata",
            COUNT_MESSAGE,
        ),
        (
            lambda: client.v1.subscriptions.create(
                params={
                    "customer": customer.id,
                    "items": [{"price": catalog["year"].id, "metadata": {KEY_41: "v"}}],
                }
            ),
            f"items[0][metadata][{KEY_41}]",
            KEY_MESSAGE,
        ),
        (
            lambda: client.v1.billing_portal.configurations.update(
                catalog["config"].id, params={"metadata": {"k": VALUE_501}}
            ),
            "metadata[k]",
            VALUE_MESSAGE,
        ),
    ]
    for call, param, message in calls:
        err = _error(call)
        assert (err.param, str(err.user_message)) == (param, message)
    # Nothing changed.
    assert [c.id for c in client.v1.customers.list().data] == [customer.id]
    assert client.v1.customers.retrieve(customer.id).metadata.to_dict() == {"a": "b"}
    assert [p.name for p in client.v1.products.list().data] == ["Team", "Pro"]
    assert client.v1.subscriptions.retrieve(sub.id).metadata.to_dict() == {}
    assert len(client.v1.subscriptions.list(params={"customer": customer.id}).data) == 1
    config = client.v1.billing_portal.configurations.retrieve(catalog["config"].id)
    assert config.metadata.to_dict() == {}


def test_metadata_at_the_limits_is_accepted(client: Any) -> None:
    full = {**_many(49), "k" * 40: "v" * 500}
    customer = client.v1.customers.create(params={"metadata": full})
    assert customer.metadata.to_dict() == full
    over = _error(lambda: client.v1.customers.update(customer.id, params={"metadata": {"x": "y"}}))
    assert over.param == "metadata" and "but you've set 51" in str(over.user_message)
    swap = {"k" * 40: "", "x": "y", **{f"extra_{i}": "" for i in range(9)}}  # "" unsets a key
    updated = client.v1.customers.update(customer.id, params={"metadata": swap})
    assert len(updated.metadata.to_dict()) == 50 and updated.metadata["x"] == "y"
    assert (
        client.v1.customers.retrieve(customer.id).metadata.to_dict() == updated.metadata.to_dict()
    )
