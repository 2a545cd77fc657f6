"""The example client's billing page in Chromium, against `make run`'s API and Stripe emulator.

A redirect back from Stripe is never proof of a change: the page waits for the webhook's
result over `entitlementChanged` and never writes on return.
"""

from __future__ import annotations

import re
import time
from datetime import datetime

import httpx
import pytest
from playwright.async_api import Browser, WebSocketRoute, expect

from emulator.client import AsyncEmulatorControl
from harness.api import new_org
from tests.support.dev import DevStack, dev_api
from tests.support.example import (
    BILLING,
    Shots,
    api_writes,
    long_date,
    mark,
    open_page,
    pay_on_checkout,
    sign_in_with_token,
    still_same_document,
    subscribed_org,
    webhooks_held,
)
from tests.support.journeys import subscribe

pytestmark = pytest.mark.xdist_group("example")  # one build of examples/react at a time


async def test_the_whole_journey_in_a_browser(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    app = example.app_url
    page = await open_page(browser)
    async with (
        AsyncEmulatorControl(example.emulator) as control,
        httpx.AsyncClient(base_url=example.url, timeout=30) as http,
    ):
        demo = dev_api(http, "org_demo")

        # Signed in with one click, as `make run`'s demo org owner: Free, no subscription.
        await page.goto(f"{app}{BILLING}")
        await shots.take(page, "sign-in")
        await page.get_by_test_id("dev-sign-in").click()
        await expect(page.get_by_test_id("current-plan")).to_have_text("Free")
        await expect(page.get_by_test_id("plan-status")).to_have_text("No subscription")
        await expect(page.get_by_test_id("manage-subscription")).to_have_count(0)
        await expect(page.get_by_test_id("period-end")).to_have_count(0)
        await shots.take(page, "free")

        # View Plans -> the catalog, monthly and yearly.
        await page.get_by_test_id("view-plans").click()
        await expect(page).to_have_url(f"{app}/pricing")
        await page.get_by_test_id("interval-year").click()
        await expect(page.get_by_test_id("plan-pro")).to_contain_text("$200 / year")
        await expect(page.get_by_test_id("plan-team")).to_contain_text("$990 / year")
        await shots.take(page, "pricing-yearly")
        await page.get_by_test_id("interval-month").click()
        await expect(page.get_by_test_id("plan-pro")).to_contain_text("$20 / month")
        await shots.take(page, "pricing-monthly")

        # Upgrade to Pro -> Checkout -> Subscribe; Stripe's webhook is late.
        async with webhooks_held(control):
            await page.get_by_test_id("upgrade-pro").click()
            await pay_on_checkout(page, example)
            await shots.take(page, "checkout")
            await page.wait_for_url(re.compile(re.escape(app + BILLING)))
            sync = page.get_by_test_id("sync-state")
            await expect(sync).to_have_text("Confirming your payment...")
            await expect(page.get_by_test_id("current-plan")).to_have_text("Free")
            await expect(page).to_have_url(f"{app}{BILLING}")  # a reload starts no new wait
            await mark(page)
            writes = api_writes(page, example.url)
            await shots.take(page, "confirming")
        # The webhook lands: Pro, pushed to the page, which did not reload and wrote nothing.
        await expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
        await expect(page.get_by_test_id("plan-status")).to_have_text("Active")
        await expect(sync).to_have_text("Payment confirmed: you are on Pro.")
        assert await still_same_document(page)
        assert writes == []
        period_end = (await demo.entitlement())["currentPeriodEnd"]
        await expect(page.get_by_test_id("period-end")).to_have_text(long_date(period_end))
        await expect(page.get_by_test_id("view-plans")).to_have_count(0)
        await shots.take(page, "pro")

        # Change plan -> the Portal's plan list -> Team; again the webhook is late.
        async with webhooks_held(control):
            await page.get_by_test_id("change-plan").click()
            await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
            await shots.take(page, "portal-change-plan")
            team = page.locator(".box", has_text=re.compile(r"Team — 99\.00 USD / month"))
            await team.get_by_role("button").click()
            await page.wait_for_url(re.compile(re.escape(app + BILLING)))
            await expect(sync).to_have_text("Applying your plan change...")
            await expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
            await mark(page)
            writes = api_writes(page, example.url)
            await shots.take(page, "applying-change")
        await expect(page.get_by_test_id("current-plan")).to_have_text("Team")
        await expect(sync).to_have_text("Plan change applied: you are on Team.")
        assert await still_same_document(page)
        assert writes == []
        await shots.take(page, "team")

        # Cancel subscription -> confirm in the Portal -> decline the retention offer -> back
        # by itself; the banner names the period's end.
        await page.get_by_test_id("cancel-subscription").click()
        await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
        await shots.take(page, "portal-cancel")
        await page.locator("form#confirm button").click()
        await expect(page.locator("#offer-terms")).to_have_text("20% off for 3 months")
        await shots.take(page, "portal-offer")
        await page.locator("form#decline-offer button").click()
        await page.wait_for_url(re.compile(re.escape(app + BILLING)))
        banner = page.get_by_test_id("cancel-banner")
        period_end = (await demo.wait_for(lambda e: e["cancelAtPeriodEnd"]))["currentPeriodEnd"]
        await expect(banner).to_contain_text(f"Your plan ends on {long_date(period_end)}.")
        await expect(page.get_by_test_id("current-plan")).to_have_text("Team")
        await expect(page.get_by_test_id("cancel-subscription")).to_have_count(0)
        await expect(page.get_by_test_id("keep-plan")).to_be_visible()
        await shots.take(page, "cancel-scheduled")

        # The clock passes the period's end: Free, Canceled, pushed without a reload.
        await mark(page)
        ends = int(datetime.fromisoformat(period_end).timestamp())
        await control.advance(ends - await control.now() + 60)
        await expect(page.get_by_test_id("current-plan")).to_have_text("Free", timeout=30_000)
        await expect(page.get_by_test_id("plan-status")).to_have_text("Canceled")
        await expect(banner).to_have_count(0)
        await expect(page.get_by_test_id("view-plans")).to_be_visible()
        assert await still_same_document(page)
        await shots.take(page, "canceled")

        # Manage Subscription still opens the Portal, with the invoice history.
        await page.get_by_test_id("manage-subscription").click()
        await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
        await expect(page.locator("table#invoices")).to_contain_text("20.00")  # Pro's invoice
        await shots.take(page, "portal-invoices")
        await page.locator("a#return").click()
        await expect(page.get_by_test_id("current-plan")).to_have_text("Free")
        await expect(page.get_by_test_id("sync-state")).to_have_count(0)


async def test_opening_the_portal_shows_progress_and_a_double_click_mints_one_session(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, _ = await subscribed_org(example)
    async with AsyncEmulatorControl(example.emulator) as control:
        page = await open_page(browser)
        await sign_in_with_token(page, example, org)
        await expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
        before = len(await control.requests("/v1/billing_portal/sessions", "POST"))
        await control.fail("/v1/billing_portal/sessions", mode="delay", hang_seconds=1.5)
        manage = page.get_by_test_id("manage-subscription")
        await manage.dblclick()
        await expect(manage).to_have_text("Opening portal...")
        await expect(manage).to_be_disabled()
        await expect(page.get_by_test_id("cancel-subscription")).to_be_disabled()
        await shots.take(page, "opening-portal")
        await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
        after = await control.requests("/v1/billing_portal/sessions", "POST")
        assert len(after) - before == 1


async def test_without_the_socket_the_page_polls_and_subscribes_again_later(
    example: DevStack, browser: Browser
) -> None:
    org = new_org()
    page = await open_page(browser)
    refused: list[str] = []
    passed: list[str] = []

    async def socket(ws: WebSocketRoute) -> None:
        """The WebSocket fails (a proxy that drops it) until `refused` is closed."""
        if refused and refused[-1] == "open":
            passed.append(ws.url)
            ws.connect_to_server()
            return
        refused.append(ws.url)
        await ws.close(code=1011)

    await page.route_web_socket(re.compile(r"/graphql$"), socket)
    await sign_in_with_token(page, example, org)
    await expect(page.get_by_test_id("current-plan")).to_have_text("Free")
    async with httpx.AsyncClient(base_url=example.url, timeout=30) as http:
        await subscribe(dev_api(http, org), "pro", app_url=example.app_url)
    await expect(page.get_by_test_id("current-plan")).to_have_text("Pro", timeout=40_000)
    assert refused, "the page never tried the WebSocket"

    refused.append("open")  # the socket works again: the page subscribes again by itself
    deadline = time.monotonic() + 30
    while not passed and time.monotonic() < deadline:
        await page.wait_for_timeout(200)
    assert passed, "the page did not open the WebSocket again"


async def test_a_confirmation_that_never_comes_is_said_plainly(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    page = await open_page(browser)
    await page.clock.install()
    await sign_in_with_token(page, example, new_org())
    writes = api_writes(page, example.url)
    await page.goto(f"{example.app_url}{BILLING}?checkout=success&session_id=cs_test_x")
    sync = page.get_by_test_id("sync-state")
    await expect(sync).to_have_text("Confirming your payment...")
    await page.clock.fast_forward(29_000)
    await expect(sync).to_have_text("Confirming your payment...")
    await page.clock.fast_forward(2_000)
    await expect(sync).to_contain_text("Stripe has not confirmed your payment after 30 seconds.")
    await expect(sync).to_contain_text("you do not need to pay again")
    await expect(page.get_by_test_id("current-plan")).to_have_text("Free")
    await shots.take(page, "not-confirmed")
    assert writes == []


async def test_leaving_checkout_says_nothing_was_charged(
    example: DevStack, browser: Browser
) -> None:
    page = await open_page(browser)
    await sign_in_with_token(page, example, new_org())
    await page.goto(f"{example.app_url}/pricing")
    await page.get_by_test_id("upgrade-team").click()
    await page.wait_for_url(re.compile(re.escape(example.emulator) + "/c/pay/"))
    await page.locator("form#cancel button").click()
    await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
    await expect(page.get_by_test_id("sync-state")).to_have_text(
        "Checkout was canceled. Nothing was charged."
    )
    await expect(page.get_by_test_id("current-plan")).to_have_text("Free")


async def test_a_member_is_told_why_and_nothing_is_created(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    page = await open_page(browser)
    await sign_in_with_token(page, example, new_org(), role="member")
    async with AsyncEmulatorControl(example.emulator) as control:
        before = len(await control.requests("/v1/checkout/sessions", "POST"))
        await page.goto(f"{example.app_url}/pricing")
        await page.get_by_test_id("upgrade-pro").click()
        await expect(page.get_by_test_id("billing-error")).to_have_text(
            "Only an owner or admin of your organization can manage billing."
        )
        await expect(page.get_by_test_id("upgrade-pro")).to_be_enabled()
        await expect(page).to_have_url(f"{example.app_url}/pricing")
        assert len(await control.requests("/v1/checkout/sessions", "POST")) == before
    await shots.take(page, "forbidden")


async def test_an_expired_session_asks_to_sign_in_again(
    example: DevStack, browser: Browser
) -> None:
    page = await open_page(browser)
    await sign_in_with_token(page, example, new_org(), ttl=3)
    started = time.monotonic()
    await expect(page.get_by_test_id("signed-out-notice")).to_have_text(
        "Your session has expired. Sign in again.", timeout=10_000
    )
    assert time.monotonic() - started < 8
    await expect(page.get_by_test_id("current-plan")).to_have_count(0)


async def test_keep_my_plan_undoes_a_scheduled_cancellation_in_the_portal(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, _ = await subscribed_org(example)
    page = await open_page(browser)
    await sign_in_with_token(page, example, org)
    await page.get_by_test_id("cancel-subscription").click()
    await page.locator("form#confirm button").click()
    await page.locator("form#decline-offer button").click()  # the retention offer: no thanks
    await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
    banner = page.get_by_test_id("cancel-banner")
    await expect(banner).to_be_visible()
    await page.get_by_test_id("keep-plan").click()
    await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
    await shots.take(page, "portal-renew")
    await page.locator("form#renew button").click()  # the Portal stays open after it
    await expect(page.locator("form#renew")).to_have_count(0)
    await page.locator("a#return").click()
    await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
    await expect(banner).to_have_count(0)
    await expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    await expect(page.get_by_test_id("cancel-subscription")).to_be_visible()


async def test_a_yearly_switch_from_pricing_waits_for_the_new_period(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, monthly = await subscribed_org(example)
    async with (
        AsyncEmulatorControl(example.emulator) as control,
        httpx.AsyncClient(base_url=example.url, timeout=30) as http,
    ):
        page = await open_page(browser)
        await sign_in_with_token(page, example, org)
        await page.goto(f"{example.app_url}/pricing")
        await page.get_by_test_id("interval-year").click()
        await expect(page.get_by_test_id("upgrade-pro")).to_have_text("Your plan")
        await expect(page.get_by_test_id("upgrade-team")).to_have_text("Switch to Team")
        async with webhooks_held(control):
            await page.get_by_test_id("upgrade-pro").click()
            await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
            await expect(page.locator("ul#new-plan")).to_contain_text("200.00 USD / year")
            await shots.take(page, "confirm-yearly")
            await page.locator("form#confirm button").click()
            await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
            # Same plan: only the entitlement's update tells the switch has landed.
            await expect(page.get_by_test_id("sync-state")).to_have_text(
                "Applying your plan change..."
            )
        await expect(page.get_by_test_id("sync-state")).to_have_text(
            "Plan change applied: you are on Pro."
        )
        yearly = await dev_api(http, org).entitlement()
    assert yearly["plan"] == "pro" and yearly["updatedAt"] != monthly["updatedAt"]
    ends = datetime.fromisoformat(yearly["currentPeriodEnd"])
    assert ends > datetime.fromisoformat(monthly["currentPeriodEnd"])
    await expect(page.get_by_test_id("period-end")).to_have_text(
        long_date(yearly["currentPeriodEnd"])
    )
