"""Persist every verified event first, then apply it exactly once in one transaction."""

from __future__ import annotations

import enum
import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from billing.context import Billing
from billing.models import WebhookEvent, utcnow
from billing.upsert import insert
from webhooks.handlers import HANDLERS

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """What happened to a delivery."""

    PROCESSED = "processed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    FAILED = "failed"


DONE = (Outcome.PROCESSED.value, Outcome.IGNORED.value)
"""Statuses of an event that was applied (or had nothing to apply)."""


async def record(billing: Billing, event: dict[str, Any], body: bytes) -> None:
    """Store the event if its id is new (a duplicate changes nothing)."""
    async with billing.db.write() as session:
        table = WebhookEvent.__table__  # type: ignore[attr-defined]
        stmt = insert(session, table).values(
            id=event["id"],
            type=event["type"],
            created=datetime.fromtimestamp(event["created"], UTC),
            payload=body.decode("utf-8"),
            status="received",
            attempts=0,
            received_at=utcnow(),
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def apply(billing: Billing, event_id: str, force: bool = False) -> Outcome:
    """Apply a stored event once; on failure keep it with its error for a retry or replay."""
    try:
        async with billing.db.write() as session:
            stmt = select(WebhookEvent).where(col(WebhookEvent.id) == event_id).with_for_update()
            row = (await session.execute(stmt)).scalar_one()
            if row.status in DONE and not force:
                return Outcome.DUPLICATE
            handler = HANDLERS.get(row.type)
            obj = json.loads(row.payload)["data"]["object"]
            org_id = await handler(billing, session, obj) if handler else None
            now = utcnow()
            created = row.created if row.created.tzinfo else row.created.replace(tzinfo=UTC)
            row.status = Outcome.PROCESSED if org_id else Outcome.IGNORED
            row.attempts += 1
            row.last_error = None
            row.processed_at = now
            row.lag_ms = int((now - created).total_seconds() * 1000)
            session.add(row)
            outcome = Outcome(row.status)
    except Exception as exc:
        log.exception("webhook event %s failed", event_id)
        async with billing.db.write() as session:
            # Conditional: a duplicate delivery may have applied the event meanwhile, and its
            # success must not be overwritten (nor the event replayed) because this one failed.
            await session.execute(
                update(WebhookEvent)
                .where(col(WebhookEvent.id) == event_id)
                .where(col(WebhookEvent.status).not_in(DONE))
                .values(
                    status=Outcome.FAILED.value,
                    attempts=WebhookEvent.attempts + 1,
                    last_error=f"{type(exc).__name__}: {str(exc)[:500]}",
                )
            )
        return Outcome.FAILED
    log.info(
        "webhook event %s %s %s org=%s lag_ms=%s",
        event_id,
        row.type,
        outcome,
        org_id or "-",
        row.lag_ms,
    )
    return outcome
