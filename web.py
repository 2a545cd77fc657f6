"""The ASGI app: GraphQL, the Stripe webhook, health checks and request hygiene."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import strawberry
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationRule,
)
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.fastapi import GraphQLRouter
from strawberry.types import ExecutionContext

from billing.context import Billing
from billing.observability import configure_logging, new_request_id, request_id
from billing.settings import Settings, get_settings
from resolvers.context import Context
from schema.root import Mutation, Query
from webhooks.router import router as webhook_router

log = logging.getLogger(__name__)
MAX_DEPTH = 5
MAX_TOKENS = 1000
MAX_ALIASES = 5
GRAPHQL_PATH = "/graphql"
LIMITED_PATHS = (GRAPHQL_PATH, "/webhooks/stripe")


class MaskUnexpectedErrors(MaskErrors):
    """Mask every error that is not a GraphQL error we raised on purpose; keep the request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        """A generic message plus the request id that the logs carry."""
        rid = request_id.get()
        return GraphQLError(
            f"Internal server error (request id {rid})",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": rid},
        )


def is_unexpected(error: GraphQLError) -> bool:
    """True for an error raised by a bug or an outage, not on purpose as a GraphQLError."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class BillingSchema(strawberry.Schema):
    """The schema; logs only unexpected errors, with their request id."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors with a traceback; expected ones are the client's business."""
        for error in errors:
            if is_unexpected(error):
                log.error("unexpected GraphQL error", exc_info=error.original_error)


def _ignore_introspection(context: IgnoreContext) -> bool:
    """Introspection fields do not count towards the depth limit (GraphiQL needs them).

    Their nesting is bounded by graphql-core's MaxIntrospectionDepthRule instead (one of
    its specified rules), which refuses the `fields { type { fields { ... } } }` cycles that
    make introspection exponential; a test pins that down.
    """
    return context.field_name.startswith("__")


class OneMutationField(ValidationRule):
    """A mutation operation selects one field: one Stripe-bound action per request.

    Aliases would otherwise let one request run several `upgrade`/`openPortal` calls in
    sequence, each up to the Stripe deadline, multiplying the time a request holds a worker.
    """

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        """Count the distinct response keys of a mutation's root selection."""
        if node.operation is not OperationType.MUTATION:
            return
        keys = set(self._root_keys(node.selection_set, set()))
        keys.discard("__typename")
        if len(keys) > 1:
            self.report_error(GraphQLError("A mutation may select only one field.", [node]))

    def _root_keys(self, selection_set: SelectionSetNode, seen: set[str]) -> Iterator[str]:
        """Response keys at this level, through inline fragments and fragment spreads."""
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield (selection.alias or selection.name).value
            elif isinstance(selection, InlineFragmentNode):
                yield from self._root_keys(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is not None and name not in seen:
                    seen.add(name)
                    yield from self._root_keys(fragment.selection_set, seen)


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?\s*$")


class HideSuggestions(SchemaExtension):
    """Drop "Did you mean ...?" hints, which would reveal the schema introspection hides."""

    def on_operation(self) -> Iterator[None]:
        """Rewrite error messages once the operation is done."""
        yield
        errors = list(self.execution_context.pre_execution_errors or [])
        result = self.execution_context.result
        errors.extend(getattr(result, "errors", None) or [])
        for error in errors:
            error.message = _SUGGESTION.sub("", error.message)


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema, with abuse limits passed as factories."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH, should_ignore=_ignore_introspection),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: AddValidationRules([OneMutationField]),
        MaskUnexpectedErrors,
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
        extensions.append(HideSuggestions)
    return BillingSchema(query=Query, mutation=Mutation, extensions=extensions)


def _graphql_body_problem(body: bytes) -> str | None:
    """Why a /graphql body is refused before GraphQL sees it, or None.

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
    return None


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
            await JSONResponse({"error": reason, "requestId": rid}, status_code=status)(
                scope, receive, send_with_id
            )

        try:
            problem = self._refuse(scope, headers)
            if problem is not None:
                await refuse(*problem)
                return
            if scope["method"] == "POST" and scope["path"] in LIMITED_PATHS:
                body = await self._read_body(receive)
                if scope["path"] == GRAPHQL_PATH:
                    reason = _graphql_body_problem(body)
                    if reason is not None:
                        await refuse(400, reason)
                        return
                await self.app(scope, _replay(body, receive), send_with_id)
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
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return 415, "only application/json POST bodies are accepted"
        return None

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, refusing it as soon as it grows past the limit (chunked uploads)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

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


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body over once, then waits as usual."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _TooLarge(Exception):
    """The body went over the limit."""


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


class ListedOriginsCORS(CORSMiddleware):
    """Starlette's CORS for the listed origins only; any other origin gets no CORS header
    at all (Starlette would still send Allow-Credentials to it, harmless but misleading)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass requests from unlisted origins straight through."""
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self.is_allowed_origin(origin):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Wire the service for these settings (default: the environment)."""
    settings = settings or get_settings()
    configure_logging()
    billing = Billing.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await billing.db.dispose()

    app = FastAPI(
        title="Billing API",
        lifespan=lifespan,
        docs_url=None if settings.production else "/docs",
        redoc_url=None,
        openapi_url=None if settings.production else "/openapi.json",
    )
    app.state.billing = billing

    async def context() -> Context:
        return Context(billing)

    graphql = GraphQLRouter[Context, Any](
        build_schema(settings),
        context_getter=context,
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=False,
        multipart_uploads_enabled=False,
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(webhook_router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """The database answers."""
        ok = await billing.db.ping()
        return JSONResponse({"status": "ok" if ok else "database unavailable"}, 200 if ok else 503)

    if settings.cors_origins:
        app.add_middleware(
            ListedOriginsCORS,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            max_age=600,
        )
    app.add_middleware(RequestGuard, max_body=settings.max_body_bytes)
    return app
