"""The ASGI request guard: request ids, body limits, JSON-only POSTs, masked 500s."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.kit.logs import new_request_id, request_id
from server.media import GRAPHQL_RESPONSE_JSON, graphql_error_response, response_media_type
from webhooks import RAW_BODY, WEBHOOK_PATH

log = logging.getLogger(__name__)
GRAPHQL_PATH = "/graphql"
LIMITED_PATHS = (GRAPHQL_PATH, WEBHOOK_PATH)


GRAPHQL_PAYLOAD = "graphql_payload"
"""The key under `scope["state"]` where the guard leaves a /graphql POST's parsed body."""


def _graphql_payload(body: bytes) -> dict[str, Any] | str:
    """A /graphql body as a JSON object, or why it is refused before GraphQL sees it.

    One JSON object per request: arrays (batches) and bare values are refused here, so no
    GraphQL server setting can turn batching on by accident, and odd JSON never reaches
    code that expects an object.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return "request body is not valid JSON"
    if isinstance(payload, list):
        return "batched requests are not accepted"
    if not isinstance(payload, dict):
        return "request body must be a JSON object"
    return payload


def refusal(path: str, accept: str | None, status: int, reason: str, rid: str) -> Response:
    """A GraphQL error for a /graphql client negotiating graphql-response+json, else JSON."""
    if path == GRAPHQL_PATH and response_media_type(accept) == GRAPHQL_RESPONSE_JSON:
        return graphql_error_response(status, reason, requestId=rid)
    return JSONResponse({"error": reason, "requestId": rid}, status_code=status)


class RequestGuard:
    """Request ids everywhere; size limits and JSON-only POSTs on the public endpoints;
    unexpected exceptions answered with a masked 500 that carries the request id."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then pass it on with a bounded body stream."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = new_request_id(headers.get("x-request-id"))
        token = request_id.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        async def refuse(status: int, reason: str) -> None:
            answer = refusal(scope["path"], headers.get("accept"), status, reason, rid)
            await answer(scope, receive, send_with_id)

        try:
            problem = self._refuse(scope, headers)
            if problem is not None:
                await refuse(*problem)
                return
            if scope["method"] == "POST" and scope["path"] in LIMITED_PATHS:
                messages, body = await self._read_body(receive)
                if scope["path"] == GRAPHQL_PATH:
                    payload = _graphql_payload(body)
                    if isinstance(payload, str):
                        await refuse(400, payload)
                        return
                    scope.setdefault("state", {})[GRAPHQL_PAYLOAD] = payload
                else:
                    scope.setdefault("state", {})[RAW_BODY] = body
                await self.app(scope, replay(messages, receive), send_with_id)
            else:
                await self.app(scope, self._bounded(receive), send_with_id)
        except _TooLarge:
            if started:
                raise
            await refuse(413, "request body too large")
        except _Disconnected:
            return
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise
            await refuse(500, f"Internal server error (request id {rid})")
        finally:
            request_id.reset(token)

    def _refuse(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """A (status, reason) for a request refused before it runs, else None."""
        if scope["path"] not in LIMITED_PATHS or scope["method"] != "POST":
            return None
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, "request body too large"
        if not is_json_type(headers.get("content-type")):
            return 415, "only application/json POST bodies are accepted"
        return None

    async def _read_body(self, receive: Receive) -> tuple[list[Message], bytes]:
        """The messages and the whole body, refused as soon as it grows past the limit
        (chunked uploads)."""
        messages, body = await read_body(receive, self.max_body)
        if body is None:
            raise _Disconnected if messages[-1]["type"] == "http.disconnect" else _TooLarge
        return messages, body

    def _bounded(self, receive: Receive) -> Receive:
        """A receive that stops a body growing past the limit (chunked uploads)."""
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        return bounded


def is_json_type(content_type: str | None) -> bool:
    """True for `application/json`, with parameters or in any case."""
    return content_type is not None and (
        content_type.split(";")[0].strip().lower() == "application/json"
    )


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """The messages read and the whole body; None for the body once it grows past the limit
    or the client goes away (hand the messages on with `replay`)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body"):
            break
    if len(messages) == 1:
        return messages, messages[0].get("body", b"")
    return messages, b"".join(m.get("body", b"") for m in messages)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands the messages already read over once, then waits as usual."""
    pending = iter(messages)

    async def replayed() -> Message:
        return next(pending, None) or await receive()

    return replayed


class _TooLarge(Exception):
    """The body went over the limit."""


class _Disconnected(Exception):
    """The client went away before sending its whole body."""
