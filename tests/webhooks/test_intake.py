"""Two processes storing the same burst at once (Stripe's redeliveries reach both): their
batches overlap in event ids and must never deadlock on the id index."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from billing.container import Services
from harness.db import fresh_database
from harness.signing import event_body
from harness.stack import Stack
from webhooks.intake import Intake

EVENTS = 400
ROUNDS = 5


async def test_overlapping_batches_in_opposite_orders_all_commit(
    stack: Stack, tmp_path: Path
) -> None:
    if stack.backend != "postgresql":
        pytest.skip("SQLite commits one batch at a time (one writer)")
    url, drop = fresh_database(stack.backend, tmp_path)
    first = Services.from_settings(stack.settings_with(database_url=url))
    second = Services.from_settings(stack.settings_with(database_url=url))
    one, other = Intake(first), Intake(second)
    try:
        for _ in range(ROUNDS):
            bodies = [event_body("ping.unhandled") for _ in range(EVENTS)]
            events = [(json.loads(body), body) for body in bodies]
            stored = await asyncio.gather(
                *(one.store(event, body) for event, body in events),
                *(other.store(event, body) for event, body in reversed(events)),
            )
            assert sum(s.new for s in stored) == EVENTS  # each stored once, none failed
    finally:
        for intake, services in ((one, first), (other, second)):
            await intake.close()
            await services.db.dispose()
        drop()
