"""The one module that talks to Stripe; everything else uses these plain views."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal, cast
from urllib.parse import quote

import stripe
from stripe._base_address import BaseAddresses
from stripe.params import (
    CouponCreateParams,
    CouponListParams,
    CouponUpdateParams,
    CustomerCreateParams,
    PriceCreateParams,
    PriceListParams,
    PriceModifyParams,
    ProductCreateParams,
    ProductFeatureCreateParams,
    ProductFeatureListParams,
    ProductListParams,
    ProductModifyParams,
    SubscriptionListParams,
)
from stripe.params.billing_portal import ConfigurationCreateParams, ConfigurationListParams
from stripe.params.billing_portal import (
    ConfigurationCreateParamsFeaturesSubscriptionUpdateProduct as PortalProductParams,
)
from stripe.params.billing_portal import (
    ConfigurationCreateParamsFeaturesSubscriptionUpdateProductAdjustableQuantity as PortalQuantityParams,  # noqa: E501
)
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
from stripe.params.billing_portal import SessionCreateParamsFlowData as PortalFlowParams
from stripe.params.billing_portal import (
    SessionCreateParamsFlowDataAfterCompletion as PortalAfterCompletionParams,
)
from stripe.params.billing_portal import (
    SessionCreateParamsFlowDataSubscriptionCancel as PortalCancelParams,
)
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams
from stripe.params.entitlements import (
    ActiveEntitlementListParams,
    FeatureCreateParams,
    FeatureListParams,
    FeatureUpdateParams,
)

from billing.gateway.errors import (
    StripeNotFound,
    StripeRateLimited,
    StripeRejected,
    StripeUnavailable,
)
from billing.gateway.portal_shape import PortalShape
from billing.gateway.throttle import StripeThrottle
from billing.gateway.views import (
    MANAGED_MARKER,
    CouponView,
    CustomerState,
    CustomerView,
    DiscountView,
    FeatureView,
    InvoiceView,
    PhaseView,
    PortalConfigView,
    PriceView,
    ProductFeatureView,
    ProductView,
    ScheduleView,
    SubscriptionView,
    from_timestamp,
)
from billing.kit import metrics
from billing.kit.settings import Settings

__all__ = [
    "CheckoutSessionParams",
    "ConfigurationCreateParams",
    "CouponCreateParams",
    "PortalAfterCompletionParams",
    "PortalCancelParams",
    "PortalFlowParams",
    "PortalProductParams",
    "PortalQuantityParams",
    "PortalSessionParams",
    "StripeGateway",
]
"""The SDK's typed request dictionaries are re-exported, so mypy checks the params the services
build while this stays the only module that imports `stripe`."""

log = logging.getLogger(__name__)

SdkLog = Callable[..., None]


def _when_shown(original: SdkLog, level: int) -> SdkLog:
    """The SDK's log function, called only when its line would be shown somewhere."""
    sdk_logger = logging.getLogger("stripe")

    def log_if_shown(message: str, **params: Any) -> None:
        """Format and log the line if the `stripe` logger, `stripe.log` or STRIPE_LOG shows it."""
        if sdk_logger.isEnabledFor(level) or stripe.log or os.environ.get("STRIPE_LOG"):
            original(message, **params)

    log_if_shown.__wrapped__ = original  # type: ignore[attr-defined]
    return log_if_shown


def _format_sdk_logs_only_when_shown() -> None:
    """The SDK formats its log lines of every request before `logging` decides to drop them,
    the whole response body included (`logfmt`: decoded, searched, `repr`-ed): about a sixth of
    a list read's CPU on the applier's path, for lines nobody sees at the default level. Its
    request and HTTP modules look the functions up by name, so those names get guarded ones."""
    for module in map(importlib.import_module, ("stripe._api_requestor", "stripe._util")):
        for name, level in (("log_debug", logging.DEBUG), ("log_info", logging.INFO)):
            original = getattr(module, name, None)
            if callable(original) and not hasattr(original, "__wrapped__"):
                setattr(module, name, _when_shown(original, level))


_format_sdk_logs_only_when_shown()


async def _none() -> None:
    """Nothing to read."""


def _id(value: Any) -> str | None:
    """The id of an expandable field, expanded or not."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _invoice_view(invoice: Any) -> InvoiceView | None:
    """Reduce an expanded invoice to what the billing state needs (None when not expanded)."""
    if not isinstance(invoice, dict):
        return None
    payments = (invoice.get("payments") or {}).get("data") or []
    default = next((p for p in payments if p.get("is_default")), payments[-1] if payments else None)
    payment = (default or {}).get("payment") or {}
    return InvoiceView(
        id=invoice["id"],
        status=invoice.get("status"),
        attempted=bool(invoice.get("attempted")),
        next_payment_attempt=from_timestamp(invoice.get("next_payment_attempt")),
        hosted_invoice_url=invoice.get("hosted_invoice_url"),
        payment_intent_id=_id(payment.get("payment_intent")),
    )


def _coupon_view(coupon: Any) -> CouponView:
    """Reduce a coupon."""
    percent = coupon.get("percent_off")
    return CouponView(
        id=coupon["id"],
        name=coupon.get("name"),
        percent_off=float(percent) if percent is not None else None,
        amount_off=coupon.get("amount_off"),
        currency=coupon.get("currency"),
        duration=coupon.get("duration") or "once",
        duration_in_months=coupon.get("duration_in_months"),
        valid=bool(coupon.get("valid", True)),
    )


def _discount_view(discount: Any) -> DiscountView | None:
    """A subscription's discount: its id only, or with its coupon's terms when expanded."""
    if isinstance(discount, str):
        return DiscountView(id=discount)
    if not isinstance(discount, dict) or not isinstance(discount.get("id"), str):
        return None
    coupon = (discount.get("source") or {}).get("coupon")
    if not isinstance(coupon, dict):
        return DiscountView(id=discount["id"], coupon_id=_id(coupon))
    terms = _coupon_view(coupon)
    return DiscountView(
        id=discount["id"],
        coupon_id=terms.id,
        name=terms.name,
        percent_off=terms.percent_off,
        amount_off=terms.amount_off,
        currency=terms.currency,
        duration=terms.duration,
        duration_in_months=terms.duration_in_months,
        end=from_timestamp(discount.get("end")),
    )


def _subscription_view(sub: Any) -> SubscriptionView:
    """Reduce a Stripe subscription to a SubscriptionView (period end from the item)."""
    items = sub["items"]["data"] if sub.get("items") else []
    item = items[0] if items else None
    price = item["price"] if item else None
    customer = sub["customer"]
    return SubscriptionView(
        id=sub["id"],
        customer_id=customer if isinstance(customer, str) else customer["id"],
        status=sub["status"],
        created=int(sub.get("created") or 0),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=from_timestamp(sub.get("cancel_at")),
        current_period_end=from_timestamp(item.get("current_period_end")) if item else None,
        trial_end=from_timestamp(sub.get("trial_end")),
        item_id=item["id"] if item else None,
        quantity=int(item.get("quantity") or 1) if item else 1,
        price_id=price["id"] if price else None,
        price_lookup_key=price.get("lookup_key") if price else None,
        metadata=dict(sub.get("metadata") or {}),
        trial_start=from_timestamp(sub.get("trial_start")),
        has_payment_method=bool(sub.get("default_payment_method") or sub.get("default_source")),
        latest_invoice=_invoice_view(sub.get("latest_invoice")),
        schedule_id=_id(sub.get("schedule")),
        discounts=tuple(
            found for d in sub.get("discounts") or [] if (found := _discount_view(d)) is not None
        ),
    )


def _phase_view(phase: Any) -> PhaseView:
    """One schedule phase, by its first item (price expanded)."""
    items = phase.get("items") or []
    item = items[0] if items else {}
    price = item.get("price")
    price = price if isinstance(price, dict) else {}
    return PhaseView(
        start=from_timestamp(phase["start_date"]) or datetime.fromtimestamp(0, UTC),
        end=from_timestamp(phase.get("end_date")),
        price_lookup_key=price.get("lookup_key"),
        interval=(price.get("recurring") or {}).get("interval"),
        quantity=int(item.get("quantity") or 1),
    )


def _schedule_view(schedule: Any) -> ScheduleView:
    """Reduce a subscription schedule (phase prices expanded)."""
    current = schedule.get("current_phase") or {}
    return ScheduleView(
        id=schedule["id"],
        status=schedule.get("status") or "",
        current_start=from_timestamp(current.get("start_date")),
        phases=tuple(_phase_view(phase) for phase in schedule.get("phases") or []),
    )


def _customer_view(customer: Any) -> CustomerView:
    """Reduce a customer (or a deleted one) to a CustomerView."""
    settings = customer.get("invoice_settings") or {}
    return CustomerView(
        id=customer["id"],
        deleted=bool(customer.get("deleted")),
        metadata=dict(customer.get("metadata") or {}),
        has_payment_method=bool(
            settings.get("default_payment_method") or customer.get("default_source")
        ),
    )


def _price_view(price: Any) -> PriceView:
    """Reduce a Stripe price to a PriceView."""
    product = price["product"]
    recurring = price.get("recurring")
    return PriceView(
        id=price["id"],
        lookup_key=price.get("lookup_key"),
        unit_amount=price.get("unit_amount"),
        currency=price["currency"],
        interval=recurring["interval"] if recurring else None,
        product_id=product if isinstance(product, str) else product["id"],
        active=bool(price.get("active")),
    )


def _feature_view(feature: Any) -> FeatureView:
    """Reduce a Stripe Feature to a FeatureView."""
    return FeatureView(
        id=feature["id"],
        lookup_key=feature["lookup_key"],
        name=feature["name"],
        active=bool(feature.get("active")),
        metadata=dict(feature.get("metadata") or {}),
    )


def _portal_view(config: Any) -> PortalConfigView:
    """Reduce a portal configuration to the fields `portal sync` manages."""
    return PortalConfigView(
        id=config["id"],
        is_default=bool(config.get("is_default")),
        metadata=dict(config.get("metadata") or {}),
        shape=PortalShape.of(config),
    )


def deadline(settings: Settings) -> float:
    """Seconds within which a Stripe call (and so a mutation) gives up.

    Every attempt may take the full timeout, plus the SDK's backoff between attempts
    (0.5 s doubling, at most 5 s, per stripe-python's HTTPClient).
    """
    retries = settings.stripe_max_retries
    backoff = sum(min(0.5 * 2.0**n, 5.0) for n in range(retries))
    return settings.stripe_timeout * (retries + 1) + backoff


def _classify(what: str, exc: stripe.StripeError) -> Exception:
    """Transient (no answer, 5xx, 409 in progress, 429) or a final refusal."""
    status = exc.http_status
    if status == 429:
        return StripeRateLimited(f"{what}: rate limited")
    if status is None or status >= 500 or status == 409:
        return StripeUnavailable(f"{what}: {type(exc).__name__}")
    detail = f"{what}: {type(exc).__name__} {exc.code or ''}".rstrip()
    if exc.code == "resource_missing":
        return StripeNotFound(detail, getattr(exc, "param", None))
    return StripeRejected(detail)


_OUTCOMES: dict[type[Exception], str] = {
    StripeRateLimited: "rate_limited",
    StripeUnavailable: "unavailable",
    StripeNotFound: "not_found",
    StripeRejected: "rejected",
}
"""The `outcome` label of a failed call, by the error it became."""


def _retry_after(headers: Any) -> float | None:
    """Seconds a 429's Retry-After header asks for, when it is a number."""
    try:
        return float(headers.get("retry-after")) if headers else None
    except (TypeError, ValueError):
        return None


class ThrottledHTTPClient(stripe.HTTPXClient):
    """The SDK's HTTP client, each attempt (retries too) paced by this process's throttle."""

    def __init__(self, throttle: StripeThrottle, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.throttle = throttle

    async def request_async(
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> tuple[bytes, int, Any]:
        """Wait for this request's turn, send it, and slow down on a 429."""
        await self.throttle.acquire()
        content, status, response_headers = await super().request_async(
            method, url, headers, post_data
        )
        if status == 429:
            metrics.STRIPE_RATE_LIMITED.inc()
            self.throttle.rate_limited(_retry_after(response_headers))
        else:
            self.throttle.succeeded()
        return content, status, response_headers


class StripeGateway:
    """Async calls to Stripe with bounded timeouts, retries and explicit idempotency keys.

    Every request waits its turn under STRIPE_RATE_LIMIT (`billing.gateway.throttle`)."""

    PRICE_CACHE_SECONDS = 60.0

    def __init__(self, settings: Settings) -> None:
        key = settings.stripe_secret_key
        if key is None:
            raise ValueError("STRIPE_SECRET_KEY is not set")
        base = settings.stripe_api_base
        addresses: BaseAddresses = {"api": base} if base else {}
        self.throttle = StripeThrottle(settings.stripe_rate)
        self._client = stripe.StripeClient(
            key.get_secret_value(),
            base_addresses=addresses,
            http_client=ThrottledHTTPClient(self.throttle, settings.stripe_timeout),
            max_network_retries=settings.stripe_max_retries,
        )
        self.deadline = deadline(settings)
        self._prices: dict[str, tuple[float, PriceView | None]] = {}
        self._portal_config: tuple[float, str | None] | None = None

    async def _call(self, what: str, coro: Any) -> Any:
        """Await one SDK call within the deadline, sorting failures into transient or not.

        A pause after a 429 is waited out first: it slows the call down, it does not count
        against the call's own deadline (nor in the call's recorded latency)."""
        await self.throttle.paused()
        elapsed = metrics.clock()
        outcome = "error"
        try:
            async with asyncio.timeout(self.deadline):
                result = await coro
            outcome = "ok"
            return result.to_dict() if hasattr(result, "to_dict") else result
        except asyncio.CancelledError:
            outcome = "canceled"
            raise
        except TimeoutError as exc:
            outcome = "timeout"
            log.warning("stripe %s timed out after %.1fs", what, self.deadline)
            raise StripeUnavailable(f"{what}: timeout") from exc
        except stripe.StripeError as exc:
            log.warning(
                "stripe %s failed: %s status=%s code=%s request=%s",
                what,
                type(exc).__name__,
                exc.http_status,
                exc.code,
                exc.request_id,
            )
            failure = _classify(what, exc)
            outcome = _OUTCOMES[type(failure)]
            raise failure from exc
        finally:
            metrics.observe(
                metrics.STRIPE_LATENCY, metrics.STRIPE_REQUESTS, what, outcome, elapsed()
            )

    # customers -----------------------------------------------------------------

    async def create_customer(self, org_id: str, idempotency_key: str) -> str:
        """Create the org's customer (metadata.org_id); the key makes racing calls one."""
        params: CustomerCreateParams = {"metadata": {"org_id": org_id}}
        customer = await self._call(
            "customers.create",
            self._client.v1.customers.create_async(params, {"idempotency_key": idempotency_key}),
        )
        return cast(str, customer["id"])

    async def retrieve_customer(self, customer_id: str) -> CustomerView:
        """A customer, deleted or not."""
        customer = await self._call(
            "customers.retrieve", self._client.v1.customers.retrieve_async(customer_id)
        )
        return _customer_view(customer)

    async def customer_state(self, customer_id: str) -> CustomerState:
        """The customer, all its subscriptions and its active entitlements: the subscription
        list (customer and latest invoice expanded) and the entitlement list side by side, every
        page of each (a customer without subscriptions costs a third request, for the customer
        itself). A live subscription with a schedule, or whose latest invoice could not be
        collected, costs one more read each (the schedule; the invoice's payment intent)."""
        params: SubscriptionListParams = {
            "customer": customer_id,
            "status": "all",
            "limit": 100,
            "expand": [
                "data.customer",
                "data.latest_invoice.payments",
                "data.discounts.source.coupon",
            ],
        }
        subscriptions, features = await asyncio.gather(
            self._raw_pages("subscriptions.list", "/v1/subscriptions", params),
            self._active_entitlements(customer_id),
        )
        if subscriptions:
            customer = _customer_view(subscriptions[0]["customer"])
        else:
            customer = await self.retrieve_customer(customer_id)
        views = await asyncio.gather(
            *(self._billing_state(_subscription_view(s)) for s in subscriptions)
        )
        return CustomerState(customer, list(views), frozenset() if customer.deleted else features)

    async def _billing_state(self, sub: SubscriptionView) -> SubscriptionView:
        """A live subscription with its schedule and its unpaid invoice's payment status read."""
        if sub.ended:
            return sub
        invoice = sub.latest_invoice
        schedule, payment_status = await asyncio.gather(
            self.subscription_schedule(sub.schedule_id) if sub.schedule_id else _none(),
            self.payment_status(invoice.payment_intent_id)
            if invoice and invoice.unpaid_attempt and invoice.payment_intent_id
            else _none(),
        )
        if invoice is not None and payment_status is not None:
            invoice = replace(invoice, payment_status=payment_status)
        return replace(sub, schedule=schedule, latest_invoice=invoice)

    async def subscription_schedule(self, schedule_id: str) -> ScheduleView:
        """A subscription schedule with its phases' prices."""
        path = f"/v1/subscription_schedules/{quote(schedule_id, safe='')}"
        response = await self._call(
            "subscription_schedules.retrieve",
            self._client.raw_request_async("get", path, expand=["phases.items.price"]),
        )
        return _schedule_view(response.data)

    async def payment_status(self, payment_intent_id: str) -> str | None:
        """A payment intent's status (`requires_action` when the customer must confirm)."""
        path = f"/v1/payment_intents/{quote(payment_intent_id, safe='')}"
        response = await self._call(
            "payment_intents.retrieve", self._client.raw_request_async("get", path)
        )
        return cast(str | None, response.data.get("status"))

    async def _active_entitlements(self, customer_id: str) -> frozenset[str]:
        """Lookup keys of the customer's active entitlements, every page (none for a customer
        Stripe no longer knows: the subscription list or the customer says what became of it)."""
        params: ActiveEntitlementListParams = {"customer": customer_id, "limit": 100}
        try:
            found = await self._raw_pages(
                "entitlements.active_entitlements.list",
                "/v1/entitlements/active_entitlements",
                params,
            )
        except StripeNotFound:
            return frozenset()
        return frozenset(entitlement["lookup_key"] for entitlement in found)

    async def _raw_pages(self, what: str, path: str, params: Any) -> list[Any]:
        """Every page of a list, as plain JSON (`has_more`, `starting_after`).

        Raw requests: the SDK's object model (a few milliseconds of CPU per page, on the
        applier's reads of every customer) is skipped; the params stay the SDK's typed ones."""
        found: list[Any] = []
        while True:
            response = await self._call(what, self._client.raw_request_async("get", path, **params))
            page = response.data
            found.extend(page["data"])
            if not page.get("has_more"):
                return found
            params["starting_after"] = page["data"][-1]["id"]

    # subscriptions --------------------------------------------------------------

    async def subscriptions_of(self, customer_id: str) -> list[SubscriptionView]:
        """Every subscription of a customer, ended ones included."""
        params: SubscriptionListParams = {"customer": customer_id, "status": "all", "limit": 100}
        subscriptions = await self._raw_pages("subscriptions.list", "/v1/subscriptions", params)
        return [_subscription_view(sub) for sub in subscriptions]

    # prices and products ---------------------------------------------------------

    async def prices_by_lookup_keys(self, lookup_keys: list[str]) -> dict[str, PriceView]:
        """Active prices found by lookup key."""
        found: dict[str, PriceView] = {}
        for start in range(0, len(lookup_keys), 10):
            params: PriceListParams = {
                "lookup_keys": lookup_keys[start : start + 10],
                "active": True,
                "limit": 100,
            }
            page = await self._call("prices.list", self._client.v1.prices.list_async(params))
            for price in page["data"]:
                view = _price_view(price)
                if view.lookup_key:
                    found[view.lookup_key] = view
        return found

    async def price_by_lookup_key(self, lookup_key: str) -> PriceView | None:
        """The active price with this lookup key, cached briefly."""
        now = time.monotonic()
        cached = self._prices.get(lookup_key)
        if cached and now - cached[0] < self.PRICE_CACHE_SECONDS and cached[1] is not None:
            return cached[1]
        price = (await self.prices_by_lookup_keys([lookup_key])).get(lookup_key)
        self._prices[lookup_key] = (now, price)
        return price

    async def managed_products(self) -> dict[str, ProductView]:
        """Products this service manages, by plan slug."""
        params: ProductListParams = {"limit": 100}
        found: dict[str, ProductView] = {}
        for product in await self._raw_pages("products.list", "/v1/products", params):
            metadata = dict(product.get("metadata") or {})
            if metadata.get("managed_by") == MANAGED_MARKER and "plan" in metadata:
                found[metadata["plan"]] = ProductView(
                    id=product["id"],
                    name=product["name"],
                    active=bool(product["active"]),
                    metadata=metadata,
                )
        return found

    async def create_product(self, plan: str, name: str) -> str:
        """Create the product of a plan."""
        params: ProductCreateParams = {
            "name": name,
            "metadata": {"managed_by": MANAGED_MARKER, "plan": plan},
        }
        product = await self._call(
            "products.create",
            self._client.v1.products.create_async(
                params, {"idempotency_key": f"catalog:product:{plan}:{name}"}
            ),
        )
        return cast(str, product["id"])

    async def update_product(self, product_id: str, name: str) -> None:
        """Rename and reactivate a product."""
        params: ProductModifyParams = {"name": name, "active": True}
        await self._call(
            "products.update", self._client.v1.products.update_async(product_id, params)
        )

    async def create_price(
        self,
        product_id: str,
        lookup_key: str,
        amount: int,
        currency: str,
        interval: str,
        replaces: str | None,
    ) -> str:
        """Create a recurring price that takes the lookup key over from any price holding it.

        The idempotency key names the price it replaces, so a retried sync creates one price,
        while going back to an earlier amount later makes a new price (the old one is archived
        and a replayed create would hand back that archived price).
        """
        params: PriceCreateParams = {
            "product": product_id,
            "unit_amount": amount,
            "currency": currency,
            "recurring": {"interval": cast(Literal["month", "year"], interval)},
            "lookup_key": lookup_key,
            "transfer_lookup_key": True,
            "metadata": {"managed_by": MANAGED_MARKER},
        }
        key = f"catalog:price:{lookup_key}:{product_id}:{amount}:{currency}:{interval}:{replaces}"
        price = await self._call(
            "prices.create",
            self._client.v1.prices.create_async(params, {"idempotency_key": key}),
        )
        self._prices.pop(lookup_key, None)
        return cast(str, price["id"])

    async def deactivate_price(self, price_id: str) -> None:
        """Archive a price that a new one replaced."""
        params: PriceModifyParams = {"active": False}
        await self._call("prices.update", self._client.v1.prices.update_async(price_id, params))

    # features (Stripe Entitlements) -------------------------------------------------

    async def features(self) -> dict[str, FeatureView]:
        """Every feature, active and archived, by lookup key."""
        found: dict[str, FeatureView] = {}
        for archived in (True, False):  # an active one wins a lookup key
            params: FeatureListParams = {"archived": archived, "limit": 100}
            pages = await self._raw_pages(
                "entitlements.features.list", "/v1/entitlements/features", params
            )
            found.update((f["lookup_key"], _feature_view(f)) for f in pages)
        return found

    async def create_feature(self, lookup_key: str, name: str) -> str:
        """Create a managed feature."""
        params: FeatureCreateParams = {
            "lookup_key": lookup_key,
            "name": name,
            "metadata": {"managed_by": MANAGED_MARKER},
        }
        feature = await self._call(
            "entitlements.features.create",
            self._client.v1.entitlements.features.create_async(
                params, {"idempotency_key": f"catalog:feature:{lookup_key}:{name}"}
            ),
        )
        return cast(str, feature["id"])

    async def update_feature(self, feature_id: str, name: str) -> None:
        """Rename and reactivate a feature (its metadata stays: one made in the Dashboard is
        never taken over, so `catalog sync` never detaches it)."""
        params: FeatureUpdateParams = {"name": name, "active": True}
        await self._call(
            "entitlements.features.update",
            self._client.v1.entitlements.features.update_async(feature_id, params),
        )

    async def product_features(self, product_id: str) -> list[ProductFeatureView]:
        """Every feature attached to a product."""
        params: ProductFeatureListParams = {"limit": 100}
        path = f"/v1/products/{quote(product_id, safe='')}/features"
        return [
            ProductFeatureView(id=pf["id"], feature=_feature_view(pf["entitlement_feature"]))
            for pf in await self._raw_pages("products.features.list", path, params)
        ]

    async def attach_feature(self, product_id: str, feature_id: str) -> None:
        """Attach a feature to a product (no idempotency key of ours: attaching again after a
        detach must attach, not replay the first answer)."""
        params: ProductFeatureCreateParams = {"entitlement_feature": feature_id}
        await self._call(
            "products.features.create",
            self._client.v1.products.features.create_async(product_id, params),
        )

    async def detach_feature(self, product_id: str, product_feature_id: str) -> None:
        """Detach a feature from a product."""
        await self._call(
            "products.features.delete",
            self._client.v1.products.features.delete_async(product_id, product_feature_id),
        )

    # portal ---------------------------------------------------------------------

    async def portal_configurations(self) -> list[PortalConfigView]:
        """Every active portal configuration."""
        params: ConfigurationListParams = {"active": True, "limit": 100}
        page = await self._call(
            "billing_portal.configurations.list",
            self._client.v1.billing_portal.configurations.list_async(params),
        )
        return [_portal_view(config) for config in page["data"]]

    async def save_portal_configuration(
        self, config_id: str | None, params: ConfigurationCreateParams
    ) -> str:
        """Create the managed configuration, or update it in place."""
        service = self._client.v1.billing_portal.configurations
        if config_id is None:
            # Keyed by content: a retried sync creates one configuration, a changed one anew.
            digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
            config = await self._call(
                "billing_portal.configurations.create",
                service.create_async(params, {"idempotency_key": f"portal:config:{digest[:32]}"}),
            )
        else:
            config = await self._call(
                "billing_portal.configurations.update",
                service.update_async(config_id, cast(Any, params)),
            )
        self._portal_config = None
        return cast(str, config["id"])

    async def managed_portal_configuration(self) -> str | None:
        """The id of the configuration `portal sync` manages, cached for a minute."""
        now = time.monotonic()
        if self._portal_config and now - self._portal_config[0] < 60:
            return self._portal_config[1]
        configs = await self.portal_configurations()
        found = next(
            (c.id for c in configs if c.metadata.get("managed_by") == MANAGED_MARKER), None
        )
        self._portal_config = (now, found)
        return found

    async def create_portal_session(self, params: PortalSessionParams, idempotency_key: str) -> str:
        """A fresh Customer Portal session URL, in the managed configuration when there is one.

        Configurations created through the API are never Stripe's default, so every session
        names ours (`portal sync`); without one Stripe falls back to the Dashboard's default.
        """
        configuration = await self.managed_portal_configuration()
        if configuration:
            params = {**params, "configuration": configuration}
        session = await self._call(
            "billing_portal.sessions.create",
            self._client.v1.billing_portal.sessions.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return cast(str, session["url"])

    # coupons ---------------------------------------------------------------------

    async def coupons(self) -> dict[str, CouponView]:
        """Every coupon, by id (deleted ones are gone from the list)."""
        params: CouponListParams = {"limit": 100}
        found = await self._raw_pages("coupons.list", "/v1/coupons", params)
        return {coupon["id"]: _coupon_view(coupon) for coupon in found}

    async def create_coupon(self, params: CouponCreateParams) -> str:
        """Create a coupon with the id the params give (retried safely: keyed by content)."""
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:32]
        coupon = await self._call(
            "coupons.create",
            self._client.v1.coupons.create_async(
                params, {"idempotency_key": f"coupon:{params.get('id')}:{digest}"}
            ),
        )
        return cast(str, coupon["id"])

    async def rename_coupon(self, coupon_id: str, name: str) -> None:
        """A coupon's name (its terms cannot change in Stripe)."""
        params: CouponUpdateParams = {"name": name}
        await self._call("coupons.update", self._client.v1.coupons.update_async(coupon_id, params))

    # checkout --------------------------------------------------------------------

    async def create_checkout_session(
        self, params: CheckoutSessionParams, idempotency_key: str
    ) -> tuple[str, str]:
        """A Checkout Session; returns (id, url)."""
        session = await self._call(
            "checkout.sessions.create",
            self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return cast(str, session["id"]), cast(str, session["url"])


class InvalidSignature(Exception):
    """The webhook body is not signed by Stripe with one of our secrets."""


def verify_webhook(payload: bytes, header: str | None, secrets: list[str], tolerance: int) -> Any:
    """Check Stripe's signature over the raw body with every secret; return the parsed event."""
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    if not secrets:
        raise InvalidSignature("no webhook secret is configured")
    timestamps = [part[2:] for part in header.split(",") if part.strip().startswith("t=")]
    try:
        signed_at = int(timestamps[0]) if timestamps else None
    except ValueError:
        signed_at = None
    if signed_at is None:
        raise InvalidSignature("malformed Stripe-Signature header")
    if signed_at > time.time() + tolerance:
        raise InvalidSignature("timestamp is in the future")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("body is not UTF-8") from None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
        except stripe.SignatureVerificationError:
            continue
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidSignature("body is not JSON") from None
    raise InvalidSignature("no signature matches")
