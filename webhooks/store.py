"""Persist every verified event first, then apply it exactly once in one transaction."""

from __future__ import annotations

import enum
import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from billing.models import APPLIED_STATUSES, EventStatus, WebhookEvent, utcnow
from billing.services import Services
from billing.upsert import insert
from webhooks.handlers import HANDLERS

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """What one delivery or replay did (the stored status is an `EventStatus`)."""

    PROCESSED = EventStatus.PROCESSED.value
    IGNORED = EventStatus.IGNORED.value
    FAILED = EventStatus.FAILED.value
    DUPLICATE = "duplicate"
    """Already applied; nothing done."""


async def record(services: Services, event: dict[str, Any], body: bytes) -> None:
    """Store the event if its id is new (a duplicate changes nothing)."""
    async with services.db.write() as session:
        table = WebhookEvent.__table__  # type: ignore[attr-defined]
        stmt = insert(session, table).values(
            id=event["id"],
            type=event["type"],
            created=datetime.fromtimestamp(event["created"], UTC),
            payload=body.decode("utf-8"),
            status=EventStatus.RECEIVED.value,
            attempts=0,
            received_at=utcnow(),
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def pending_event_ids(
    services: Services, *, failed_only: bool = False, event_id: str | None = None
) -> list[str]:
    """Stored events still to apply, oldest first: failed ones only, or just one by id."""
    stmt = select(col(WebhookEvent.id)).order_by(col(WebhookEvent.created), col(WebhookEvent.id))
    if event_id is not None:
        stmt = stmt.where(col(WebhookEvent.id) == event_id)
    elif failed_only:
        stmt = stmt.where(col(WebhookEvent.status) == EventStatus.FAILED.value)
    else:
        stmt = stmt.where(col(WebhookEvent.status).not_in(APPLIED_STATUSES))
    async with services.db.read() as session:
        return list((await session.execute(stmt)).scalars())


async def apply(services: Services, event_id: str, force: bool = False) -> Outcome:
    """Apply a stored event once; on failure keep it with its error for a retry or replay."""
    try:
        async with services.db.write() as session:
            stmt = select(WebhookEvent).where(col(WebhookEvent.id) == event_id).with_for_update()
            row = (await session.execute(stmt)).scalar_one()
            if row.status in APPLIED_STATUSES and not force:
                return Outcome.DUPLICATE
            handler = HANDLERS.get(row.type)
            obj = json.loads(row.payload)["data"]["object"]
            org_id = await handler(services, session, obj) if handler else None
            now = utcnow()
            created = row.created if row.created.tzinfo else row.created.replace(tzinfo=UTC)
            outcome = Outcome.PROCESSED if org_id else Outcome.IGNORED
            row.status = outcome.value
            row.attempts += 1
            row.last_error = None
            row.processed_at = now
            row.lag_ms = int((now - created).total_seconds() * 1000)
            session.add(row)
    except Exception as exc:
        log.exception("webhook event %s failed", event_id)
        async with services.db.write() as session:
            # Conditional: a duplicate delivery may have applied the event meanwhile, and its
            # success must not be overwritten (nor the event replayed) because this one failed.
            await session.execute(
                update(WebhookEvent)
                .where(col(WebhookEvent.id) == event_id)
                .where(col(WebhookEvent.status).not_in(APPLIED_STATUSES))
                .values(
                    status=EventStatus.FAILED.value,
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
