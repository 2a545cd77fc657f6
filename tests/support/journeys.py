"""Customer journeys through the emulator's hosted pages, as a browser would click them."""

from __future__ import annotations

from typing import Any

import httpx

from emulator.hosted import submit_form_async
from tests.support.api import APP_URL, Api


async def click(page_url: str, form_id: str, **fields: str) -> str:
    """Submit a form on a hosted page; return where the browser is sent next."""
    async with httpx.AsyncClient(timeout=30) as browser:
        result = await submit_form_async(browser, page_url, form_id, **fields)
    return str(result)


async def subscribe(api: Api, plan: str = "pro", interval: str = "MONTH") -> dict[str, Any]:
    """Upgrade, pay on the Checkout page, and wait until the webhook made the plan apply."""
    session = await api.upgrade(plan, interval)
    assert session["__typename"] == "CheckoutSession", session
    landed = await click(session["url"], "pay")
    assert landed.startswith(f"{APP_URL}/settings/billing?checkout=success"), landed
    return await api.wait_for(lambda e: e["plan"] == plan and e["status"] in ("ACTIVE", "TRIALING"))


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


def sent(stack: Any, path: str, org: str | None = None) -> list[dict[str, Any]]:
    """POSTs the emulator received on a path (for one org when given)."""
    found = stack.control.requests(path=path, method="POST")
    if org is None:
        return found
    return [r for r in found if org in str(r["params"])]
