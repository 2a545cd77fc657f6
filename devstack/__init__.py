"""The local stack of `make run`: where the emulator keeps its state, free ports, `make reset`
(and, in `devstack.example`, the example client served at APP_URL)."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from sqlalchemy import make_url

from billing.accounts import account_customers
from billing.container import Services
from billing.gateway.errors import StripeNotFound
from billing.kit.settings import Settings

EMULATOR_SECRET = "whsec_dev_emulator_secret"  # noqa: S105  (the emulator's, not Stripe's)
EMULATOR_KEY = "sk_test_emulator"


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
