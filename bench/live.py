"""`entitlementChanged`: 1,000 open subscriptions on one worker, memory per connection and the
time from a webhook's commit to the message.

`python main.py serve` runs on CPU 0; this process (the 1,000 graphql-transport-ws clients,
which answer the server's pings as graphql-ws does) and the emulator run on CPU 1. Of the
1,000 subscriptions, ACTIVE_ORGS orgs have two each (two tabs) and the rest one each.

- Memory: the server's resident set after the 1,000 subscriptions are open and have their first
  message, less before, per connection; against `baseline_app` below, a bare graphql-transport-ws
  server on Starlette under the same uvicorn flags (accept, ack, one `next`, then hold), the floor
  of any such server.
- Commit to message: CHANGES webhooks, each after flipping `cancel_at_period_end` of an active
  org's subscription on the emulator, so the applier re-reads Stripe and commits a change; the
  time from the row's `updatedAt` (written in the committing transaction) to each message's
  arrival, p50 and p99; against what a client has without a push, polling `entitlement` every
  POLL_EVERY seconds, measured on the same changes in the same run.
- Correctness: every subscription gets its first message and then exactly one message per change
  of its org; the others get nothing more.

Run: ``.venv/bin/python bench/live.py [--backend sqlite|postgresql]``
(PostgreSQL too when TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket, WebSocketDisconnect  # noqa: E402

from bench.webhooks import (  # noqa: E402
    PINNED,
    database,
    emulator,
    report_stderr,
    service,
    uvicorn_factory,
)

SUBSCRIPTIONS = 1_000
ACTIVE_ORGS = 50
"""Orgs whose entitlement changes, two subscriptions each; the other subscriptions idle."""
CHANGES = 200
CHANGE_EVERY = 0.05
"""Seconds between changes (20 per second, well within the service's Stripe rate)."""
POLL_EVERY = 1.0
"""The baseline client's polling interval."""
OPEN_AT_ONCE = 50
Json = dict[str, dict[str, Any]]
"""Each active org's subscription as Stripe returns it."""
PROTOCOL = "graphql-transport-ws"
SUBSCRIPTION = (
    "subscription { entitlementChanged { orgId plan status cancelAtPeriodEnd currentPeriodEnd"
    " hasBillingAccount limits updatedAt } }"
)
ENTITLEMENT = SUBSCRIPTION.replace("subscription { entitlementChanged", "query { entitlement")


# --- the baseline: a bare graphql-transport-ws server -------------------------------------------


async def _bare_socket(websocket: WebSocket) -> None:
    """Accept, ack `connection_init`, answer a `subscribe` with one `next`, then hold."""
    await websocket.accept(subprotocol=PROTOCOL)
    try:
        while True:
            message = json.loads(await websocket.receive_text())
            kind = message.get("type")
            if kind == "connection_init":
                await websocket.send_text('{"type":"connection_ack"}')
            elif kind == "ping":
                await websocket.send_text('{"type":"pong"}')
            elif kind == "subscribe":
                data = {"entitlementChanged": {"orgId": "org", "plan": "free"}}
                next_message = {"id": message["id"], "type": "next", "payload": {"data": data}}
                await websocket.send_text(json.dumps(next_message))
    except WebSocketDisconnect:
        return


async def _healthz(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def baseline_app() -> Starlette:
    """The bare graphql-transport-ws server (no auth, no schema, no database)."""
    return Starlette(routes=[Route("/healthz", _healthz), WebSocketRoute("/graphql", _bare_socket)])


def bare_server(tmp: Path) -> Any:
    """`baseline_app` with the service's flags, per-message deflate off as `serve` has it."""
    flags = ("--ws-per-message-deflate", "false")
    return uvicorn_factory("bench.live:baseline_app", {}, tmp / "bare.stderr", *flags)


# --- clients ------------------------------------------------------------------------------------


@dataclass
class Subscriber:
    """One connection with one subscription, and what it received (arrival time, data)."""

    org: str
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)


async def subscribe(ws_url: str, token: str | None, subscriber: Subscriber) -> None:
    """Open, sign in, subscribe; record every `next` until the connection is closed."""
    async with websockets.connect(
        ws_url, subprotocols=[websockets.Subprotocol(PROTOCOL)], open_timeout=60
    ) as ws:
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        )
        async for raw in ws:
            at = time.time()
            message = json.loads(raw)
            if message["type"] == "ping":
                await ws.send('{"type":"pong"}')
            elif message["type"] == "next":
                subscriber.received.append((at, message["payload"]["data"]["entitlementChanged"]))
                subscriber.first.set()
            else:
                raise AssertionError(f"unexpected message {message}")


async def open_all(
    ws_url: str, subscribers: list[Subscriber], tokens: dict[str, str] | None
) -> list[asyncio.Task[None]]:
    """Open every subscription, OPEN_AT_ONCE at a time; return their tasks once all have
    their first message."""
    tasks = []
    for start in range(0, len(subscribers), OPEN_AT_ONCE):
        batch = subscribers[start : start + OPEN_AT_ONCE]
        for subscriber in batch:
            token = tokens[subscriber.org] if tokens else None
            tasks.append(asyncio.create_task(subscribe(ws_url, token, subscriber)))
        await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in batch)), 60)
    return tasks


def rss_kib(pid: int) -> int:
    """A process's resident set, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def settle_rss(pid: int) -> int:
    """The resident set once it has stopped moving for a second."""
    last = rss_kib(pid)
    for _ in range(10):
        await asyncio.sleep(1)
        now = rss_kib(pid)
        if abs(now - last) < 256:
            return now
        last = now
    return last


async def memory_per_connection(
    url: str, pid: int, subscribers: list[Subscriber], tokens: dict[str, str] | None
) -> tuple[float, list[asyncio.Task[None]]]:
    """KiB per open subscription (resident set after all are open, less before)."""
    ws_url = url.replace("http://", "ws://") + "/graphql"
    warm = [Subscriber(subscribers[0].org)]  # load every code path once
    warm_tasks = await open_all(ws_url, warm, tokens)
    for task in warm_tasks:
        task.cancel()
    before = await settle_rss(pid)
    tasks = await open_all(ws_url, subscribers, tokens)
    after = await settle_rss(pid)
    return (after - before) / len(subscribers), tasks


# --- changes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    """An active org: its customer and subscription on the emulator."""

    org: str
    customer: str
    subscription: str


def active_orgs(api: str) -> list[Org]:
    """ACTIVE_ORGS customers, each with a Pro subscription, on the emulator."""
    from harness.stripe_side import price_id, stripe_sdk

    sdk = stripe_sdk(api)
    price = price_id(sdk, "pro_monthly")
    orgs = []
    for i in range(ACTIVE_ORGS):
        org = f"org_live_{i}"
        customer = sdk.v1.customers.create(params={"metadata": {"org_id": org}})
        sub = sdk.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price}]}
        )
        orgs.append(Org(org, customer.id, sub.id))
    return orgs


async def make_changes(api: str, service_url: str, orgs: list[Org], sub_json: Json) -> None:
    """CHANGES webhooks, each after flipping an org's cancel_at_period_end on the emulator."""
    from harness.signing import event_body, post_signed
    from harness.stripe_side import stripe_sdk

    sdk = stripe_sdk(api)
    canceling = {o.org: False for o in orgs}
    async with httpx.AsyncClient(base_url=service_url, timeout=30) as http:
        for i in range(CHANGES):
            org = orgs[i % len(orgs)]
            canceling[org.org] = not canceling[org.org]
            await asyncio.to_thread(
                sdk.v1.subscriptions.update,
                org.subscription,
                params={"cancel_at_period_end": canceling[org.org]},
            )
            body = event_body("customer.subscription.updated", sub_json[org.org])
            response = await post_signed(http, body)
            assert response.status_code == 200, response.text
            await asyncio.sleep(CHANGE_EVERY)


async def link_all(service_url: str, orgs: list[Org], sub_json: Json) -> None:
    """One `customer.subscription.created` per active org, so each has its Pro entitlement."""
    from harness.signing import event_body, post_signed

    async with httpx.AsyncClient(base_url=service_url, timeout=30) as http:
        for org in orgs:
            body = event_body("customer.subscription.created", sub_json[org.org])
            assert (await post_signed(http, body)).status_code == 200


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def delays_ms(subscribers: list[Subscriber]) -> list[float]:
    """Arrival minus `updatedAt` of every message after the first, ms."""
    return [
        (at - _ts(data["updatedAt"])) * 1000 for s in subscribers for at, data in s.received[1:]
    ]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def poll_baseline(
    url: str, orgs: list[Org], tokens: dict[str, str], api: str, sub_json: Json
) -> list[float]:
    """The same changes, seen by clients polling `entitlement` every POLL_EVERY seconds: the
    delay from each change's `updatedAt` to the first poll that shows it, ms."""
    seen: dict[str, list[tuple[float, str]]] = {o.org: [] for o in orgs}
    done = asyncio.Event()

    async def poll(org: Org, http: httpx.AsyncClient, offset: float) -> None:
        await asyncio.sleep(offset)
        last = None
        while not done.is_set():
            response = await http.post(
                "/graphql",
                json={"query": ENTITLEMENT},
                headers={"authorization": f"Bearer {tokens[org.org]}"},
            )
            at = time.time()
            updated = response.json()["data"]["entitlement"]["updatedAt"]
            if updated != last:
                seen[org.org].append((at, updated))
                last = updated
            await asyncio.sleep(POLL_EVERY)

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        pollers = [
            asyncio.create_task(poll(o, http, POLL_EVERY * i / len(orgs)))
            for i, o in enumerate(orgs)
        ]
        await asyncio.sleep(POLL_EVERY * 1.5)
        await make_changes(api, url, orgs, sub_json)
        await asyncio.sleep(POLL_EVERY * 3)
        done.set()
        await asyncio.gather(*pollers)
    return [(at - _ts(updated)) * 1000 for found in seen.values() for at, updated in found[1:]]


# --- one backend --------------------------------------------------------------------------------


def run_backend(
    backend: str, tmp: Path, api: str, orgs: list[Org], sub_json: Json, bare_kib: float
) -> None:
    """Memory, commit to message, and the polling baseline on one backend."""
    from harness.api import token
    from harness.servers import settings_env
    from harness.stack import suite_settings

    idle = [f"org_idle_{i}" for i in range(SUBSCRIPTIONS - 2 * ACTIVE_ORGS)]
    subscribers = [Subscriber(o.org) for o in orgs for _ in range(2)] + [
        Subscriber(o) for o in idle
    ]
    tokens = {s.org: token(s.org, ttl=3600) for s in subscribers}
    with database(backend, tmp, "live") as url:
        env = settings_env(suite_settings(database_url=url, stripe_api_base=api))
        with service(env, tmp / f"{backend}_service.stderr") as server:
            asyncio.run(link_all(server.url, orgs, sub_json))
            time.sleep(2)  # the links applied

            async def measure() -> tuple[float, list[float], list[Subscriber]]:
                kib, tasks = await memory_per_connection(
                    server.url, server.process.pid, subscribers, tokens
                )
                await make_changes(api, server.url, orgs, sub_json)
                await asyncio.sleep(3)  # the last changes applied and pushed
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return kib, delays_ms(subscribers), subscribers

            kib, pushed, subs = asyncio.run(measure())
            polled = asyncio.run(poll_baseline(server.url, orgs, tokens, api, sub_json))
            server.alive()
        report_stderr(f"{backend} server", server.stderr)
    print(
        f"{backend} memory: {kib:.1f} KiB per open subscription ({SUBSCRIPTIONS:,} open)"
        f" | baseline (bare graphql-transport-ws server) {bare_kib:.1f} KiB"
        f" | ratio {kib / bare_kib:.2f}x",
        flush=True,
    )
    p50, p99 = percentile(pushed, 50), percentile(pushed, 99)
    b50, b99 = percentile(polled, 50), percentile(polled, 99)
    print(
        f"{backend} commit to message: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(pushed)} messages,"
        f" {CHANGES} changes, {SUBSCRIPTIONS:,} open) | baseline (polling every {POLL_EVERY:g} s)"
        f" p50 {b50:.0f} ms, p99 {b99:.0f} ms | ratio {p50 / b50:.3f}x p50, {p99 / b99:.3f}x p99",
        flush=True,
    )
    print(f"{backend} correctness: {check(subs)}", flush=True)


def check(subscribers: list[Subscriber]) -> str:
    """Every subscription: its first message, then one per change of its org, nothing else."""
    per_org = CHANGES // ACTIVE_ORGS
    wrong = []
    for s in subscribers:
        expected = 1 + (per_org if s.org.startswith("org_live_") else 0)
        values = [data for _, data in s.received]
        repeats = sum(1 for a, b in itertools.pairwise(values) if a == b)
        if len(values) != expected or repeats:
            wrong.append(f"{s.org}: {len(values)} messages, {repeats} repeated")
    if wrong:
        return f"{len(wrong)} subscriptions WRONG, e.g. {wrong[:3]}"
    return (
        f"all {len(subscribers):,} got their first message and then exactly one per change"
        f" ({per_org} per active org, 0 for idle ones); no repeated message"
    )


def bare_memory(tmp: Path) -> float:
    """KiB per connection of the bare server, measured like the service's."""
    with bare_server(tmp) as bare:
        subscribers = [Subscriber(f"org_bare_{i}") for i in range(SUBSCRIPTIONS)]

        async def measure() -> float:
            kib, tasks = await memory_per_connection(bare.url, bare.process.pid, subscribers, None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return kib

        return asyncio.run(measure())


def pin_to_cpu1() -> None:
    """Run this process (the clients) on CPU 1, beside the emulator, away from the server."""
    if PINNED:
        os.sched_setaffinity(0, {1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    backends = [args.backend] if args.backend else ["sqlite"]
    if not args.backend and os.environ.get("TEST_DATABASE_URL"):
        backends.append("postgresql")
    if "postgresql" in backends and not os.environ.get("TEST_DATABASE_URL"):
        raise SystemExit("--backend postgresql needs TEST_DATABASE_URL")

    pin_to_cpu1()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        with emulator(tmp) as stripe:
            from billing.kit.migrations import migrate
            from harness.stack import seed, suite_settings

            seed_db = f"sqlite+aiosqlite:///{tmp / 'seed.db'}"
            migrate(seed_db)
            seed(suite_settings(database_url=seed_db, stripe_api_base=stripe.url))
            orgs = active_orgs(stripe.url)
            sub_json = subscriptions_json(stripe.url, orgs)
            bare_kib = bare_memory(tmp)
            for backend in backends:
                run_backend(backend, tmp, stripe.url, orgs, sub_json, bare_kib)


def subscriptions_json(api: str, orgs: list[Org]) -> Json:
    """Each active org's subscription as Stripe returns it (what the events carry)."""
    found = {}
    with httpx.Client(base_url=api, headers={"authorization": "Bearer sk_test_suite"}) as http:
        for org in orgs:
            found[org.org] = http.get(f"/v1/subscriptions/{org.subscription}").json()
    return found


if __name__ == "__main__":
    main()
