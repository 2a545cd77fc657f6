"""Stripe's side, as the emulator has it: the real SDK pointed at an emulator, what Stripe
holds for an org, and the requests the service sent to Stripe."""

from __future__ import annotations

from typing import Any

import stripe

from harness.stack import Stack

SUITE_KEY = "sk_test_suite"


def stripe_sdk(base_url: str, api_key: str = SUITE_KEY) -> stripe.StripeClient:
    """The real Stripe SDK talking to the emulator at `base_url`."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )


def price_id(stripe_client: Any, lookup_key: str) -> str:
    """The id of the active price with a lookup key, as Stripe knows it."""
    prices = stripe_client.v1.prices.list(params={"lookup_keys": [lookup_key]})
    assert len(prices.data) == 1
    return str(prices.data[0].id)


def customer_of(stripe_client: Any, org: str) -> str:
    """The one Stripe customer whose metadata names the org."""
    customers = [
        c
        for c in stripe_client.v1.customers.list(params={"limit": 100}).auto_paging_iter()
        if c.metadata.to_dict().get("org_id") == org
    ]
    assert len(customers) == 1, customers
    return str(customers[0].id)


def new_feature(stripe_client: Any, key: str, product: str) -> str:
    """A feature made in the Dashboard (not by `catalog sync`), attached to a product; the id of
    the attachment."""
    feature = stripe_client.v1.entitlements.features.create(
        params={"name": key.replace("_", " "), "lookup_key": key}
    )
    attachment = stripe_client.v1.products.features.create(
        product, params={"entitlement_feature": feature.id}
    )
    return str(attachment.id)


def managed_configurations(stripe_client: Any) -> list[str]:
    """The ids of the portal configurations the service manages (`managed_by` metadata)."""
    return [
        c.id
        for c in stripe_client.v1.billing_portal.configurations.list().data
        if c.metadata.to_dict().get("managed_by") == "billing-api"
    ]


def stripe_calls(
    stack: Stack, path: str, method: str = "POST", mentions: str | None = None
) -> list[dict[str, Any]]:
    """Requests the emulator received on a path, optionally only those whose params
    mention a string (an org id or a customer id)."""
    found = stack.control.requests(path=path, method=method)
    if mentions is None:
        return found
    return [r for r in found if mentions in str(r["params"])]


def portal_sessions(stack: Stack, customer: str) -> list[dict[str, Any]]:
    """The Customer Portal sessions the emulator was asked for, for one customer."""
    return [
        r
        for r in stripe_calls(stack, "/v1/billing_portal/sessions")
        if r["params"].get("customer") == customer
    ]
