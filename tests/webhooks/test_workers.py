"""Appliers in other processes: `python main.py worker` applies what a server stored, and two
servers on one PostgreSQL database share a burst without ever applying a customer together."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from billing.kit.change_feed import APPLICATION_NAME, EVENTS_CHANNEL
from emulator.client import EmulatorControl
from harness.api import Api
from harness.cli import ROOT
from harness.db import rows
from harness.servers import ApiProcess, LoggedApi, applies, logged_applies
from harness.stack import Stack
from harness.timing import eventually
from tests.support.journeys import click
from tests.support.lifecycles import (
    EVENTS_SQL,
    all_on_pro,
    bodies_of,
    customers_by_org,
    expected,
    live_orgs,
    subscribe_orgs,
    subscription_reads,
    target_customer,
)
from tests.support.private_stack import (
    PrivateStack,
    all_events,
    burst_to_both,
    closest_rereads,
    deliver,
    settled,
    with_duplicates,
)


class Worker:
    """`python main.py worker` in a child process, its output kept in files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.stdout, self.stderr = logs / "worker.out", logs / "worker.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "main.py", "worker"],
                cwd=ROOT,
                env={**ApiProcess(env)._env},
                stdout=out,
                stderr=err,
            )

    def lines(self) -> list[str]:
        """What it logged so far."""
        return self.stderr.read_text().splitlines()

    async def applied(self, count: int) -> list[str]:
        """The event ids its applies logged, once they name at least `count`."""
        [found] = await logged_applies(lambda: applies(self.lines()), events=count)
        return [i for _, ids in found for i in ids]

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; its exit code and how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


async def test_the_worker_applies_what_a_server_stored(
    private: PrivateStack, tmp_path: Path
) -> None:
    orgs = await subscribe_orgs(private, 6)
    events = await all_events(private)
    pending = {e["id"] for e in events if target_customer(e)}
    control = EmulatorControl(private.emulator.url)
    url = private.settings.database_url
    control.clear_requests()
    # A server that stores every delivery but whose applier never gets Stripe's answer: each
    # re-read hangs (and it would wait a minute for it), then the server dies mid-apply.
    control.fail("/v1/subscriptions", method="GET", mode="hang", hang_seconds=60, count=1000)
    try:
        private.restart_api(STRIPE_TIMEOUT="60")
        assert await deliver(private.api.url, bodies_of(events)) == []
        await eventually(
            lambda: asyncio.to_thread(control.requests, path="/v1/subscriptions", method="GET"),
            what="the server's applier waiting for Stripe",
        )
        stored = await rows(url, EVENTS_SQL)
        assert {r["id"] for r in stored} == {e["id"] for e in events}
        assert {(r["status"], r["attempts"]) for r in stored if r["id"] in pending} == {
            ("received", 0)
        }
        private.api.kill()
    finally:
        control.clear_faults()

    worker = await asyncio.to_thread(Worker, private.env, tmp_path)
    try:
        await settled(url, timeout=30)
        stored = await rows(url, EVENTS_SQL)
        assert {r["status"] for r in stored} <= {"processed", "ignored"}
        assert {r["attempts"] for r in stored} == {1}
        applied = await worker.applied(len(pending))
        assert sorted(applied) == sorted(pending)  # the worker applied each, once
        code, took = await asyncio.to_thread(worker.terminate, 15)
    finally:
        worker.kill()
    assert code == 0, worker.stderr.read_text()[-2000:]
    assert took < 5, took
    assert "applying stored webhook events" in worker.stdout.read_text()

    private.restart_api()
    await all_on_pro(private, orgs)
    control.close()


async def test_with_the_applier_in_a_worker_servers_only_store(
    private: PrivateStack, tmp_path: Path
) -> None:
    orgs = await subscribe_orgs(private, 4)
    events = await all_events(private)
    pending = {e["id"] for e in events if target_customer(e)}
    control = EmulatorControl(private.emulator.url)
    url = private.settings.database_url
    private.restart_api(WEBHOOK_APPLIER="worker")
    control.clear_requests()
    assert await deliver(private.api.url, bodies_of(events)) == []
    await asyncio.sleep(2.5)  # more than two of an applier's idle polls
    stored = await rows(url, EVENTS_SQL)
    assert {(r["status"], r["attempts"]) for r in stored if r["id"] in pending} == {("received", 0)}
    assert control.requests(path="/v1/subscriptions", method="GET") == []

    worker = await asyncio.to_thread(Worker, private.env, tmp_path)
    try:
        await settled(url, timeout=30)
        applied = await worker.applied(len(pending))
        assert sorted(applied) == sorted(pending)
    finally:
        worker.kill()
    await all_on_pro(private, orgs)
    control.close()


HEARD_WITHIN = 0.75
"""Seconds from a server acknowledging a delivery to the worker's Stripe re-read. The
worker's idle poll is a second: without the NOTIFY, each of HEARING re-reads would land at a
random point in it, all within this with a chance of 1 in 100 (0.75 ** 16); with it, even a
busy machine (four test workers on two cores) hears well within it."""
HEARING = 16


async def test_a_worker_hears_at_once_what_a_server_stored(
    stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if stack.backend != "postgresql":
        pytest.skip("SQLite has no NOTIFY: a worker polls for other processes' events")
    private: PrivateStack = request.getfixturevalue("private")
    orgs = await subscribe_orgs(private, 1 + HEARING)
    customers = await customers_by_org(private)
    events = await all_events(private)
    control = EmulatorControl(private.emulator.url)
    private.restart_api(WEBHOOK_APPLIER="worker")
    # A LISTEN connection's last statement is its LISTEN on the events' channel, once it hears.
    # Backends are told apart by pid: the restarted server's old connection may still be listed
    # when `before` is read, and gone by the time the worker's appears.
    listening = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND query LIKE :listen"
    )
    url, name = private.settings.database_url, APPLICATION_NAME
    listen = f"LISTEN %{EVENTS_CHANNEL}%"
    before = {row["pid"] for row in await rows(url, listening, name=name, listen=listen)}
    worker = await asyncio.to_thread(Worker, private.env, tmp_path)
    rng = random.Random(7)
    delays = []
    try:
        await eventually(
            lambda: rows(url, listening, name=name, listen=listen),
            lambda found: bool({row["pid"] for row in found} - before),
            timeout=30,
            what="the worker's LISTEN on the events' channel",
        )
        # The first apply of a process pays for its first Stripe call (the SDK's lazy imports,
        # a new connection: a second on a busy machine); the ones measured come after it.
        for n, api in enumerate(orgs):
            customer = customers[api.org]
            mine = [e for e in events if target_customer(e) == customer]
            await asyncio.sleep(rng.uniform(0, 1))  # anywhere in the worker's poll
            assert await deliver(private.api.url, bodies_of(mine)) == []
            acknowledged = time.time()
            reads = await eventually(
                functools.partial(asyncio.to_thread, subscription_reads, control, customer),
                what="the worker's re-read",
            )
            if n > 0:
                delays.append(min(r["time"] for r in reads) - acknowledged)
        await settled(url, timeout=30)
    finally:
        worker.kill()
    print("acknowledged -> worker's re-read:", ", ".join(f"{d * 1000:.0f} ms" for d in delays))
    assert max(delays) < HEARD_WITHIN, delays
    await all_on_pro(private, orgs)
    control.close()


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """CPU time a child process used so far (user + system, from /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HOLD = 25.0
"""Seconds the first process could hold a customer (Stripe answers its re-read that late):
long enough for the other process to start and be watched while it waits, even on a loaded
machine; the test ends the hold as soon as the watch is over by clearing the fault."""
WATCHED = 2.5
"""Seconds the waiting process's CPU time is measured."""


async def test_an_applier_waits_idle_while_another_process_holds_the_customer(
    private: PrivateStack, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client)
        await click((await api.upgrade("pro"))["url"], "pay")
    customer = (await customers_by_org(private))[api.org]
    events = [e for e in await all_events(private) if target_customer(e) == customer]
    assert len(events) >= 2
    url = private.settings.database_url
    control = EmulatorControl(private.emulator.url)
    control.clear_requests()
    private.restart_api(STRIPE_TIMEOUT="40")  # the holder waits for Stripe's late answer
    control.fail("/v1/subscriptions", method="GET", mode="delay", hang_seconds=HOLD)
    held_from = time.monotonic()
    assert await deliver(private.api.url, bodies_of(events[:1])) == []
    await eventually(
        lambda: asyncio.to_thread(subscription_reads, control, customer),
        what="the holder's re-read in flight",
    )
    # The other process starts once the first holds the customer (else, hearing the event
    # stored through NOTIFY, it could be the one to lock it) and stores the rest: the
    # customer is due, but locked elsewhere.
    other = LoggedApi(private.env, tmp_path / "other.log").start()
    try:
        waiting_from = cpu_seconds(other.process)
        assert await deliver(other.url, bodies_of(events[1:])) == []
        await asyncio.sleep(WATCHED)
        waiting = cpu_seconds(other.process) - waiting_from
        assert time.monotonic() - held_from < HOLD, "the hold ended before the watch did"
        assert len(subscription_reads(control, customer)) == 1  # still held by the first
        control.clear_faults()  # Stripe answers the holder's re-read now
        await settled(url, timeout=30)
        idle_from = cpu_seconds(other.process)
        await asyncio.sleep(WATCHED)
        idle = cpu_seconds(other.process) - idle_from
    finally:
        control.clear_faults()
        other.stop()
    stored = await rows(url, EVENTS_SQL + " WHERE customer_id = :c", c=customer)
    assert {(r["status"], r["attempts"]) for r in stored} == {("processed", 1)}
    # Waiting for another process's lock should cost about as little as idling, not a core's
    # worth of looking for due work and trying the lock again.
    assert waiting < 0.5, f"{waiting:.2f} s of CPU in {WATCHED:.1f} s (idle: {idle:.2f} s)"
    control.close()


ORGS = 60
DUPLICATES = 0.3
STRIPE_DELAY = 0.05
"""Seconds Stripe takes to answer each re-read: two overlapping reads of a customer would
arrive closer together than this."""


async def test_two_servers_never_apply_one_customer_at_once(
    stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if stack.backend != "postgresql":
        pytest.skip("two API processes share a database on PostgreSQL only")
    private: PrivateStack = request.getfixturevalue("private")
    async with httpx.AsyncClient(base_url=private.api.url, timeout=60) as client:
        orgs = await live_orgs(private, client, ORGS)
    control = EmulatorControl(private.emulator.url)
    control.advance(35 * 86_400)
    events = await all_events(private)
    bodies = with_duplicates(bodies_of(events), DUPLICATES, seed=4321)
    url = private.settings.database_url

    first = private.restart_logged_api(tmp_path / "first.log")
    second = LoggedApi(private.env, tmp_path / "second.log").start()
    try:
        reads = await burst_to_both(private, (first.url, second.url), bodies, STRIPE_DELAY, 60)
    finally:
        second.stop()

    # Every org equals Stripe; every event applied exactly once.
    customers = await customers_by_org(private)
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
        for api in orgs:
            want = await asyncio.to_thread(expected, private, api.org, customers[api.org])
            got = await Api(client, api.org).entitlement()
            assert {k: got[k] for k in want} == want, (api.org, customers[api.org])
    stored = await rows(url, EVENTS_SQL)
    assert sorted(r["id"] for r in stored) == sorted(e["id"] for e in events)
    assert {r["status"] for r in stored} <= {"processed", "ignored"}
    assert {r["attempts"] for r in stored} == {1}

    # Each process logged its applies: every event is in exactly one of them, on one process
    # (two overlapping applies would both log the events they read).
    pending = {e["id"] for e in events if target_customer(e)}
    on_first, on_second = await logged_applies(
        lambda: applies(first.lines()), lambda: applies(second.lines()), events=len(pending)
    )
    logged = {"first": on_first, "second": on_second}
    assert logged["first"] and logged["second"], "both processes applied events"
    where: dict[str, list[str]] = defaultdict(list)
    rounds: Counter[str] = Counter()
    appliers: dict[str, set[str]] = defaultdict(set)
    for name, done in logged.items():
        for customer, ids in done:
            rounds[customer] += 1
            appliers[customer].add(name)
            for event_id in ids:
                where[event_id].append(name)
    assert set(where) == pending
    assert {i: w for i, w in where.items() if len(w) != 1} == {}
    shared = [c for c, names in appliers.items() if len(names) == 2]
    assert shared, "some customers were applied by both processes (in turn)"

    # One Stripe re-read per apply, and a customer's re-reads never overlapped: each arrived
    # after the one before had been answered.
    times: dict[str, list[float]] = defaultdict(list)
    for read in reads:
        times[read["params"]["customer"]].append(read["time"])
    assert {c: len(t) for c, t in times.items()} == dict(rounds)
    closest = closest_rereads(reads, default=STRIPE_DELAY)
    assert closest >= STRIPE_DELAY * 0.9, closest
    print(
        f"{len(reads)} re-reads for {len(pending)} events of {len(times)} customers; "
        f"rounds per customer {sorted(Counter(rounds.values()).items())}; "
        f"{len(shared)} customers applied by both processes; closest re-reads {closest:.3f}s"
    )
    control.close()
