"""The API route table: method + path template -> handler."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator import catalog, checkout, customers, events, portal, subscriptions

if TYPE_CHECKING:
    from emulator.state import EmulatorState

Handler = Callable[..., dict[str, Any]]

_TABLE: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/customers", customers.create),
    ("GET", "/v1/customers", customers.list_),
    ("GET", "/v1/customers/{customer}", customers.retrieve),
    ("POST", "/v1/customers/{customer}", customers.update),
    ("DELETE", "/v1/customers/{customer}", customers.delete),
    ("POST", "/v1/products", catalog.product_create),
    ("GET", "/v1/products", catalog.product_list),
    ("GET", "/v1/products/{id}", catalog.product_retrieve),
    ("POST", "/v1/products/{id}", catalog.product_update),
    ("DELETE", "/v1/products/{id}", catalog.product_delete),
    ("POST", "/v1/prices", catalog.price_create),
    ("GET", "/v1/prices", catalog.price_list),
    ("GET", "/v1/prices/{price}", catalog.price_retrieve),
    ("POST", "/v1/prices/{price}", catalog.price_update),
    ("POST", "/v1/checkout/sessions", checkout.create),
    ("GET", "/v1/checkout/sessions", checkout.list_),
    ("GET", "/v1/checkout/sessions/{session}", checkout.retrieve),
    ("POST", "/v1/checkout/sessions/{session}", checkout.update),
    ("POST", "/v1/checkout/sessions/{session}/expire", checkout.expire),
    ("GET", "/v1/checkout/sessions/{session}/line_items", checkout.line_items),
    ("POST", "/v1/billing_portal/configurations", portal.configuration_create),
    ("GET", "/v1/billing_portal/configurations", portal.configuration_list),
    (
        "GET",
        "/v1/billing_portal/configurations/{configuration}",
        portal.configuration_retrieve,
    ),
    ("POST", "/v1/billing_portal/configurations/{configuration}", portal.configuration_update),
    ("POST", "/v1/billing_portal/sessions", portal.session_create),
    ("POST", "/v1/subscriptions", subscriptions.create),
    ("GET", "/v1/subscriptions", subscriptions.list_),
    ("GET", "/v1/subscriptions/{subscription_exposed_id}", subscriptions.retrieve),
    ("POST", "/v1/subscriptions/{subscription_exposed_id}", subscriptions.update),
    ("DELETE", "/v1/subscriptions/{subscription_exposed_id}", subscriptions.cancel),
    ("GET", "/v1/events", events.event_list),
    ("GET", "/v1/events/{id}", events.event_retrieve),
    ("POST", "/v1/webhook_endpoints", events.endpoint_create),
    ("GET", "/v1/webhook_endpoints", events.endpoint_list),
    ("GET", "/v1/webhook_endpoints/{webhook_endpoint}", events.endpoint_retrieve),
    ("POST", "/v1/webhook_endpoints/{webhook_endpoint}", events.endpoint_update),
    ("DELETE", "/v1/webhook_endpoints/{webhook_endpoint}", events.endpoint_delete),
]

# Request schemas (see params.check_params) of endpoints the spec subset lacks.
_EXPAND: dict[str, Any] = {"t": ["array"], "i": {"t": ["string"], "m": 5000}}
_ID: dict[str, Any] = {"t": ["string"], "m": 5000}
NO_PARAMS: dict[str, Any] = {"t": ["object"], "p": {"expand": _EXPAND}}
EXTRA_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/checkout/sessions/{session}/expire"): NO_PARAMS,
    ("GET", "/v1/checkout/sessions/{session}/line_items"): {
        "t": ["object"],
        "p": {
            "expand": _EXPAND,
            "limit": {"t": ["integer"]},
            "starting_after": _ID,
            "ending_before": _ID,
        },
    },
}

Route = tuple[str, "re.Pattern[str]", str, Handler]


def _compile(template: str) -> re.Pattern[str]:
    """``/v1/x/{id}`` -> a regex with one group per placeholder."""
    return re.compile("^" + re.sub(r"\{[^}]+\}", "([^/]+)", template) + "$")


_STATIC: dict[tuple[str, str], tuple[str, Handler]] = {
    (m, t): (t, h) for m, t, h in _TABLE if "{" not in t
}
_DYNAMIC: list[Route] = [(m, _compile(t), t, h) for m, t, h in _TABLE if "{" in t]


def resolve(method: str, path: str) -> tuple[str, Handler, tuple[str, ...]] | None:
    """Find (template, handler, path args) for a request, or None."""
    if path.endswith("/search"):  # no search endpoints; never "No such customer: 'search'"
        return None
    hit = _STATIC.get((method, path))
    if hit is not None:
        return hit[0], hit[1], ()
    for m, pattern, template, handler in _DYNAMIC:
        if m == method:
            match = pattern.match(path)
            if match:
                return template, handler, match.groups()
    return None


def path_exists(path: str) -> bool:
    """Whether any method serves this path."""
    return any(resolve(m, path) for m in ("GET", "POST", "DELETE"))


def call(
    state: EmulatorState, handler: Handler, params: dict[str, Any], args: tuple[str, ...]
) -> dict[str, Any]:
    """Invoke a handler."""
    return handler(state, params, *args)
