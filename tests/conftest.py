"""Fixtures: per database backend, a Stripe emulator and the API on real ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from emulator.client import EmulatorControl
from emulator.server import EmulatorServer
from server.app import create_app
from tests.support.api import Api
from tests.support.db import backends, fresh_database
from tests.support.servers import ThreadedServer, free_port
from tests.support.signing import WEBHOOK_PATH, WEBHOOK_SECRET
from tests.support.stack import Stack, seed, suite_settings
from tests.support.stripe_side import stripe_sdk


def pytest_configure(config: pytest.Config) -> None:
    """Under CI the PostgreSQL run is required, never skipped."""
    if os.environ.get("CI") == "true" and not os.environ.get("TEST_DATABASE_URL"):
        raise pytest.UsageError("CI=true requires TEST_DATABASE_URL (the PostgreSQL run)")


@pytest.fixture(scope="session", params=backends())
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Emulator + API + database for one backend, shared by the tests of that backend."""
    backend = request.param
    url, drop = fresh_database(backend, tmp_path_factory.mktemp(backend))
    api_port = free_port()
    hook = f"http://127.0.0.1:{api_port}{WEBHOOK_PATH}"
    emulator = EmulatorServer(webhooks=[(hook, WEBHOOK_SECRET)])
    emulator.start()
    settings = suite_settings(database_url=url, stripe_api_base=emulator.url)
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
    return stripe_sdk(stack.emulator.url)
