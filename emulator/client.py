"""Helpers for tests: the ``/_emulator`` controls over HTTP (sync and async)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

Obj = dict[str, Any]


def _fault_body(
    path: str,
    status: int,
    count: int,
    method: str | None,
    mode: str,
    hang_seconds: float,
    body: Obj | None,
) -> Obj:
    """The JSON of a fault."""
    return {
        "path": path,
        "status": status,
        "count": count,
        "method": method,
        "mode": mode,
        "hang_seconds": hang_seconds,
        "body": body,
    }


def _match(d: Obj, event_type: str | None, event_id: str | None, ok: bool | None) -> bool:
    """Whether a delivery record matches the filters."""
    return (
        (event_type is None or d["type"] == event_type)
        and (event_id is None or d["event_id"] == event_id)
        and (ok is None or d["ok"] == ok)
    )


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

    def _post(self, path: str, body: Obj | None = None) -> Obj:
        """POST JSON and return JSON."""
        resp = self.http.post(path, json=body or {})
        resp.raise_for_status()
        data: Obj = resp.json()
        return data

    def _get(self, route: str, **query: Any) -> Any:
        """GET JSON."""
        resp = self.http.get(route, params={k: v for k, v in query.items() if v is not None})
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        """Forget all objects, events, logs and faults."""
        self._post("/reset")

    def now(self) -> int:
        """The emulator clock."""
        return int(self._get("/clock")["now"])

    def advance(self, seconds: int) -> int:
        """Advance the clock, applying renewals, trial ends and cancellations."""
        return int(self._post("/clock/advance", {"seconds": int(seconds)})["now"])

    def fail(
        self,
        path: str,
        status: int = 500,
        count: int = 1,
        method: str | None = None,
        mode: str = "status",
        hang_seconds: float = 30.0,
        body: Obj | None = None,
    ) -> None:
        """Make the next ``count`` requests to path fail (status, hang, delay or reset)."""
        self._post("/faults", _fault_body(path, status, count, method, mode, hang_seconds, body))

    def clear_faults(self) -> None:
        """Remove every fault and release hanging requests."""
        self.http.delete("/faults").raise_for_status()

    def requests(self, path: str | None = None, method: str | None = None) -> list[Obj]:
        """API requests received, oldest first."""
        result: list[Obj] = self._get("/requests", path=path, method=method)
        return result

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.http.delete("/requests").raise_for_status()

    def deliveries(self) -> list[Obj]:
        """Webhook delivery attempts, oldest first."""
        result: list[Obj] = self._get("/deliveries")
        return result

    def pending_deliveries(self) -> int:
        """Deliveries queued or waiting for a retry."""
        return int(self._get("/deliveries/pending")["pending"])

    def events(self, type: str | None = None) -> list[Obj]:
        """Every event, oldest first."""
        result: list[Obj] = self._get("/events", type=type)
        return result

    def configure(self, **kw: Any) -> Obj:
        """Set auto_deliver, retry_base_seconds, max_attempts, delivery_timeout, rate_limit..."""
        return self._post("/config", kw)

    def rate_limit(self, per_second: float) -> None:
        """Answer Stripe's 429 above ``per_second`` requests a second to /v1 (0: off)."""
        self._post("/config", {"rate_limit": per_second})

    def deliver(self, event_id: str, duplicate: int = 0) -> list[Obj]:
        """Deliver an event again now (plus ``duplicate`` extra copies)."""
        result: list[Obj] = self._post(f"/events/{event_id}/deliver", {"duplicate": duplicate})[
            "results"
        ]
        return result

    def deliver_events(
        self,
        ids: list[str] | None = None,
        *,
        shuffle: bool = False,
        duplicates: float = 0.0,
        concurrency: int = 16,
        seed: int | None = None,
    ) -> list[Obj]:
        """Deliver a set of events by hand, optionally shuffled and duplicated."""
        body = {
            "ids": ids,
            "shuffle": shuffle,
            "duplicates": duplicates,
            "concurrency": concurrency,
            "seed": seed,
        }
        result: list[Obj] = self._post("/events/deliver", body)["results"]
        return result

    def set_card(self, customer_id: str, fails: bool) -> None:
        """Make a customer's payment method decline (or work again)."""
        self._post(f"/customers/{customer_id}/card", {"fails": fails})

    def set_default_portal(self, configuration: str | None) -> None:
        """Make a portal configuration the default, as saving it in the Dashboard does."""
        self._post("/portal/default", {"configuration": configuration})

    def add_webhook_endpoint(self, url: str, secret: str, events: list[str] | None = None) -> Obj:
        """Register an endpoint with a known secret."""
        return self._post(
            "/webhook_endpoints", {"url": url, "secret": secret, "events": events or ["*"]}
        )

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

    async def _post(self, path: str, body: Obj | None = None) -> Obj:
        """POST JSON and return JSON."""
        resp = await self.http.post(path, json=body or {})
        resp.raise_for_status()
        data: Obj = resp.json()
        return data

    async def _get(self, route: str, **query: Any) -> Any:
        """GET JSON."""
        resp = await self.http.get(route, params={k: v for k, v in query.items() if v is not None})
        resp.raise_for_status()
        return resp.json()

    async def reset(self) -> None:
        """Forget everything."""
        await self._post("/reset")

    async def now(self) -> int:
        """The emulator clock."""
        return int((await self._get("/clock"))["now"])

    async def advance(self, seconds: int) -> int:
        """Advance the clock."""
        return int((await self._post("/clock/advance", {"seconds": int(seconds)}))["now"])

    async def fail(
        self,
        path: str,
        status: int = 500,
        count: int = 1,
        method: str | None = None,
        mode: str = "status",
        hang_seconds: float = 30.0,
        body: Obj | None = None,
    ) -> None:
        """Inject a fault."""
        await self._post(
            "/faults", _fault_body(path, status, count, method, mode, hang_seconds, body)
        )

    async def clear_faults(self) -> None:
        """Remove faults."""
        (await self.http.delete("/faults")).raise_for_status()

    async def requests(self, path: str | None = None, method: str | None = None) -> list[Obj]:
        """API requests received."""
        result: list[Obj] = await self._get("/requests", path=path, method=method)
        return result

    async def deliveries(self) -> list[Obj]:
        """Webhook deliveries."""
        result: list[Obj] = await self._get("/deliveries")
        return result

    async def events(self, type: str | None = None) -> list[Obj]:
        """Every event, oldest first."""
        result: list[Obj] = await self._get("/events", type=type)
        return result

    async def configure(self, **kw: Any) -> Obj:
        """Set configuration."""
        return await self._post("/config", kw)

    async def rate_limit(self, per_second: float) -> None:
        """Answer Stripe's 429 above ``per_second`` requests a second to /v1 (0: off)."""
        await self._post("/config", {"rate_limit": per_second})

    async def deliver(self, event_id: str, duplicate: int = 0) -> list[Obj]:
        """Deliver an event again now."""
        result: list[Obj] = (
            await self._post(f"/events/{event_id}/deliver", {"duplicate": duplicate})
        )["results"]
        return result

    async def deliver_events(
        self,
        ids: list[str] | None = None,
        *,
        shuffle: bool = False,
        duplicates: float = 0.0,
        concurrency: int = 16,
        seed: int | None = None,
    ) -> list[Obj]:
        """Deliver a set of events by hand."""
        body = {
            "ids": ids,
            "shuffle": shuffle,
            "duplicates": duplicates,
            "concurrency": concurrency,
            "seed": seed,
        }
        result: list[Obj] = (await self._post("/events/deliver", body))["results"]
        return result

    async def set_card(self, customer_id: str, fails: bool) -> None:
        """Make a customer's card fail or work."""
        await self._post(f"/customers/{customer_id}/card", {"fails": fails})

    async def set_default_portal(self, configuration: str | None) -> None:
        """Make a portal configuration the default, as saving it in the Dashboard does."""
        await self._post("/portal/default", {"configuration": configuration})

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
