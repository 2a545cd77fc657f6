"""Fixtures for the tests of several API processes on one database (PostgreSQL only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import ApiProcess
from tests.support.stack import Stack
from tests.support.world import World


@pytest.fixture
def world(stack: Stack) -> Iterator[World]:
    """A private emulator (its events wait for us), a fresh database and API process A."""
    if stack.backend == "sqlite":
        pytest.skip("SQLite runs a single API process")
    w = World(stack)
    yield w
    w.close()


@pytest.fixture
def second(world: World) -> Iterator[ApiProcess]:
    """API process B: the world's settings, database and emulator."""
    process = ApiProcess(world.env).start()
    yield process
    process.stop()
