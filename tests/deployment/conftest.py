"""Fixtures: several server processes on one PostgreSQL database (SQLite runs one process)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.servers import ApiProcess
from harness.stack import Stack
from tests.support.deployment import Server
from tests.support.private_stack import PrivateStack

RATE_LIMIT = 5
"""BILLING_RATE_LIMIT of the deployment: calls reaching Stripe per org per minute."""


@dataclass
class DeploymentStack:
    """`serve --workers 2` (A) beside a plain `serve` (B), a private emulator (its events wait
    for the test to deliver them) and a fresh database."""

    private: PrivateStack
    a: Server
    b: Server
    env: dict[str, str]


@pytest.fixture(scope="module")
def deployment(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeploymentStack]:
    """Three server processes sharing one PostgreSQL database."""
    if stack.backend == "sqlite":
        pytest.skip("a deployment of several servers runs on PostgreSQL")
    private = PrivateStack(stack)
    env = {**private.env, "BILLING_RATE_LIMIT": str(RATE_LIMIT)}
    logs: Path = tmp_path_factory.mktemp("deployment")
    a = Server(env, logs / "a.log", workers=2).start()
    b = Server(env, logs / "b.log").start()
    private.api = a
    yield DeploymentStack(private, a, b, env)
    b.stop()
    private.close()


@pytest.fixture(autouse=True)
def postgresql_only(stack: Stack) -> None:
    """Every test here runs several API processes on one database: PostgreSQL only."""
    if stack.backend == "sqlite":
        pytest.skip("SQLite runs a single API process")


@pytest.fixture
def second(private: PrivateStack) -> Iterator[ApiProcess]:
    """Another API process on the private stack's settings, database and emulator."""
    process = ApiProcess(private.env).start()
    yield process
    process.stop()
