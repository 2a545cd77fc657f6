"""The plan catalog from PLANS_FILE, validated at start-up."""

from __future__ import annotations

import enum
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class BillingInterval(enum.StrEnum):
    """How often a price bills."""

    MONTH = "month"
    YEAR = "year"


SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"

MAX_QUANTITY = 999_999
"""The largest seat count a plan may sell (Stripe's quantities are far larger; this keeps a
typo such as an extra zero row out of the plans file)."""


class CatalogError(Exception):
    """The plans file is missing or invalid."""


class PriceSpec(BaseModel):
    """One recurring price of a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_key: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    amount: int = Field(ge=0, le=99_999_999)
    currency: str = Field(pattern=r"^[a-z]{3}$")


class SeatRange(BaseModel):
    """How many seats a per-seat plan sells: its price's quantity stays within min..max."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(ge=1, le=MAX_QUANTITY)
    max: int = Field(ge=1, le=MAX_QUANTITY)

    @model_validator(mode="after")
    def _ordered(self) -> SeatRange:
        """min ≤ max."""
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not be above max ({self.max})")
        return self

    def __contains__(self, seats: object) -> bool:
        """Whether a seat count is within the range."""
        return isinstance(seats, int) and self.min <= seats <= self.max

    def clamp(self, seats: int) -> int:
        """The nearest seat count within the range."""
        return max(self.min, min(self.max, seats))


FEATURE_KEY = r"^[A-Za-z0-9_.:-]{1,80}$"
"""A feature's lookup key (Stripe allows up to 80 characters)."""


class FeatureSpec(BaseModel):
    """A feature of `[features]`: created in Stripe by its lookup key (the table's key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)


COUPON_ID = r"^[A-Za-z0-9_-]{1,64}$"
"""A coupon id of `[coupons]` (created in Stripe with exactly this id)."""


class CouponSpec(BaseModel):
    """A coupon of `[coupons]`: created by `catalog sync` with its id (the table's key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, min_length=1, max_length=40)
    percent_off: float | None = Field(default=None, gt=0, le=100)
    amount_off: int | None = Field(default=None, ge=1, le=99_999_999)
    currency: str | None = Field(default=None, pattern=r"^[a-z]{3}$")
    duration: Literal["once", "repeating", "forever"]
    duration_in_months: int | None = Field(default=None, ge=1, le=120)

    @model_validator(mode="after")
    def _terms(self) -> CouponSpec:
        """Exactly one of percent_off and amount_off (with its currency); months iff repeating."""
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of percent_off and amount_off")
        if (self.amount_off is None) != (self.currency is None):
            raise ValueError("amount_off needs a currency, and only amount_off takes one")
        if (self.duration == "repeating") != (self.duration_in_months is not None):
            raise ValueError('duration_in_months goes with duration = "repeating", and only there')
        return self

    def describe(self) -> str:
        """The terms in words: "20% off for 3 months", "5.00 usd off once"."""
        if self.percent_off is not None:
            off = f"{self.percent_off:g}% off"
        else:
            off = f"{(self.amount_off or 0) / 100:.2f} {self.currency} off"
        if self.duration == "repeating":
            months = self.duration_in_months
            return f"{off} for {months} month{'s' if months != 1 else ''}"
        return f"{off} {self.duration}"


CancellationReason = Literal[
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
]
"""Stripe's options for the portal's cancellation survey (and `cancellation_details.feedback`)."""


class PlanSpec(BaseModel):
    """A plan: its name, limits, features, prices by interval and, if per seat, its seats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    limits: dict[str, Any] = Field(default_factory=dict)
    prices: dict[BillingInterval, PriceSpec] = Field(default_factory=dict)
    trial_days: int | None = Field(default=None, ge=1, le=730)
    trial_card: Literal["required", "optional"] = "required"
    """`optional`: a card-less trial (Checkout collects a card only if required)."""
    trial_end_without_card: Literal["cancel", "pause"] | None = None
    """What Stripe does when a card-less trial ends with no payment method (its default when
    unset: invoice, which then fails)."""
    seats: SeatRange | None = None
    """Set for a per-seat plan: its prices are per seat, their quantity is the seat count."""
    features: frozenset[str] = frozenset()
    """Lookup keys of the features (`[features]`) the plan grants."""

    def limits_for(self, seats: int | None) -> dict[str, Any]:
        """The plan's limits, `seats` set to the purchased seats when given (a per-seat plan)."""
        return dict(self.limits) if seats is None else {**self.limits, "seats": seats}


class CheckoutSpec(BaseModel):
    """Checkout options, each mapped one to one onto the Checkout Session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    promotion_codes: bool = False
    """`allow_promotion_codes`."""
    automatic_tax: bool = False
    """`automatic_tax.enabled`."""
    tax_id_collection: bool = False
    """`tax_id_collection.enabled`."""
    billing_address: Literal["auto", "required"] = "auto"
    """`billing_address_collection`."""


CustomerUpdate = Literal["email", "address", "shipping", "phone", "tax_id", "name"]


class PortalSpec(BaseModel):
    """The Customer Portal configuration, as code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str | None = Field(default=None, max_length=60)
    cancel_mode: Literal["at_period_end"] = "at_period_end"
    invoice_history: bool = True
    payment_method_update: bool = True
    plan_switching: list[str] = Field(default_factory=list)
    downgrades: Literal["immediately", "at_period_end"] = "immediately"
    """`at_period_end`: downgrades wait for the period's end in a subscription schedule."""
    customer_update: list[CustomerUpdate] = Field(default_factory=list)
    """What customers may update about themselves in the portal (none: the feature is off)."""
    cancellation_reasons: list[CancellationReason] = Field(default_factory=list)
    """The reason survey of the portal's cancel flow, in this order (none: no survey)."""
    retention_coupon: str | None = None
    """A coupon of `[coupons]` offered in the cancel flow `openPortal` deep-links to."""


class Catalog(BaseModel):
    """The whole plans file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str = Field(pattern=SLUG)
    plans: dict[str, PlanSpec]
    features: dict[str, FeatureSpec] = Field(default_factory=dict)
    coupons: dict[str, CouponSpec] = Field(default_factory=dict)
    checkout: CheckoutSpec = Field(default_factory=CheckoutSpec)
    portal: PortalSpec = Field(default_factory=PortalSpec)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        """Check slugs, the default plan, unique lookup keys, features and switchable plans."""
        for slug in self.plans:
            if not re.match(SLUG, slug):
                raise ValueError(f"plan slug {slug!r} must match {SLUG}")
        for key in self.features:
            if not re.match(FEATURE_KEY, key):
                raise ValueError(f"features.{key}: a lookup key must match {FEATURE_KEY}")
        for slug, plan in self.plans.items():
            for key in sorted(plan.features - self.features.keys()):
                raise ValueError(
                    f"plans.{slug}.features: feature {key!r} is not defined under [features]"
                )
        for slug, plan in self.plans.items():
            if plan.trial_days is None and (
                plan.trial_card != "required" or plan.trial_end_without_card
            ):
                raise ValueError(
                    f"plans.{slug}: trial_card and trial_end_without_card need trial_days"
                )
            if plan.trial_end_without_card and plan.trial_card != "optional":
                raise ValueError(
                    f"plans.{slug}.trial_end_without_card: only a card-less trial "
                    '(trial_card = "optional") can end without a card'
                )
        if self.default not in self.plans:
            raise ValueError(f"default plan {self.default!r} is not defined under [plans]")
        if self.plans[self.default].prices:
            raise ValueError(f"default plan {self.default!r} must not have prices")
        if self.plans[self.default].seats is not None:
            raise ValueError(f"default plan {self.default!r} must not be per seat")
        seen: dict[str, str] = {}
        for slug, plan in self.plans.items():
            for interval, price in plan.prices.items():
                if price.lookup_key in seen:
                    raise ValueError(
                        f"lookup_key {price.lookup_key!r} is used by both "
                        f"{seen[price.lookup_key]} and {slug}.{interval}"
                    )
                seen[price.lookup_key] = f"{slug}.{interval}"
        for key in self.coupons:
            if not re.match(COUPON_ID, key):
                raise ValueError(f"coupons.{key}: a coupon id must match {COUPON_ID}")
        coupon = self.portal.retention_coupon
        if coupon is not None and coupon not in self.coupons:
            raise ValueError(
                f"portal.retention_coupon: coupon {coupon!r} is not defined under [coupons]"
            )
        if len(set(self.portal.cancellation_reasons)) != len(self.portal.cancellation_reasons):
            raise ValueError("portal.cancellation_reasons: an option is listed twice")
        for slug in self.portal.plan_switching:
            if slug not in self.plans or not self.plans[slug].prices:
                raise ValueError(f"portal.plan_switching names {slug!r}, which is not a paid plan")
        return self

    def price(self, plan: str, interval: BillingInterval) -> PriceSpec | None:
        """The price of a plan for an interval, if any."""
        spec = self.plans.get(plan)
        return spec.prices.get(interval) if spec else None

    def by_lookup_key(self, lookup_key: str | None) -> tuple[str, BillingInterval] | None:
        """The (plan, interval) a price lookup key belongs to."""
        for slug, plan in self.plans.items():
            for interval, price in plan.prices.items():
                if price.lookup_key == lookup_key:
                    return slug, interval
        return None

    def paid_prices(self) -> list[tuple[str, BillingInterval, PriceSpec]]:
        """Every (plan, interval, price) in file order."""
        return [
            (slug, interval, price)
            for slug, plan in self.plans.items()
            for interval, price in plan.prices.items()
        ]


def load_catalog(path: Path) -> Catalog:
    """Read and validate the plans file, with an error that names the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"plans file not found: {path} (set PLANS_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"plans file {path} is not valid TOML: {exc}") from None
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f"{part}: " for part in (".".join(map(str, first["loc"])),) if part)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise CatalogError(f"plans file {path}: {where}{message}") from None
