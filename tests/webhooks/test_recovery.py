"""Recovery tools: `resync` after missed webhooks, `events replay` after failed ones."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from emulator.client import EmulatorControl
from harness.api import Api
from harness.db import stored_event
from harness.timing import eventually
from tests.support.journeys import click
from tests.support.lifecycles import bodies_of
from tests.support.private_stack import PrivateStack, all_events, deliver
from webhooks.handlers import HANDLERS


async def test_resync_after_missed_webhooks(private: PrivateStack) -> None:
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        paid, other = Api(client), Api(client)
        for api in (paid, other):
            await click((await api.upgrade("pro"))["url"], "pay")
        # No webhook reached the API: the projection still says free.
        assert (await paid.entitlement())["plan"] == "free"

        one = await asyncio.to_thread(private.cli, "resync", "--org", paid.org)
        assert one.returncode == 0, one.stderr
        assert "resynced 1 org(s)" in one.stdout
        assert (await paid.entitlement())["plan"] == "pro"
        assert (await other.entitlement())["plan"] == "free"

        everyone = await asyncio.to_thread(private.cli, "resync")
        assert everyone.returncode == 0, everyone.stderr
        assert (await other.entitlement())["status"] == "ACTIVE"

        unknown = await asyncio.to_thread(private.cli, "resync", "--org", "org_nobody")
        assert unknown.returncode == 1 and "no billing account" in unknown.stderr


async def test_failed_events_are_kept_and_replayed(private: PrivateStack) -> None:
    control = EmulatorControl(private.emulator.url)
    async with httpx.AsyncClient(base_url=private.api.url, timeout=30) as client:
        api = Api(client)
        await click((await api.upgrade("pro"))["url"], "pay")
        events = [e for e in await all_events(private) if e["type"] in HANDLERS]
        url = private.settings.database_url
        control.fail("/v1/subscriptions", status=503, count=1000, method="GET")
        try:
            # Stripe down: every delivery is still acknowledged (stored), then fails to apply.
            assert await deliver(private.api.url, bodies_of(events)) == []

            async def first() -> dict[str, Any] | None:
                return await stored_event(url, events[0]["id"])

            row = await eventually(first, lambda r: r and r["status"] == "failed", what="failed")
            assert row is not None and row["attempts"] == 1 and row["next_attempt_at"]
            assert "StripeUnavailable" in row["last_error"]
            assert (await api.entitlement())["plan"] == "free"
            private.api.stop()  # no applier retries on its own while we replay by hand
        finally:
            control.clear_faults()

        replay = await asyncio.to_thread(private.cli, "events", "replay", "--failed")
        assert replay.returncode == 0, replay.stderr
        private.restart_api()
        assert (await api.entitlement())["plan"] == "pro"
        row = await stored_event(private.settings.database_url, events[0]["id"])
        assert (
            row is not None and row["status"] in ("processed", "ignored") and row["attempts"] == 2
        )

        nothing = await asyncio.to_thread(private.cli, "events", "replay", "--failed")
        assert "nothing to replay" in nothing.stdout
        forced = await asyncio.to_thread(private.cli, "events", "replay", "--id", events[0]["id"])
        assert forced.returncode == 0 and "1 " in forced.stdout
        missing = await asyncio.to_thread(private.cli, "events", "replay", "--id", "evt_missing")
        assert missing.returncode == 1 and "no stored event" in missing.stderr
