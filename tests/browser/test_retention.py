"""Cancelling meets Stripe's retention offer, in Chromium: the Portal's cancel flow asks why,
offers "20% off for 3 months" (the plans file's `retention_coupon`), and comes back by itself
to the page that opened it, which reads the entitlement to tell which way it went. A mobile
app's flow comes back the same way, on the app's own link domain (APP_URLS)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, expect

from devstack import EMULATOR_KEY
from harness.api import new_org
from harness.stripe_side import stripe_sdk
from harness.timing import eventually
from tests.browser.links import LinkDomain
from tests.support.dev import DevStack, dev_api
from tests.support.example import (
    BILLING,
    CARD,
    Shots,
    long_date,
    open_page,
    pay_on_checkout,
    sign_in_with_token,
    subscribed_org,
)

pytestmark = pytest.mark.xdist_group("example")  # one build of examples/react at a time

OFFER = "20% off for 3 months"


def navigations(page: Page, origin: str) -> list[str]:
    """Every URL the tab loads a document from on `origin` from now on (a redirect's target
    with its query, before the page cleans it)."""
    seen: list[str] = []

    def watch(request: Request) -> None:
        if request.is_navigation_request() and request.url.startswith(origin):
            seen.append(request.url)

    page.on("request", watch)
    return seen


async def cancel_with_reason(page: Page, dev: DevStack, feedback: str, comment: str) -> None:
    """On the Portal's cancel flow: answer the survey and press "Cancel plan"; the same page
    then makes the retention offer (nothing is cancelled yet)."""
    await page.wait_for_url(re.compile(re.escape(dev.emulator) + "/p/session/"))
    survey = page.locator("form#confirm")
    await survey.locator("select[name=feedback]").select_option(feedback)
    await survey.locator("input[name=comment]").fill(comment)
    await survey.get_by_role("button", name="Cancel plan").click()
    offer = page.locator("#retention-offer")
    await expect(offer).to_be_visible()
    await expect(offer.locator("#offer-terms")).to_have_text(OFFER)


async def subscription_of(dev: DevStack, org: str) -> Any:
    """The org's Stripe subscription, as Stripe (the emulator) has it."""
    stripe = stripe_sdk(dev.emulator, EMULATOR_KEY)
    customers = await stripe.v1.customers.list_async(params={"limit": 100})  # newest first
    [customer] = [
        c.id for c in customers.data if c.metadata and c.metadata.to_dict().get("org_id") == org
    ]
    subs = await stripe.v1.subscriptions.list_async(params={"customer": customer})
    [sub] = subs.data
    return sub


async def test_accepting_the_offer_keeps_the_plan_with_the_discount(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, before = await subscribed_org(example)
    page = await open_page(browser)
    await sign_in_with_token(page, example, org)
    await expect(page.get_by_test_id("discount")).to_have_count(0)
    loads = navigations(page, example.app_url)

    await page.get_by_test_id("cancel-subscription").click()
    await cancel_with_reason(page, example, "missing_features", "")
    await shots.take(page, "offer")
    await page.locator("form#accept-offer").get_by_role("button", name="Accept offer").click()

    # Straight back to the billing page (no "Return" click), marked, then cleaned.
    await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
    applied = page.get_by_test_id("retention-applied")
    await expect(applied).to_contain_text(f"We applied {OFFER}.")
    await expect(page).to_have_url(f"{example.app_url}{BILLING}")
    assert f"{example.app_url}{BILLING}?billing_flow=SUBSCRIPTION_CANCEL" in loads, loads
    async with httpx.AsyncClient(base_url=example.url, timeout=30) as http:
        state = await dev_api(http, org).billing_state()
    discount = state["discount"]
    assert discount is not None and discount["coupon"] == "stay20", state
    assert discount["percentOff"] == 20 and discount["duration"] == "REPEATING", discount
    assert state["cancelAtPeriodEnd"] is False and state["plan"] == "pro", state
    await expect(page.get_by_test_id("discount")).to_have_text(
        f"{OFFER}, until {long_date(discount['end'])}"
    )
    await expect(page.get_by_test_id("cancel-banner")).to_have_count(0)
    await expect(page.get_by_test_id("current-plan")).to_have_text("Pro")
    await expect(page.get_by_test_id("cancel-subscription")).to_be_visible()
    await expect(page.get_by_test_id("sync-state")).to_have_count(0)
    await shots.take(page, "offer-applied")
    sub = await subscription_of(example, org)
    assert sub.cancel_at_period_end is False
    assert state["currentPeriodEnd"] == before["currentPeriodEnd"]


async def test_declining_the_offer_cancels_at_the_period_end_with_the_reason(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, _ = await subscribed_org(example)
    page = await open_page(browser)
    await sign_in_with_token(page, example, org)
    loads = navigations(page, example.app_url)

    await page.get_by_test_id("cancel-subscription").click()
    await cancel_with_reason(page, example, "too_expensive", "Over our budget this year")
    decline = page.locator("form#decline-offer").get_by_role("button", name="No thanks, cancel")
    await decline.click()

    await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
    async with httpx.AsyncClient(base_url=example.url, timeout=30) as http:
        state = await dev_api(http, org).wait_for(lambda e: e["cancelAtPeriodEnd"])
    banner = page.get_by_test_id("cancel-banner")
    await expect(banner).to_contain_text(
        f"Your plan ends on {long_date(state['currentPeriodEnd'])}. Until then you keep "
        "everything in Pro."
    )
    await expect(page.get_by_test_id("sync-state")).to_have_text("Cancellation confirmed.")
    await expect(page.get_by_test_id("retention-applied")).to_have_count(0)
    await expect(page.get_by_test_id("discount")).to_have_count(0)
    await expect(page.get_by_test_id("keep-plan")).to_be_visible()
    await expect(page.get_by_test_id("cancel-subscription")).to_have_count(0)
    await expect(page).to_have_url(f"{example.app_url}{BILLING}")
    assert f"{example.app_url}{BILLING}?billing_flow=SUBSCRIPTION_CANCEL" in loads, loads
    assert state["plan"] == "pro"
    await shots.take(page, "declined")
    sub = await subscription_of(example, org)
    assert sub.cancel_at_period_end is True
    details = sub.cancellation_details
    assert details.feedback == "too_expensive", details
    assert details.comment == "Over our budget this year", details


@pytest.mark.parametrize("flow", ["SUBSCRIPTION_CANCEL", "PAYMENT_METHOD_UPDATE"])
async def test_a_mobile_apps_flow_lands_on_its_universal_link(
    example: DevStack, links: LinkDomain, browser: Browser, shots: Shots, flow: str
) -> None:
    """What ASWebAuthenticationSession / a Custom Tab sees: the flow ends by itself on the
    app's link domain, which the phone hands to the app."""
    org, _ = await subscribed_org(example)
    async with httpx.AsyncClient(base_url=example.url, timeout=30) as http:
        api = dev_api(http, org)
        unknown = await api.open_portal(flow=flow, app="watch")
        assert unknown["__typename"] == "BillingError" and unknown["code"] == "UNKNOWN_APP"
        session = await api.open_portal(flow=flow, app="ios")
        assert session["__typename"] == "PortalSession", session
        page = await open_page(browser)  # the in-app browser: no app session, only the URL
        await page.goto(session["url"])
        if flow == "SUBSCRIPTION_CANCEL":
            await cancel_with_reason(page, example, "unused", "")
            await page.locator("form#accept-offer").get_by_role("button").click()
        else:
            form = page.locator("form#update-payment-method")
            await form.locator("input[name=card]").fill(CARD)
            await form.locator("button").click()

        landing = f"/ios/settings/billing?billing_flow={flow}"
        await page.wait_for_url(f"{links.url}{landing}")  # no click: Stripe's redirect
        await expect(page.locator("#link")).to_have_text(landing)
        await links.received(landing)
        await shots.take(page, "universal-link")
        if flow == "SUBSCRIPTION_CANCEL":  # what the app then reads: the offer, not a cancel
            state = await eventually(
                api.billing_state, lambda e: e["discount"] is not None, what="the discount"
            )
            assert state["discount"]["coupon"] == "stay20", state
            assert state["cancelAtPeriodEnd"] is False and state["plan"] == "pro", state


async def test_a_mobile_apps_checkout_comes_back_on_its_universal_link(
    example: DevStack, links: LinkDomain, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=example.url, timeout=30) as http:
        api = dev_api(http, new_org())
        session = await api.upgrade("pro", app="android")
        assert session["__typename"] == "CheckoutSession", session
        page = await open_page(browser)
        await page.goto(session["url"])
        await pay_on_checkout(page, example)
        landing = re.escape("/android/settings/billing?checkout=success&session_id=cs_")
        await page.wait_for_url(re.compile(re.escape(links.url) + landing))
        assert any(re.match(landing, path) for path in links.requests), links.requests
        await api.wait_for(lambda e: e["plan"] == "pro" and e["status"] == "ACTIVE")
