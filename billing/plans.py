"""The plan catalog from PLANS_FILE, validated at start-up."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Interval = Literal["month", "year"]
SLUG = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class CatalogError(Exception):
    """The plans file is missing or invalid."""


class PriceSpec(BaseModel):
    """One recurring price of a plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_key: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    amount: int = Field(ge=0, le=99_999_999)
    currency: str = Field(pattern=r"^[a-z]{3}$")


class PlanSpec(BaseModel):
    """A plan: its name, limits and prices by interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    limits: dict[str, Any] = Field(default_factory=dict)
    prices: dict[Interval, PriceSpec] = Field(default_factory=dict)
    trial_days: int | None = Field(default=None, ge=1, le=730)


class PortalSpec(BaseModel):
    """The Customer Portal configuration, as code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headline: str | None = Field(default=None, max_length=60)
    cancel_mode: Literal["at_period_end"] = "at_period_end"
    invoice_history: bool = True
    payment_method_update: bool = True
    plan_switching: list[str] = Field(default_factory=list)


class Catalog(BaseModel):
    """The whole plans file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str = Field(pattern=SLUG)
    plans: dict[str, PlanSpec]
    portal: PortalSpec = Field(default_factory=PortalSpec)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        """Check slugs, the default plan, unique lookup keys and the switchable plans."""
        import re

        for slug in self.plans:
            if not re.match(SLUG, slug):
                raise ValueError(f"plan slug {slug!r} must match {SLUG}")
        if self.default not in self.plans:
            raise ValueError(f"default plan {self.default!r} is not defined under [plans]")
        if self.plans[self.default].prices:
            raise ValueError(f"default plan {self.default!r} must not have prices")
        seen: dict[str, str] = {}
        for slug, plan in self.plans.items():
            for interval, price in plan.prices.items():
                if price.lookup_key in seen:
                    raise ValueError(
                        f"lookup_key {price.lookup_key!r} is used by both "
                        f"{seen[price.lookup_key]} and {slug}.{interval}"
                    )
                seen[price.lookup_key] = f"{slug}.{interval}"
        for slug in self.portal.plan_switching:
            if slug not in self.plans or not self.plans[slug].prices:
                raise ValueError(f"portal.plan_switching names {slug!r}, which is not a paid plan")
        return self

    def price(self, plan: str, interval: Interval) -> PriceSpec | None:
        """The price of a plan for an interval, if any."""
        spec = self.plans.get(plan)
        return spec.prices.get(interval) if spec else None

    def by_lookup_key(self, lookup_key: str | None) -> tuple[str, Interval] | None:
        """The (plan, interval) a price lookup key belongs to."""
        for slug, plan in self.plans.items():
            for interval, price in plan.prices.items():
                if price.lookup_key == lookup_key:
                    return slug, interval
        return None

    def paid_prices(self) -> list[tuple[str, Interval, PriceSpec]]:
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
