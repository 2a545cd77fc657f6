"""Fixtures: per database backend, a Stripe emulator and the API on real ports."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api import Api
from harness.db import CONNECTIONS_PER_WORKER, backends, max_connections
from harness.stack import BILLING_STATE_PLANS, Stack
from harness.stripe_side import stripe_sdk
from tests.support.browser import SCREENSHOTS_ENV
from tests.support.private_stack import PrivateStack
from tests.support.stacks import running_stack


def pytest_configure(config: pytest.Config) -> None:
    """Under CI the PostgreSQL run is required, never skipped; one screenshots folder for
    every worker (they start after this, with this environment)."""
    if os.environ.get("CI") == "true" and not os.environ.get("TEST_DATABASE_URL"):
        raise pytest.UsageError("CI=true requires TEST_DATABASE_URL (the PostgreSQL run)")
    if hasattr(config, "workerinput"):
        return
    if SCREENSHOTS_ENV not in os.environ:
        os.environ[SCREENSHOTS_ENV] = tempfile.mkdtemp(prefix="billing-screenshots-")
    workers = int(getattr(config.option, "numprocesses", 0) or 0)
    needed = CONNECTIONS_PER_WORKER * workers
    if "postgresql" in backends() and workers > 1:
        allowed = max_connections(os.environ["TEST_DATABASE_URL"])
        if allowed < needed:
            raise pytest.UsageError(
                f"PostgreSQL allows {allowed} connections; {workers} workers need {needed}: "
                f"ALTER SYSTEM SET max_connections = {needed} and restart it (.ci/run does), "
                f"or pass -n {max(1, allowed // CONNECTIONS_PER_WORKER)}"
            )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the screenshots' folder in the run's summary, when the browser tests left any."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder and Path(folder).is_dir() and any(Path(folder).iterdir()):
        terminalreporter.write_line(f"browser screenshots: {folder}")


@pytest.fixture(scope="session", params=backends())
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Emulator + API + database for one backend, shared by the tests of that backend."""
    with running_stack(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="session")
def billing_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A second system on the same backend with the billing-state plans file (card-less
    trials, every Checkout option, downgrades at the period's end): its clock is its tests'."""
    folder = tmp_path_factory.mktemp(f"billing-state-{stack.backend}")
    with running_stack(stack.backend, folder, plans_file=BILLING_STATE_PLANS) as running:
        yield running


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


@pytest.fixture
def private(stack: Stack) -> Iterator[PrivateStack]:
    """A private emulator (its events wait for the test to deliver them), a fresh database and
    the API in a process of its own."""
    private = PrivateStack(stack)
    yield private
    private.close()
