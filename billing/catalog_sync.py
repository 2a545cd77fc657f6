"""Catalog and portal configuration as code: compare the plans file with Stripe, then apply."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from billing.portal_config import PortalShape
from billing.services import Services
from billing.stripe_api import MANAGED_MARKER, ConfigurationCreateParams

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class Change:
    """One line of the plan of changes."""

    action: Action
    kind: str
    key: str
    detail: str = ""


class SyncError(Exception):
    """The plans file and Stripe cannot be reconciled as asked."""


async def sync_catalog(services: Services, dry_run: bool) -> list[Change]:
    """Products by plan, prices by lookup_key; a changed price is a new price taking the key."""
    stripe = services.stripe
    catalog = services.catalog
    changes: list[Change] = []
    products = await stripe.managed_products()
    prices = await stripe.prices_by_lookup_keys([p.lookup_key for _, _, p in catalog.paid_prices()])
    for slug, plan in catalog.plans.items():
        if not plan.prices:
            continue
        product = products.get(slug)
        if product is None:
            changes.append(Change("create", "product", slug, plan.name))
            product_id = f"(new product {slug})"
            if not dry_run:
                product_id = await stripe.create_product(slug, plan.name)
        else:
            product_id = product.id
            if product.name != plan.name or not product.active:
                changes.append(Change("update", "product", slug, f"name {plan.name!r}, active"))
                if not dry_run:
                    await stripe.update_product(product.id, plan.name)
            else:
                changes.append(Change("unchanged", "product", slug, product.id))
        for interval, spec in plan.prices.items():
            current = prices.get(spec.lookup_key)
            wanted = f"{spec.amount} {spec.currency}/{interval}"
            if current and (
                current.unit_amount,
                current.currency,
                current.interval,
                current.product_id,
            ) == (spec.amount, spec.currency, interval, product_id):
                changes.append(Change("unchanged", "price", spec.lookup_key, current.id))
                continue
            action: Action = "update" if current else "create"
            detail = f"{wanted} (replaces {current.id})" if current else wanted
            changes.append(Change(action, "price", spec.lookup_key, detail))
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
    return changes


async def _portal_params(services: Services) -> ConfigurationCreateParams:
    """The portal configuration the plans file asks for (needs a synced catalog)."""
    portal = services.catalog.portal
    catalog = services.catalog
    keys = [
        catalog.plans[s].prices[i].lookup_key
        for s in portal.plan_switching
        for i in catalog.plans[s].prices
    ]
    found = await services.stripe.prices_by_lookup_keys(keys) if keys else {}
    missing = sorted(set(keys) - set(found))
    if missing:
        raise SyncError(f"prices missing in Stripe: {', '.join(missing)}; run `catalog sync` first")
    by_product: dict[str, list[str]] = {}
    for key in keys:
        by_product.setdefault(found[key].product_id, []).append(found[key].id)
    params: ConfigurationCreateParams = {
        "features": {
            "invoice_history": {"enabled": portal.invoice_history},
            "payment_method_update": {"enabled": portal.payment_method_update},
            "subscription_cancel": {"enabled": True, "mode": portal.cancel_mode},
            "subscription_update": {"enabled": bool(by_product)},
        },
        "default_return_url": f"{services.settings.app_url}/settings/billing",
        "metadata": {"managed_by": MANAGED_MARKER},
    }
    if portal.headline:
        params["business_profile"] = {"headline": portal.headline}
    if by_product:
        params["features"]["subscription_update"] = {
            "enabled": True,
            "default_allowed_updates": ["price"],
            "proration_behavior": "create_prorations",
            "products": [{"product": p, "prices": ids} for p, ids in by_product.items()],
        }
    return params


async def sync_portal(services: Services, dry_run: bool) -> list[Change]:
    """Create or update the managed Customer Portal configuration."""
    params = await _portal_params(services)
    configs = await services.stripe.portal_configurations()
    current = next((c for c in configs if c.metadata.get("managed_by") == MANAGED_MARKER), None)
    wanted = PortalShape.of(params)
    if current is not None and current.shape == wanted:
        return [Change("unchanged", "portal configuration", current.id)]
    if current is None:
        change = Change("create", "portal configuration", MANAGED_MARKER, str(asdict(wanted)))
    else:
        change = Change(
            "update", "portal configuration", current.id, str(wanted.changes_from(current.shape))
        )
    if not dry_run:
        await services.stripe.save_portal_configuration(current.id if current else None, params)
    return [change]
