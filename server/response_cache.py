"""Answers of read-only GraphQL queries, kept until what they show changes.

`entitlement` is read on every page load with the same document and token, and its answer
only changes when the single writer (or someone behind its back) commits a change to that
org's rows. So the first answer of a document is computed the usual way, through Strawberry
with every limit, mask and check, and its bytes are kept:

- per org for documents selecting `entitlement` (and otherwise only `plans`/`__typename`),
  dropped as soon as the change feed (billing/kit/change_feed.py) reports a change of that org, or
  of any org; kept only when the feed watched throughout the read;
- for the life of the process for documents selecting only `plans`/`__typename` (the
  catalog is read once at start-up).

Every request is still authenticated (the token's org picks the answer) and still passes
the request guard, whose parsed body it reads (`GRAPHQL_PAYLOAD`) instead of parsing it
again. Only queries without variables whose root fields are all in those sets, and answers
without errors, are kept; anything else runs through Strawberry untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cachetools import LRUCache
from graphql import FieldNode, GraphQLError, OperationType, parse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing.container import Services
from billing.kit import metrics
from billing.kit.auth import AuthError
from server.guard import GRAPHQL_PATH, GRAPHQL_PAYLOAD
from server.prepared import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS
from server.prometheus import INVALID, label_of, operation_of
from server.validation import MAX_TOKENS

STATIC_FIELDS = frozenset({"plans", "__typename"})
"""Root fields whose answer never changes while the process runs."""

ORG_FIELDS = frozenset({"entitlement"})
"""Root fields whose answer depends only on the caller's org and its entitlement rows."""

MAX_ORGS = 10_000
"""Orgs whose answers are kept at once (the least recently read goes first)."""

MAX_ANSWERS_PER_ORG = 16
"""Documents whose answers are kept per org (catalog-only ones: MAX_DOCUMENTS in all)."""

MAX_ANSWER_BYTES = 64 * 1024
"""Larger answers are not kept."""

REQUEST_KEYS = frozenset({"query", "operationName", "variables"})


class Shape(Enum):
    """What an operation's answer depends on."""

    STATIC = "static"
    PER_ORG = "per_org"
    OTHER = "other"


@dataclass(frozen=True)
class Answer:
    """A kept response: its headers and body as Strawberry sent them."""

    headers: list[tuple[bytes, bytes]]
    body: bytes


Shaped = tuple[Shape, str]
"""A document's shape and its operation's metrics label (`server.prometheus.label_of`)."""


def shape_of(query: str, operation_name: str | None) -> Shaped:
    """The shape of the named (or only) operation of a document, and its label."""
    other = (Shape.OTHER, INVALID)
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except (GraphQLError, RecursionError):
        return other
    operation = operation_of(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return other
    names: set[str] = set()
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return other
        names.add(selection.name.value)
    if not names <= STATIC_FIELDS | ORG_FIELDS:
        return other
    label = label_of(operation)
    return (Shape.PER_ORG if names & ORG_FIELDS else Shape.STATIC), label


Key = tuple[str, str | None]
"""A request's (query, operationName)."""


def _request_key(scope: Scope) -> Key | None:
    """The key of a request that could be answered from memory, else None.

    The body is the one the request guard parsed and checked (a JSON object); without the
    guard in front, nothing is answered from memory."""
    payload = scope.get("state", {}).get(GRAPHQL_PAYLOAD)
    if not isinstance(payload, dict) or not payload.keys() <= REQUEST_KEYS:
        return None
    query, name = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str) or not (name is None or isinstance(name, str)):
        return None
    if payload.get("variables") not in (None, {}) or len(query) > MAX_DOCUMENT_CHARS:
        return None  # long texts are neither analysed nor remembered: memory stays bounded
    return query, name


class ResponseCache:
    """ASGI middleware in front of `/graphql` that answers repeated reads from memory."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.auth = services.auth
        self.change_feed = services.db.change_feed
        self._shapes: LRUCache[Key, Shaped] = LRUCache(MAX_DOCUMENTS)
        self._static: LRUCache[Key, Answer] = LRUCache(MAX_DOCUMENTS)
        self._orgs: LRUCache[str, LRUCache[Key, Answer]] = LRUCache(MAX_ORGS)
        self.change_feed.subscribe(self._forget)

    def _forget(self, org_id: str | None) -> None:
        """Drop the answers of one org (None: of every org)."""
        if org_id is None:
            self._orgs.clear()
        else:
            self._orgs.pop(org_id, None)

    def _shape(self, key: Key) -> Shaped:
        """The remembered shape and label of a document, worked out on first sight."""
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = shape_of(*key)
        return shape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from memory when possible, else run the request and maybe keep its answer."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        key = _request_key(scope)
        shape, label = self._shape(key) if key is not None else (Shape.OTHER, INVALID)
        if key is None or shape is Shape.OTHER:
            await self.app(scope, receive, send)  # Strawberry's extension records it
            return
        elapsed = metrics.clock()
        if shape is Shape.STATIC:
            answered = await self._static_read(key, scope, receive, send)
        else:
            answered = await self._org_read(key, scope, receive, send)
        if answered:  # Strawberry did not run, so its extension recorded nothing
            metrics.observe(
                metrics.GRAPHQL_LATENCY, metrics.GRAPHQL_OPERATIONS, label, "ok", elapsed()
            )

    async def _static_read(self, key: Key, scope: Scope, receive: Receive, send: Send) -> bool:
        """A catalog-only read: the same answer for everyone; True if answered from memory."""
        answer = self._static.get(key)
        if answer is not None:
            await _send(answer, send)
            return True
        kept = await _run(self.app, scope, receive, send)
        if kept is not None:
            self._static[key] = kept
        return False

    async def _org_read(self, key: Key, scope: Scope, receive: Receive, send: Send) -> bool:
        """An entitlement read: the caller's org's answer while its rows stay unchanged; True
        if answered from memory."""
        try:
            principal = await self.auth.authenticate(Headers(scope=scope).get("authorization"))
        except AuthError:
            await self.app(scope, receive, send)  # Strawberry answers UNAUTHENTICATED
            return False
        org_id = principal.org_id
        before = self.change_feed.snapshot()
        answers = self._orgs.get(org_id) if before.watching else None
        answer = answers.get(key) if answers is not None else None
        if answer is not None:
            await _send(answer, send)
            return True
        kept = await _run(self.app, scope, receive, send)
        if kept is None or not self.change_feed.still(before):
            return False
        answers = self._orgs.get(org_id)
        if answers is None:
            answers = self._orgs[org_id] = LRUCache(MAX_ANSWERS_PER_ORG)
        answers[key] = kept
        return False


async def _send(answer: Answer, send: Send) -> None:
    """Send a kept answer."""
    await send({"type": "http.response.start", "status": 200, "headers": list(answer.headers)})
    await send({"type": "http.response.body", "body": answer.body})


async def _run(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> Answer | None:
    """Run the request as usual; its answer when it may be kept (200, data, no errors)."""
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    size = 0

    async def capture(message: Message) -> None:
        nonlocal status, headers, size
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body" and size <= MAX_ANSWER_BYTES:
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
        await send(message)

    await app(scope, receive, capture)
    if status != 200 or size > MAX_ANSWER_BYTES:
        return None
    body = b"".join(chunks)
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.keys() != {"data"} or payload["data"] is None:
        return None
    return Answer(headers, body)
