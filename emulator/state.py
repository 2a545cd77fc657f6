"""In-memory state of the emulator (objects, clock, events, logs, faults, idempotency), and its
JSON form for the state file (``emulator.persist`` reads and writes the file)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from emulator import persist
from emulator.ids import new_id
from emulator.shapes import Obj
from emulator.spec import API_VERSION, copy_json, template

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger("emulator")
VERSION = 1  # of the state file
# Internal maps and sets the state file keeps as they are (sets as sorted lists).
MAPS = (
    "lookup_keys",
    "secrets",
    "line_items",
    "checkout_internal",
    "portal_state",
    "sub_internal",
    "product_features",
    "entitlements",
    "coupon_archive",
)
SETS = ("failing_cards", "deleted_customers", "deleted_products", "auth_cards")
# Kept since Entitlements: a state file saved before them loads with these empty.
LATER = ("features", "product_features", "entitlements")
# Kept since payments: a state file saved before them loads with these empty.
PAYMENTS = ("payment_methods", "payment_intents", "invoice_payments", "auth_cards")
# Kept since coupons and subscription schedules: older files load with these empty.
PROMOTIONS = ("coupons", "promotion_codes", "discounts", "subscription_schedules", "coupon_archive")


@dataclass
class Config:
    """Tunables set with ``POST /_emulator/config``."""

    auto_deliver: bool = True
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 60.0
    max_attempts: int = 4400  # about three days at the 60 s cap, like Stripe's retries
    delivery_timeout: float = 10.0
    portal_session_ttl: int = 300
    rate_limit: float = 0.0  # requests per second to /v1 (a token bucket); 0 is off


def rate_limit_value(value: object) -> float:
    """A valid ``rate_limit``: a finite number >= 0 (ValueError otherwise)."""
    rate = math.nan
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            rate = float(value)
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate_limit must be a number >= 0 (requests per second), not {value!r}")
    return rate


@dataclass
class TokenBucket:
    """Stripe's limiter: ``rate`` tokens a second, up to ``max(rate, 1)``, one per request."""

    rate: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        """Start full."""
        self.tokens = self.capacity

    @property
    def capacity(self) -> float:
        """The burst size: the rate, at least one request."""
        return max(self.rate, 1.0)

    def take(self, now: float | None = None) -> bool:
        """Refill for the time since the last call, then spend a token if there is one."""
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass
class Fault:
    """The next ``count`` requests matching path/method fail with ``mode``."""

    path: str
    method: str | None
    status: int
    count: int
    mode: str
    hang_seconds: float
    body: Obj | None


@dataclass
class IdempotentEntry:
    """A remembered response for an Idempotency-Key."""

    method: str
    path: str
    params: Obj
    status: int
    body: bytes


@dataclass
class RequestContext:
    """The API request being handled (for event ``request`` fields)."""

    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = "http://127.0.0.1:12111"


@dataclass
class Stores:
    """The Stripe objects, by id, in creation order."""

    customers: dict[str, Obj] = field(default_factory=dict)
    products: dict[str, Obj] = field(default_factory=dict)
    prices: dict[str, Obj] = field(default_factory=dict)
    checkout_sessions: dict[str, Obj] = field(default_factory=dict)
    portal_configurations: dict[str, Obj] = field(default_factory=dict)
    portal_sessions: dict[str, Obj] = field(default_factory=dict)
    subscriptions: dict[str, Obj] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    events: dict[str, Obj] = field(default_factory=dict)
    webhook_endpoints: dict[str, Obj] = field(default_factory=dict)
    features: dict[str, Obj] = field(default_factory=dict)
    payment_methods: dict[str, Obj] = field(default_factory=dict)
    payment_intents: dict[str, Obj] = field(default_factory=dict)
    invoice_payments: dict[str, Obj] = field(default_factory=dict)
    coupons: dict[str, Obj] = field(default_factory=dict)
    promotion_codes: dict[str, Obj] = field(default_factory=dict)
    discounts: dict[str, Obj] = field(default_factory=dict)
    subscription_schedules: dict[str, Obj] = field(default_factory=dict)


class WebhookQueue(Protocol):
    """What the state asks of its webhook deliverer (``emulator.delivery.Deliverer``)."""

    def reset(self) -> None:
        """Drop queued deliveries (the state empties its outbox)."""

    def on_event(self, event: Obj) -> None:
        """Queue a new event for the endpoints that want it."""


def _dict(value: Any) -> dict[str, Any]:
    """A JSON object, or TypeError."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _entry(data: dict[str, Any], name: str) -> dict[str, Any]:
    """A saved object of the state file ({} for one added later that an older file lacks)."""
    return _dict(data.get(name, {}) if name in LATER + PAYMENTS + PROMOTIONS else data[name])


def _list(value: Any) -> list[Any]:
    """A JSON array, or TypeError."""
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


class EmulatorState:
    """Everything the emulator knows; mutated synchronously on one event loop."""

    def __init__(
        self, webhooks: list[tuple[str, str]] | None = None, *, state_file: Path | None = None
    ) -> None:
        """Start empty or from ``state_file`` (ValueError if unreadable), with webhooks."""
        self.config = Config()
        self.bucket: TokenBucket | None = None  # for config.rate_limit; never saved
        self.preregistered = list(webhooks or [])
        self.state_file = Path(state_file) if state_file is not None else None
        self.saves = 0
        self._save_scheduled = False
        self.clock_offset = 0.0
        self.ctx = RequestContext()
        self.deliverer: WebhookQueue | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reset()
        if self.state_file is not None and self.state_file.exists():
            self.load(self.state_file)

    def load(self, path: Path) -> None:
        """Replace everything with a saved state, then apply the pre-registered endpoints."""
        persist.load(path, self.restore)
        self._preregister()

    def changed(self) -> None:
        """Save soon: one save per event-loop turn, however many changes (none without a file)."""
        if self.state_file is None or self._save_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._save_scheduled = True
        loop.call_soon(self._scheduled_save)

    def _scheduled_save(self) -> None:
        """The coalesced save (a failure is logged; the next change tries again)."""
        self._save_scheduled = False
        try:
            self.save()
        except OSError as exc:
            log.error("emulator: cannot save the state file %s: %s", self.state_file, exc)

    def save(self) -> None:
        """Write the state file now, atomically (nothing without a state file)."""
        if self.state_file is None:
            return
        persist.save(self.state_file, self.dump())
        self.saves += 1

    def _preregister(self) -> None:
        """Add the pre-registered endpoints; one with a known URL only gets the new secret."""
        for url, secret in self.preregistered:
            ep = next((e for e in self.db.webhook_endpoints.values() if e["url"] == url), None)
            if ep is None:
                self.add_endpoint(url, secret, ["*"])
            else:
                self.secrets[ep["id"]] = secret

    def reset(self) -> None:
        """Forget everything except configuration and pre-registered endpoints."""
        self.db = Stores()
        self.clock_offset = 0.0
        self.lookup_keys: dict[str, str] = {}
        self.failing_cards: set[str] = set()
        self.auth_cards: set[str] = set()  # cards requiring authentication (3-D Secure)
        self.deleted_customers: set[str] = set()
        self.deleted_products: set[str] = set()
        self.secrets: dict[str, str] = {}
        self.line_items: dict[str, list[Obj]] = {}
        self.checkout_internal: dict[str, Obj] = {}
        self.portal_state: dict[str, Obj] = {}
        self.sub_internal: dict[str, Obj] = {}
        self.product_features: dict[str, dict[str, str]] = {}  # product -> prodft -> feature
        self.entitlements: dict[str, list[Obj]] = {}  # customer -> active entitlements seen
        self.coupon_archive: dict[str, Obj] = {}  # deleted coupons, for the discounts they gave
        self.touched: set[str] = set()  # customers whose entitlements may have changed
        self.requests: list[Obj] = []
        self.deliveries: list[Obj] = []
        self.faults: list[Fault] = []
        self.idempotency: dict[tuple[str, str], IdempotentEntry] = {}
        self.outbox: dict[tuple[str, str], int] = {}  # (endpoint, event) -> next attempt
        self.wake = asyncio.Event()
        if self.deliverer is not None:
            self.deliverer.reset()
        self._preregister()

    def dump(self) -> dict[str, Any]:
        """Everything that survives a restart, as JSON-ready data."""
        return {
            "version": VERSION,
            "clock_offset": self.clock_offset,
            "db": {f.name: getattr(self.db, f.name) for f in fields(Stores)},
            **{name: getattr(self, name) for name in MAPS},
            **{name: sorted(getattr(self, name)) for name in SETS},
            "idempotency": [
                [key, idem, e.method, e.path, e.params, e.status, e.body.decode()]
                for (key, idem), e in self.idempotency.items()
            ],
            "outbox": [[ep, evt, attempt] for (ep, evt), attempt in self.outbox.items()],
        }

    def restore(self, data: Any) -> None:
        """Replace the contents with dumped data (KeyError, TypeError, ValueError if bad)."""
        if _dict(data).get("version") != VERSION:
            raise ValueError(f"not a version {VERSION} emulator state")
        db = _dict(data["db"])
        self.db = Stores(**{f.name: _entry(db, f.name) for f in fields(Stores)})
        for name in MAPS:
            setattr(self, name, _entry(data, name))
        for name in SETS:
            setattr(self, name, set(_list(data.get(name, []) if name in PAYMENTS else data[name])))
        self.clock_offset = float(data["clock_offset"])
        self.idempotency = {
            (key, idem): IdempotentEntry(method, path, _dict(params), int(status), body.encode())
            for key, idem, method, path, params, status, body in _list(data["idempotency"])
        }
        self.outbox = {(ep, evt): int(attempt) for ep, evt, attempt in _list(data["outbox"])}

    def allow_request(self) -> bool:
        """Whether the rate limit lets one more /v1 request through (a new rate: a full bucket)."""
        rate = self.config.rate_limit
        if rate <= 0:
            self.bucket = None
            return True
        if self.bucket is None or self.bucket.rate != rate:
            self.bucket = TokenBucket(rate)
        return self.bucket.take()

    def now(self) -> int:
        """The emulator clock: wall time plus the advanced offset, in seconds."""
        return int(time.time() + self.clock_offset)

    def set_now(self, ts: int) -> None:
        """Move the emulator clock so that ``now()`` is ``ts``."""
        self.clock_offset = ts - time.time() + 0.5

    def add_endpoint(
        self, url: str, secret: str, events: list[str], api_version: str | None = None
    ) -> Obj:
        """Register a webhook endpoint with a known secret."""
        ep = template(
            "webhook_endpoint",
            id=new_id("we_"),
            url=url,
            enabled_events=events,
            created=self.now(),
            api_version=api_version,
        )
        self.db.webhook_endpoints[ep["id"]] = ep
        self.secrets[ep["id"]] = secret
        return ep

    def emit_changes(self, type_: str, obj: Obj, before: Obj, stamp: bool = False) -> Obj:
        """Fire ``type_`` when ``obj`` differs from ``before`` (``stamp``: set ``updated`` too)."""
        previous = {k: v for k, v in before.items() if obj.get(k) != v}
        if previous:
            if stamp:
                obj["updated"] = self.now()
            self.emit(type_, obj, previous)
        return previous

    def emit(self, type_: str, obj: Obj, previous: Obj | None = None) -> Obj:
        """Record an event with a snapshot of ``obj`` and schedule its delivery."""
        data: Obj = {"object": copy_json(obj)}
        if previous is not None:
            data["previous_attributes"] = copy_json(previous)
        event = template(
            "event",
            id=new_id("evt_"),
            api_version=API_VERSION,
            created=self.now(),
            data=data,
            request={"id": self.ctx.request_id, "idempotency_key": self.ctx.idempotency_key},
            type=type_,
        )
        self.db.events[event["id"]] = event
        self._touch(obj)
        if self.deliverer is not None:
            self.deliverer.on_event(event)
        return event

    def _touch(self, obj: Obj) -> None:
        """Note the customer of an event's subscription: entitlements to compare (deleting a
        customer cancels their subscriptions, which fires their events)."""
        if obj.get("object") == "subscription":
            self.touched.add(str(obj["customer"]))


def base_url(request: Request) -> str:
    """The emulator's URL as this request reached it."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def of_request(request: Request) -> EmulatorState:
    """The app's state, serving a hosted page or a control (no API request id)."""
    state: EmulatorState = request.app.state.emulator
    state.ctx.base_url = base_url(request)
    state.ctx.request_id = None
    state.ctx.idempotency_key = None
    return state
