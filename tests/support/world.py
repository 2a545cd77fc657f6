"""A private world: an emulator without webhook endpoints (events wait for the test to deliver
them) and the API in a child process, sharing the stack's database."""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
from pathlib import Path
from typing import Any

import httpx

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from tests.support.db import fresh_database, rows
from tests.support.servers import ApiProcess, settings_env
from tests.support.signing import post_signed
from tests.support.stack import Stack, seed
from tests.support.stripe_side import SUITE_KEY, stripe_sdk
from tests.support.timing import eventually

CONCURRENCY = 16


class World:
    """A private emulator (no webhook endpoint: events wait for us) and an API process."""

    def __init__(self, stack: Stack) -> None:
        self.emulator = EmulatorServer().start()
        url, self._drop = fresh_database(stack.backend, Path(tempfile.mkdtemp()))
        self.settings = stack.settings_with(stripe_api_base=self.emulator.url, database_url=url)
        seed(self.settings)
        self.env = settings_env(self.settings)
        self.api = ApiProcess(self.env).start()
        self.sdk = stripe_sdk(self.emulator.url)

    def restart_api(self) -> None:
        """A new API process on the same port, database and emulator."""
        self.api = ApiProcess(self.env, port=self.api.port).start()

    def close(self) -> None:
        self.api.stop()
        self.emulator.stop()
        self._drop()


PENDING_SQL = "SELECT count(*) AS n FROM webhook_events WHERE status IN ('received', 'failed')"


async def settled(url: str, timeout: float = 120.0) -> None:
    """Wait until the applier has applied every stored event (none received or failed)."""

    async def pending() -> int:
        return int((await rows(url, PENDING_SQL))[0]["n"])

    await eventually(
        pending, lambda n: n == 0, timeout=timeout, interval=0.1, what="no pending event"
    )


async def all_events(world: World) -> list[dict[str, Any]]:
    """Every event the emulator recorded, as raw JSON."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    async with httpx.AsyncClient(
        base_url=world.emulator.url, headers={"authorization": f"Bearer {SUITE_KEY}"}
    ) as http:
        while True:
            page = (await http.get("/v1/events", params=params)).json()
            events.extend(page["data"])
            if not page["has_more"]:
                return events
            params["starting_after"] = page["data"][-1]["id"]


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
    world: World, urls: tuple[str, str], bodies: list[bytes], delay: float, timeout: float
) -> list[dict[str, Any]]:
    """Deliver half the bodies to each of two servers at once while Stripe answers every
    subscription re-read `delay` seconds late; once every event is applied, the re-reads
    Stripe received."""
    control = EmulatorControl(world.emulator.url)
    control.clear_requests()
    control.fail("/v1/subscriptions", method="GET", mode="delay", hang_seconds=delay, count=10**6)
    try:
        half = len(bodies) // 2
        unacknowledged = await asyncio.gather(
            deliver(urls[0], bodies[:half]), deliver(urls[1], bodies[half:])
        )
        assert [len(u) for u in unacknowledged] == [0, 0]
        await settled(world.settings.database_url, timeout=timeout)
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
