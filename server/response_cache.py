"""Answers of read-only GraphQL queries, kept until what they show changes, served as the
outermost layer of the app.

`entitlement` is read on every page load, and its answer only changes when the single writer
(or someone behind its back) commits a change to that org's rows. So a request is answered
here, before any other layer, when all of this holds:

- it is `POST /graphql` with a JSON content type and a body within the request limit, in one
  piece, whose exact bytes, `Accept` and `Origin` were answered before through the whole stack
  (the request guard's checks, CORS, Strawberry with every limit, mask and check) with data
  and no errors: a *known form*, whose answer's headers are known too;
- its `Authorization` verified before and still holds (`Authenticator.remembered`: one
  dictionary lookup), for documents selecting `entitlement`; catalog-only documents (`plans`,
  `__typename`) are the same for everyone;
- the change feed (billing/kit/change_feed.py) watched throughout, and reported no change of
  that org (or of any org) since the answer was kept.

A hit costs two dictionary lookups, a request id, and two ASGI messages; the operation is
counted in the batched metrics, and the server's access log still logs it. An org whose
answer is not kept yet but whose form is known is answered by graphql-core's executor on the
validated document, skipping the HTTP layers and Strawberry's per-request machinery; an
answer with errors is thrown away and the request goes the whole way. Anything else (other
documents, variables, mutations, unknown tokens, odd headers) goes the whole way untouched.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationType,
    execute,
    parse,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.schema import BaseSchema, Schema
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.utils.await_maybe import await_maybe

from billing.container import Services
from billing.kit import metrics
from billing.kit.auth import AuthError, Principal
from billing.kit.logs import new_request_id, request_id
from resolvers.context import Context
from server.guard import GRAPHQL_PATH, GRAPHQL_PAYLOAD, is_json_type, read_body, replay
from server.prepared import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS
from server.prometheus import label_of, operation_of
from server.validation import MAX_TOKENS

log = logging.getLogger(__name__)

STATIC_FIELDS = frozenset({"plans", "__typename"})
"""Root fields whose answer never changes while the process runs."""

ORG_FIELDS = frozenset({"entitlement"})
"""Root fields whose answer depends only on the caller's org and its entitlement rows."""

MAX_ORGS = 65_536
"""Orgs whose answers are kept at once, the least recently read forgotten first: the orgs of
100,000 active users at two or more users per org; about 600 bytes each for a 280-byte
answer, 37 MiB when full (`make bench` measures it; README: "Speed")."""

MAX_ANSWERS_PER_ORG = 8
"""Forms whose answers are kept per org (the oldest goes first)."""

MAX_ANSWER_BYTES = 64 * 1024
"""Larger answers are not kept."""

MAX_FORM_BYTES = MAX_DOCUMENT_CHARS + 2048
"""A longer body, `Accept` or `Origin` always goes the whole way (a kept form holds them, and
JSON may pad a short query with a megabyte of spaces)."""

MAX_LENGTHS = 1024
"""Answer lengths whose headers a known form keeps at once."""

REQUEST_KEYS = frozenset({"query", "operationName", "variables"})

EVERYONE = ""
"""The key catalog-only answers are kept under (no org id is empty)."""

JSON_TYPE = b"application/json"

PER_RESPONSE = (b"content-length", b"x-request-id")
"""Headers of an answer that are not kept with it: set for each response sent."""


class Shape(Enum):
    """What an operation's answer depends on."""

    STATIC = "static"
    PER_ORG = "per_org"
    OTHER = "other"


Form = tuple[bytes, bytes | None, bytes | None]
"""A request as far as its answer goes: the body's bytes, `Accept` and `Origin`."""

Header = tuple[bytes, bytes]

Answer = tuple[tuple[Header, ...], bytes]
"""A kept response's headers (without the request id) and body: a plain tuple of atoms, which
the garbage collector stops tracking, so a full collection does not walk every kept one."""


Kept = tuple[tuple[Form, Answer], ...]
"""An org's kept answers by form (a few at most: a tuple takes half a dict's memory)."""


def _find(kept: Kept, form: Form) -> Answer | None:
    """The kept answer of a form, if any."""
    for known, answer in kept:
        if known == form:
            return answer
    return None


@dataclass(frozen=True)
class Known:
    """A form answered through the whole stack: what its answers depend on, its operation's
    metrics label, its validated document, and its answers' headers but the length."""

    form: Form
    shape: Shape
    label: str
    document: DocumentNode
    operation_name: str | None
    headers: tuple[Header, ...]
    _by_length: dict[int, tuple[Header, ...]] = field(default_factory=dict)

    def headers_for(self, length: int) -> tuple[Header, ...]:
        """The headers of an answer of this length (one tuple per length, shared by every
        org's answer of that length)."""
        found = self._by_length.get(length)
        if found is None:
            if len(self._by_length) >= MAX_LENGTHS:
                self._by_length.clear()
            found = self._by_length[length] = (*self.headers, (b"content-length", b"%d" % length))
        return found


@dataclass(frozen=True)
class Shaped:
    """A document's shape, label and parsed form (`shape_of`)."""

    shape: Shape
    label: str
    document: DocumentNode | None


OTHER = Shaped(Shape.OTHER, "", None)


def shape_of(query: str, operation_name: str | None) -> Shaped:
    """The shape and label of the named (or only) operation of a document."""
    try:
        document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
    except (GraphQLError, RecursionError):
        return OTHER
    operation = operation_of(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return OTHER
    names: set[str] = set()
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return OTHER
        names.add(selection.name.value)
    if not names <= STATIC_FIELDS | ORG_FIELDS:
        return OTHER
    shape = Shape.PER_ORG if names & ORG_FIELDS else Shape.STATIC
    return Shaped(shape, label_of(operation), document)


def _query_of(payload: object) -> tuple[str, str | None] | None:
    """The (query, operationName) of a body that could be answered from memory, else None."""
    if not isinstance(payload, dict) or not payload.keys() <= REQUEST_KEYS:
        return None
    query, name = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str) or not (name is None or isinstance(name, str)):
        return None
    if payload.get("variables") not in (None, {}) or len(query) > MAX_DOCUMENT_CHARS:
        return None  # long texts are neither analysed nor remembered: memory stays bounded
    return query, name


class ResponseCache:
    """ASGI middleware, outermost, that answers repeated reads from memory."""

    def __init__(self, app: ASGIApp, services: Services, schema: BaseSchema, max_body: int) -> None:
        self.app = app
        self.services = services
        self.auth = services.auth
        self.change_feed = services.db.change_feed
        self.max_body = max_body
        self.executor = Executor(schema)
        self._shapes: OrderedDict[tuple[str, str | None], Shaped] = OrderedDict()
        self._known: OrderedDict[Form, Known] = OrderedDict()
        self._answers: OrderedDict[str, Kept] = OrderedDict()
        self.change_feed.subscribe(self._forget)

    def _forget(self, org_id: str | None) -> None:
        """Drop the answers of one org (None: of every org)."""
        if org_id is None:
            self._answers.clear()
        else:
            self._answers.pop(org_id, None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from memory when possible, else pass the request on."""
        if scope["type"] != "http" or scope["path"] != GRAPHQL_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(reversed(scope["headers"]))  # the first of a repeated header, as Starlette
        content_type = headers.get(b"content-type")
        if content_type != JSON_TYPE and not is_json_type(_text(content_type)):
            await self.app(scope, receive, send)  # the guard refuses it
            return
        messages, body = await read_body(receive, self.max_body)
        receive = replay(messages, receive)
        if body is None:
            await self.app(scope, receive, send)  # too large or gone: the guard answers
            return
        accept, origin = headers.get(b"accept"), headers.get(b"origin")
        if len(body) + len(accept or b"") + len(origin or b"") > MAX_FORM_BYTES:
            await self.app(scope, receive, send)
            return
        form = (body, accept, origin)
        known = self._known.get(form)
        if known is None:
            await self._learn(form, headers, scope, receive, send)
            return
        self._known.move_to_end(form)
        if not await self._answer(known, headers, send):
            await self.app(scope, receive, send)
            return
        metrics.observe_operation(known.label, "ok", time.perf_counter() - started)

    async def _answer(self, known: Known, headers: dict[bytes, bytes], send: Send) -> bool:
        """Answer a known form: the caller's org's kept answer, else one computed now; False
        (nothing sent) when the request must go the whole way."""
        authorization = headers.get(b"authorization")
        org = EVERYONE if known.shape is Shape.STATIC else self._org(authorization)
        principal: Principal | None = None
        try:
            if org is None:  # a token not seen before (or no longer remembered): verify it
                principal = await self.auth.authenticate(_text(authorization))
                org = principal.org_id
            self.change_feed.poll()
            answer = _find(self._answers.get(org, ()), known.form)
            if answer is not None and self.change_feed.watching:
                self._answers.move_to_end(org)
            else:
                if known.shape is Shape.PER_ORG and principal is None:
                    principal = await self.auth.authenticate(_text(authorization))
                answer = await self._compute(known, org, principal)
        except AuthError:
            return False  # Strawberry answers UNAUTHENTICATED, with its metrics
        except Exception:  # the whole way answers it, masked, with the request id
            log.warning("answering %s without the HTTP layers failed", known.label, exc_info=True)
            return False
        if answer is None:
            return False
        await _send(answer, headers.get(b"x-request-id"), send)
        return True

    def _org(self, authorization: bytes | None) -> str | None:
        """The org of a remembered token, else None."""
        return self.auth.remembered(authorization) if authorization else None

    async def _compute(self, known: Known, org: str, principal: Principal | None) -> Answer | None:
        """An org's answer of a known form computed without the HTTP layers, and kept; None
        when it has errors (the request must go the whole way)."""
        before = self.change_feed.snapshot()
        body = await self.executor.run(known, Context(self.services, principal))
        if body is None:
            return None
        answer: Answer = (known.headers_for(len(body)), body)
        if self.change_feed.still(before):
            self._keep(org, known.form, answer)
        return answer

    async def _learn(
        self, form: Form, headers: dict[bytes, bytes], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run a request of a form not known yet the whole way; when its answer may be kept,
        the form becomes known and its answer kept."""
        before = self.change_feed.snapshot()
        captured = await _run(self.app, scope, receive, send)
        if captured is None:
            return
        query = _query_of(scope.get("state", {}).get(GRAPHQL_PAYLOAD))
        shaped = self._shape(query) if query is not None else OTHER
        if shaped.document is None:
            return
        org = EVERYONE
        if shaped.shape is Shape.PER_ORG:
            org = self._org(headers.get(b"authorization")) or ""
            if not org:
                return  # refused, or expired meanwhile
        status_headers, body = captured
        template = tuple((k, v) for k, v in status_headers if k not in PER_RESPONSE)
        assert query is not None
        known = Known(form, shaped.shape, shaped.label, shaped.document, query[1], template)
        self._known[form] = known
        if len(self._known) > MAX_DOCUMENTS:
            self._known.popitem(last=False)
        if self.change_feed.still(before):
            self._keep(org, form, (known.headers_for(len(body)), body))

    def _shape(self, query: tuple[str, str | None]) -> Shaped:
        """The remembered shape of a document, worked out on first sight."""
        shaped = self._shapes.get(query)
        if shaped is None:
            shaped = self._shapes[query] = shape_of(*query)
            if len(self._shapes) > MAX_DOCUMENTS:
                self._shapes.popitem(last=False)
        return shaped

    def _keep(self, org: str, form: Form, answer: Answer) -> None:
        """Keep an org's answer of a form, within the bounds (its other forms' stay)."""
        others = tuple(pair for pair in self._answers.get(org, ()) if pair[0] != form)
        self._answers[org] = (*others[-(MAX_ANSWERS_PER_ORG - 1) :], (form, answer))
        self._answers.move_to_end(org)
        if len(self._answers) > MAX_ORGS:
            self._answers.popitem(last=False)


class Executor:
    """graphql-core's executor on a known form's validated document: the answer's bytes as
    Strawberry would send them, or None when it has errors."""

    def __init__(self, schema: BaseSchema) -> None:
        assert isinstance(schema, Schema)
        self.schema = schema

    async def run(self, known: Known, context: Context) -> bytes | None:
        """Execute and encode."""
        result = await await_maybe(
            execute(
                self.schema._schema,
                known.document,
                operation_name=known.operation_name,
                context_value=context,
                **execution_context_class_kwargs(self.schema.execution_context_class),
            )
        )
        if not isinstance(result, ExecutionResult) or result.errors or result.data is None:
            return None
        return json.dumps({"data": result.data}, separators=(",", ":")).encode()


def _text(header: bytes | None) -> str | None:
    """A header's value as text (HTTP headers are Latin-1)."""
    return header.decode("latin-1") if header is not None else None


async def _send(answer: Answer, incoming_id: bytes | None, send: Send) -> None:
    """Send a kept answer with a request id (the caller's when well-formed), which the access
    log line of this request carries."""
    rid = new_request_id(incoming_id.decode("latin-1") if incoming_id else None)
    token = request_id.set(rid)
    try:
        headers, body = answer
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*headers, (b"x-request-id", rid.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
    finally:
        request_id.reset(token)


async def _run(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
    """Run the request the whole way; its headers and body when it may be kept (200, data,
    no errors)."""
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
    return headers, body
