"""Plain views of Stripe objects: what the rest of the service reads instead of the SDK's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from billing.gateway.portal_shape import PortalShape

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
"""Subscription statuses after which nothing more happens to a subscription."""

MANAGED_MARKER = "billing-api"
"""Metadata value that marks the products and portal configuration this service manages."""


def from_timestamp(value: int | None) -> datetime | None:
    """A Stripe unix timestamp as an aware datetime."""
    return datetime.fromtimestamp(value, UTC) if value else None


@dataclass(frozen=True)
class PriceView:
    """A recurring price."""

    id: str
    lookup_key: str | None
    unit_amount: int | None
    currency: str
    interval: str | None
    product_id: str
    active: bool


@dataclass(frozen=True)
class ProductView:
    """A product."""

    id: str
    name: str
    active: bool
    metadata: dict[str, str]


@dataclass(frozen=True)
class CustomerView:
    """A customer, or what is left of a deleted one."""

    id: str
    deleted: bool
    metadata: dict[str, str]
    has_payment_method: bool = False
    """A default payment method (or source) is on file for invoices."""


@dataclass(frozen=True)
class InvoiceView:
    """A subscription's latest invoice: whether its payment failed or waits for the customer."""

    id: str
    status: str | None
    attempted: bool
    next_payment_attempt: datetime | None
    hosted_invoice_url: str | None
    payment_intent_id: str | None
    """The payment intent of its default invoice payment, when it has one."""
    payment_status: str | None = None
    """That payment intent's status (`requires_action`...), read when the invoice is open."""

    @property
    def unpaid_attempt(self) -> bool:
        """Open and already tried: Stripe could not collect it."""
        return self.status == "open" and self.attempted


@dataclass(frozen=True)
class PhaseView:
    """One phase of a subscription schedule: its first item's price and quantity."""

    start: datetime
    end: datetime | None
    price_lookup_key: str | None
    interval: str | None
    quantity: int


@dataclass(frozen=True)
class ScheduleView:
    """A subscription schedule: the phases Stripe will move the subscription through."""

    id: str
    status: str
    current_start: datetime | None
    phases: tuple[PhaseView, ...]

    def next_phase(self) -> PhaseView | None:
        """The first phase starting after the current one (None once in the last phase)."""
        if self.status not in ("not_started", "active"):
            return None
        later = [
            p for p in self.phases if self.current_start is None or p.start > self.current_start
        ]
        return min(later, key=lambda p: p.start) if later else None


@dataclass(frozen=True)
class DiscountView:
    """A discount on a subscription, with its coupon's terms when the coupon was expanded."""

    id: str
    coupon_id: str | None = None
    name: str | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: str | None = None
    """`once`, `repeating` or `forever`."""
    duration_in_months: int | None = None
    end: datetime | None = None
    """When a `repeating` discount leaves the subscription."""


@dataclass(frozen=True)
class SubscriptionView:
    """The parts of a subscription the entitlement is made of."""

    id: str
    customer_id: str
    status: str
    created: int
    cancel_at_period_end: bool
    cancel_at: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None
    item_id: str | None
    quantity: int
    price_id: str | None
    price_lookup_key: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    trial_start: datetime | None = None
    has_payment_method: bool = False
    """The subscription names its own default payment method."""
    latest_invoice: InvoiceView | None = None
    schedule_id: str | None = None
    schedule: ScheduleView | None = None
    """Read for a live subscription with a schedule."""
    discounts: tuple[DiscountView, ...] = ()
    """Its discounts (only their ids unless the list was read with them expanded)."""

    @property
    def ended(self) -> bool:
        """Canceled or expired: nothing more happens to it."""
        return self.status in ENDED_STATUSES


@dataclass(frozen=True)
class CustomerState:
    """A customer, every subscription it has and the lookup keys of its active entitlements:
    what an entitlement is projected from."""

    customer: CustomerView
    subscriptions: list[SubscriptionView]
    features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CouponView:
    """A coupon, reduced to the terms `catalog sync` compares."""

    id: str
    name: str | None
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    valid: bool


@dataclass(frozen=True)
class FeatureView:
    """A Stripe Feature (Entitlements), found by its lookup key."""

    id: str
    lookup_key: str
    name: str
    active: bool
    metadata: dict[str, str]

    @property
    def managed(self) -> bool:
        """Whether `catalog sync` created (and so may detach) it."""
        return self.metadata.get("managed_by") == MANAGED_MARKER


@dataclass(frozen=True)
class ProductFeatureView:
    """A feature attached to a product."""

    id: str
    feature: FeatureView


@dataclass(frozen=True)
class PortalConfigView:
    """A Customer Portal configuration, reduced to the fields we manage."""

    id: str
    is_default: bool
    metadata: dict[str, str]
    shape: PortalShape
