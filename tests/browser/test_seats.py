"""Seats on a per-seat plan in the example client: picked on /pricing, paid for on Checkout,
changed from the billing page on Stripe's confirmation page, shown once the webhook lands."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, expect

from emulator.client import AsyncEmulatorControl
from harness.api import new_org
from tests.support.dev import DevStack, dev_api
from tests.support.example import (
    BILLING,
    Shots,
    api_writes,
    mark,
    open_page,
    pay_on_checkout,
    sign_in_with_token,
    still_same_document,
    webhooks_held,
)

pytestmark = pytest.mark.xdist_group("example")  # one build of examples/react at a time

TIMES = "\u00d7"  # the multiplication sign, on the pricing page and on Checkout's line


async def test_buying_seats_and_changing_them_on_stripes_confirmation_page(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    app, org = example.app_url, new_org()
    page = await open_page(browser)
    await sign_in_with_token(page, example, org)

    # /pricing: a seat picker on Business only, from its minimum, with the total.
    await page.goto(f"{app}/pricing")
    business = page.get_by_test_id("plan-business")
    await expect(business).to_contain_text("$15 per seat / month")
    picker = page.get_by_test_id("seats-business")
    await expect(picker).to_have_value("2")
    await expect(page.get_by_test_id("seats-pro")).to_have_count(0)
    await picker.fill("1")
    await expect(page.get_by_test_id("seat-total-business")).to_have_text("Choose 2 to 200 seats.")
    await expect(page.get_by_test_id("upgrade-business")).to_be_disabled()
    await picker.fill("3")
    await expect(page.get_by_test_id("seat-total-business")).to_have_text(
        f"$15 {TIMES} 3 seats = $45 / month"
    )
    await shots.take(page, "pricing-3-seats")

    # Checkout for 3 seats, paid.
    await page.get_by_test_id("upgrade-business").click()
    await page.wait_for_url(re.compile(re.escape(example.emulator) + r"/c/pay/"))
    await expect(page.locator("tr#line-item-0 td").first).to_have_text(f"3 {TIMES} Business")
    await expect(page.locator("td#quantity-0")).to_have_text("3")
    await expect(page.locator("b#total")).to_have_text("45.00 USD")
    await shots.take(page, "checkout-3-seats")
    await pay_on_checkout(page, example)
    await page.wait_for_url(re.compile(re.escape(app + BILLING)))
    sync = page.get_by_test_id("sync-state")
    await expect(sync).to_have_text("Payment confirmed: you are on Business with 3 seats.")
    await expect(page.get_by_test_id("current-plan")).to_have_text("Business")
    await expect(page.get_by_test_id("current-seats")).to_have_text("3 seats")

    # Change seats -> Stripe's confirmation page: 3 now, 5 after, a proration to pay today.
    count = page.get_by_test_id("seat-count")
    await expect(count).to_have_value("3")
    await expect(page.get_by_test_id("change-seats")).to_be_disabled()  # nothing to change yet
    await count.fill("5")
    await expect(page.get_by_test_id("change-seats-hint")).to_contain_text(
        "Stripe's confirmation page"
    )
    await shots.take(page, "change-to-5-seats")
    await page.get_by_test_id("change-seats").click()
    await page.wait_for_url(re.compile(re.escape(example.emulator) + "/p/session/"))
    await expect(page.locator("span#current-seats")).to_have_text("3")
    await expect(page.locator("span#new-seats")).to_have_text("5")
    assert await page.locator("table#proration tr.proration-line").count() >= 1
    due = int(await page.locator("b#amount-due").get_attribute("data-amount") or "0")
    assert 0 < due <= 2 * 1500  # two more seats, for at most the whole month
    await shots.take(page, "confirm-5-seats")

    # Confirm; Stripe's webhook is late: the page waits, then shows 5 seats without a reload.
    async with (
        AsyncEmulatorControl(example.emulator) as control,
        httpx.AsyncClient(base_url=example.url, timeout=30) as http,
    ):
        async with webhooks_held(control):
            await page.locator("form#confirm button").click()
            await page.wait_for_url(re.compile(re.escape(app + BILLING)))
            await expect(sync).to_have_text("Applying your seat change...")
            await expect(page.get_by_test_id("current-seats")).to_have_text("3 seats")
            await expect(page).to_have_url(f"{app}{BILLING}")  # a reload starts no new wait
            await mark(page)
            writes = api_writes(page, example.url)
        await expect(page.get_by_test_id("current-seats")).to_have_text("5 seats")
        await expect(sync).to_have_text("Seat change applied: you have 5 seats.")
        await expect(page.get_by_test_id("seat-count")).to_have_value("5")
        assert await still_same_document(page)
        assert writes == []
        await shots.take(page, "5-seats")
        entitlement = await dev_api(http, org).entitlement()
    assert (entitlement["plan"], entitlement["seats"]) == ("business", 5)
    assert entitlement["limits"]["seats"] == 5
