"""The example React client in a real browser: its `make run` stack, pages and screenshots."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Request, expect

from billing.kit.settings import DEV_JWT_SECRET
from emulator.client import AsyncEmulatorControl
from harness.api import new_org, token
from tests.support.dev import DevStack, dev_api
from tests.support.journeys import subscribe

BILLING = "/settings/billing"
CARD = "4242 4242 4242 4242"


class Shots:
    """Numbered full-page screenshots of each step, in one folder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.count = 0

    async def take(self, page: Page, step: str) -> None:
        """Save the page as it is now, as NN-step.png."""
        self.count += 1
        await page.screenshot(path=self.folder / f"{self.count:02d}-{step}.png", full_page=True)


async def open_page(browser: Browser) -> Page:
    """A fresh tab (own sessionStorage), in English and UTC, so dates read the same everywhere."""
    context = await browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 1100, "height": 760}
    )
    context.set_default_timeout(15_000)
    return await context.new_page()


async def sign_in_with_token(
    page: Page, dev: DevStack, org: str, role: str = "owner", ttl: int = 600
) -> None:
    """Sign in by pasting a token, as a deployment without `make run`'s button does."""
    await page.goto(f"{dev.app_url}{BILLING}")
    bearer = token(org, role, secret=DEV_JWT_SECRET, ttl=ttl)
    await page.get_by_test_id("token-input").fill(bearer)
    await page.get_by_test_id("token-sign-in").click()
    await expect(page.get_by_test_id("current-plan")).to_be_visible()


async def pay_on_checkout(page: Page, dev: DevStack) -> None:
    """On the emulator's Checkout page: enter the test card and press Subscribe."""
    await page.wait_for_url(re.compile(re.escape(dev.emulator) + r"/c/pay/"))
    await page.locator("form#pay input[name=card]").fill(CARD)
    await page.locator("form#pay button").click()


def long_date(iso: str) -> str:
    """An ISO timestamp as en-US's long date in UTC ("January 3, 2027")."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return f"{moment:%B} {moment.day}, {moment.year}"


async def subscribed_org(dev: DevStack, plan: str = "pro") -> tuple[str, dict[str, Any]]:
    """A new org that paid for `plan` through the API and Checkout: its id and entitlement."""
    org = new_org()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        entitlement = await subscribe(dev_api(http, org), plan, app_url=dev.app_url)
    return org, entitlement


@asynccontextmanager
async def webhooks_held(control: AsyncEmulatorControl) -> AsyncIterator[None]:
    """Stripe's webhooks are late: nothing is delivered inside; on leaving, every event
    made meanwhile is delivered (and delivery is automatic again)."""
    before = {event["id"] for event in await control.events()}
    await control.configure(auto_deliver=False)
    try:
        yield
    finally:
        await control.configure(auto_deliver=True)
    late = [event["id"] for event in await control.events() if event["id"] not in before]
    await control.deliver_events(late)


async def mark(page: Page) -> None:
    """Tag this document; a reload or navigation loses the tag."""
    await page.evaluate("window.__sameDocument = true")


async def still_same_document(page: Page) -> bool:
    """Whether the page shown is still the tagged document (no reload happened)."""
    return bool(await page.evaluate("window.__sameDocument === true"))


def api_writes(page: Page, api_url: str) -> list[str]:
    """Every mutation the page sends to the API from now on, and any request to Stripe."""
    seen: list[str] = []

    def watch(request: Request) -> None:
        """Record writes to the API and any call to Stripe's side."""
        body = request.post_data or ""
        if request.url.startswith(api_url) and "mutation" in body:
            seen.append(body)
        if "/v1/" in request.url:
            seen.append(request.url)

    page.on("request", watch)
    return seen
