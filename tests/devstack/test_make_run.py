"""`make run` as a developer lives with it: stop, start again, reset, a port already taken."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import DEMO_PROMOTION_CODE, EMULATOR_KEY
from emulator.client import AsyncEmulatorControl
from harness.servers import free_port
from harness.stripe_side import customer_of, stripe_sdk
from tests.support.dev import DevStack, dev_api
from tests.support.journeys import subscribe


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevStack]:
    """A `make run` in an empty folder (its billing.db and emulator state land there)."""
    running = DevStack(tmp_path)
    yield running
    running.stop()


async def test_a_restart_keeps_customers_subscriptions_and_clock(dev: DevStack) -> None:
    assert f"promotion code {DEMO_PROMOTION_CODE} created" in dev.start()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        paying = dev_api(http, "org_paying")
        await subscribe(paying, "pro")
        await subscribe(dev_api(http, "org_seats"), "business", seats=3)
        upgraded_only = dev_api(http, "org_checkout_only")
        assert (await upgraded_only.upgrade("pro"))["__typename"] == "CheckoutSession"
        await dev.settle()
        before = await paying.entitlement()
    # `make run` seeded plans.toml's features into the emulator, and Stripe entitles the
    # paying customer to pro's.
    stripe: Any = stripe_sdk(dev.emulator, EMULATOR_KEY)
    seeded = (await stripe.v1.entitlements.features.list_async(params={"limit": 100})).data
    assert sorted(f.lookup_key for f in seeded) == [
        "audit_log",
        "exports",
        "priority_support",
        "sso",
    ]
    codes = (await stripe.v1.promotion_codes.list_async(params={"code": "WELCOME20"})).data
    assert [c.code for c in codes] == [DEMO_PROMOTION_CODE]
    customer = await asyncio.to_thread(customer_of, stripe, "org_paying")
    granted = await stripe.v1.entitlements.active_entitlements.list_async(
        params={"customer": customer}
    )
    assert sorted(e.lookup_key for e in granted.data) == before["features"]
    assert before["features"] == ["exports", "priority_support"]
    async with AsyncEmulatorControl(dev.emulator) as control:
        advanced = await control.advance(3 * 86400)
    dev.stop()
    assert (dev.folder / "billing.db").exists() and (dev.folder / "billing.emulator.json").exists()

    printed = dev.start()
    assert "warning" not in printed.lower(), printed
    assert "promotion code" not in printed, printed  # seeded once
    async with AsyncEmulatorControl(dev.emulator) as control:
        assert await control.now() >= advanced  # the clock went on from where it was
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        paying = dev_api(http, "org_paying")
        assert await paying.entitlement() == before
        assert (await paying.open_portal())["__typename"] == "PortalSession"
        assert (await paying.open_portal(flow="SUBSCRIPTION_CANCEL"))[
            "__typename"
        ] == "PortalSession"
        assert (await paying.upgrade("pro"))["code"] == "ALREADY_ON_PLAN"
        assert (await paying.upgrade("pro", "YEAR"))["__typename"] == "PortalSession"
        upgraded_only = dev_api(http, "org_checkout_only")
        assert (await upgraded_only.open_portal())["__typename"] == "PortalSession"
        seats = dev_api(http, "org_seats")
        assert (await seats.entitlement())["seats"] == 3
        assert (await seats.change_seats(4))["__typename"] == "PortalSession"


async def test_reset_wipes_both_together(dev: DevStack) -> None:
    dev.start()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        await subscribe(dev_api(http, "org_paying"), "pro")
    refused = dev.command("reset", *dev.ports())
    assert refused.returncode == 1 and f"port {dev.port}" in refused.stderr
    assert "stop `make run` first" in refused.stderr
    dev.stop()
    (dev.folder / "billing.db-claims").touch()  # the customer locks' file of earlier versions

    wiped = dev.command("reset", *dev.ports())
    assert wiped.returncode == 0, wiped.stderr
    assert not (dev.folder / "billing.db").exists()
    assert not (dev.folder / "billing.emulator.json").exists()
    assert not list(dev.folder.glob("billing.db-*")), list(dev.folder.glob("billing.db-*"))
    printed = dev.start()
    assert "warning" not in printed.lower(), printed
    assert f"promotion code {DEMO_PROMOTION_CODE} created" in printed  # a fresh emulator
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        fresh = await dev_api(http, "org_paying").entitlement()
    assert (fresh["plan"], fresh["status"], fresh["hasBillingAccount"]) == ("free", "NONE", False)


async def test_lost_emulator_state_is_named_at_start(dev: DevStack) -> None:
    dev.start()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        await dev_api(http, "org_lost").upgrade("pro")
    dev.stop()
    (dev.folder / "billing.emulator.json").unlink()

    printed = dev.start()
    [line] = [line for line in printed.splitlines() if "warning" in line]
    assert "1 org(s)" in line and "make reset" in line


def test_a_port_in_use_is_named(dev: DevStack) -> None:
    dev.start()
    second = dev.command("dev", *dev.ports())
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"error: port {dev.port} (the API) is already in use on 127.0.0.1: stop the other "
        "process (another `make run`?) or choose another port"
    ]


def test_without_node_make_run_says_how_to_get_the_example(tmp_path: Path) -> None:
    app_port = free_port()
    dev = DevStack(tmp_path, app_url=f"http://localhost:{app_port}", example=True)
    empty = tmp_path / "bin"
    empty.mkdir()
    dev.env["PATH"] = str(empty)  # no node, no npm
    try:
        printed = dev.start()
        lines = [line for line in printed.splitlines() if line.startswith("example client")]
        assert lines == [
            "example client: install Node.js 20.19+ and npm (https://nodejs.org/) and run "
            f"`make run` again to get the billing page at http://localhost:{app_port}; "
            "serving the API only (no node)"
        ]
        assert httpx.get(f"{dev.url}/healthz").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://localhost:{app_port}/")
    finally:
        dev.stop()


def test_make_run_refuses_production(dev: DevStack) -> None:
    dev.env.update(
        ENVIRONMENT="production",
        STRIPE_SECRET_KEY="sk_test_x",
        STRIPE_WEBHOOK_SECRET="whsec_x",
        AUTH_JWT_SECRET="a-production-secret-of-at-least-32-characters",
    )
    refused = dev.command("dev", *dev.ports())
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: `make run` is for development only (ENVIRONMENT=production): use `main.py serve`"
    ]
