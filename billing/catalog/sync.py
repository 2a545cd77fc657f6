"""Catalog and portal configuration as code: compare the plans file with Stripe, then apply."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from billing.catalog.plans import Catalog, CouponSpec
from billing.gateway.client import (
    ConfigurationCreateParams,
    CouponCreateParams,
    PortalProductParams,
    PortalQuantityParams,
    StripeGateway,
)
from billing.gateway.portal_shape import PortalShape
from billing.gateway.views import MANAGED_MARKER
from billing.kit.settings import Settings

Action = Literal["create", "update", "attach", "detach", "unchanged"]


@dataclass(frozen=True)
class SyncStep:
    """One step of the plan of changes: create, update or keep a product, price, feature or
    portal; attach or detach a feature on a product."""

    action: Action
    kind: str
    key: str
    detail: str = ""


NEW = "(new)"
"""The id of what a dry run would create."""


class SyncError(Exception):
    """The plans file and Stripe cannot be reconciled as asked."""


async def sync_catalog(stripe: StripeGateway, catalog: Catalog, dry_run: bool) -> list[SyncStep]:
    """Products by plan, prices by lookup_key (a changed price is a new price taking the key),
    then features by lookup_key and the plans' features on their products."""
    steps: list[SyncStep] = []
    coupons = await _coupon_plan(stripe, catalog)  # refuses before anything is written
    product_ids: dict[str, str] = {}
    products = await stripe.managed_products()
    prices = await stripe.prices_by_lookup_keys([p.lookup_key for _, _, p in catalog.paid_prices()])
    for slug, plan in catalog.plans.items():
        if not plan.prices:
            continue
        product = products.get(slug)
        if product is None:
            steps.append(SyncStep("create", "product", slug, plan.name))
            product_id = NEW
            if not dry_run:
                product_id = await stripe.create_product(slug, plan.name)
        else:
            product_id = product.id
            if product.name != plan.name or not product.active:
                steps.append(SyncStep("update", "product", slug, f"name {plan.name!r}, active"))
                if not dry_run:
                    await stripe.update_product(product.id, plan.name)
            else:
                steps.append(SyncStep("unchanged", "product", slug, product.id))
        product_ids[slug] = product_id
        for interval, spec in plan.prices.items():
            current = prices.get(spec.lookup_key)
            wanted = f"{spec.amount} {spec.currency}/{interval}"
            if current and (
                current.unit_amount,
                current.currency,
                current.interval,
                current.product_id,
            ) == (spec.amount, spec.currency, interval, product_id):
                steps.append(SyncStep("unchanged", "price", spec.lookup_key, current.id))
                continue
            action: Action = "update" if current else "create"
            detail = f"{wanted} (replaces {current.id})" if current else wanted
            steps.append(SyncStep(action, "price", spec.lookup_key, detail))
            if dry_run:
                continue
            await stripe.create_price(
                product_id,
                spec.lookup_key,
                spec.amount,
                spec.currency,
                interval,
                replaces=current.id if current else None,
            )
            if current is not None:
                await stripe.deactivate_price(current.id)
    feature_ids = await _sync_features(stripe, catalog, dry_run, steps)
    for slug, product_id in product_ids.items():
        granted = {key: feature_ids[key] for key in sorted(catalog.plans[slug].features)}
        steps += await _sync_product_features(stripe, slug, product_id, granted, dry_run)
    for step in coupons:
        steps.append(step)
        if dry_run or step.action == "unchanged":
            continue
        coupon = catalog.coupons[step.key]
        if step.action == "create":
            await stripe.create_coupon(_coupon_params(step.key, coupon))
        elif coupon.name is not None:
            await stripe.rename_coupon(step.key, coupon.name)
    return steps


_TERMS = ("percent_off", "amount_off", "currency", "duration", "duration_in_months")
"""A coupon's terms: Stripe never changes them once the coupon exists."""


async def _coupon_plan(stripe: StripeGateway, catalog: Catalog) -> list[SyncStep]:
    """What to do for each coupon of `[coupons]`: create it with its id, rename it, or nothing;
    SyncError when one exists in Stripe with other terms (a coupon's terms are fixed: give the
    changed coupon a new id)."""
    steps: list[SyncStep] = []
    existing = await stripe.coupons() if catalog.coupons else {}
    for coupon_id, spec in catalog.coupons.items():
        current = existing.get(coupon_id)
        if current is None:
            steps.append(SyncStep("create", "coupon", coupon_id, spec.describe()))
            continue
        differ = [
            name
            for name in _TERMS
            if getattr(current, name) != getattr(spec, name)
            and not (name == "percent_off" and _same_percent(current.percent_off, spec.percent_off))
        ]
        if differ:
            raise SyncError(
                f"coupon {coupon_id} exists in Stripe with other terms ({', '.join(differ)}); "
                "a coupon's terms cannot change: give the new terms a new id"
            )
        if spec.name is not None and current.name != spec.name:
            steps.append(SyncStep("update", "coupon", coupon_id, f"name {spec.name!r}"))
        else:
            steps.append(SyncStep("unchanged", "coupon", coupon_id, spec.describe()))
    return steps


def _same_percent(have: float | None, want: float | None) -> bool:
    """Equal percentages (Stripe answers a float, the file may say an int)."""
    return have is not None and want is not None and abs(have - want) < 1e-9


def _coupon_params(coupon_id: str, spec: CouponSpec) -> CouponCreateParams:
    """The create params of a coupon of `[coupons]`."""
    params: CouponCreateParams = {
        "id": coupon_id,
        "duration": spec.duration,
        "metadata": {"managed_by": MANAGED_MARKER},
    }
    if spec.name is not None:
        params["name"] = spec.name
    if spec.percent_off is not None:
        params["percent_off"] = spec.percent_off
    if spec.amount_off is not None and spec.currency is not None:
        params["amount_off"] = spec.amount_off
        params["currency"] = spec.currency
    if spec.duration_in_months is not None:
        params["duration_in_months"] = spec.duration_in_months
    return params


async def _sync_features(
    stripe: StripeGateway, catalog: Catalog, dry_run: bool, steps: list[SyncStep]
) -> dict[str, str]:
    """Create, rename or reactivate the features of `[features]`; their ids by lookup key."""
    existing = await stripe.features()
    ids: dict[str, str] = {}
    for key, spec in catalog.features.items():
        current = existing.get(key)
        if current is None:
            steps.append(SyncStep("create", "feature", key, spec.name))
            ids[key] = NEW if dry_run else await stripe.create_feature(key, spec.name)
            continue
        ids[key] = current.id
        if (current.name, current.active) == (spec.name, True):
            steps.append(SyncStep("unchanged", "feature", key, current.id))
            continue
        steps.append(SyncStep("update", "feature", key, f"name {spec.name!r}, active"))
        if not dry_run:
            await stripe.update_feature(current.id, spec.name)
    return ids


async def _sync_product_features(
    stripe: StripeGateway, slug: str, product_id: str, wanted: dict[str, str], dry_run: bool
) -> list[SyncStep]:
    """Attach a plan's `wanted` features (ids by lookup key) to its product; detach the managed
    ones it no longer lists (never one `catalog sync` did not create: a feature attached in the
    Dashboard stays)."""
    steps: list[SyncStep] = []
    attached = [] if product_id == NEW else await stripe.product_features(product_id)
    have = {pf.feature.lookup_key: pf for pf in attached}
    for key, feature_id in wanted.items():
        if key in have:
            steps.append(SyncStep("unchanged", "product feature", f"{slug}/{key}", have[key].id))
            continue
        steps.append(SyncStep("attach", "product feature", f"{slug}/{key}", feature_id))
        if not dry_run:
            await stripe.attach_feature(product_id, feature_id)
    for key, product_feature in sorted(have.items()):
        if key in wanted or not product_feature.feature.managed:
            continue
        steps.append(SyncStep("detach", "product feature", f"{slug}/{key}", product_feature.id))
        if not dry_run:
            await stripe.detach_feature(product_id, product_feature.id)
    return steps


def _portal_plans(catalog: Catalog) -> list[str]:
    """The plans the portal offers: those it may switch to, then every per-seat plan (a seat
    change is confirmed in the portal, and Stripe confirms only prices the portal lists)."""
    per_seat = [slug for slug, plan in catalog.plans.items() if plan.seats and plan.prices]
    return list(dict.fromkeys([*catalog.portal.plan_switching, *per_seat]))


async def _portal_params(
    stripe: StripeGateway, catalog: Catalog, settings: Settings
) -> ConfigurationCreateParams:
    """The portal configuration the plans file asks for (needs a synced catalog)."""
    portal = catalog.portal
    slugs = _portal_plans(catalog)
    keys = [catalog.plans[s].prices[i].lookup_key for s in slugs for i in catalog.plans[s].prices]
    found = await stripe.prices_by_lookup_keys(keys) if keys else {}
    missing = sorted(set(keys) - set(found))
    if missing:
        raise SyncError(f"prices missing in Stripe: {', '.join(missing)}; run `catalog sync` first")
    products: list[PortalProductParams] = []
    for slug in slugs:
        plan = catalog.plans[slug]
        quantity: PortalQuantityParams = (
            {"enabled": True, "minimum": plan.seats.min, "maximum": plan.seats.max}
            if plan.seats
            else {"enabled": False}
        )
        prices = [found[price.lookup_key] for price in plan.prices.values()]
        for product_id in dict.fromkeys(price.product_id for price in prices):
            ids = [p.id for p in prices if p.product_id == product_id]
            products.append({"product": product_id, "prices": ids, "adjustable_quantity": quantity})
    params: ConfigurationCreateParams = {
        "features": {
            "invoice_history": {"enabled": portal.invoice_history},
            "payment_method_update": {"enabled": portal.payment_method_update},
            "subscription_cancel": {
                "enabled": True,
                "mode": portal.cancel_mode,
                "cancellation_reason": {
                    "enabled": bool(portal.cancellation_reasons),
                    "options": list(portal.cancellation_reasons) or "",
                },
            },
            "subscription_update": {"enabled": bool(products)},
        },
        "default_return_url": f"{settings.app_url}/settings/billing",
        "metadata": {"managed_by": MANAGED_MARKER},
    }
    if portal.headline:
        params["business_profile"] = {"headline": portal.headline}
    if products:
        per_seat = any(p["adjustable_quantity"]["enabled"] for p in products)
        params["features"]["subscription_update"] = {
            "enabled": True,
            "default_allowed_updates": ["price", "quantity"] if per_seat else ["price"],
            "proration_behavior": "create_prorations",
            "products": products,
        }
        if portal.downgrades == "at_period_end":
            params["features"]["subscription_update"]["schedule_at_period_end"] = {
                "conditions": [{"type": "decreasing_item_amount"}, {"type": "shortening_interval"}]
            }
    params["features"]["customer_update"] = (
        {"enabled": True, "allowed_updates": list(portal.customer_update)}
        if portal.customer_update
        else {"enabled": False}
    )
    return params


async def sync_portal(
    stripe: StripeGateway, catalog: Catalog, settings: Settings, dry_run: bool
) -> list[SyncStep]:
    """Create or update the managed Customer Portal configuration."""
    params = await _portal_params(stripe, catalog, settings)
    configs = await stripe.portal_configurations()
    current = next((c for c in configs if c.metadata.get("managed_by") == MANAGED_MARKER), None)
    wanted = PortalShape.of(params)
    if current is not None and current.shape == wanted:
        return [SyncStep("unchanged", "portal configuration", current.id)]
    if current is None:
        step = SyncStep("create", "portal configuration", MANAGED_MARKER, str(asdict(wanted)))
    else:
        step = SyncStep(
            "update", "portal configuration", current.id, str(wanted.changes_from(current.shape))
        )
    if not dry_run:
        await stripe.save_portal_configuration(current.id if current else None, params)
    return [step]
