"""The API route table: method + path template -> endpoint (generic ones from ``resources``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from emulator import (
    catalog,
    checkout,
    coupons,
    customers,
    entitlements,
    events,
    features,
    portal,
    schedules_api,
    subscriptions,
)
from emulator.errors import StripeError
from emulator.params import check_metadata_update, check_params
from emulator.resources import Endpoint, creator, lookup, served
from emulator.shapes import Params
from emulator.spec import known_params

if TYPE_CHECKING:
    from emulator.state import EmulatorState

_TABLE: list[tuple[str, str, Endpoint]] = [
    *served(),
    ("POST", "/v1/customers", creator(customers.new_customer)),
    ("POST", "/v1/customers/{customer}", customers.update),
    ("DELETE", "/v1/customers/{customer}", customers.delete),
    ("POST", "/v1/products", creator(catalog.new_product)),
    ("POST", "/v1/products/{id}", catalog.product_update),
    ("DELETE", "/v1/products/{id}", catalog.product_delete),
    ("POST", "/v1/products/{product}/features", features.attach),
    ("GET", "/v1/products/{product}/features", features.list_product_features),
    ("GET", "/v1/products/{product}/features/{id}", features.retrieve_product_feature),
    ("DELETE", "/v1/products/{product}/features/{id}", features.detach),
    ("POST", "/v1/entitlements/features", features.create),
    ("POST", "/v1/entitlements/features/{id}", features.update),
    ("GET", "/v1/entitlements/active_entitlements", entitlements.list_active),
    ("GET", "/v1/entitlements/active_entitlements/{id}", entitlements.retrieve),
    ("POST", "/v1/prices", creator(catalog.new_price)),
    ("POST", "/v1/prices/{price}", catalog.price_update),
    ("POST", "/v1/checkout/sessions", checkout.create),
    ("POST", "/v1/checkout/sessions/{session}", checkout.update),
    ("POST", "/v1/checkout/sessions/{session}/expire", checkout.expire),
    ("GET", "/v1/checkout/sessions/{session}/line_items", checkout.line_items),
    ("POST", "/v1/billing_portal/configurations", portal.configuration_create),
    ("POST", "/v1/billing_portal/configurations/{configuration}", portal.configuration_update),
    ("POST", "/v1/billing_portal/sessions", portal.session_create),
    ("POST", "/v1/subscriptions", subscriptions.create),
    ("POST", "/v1/subscriptions/{subscription_exposed_id}", subscriptions.update),
    ("DELETE", "/v1/subscriptions/{subscription_exposed_id}", subscriptions.cancel),
    ("POST", "/v1/subscription_schedules", schedules_api.create),
    ("POST", "/v1/subscription_schedules/{schedule}", schedules_api.update),
    ("POST", "/v1/subscription_schedules/{schedule}/release", schedules_api.release),
    ("POST", "/v1/subscription_schedules/{schedule}/cancel", schedules_api.cancel),
    ("POST", "/v1/coupons", coupons.coupon_create),
    ("POST", "/v1/coupons/{coupon}", coupons.coupon_update),
    ("DELETE", "/v1/coupons/{coupon}", coupons.coupon_delete),
    ("POST", "/v1/promotion_codes", coupons.promotion_code_create),
    ("POST", "/v1/promotion_codes/{promotion_code}", coupons.promotion_code_update),
    ("POST", "/v1/webhook_endpoints", events.endpoint_create),
    ("POST", "/v1/webhook_endpoints/{webhook_endpoint}", events.endpoint_update),
    ("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", events.endpoint_delete),
]

# Request schemas (see params.check_params) of endpoints the spec subset lacks.
_EXPAND: dict[str, Any] = {"t": ["array"], "i": {"t": ["string"], "m": 5000}}
_ID: dict[str, Any] = {"t": ["string"], "m": 5000}
NO_PARAMS: dict[str, Any] = {"t": ["object"], "p": {"expand": _EXPAND}}
_METADATA: dict[str, Any] = {"t": ["object", "string"], "a": {"t": ["string"]}, "e": [""]}
_BOUND: dict[str, Any] = {"t": ["integer"]}
_CREATED: dict[str, Any] = {
    "t": ["object", "integer"],
    "p": {"gt": _BOUND, "gte": _BOUND, "lt": _BOUND, "lte": _BOUND},
}


def _list_params(**filters: dict[str, Any]) -> dict[str, Any]:
    """The request schema of a list endpoint: pagination, ``expand`` and ``filters``."""
    page = {"limit": {"t": ["integer"]}, "starting_after": _ID, "ending_before": _ID}
    return {"t": ["object"], "p": {"expand": _EXPAND, **page, **filters}}


EXTRA_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    **coupons.PARAMS,
    **schedules_api.PARAMS,
    ("POST", "/v1/checkout/sessions/{session}/expire"): NO_PARAMS,
    ("POST", "/v1/entitlements/features/{id}"): {
        "t": ["object"],
        "p": {
            "active": {"t": ["boolean"]},
            "expand": _EXPAND,
            "metadata": _METADATA,
            "name": {"t": ["string"], "m": 80},
        },
    },
    ("GET", "/v1/entitlements/features/{id}"): NO_PARAMS,
    ("GET", "/v1/products/{product}/features/{id}"): NO_PARAMS,
    ("DELETE", "/v1/products/{product}/features/{id}"): NO_PARAMS,
    ("GET", "/v1/entitlements/active_entitlements/{id}"): NO_PARAMS,
    ("GET", "/v1/checkout/sessions/{session}/line_items"): _list_params(),
    ("GET", "/v1/invoices"): _list_params(
        customer=_ID,
        subscription=_ID,
        status={"t": ["string"], "e": ["draft", "open", "paid", "uncollectible", "void"]},
        collection_method={"t": ["string"], "e": ["charge_automatically", "send_invoice"]},
        created=_CREATED,
    ),
    ("GET", "/v1/invoice_payments"): _list_params(
        invoice=_ID, status={"t": ["string"], "e": ["canceled", "open", "paid"]}
    ),
    ("GET", "/v1/payment_intents"): _list_params(customer=_ID, created=_CREATED),
    ("GET", "/v1/payment_intents/{intent}"): {
        "t": ["object"],
        "p": {"expand": _EXPAND, "client_secret": _ID},
    },
    ("GET", "/v1/payment_methods"): _list_params(customer=_ID, type={"t": ["string"], "m": 5000}),
}

Route = tuple[str, "re.Pattern[str]", str, Endpoint]


def _compile(template: str) -> re.Pattern[str]:
    """``/v1/x/{id}`` -> a regex with one group per placeholder."""
    return re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", template) + "$")


_STATIC: dict[tuple[str, str], tuple[str, Endpoint]] = {
    (m, t): (t, h) for m, t, h in _TABLE if "{" not in t
}
_DYNAMIC: list[Route] = [(m, _compile(t), t, h) for m, t, h in _TABLE if "{" in t]


def resolve(method: str, path: str) -> tuple[str, Endpoint, tuple[str, ...]] | None:
    """Find (template, endpoint, path args) for a request, or None."""
    if path.endswith("/search"):  # no search endpoints; never "No such customer: 'search'"
        return None
    hit = _STATIC.get((method, path))
    if hit is not None:
        return hit[0], hit[1], ()
    for m, pattern, template, endpoint in _DYNAMIC:
        if m == method:
            match = pattern.match(path)
            if match:
                return template, endpoint, match.groups()
    return None


def path_exists(path: str) -> bool:
    """Whether any method serves this path."""
    return any(resolve(m, path) for m in ("GET", "POST", "DELETE"))


def route(
    state: EmulatorState, method: str, path: str, params: Params
) -> tuple[Endpoint, tuple[str, ...]]:
    """The endpoint and path args of a request whose parameters pass the spec and limits."""
    found = resolve(method, path)
    if found is None:
        if path_exists(path):
            raise StripeError(f"Unrecognized request URL ({method}: {path}).", status=404)
        raise StripeError(
            f"Unrecognized request URL ({method}: {path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            status=404,
        )
    template, endpoint, args = found
    node = known_params(method, template) or EXTRA_PARAMS.get((method, template), NO_PARAMS)
    check_params(params, node)
    # an update may not leave its object with more than 50 metadata keys
    target = lookup(state, args[0]) if method == "POST" and args else None
    if target is not None:
        check_metadata_update(target.get("metadata") or {}, params)
    return endpoint, args
