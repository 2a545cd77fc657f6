"""Fixtures for the webhook tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack
from tests.support.world import World


@pytest.fixture
def world(stack: Stack) -> Iterator[World]:
    """A private emulator and API process over the stack's database."""
    w = World(stack)
    yield w
    w.close()
