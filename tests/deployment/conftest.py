"""Fixtures: a deployment of several server processes on one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.deployment import Server
from tests.support.stack import Stack
from tests.support.world import World

RATE_LIMIT = 5
"""BILLING_RATE_LIMIT of the deployment: calls reaching Stripe per org per minute."""


@dataclass
class Deployment:
    """`serve --workers 2` (A) beside a plain `serve` (B), a private emulator (its events wait
    for the test to deliver them) and a fresh database."""

    world: World
    a: Server
    b: Server
    env: dict[str, str]


@pytest.fixture(scope="module")
def deployment(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Three server processes sharing one PostgreSQL database."""
    if stack.backend == "sqlite":
        pytest.skip("a deployment of several servers runs on PostgreSQL")
    world = World(stack)
    world.api.stop()
    env = {**world.env, "BILLING_RATE_LIMIT": str(RATE_LIMIT)}
    logs: Path = tmp_path_factory.mktemp("deployment")
    a = Server(env, logs / "a.log", workers=2).start()
    b = Server(env, logs / "b.log").start()
    world.api = a
    yield Deployment(world, a, b, env)
    b.stop()
    world.close()
