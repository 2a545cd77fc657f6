"""Record what the webhook's events say customers did, once per subscription and billing
period whatever the delivery order or duplicates.

Each fact carries Stripe's own time, and each record keeps the latest of each kind: the latest
cancellation asked in the period (with its reason, feedback and comment), the latest undo. A
cancellation stands while no later undo exists; so a duplicate changes nothing and a late event
cannot overwrite a newer one. Runs inside the applier's transaction for the customer."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from billing.gateway.views import SubscriptionView, from_timestamp
from billing.kit.sql import insert
from billing.models import Cancellation, RetentionOffer, as_utc, utcnow
from billing.retention.facts import (
    CancellationAsked,
    CancellationUndone,
    DiscountGained,
    RetentionFact,
    SubscriptionStarted,
)


def record_facts(
    session: Session,
    org_id: str,
    customer_id: str,
    facts: Sequence[RetentionFact],
    subscriptions: Sequence[SubscriptionView],
) -> None:
    """Record the facts of an apply; after a cancellation or a new subscription, the
    resubscribes the customer's subscriptions show (whichever of the two is applied last sees
    both, so the order of their events does not matter; any other apply costs no query)."""
    for fact in facts:
        if isinstance(fact, CancellationAsked):
            _asked(session, org_id, customer_id, fact)
        elif isinstance(fact, CancellationUndone):
            _undone(session, org_id, customer_id, fact)
        elif isinstance(fact, DiscountGained):
            _discount(session, fact)
    if any(isinstance(fact, CancellationAsked | SubscriptionStarted) for fact in facts):
        _resubscribed(session, org_id, subscriptions)


def _asked(session: Session, org_id: str, customer_id: str, fact: CancellationAsked) -> None:
    """The period's record with this cancellation, unless it already has a later one."""
    details = {"reason": fact.reason, "feedback": fact.feedback, "comment": fact.comment}
    _keep_latest(session, org_id, customer_id, fact, "canceled_at", details)


def _undone(session: Session, org_id: str, customer_id: str, fact: CancellationUndone) -> None:
    """The period's record with this undo, unless it already has a later one."""
    _keep_latest(session, org_id, customer_id, fact, "undone_at", {})


def _keep_latest(
    session: Session,
    org_id: str,
    customer_id: str,
    fact: CancellationAsked | CancellationUndone,
    column: str,
    values: dict[str, str | None],
) -> None:
    """Insert the fact's period record, or set its time in `column` (and `values`) where that
    time is later than the one it holds: one record a period, the latest of each kind."""
    table = Cancellation.__table__  # type: ignore[attr-defined]
    changes = {column: fact.at, **values}
    stmt = insert(session, table).values(
        subscription_id=fact.subscription_id,
        period_end=fact.period_end,
        org_id=org_id,
        customer_id=customer_id,
        recorded_at=utcnow(),
        **changes,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["subscription_id", "period_end"],
            set_=changes,
            where=or_(table.c[column].is_(None), table.c[column] < fact.at),
        )
    )


def _discount(session: Session, fact: DiscountGained) -> None:
    """An offer of this coupon to this subscription accepted: its latest one not yet accepted
    (a discount counts once; a coupon nobody offered is no accepted offer)."""
    seen = (
        select(col(RetentionOffer.discount_id))
        .where(col(RetentionOffer.subscription_id) == fact.subscription_id)
        .where(col(RetentionOffer.discount_id) == fact.discount_id)
    )
    if session.execute(seen).first() is not None:
        return
    latest = session.execute(
        select(RetentionOffer)
        .where(col(RetentionOffer.subscription_id) == fact.subscription_id)
        .where(col(RetentionOffer.coupon) == fact.coupon)
        .where(col(RetentionOffer.accepted_at).is_(None))
        .order_by(col(RetentionOffer.period_end).desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if latest is not None:
        latest.accepted_at = fact.at
        latest.discount_id = fact.discount_id
        session.add(latest)


def _resubscribed(session: Session, org_id: str, subscriptions: Sequence[SubscriptionView]) -> None:
    """A standing cancellation's record gets the time the org subscribed again: the first
    subscription of the customer created after it that is not over."""
    live = [s for s in subscriptions if not s.ended and s.created]
    if not live:
        return
    records = session.execute(
        select(Cancellation)
        .where(col(Cancellation.org_id) == org_id)
        .where(col(Cancellation.canceled_at).is_not(None))
        .where(col(Cancellation.resubscribed_at).is_(None))
    ).scalars()
    for record in records:
        canceled, undone = as_utc(record.canceled_at), as_utc(record.undone_at)
        if canceled is None or (undone is not None and undone >= canceled):
            continue
        later = [
            s.created
            for s in live
            if s.id != record.subscription_id and s.created > canceled.timestamp()
        ]
        if later:
            record.resubscribed_at = from_timestamp(min(later))
            session.add(record)
