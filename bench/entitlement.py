"""`entitlement` and `plans` over HTTP against hand-written routes, in the same run.

The service (`python main.py serve`, production settings, one worker) and the baseline of
bench/baseline.py (FastAPI routes with the raw driver, no GraphQL, no ORM, no token check)
run one at a time, pinned to CPU 0; `wrk` drives them from CPU 1 with the same connections,
body and token, in alternating rounds. Prints requests/s, p50 and p99 per server and the
ratios, for SQLite and, when TEST_DATABASE_URL is set, for PostgreSQL (asyncpg baseline).

Also prints how soon a commit by another process shows, and the in-process cost of an answer
from memory and of one recomputed after a change.

Run: ``.venv/bin/python bench/entitlement.py [--seconds 5] [--rounds 3]`` (needs `wrk`:
``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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

from billing.kit.migrations import migrate  # noqa: E402

SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
ORG = "org_bench"
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


def wrk(url: str, body: str, token: str | None, seconds: int, script_dir: Path) -> Round:
    """One wrk run of POSTs with this body; requests/s and latency percentiles."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    lua = script_dir / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
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
        process.wait(timeout=10)


def service(env: dict[str, str]) -> Any:
    """The service as deployed: `main.py serve`, one worker."""
    port = free_port()
    cmd = [sys.executable, "main.py", "serve", "--port", str(port)]
    return server(cmd, env, port)


def baseline(env: dict[str, str]) -> Any:
    """The hand-written routes of bench/baseline.py under the same uvicorn."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline:app",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return server(cmd, env, port)


async def _seed(url: str) -> None:
    """The bench org: a billing account and an active Pro subscription."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO billing_accounts (org_id, stripe_customer_id, created_at)"
                " VALUES (:org, 'cus_bench', :now)"
            ),
            {"org": ORG, "now": _now()},
        )
        await conn.execute(
            text(
                "INSERT INTO entitlements (org_id, stripe_customer_id, subscription_id, plan,"
                " interval, status, cancel_at_period_end, current_period_end, updated_at)"
                " VALUES (:org, 'cus_bench', 'sub_bench', 'pro', 'month', 'active', false,"
                " :end, :now)"
            ),
            {"org": ORG, "now": _now(), "end": _now().replace(year=_now().year + 1)},
        )
    await engine.dispose()


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


def compare(label: str, ours: list[Round], theirs: list[Round]) -> None:
    """Print the medians of both servers and the ratios."""
    rps, base_rps = (statistics.median(r.rps for r in rounds) for rounds in (ours, theirs))
    p50, base_p50 = (statistics.median(r.p50_ms for r in rounds) for rounds in (ours, theirs))
    p99, base_p99 = (statistics.median(r.p99_ms for r in rounds) for rounds in (ours, theirs))
    print(
        f"{label:<22} {rps:>9,.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
        f"   | baseline {base_rps:>9,.0f} req/s  p50 {base_p50:6.2f} ms  p99 {base_p99:6.2f} ms"
        f"   | ratio {rps / base_rps:4.2f}x req/s, {p99 / base_p99:4.2f}x p99",
        flush=True,
    )


async def _asgi_costs(url: str, token: str, n: int = 2000) -> tuple[float, float]:
    """Microseconds per in-process `entitlement` request: answered from memory, and
    recomputed (every request preceded by a change of any org: never from the cache)."""
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
    headers = {"authorization": f"Bearer {token}"}
    costs = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
    ):
        await eventually_watching(changes)
        for invalidate in (False, True):
            samples = []
            for i in range(n + 200):
                if invalidate:
                    changes.changed(None)
                started = time.perf_counter()
                response = await http.post("/graphql", json={"query": ENTITLEMENT}, headers=headers)
                if i >= 200:
                    samples.append(time.perf_counter() - started)
                assert "errors" not in response.json()
            costs.append(statistics.median(samples) * 1e6)
    return costs[0], costs[1]


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


def run_backend(backend: str, seconds: int, rounds: int) -> None:
    """Both queries against both servers on one backend."""
    with tempfile.TemporaryDirectory() as tmp_name, database(backend, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        now = int(time.time())
        token = jwt.encode(
            {"sub": "bench", "org_id": ORG, "org_role": "owner", "iat": now, "exp": now + 3600},
            SECRET,
            algorithm="HS256",
        )
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
        (tmp / "plans.json").write_text(json.dumps(plans["data"]))
        base_env = {
            "BENCH_DATABASE_URL": url,
            "BENCH_ORG": ORG,
            "BENCH_PLANS_JSON": str(tmp / "plans.json"),
        }
        with baseline(base_env) as base:
            assert _post(f"{base}/graphql", ENTITLEMENT, None) == expected, "baseline differs"
            assert _post(f"{base}/plans", PLANS, None) == plans, "baseline differs"

        cases = [("entitlement", ENTITLEMENT, token, "/graphql"), ("plans", PLANS, None, "/plans")]
        results: dict[tuple[str, str], list[Round]] = {}
        body = {name: json.dumps({"query": doc}) for name, doc, _, _ in cases}
        for _ in range(rounds):
            for side, start in (("ours", service), ("base", baseline)):
                with start(env if side == "ours" else base_env) as url_:
                    for name, _, tok, base_path in cases:
                        path = "/graphql" if side == "ours" else base_path
                        wrk(f"{url_}{path}", body[name], tok, 1, tmp)  # warm-up
                        results.setdefault((name, side), []).append(
                            wrk(f"{url_}{path}", body[name], tok, seconds, tmp)
                        )
        for name, *_ in cases:
            compare(f"{backend} {name}", results[(name, "ours")], results[(name, "base")])
        with service(env) as api:
            delays = sorted(asyncio.run(_staleness(api, url, token)))
        print(
            f"{backend} entitlement freshness: a commit by another process shows in"
            f" {statistics.median(delays):.1f} ms (median of {len(delays)}),"
            f" {delays[-1]:.1f} ms at most",
            flush=True,
        )
        hit, miss = asyncio.run(_asgi_costs(url, token))
        print(
            f"{backend} entitlement in-process (httpx ASGI): {hit:,.0f} us from memory,"
            f" {miss:,.0f} us recomputed after a change",
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
