"""Helpers for tests: the ``/_emulator`` controls over HTTP, sync and async.

Each control call is described once (a function returning a ``Call``: method, path, JSON body
or query, and how to read the answer); ``EmulatorControl`` sends them over ``httpx.Client``,
``AsyncEmulatorControl`` over ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import httpx

from emulator.shapes import Obj

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One control request and how to read its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    body: Obj | None = None  # POST: the JSON body ({} when None)
    query: Obj | None = None  # GET: query parameters (None values left out)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The HTTP request of this call on a client."""
        if self.method == "POST":
            return http.build_request("POST", self.path, json=self.body or {})
        query = {k: v for k, v in (self.query or {}).items() if v is not None}
        return http.build_request(self.method, self.path, params=query)


def _nothing(resp: httpx.Response) -> None:
    """Ignore the answer."""


def _json(resp: httpx.Response) -> Any:
    """The JSON answer."""
    return resp.json()


def _field(name: str, kind: Callable[[Any], T]) -> Callable[[httpx.Response], T]:
    """A reader of one field of a JSON answer."""
    return lambda resp: kind(resp.json()[name])


def _list(value: Any) -> list[Obj]:
    """A JSON array of objects."""
    result: list[Obj] = value
    return result


# -- the control calls ----------------------------------------------------------------


def reset() -> Call[None]:
    """Forget all objects, events, logs and faults."""
    return Call("POST", "/reset", _nothing)


def now() -> Call[int]:
    """The emulator clock."""
    return Call("GET", "/clock", _field("now", int))


def advance(seconds: int) -> Call[int]:
    """Advance the clock, applying renewals, trial ends and cancellations."""
    return Call("POST", "/clock/advance", _field("now", int), {"seconds": int(seconds)})


def fail(
    path: str,
    status: int = 500,
    count: int = 1,
    method: str | None = None,
    mode: str = "status",
    hang_seconds: float = 30.0,
    body: Obj | None = None,
) -> Call[None]:
    """Make the next ``count`` requests to path fail (status, hang, delay or reset)."""
    fault = {"path": path, "status": status, "count": count, "method": method, "mode": mode}
    return Call("POST", "/faults", _nothing, {**fault, "hang_seconds": hang_seconds, "body": body})


def clear_faults() -> Call[None]:
    """Remove every fault and release hanging requests."""
    return Call("DELETE", "/faults", _nothing)


def requests(path: str | None = None, method: str | None = None) -> Call[list[Obj]]:
    """API requests received, oldest first."""
    return Call("GET", "/requests", _json, query={"path": path, "method": method})


def clear_requests() -> Call[None]:
    """Empty the request log."""
    return Call("DELETE", "/requests", _nothing)


def deliveries() -> Call[list[Obj]]:
    """Webhook delivery attempts, oldest first."""
    return Call("GET", "/deliveries", _json)


def pending_deliveries() -> Call[int]:
    """Deliveries queued or waiting for a retry."""
    return Call("GET", "/deliveries/pending", _field("pending", int))


def events(type: str | None = None) -> Call[list[Obj]]:
    """Every event, oldest first."""
    return Call("GET", "/events", _json, query={"type": type})


def configure(**kw: Any) -> Call[Obj]:
    """Set auto_deliver, retry_base_seconds, max_attempts, delivery_timeout, rate_limit..."""
    return Call("POST", "/config", _json, kw)


def rate_limit(per_second: float) -> Call[None]:
    """Answer Stripe's 429 above ``per_second`` requests a second to /v1 (0: off)."""
    return Call("POST", "/config", _nothing, {"rate_limit": per_second})


def deliver(event_id: str, duplicate: int = 0) -> Call[list[Obj]]:
    """Deliver an event again now (plus ``duplicate`` extra copies)."""
    body = {"duplicate": duplicate}
    return Call("POST", f"/events/{event_id}/deliver", _field("results", _list), body)


def deliver_events(
    ids: list[str] | None = None,
    *,
    shuffle: bool = False,
    duplicates: float = 0.0,
    concurrency: int = 16,
    seed: int | None = None,
) -> Call[list[Obj]]:
    """Deliver a set of events by hand, optionally shuffled and duplicated."""
    body = {"ids": ids, "shuffle": shuffle, "duplicates": duplicates}
    body.update(concurrency=concurrency, seed=seed)
    return Call("POST", "/events/deliver", _field("results", _list), body)


def set_card(customer_id: str, fails: bool) -> Call[None]:
    """Save a card for the customer whose charges decline off session (or a working one)."""
    return Call("POST", f"/customers/{customer_id}/card", _nothing, {"fails": fails})


def attach_card(customer_id: str, card: str = "4242 4242 4242 4242") -> Call[str]:
    """Save a test card (e.g. ``4000 0027 6000 3184``, 3-D Secure on every charge) as the
    customer's default payment method; returns its ``pm_...`` id."""
    body = {"card": card}
    return Call("POST", f"/customers/{customer_id}/card", _field("payment_method", str), body)


def set_default_portal(configuration: str | None) -> Call[None]:
    """Make a portal configuration the default, as saving it in the Dashboard does."""
    return Call("POST", "/portal/default", _nothing, {"configuration": configuration})


def add_webhook_endpoint(url: str, secret: str, events: list[str] | None = None) -> Call[Obj]:
    """Register an endpoint with a known secret."""
    body = {"url": url, "secret": secret, "events": events or ["*"]}
    return Call("POST", "/webhook_endpoints", _json, body)


# -- the two transports ---------------------------------------------------------------


def _match(d: Obj, event_type: str | None, event_id: str | None, ok: bool | None) -> bool:
    """Whether a delivery record matches the filters."""
    return (
        (event_type is None or d["type"] == event_type)
        and (event_id is None or d["event_id"] == event_id)
        and (ok is None or d["ok"] == ok)
    )


def _signed(method: Callable[..., Any], describe: Callable[..., Any], owner: str) -> None:
    """Give a generated method of ``owner`` the name, docstring and parameters of its call."""
    method.__name__ = describe.__name__
    method.__qualname__ = f"{owner}.{describe.__name__}"
    method.__doc__ = describe.__doc__
    sig = inspect.signature(describe)
    self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    params = [self_, *sig.parameters.values()]
    method.__dict__["__signature__"] = sig.replace(parameters=params, return_annotation=sig.empty)


def _sync(describe: Callable[P, Call[T]]) -> Callable[Concatenate[EmulatorControl, P], T]:
    """A blocking method sending the call ``describe`` builds."""

    def method(self: EmulatorControl, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._send(describe(*args, **kwargs))

    _signed(method, describe, "EmulatorControl")
    return method


def _async(
    describe: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncEmulatorControl, P], Coroutine[Any, Any, T]]:
    """A coroutine method sending the call ``describe`` builds."""

    async def method(self: AsyncEmulatorControl, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._send(describe(*args, **kwargs))

    _signed(method, describe, "AsyncEmulatorControl")
    return method


class EmulatorControl:
    """Synchronous client of the emulator's test controls."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        """Connect to an emulator at base_url."""
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url + "/_emulator", timeout=timeout)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __enter__(self) -> EmulatorControl:
        """Context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close."""
        self.close()

    def _send(self, call: Call[T]) -> T:
        """Send a call; raise for an error status, else read the answer."""
        resp = self.http.send(call.request(self.http))
        resp.raise_for_status()
        return call.read(resp)

    reset = _sync(reset)
    now = _sync(now)
    advance = _sync(advance)
    fail = _sync(fail)
    clear_faults = _sync(clear_faults)
    requests = _sync(requests)
    clear_requests = _sync(clear_requests)
    deliveries = _sync(deliveries)
    pending_deliveries = _sync(pending_deliveries)
    events = _sync(events)
    configure = _sync(configure)
    rate_limit = _sync(rate_limit)
    deliver = _sync(deliver)
    deliver_events = _sync(deliver_events)
    set_card = _sync(set_card)
    attach_card = _sync(attach_card)
    set_default_portal = _sync(set_default_portal)
    add_webhook_endpoint = _sync(add_webhook_endpoint)

    def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        event_type: str | None = None,
        event_id: str | None = None,
        ok: bool | None = True,
        timeout: float = 10.0,
    ) -> list[Obj]:
        """Poll until at least ``count`` matching deliveries exist; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [d for d in self.deliveries() if _match(d, event_type, event_id, ok)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(found)} of {count} deliveries after {timeout}s")
            time.sleep(0.02)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Poll until no delivery is queued or waiting for a retry."""
        deadline = time.monotonic() + timeout
        while self.pending_deliveries():
            if time.monotonic() > deadline:
                raise TimeoutError("webhook deliveries still pending")
            time.sleep(0.02)


class AsyncEmulatorControl:
    """Asynchronous client of the emulator's test controls."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        """Connect to an emulator at base_url."""
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base_url + "/_emulator", timeout=timeout)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def __aenter__(self) -> AsyncEmulatorControl:
        """Context manager."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close."""
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        """Send a call; raise for an error status, else read the answer."""
        resp = await self.http.send(call.request(self.http))
        resp.raise_for_status()
        return call.read(resp)

    reset = _async(reset)
    now = _async(now)
    advance = _async(advance)
    fail = _async(fail)
    clear_faults = _async(clear_faults)
    requests = _async(requests)
    clear_requests = _async(clear_requests)
    deliveries = _async(deliveries)
    pending_deliveries = _async(pending_deliveries)
    events = _async(events)
    configure = _async(configure)
    rate_limit = _async(rate_limit)
    deliver = _async(deliver)
    deliver_events = _async(deliver_events)
    set_card = _async(set_card)
    attach_card = _async(attach_card)
    set_default_portal = _async(set_default_portal)
    add_webhook_endpoint = _async(add_webhook_endpoint)

    async def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        event_type: str | None = None,
        event_id: str | None = None,
        ok: bool | None = True,
        timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    ) -> list[Obj]:
        """Poll until at least ``count`` matching deliveries exist."""
        deadline = time.monotonic() + timeout
        while True:
            found = [d for d in await self.deliveries() if _match(d, event_type, event_id, ok)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(found)} of {count} deliveries after {timeout}s")
            await asyncio.sleep(0.02)
