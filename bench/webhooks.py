"""The webhook: deliveries acknowledged per second, and a burst drained under Stripe's rate limit.

Acknowledgements: `python main.py serve` on CPU 0, `wrk` (1 thread, 16 connections) on CPU 1
over 40,000 distinct pre-signed `customer.subscription.updated` deliveries for 2,000 customers
the emulator knows, so events are applied while acks are measured: in two shapes, the default
(the API process applies them too, on the same CPU) and WEBHOOK_APPLIER=worker with
`python main.py worker` on CPU 1; against a hand-written Starlette route (`baseline_app`
below: the same `verify_webhook`, then one INSERT with the raw driver, one transaction per
delivery) under the same uvicorn flags.

Burst: 10,000 deliveries (7,000 distinct events over the 2,000 customers, 3,000 duplicates,
shuffled) at concurrency 16 against a fresh service; deliveries acknowledged per second while
they arrive (the applier working meanwhile at the service's Stripe rate); then until nothing
is pending: Stripe requests per customer and kind (subscriptions, active entitlements), 429s,
the busiest second, the drain time against its floor (2,000 customers x 2 reads / the rate)
and every org's entitlement against Stripe.

Rates (`--rate`, both by default): STRIPE_RATE_LIMIT=20 with the emulator answering 429 above
25/s (Stripe's test mode), and STRIPE_RATE_LIMIT=80 with 429 above 100/s (live mode), where
the applier has four times the work to do on the server's CPU while deliveries arrive.

Crash: the same burst, the server SIGKILLed once half the deliveries were answered and again
once half the stored events were applied, restarted each time on the same database; what got
no answer is sent again (as Stripe would). Then: acknowledged events missing, every org against
Stripe, and every event applied exactly once.

Run: ``.venv/bin/python bench/webhooks.py [--backend sqlite|postgresql] [--part acks|burst|crash]
[--rate 20|80]`` (PostgreSQL too when TEST_DATABASE_URL is set; needs ``wrk``). The crash runs
at the highest rate asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from billing.gateway.client import InvalidSignature, verify_webhook  # noqa: E402

CUSTOMERS = 2_000
ACK_EVENTS = 40_000
"""Distinct deliveries wrk cycles through while measured (more than 5 s can take)."""
WARM_EVENTS = 4_000
BURST_DISTINCT = 7_000
BURST_DUPLICATES = 3_000
CONNECTIONS = 16
SECONDS = 5
RATES = {20.0: 25.0, 80.0: 100.0}
"""STRIPE_RATE_LIMIT of the service -> the emulator's 429 token bucket: Stripe's test-mode
limit (25/s) above the test-mode default, its live-mode limit (100/s) above the live one."""
ACK_GOAL = 1_000
KINDS = 2
"""Stripe reads per apply: the subscription list and the active entitlements, side by side."""
REQUESTS_GOAL = 1.5
"""Stripe requests per customer per kind."""
DRAIN_GOAL = 1.5
WEBHOOK_PATH = "/webhooks/stripe"
PENDING_SQL = "SELECT count(*) AS n FROM webhook_events WHERE status IN ('received', 'failed')"
APPLIED_SQL = "SELECT count(*) AS n FROM webhook_events WHERE status = 'processed'"
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
DELIVER_LUA = """\
-- Cycles through pre-signed webhook deliveries, one line "signature<TAB>body" each.
local requests = {}
local index = 0
function init(args)
  local path = args[1]
  local offset, stride = tonumber(args[2] or "0"), tonumber(args[3] or "1")
  local n = 0
  for line in io.lines(path) do
    if n % stride == offset then
      local tab = line:find("\\t", 1, true)
      local headers = {
        ["Content-Type"] = "application/json", ["Stripe-Signature"] = line:sub(1, tab - 1)
      }
      requests[#requests + 1] = wrk.format("POST", "/webhooks/stripe", headers, line:sub(tab + 1))
    end
    n = n + 1
  end
end
function request()
  index = index % #requests + 1
  return requests[index]
end
"""


# --- the baseline: verify, then one INSERT per delivery with the raw driver -------------------

BASELINE_INSERT = (
    "INSERT INTO webhook_events (id, type, created, customer_id, payload, status, attempts,"
    " received_at) VALUES ({}) ON CONFLICT (id) DO NOTHING RETURNING id"
)


def _sqlite_time(value: datetime) -> str:
    """A timestamp as SQLAlchemy stores it in SQLite."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def baseline_app() -> Starlette:
    """`uvicorn --factory bench.webhooks:baseline_app`: POST /webhooks/stripe verified with the
    service's `verify_webhook`, stored with aiosqlite or asyncpg, one transaction each.

    Configured by BENCH_DATABASE_URL (the service's SQLAlchemy URL) and BENCH_WEBHOOK_SECRET."""
    import aiosqlite
    import asyncpg

    url = os.environ["BENCH_DATABASE_URL"]
    secrets = [os.environ["BENCH_WEBHOOK_SECRET"]]
    sqlite = url.startswith("sqlite")
    db: dict[str, Any] = {}
    lock = asyncio.Lock()  # one aiosqlite connection: one transaction at a time

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if sqlite:
            conn = await aiosqlite.connect(url.split(":///", 1)[1])
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
                await conn.execute(f"PRAGMA {pragma}")
            db["sqlite"] = conn
        else:
            dsn = url.replace("postgresql+asyncpg://", "postgresql://")
            db["pool"] = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
        yield
        if sqlite:
            await db["sqlite"].close()
        else:
            await db["pool"].close()

    sqlite_sql = BASELINE_INSERT.format(", ".join("?" * 8))
    postgres_sql = BASELINE_INSERT.format(", ".join(f"${n}" for n in range(1, 9)))

    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            event = verify_webhook(body, request.headers.get("stripe-signature"), secrets, 300)
        except InvalidSignature as exc:
            return JSONResponse({"error": f"invalid signature: {exc}"}, status_code=400)
        customer = event["data"]["object"].get("customer")
        created = datetime.fromtimestamp(event["created"], UTC)
        now = datetime.now(UTC)
        values = [event["id"], event["type"], created, customer, body.decode(), "received", 0, now]
        if sqlite:
            values[2], values[7] = _sqlite_time(created), _sqlite_time(now)
            async with lock:
                cursor = await db["sqlite"].execute(sqlite_sql, values)
                new = await cursor.fetchone() is not None
                await cursor.close()
                await db["sqlite"].commit()
        else:
            new = await db["pool"].fetchval(postgres_sql, *values) is not None
        return JSONResponse({"received": True, "duplicate": not new})

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route(WEBHOOK_PATH, webhook, methods=["POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )


# --- processes: the emulator, the service, the baseline, wrk ----------------------------------


@dataclass
class Proc:
    """A running server: its URL, process and stderr file."""

    url: str
    process: subprocess.Popen[bytes]
    stderr: Path

    def alive(self) -> None:
        """Raise with the tail of its stderr if it exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.url} exited: {self.stderr.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL (a crash: no shutdown of any kind), and wait until it is gone."""
        self.process.kill()
        self.process.wait()


def stop(popen: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    popen.terminate()
    try:
        popen.wait(timeout=15)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


@contextmanager
def process(
    cmd: list[str], env: dict[str, str], cpu: int, stderr: Path, probe: str
) -> Iterator[Proc]:
    """A server pinned to a CPU (when pinning is possible), up until the block ends."""
    from harness.servers import free_port

    port = free_port()
    pin = ["taskset", "-c", str(cpu)] if PINNED else []
    with stderr.open("wb") as err:
        popen = subprocess.Popen(
            [*pin, *(arg.replace("{port}", str(port)) for arg in cmd)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    proc = Proc(f"http://127.0.0.1:{port}", popen, stderr)
    try:
        deadline = time.monotonic() + 30
        while True:
            proc.alive()
            try:
                if httpx.get(f"{proc.url}{probe}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd} never answered {probe}")
            time.sleep(0.05)
        yield proc
    finally:
        stop(popen)


def emulator(tmp: Path) -> Any:
    """The Stripe emulator in a process of its own (its request log's times are then not
    skewed by this process's GIL), on CPU 1 with wrk and the burst's client."""
    cmd = [sys.executable, "-m", "emulator", "--port", "{port}", "--log-level", "warning"]
    return process(cmd, {}, 1, tmp / "emulator.stderr", "/_emulator/clock")


def service(env: dict[str, str], stderr: Path) -> Any:
    """`python main.py serve --no-access-log` on CPU 0."""
    cmd = [sys.executable, "main.py", "serve", "--port", "{port}", "--no-access-log"]
    return process(cmd, env, 0, stderr, "/healthz")


@contextmanager
def worker(env: dict[str, str], stderr: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python main.py worker` on CPU 1, stopped (SIGTERM) when the block ends."""
    pin = ["taskset", "-c", "1"] if PINNED else []
    with stderr.open("wb") as err:
        popen = subprocess.Popen(
            [*pin, sys.executable, "main.py", "worker"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield popen
    finally:
        stop(popen)


def uvicorn_factory(factory: str, env: dict[str, str], stderr: Path, *flags: str) -> Any:
    """An app factory under uvicorn with the service's flags (uvloop, httptools, no access log),
    on CPU 0."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        *flags,
    ]
    return process(cmd, env, 0, stderr, "/healthz")


def baseline(env: dict[str, str], stderr: Path) -> Any:
    """`baseline_app` under uvicorn with the service's flags."""
    return uvicorn_factory("bench.webhooks:baseline_app", env, stderr)


def complaints(stderr: Path) -> list[str]:
    """The lines of a server's stderr that are warnings, errors or tracebacks."""
    found = []
    for line in stderr.read_text(errors="replace").splitlines():
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback", line):
            found.append(line)
    return found


@dataclass
class Round:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu: float = float("nan")
    """Share of one CPU the server used during the run."""
    applied: int = 0
    """Events the service applied by the end of the run."""


def _percentile_ms(out: str, percent: int) -> float:
    """A latency percentile of wrk's `--latency` report ('812.00us', '3.21ms', '1.02s')."""
    found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {percent}% latency in wrk's report:\n{out}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, lua: Path, lines: Path, seconds: int) -> Round:
    """One wrk run cycling through the signed deliveries in `lines`."""
    pin = ["taskset", "-c", "1"] if PINNED else []
    cmd = [*pin, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(lua)]
    out = subprocess.run(
        [*cmd, f"{url}{WEBHOOK_PATH}", "--", str(lines)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise RuntimeError(f"no throughput in wrk's report:\n{out}")
    return Round(
        float(rps.group(1)), _percentile_ms(out, 50), _percentile_ms(out, 99), int(total.group(1))
    )


# --- Stripe's side: 2,000 customers with a Pro subscription -----------------------------------


@dataclass(frozen=True)
class Customer:
    """An org's customer in the emulator and its subscription as Stripe returned it."""

    org: str
    id: str
    subscription: dict[str, Any]


def make_customers(api: str, tmp: Path) -> list[Customer]:
    """Seed the catalog, then one customer (metadata org_id) with a Pro subscription per org."""
    from billing.kit.migrations import migrate
    from harness.stack import seed, suite_settings
    from harness.stripe_side import price_id, stripe_sdk

    url = f"sqlite+aiosqlite:///{tmp / 'seed.db'}"  # the catalog sync opens a database
    migrate(url)
    seed(suite_settings(database_url=url, stripe_api_base=api))
    sdk = stripe_sdk(api)
    price = price_id(sdk, "pro_monthly")

    def create(i: int) -> Customer:
        org = f"org_bench_{i}"
        customer = sdk.v1.customers.create(params={"metadata": {"org_id": org}})
        sub = sdk.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price}]}
        )
        assert sub.last_response is not None
        return Customer(org, customer.id, json.loads(sub.last_response.body))

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(create, range(CUSTOMERS)))


def stripe_subscriptions(api: str) -> dict[str, tuple[str, str]]:
    """Every subscription in the emulator: customer -> (plan slug, status)."""
    from harness.stripe_side import stripe_sdk

    plans = tomllib.loads((ROOT / "plans.toml").read_text())["plans"]
    slugs = {
        price["lookup_key"]: slug
        for slug, plan in plans.items()
        for price in plan.get("prices", {}).values()
    }
    found = {}
    listing = stripe_sdk(api).v1.subscriptions.list(params={"status": "all", "limit": 100})
    for sub in listing.auto_paging_iter():
        key = sub["items"].data[0].price.lookup_key
        found[str(sub.customer)] = (slugs.get(key, str(key)), str(sub.status))
    return found


# --- deliveries ---------------------------------------------------------------------------------


def _invoice(customer: Customer) -> dict[str, Any]:
    """The paid invoice of a customer's subscription, in Stripe's shape (what invoice.paid
    carries: its customer and subscription)."""
    sub = customer.subscription
    return {
        "id": sub.get("latest_invoice") or f"in_{uuid.uuid4().hex[:24]}",
        "object": "invoice",
        "customer": customer.id,
        "status": "paid",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub["id"], "metadata": {}},
        },
    }


def ack_bodies(customers: list[Customer], n: int) -> list[bytes]:
    """`customer.subscription.updated` events, round robin over the customers."""
    from harness.signing import event_body

    return [
        event_body("customer.subscription.updated", customers[i % len(customers)].subscription)
        for i in range(n)
    ]


def burst_bodies(customers: list[Customer], rng: random.Random) -> list[bytes]:
    """BURST_DISTINCT events: one per customer at least, the rest spread at random; a
    customer's events share a `created` second or follow it by one."""
    from harness.signing import event_body

    counts = Counter(range(len(customers)))
    counts.update(rng.choices(range(len(customers)), k=BURST_DISTINCT - len(customers)))
    base = int(time.time()) - 120
    bodies = []
    for index, count in counts.items():
        customer = customers[index]
        second = base + rng.randrange(60)
        for k in range(count):
            kind = (
                "customer.subscription.created"
                if k == 0
                else rng.choice(["customer.subscription.updated", "invoice.paid"])
            )
            obj = _invoice(customer) if kind == "invoice.paid" else customer.subscription
            bodies.append(event_body(kind, obj, created=second + rng.choice([0, 0, 1])))
    return bodies


def write_signed(bodies: list[bytes], path: Path) -> None:
    """One "signature<TAB>body" line per delivery, signed now, for deliver.lua."""
    from harness.signing import WEBHOOK_SECRET, sign

    with path.open("w") as out:
        for body in bodies:
            out.write(f"{sign(body, WEBHOOK_SECRET)}\t{body.decode()}\n")


@dataclass
class Delivered:
    """What the burst's client saw."""

    started: float
    last_ack: float
    duplicates: int
    unacknowledged: list[tuple[str, bytes]]
    """Deliveries that got no answer (the server died): Stripe would send them again."""


async def deliver(
    url: str, deliveries: list[tuple[str, bytes]], kill_after: Proc | None = None
) -> Delivered:
    """Every delivery once over CONNECTIONS keep-alive connections; when the last one was
    acknowledged. With `kill_after`, that server is SIGKILLed once half the deliveries were
    acknowledged, and the rest are returned unacknowledged.

    A few lines of HTTP/1.1 on asyncio streams rather than httpx.AsyncClient: with 16
    requests in flight httpx (0.28, httpcore 1.0) spends about 6 ms of CPU per request here,
    which caps the client near 170 deliveries/s, far below what the service acknowledges."""
    host, port = url.removeprefix("http://").split(":")
    pending = iter(deliveries)
    seen = {"duplicates": 0, "last": 0.0, "acks": 0}
    unacknowledged: list[tuple[str, bytes]] = []

    async def post(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, signature: str, body: bytes
    ) -> None:
        """One delivery on an open connection, answered 200."""
        writer.write(
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nStripe-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(":", 1) for line in head[1:] if ":" in line)
        answer = await reader.readexactly(int(fields["content-length"]))
        status = int(head[0].split()[1])
        if status != 200:
            raise RuntimeError(f"delivery answered {status}: {answer[:300]!r}")
        seen["last"] = max(seen["last"], time.time())
        seen["duplicates"] += bool(json.loads(answer)["duplicate"])
        seen["acks"] += 1
        if kill_after is not None and seen["acks"] == len(deliveries) // 2:
            kill_after.kill()

    async def connection() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            if kill_after is None:
                raise
            return
        try:
            for signature, body in pending:
                try:
                    await post(reader, writer, signature, body)
                except (OSError, asyncio.IncompleteReadError):
                    if kill_after is None:
                        raise
                    unacknowledged.append((signature, body))
                    return
        finally:
            writer.close()

    started = time.time()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    unacknowledged.extend(pending)
    return Delivered(started, seen["last"], int(seen["duplicates"]), unacknowledged)


async def pending_count(url: str) -> int:
    """Stored events not applied yet."""
    return int((await query(url, PENDING_SQL))[0]["n"])


async def until_pending(url: str, most: int, server: Proc, within: float) -> None:
    """Wait until at most `most` stored events are pending, polling on one engine (a new
    PostgreSQL connection per poll would cost the database, which shares the CPUs, a fork)."""
    engine = create_async_engine(url)
    deadline = time.monotonic() + within
    try:
        while True:
            async with engine.connect() as conn:
                pending = (await conn.execute(text(PENDING_SQL))).scalar_one()
            if pending <= most:
                return
            server.alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} events still pending after {within:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def query(url: str, sql: str) -> list[dict[str, Any]]:
    """Rows of one query."""
    from harness.db import rows

    return await rows(url, sql)


def _utc(value: Any) -> datetime:
    """A timestamp from either backend (SQLite hands back naive text) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def busiest_second(times: list[float]) -> int:
    """The most requests in any sliding 1-second window."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- databases ------------------------------------------------------------------------------


async def _admin(url: str, statement: str) -> None:
    """CREATE/DROP DATABASE outside a transaction."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


@contextmanager
def database(backend: str, tmp: Path, label: str) -> Iterator[str]:
    """A fresh, migrated database of this backend, dropped (PostgreSQL) when the block ends."""
    from billing.kit.migrations import migrate

    if backend == "sqlite":
        for leftover in tmp.glob(f"{label}.db*"):  # a database of this label is always fresh
            leftover.unlink()
        url = f"sqlite+aiosqlite:///{tmp / f'{label}.db'}"
        admin = None
    else:
        server_url = make_url(os.environ["TEST_DATABASE_URL"])
        name = f"billing_bench_{label}_{uuid.uuid4().hex[:12]}"
        admin = server_url.render_as_string(hide_password=False)
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        url = server_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        if admin is not None:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def service_env(url: str, api: str, rate: float) -> dict[str, str]:
    """The service's environment: the suite's settings on this database and emulator."""
    from harness.servers import settings_env
    from harness.stack import suite_settings

    settings = suite_settings(database_url=url, stripe_api_base=api, stripe_rate_limit=rate)
    return settings_env(settings)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report_stderr(label: str, stderr: Path) -> None:
    """One line: what a server complained about (the first few lines, if any)."""
    lines = complaints(stderr)
    print(f"{label}: {len(lines)} warning/error lines in stderr", flush=True)
    for line in lines[:5]:
        print(f"    {line[:300]}", flush=True)


# --- the two measurements -------------------------------------------------------------------


@dataclass
class Bench:
    """What one backend's runs share: its folder, the emulator, the customers, and the
    baseline's acknowledgements once measured (it does not depend on the Stripe rate)."""

    backend: str
    tmp: Path
    api: str
    customers: list[Customer]
    control: Any
    baseline: Round | None = None


def run_backend(
    backend: str,
    tmp: Path,
    api: str,
    customers: list[Customer],
    parts: list[str],
    rates: list[float],
) -> None:
    """The measurements asked for on one backend, at each Stripe rate asked for."""
    from emulator.client import EmulatorControl

    bench = Bench(backend, tmp, api, customers, EmulatorControl(api))
    for rate in rates:
        if "acks" in parts:
            acks(bench, rate)
        if "burst" in parts:
            burst(bench, rate)
    if "crash" in parts:
        crash(bench, max(rates))
    bench.control.close()


SIDES = {
    "service": "applier in the server",
    "split": "WEBHOOK_APPLIER=worker, `main.py worker` on CPU 1",
    "baseline": "",
}
"""The shapes measured: the default (the API process applies too), the API with the applier
in a worker process of its own, and the hand-written route."""


def acks(bench: Bench, rate: float) -> None:
    """Deliveries acknowledged per second by the service (both shapes) and by the baseline."""
    backend, tmp = bench.backend, bench.tmp
    bench.control.rate_limit(RATES[rate])
    lua = tmp / "deliver.lua"
    lua.write_text(DELIVER_LUA)
    warm, lines = tmp / "warm.txt", tmp / "deliveries.txt"
    write_signed(ack_bodies(bench.customers, WARM_EVENTS), warm)
    write_signed(ack_bodies(bench.customers, ACK_EVENTS), lines)

    results: dict[str, Round] = {}
    for side in SIDES:
        if side == "baseline" and bench.baseline is not None:
            results[side] = bench.baseline
            continue
        with database(backend, tmp, f"{side}_{rate:g}_acks") as url, ExitStack() as stack:
            stderr = tmp / f"{backend}_{side}_{rate:g}_acks.stderr"
            if side == "baseline":
                from harness.signing import WEBHOOK_SECRET

                env = {"BENCH_DATABASE_URL": url, "BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET}
                server = stack.enter_context(baseline(env, stderr))
            else:
                env = service_env(url, bench.api, rate)
                if side == "split":
                    env["WEBHOOK_APPLIER"] = "worker"
                    stack.enter_context(worker(env, tmp / f"{backend}_worker.stderr"))
                server = stack.enter_context(service(env, stderr))
            wrk(server.url, lua, warm, 1)
            used, started = cpu_seconds(server.process.pid), time.monotonic()
            results[side] = wrk(server.url, lua, lines, SECONDS)
            elapsed = time.monotonic() - started
            results[side].cpu = (cpu_seconds(server.process.pid) - used) / elapsed
            server.alive()
            applied = asyncio.run(query(url, APPLIED_SQL))[0]["n"] if side != "baseline" else 0
        if results[side].requests > ACK_EVENTS:
            print(f"  ({side}: {results[side].requests:,} requests > {ACK_EVENTS:,} events)")
        if side != "baseline":
            report_stderr(f"{backend} {side} at {rate:g}/s (acks)", stderr)
            results[side].applied = int(applied)
    base = bench.baseline = results["baseline"]
    for side, shape in SIDES.items():
        if side == "baseline":
            continue
        ours = results[side]
        print(
            f"{backend} acks at STRIPE_RATE_LIMIT={rate:g} ({shape}): {ours.rps:>7,.0f} req/s"
            f"  p50 {ours.p50_ms:6.2f} ms  p99 {ours.p99_ms:6.2f} ms (CPU {ours.cpu:.0%};"
            f" {ours.applied:,} events applied meanwhile)   | baseline {base.rps:>7,.0f} req/s"
            f"  p50 {base.p50_ms:6.2f} ms  p99 {base.p99_ms:6.2f} ms (CPU {base.cpu:.0%})"
            f"   | ratio {ours.rps / base.rps:4.2f}x req/s, {ours.p99_ms / base.p99_ms:4.2f}x p99"
            f"   | goal >= {ACK_GOAL:,}/s: {_met(ours.rps >= ACK_GOAL)}",
            flush=True,
        )


def burst_deliveries(customers: list[Customer], rng: random.Random) -> list[tuple[str, bytes]]:
    """The burst: BURST_DISTINCT signed events plus BURST_DUPLICATES of them again, shuffled."""
    from harness.signing import WEBHOOK_SECRET, sign

    signed = [(sign(body, WEBHOOK_SECRET), body) for body in burst_bodies(customers, rng)]
    deliveries = signed + rng.sample(signed, BURST_DUPLICATES)
    rng.shuffle(deliveries)
    return deliveries


def stripe_requests(control: Any) -> list[dict[str, Any]]:
    """The emulator's log of Stripe API requests since it was last cleared."""
    return [r for r in control.requests() if str(r["path"]).startswith("/v1/")]


def burst(bench: Bench, rate: float) -> None:
    """10,000 deliveries, then the drain, on a fresh database and service."""
    backend, control = bench.backend, bench.control
    deliveries = burst_deliveries(bench.customers, random.Random(20_000))
    floor = CUSTOMERS * KINDS / rate
    with database(backend, bench.tmp, f"burst_{rate:g}") as url:
        stderr = bench.tmp / f"{backend}_{rate:g}_burst.stderr"
        with service(service_env(url, bench.api, rate), stderr) as server:
            control.rate_limit(RATES[rate])
            control.clear_requests()
            delivered = asyncio.run(deliver(server.url, deliveries))
            meanwhile = int(asyncio.run(query(url, APPLIED_SQL))[0]["n"])
            asyncio.run(until_pending(url, 0, server, within=max(600.0, 5 * floor)))
            log = stripe_requests(control)
        report_stderr(f"{backend} service at {rate:g}/s (burst)", stderr)
        last = asyncio.run(query(url, "SELECT max(processed_at) AS at FROM webhook_events"))
        outcome = converged(url, bench.api, bench.customers, control, rate)

    label = f"{backend} burst at STRIPE_RATE_LIMIT={rate:g}"
    seconds = delivered.last_ack - delivered.started
    per_second = len(deliveries) / seconds
    versus = (
        f", {per_second / bench.baseline.rps:.2f}x the baseline's {bench.baseline.rps:,.0f}/s"
        if bench.baseline is not None
        else ""
    )
    print(
        f"{label}: {len(deliveries):,} deliveries ({BURST_DISTINCT:,} distinct,"
        f" {BURST_DUPLICATES:,} duplicates; {delivered.duplicates:,} answered duplicate)"
        f" acknowledged in {seconds:.2f} s: {per_second:,.0f}/s while the applier worked"
        f" ({meanwhile:,} events applied by the last ack{versus};"
        f" goal >= {ACK_GOAL:,}/s: {_met(per_second >= ACK_GOAL)})",
        flush=True,
    )
    report_requests(label, log)
    times = [float(r["time"]) for r in log]
    during = busiest_second([t for t in times if t <= delivered.last_ack])
    after = busiest_second([t for t in times if t > delivered.last_ack])
    most = busiest_second(times)
    print(
        f"{label}: at most {most} Stripe requests in any 1 s window at the emulator"
        f" ({during} while deliveries arrived, {after} after the last ack;"
        f" emulator 429 above {RATES[rate]:g}/s; goal <= {rate:g}: {_met(most <= rate)})",
        flush=True,
    )
    finished = _utc(last[0]["at"]).timestamp()
    drain, whole = finished - delivered.last_ack, finished - delivered.started
    print(
        f"{label}: drained {drain:.1f} s after the last ack; floor {CUSTOMERS:,}"
        f" x {KINDS} reads / {rate:g} per s = {floor:.0f} s: {drain / floor:.2f}x"
        f" (goal <= {DRAIN_GOAL}x: {_met(drain / floor <= DRAIN_GOAL)});"
        f" {whole:.1f} s from the first delivery ({whole / floor:.2f}x)",
        flush=True,
    )
    print(f"{label}: {outcome}", flush=True)


def crash(bench: Bench, rate: float) -> None:
    """The burst with two SIGKILLs: once half the deliveries were acknowledged (the restarted
    server is sent what got no answer, as Stripe would), and once half the stored events were
    applied (applies in flight die with it); a third server drains what is left."""
    backend, control, tmp = bench.backend, bench.control, bench.tmp
    deliveries = burst_deliveries(bench.customers, random.Random(30_000))
    floor = CUSTOMERS * KINDS / rate
    with database(backend, tmp, f"crash_{rate:g}") as url:
        env = service_env(url, bench.api, rate)
        control.rate_limit(RATES[rate])
        control.clear_requests()
        with service(env, tmp / f"{backend}_crash_1.stderr") as first:
            cut = asyncio.run(deliver(first.url, deliveries, kill_after=first))
        unanswered = Counter(body for _, body in cut.unacknowledged)
        sent = Counter(body for _, body in deliveries)
        acknowledged = {json.loads(body)["id"] for body in sent if sent[body] > unanswered[body]}
        stored = {r["id"] for r in asyncio.run(query(url, "SELECT id FROM webhook_events"))}
        lost = len(acknowledged - stored)
        with service(env, tmp / f"{backend}_crash_2.stderr") as second:
            again = asyncio.run(deliver(second.url, cut.unacknowledged))
            pending = asyncio.run(pending_count(url))
            asyncio.run(until_pending(url, pending // 2, second, within=5 * floor))
            second.kill()
        left = asyncio.run(pending_count(url))
        stderr = tmp / f"{backend}_crash_3.stderr"
        with service(env, stderr) as third:
            asyncio.run(until_pending(url, 0, third, within=max(600.0, 5 * floor)))
            log = stripe_requests(control)
        report_stderr(f"{backend} service (crash, after the restarts)", stderr)
        outcome = converged(url, bench.api, bench.customers, control, rate)

    label = f"{backend} crash at STRIPE_RATE_LIMIT={rate:g}"
    print(
        f"{label}: SIGKILL after {len(deliveries) - len(cut.unacknowledged):,} of"
        f" {len(deliveries):,} deliveries answered; {lost} acknowledged events missing"
        f" (goal 0: {_met(lost == 0)}); the {len(cut.unacknowledged):,} unanswered sent again"
        f" to the restarted server ({len(again.unacknowledged)} unanswered there); SIGKILL again"
        f" with {left:,} of {pending:,} events pending; a third server drained the rest",
        flush=True,
    )
    report_requests(label, log)
    print(f"{label}: {outcome}", flush=True)


def report_requests(label: str, log: list[dict[str, Any]]) -> None:
    """One line: the Stripe requests by kind, per customer, and the 429s among them."""
    kinds = Counter(
        "GET /v1/subscriptions"
        if r["method"] == "GET" and r["path"] == "/v1/subscriptions"
        else "GET /v1/customers/{id}"
        if r["method"] == "GET" and str(r["path"]).startswith("/v1/customers/")
        else f"{r['method']} {r['path']}"
        for r in log
    )
    per_customer = len(log) / CUSTOMERS / KINDS
    throttled = sum(1 for r in log if r["status"] == 429)
    print(
        f"{label}: {len(log):,} Stripe requests ("
        + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common())
        + f"): {len(log) / CUSTOMERS:.2f} per customer, {per_customer:.2f} per customer and"
        f" kind (goal <= {REQUESTS_GOAL}: {_met(per_customer <= REQUESTS_GOAL)});"
        f" 429s: {throttled}",
        flush=True,
    )


def converged(url: str, api: str, customers: list[Customer], control: Any, rate: float) -> str:
    """Every org's entitlement against Stripe, and the stored events by status and attempts."""
    control.rate_limit(0)
    stripe = stripe_subscriptions(api)
    control.rate_limit(RATES[rate])
    events = asyncio.run(
        query(
            url,
            "SELECT status, attempts, count(*) AS n FROM webhook_events GROUP BY status, attempts",
        )
    )
    rows = asyncio.run(
        query(url, "SELECT org_id, plan, status, stripe_customer_id FROM entitlements")
    )
    ours = {r["org_id"]: (r["plan"], r["status"], r["stripe_customer_id"]) for r in rows}
    mismatches = sum(
        1
        for c in customers
        if ours.get(c.org) != (*stripe.get(c.id, ("?", "?")), c.id)
        or stripe.get(c.id) != ("pro", "active")
    )
    counts = {(r["status"], int(r["attempts"])): int(r["n"]) for r in events}
    clean = counts == {("processed", 1): BURST_DISTINCT}
    return (
        f"entitlements vs Stripe: {mismatches} mismatches of {CUSTOMERS:,}"
        f" (goal 0: {_met(mismatches == 0)}); events: "
        + ", ".join(f"{n:,} {s} (attempts {a})" for (s, a), n in sorted(counts.items()))
        + (
            f" (goal: {BURST_DISTINCT:,} processed once: met)"
            if clean
            else f"  <- expected {BURST_DISTINCT:,} processed with attempts 1: NOT met"
        )
    )


def main() -> None:
    """Run on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--part", choices=["acks", "burst", "crash"], action="append")
    parser.add_argument("--rate", type=float, choices=list(RATES), action="append")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/webhooks.py needs wrk: apt-get install wrk")
    backends = args.backend or (
        ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]
    )
    rates = args.rate or list(RATES)
    if PINNED:
        os.sched_setaffinity(0, {1})  # the burst's client and the emulator stay off CPU 0
    print(
        f"{os.cpu_count()} CPUs; server pinned to CPU 0; wrk (1 thread, {CONNECTIONS}"
        f" connections, {SECONDS} s), the emulator and the burst's client on CPU 1"
        + ("" if PINNED else " (not pinned: taskset or a 2nd CPU missing)")
        + f"; load average {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp_name, emulator(Path(tmp_name)) as emu:
        tmp = Path(tmp_name)
        started = time.monotonic()
        customers = make_customers(emu.url, tmp)
        print(
            f"setup: {CUSTOMERS:,} customers with a Pro subscription in the emulator in"
            f" {time.monotonic() - started:.1f} s",
            flush=True,
        )
        parts = args.part or ["acks", "burst", "crash"]
        for backend in backends:
            run_backend(backend, tmp, emu.url, customers, parts, rates)


if __name__ == "__main__":
    main()
