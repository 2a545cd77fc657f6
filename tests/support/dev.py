"""`python main.py dev`, what `make run` runs, in a folder of its own on free ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from billing.kit.settings import DEV_JWT_SECRET
from emulator.client import AsyncEmulatorControl, EmulatorControl
from harness.api import APP_URL, Api
from harness.cli import MAIN, run_cli
from harness.servers import free_port, wait_healthy
from harness.stack import PLANS
from harness.timing import eventually
from tests.support.private_stack import settled


class DevStack:
    """`python main.py dev` (what `make run` runs) in a folder of its own, on free ports."""

    def __init__(
        self,
        folder: Path,
        app_url: str = APP_URL,
        plans: Path = PLANS,
        example: bool = False,
        app_urls: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.app_url = app_url
        self.example = example
        self.port = free_port()
        self.emulator_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"
        self.env = {"APP_URL": app_url, "PLANS_FILE": str(plans)}
        if app_urls:  # the client apps a mutation's `app` picks (a mobile app's universal link)
            self.env["APP_URLS"] = ",".join(f"{name}={url}" for name, url in app_urls.items())
        self.process: subprocess.Popen[str] | None = None

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another `python main.py ...` in the same folder and environment."""
        return run_cli(*args, env=self.env, cwd=self.folder)

    def ports(self) -> list[str]:
        """The port options of `dev` and `reset`."""
        return ["--port", str(self.port), "--emulator-port", str(self.emulator_port)]

    def options(self) -> list[str]:
        """Everything `dev` is started with (the example only when asked for: it builds)."""
        return [*self.ports(), "--example" if self.example else "--no-example"]

    def start(self, timeout: float = 60) -> str:
        """Start it and wait until the API answers; returns what it printed so far."""
        log = self.folder / "dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "AUTH_"))}
        env.pop("DATABASE_URL", None)
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(MAIN), "dev", *self.options()],
                cwd=self.folder,
                env={**env, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        wait_healthy(self.url, self.process, timeout=timeout)
        return log.read_text()

    async def settle(self) -> None:
        """Wait until the emulator has delivered every webhook it owes the API, and the API
        has applied them."""
        with EmulatorControl(self.emulator) as control:
            await asyncio.to_thread(control.wait_idle, timeout=30)
        await settled(f"sqlite+aiosqlite:///{self.folder / 'billing.db'}", timeout=30)

    async def settle_customer(self, customer: str) -> None:
        """Wait until every event about one customer is delivered and applied (other
        customers' deliveries may still be queued or retrying)."""
        async with AsyncEmulatorControl(self.emulator) as control:

            async def undelivered() -> int:
                mine = {
                    e["id"]
                    for e in await control.events()
                    if customer in json.dumps(e["data"]["object"])
                }
                done = {d["event_id"] for d in await control.deliveries() if d["ok"]}
                return len(mine - done)

            await eventually(undelivered, lambda n: n == 0, timeout=60, what="its deliveries")
        url = f"sqlite+aiosqlite:///{self.folder / 'billing.db'}"
        await settled(url, timeout=60, customer=customer)

    def stop(self) -> None:
        """Ctrl-C, as a developer stops it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
        self.process = None


def dev_api(http: httpx.AsyncClient, org: str) -> Api:
    """A client for an org, with tokens signed by the development secret `make run` uses."""
    return Api(http, org, secret=DEV_JWT_SECRET)
