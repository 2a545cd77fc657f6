"""The tables. Entitlements are written only by `billing.entitlements.projection`, fed by webhooks
and resync."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to a naive datetime read back from SQLite."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _ts(nullable: bool = True) -> Column[datetime]:
    """A timezone-aware timestamp column."""
    return Column(DateTime(timezone=True), nullable=nullable)


class SubscriptionStatus(enum.StrEnum):
    """Stripe's subscription statuses, plus NONE for an org that never subscribed."""

    NONE = "none"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    PAUSED = "paused"


PAID_STATUSES = frozenset(
    {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
)
"""Statuses in which the subscribed plan's limits apply."""


class EventStatus(enum.StrEnum):
    """Where a stored webhook event stands."""

    RECEIVED = "received"
    """Stored, waiting for the applier."""
    PROCESSED = "processed"
    """Applied: an org's entitlement was re-projected."""
    IGNORED = "ignored"
    """Nothing to apply (a type without handler, a customer no org owns)."""
    FAILED = "failed"
    """The last attempt failed; the applier retries it with backoff, `events replay` now."""


APPLIED_STATUSES = frozenset({EventStatus.PROCESSED, EventStatus.IGNORED})
"""Statuses of an event that needs no further attempt."""

PENDING_STATUSES = frozenset({EventStatus.RECEIVED, EventStatus.FAILED})
"""Statuses of an event the applier still has to apply."""


class BillingAccount(SQLModel, table=True):
    """The link between an org and its Stripe customer."""

    __tablename__ = "billing_accounts"

    org_id: str = Field(primary_key=True, max_length=255)
    stripe_customer_id: str = Field(unique=True, index=True, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=_ts())


class Entitlement(SQLModel, table=True):
    """What an org may use now, projected from its Stripe subscriptions."""

    __tablename__ = "entitlements"

    org_id: str = Field(primary_key=True, max_length=255)
    stripe_customer_id: str | None = Field(default=None, max_length=255)
    subscription_id: str | None = Field(default=None, max_length=255)
    subscription_item_id: str | None = Field(default=None, max_length=255)
    price_lookup_key: str | None = Field(default=None, max_length=255)
    plan: str = Field(max_length=255)
    interval: str | None = Field(default=None, max_length=16)
    quantity: int | None = None
    """The current subscription item's quantity: the seat count on a per-seat plan."""
    status: str = Field(default=SubscriptionStatus.NONE.value, max_length=32)
    cancel_at_period_end: bool = False
    current_period_end: datetime | None = Field(default=None, sa_column=_ts())
    trial_end: datetime | None = Field(default=None, sa_column=_ts())
    stripe_features: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
    )
    """Lookup keys of the customer's active entitlements in Stripe, sorted (`entitlement.features`
    adds the plan's features from the plans file)."""
    required_action: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    """What the customer must do to keep paying (`billing.entitlements.billing_state`)."""
    pending_change: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    """The change Stripe has scheduled (`billing.entitlements.billing_state`)."""
    discount: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    """The current subscription's discount and its coupon's terms (`entitlement.discount`)."""
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class WebhookEvent(SQLModel, table=True):
    """Every verified Stripe event, stored before it is applied."""

    __tablename__ = "webhook_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(index=True, max_length=255)
    created: datetime = Field(sa_column=_ts(nullable=False))
    customer_id: str | None = Field(default=None, index=True, max_length=255)
    """The Stripe customer the event is about: its events are applied together."""
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=EventStatus.RECEIVED.value, index=True, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    processed_at: datetime | None = Field(default=None, sa_column=_ts())
    lag_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts())
    """When a failed event is due again (its backoff); None: due now."""


class RateLimitWindow(SQLModel, table=True):
    """Calls that reached Stripe, counted per org and minute."""

    __tablename__ = "rate_limit_windows"

    org_id: str = Field(primary_key=True, max_length=255)
    window_start: int = Field(primary_key=True)
    count: int = 0


class Cancellation(SQLModel, table=True):
    """A subscription's cancellation in one billing period, from the webhook's events
    (`billing.retention.records`): the latest request of the period, and whether it was undone
    or the org subscribed again later."""

    __tablename__ = "cancellations"

    subscription_id: str = Field(primary_key=True, max_length=255)
    period_end: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The end of the billing period it was asked in (unix seconds): the record's period."""
    org_id: str = Field(index=True, max_length=255)
    customer_id: str = Field(max_length=255)
    canceled_at: datetime | None = Field(default=None, sa_column=_ts())
    """When the latest cancellation of the period was asked for (None: only an undo seen yet)."""
    reason: str | None = Field(default=None, max_length=64)
    feedback: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    undone_at: datetime | None = Field(default=None, sa_column=_ts())
    """When the customer last undid a cancellation of the period ("Keep my plan")."""
    resubscribed_at: datetime | None = Field(default=None, sa_column=_ts())
    """When the org started a new subscription after this one was canceled."""
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class RetentionOffer(SQLModel, table=True):
    """A retention coupon offered in a subscription's cancel flow, once per billing period, and
    its acceptance (the subscription gained the coupon instead of canceling)."""

    __tablename__ = "retention_offers"

    subscription_id: str = Field(primary_key=True, max_length=255)
    period_end: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    """The end of the billing period it was offered in (unix seconds)."""
    org_id: str = Field(index=True, max_length=255)
    coupon: str = Field(max_length=255)
    made_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=_ts())
    discount_id: str | None = Field(default=None, max_length=255)
    """The discount the accepted offer gave (each discount counts once)."""
