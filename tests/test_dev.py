"""`make run` as a developer lives with it: stop, start again, reset, a port already taken."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from billing.settings import DEV_JWT_SECRET
from emulator.client import AsyncEmulatorControl, EmulatorControl
from tests.support.api import APP_URL, Api
from tests.support.cli import MAIN, run_cli
from tests.support.journeys import subscribe
from tests.support.servers import free_port, wait_healthy
from tests.support.stack import PLANS
from tests.support.world import settled


class Dev:
    """`python main.py dev` (what `make run` runs) in a folder of its own, on free ports."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.emulator_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"
        self.env = {"APP_URL": APP_URL, "PLANS_FILE": str(PLANS)}
        self.process: subprocess.Popen[str] | None = None

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another `python main.py ...` in the same folder and environment."""
        return run_cli(*args, env=self.env, cwd=self.folder)

    def ports(self) -> list[str]:
        """The port options of `dev` and `reset`."""
        return ["--port", str(self.port), "--emulator-port", str(self.emulator_port)]

    def start(self) -> str:
        """Start it and wait until the API answers; returns what it printed so far."""
        log = self.folder / "dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "AUTH_"))}
        env.pop("DATABASE_URL", None)
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(MAIN), "dev", *self.ports()],
                cwd=self.folder,
                env={**env, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        wait_healthy(self.url, self.process, timeout=60)
        return log.read_text()

    async def settle(self) -> None:
        """Wait until the emulator has delivered every webhook it owes the API, and the API
        has applied them."""
        with EmulatorControl(self.emulator) as control:
            await asyncio.to_thread(control.wait_idle, timeout=30)
        await settled(f"sqlite+aiosqlite:///{self.folder / 'billing.db'}", timeout=30)

    def stop(self) -> None:
        """Ctrl-C, as a developer stops it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    """A `make run` in an empty folder (its billing.db and emulator state land there)."""
    running = Dev(tmp_path)
    yield running
    running.stop()


def dev_api(http: httpx.AsyncClient, org: str) -> Api:
    """A client for an org, with tokens signed by the development secret `make run` uses."""
    return Api(http, org, secret=DEV_JWT_SECRET)


async def test_a_restart_keeps_customers_subscriptions_and_clock(dev: Dev) -> None:
    dev.start()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        paying = dev_api(http, "org_paying")
        await subscribe(paying, "pro")
        upgraded_only = dev_api(http, "org_checkout_only")
        assert (await upgraded_only.upgrade("pro"))["__typename"] == "CheckoutSession"
        await dev.settle()
        before = await paying.entitlement()
    async with AsyncEmulatorControl(dev.emulator) as control:
        advanced = await control.advance(3 * 86400)
    dev.stop()
    assert (dev.folder / "billing.db").exists() and (dev.folder / "billing.emulator.json").exists()

    printed = dev.start()
    assert "warning" not in printed.lower(), printed
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


async def test_reset_wipes_both_together(dev: Dev) -> None:
    dev.start()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        await subscribe(dev_api(http, "org_paying"), "pro")
    refused = dev.command("reset", *dev.ports())
    assert refused.returncode == 1 and f"port {dev.port}" in refused.stderr
    assert "stop `make run` first" in refused.stderr
    dev.stop()

    wiped = dev.command("reset", *dev.ports())
    assert wiped.returncode == 0, wiped.stderr
    assert not (dev.folder / "billing.db").exists()
    assert not (dev.folder / "billing.emulator.json").exists()
    printed = dev.start()
    assert "warning" not in printed.lower(), printed
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        fresh = await dev_api(http, "org_paying").entitlement()
    assert (fresh["plan"], fresh["status"], fresh["hasBillingAccount"]) == ("free", "NONE", False)


async def test_lost_emulator_state_is_named_at_start(dev: Dev) -> None:
    dev.start()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as http:
        await dev_api(http, "org_lost").upgrade("pro")
    dev.stop()
    (dev.folder / "billing.emulator.json").unlink()

    printed = dev.start()
    [line] = [line for line in printed.splitlines() if "warning" in line]
    assert "1 org(s)" in line and "make reset" in line


def test_a_port_in_use_is_named(dev: Dev) -> None:
    dev.start()
    second = dev.command("dev", *dev.ports())
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"error: port {dev.port} (the API) is already in use on 127.0.0.1: stop the other "
        "process (another `make run`?) or choose another port"
    ]
