"""Background webhook delivery: signed, ordered per endpoint, retried with capped backoff."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx

from emulator.shapes import Obj
from emulator.signing import sign
from emulator.state import Config, EmulatorState


def matches(endpoint: Obj, event_type: str) -> bool:
    """Whether an endpoint wants an event type."""
    if endpoint.get("status") != "enabled":
        return False
    wanted = endpoint.get("enabled_events") or []
    return "*" in wanted or event_type in wanted


def backoff(config: Config, attempt: int) -> float:
    """Seconds to wait before an attempt (2, 3, ...): doubling from the base, capped."""
    doubling = config.retry_base_seconds * 2.0 ** min(attempt - 2, 64)
    return float(min(doubling, config.retry_max_seconds))


class Deliverer:
    """Delivers ``state.outbox`` (saved with the state) from tasks on the server's loop."""

    def __init__(self, state: EmulatorState) -> None:
        """Attach to a state."""
        self.state = state
        state.deliverer = self
        self._client: httpx.AsyncClient | None = None
        self._queues: dict[str, asyncio.Queue[tuple[str, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[tuple[str, str, int]] = []

    @property
    def pending(self) -> int:
        """Deliveries queued or waiting for a retry."""
        return len(self.state.outbox)

    def reset(self) -> None:
        """Drop the delivery tasks and queues (``state.reset`` empties the outbox)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self._queues.clear()
        self._backlog.clear()

    def resume(self) -> None:
        """Deliver the outbox afresh, in order (on start: deliveries saved as pending)."""
        self.reset()
        self._backlog = [(ep, evt, attempt) for (ep, evt), attempt in self.state.outbox.items()]
        self._flush()

    async def aclose(self) -> None:
        """Stop tasks and close the HTTP client; the outbox stays for the next start."""
        self.reset()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def client(self) -> httpx.AsyncClient:
        """The shared HTTP client (created on the running loop)."""
        if self._client is None:
            # No pool limit: deliveries to a hanging endpoint must not starve the others.
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
            self._client = httpx.AsyncClient(
                timeout=self.state.config.delivery_timeout, limits=limits
            )
        return self._client

    def on_event(self, event: Obj) -> None:
        """Queue an event for every matching endpoint when auto delivery is on."""
        if not self.state.config.auto_deliver:
            return
        for ep in self.state.db.webhook_endpoints.values():
            if matches(ep, event["type"]):
                event["pending_webhooks"] += 1
                self.state.outbox[(ep["id"], event["id"])] = 1
                self._backlog.append((ep["id"], event["id"], 1))
        if self._backlog:
            self._flush()

    def _flush(self) -> None:
        """Move the backlog into per-endpoint queues (needs a running loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        for ep_id, event_id, attempt in self._backlog:
            queue = self._queues.get(ep_id)
            if queue is None:
                queue = asyncio.Queue()
                self._queues[ep_id] = queue
                self._spawn(self._worker(ep_id, queue))
            queue.put_nowait((event_id, attempt))
        self._backlog.clear()

    def _spawn(self, coro: Any) -> None:
        """Run a coroutine as a tracked task."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _worker(self, ep_id: str, queue: asyncio.Queue[tuple[str, int]]) -> None:
        """Deliver one endpoint's events in order."""
        while True:
            event_id, attempt = await queue.get()
            await self._attempt(ep_id, event_id, attempt)

    async def _retry_later(self, ep_id: str, event_id: str, attempt: int) -> None:
        """Sleep the backoff, then try again."""
        await asyncio.sleep(backoff(self.state.config, attempt))
        await self._attempt(ep_id, event_id, attempt)

    async def _attempt(self, ep_id: str, event_id: str, attempt: int) -> None:
        """One delivery attempt with retry scheduling."""
        event = self.state.db.events.get(event_id)
        endpoint = self.state.db.webhook_endpoints.get(ep_id)
        if event is None or endpoint is None:
            self._finish(ep_id, event_id)
            return
        record = await self.send(endpoint, event, attempt)
        if record["ok"] or attempt >= self.state.config.max_attempts:
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
            self._finish(ep_id, event_id)
            return
        self.state.outbox[(ep_id, event_id)] = attempt + 1
        self.state.changed()
        self._spawn(self._retry_later(ep_id, event_id, attempt + 1))

    def _finish(self, ep_id: str, event_id: str) -> None:
        """A delivery is done (delivered or given up): out of the outbox."""
        self.state.outbox.pop((ep_id, event_id), None)
        self.state.changed()

    async def send(self, endpoint: Obj, event: Obj, attempt: int = 1) -> Obj:
        """POST one signed event to one endpoint and record the outcome."""
        payload = json.dumps(event)
        secret = self.state.secrets.get(endpoint["id"], "")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        status: int | None = None
        error: str | None = None
        sent = time.time()
        try:
            resp = await self.client().post(
                endpoint["url"],
                content=payload.encode(),
                headers=headers,
                timeout=self.state.config.delivery_timeout,
            )
            status = resp.status_code
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        record: Obj = {
            "event_id": event["id"],
            "type": event["type"],
            "endpoint": endpoint["id"],
            "url": endpoint["url"],
            "status": status,
            "attempt": attempt,
            "ok": status is not None and 200 <= status < 300,
            "sent": sent,
            "time": time.time(),
            "error": error,
        }
        self.state.deliveries.append(record)
        return record

    async def deliver_now(
        self,
        event_ids: list[str],
        *,
        duplicates: float = 0.0,
        copies: int = 0,
        shuffle: bool = False,
        concurrency: int = 1,
        seed: int | None = None,
    ) -> list[Obj]:
        """Deliver events by hand (once each plus duplicates), optionally shuffled."""
        rng = random.Random(seed)
        jobs: list[tuple[Obj, Obj]] = []
        for event_id in event_ids:
            event = self.state.db.events[event_id]
            n = 1 + copies + (1 if duplicates and rng.random() < duplicates else 0)
            for ep in self.state.db.webhook_endpoints.values():
                if matches(ep, event["type"]):
                    jobs.extend([(ep, event)] * n)
        if shuffle:
            rng.shuffle(jobs)
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(ep: Obj, event: Obj) -> Obj:
            async with sem:
                return await self.send(ep, event)

        return list(await asyncio.gather(*(one(ep, ev) for ep, ev in jobs)))
