"""`entitlement` and `plans` over HTTP against hand-written routes and a bare ASGI ceiling,
in the same run.

The service (`python main.py serve`, production settings, one worker), the baseline of
bench/baseline.py (FastAPI routes with the raw driver, no GraphQL, no ORM, no token check) and
the ceiling of bench/ceiling.py (a bare ASGI app answering the service's bytes, no work at
all) run one at a time, pinned to CPU 0, under the same uvicorn options (uvloop, httptools,
access log on; the service and the ceiling once more without the access log, which costs a
fixed share of every request); `wrk` drives them from CPU 1 with the same connections, body
and Lua script, in alternating rounds, each run after a warm-up run as long. Cases:

- `entitlement`: one token, one org (each request picks at random from a list of one);
- `entitlement, 20,000 users`: 20,000 users' tokens over 5,000 orgs, read from a file, a
  random one per request, against the one-token figure;
- `plans`: the catalog, no token.

Prints requests/s, p50 and p99 per server and the ratios, for SQLite and, when
TEST_DATABASE_URL is set, for PostgreSQL (asyncpg baseline).

Also prints how soon a commit by another process shows, and the in-process cost of an answer
from memory and of one recomputed after a change.

Run: ``.venv/bin/python bench/entitlement.py [--seconds 5] [--rounds 3]`` (needs `wrk`:
``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402
from sqlalchemy import make_url, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from billing.kit.auth import VERIFIED_TOKENS  # noqa: E402
from billing.kit.migrations import migrate  # noqa: E402
from server.response_cache import MAX_ORGS  # noqa: E402

SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
ORG = "org_bench"
USERS = 20_000
ORGS = 5_000
SERVICE, BASELINE, CEILING = "service", "baseline", "ceiling"
UNLOGGED = ", no access log"
COLD = " (cold)"
ENTITLEMENT = "{ entitlement { orgId plan status cancelAtPeriodEnd currentPeriodEnd } }"
PLANS = "{ plans { slug name limits prices { interval lookupKey amount currency } } }"
CONNECTIONS = 32
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


@dataclass
class Round:
    """One wrk run."""

    rps: float
    p50_ms: float
    p99_ms: float


def _percentile_ms(out: str, percent: int) -> float:
    """A latency percentile of wrk's `--latency` report ('812.00us', '3.21ms', '1.02s')."""
    found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {percent}% latency in wrk's report:\n{out}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


LUA = """
local tokens = {}
for line in io.lines(%(tokens)s) do tokens[#tokens + 1] = line end
local body = %(body)s
local sent = 0
math.randomseed(%(seed)d)
request = function()
  local headers = {["Content-Type"] = "application/json"}
  sent = sent + 1
  local token = tokens[%(pick)s]
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", nil, headers, body)
end
"""
"""Every request: the body, and a token of the file (an empty line: none), picked at random
or, for a warm-up, each in turn."""

RANDOM = "math.random(#tokens)"
IN_TURN = "((sent - 1) % #tokens) + 1"


def wrk(
    url: str, body: str, tokens: Path, seconds: int, script_dir: Path, pick: str = RANDOM
) -> Round:
    """One wrk run of POSTs with this body and a token of the file per request; requests/s
    and latency percentiles."""
    lua = script_dir / "post.lua"
    lua.write_text(
        LUA
        % {
            "tokens": json.dumps(str(tokens)),
            "body": json.dumps(body),
            "seed": os.getpid(),
            "pick": pick,
        }
    )
    pin = ["taskset", "-c", "1"] if PINNED else []
    out = subprocess.run(
        [*pin, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Round(rps, _percentile_ms(out, 50), _percentile_ms(out, 99))


def free_port() -> int:
    """A port nobody listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """A server process pinned to CPU 0, up until the block ends."""
    pin = ["taskset", "-c", "0"] if PINNED else []
    process = subprocess.Popen(
        [*pin, *cmd],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{cmd} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def service(env: dict[str, str], *flags: str) -> Any:
    """The service as deployed: `main.py serve`, one worker."""
    port = free_port()
    cmd = [sys.executable, "main.py", "serve", "--port", str(port), *flags]
    return server(cmd, env, port)


def service_unlogged(env: dict[str, str]) -> Any:
    """The service without uvicorn's access log (`--no-access-log`)."""
    return service(env, "--no-access-log")


def uvicorn(target: str, env: dict[str, str], *flags: str) -> Any:
    """An ASGI app of bench/ under uvicorn with `main.py serve`'s options."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--port", str(port)]
    cmd += ["--loop", "uvloop", "--http", "httptools", *flags]
    return server(cmd, env, port)


def baseline(env: dict[str, str]) -> Any:
    """The hand-written routes of bench/baseline.py."""
    return uvicorn("bench.baseline:app", env)


def ceiling(env: dict[str, str]) -> Any:
    """The bare ASGI app of bench/ceiling.py."""
    return uvicorn("bench.ceiling:app", env, "--lifespan", "off")


def ceiling_unlogged(env: dict[str, str]) -> Any:
    """The bare ASGI app without uvicorn's access log."""
    return uvicorn("bench.ceiling:app", env, "--lifespan", "off", "--no-access-log")


def _org(n: int) -> str:
    """The n-th org of the many-users case (0: the one-token org)."""
    return ORG if n == 0 else f"{ORG}_{n}"


async def _seed(url: str) -> None:
    """The bench orgs: each a billing account and an active Pro subscription."""
    engine = create_async_engine(url)
    now = _now()
    rows = [
        {"org": _org(n), "cus": f"cus_bench_{n}", "sub": f"sub_bench_{n}", "now": now}
        for n in range(ORGS)
    ]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO billing_accounts (org_id, stripe_customer_id, created_at)"
                " VALUES (:org, :cus, :now)"
            ),
            rows,
        )
        await conn.execute(
            text(
                "INSERT INTO entitlements (org_id, stripe_customer_id, subscription_id, plan,"
                " interval, status, cancel_at_period_end, current_period_end, updated_at)"
                " VALUES (:org, :cus, :sub, 'pro', 'month', 'active', false, :end, :now)"
            ),
            [{**row, "end": now.replace(year=now.year + 1)} for row in rows],
        )
    await engine.dispose()


def _token(user: int, org: int) -> str:
    """A user's token for the n-th bench org, valid for an hour."""
    now = int(time.time())
    claims = {"sub": f"user_{user}", "org_id": _org(org % ORGS), "org_role": "owner"}
    return jwt.encode({**claims, "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")


def tokens(count: int, path: Path) -> Path:
    """A file of `count` users' tokens, round-robin over the bench orgs (one: the bench org)."""
    path.write_text("".join(f"{_token(n, n)}\n" for n in range(count)))
    return path


def _now() -> Any:
    """Now, in UTC, to the second."""
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh, migrated, seeded database of this backend."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        admin = None
    else:
        server_url = make_url(os.environ["TEST_DATABASE_URL"])
        name = f"billing_bench_{uuid.uuid4().hex[:12]}"
        admin = server_url.render_as_string(hide_password=False)
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        url = server_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        asyncio.run(_seed(url))
        yield url
    finally:
        if admin is not None:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    """CREATE/DROP DATABASE outside a transaction."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


def _post(url: str, document: str, token: str | None) -> Any:
    """One request's JSON answer."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(url, json={"query": document}, headers=headers, timeout=5)
    response.raise_for_status()
    return response.json()


def medians(rounds: list[Round]) -> Round:
    """The median of each figure over the rounds."""
    return Round(
        statistics.median(r.rps for r in rounds),
        statistics.median(r.p50_ms for r in rounds),
        statistics.median(r.p99_ms for r in rounds),
    )


def compare(label: str, ours: list[Round], against: str, theirs: list[Round]) -> None:
    """Print the medians of both and the ratios."""
    mine, other = medians(ours), medians(theirs)
    print(
        f"{label:<45} {mine.rps:>9,.0f} req/s  p50 {mine.p50_ms:6.2f} ms  p99 {mine.p99_ms:6.2f} ms"
        f"   | {against:<24} {other.rps:>9,.0f} req/s  p99 {other.p99_ms:6.2f} ms"
        f"   | ratio {mine.rps / other.rps:4.2f}x req/s, {mine.p99_ms / other.p99_ms:4.2f}x p99",
        flush=True,
    )


@dataclass
class InProcess:
    """What bench/entitlement.py measures in process."""

    hit_us: float
    miss_us: float
    token_bytes: float
    answer_bytes: float


async def _in_process(url: str, token: str, n: int = 2000) -> InProcess:
    """Microseconds per in-process `entitlement` request (answered from memory, and recomputed:
    every request preceded by a change of any org), and the memory one remembered token and
    one kept answer take (tracemalloc, over `n` users of one org, then of `n` orgs)."""
    from billing.kit.settings import Settings
    from server.app import create_app

    settings = Settings(
        _env_file=None,
        database_url=url,
        auth_jwt_secret=SECRET,
        plans_file=ROOT / "plans.toml",
        app_url="https://app.example.test",
    )
    app = create_app(settings)
    changes = app.state.services.db.change_feed
    transport = httpx.ASGITransport(app=app)
    costs = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
    ):
        await eventually_watching(changes)

        async def read(bearer: str) -> None:
            body = {"query": ENTITLEMENT}
            response = await http.post("/graphql", json=body, headers={"authorization": bearer})
            assert "errors" not in response.json()

        for invalidate in (False, True):
            samples = []
            for i in range(n + 200):
                if invalidate:
                    changes.changed(None)
                started = time.perf_counter()
                await read(f"Bearer {token}")
                if i >= 200:
                    samples.append(time.perf_counter() - started)
            costs.append(statistics.median(samples) * 1e6)
        one_org = [f"Bearer {_token(user, 0)}" for user in range(1, n + 1)]
        many_orgs = [f"Bearer {_token(user, user)}" for user in range(n + 1, 2 * n + 1)]
        tokens_only = await _bytes_per(read, one_org)
        both = await _bytes_per(read, many_orgs)
    return InProcess(costs[0], costs[1], tokens_only, both - tokens_only)


async def _bytes_per(read: Any, bearers: list[str]) -> float:
    """Bytes still allocated per request after reading with each of these tokens once."""
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for bearer in bearers:
        await read(bearer)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(bearers)


async def _staleness(api: str, url: str, token: str, changes: int = 20) -> list[float]:
    """Milliseconds from a commit by another process (this one, writing the row behind the
    service's back) until the warm service answers the new plan."""
    engine = create_async_engine(url)
    headers = {"authorization": f"Bearer {token}"}
    delays = []
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=5) as http:

        async def plan() -> str:
            body = (await http.post("/graphql", json={"query": ENTITLEMENT})).json()
            return str(body["data"]["entitlement"]["plan"])

        for n in range(changes):
            want = ("team", "pro")[n % 2]
            for _ in range(20):
                await plan()  # warm: answered from memory
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE entitlements SET plan = :plan WHERE org_id = :org"),
                    {"plan": want, "org": ORG},
                )
            committed = time.perf_counter()
            while await plan() != want:
                if time.perf_counter() - committed > 5:
                    raise RuntimeError("the change never showed")
            delays.append((time.perf_counter() - committed) * 1000)
    await engine.dispose()
    return delays


async def eventually_watching(changes: Any) -> None:
    """Wait for the change feed to watch (PostgreSQL's LISTEN connects in the background)."""
    for _ in range(100):
        if changes.snapshot().watching:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the change feed never started watching")


@dataclass
class Case:
    """One wrk load: a body, the tokens to pick from, and the path per server."""

    name: str
    body: str
    tokens: Path
    paths: dict[str, str]


def _answer_file(api: str, token: str, path: Path) -> Path:
    """The service's `entitlement` answer (headers and body) as the ceiling's file."""
    response = httpx.post(
        f"{api}/graphql",
        json={"query": ENTITLEMENT},
        headers={"authorization": f"Bearer {token}"},
        timeout=5,
    )
    response.raise_for_status()
    kept = [
        [name, value]
        for name, value in response.headers.items()
        if name in ("content-type", "content-length")
    ]
    path.write_text(json.dumps({"headers": kept, "body": response.text}))
    return path


def run_backend(backend: str, seconds: int, rounds: int) -> None:
    """Every case against every server on one backend."""
    with tempfile.TemporaryDirectory() as tmp_name, database(backend, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        one, many = tokens(1, tmp / "one.txt"), tokens(USERS, tmp / "many.txt")
        nobody = tmp / "nobody.txt"
        nobody.write_text("\n")
        token = one.read_text().strip()
        env = {
            "DATABASE_URL": url,
            "AUTH_JWT_SECRET": SECRET,
            "PLANS_FILE": str(ROOT / "plans.toml"),
            "APP_URL": "https://app.example.test",
            "CORS_ORIGINS": "https://app.example.test",
            "ENVIRONMENT": "production",
            "STRIPE_SECRET_KEY": "sk_test_bench_not_used",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench_not_used",
        }
        with service(env) as api:
            expected = _post(f"{api}/graphql", ENTITLEMENT, token)
            plans = _post(f"{api}/graphql", PLANS, None)
            answer = _answer_file(api, token, tmp / "answer.json")
        (tmp / "plans.json").write_text(json.dumps(plans["data"]))
        base_env = {
            "BENCH_DATABASE_URL": url,
            "BENCH_ORG": ORG,
            "BENCH_PLANS_JSON": str(tmp / "plans.json"),
        }
        bare_env = {"BENCH_ANSWER_JSON": str(answer)}
        sides = {
            SERVICE: (service, env),
            f"{SERVICE}{UNLOGGED}": (service_unlogged, env),
            BASELINE: (baseline, base_env),
            CEILING: (ceiling, bare_env),
            f"{CEILING}{UNLOGGED}": (ceiling_unlogged, bare_env),
        }
        with baseline(base_env) as base:
            assert _post(f"{base}/graphql", ENTITLEMENT, None) == expected, "baseline differs"
            assert _post(f"{base}/plans", PLANS, None) == plans, "baseline differs"
        with ceiling(bare_env) as bare:
            assert _post(f"{bare}/graphql", ENTITLEMENT, None) == expected, "ceiling differs"

        graphql = "/graphql"
        everywhere = {side: graphql for side in sides}
        cases = [
            Case("entitlement", ENTITLEMENT, one, everywhere),
            Case(f"entitlement, {USERS:,} users", ENTITLEMENT, many, {SERVICE: graphql}),
            Case("plans", PLANS, nobody, {SERVICE: graphql, BASELINE: "/plans"}),
        ]
        results: dict[tuple[str, str], list[Round]] = {}
        for _ in range(rounds):
            for side, (start, side_env) in sides.items():
                with start(side_env) as url_:
                    for case in cases:
                        if side not in case.paths:
                            continue
                        body = json.dumps({"query": case.body})
                        target = f"{url_}{case.paths[side]}"
                        # The warm-up is as long as the run, each token in turn: from cold.
                        first = wrk(target, body, case.tokens, seconds, tmp, IN_TURN)
                        results.setdefault((case.name, f"{side}{COLD}"), []).append(first)
                        results.setdefault((case.name, side), []).append(
                            wrk(target, body, case.tokens, seconds, tmp)
                        )
        single, crowd, catalog = (case.name for case in cases)
        unlogged, cold = f"{SERVICE}{UNLOGGED}", f"{SERVICE}{COLD}"
        for label, ours, against, theirs in [
            (single, (single, SERVICE), CEILING, (single, CEILING)),
            (
                single + UNLOGGED,
                (single, unlogged),
                CEILING + UNLOGGED,
                (single, CEILING + UNLOGGED),
            ),
            (single, (single, SERVICE), BASELINE, (single, BASELINE)),
            (crowd, (crowd, SERVICE), "one token", (single, SERVICE)),
            (crowd + COLD, (crowd, cold), "one token", (single, SERVICE)),
            (catalog, (catalog, SERVICE), BASELINE, (catalog, BASELINE)),
        ]:
            compare(f"{backend} {label}", results[ours], against, results[theirs])
        with service(env) as api:
            delays = sorted(asyncio.run(_staleness(api, url, token)))
        print(
            f"{backend} entitlement freshness: a commit by another process shows in"
            f" {statistics.median(delays):.1f} ms (median of {len(delays)}),"
            f" {delays[-1]:.1f} ms at most",
            flush=True,
        )
        inside = asyncio.run(_in_process(url, token))
        print(
            f"{backend} entitlement in-process (httpx ASGI): {inside.hit_us:,.0f} us from memory,"
            f" {inside.miss_us:,.0f} us recomputed after a change",
            flush=True,
        )
        tokens_mib = VERIFIED_TOKENS * inside.token_bytes / 2**20
        answers_mib = MAX_ORGS * inside.answer_bytes / 2**20
        print(
            f"{backend} memory: {inside.token_bytes:,.0f} bytes per remembered token,"
            f" {inside.answer_bytes:,.0f} per kept answer; at the bounds ({VERIFIED_TOKENS:,}"
            f" tokens, {MAX_ORGS:,} orgs) {tokens_mib:,.0f} + {answers_mib:,.0f} MiB",
            flush=True,
        )


def main() -> None:
    """Run on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/entitlement.py needs wrk: apt-get install wrk")
    backends = args.backend or (
        ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]
    )
    print(
        f"{os.cpu_count()} CPUs; server pinned to CPU 0, wrk (1 thread, {CONNECTIONS}"
        f" connections) to CPU 1; median of {args.rounds} alternating rounds of"
        f" {args.seconds} s" + ("" if PINNED else " (not pinned: taskset or a 2nd CPU missing)")
    )
    for backend in backends:
        run_backend(backend, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
