"""`python main.py cancellations` and `/metrics`: why customers left, and how many stayed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from billing.kit.database import Database
from billing.models import Cancellation, RetentionOffer, as_utc, utcnow

NO_FEEDBACK = "none"
"""The feedback key of a cancellation that gave none."""


@dataclass(frozen=True)
class Comment:
    """A cancellation's comment, with its org and date."""

    org_id: str
    at: datetime
    feedback: str
    comment: str


@dataclass(frozen=True)
class CancellationReport:
    """Cancellations (those that stand: not undone), their feedback and comments, and the
    retention offers made and accepted, within the window."""

    since: datetime | None
    cancellations: int
    by_feedback: dict[str, int]
    by_reason: dict[str, int]
    comments: list[Comment]
    offers_made: int
    offers_accepted: int
    undone: int
    """Cancellations the customer took back ("Keep my plan"): not counted in `cancellations`."""
    resubscribed: int
    """Of `cancellations`, those whose org subscribed again later."""
    save_rate: float = field(init=False)

    def __post_init__(self) -> None:
        saved, lost = self.offers_accepted, self.cancellations
        object.__setattr__(self, "save_rate", saved / (saved + lost) if saved + lost else 0.0)

    def as_json(self) -> dict[str, Any]:
        """The `--json` object."""
        return {
            "cancellations": self.cancellations,
            "by_feedback": self.by_feedback,
            "comments": [
                {
                    "org_id": c.org_id,
                    "at": c.at.isoformat(),
                    "feedback": c.feedback,
                    "comment": c.comment,
                }
                for c in self.comments
            ],
            "offers_made": self.offers_made,
            "offers_accepted": self.offers_accepted,
            "save_rate": round(self.save_rate, 4),
            "by_reason": self.by_reason,
            "undone": self.undone,
            "resubscribed": self.resubscribed,
            "since": self.since.isoformat() if self.since else None,
        }


def _standing(row: Cancellation) -> bool:
    """A cancellation no later undo took back."""
    canceled, undone = as_utc(row.canceled_at), as_utc(row.undone_at)
    return canceled is not None and (undone is None or undone < canceled)


async def cancellation_report(db: Database, since_days: float | None = None) -> CancellationReport:
    """The report over the last `since_days` days (all time when None)."""
    since = utcnow() - timedelta(days=since_days) if since_days is not None else None
    rows_query = select(Cancellation).where(col(Cancellation.canceled_at).is_not(None))
    made_query = select(func.count()).select_from(RetentionOffer)
    accepted_query = select(func.count()).where(col(RetentionOffer.accepted_at).is_not(None))
    if since is not None:
        rows_query = rows_query.where(col(Cancellation.canceled_at) >= since)
        made_query = made_query.where(col(RetentionOffer.made_at) >= since)
        accepted_query = accepted_query.where(col(RetentionOffer.accepted_at) >= since)
    async with db.read() as session:
        rows = list((await session.execute(rows_query)).scalars())
        made = (await session.execute(made_query)).scalar_one()
        accepted = (await session.execute(accepted_query)).scalar_one()
    standing = [row for row in rows if _standing(row)]
    comments = [
        Comment(
            row.org_id,
            as_utc(row.canceled_at) or utcnow(),
            row.feedback or NO_FEEDBACK,
            row.comment,
        )
        for row in standing
        if row.comment
    ]
    comments.sort(key=lambda c: c.at, reverse=True)
    return CancellationReport(
        since=since,
        cancellations=len(standing),
        by_feedback=dict(sorted(Counter(r.feedback or NO_FEEDBACK for r in standing).items())),
        by_reason=dict(sorted(Counter(r.reason or NO_FEEDBACK for r in standing).items())),
        comments=comments,
        offers_made=made,
        offers_accepted=accepted,
        undone=len(rows) - len(standing),
        resubscribed=sum(1 for r in standing if r.resubscribed_at is not None),
    )


@dataclass(frozen=True)
class RetentionTotals:
    """All-time totals for `/metrics` (counters: they only grow)."""

    cancellations: dict[str, int]
    """Cancellations asked, by feedback (an undone one still happened)."""
    offers_made: int
    offers_accepted: int


async def retention_totals(db: Database) -> RetentionTotals:
    """The counters' values, read from the records."""
    by_feedback = (
        select(col(Cancellation.feedback), func.count())
        .where(col(Cancellation.canceled_at).is_not(None))
        .group_by(col(Cancellation.feedback))
    )
    offers = select(func.count(), func.count(col(RetentionOffer.accepted_at)))
    async with db.engine.connect() as conn:
        counts = {(feedback or NO_FEEDBACK): n for feedback, n in await conn.execute(by_feedback)}
        made, accepted = (await conn.execute(offers.select_from(RetentionOffer))).one()
    return RetentionTotals(dict(sorted(counts.items())), int(made), int(accepted))
