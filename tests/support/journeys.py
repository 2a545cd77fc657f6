"""Customer journeys through the emulator's hosted pages, as a browser would click them."""

from __future__ import annotations

from typing import Any

import httpx

from emulator.hosted import submit_form_async
from harness.api import APP_URL, Api


async def click(page_url: str, form_id: str, **fields: str) -> str:
    """Submit a form on a hosted page; return where the browser is sent next."""
    async with httpx.AsyncClient(timeout=30) as browser:
        result = await submit_form_async(browser, page_url, form_id, **fields)
    return str(result)


async def cancel_in_portal(
    flow_url: str, feedback: str = "", comment: str = "", *, accept_offer: bool = False
) -> str:
    """Cancel on a SUBSCRIPTION_CANCEL flow's page (the reason survey), then answer the
    retention offer when the flow makes one: decline it (the plan cancels at period end) or
    accept it; return where the browser is sent next."""
    async with httpx.AsyncClient(timeout=30) as browser:
        landed = await submit_form_async(
            browser, flow_url, "confirm", feedback=feedback, comment=comment
        )
        if isinstance(landed, httpx.Response) and "retention-offer" in landed.text:
            answer = "accept-offer" if accept_offer else "decline-offer"
            landed = await submit_form_async(browser, str(landed.url), answer)
    return str(landed)


async def subscribe(
    api: Api,
    plan: str = "pro",
    interval: str = "MONTH",
    app_url: str = APP_URL,
    seats: int | None = None,
) -> dict[str, Any]:
    """Upgrade, pay on the Checkout page, and wait until the webhook made the plan apply."""
    session = await api.upgrade(plan, interval, seats)
    assert session["__typename"] == "CheckoutSession", session
    landed = await click(session["url"], "pay")
    assert landed.startswith(f"{app_url}/settings/billing?checkout=success"), landed
    return await api.wait_for(lambda e: e["plan"] == plan and e["status"] in ("ACTIVE", "TRIALING"))
