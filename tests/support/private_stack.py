"""A private stack: an emulator without webhook endpoints (events wait for the test to deliver
them) and the API in a child process, over a fresh database of the shared stack's backend."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from harness.cli import invoke_cli
from harness.db import execute, fresh_database, rows
from harness.servers import ApiProcess, LoggedApi, free_port, settings_env
from harness.signing import post_signed
from harness.stack import Stack, seed
from harness.stripe_side import SUITE_KEY, stripe_sdk
from harness.timing import eventually

CONCURRENCY = 16
P = TypeVar("P", bound=ApiProcess)


class PrivateStack:
    """A private emulator (no webhook endpoint: events wait for us) and an API process, started
    on first use with the stack's settings, or by `restart_api` with some of them changed."""

    def __init__(self, stack: Stack) -> None:
        self.emulator = EmulatorServer().start()
        url, self._drop = fresh_database(stack.backend, Path(tempfile.mkdtemp()))
        self.settings = stack.settings_with(stripe_api_base=self.emulator.url, database_url=url)
        seed(self.settings)
        self.env = settings_env(self.settings)
        self.port = free_port()
        """The API's port, the same across restarts."""
        self._api: ApiProcess | None = None
        self.sdk = stripe_sdk(self.emulator.url)

    @property
    def api(self) -> ApiProcess:
        """The API process (started now if none is)."""
        if self._api is None:
            self._api = ApiProcess(self.env, port=self.port).start()
        return self._api

    @api.setter
    def api(self, process: ApiProcess) -> None:
        self._api = process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python main.py ARGS` against this stack's database and emulator (in this process),
        tables one line per row."""
        return invoke_cli(*args, env={**self.env, "COLUMNS": "250"})

    def restart_api(self, **env: str) -> ApiProcess:
        """Stop the API process, if any, and start another on the same port, database and
        emulator, with these settings changed."""
        return self._replace(ApiProcess({**self.env, **env}, port=self.port))

    def restart_logged_api(self, log: Path, **env: str) -> LoggedApi:
        """`restart_api`, the new process's log kept in `log`."""
        return self._replace(LoggedApi({**self.env, **env}, log, port=self.port))

    def _replace(self, process: P) -> P:
        """Serve from `process` instead (started once the one before has stopped)."""
        self.stop_api()
        self._api = process.start()
        return process

    def stop_api(self) -> None:
        """Stop the API process, if one was started."""
        if self._api is not None:
            self._api.stop()

    def close(self) -> None:
        """Stop everything, drop the database."""
        self.stop_api()
        self.emulator.stop()
        self._drop()


async def link_unknown_customer(url: str, org_id: str) -> str:
    """Link the org to a customer id the emulator never had (as after losing its state)."""
    customer_id = f"cus_lost{org_id[-8:]}"
    await execute(
        url,
        "INSERT INTO billing_accounts (org_id, stripe_customer_id, created_at) "
        "VALUES (:org, :cus, :now)",
        org=org_id,
        cus=customer_id,
        now=datetime.now(UTC),
    )
    return customer_id


PENDING_SQL = "SELECT count(*) AS n FROM webhook_events WHERE status IN ('received', 'failed')"


async def settled(url: str, timeout: float = 120.0, customer: str | None = None) -> None:
    """Wait until the applier has applied every stored event (none received or failed), or
    every stored event of `customer`."""
    sql = PENDING_SQL + (" AND customer_id = :c" if customer else "")

    async def pending() -> int:
        return int((await rows(url, sql, c=customer))[0]["n"])

    await eventually(
        pending, lambda n: n == 0, timeout=timeout, interval=0.1, what="no pending event"
    )


async def all_events(private: PrivateStack) -> list[dict[str, Any]]:
    """Every event the emulator recorded, as raw JSON."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    async with httpx.AsyncClient(
        base_url=private.emulator.url, headers={"authorization": f"Bearer {SUITE_KEY}"}
    ) as http:
        while True:
            page = (await http.get("/v1/events", params=params)).json()
            events.extend(page["data"])
            if not page["has_more"]:
                return events
            params["starting_after"] = page["data"][-1]["id"]


async def new_events(private: PrivateStack, customer: str, seen: set[str]) -> list[bytes]:
    """Bodies of the customer's events not delivered yet, oldest first (`seen` grows)."""
    fresh = [
        e
        for e in reversed(await all_events(private))
        if e["id"] not in seen and customer in json.dumps(e["data"]["object"])
    ]
    seen.update(e["id"] for e in fresh)
    return [json.dumps(e).encode() for e in fresh]


async def deliver(
    url: str, bodies: list[bytes], halfway: asyncio.Event | None = None
) -> list[bytes]:
    """POST signed bodies with bounded concurrency; return those that got no 2xx."""
    gate = asyncio.Semaphore(CONCURRENCY)
    failed: list[bytes] = []
    done = 0

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def one(body: bytes) -> None:
            async with gate:
                try:
                    response = await post_signed(http, body)
                    ok = 200 <= response.status_code < 300
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    failed.append(body)
                nonlocal done
                done += 1
                if halfway is not None and done == len(bodies) // 3:
                    halfway.set()

        await asyncio.gather(*(one(b) for b in bodies))
    return failed


def with_duplicates(bodies: list[bytes], share: float, seed: int) -> list[bytes]:
    """The bodies plus a share of them again, shuffled (Stripe's redeliveries, out of order)."""
    rng = random.Random(seed)
    mixed = bodies + rng.sample(bodies, int(len(bodies) * share))
    rng.shuffle(mixed)
    return mixed


async def burst_to_both(
    private: PrivateStack, urls: tuple[str, str], bodies: list[bytes], delay: float, timeout: float
) -> list[dict[str, Any]]:
    """Deliver half the bodies to each of two servers at once while Stripe answers every
    subscription re-read `delay` seconds late; once every event is applied, the re-reads
    Stripe received."""
    control = EmulatorControl(private.emulator.url)
    control.clear_requests()
    control.fail("/v1/subscriptions", method="GET", mode="delay", hang_seconds=delay, count=10**6)
    try:
        half = len(bodies) // 2
        unacknowledged = await asyncio.gather(
            deliver(urls[0], bodies[:half]), deliver(urls[1], bodies[half:])
        )
        assert [len(u) for u in unacknowledged] == [0, 0]
        await settled(private.settings.database_url, timeout=timeout)
        return control.requests(path="/v1/subscriptions", method="GET")
    finally:
        control.clear_faults()
        control.close()


def closest_rereads(reads: list[dict[str, Any]], default: float) -> float:
    """The shortest time between two re-reads of one customer (`default` when none repeats)."""
    times: dict[str, list[float]] = {}
    for read in reads:
        times.setdefault(read["params"]["customer"], []).append(read["time"])
    return min(
        (y - x for t in times.values() for x, y in itertools.pairwise(sorted(t))),
        default=default,
    )
