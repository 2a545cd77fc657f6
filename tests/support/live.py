"""A graphql-transport-ws client (the protocol graphql-ws, Apollo Client and urql speak) over a
real WebSocket, for `entitlementChanged`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from harness.api import token

SUBSCRIPTION = """
subscription { entitlementChanged { orgId plan status cancelAtPeriodEnd currentPeriodEnd
                                    trialEnd hasBillingAccount limits updatedAt interval
                                    seats features } }
"""
"""The same selection as harness.api.ENTITLEMENT."""

PROTOCOL = "graphql-transport-ws"

Entitlement = dict[str, Any]


class Closed(Exception):
    """The server closed the connection."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


def ws_url(http_url: str) -> str:
    """The /graphql WebSocket URL of an API's http:// URL."""
    return http_url.replace("http://", "ws://", 1) + "/graphql"


class LiveClient:
    """One connection: `connection_init`, subscriptions, and the messages they bring.

    With `keepalive` (as graphql-ws does) a background reader answers the server's pings at
    once; without it the client reads only when asked and answers no ping (a stalled client).
    """

    def __init__(self, ws: ClientConnection, keepalive: bool = True) -> None:
        self.ws = ws
        self.pings = 0
        self._inbox: asyncio.Queue[dict[str, Any] | Closed] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read_forever()) if keepalive else None

    async def init(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        """Send `connection_init`; return the `connection_ack` (Closed if refused)."""
        await self.send({"type": "connection_init", "payload": payload})
        return await self.message()

    async def subscribe(self, id: str = "1", query: str = SUBSCRIPTION) -> None:
        """Start a subscription."""
        await self.send({"id": id, "type": "subscribe", "payload": {"query": query}})

    async def send(self, message: dict[str, Any]) -> None:
        """Send one protocol message."""
        await self.ws.send(json.dumps(message))

    async def _receive(self) -> dict[str, Any] | Closed:
        """The next message from the socket, or how it closed."""
        try:
            raw = await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            close = exc.rcvd
            return Closed(close.code if close else None, close.reason if close else "")
        return dict(json.loads(raw))

    async def _read_forever(self) -> None:
        """Answer pings at once; queue every other message, then how the connection closed."""
        while True:
            message = await self._receive()
            if isinstance(message, dict) and message.get("type") == "ping":
                self.pings += 1
                with contextlib.suppress(websockets.ConnectionClosed):  # seen on the next recv
                    await self.send({"type": "pong"})
                continue
            await self._inbox.put(message)
            if isinstance(message, Closed):
                return

    async def message(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message other than a ping; Closed when the server closed instead."""
        deadline = time.monotonic() + timeout
        while True:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                if self._reader is not None:
                    message = await self._inbox.get()
                else:
                    message = await self._receive()
            if isinstance(message, Closed):
                if self._reader is not None:
                    self._inbox.put_nowait(message)  # closed stays closed
                raise message
            if message.get("type") == "ping":
                self.pings += 1
                continue
            return message

    async def next(self, id: str = "1", timeout: float = 10.0) -> dict[str, Any]:
        """The data of the next `next` message of a subscription."""
        message = await self.message(timeout)
        assert message.get("type") == "next" and message.get("id") == id, message
        assert "errors" not in message["payload"], message
        return dict(message["payload"]["data"]["entitlementChanged"])

    async def nothing_within(self, seconds: float) -> None:
        """Assert that no message (pings aside) arrives for `seconds`."""
        try:
            message = await self.message(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {message}")

    async def closed(self, timeout: float = 10.0) -> Closed:
        """Wait for the server to close the connection; return how."""
        try:
            while True:
                message = await self.message(timeout)
                if message.get("type") not in ("next", "complete"):
                    raise AssertionError(f"expected the connection to close, got {message}")
        except Closed as closed:
            return closed

    async def stop(self) -> None:
        """Stop the background reader."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


@asynccontextmanager
async def connected(
    api_url: str,
    *,
    origin: str | None = None,
    keepalive: bool = True,
    sock: socket.socket | None = None,
) -> AsyncIterator[LiveClient]:
    """A WebSocket to an API's /graphql with the graphql-transport-ws subprotocol (over
    `sock`, when given, connected here)."""
    headers = {"origin": origin} if origin else None
    if sock is not None:
        host, port = api_url.removeprefix("http://").split(":")
        sock.connect((host, int(port)))
        sock.setblocking(False)
    async with websockets.connect(
        ws_url(api_url),
        sock=sock,
        subprotocols=[websockets.Subprotocol(PROTOCOL)],
        additional_headers=headers,
        open_timeout=10,
        close_timeout=2,
    ) as ws:
        client = LiveClient(ws, keepalive)
        try:
            yield client
        finally:
            await client.stop()


@asynccontextmanager
async def subscribed(
    api_url: str, org: str, *, ttl: int = 600, **kwargs: Any
) -> AsyncIterator[LiveClient]:
    """A connection signed in for `org`, subscribed to `entitlementChanged` as id "1"."""
    async with connected(api_url, **kwargs) as client:
        ack = await client.init({"authorization": f"Bearer {token(org, ttl=ttl)}"})
        assert ack == {"type": "connection_ack"}, ack
        await client.subscribe()
        yield client


async def pushed_until(
    live: LiveClient, last: Entitlement, check: Callable[[Entitlement], bool]
) -> list[Entitlement]:
    """Messages until one satisfies `check`; each differs from the one before it."""
    seen: list[Entitlement] = []
    while True:
        got = await live.next(timeout=30)
        assert got != last, f"a message that changes nothing: {got}"
        seen.append(got)
        if check(got):
            return seen
        last = got
