"""The managed Customer Portal configuration's shape, read the same way in both directions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PortalShape:
    """The fields of a portal configuration that `portal sync` manages and compares."""

    headline: str | None
    default_return_url: str | None
    invoice_history: bool
    payment_method_update: bool
    cancel_enabled: bool
    cancel_mode: str | None
    switch_enabled: bool
    switch_prices: tuple[str, ...]
    allowed_updates: tuple[str, ...]
    adjustable_quantities: tuple[tuple[str, int, int | None], ...]
    """(product, minimum, maximum) of each product whose quantity the portal may change."""
    schedule_conditions: tuple[str, ...] = ()
    """Changes the portal schedules at the period's end instead of making now."""
    customer_updates: tuple[str, ...] = ()
    """What customers may update about themselves (none: the feature is off)."""
    cancellation_reasons: tuple[str, ...] = ()
    """The cancel flow's reason survey, in order (none: the survey is off)."""

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> PortalShape:
        """Read a configuration in Stripe's shape: an object Stripe returned, or our params."""
        features = config.get("features") or {}
        cancel = features.get("subscription_cancel") or {}
        update = features.get("subscription_update") or {}
        return cls(
            headline=(config.get("business_profile") or {}).get("headline"),
            default_return_url=config.get("default_return_url"),
            invoice_history=_enabled(features, "invoice_history"),
            payment_method_update=_enabled(features, "payment_method_update"),
            cancel_enabled=bool(cancel.get("enabled")),
            cancel_mode=cancel.get("mode"),
            switch_enabled=bool(update.get("enabled")),
            switch_prices=tuple(
                sorted(
                    price for product in update.get("products") or [] for price in product["prices"]
                )
            ),
            allowed_updates=tuple(sorted(update.get("default_allowed_updates") or [])),
            adjustable_quantities=tuple(
                sorted(
                    (product["product"], int(quantity.get("minimum") or 1), quantity.get("maximum"))
                    for product in update.get("products") or []
                    if (quantity := product.get("adjustable_quantity") or {}).get("enabled")
                )
            ),
            schedule_conditions=tuple(
                sorted(
                    condition["type"]
                    for condition in (update.get("schedule_at_period_end") or {}).get("conditions")
                    or []
                )
            ),
            customer_updates=tuple(sorted(customer.get("allowed_updates") or []))
            if (customer := features.get("customer_update") or {}).get("enabled")
            else (),
            cancellation_reasons=tuple(reason.get("options") or [])
            if (reason := cancel.get("cancellation_reason") or {}).get("enabled")
            else (),
        )

    def changes_from(self, current: PortalShape) -> dict[str, object]:
        """The fields that differ from `current`, with this shape's values."""
        mine, theirs = asdict(self), asdict(current)
        return {name: value for name, value in mine.items() if theirs[name] != value}


def _enabled(features: Mapping[str, Any], name: str) -> bool:
    """Whether a portal feature is enabled."""
    return bool((features.get(name) or {}).get("enabled"))
