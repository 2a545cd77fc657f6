"""What the customer must do to keep paying, in the example client: a renewal whose card is
declined puts a banner at the top of the page, live, naming Stripe's next retry, with the button
to the Portal's payment-method page; a good card saved there takes it away, live again."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, expect

from devstack import EMULATOR_KEY
from emulator.client import AsyncEmulatorControl
from harness.stripe_side import stripe_sdk
from tests.support.dev import DevStack
from tests.support.example import (
    BILLING,
    CARD,
    Shots,
    long_date,
    mark,
    open_page,
    sign_in_with_token,
    still_same_document,
    subscribed_org,
    webhooks_held,
)

pytestmark = pytest.mark.xdist_group("example")  # one build of examples/react at a time


async def test_a_failed_renewal_is_fixed_in_the_portal(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, entitlement = await subscribed_org(example)
    stripe = stripe_sdk(example.emulator, EMULATOR_KEY)
    customers = await stripe.v1.customers.list_async(params={"limit": 100})  # newest first
    [customer] = [
        c.id for c in customers.data if c.metadata and c.metadata.to_dict().get("org_id") == org
    ]
    page = await open_page(browser)
    await sign_in_with_token(page, example, org)
    banner = page.get_by_test_id("required-action")
    await expect(page.get_by_test_id("plan-status")).to_have_text("Active")
    await expect(banner).to_have_count(0)
    await mark(page)

    async with AsyncEmulatorControl(example.emulator) as control:
        # The card is declined at renewal: the banner names Stripe's next retry, unreloaded.
        await control.set_card(customer, fails=True)
        ends = int(datetime.fromisoformat(entitlement["currentPeriodEnd"]).timestamp())
        await control.advance(ends - await control.now() + 60)
        await expect(banner).to_have_attribute("data-code", "PAYMENT_FAILED", timeout=30_000)
        [invoice] = (await stripe.v1.invoices.list_async(params={"customer": customer})).data[:1]
        assert invoice.status == "open" and invoice.next_payment_attempt, invoice
        retry = datetime.fromtimestamp(invoice.next_payment_attempt, UTC).isoformat()
        await expect(banner).to_have_attribute("role", "alert")
        await expect(banner).to_contain_text(
            f"Your last payment failed. We'll retry on {long_date(retry)}"
        )
        await expect(page.get_by_test_id("plan-status")).to_contain_text("Past due")
        assert await still_same_document(page)
        await shots.take(page, "payment-failed")

        # Update payment method -> the Portal's card form -> a good card; the webhook is late.
        await example.settle_customer(customer)  # none of its events re-reads Stripe meanwhile
        async with webhooks_held(control):
            await banner.get_by_role("button", name="Update payment method").click()
            await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
            form = page.locator("form#update-payment-method")
            await form.locator("input[name=card]").fill(CARD)
            await form.locator("button").click()  # the flow comes back by itself
            await page.wait_for_url(re.compile(re.escape(example.app_url + BILLING)))
            await expect(page).to_have_url(f"{example.app_url}{BILLING}")  # the marker cleaned
            await expect(banner).to_have_attribute("data-code", "PAYMENT_FAILED")
            await mark(page)
        await expect(banner).to_have_count(0, timeout=30_000)
        await expect(page.get_by_test_id("plan-status")).to_have_text("Active")
        assert await still_same_document(page)
        await shots.take(page, "payment-fixed")
