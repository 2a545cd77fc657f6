"""Features in the example client: the billing page lists the org's (`entitlement.features`)
and greys out the rest with the plan to upgrade to; /pricing lists each plan's; a plan paid for
on Checkout, or a feature granted on Stripe's side, shows without a reload."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from devstack import EMULATOR_KEY
from harness.api import new_org
from harness.stripe_side import stripe_sdk
from tests.support.dev import DevStack
from tests.support.example import (
    BILLING,
    Shots,
    mark,
    open_page,
    pay_on_checkout,
    sign_in_with_token,
    still_same_document,
    subscribed_org,
)

pytestmark = pytest.mark.xdist_group("example")  # one build of examples/react at a time

FEATURES = ["exports", "priority_support", "sso", "audit_log"]  # plans.toml's, smallest first
LABELS = ["CSV exports", "Priority support", "Single sign-on", "Audit log"]


async def expect_features(page: Page, enabled: list[str], upgrades: dict[str, str]) -> None:
    """The billing page shows `enabled` on and every key of `upgrades` greyed out, each with
    an Upgrade link of that text to /pricing."""
    for key in enabled:
        feature = page.get_by_test_id(f"feature-{key}")
        await expect(feature).to_have_attribute("data-enabled", "true")
        await expect(feature).not_to_have_attribute("aria-disabled", "true")
        await expect(page.get_by_test_id(f"feature-upgrade-{key}")).to_have_count(0)
    for key, text in upgrades.items():
        feature = page.get_by_test_id(f"feature-{key}")
        await expect(feature).to_have_attribute("data-enabled", "false")
        await expect(feature).to_have_attribute("aria-disabled", "true")
        link = page.get_by_test_id(f"feature-upgrade-{key}")
        await expect(link).to_have_text(text)
        await expect(link).to_have_attribute("href", "/pricing")


async def test_a_fresh_org_sees_its_features_and_team_brings_sso(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    app = example.app_url
    page = await open_page(browser)
    await sign_in_with_token(page, example, new_org())

    # Free: exports only; every other feature greyed out, each with the plan that brings it.
    features = page.get_by_test_id("features").locator("li")
    await expect(features).to_have_count(len(FEATURES))
    await expect(features).to_contain_text(LABELS)
    await expect_features(
        page,
        enabled=["exports"],
        upgrades={
            "priority_support": "Upgrade to Pro",
            "sso": "Upgrade to Team",
            "audit_log": "Upgrade to Business",
        },
    )
    await shots.take(page, "free-features")

    # Upgrade to Team -> /pricing, which says where sso is and lists each plan's features.
    await page.get_by_test_id("feature-upgrade-sso").click()
    await expect(page).to_have_url(f"{app}/pricing")
    await expect(page.get_by_test_id("pricing-notice")).to_have_text(
        "Single sign-on comes with Team."
    )
    for slug, count in (("free", 1), ("pro", 2), ("team", 3), ("business", 4)):
        await expect(page.get_by_test_id(f"plan-features-{slug}").locator("li")).to_have_text(
            LABELS[:count]
        )
    await shots.take(page, "pricing-features")

    # Team, paid on Checkout: sso and priority support on, audit log still greyed out.
    await page.get_by_test_id("upgrade-team").click()
    await pay_on_checkout(page, example)
    await page.wait_for_url(re.compile(re.escape(app + BILLING)))
    await expect(page.get_by_test_id("sync-state")).to_have_text(
        "Payment confirmed: you are on Team."
    )
    await expect_features(
        page,
        enabled=["exports", "priority_support", "sso"],
        upgrades={"audit_log": "Upgrade to Business"},
    )
    await shots.take(page, "team-features")


async def test_a_feature_granted_in_stripe_shows_without_a_reload(
    example: DevStack, browser: Browser, shots: Shots
) -> None:
    org, _ = await subscribed_org(example, "team")
    page = await open_page(browser)
    await sign_in_with_token(page, example, org)
    await expect_features(
        page,
        enabled=["exports", "priority_support", "sso"],
        upgrades={"audit_log": "Upgrade to Business"},
    )
    await mark(page)

    # In Stripe's Dashboard: a feature of its own, attached to Team's product.
    key = f"beta_reports_{uuid.uuid4().hex[:8]}"
    stripe = stripe_sdk(example.emulator, EMULATOR_KEY)
    [price] = (await stripe.v1.prices.list_async(params={"lookup_keys": ["team_monthly"]})).data
    product = price.product if isinstance(price.product, str) else price.product.id
    feature = await stripe.v1.entitlements.features.create_async(
        params={"name": "Beta reports", "lookup_key": key}
    )
    attached = await stripe.v1.products.features.create_async(
        product, params={"entitlement_feature": feature.id}
    )
    try:
        granted = page.get_by_test_id(f"feature-{key}")
        await expect(granted).to_have_attribute("data-enabled", "true", timeout=30_000)
        await expect(granted).to_contain_text(f"Beta reports {key.rsplit('_', 1)[1]}")
        await shots.take(page, "granted-in-stripe")
    finally:
        await stripe.v1.products.features.delete_async(product, attached.id)

    # Detached: the org no longer has it, and no plan grants it, so it is no longer listed.
    await expect(page.get_by_test_id(f"feature-{key}")).to_have_count(0, timeout=30_000)
    await expect(page.get_by_test_id("feature-sso")).to_have_attribute("data-enabled", "true")
    assert await still_same_document(page)
