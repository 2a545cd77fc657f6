"""Round trip of the two read queries over real HTTP: `entitlement` (token check + one
database read) and `plans` (no token, the in-memory catalog).

The API runs in-process under uvicorn on a free port with a migrated SQLite database in a
temporary directory; no Stripe is needed for reads.

Run: ``.venv/bin/python bench/api_roundtrip.py [calls]``. Prints median and p95 in ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import jwt  # noqa: E402

from billing.migrate import migrate  # noqa: E402
from billing.settings import Settings  # noqa: E402
from server.app import create_app  # noqa: E402
from tests.support.servers import ThreadedServer  # noqa: E402

SECRET = "bench-jwt-secret-0123456789abcdef0123"
ENTITLEMENT = "{ entitlement { orgId plan status hasBillingAccount limits updatedAt } }"
PLANS = "{ plans { slug name limits prices { interval lookupKey amount currency } } }"


def measure(label: str, call: Callable[[], None], n: int) -> None:
    """Time n calls after a warm-up and print median / p95."""
    for _ in range(50):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    print(f"{label:<28} median {statistics.median(samples):6.3f} ms   p95 {p95:6.3f} ms  (n={n})")


def query(http: httpx.Client, document: str, headers: dict[str, str] | None = None) -> None:
    """POST one query and insist on a clean answer."""
    response = http.post("/graphql", json={"query": document}, headers=headers)
    response.raise_for_status()
    body = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])


def main() -> None:
    """Start the API on a fresh SQLite database, time both queries."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        settings = Settings(
            _env_file=None,
            database_url=url,
            auth_jwt_secret=SECRET,
            plans_file=ROOT / "plans.toml",
            app_url="https://app.example.test",
        )
        server = ThreadedServer(create_app(settings)).start()
        now = int(time.time())
        token = jwt.encode(
            {
                "sub": "bench",
                "org_id": "org_bench",
                "org_role": "owner",
                "iat": now,
                "exp": now + 3600,
            },
            SECRET,
            algorithm="HS256",
        )
        auth = {"authorization": f"Bearer {token}"}
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                measure("entitlement (HS256 + read)", lambda: query(http, ENTITLEMENT, auth), n)
                measure("plans (no token)", lambda: query(http, PLANS), n)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
