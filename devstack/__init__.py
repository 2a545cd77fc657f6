"""The local stack of `make run`: where the emulator keeps its state, free ports, `make reset`
(and, in `devstack.example`, the example client served at APP_URL)."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import httpx
from sqlalchemy import make_url

from billing.accounts import account_customers
from billing.container import Services
from billing.gateway.errors import StripeNotFound
from billing.kit.settings import Settings

EMULATOR_SECRET = "whsec_dev_emulator_secret"  # noqa: S105  (the emulator's, not Stripe's)
EMULATOR_KEY = "sk_test_emulator"

DEMO_PROMOTION_CODE = "WELCOME20"
"""The promotion code `make run` seeds in the emulator (20% off the first invoice)."""


def seed_promotion_code(emulator_url: str) -> bool:
    """Create the demo coupon and its promotion code in the emulator unless it has them;
    True when created now."""
    auth = {"authorization": f"Bearer {EMULATOR_KEY}"}
    with httpx.Client(base_url=emulator_url, headers=auth, timeout=10) as http:
        found = http.get("/v1/promotion_codes", params={"code": DEMO_PROMOTION_CODE})
        found.raise_for_status()
        if found.json()["data"]:
            return False
        coupon = {"id": "welcome20", "name": "20% off", "percent_off": "20", "duration": "once"}
        if http.get("/v1/coupons/welcome20").status_code == 404:
            http.post("/v1/coupons", data=coupon).raise_for_status()
        code = {"code": DEMO_PROMOTION_CODE, "promotion[type]": "coupon"}
        http.post(
            "/v1/promotion_codes", data={**code, "promotion[coupon]": "welcome20"}
        ).raise_for_status()
        return True


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for any other database or an in-memory one."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def emulator_state_file(database_url: str) -> Path:
    """The emulator's saved state, next to the SQLite database (else in the working folder)."""
    database = sqlite_path(database_url)
    return database.with_suffix(".emulator.json") if database else Path("billing.emulator.json")


def require_free_port(
    host: str,
    port: int,
    what: str,
    advice: str = "stop the other process (another `make run`?) or choose another port",
) -> None:
    """Fail with a one-line error naming the port when something already listens on it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ValueError(
                f"port {port} ({what}) is already in use on {host}: {advice}"
            ) from None


def reset_local(settings: Settings) -> list[Path]:
    """Delete the SQLite database and the emulator's saved state; returns what was deleted."""
    if settings.production:
        raise ValueError("reset refuses to run with ENVIRONMENT=production")
    database = sqlite_path(settings.database_url)
    if database is None:
        raise ValueError(
            "reset only deletes a local SQLite database; DATABASE_URL names another database"
        )
    wal = [
        database.with_name(database.name + suffix)
        for suffix in ("-wal", "-shm", "-journal", "-locks", "-claims")  # -claims: the old -locks
    ]
    targets = [database, *wal, emulator_state_file(settings.database_url)]
    deleted = [path for path in targets if path.exists()]
    for path in deleted:
        path.unlink()
    return deleted


async def orgs_unknown_to_stripe(services: Services) -> list[str]:
    """Orgs whose live Stripe customer Stripe does not know (the emulator lost its state)."""
    unknown = []
    for org_id, customer_id in await account_customers(services.db, live_only=True):
        try:
            await services.stripe.retrieve_customer(customer_id)
        except StripeNotFound:
            unknown.append(org_id)
    return unknown
