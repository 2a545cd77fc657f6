"""The stored events: record a verified one, find what is due, mark what an apply did."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, update
from sqlalchemy.orm import Session
from sqlmodel import col, select

from billing.container import Services
from billing.models import APPLIED_STATUSES, PENDING_STATUSES, EventStatus, WebhookEvent, utcnow
from webhooks.handlers import Target, target_of

RETRY_FIRST = 2.0
"""Seconds before a failed event's first retry; doubles per failure."""
RETRY_MAX = 600.0
"""The longest wait between two retries of a failed event."""
_PENDING = [status.value for status in PENDING_STATUSES]
TARGETS_KEPT = 20_000
"""Targets of events this process received and has not applied yet, kept so that their apply
parses no payload (a few kilobytes of JSON each): at most this many, the oldest forgotten
first (a duplicate of an event applied before stays until then; an event's target never
changes). An event stored by another process, or before a restart, has its payload read."""
_targets: OrderedDict[str, Target] = OrderedDict()
"""Its C methods keep it whole when several apps of one process (tests) share it."""


class Outcome(enum.StrEnum):
    """What applying an event did (the stored status is an `EventStatus`)."""

    PROCESSED = EventStatus.PROCESSED.value
    IGNORED = EventStatus.IGNORED.value
    FAILED = EventStatus.FAILED.value
    DEFERRED = "deferred"
    """Stripe answered 429: nothing written, the event stays due."""


@dataclass(frozen=True)
class StoredEvent:
    """A pending event, as the applier needs it."""

    id: str
    type: str
    created: datetime
    attempts: int
    target: Target | None


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def lag_seconds(created: datetime, now: datetime) -> float:
    """Seconds from Stripe creating an event to its apply."""
    return (now - _aware(created)).total_seconds()


def _lag_ms(created: datetime, now: datetime) -> int:
    """Milliseconds from Stripe creating an event to its apply."""
    return int(lag_seconds(created, now) * 1000)


def remember_target(event_id: str, target: Target) -> None:
    """Keep the target of an event this process just stored (see `TARGETS_KEPT`)."""
    _targets[event_id] = target
    if len(_targets) > TARGETS_KEPT:
        _targets.popitem(last=False)


def forget_target(event_id: str) -> None:
    """Drop a kept target (its event applied, or not stored by this delivery)."""
    _targets.pop(event_id, None)


def stored_row(event: dict[str, Any], body: bytes) -> tuple[dict[str, Any], Target | None]:
    """The stored row of a verified event, and its target (None: nothing to apply).

    An event with nothing to apply (a type without handler, no customer) is stored as
    ignored at once; the others wait for the applier, keyed by their customer."""
    target = target_of(event["type"], event)
    created = datetime.fromtimestamp(event["created"], UTC)
    now = utcnow()
    values: dict[str, Any] = {
        "id": event["id"],
        "type": event["type"],
        "created": created,
        "payload": body.decode("utf-8"),
        "received_at": now,
        "customer_id": target.customer_id if target else None,
        "status": EventStatus.RECEIVED.value,
        "attempts": 0,
        "processed_at": None,
        "lag_ms": None,
    }
    if target is None:
        values.update(
            status=EventStatus.IGNORED.value,
            attempts=1,
            processed_at=now,
            lag_ms=_lag_ms(created, now),
        )
    return values, target


async def due_customers(services: Services, exclude: set[str], limit: int) -> list[str]:
    """Customers with events due now, the longest waiting first."""
    now = utcnow()
    stmt = (
        select(col(WebhookEvent.customer_id))
        .where(col(WebhookEvent.status).in_(_PENDING))
        .where(col(WebhookEvent.customer_id).is_not(None))
        .where(
            or_(
                col(WebhookEvent.next_attempt_at).is_(None),
                col(WebhookEvent.next_attempt_at) <= now,
            )
        )
        .group_by(col(WebhookEvent.customer_id))
        .order_by(func.min(WebhookEvent.received_at))
        .limit(limit + len(exclude))
    )
    async with services.db.read() as session:
        found = [c for c in (await session.execute(stmt)).scalars() if c and c not in exclude]
    return found[:limit]


async def pending_of(
    services: Services, customer_id: str, also: frozenset[str] = frozenset()
) -> list[StoredEvent]:
    """Every pending event of a customer (backoff or not), and the events named in `also`.

    Plain columns, not ORM rows; payloads are read and parsed only for the events whose target
    this process does not keep (`remember_target`)."""
    events = WebhookEvent.__table__.c  # type: ignore[attr-defined]
    pending = events.status.in_(_PENDING)
    stmt = (
        select(events.id, events.type, events.created, events.attempts)
        .where(events.customer_id == customer_id)
        .where(or_(pending, events.id.in_(also)) if also else pending)
        .order_by(events.created)
    )
    async with services.db.read() as session:
        rows = (await session.execute(stmt)).all()
        kept = {row.id: _targets.get(row.id) for row in rows}
        unknown = [event_id for event_id, target in kept.items() if target is None]
        payloads: dict[str, str] = {}
        if unknown:
            read = select(events.id, events.payload).where(events.id.in_(unknown))
            payloads = {row.id: row.payload for row in await session.execute(read)}
    return [
        StoredEvent(
            id=row.id,
            type=row.type,
            created=row.created,
            attempts=row.attempts,
            target=kept[row.id] or target_of(row.type, json.loads(payloads[row.id])),
        )
        for row in rows
    ]


def _mark_applied_statement() -> Any:
    """One UPDATE by id, sent as one executemany (no ORM bulk-update bookkeeping)."""
    table = WebhookEvent.__table__  # type: ignore[attr-defined]
    return (
        update(table)
        .where(table.c.id == bindparam("event_id"))
        .values(
            status=bindparam("new_status"),
            attempts=bindparam("new_attempts"),
            last_error=None,
            next_attempt_at=None,
            processed_at=bindparam("at"),
            lag_ms=bindparam("lag"),
        )
    )


MARK_APPLIED = _mark_applied_statement()


def mark_applied(session: Session, events: list[StoredEvent], org_id: str | None) -> None:
    """Mark events applied in the apply's own transaction: processed for an org, else ignored."""
    now = utcnow()
    status = (EventStatus.PROCESSED if org_id else EventStatus.IGNORED).value
    session.connection().execute(
        MARK_APPLIED,
        [
            {
                "event_id": event.id,
                "new_status": status,
                "new_attempts": event.attempts + 1,
                "at": now,
                "lag": _lag_ms(event.created, now),
            }
            for event in events
        ],
    )
    for event in events:
        forget_target(event.id)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try of an event that failed `attempts` times."""
    return min(RETRY_FIRST * 2.0 ** max(attempts - 1, 0), RETRY_MAX)


async def mark_failed(services: Services, events: list[StoredEvent], error: Exception) -> None:
    """Keep failed events with their error, due again after their backoff."""
    now = utcnow()
    message = f"{type(error).__name__}: {str(error)[:500]}"
    rows = [
        {
            "id": event.id,
            "status": EventStatus.FAILED.value,
            "attempts": event.attempts + 1,
            "last_error": message,
            "next_attempt_at": now + timedelta(seconds=retry_delay(event.attempts + 1)),
        }
        for event in events
    ]
    await services.db.write(lambda session: session.execute(update(WebhookEvent), rows))


async def replay_targets(
    services: Services, *, failed_only: bool = False, event_id: str | None = None
) -> dict[str | None, list[str]]:
    """Events `events replay` re-applies, by customer (None: events naming no customer)."""
    stmt = select(col(WebhookEvent.id), col(WebhookEvent.customer_id))
    if event_id is not None:
        stmt = stmt.where(col(WebhookEvent.id) == event_id)
    elif failed_only:
        stmt = stmt.where(col(WebhookEvent.status) == EventStatus.FAILED.value)
    else:
        stmt = stmt.where(col(WebhookEvent.status).not_in(APPLIED_STATUSES))
    found: dict[str | None, list[str]] = {}
    async with services.db.read() as session:
        for event, customer in await session.execute(stmt.order_by(col(WebhookEvent.created))):
            found.setdefault(customer, []).append(event)
    return found


async def mark_ignored_again(services: Services, event_ids: list[str]) -> None:
    """A forced replay of events that name no customer: nothing to do, counted as an attempt."""
    stmt = (
        update(WebhookEvent)
        .where(col(WebhookEvent.id).in_(event_ids))
        .values(
            status=EventStatus.IGNORED.value,
            attempts=WebhookEvent.attempts + 1,
            processed_at=utcnow(),
        )
    )
    await services.db.write(lambda session: session.execute(stmt))


@dataclass(frozen=True)
class PendingEvents:
    """The backlog: events not yet applied, and when the oldest of them was received."""

    count: int
    oldest_received_at: datetime | None


async def pending_events(services: Services) -> PendingEvents:
    """The backlog, in one query (`GET /metrics`)."""
    stmt = select(func.count(), func.min(WebhookEvent.received_at)).where(
        col(WebhookEvent.status).in_(_PENDING)
    )
    async with services.db.read() as session:
        count, oldest = (await session.execute(stmt)).one()
    return PendingEvents(int(count), _aware(oldest) if oldest else None)


@dataclass(frozen=True)
class Summary:
    """What `events status` prints."""

    counts: dict[str, int]
    due_now: int
    next_retry_at: datetime | None
    oldest_pending: tuple[str, str, datetime] | None
    recent_lags_ms: list[int]
    """Lags of the events applied in the last `LAG_WINDOW`, smallest first."""


LAG_WINDOW = timedelta(hours=1)


async def summary(services: Services) -> Summary:
    """Counts by status, what is due, the oldest pending event and recent lags."""
    now = utcnow()
    pending = col(WebhookEvent.status).in_(_PENDING)
    not_due = col(WebhookEvent.next_attempt_at) > now
    async with services.db.read() as session:
        counts = dict(
            (
                await session.execute(
                    select(col(WebhookEvent.status), func.count()).group_by(
                        col(WebhookEvent.status)
                    )
                )
            ).all()
        )
        waiting = (
            await session.execute(
                select(func.count(), func.min(WebhookEvent.next_attempt_at))
                .where(pending)
                .where(not_due)
            )
        ).one()
        oldest = (
            await session.execute(
                select(col(WebhookEvent.id), col(WebhookEvent.type), col(WebhookEvent.received_at))
                .where(pending)
                .order_by(col(WebhookEvent.received_at))
                .limit(1)
            )
        ).first()
        lags = (
            await session.execute(
                select(col(WebhookEvent.lag_ms))
                .where(col(WebhookEvent.processed_at) >= now - LAG_WINDOW)
                .where(col(WebhookEvent.lag_ms).is_not(None))
            )
        ).scalars()
        recent = sorted(int(lag) for lag in lags if lag is not None)
    pending_count = sum(n for status, n in counts.items() if status in _PENDING)
    return Summary(
        counts={str(k): int(v) for k, v in counts.items()},
        due_now=pending_count - int(waiting[0]),
        next_retry_at=_aware(waiting[1]) if waiting[1] else None,
        oldest_pending=(oldest[0], oldest[1], _aware(oldest[2])) if oldest else None,
        recent_lags_ms=recent,
    )
