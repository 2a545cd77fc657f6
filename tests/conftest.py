"""The test stack: per database backend, a Stripe emulator and the API on real ports."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from billing.catalog_sync import sync_catalog, sync_portal
from billing.context import Billing
from billing.migrate import migrate
from billing.settings import Settings
from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from tests.support.api import APP_URL, JWT_SECRET, Api
from tests.support.servers import ThreadedServer, free_port
from web import create_app

T = TypeVar("T")
PLANS = Path(__file__).parent / "plans.toml"
WEBHOOK_SECRET = "whsec_test_suite_secret"


def pytest_configure(config: pytest.Config) -> None:
    """Under CI the PostgreSQL run is required, never skipped."""
    if os.environ.get("CI") == "true" and not os.environ.get("TEST_DATABASE_URL"):
        raise pytest.UsageError("CI=true requires TEST_DATABASE_URL (the PostgreSQL run)")


def backends() -> list[str]:
    """SQLite always; PostgreSQL when TEST_DATABASE_URL is set."""
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


def in_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a private loop in another thread (keeps pytest's loop untouched)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(work())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _admin(url: str, statement: str) -> None:
    """Run a statement outside a transaction (CREATE/DROP DATABASE)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


def fresh_database(backend: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    """An empty, migrated database of its own for this run, and how to drop it."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'billing.db'}"

        def drop() -> None:
            """Nothing to drop: the file goes with the temporary directory."""

    else:
        # A database per run: concurrent runs on one server never see each other's rows.
        server = make_url(os.environ["TEST_DATABASE_URL"])
        name = f"billing_test_{uuid.uuid4().hex[:12]}"
        admin = server.render_as_string(hide_password=False)
        in_thread(lambda: _admin(admin, f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            """Drop this run's database, even with connections still open."""
            in_thread(lambda: _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    in_thread(lambda: asyncio.to_thread(migrate, url))
    return url, drop


def test_settings(**overrides: Any) -> Settings:
    """Settings for the suite; nothing read from .env."""
    values: dict[str, Any] = {
        "stripe_secret_key": "sk_test_suite",
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "auth_jwt_secret": JWT_SECRET,
        "app_url": APP_URL,
        "plans_file": PLANS,
        "stripe_timeout": 2.0,
        "stripe_max_retries": 1,
        "billing_rate_limit": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Stack:
    """One backend's running system."""

    backend: str
    settings: Settings
    emulator: EmulatorServer
    control: EmulatorControl
    api: ThreadedServer

    def settings_with(self, **overrides: Any) -> Settings:
        """These settings with some values changed."""
        values = {**self.settings.model_dump(), **overrides}
        return Settings(_env_file=None, **values)


async def _with_billing(settings: Settings, work: Callable[[Billing], Any]) -> Any:
    """Run service code against a settings' database and Stripe."""
    billing = Billing.from_settings(settings)
    try:
        return await work(billing)
    finally:
        await billing.db.dispose()


def seed(settings: Settings) -> None:
    """Create the catalog and portal configuration in the emulator."""
    in_thread(lambda: _with_billing(settings, lambda b: sync_catalog(b, False)))
    in_thread(lambda: _with_billing(settings, lambda b: sync_portal(b, False)))


@pytest.fixture(scope="session", params=backends())
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Emulator + API + database for one backend, shared by the tests of that backend."""
    backend = request.param
    url, drop = fresh_database(backend, tmp_path_factory.mktemp(backend))
    api_port = free_port()
    hook = f"http://127.0.0.1:{api_port}/webhooks/stripe"
    emulator = EmulatorServer(webhooks=[(hook, WEBHOOK_SECRET)])
    emulator.start()
    settings = test_settings(database_url=url, stripe_api_base=emulator.url)
    seed(settings)
    api = ThreadedServer(create_app(settings), port=api_port).start()
    yield Stack(backend, settings, emulator, EmulatorControl(emulator.url), api)
    api.stop()
    emulator.stop()
    drop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the running API."""
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as http:
        yield http


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    """A GraphQL client for a fresh org with the owner role."""
    return Api(client)


@pytest.fixture
def stripe_client(stack: Stack) -> Any:
    """The real Stripe SDK pointed at this stack's emulator (to inspect Stripe's side)."""
    import stripe

    return stripe.StripeClient(
        "sk_test_suite",
        base_addresses={"api": stack.emulator.url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )
