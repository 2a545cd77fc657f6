"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.server import EmulatorServer
from harness.stack import PLANS


@pytest.fixture
def emulator_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh emulator and the environment that points the CLI at it."""
    server = EmulatorServer().start()
    yield {
        "STRIPE_SECRET_KEY": "sk_test_cli",
        "STRIPE_API_BASE": server.url,
        "PLANS_FILE": str(PLANS),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
    }
    server.stop()
