"""Plain views of Stripe objects: what the rest of the service reads instead of the SDK's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from billing.gateway.portal_shape import PortalShape

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


@dataclass(frozen=True)
class CustomerState:
    """A customer, every subscription it has and the lookup keys of its active entitlements:
    what an entitlement is projected from."""

    customer: CustomerView
    subscriptions: list[SubscriptionView]
    features: frozenset[str] = frozenset()


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
