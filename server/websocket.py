"""The WebSocket side of /graphql (graphql-transport-ws), kept within bounds.

`SocketGuard`, an ASGI middleware, owns every WebSocket connection's life:

- at most `WS_MAX_CONNECTIONS` open per process; the next handshake is answered 503;
- a client message over `WS_MAX_MESSAGE_BYTES` closes the connection with 1009;
- every `WS_KEEPALIVE` seconds a graphql-transport-ws `ping`; a client that answers no ping,
  or does not take a message (its socket buffers are full), within `WS_KEEPALIVE` seconds
  is dropped, so a slow or vanished client never makes the server hold more than one
  message for it;
- the connection closes with 4403 when the token it signed in with expires (`expire_at`,
  called by the endpoint's `on_ws_connect`).

`OperationsByTransport` keeps each operation type on its transport: subscriptions over the
WebSocket only, queries and mutations over HTTP only (where the request guard, the body
limits and the kept answers are).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from resolvers.context import Context

log = logging.getLogger(__name__)

SOCKET = "billing_socket"
"""The key under `scope["state"]` where the guard leaves the connection's `Socket`."""

PING = json.dumps({"type": "ping"})

TOO_BIG = 1009
"""WebSocket close code: a message too big to process."""

TOKEN_EXPIRED = 4403
"""graphql-transport-ws close code for a refused token; also sent when it expires."""


class SocketGuard:
    """Bounds, keepalive and token expiry for every WebSocket connection."""

    def __init__(
        self, app: ASGIApp, *, max_connections: int, max_message_bytes: int, keepalive: float
    ) -> None:
        self.app = app
        self.max_connections = max_connections
        self.max_message_bytes = max_message_bytes
        self.keepalive = keepalive
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a WebSocket under the bounds; pass anything else on."""
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        if self.open >= self.max_connections:
            await _refuse(scope, receive, send, 503, "too many open connections")
            return
        self.open += 1
        try:
            await Socket(self, receive, send).run(self.app, scope)
        finally:
            self.open -= 1


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
    """Answer a handshake with an HTTP status (403 where the server cannot send others)."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"error": reason}).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"5")]
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1013, "reason": reason})


class Socket:
    """One connection: its message limit, keepalive, expiry, and the way it is dropped."""

    def __init__(self, guard: SocketGuard, receive: Receive, send: Send) -> None:
        self._guard = guard
        self._receive = receive
        self._send = send
        self._task: asyncio.Task[Any] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        self._pong = asyncio.Event()
        self.dropped = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        """Run the app on this connection until it ends or the connection is dropped."""
        self._task = asyncio.current_task()
        scope.setdefault("state", {})[SOCKET] = self
        try:
            await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.dropped or self._task is None or self._task.uncancel() > 0:
                raise  # not our drop: the server is shutting down
        finally:
            if self._keepalive is not None:
                self._keepalive.cancel()
            if self._expiry is not None:
                self._expiry.cancel()

    def expire_at(self, when: float) -> None:
        """Close with TOKEN_EXPIRED at `when` (Unix time): the token signed in with expires."""
        if self._expiry is not None:
            self._expiry.cancel()
        delay = max(0.0, when - time.time())
        self._expiry = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        """The token expired: close (in a task of its own; a timer cannot await)."""
        self._closing = asyncio.create_task(self.close(TOKEN_EXPIRED, "Token expired"))

    async def receive(self) -> Message:
        """The client's next message; a too big one closes the connection instead."""
        message = await self._receive()
        if message["type"] != "websocket.receive":
            return message
        text = message.get("text")
        size = len(text.encode()) if text is not None else len(message.get("bytes") or b"")
        if size > self._guard.max_message_bytes:
            await self.close(TOO_BIG, "Message too big")
            return {"type": "websocket.disconnect", "code": TOO_BIG}
        if text is not None and '"pong"' in text and _kind(text) == "pong":
            self._pong.set()
        return message

    async def send(self, message: Message) -> None:
        """Send; a client that takes no message within the keepalive is dropped."""
        if message["type"] != "websocket.send":
            await self._send(message)
            if message["type"] == "websocket.accept":
                self._keepalive = asyncio.create_task(self._ping_forever())
            return
        try:
            async with asyncio.timeout(self._guard.keepalive):
                await self._send(message)
        except TimeoutError:
            self.drop("it took no message")
            raise asyncio.CancelledError from None  # end the sender quietly; the drop cleans up

    async def _ping_forever(self) -> None:
        """Ping every keepalive interval; drop a client that does not answer in as long."""
        keepalive = self._guard.keepalive
        while True:
            await asyncio.sleep(keepalive)
            self._pong.clear()
            try:
                async with asyncio.timeout(keepalive):
                    await self._send({"type": "websocket.send", "text": PING})
                    await self._pong.wait()
            except TimeoutError:
                self.drop("it answered no ping")
                return

    async def close(self, code: int, reason: str) -> None:
        """Close the connection; drop it if even the close cannot be sent in time."""
        try:
            async with asyncio.timeout(self._guard.keepalive):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:  # a slow or vanished client: nothing more to say to it
            self.drop("it took no close")

    def drop(self, why: str) -> None:
        """End the connection now: the app is cancelled, the server closes the socket.

        Called from the app's own task (a send of its own that timed out), the caller raises
        CancelledError instead: a cancel requested here too would hit the app again while it
        cleans up its subscriptions."""
        if self.dropped:
            return
        self.dropped = True
        log.info("dropping a WebSocket client: %s within %g s", why, self._guard.keepalive)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()


def _kind(text: str) -> object:
    """The `type` of a graphql-transport-ws message (None when it is not one)."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message.get("type") if isinstance(message, dict) else None


def socket_of(scope: Scope) -> Socket | None:
    """The guard's `Socket` of a WebSocket scope (None when not under the guard)."""
    socket = scope.get("state", {}).get(SOCKET)
    return socket if isinstance(socket, Socket) else None


class OperationsByTransport(SchemaExtension):
    """Subscriptions over the WebSocket only; queries and mutations over HTTP only."""

    def on_validate(self) -> Iterator[None]:
        """Refuse an operation that came by the other transport (before validating it)."""
        context = self.execution_context
        over_websocket = isinstance(context.context, Context) and context.context.over_websocket
        subscription = context.operation_type is OperationType.SUBSCRIPTION
        if subscription and not over_websocket:
            context.pre_execution_errors = [GraphQLError(OVER_HTTP)]
        elif over_websocket and not subscription:
            context.pre_execution_errors = [GraphQLError(OVER_WEBSOCKET)]
        yield


OVER_HTTP = (
    "Subscriptions are served over the graphql-transport-ws WebSocket on /graphql, not over HTTP."
)
OVER_WEBSOCKET = (
    "Only subscriptions are served over the WebSocket; send queries and mutations as POST /graphql."
)
