"""/graphql: queries and mutations as POST, subscriptions over graphql-transport-ws; answers
in the media type the client's `Accept` negotiates (`server/media.py`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, overload

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UNSET, UnsetType

from billing.kit.auth import AuthError
from billing.kit.logs import request_id
from billing.kit.settings import Settings
from resolvers.context import Context
from server.execution import build_schema
from server.graphiql import OfflineGraphiQLRouter
from server.masking import is_server_fault
from server.media import (
    APPLICATION_JSON,
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    graphql_error_response,
    response_media_type,
)
from server.websocket import socket_of

log = logging.getLogger(__name__)

CONNECTION_INIT_WITHIN = timedelta(seconds=10)
"""How long a new WebSocket may take to send `connection_init` before it is closed (4408)."""

NOT_ACCEPTABLE = f"Not Acceptable: /graphql answers {GRAPHQL_RESPONSE_JSON} or {APPLICATION_JSON}"


def request_error_status(result: ExecutionResult) -> int | None:
    """400 (500 for a server fault) for a request error, refused before execution or with
    variables that did not coerce (no data, no error at a field); None when it ran."""
    errors = result.errors or []
    not_run = result.data is None and all(error.path is None for error in errors)
    if not errors or not (isinstance(result, PreExecutionError) or not_run):
        return None
    return 500 if any(is_server_fault(error) for error in errors) else 400


def _negotiated(request: Request) -> str | None:
    """The media type this request's answer uses (None: nothing it accepts)."""
    return response_media_type(request.headers.get("accept"))


class GraphQLEndpoint(OfflineGraphiQLRouter[Context, Any]):
    """The GraphQL router; a WebSocket signs in with the token in `connection_init`.

    A client that accepts `application/graphql-response+json` gets that type: a request error
    is a 4xx (or 500) without `data`, an HTTP-level refusal a GraphQL error in that type too.
    Any other client gets Strawberry's answers untouched, and one that accepts neither type
    a 406 before anything runs.
    """

    # Subscriptions travel over the WebSocket only, under its bounds: no SSE or multipart.
    stream_transport_classes_by_protocol: dict[str, type[HTTPStreamTransport]] = {}

    @overload
    async def run(
        self, request: Request, context: Context = UNSET, root_value: Any = UNSET
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = UNSET, root_value: Any = UNSET
    ) -> WebSocket: ...

    async def run(
        self, request: Request | WebSocket, context: Context = UNSET, root_value: Any = UNSET
    ) -> Response | WebSocket:
        """Strawberry's run; in `GRAPHQL_RESPONSE_JSON` for the clients that negotiate it."""
        # Nothing is awaited before Strawberry's run: the FastAPI router hands it the request's
        # sub-response through an attribute set just before this call.
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        if _negotiated(request) != GRAPHQL_RESPONSE_JSON:
            return await super().run(request, context, root_value)
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as exc:
            return graphql_error_response(exc.status_code, exc.reason, requestId=request_id.get())
        if response.media_type == APPLICATION_JSON:
            response.headers["content-type"] = CONTENT_TYPES[GRAPHQL_RESPONSE_JSON]
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Refuse with 406 a request that accepts no type we answer in, before parsing it."""
        if response_media_type(request.headers.get("accept")) is None:
            raise HTTPException(406, NOT_ACCEPTABLE)
        return await super().parse_http_body(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: Any | None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Execute; a request error answered in `GRAPHQL_RESPONSE_JSON` gets its 4xx status."""
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        if _negotiated(request) == GRAPHQL_RESPONSE_JSON:
            sub_response.status_code = request_error_status(result) or sub_response.status_code
        return result

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """The response body; a request error in `GRAPHQL_RESPONSE_JSON` has no `data`."""
        response = await super().process_result(request, result)
        if _negotiated(request) == GRAPHQL_RESPONSE_JSON and request_error_status(result):
            response.pop("data", None)
        return response

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Check the `authorization` of `connection_init` like a bearer header (else 4403)."""
        try:
            principal = await context.sign_in()
        except AuthError as exc:
            log.info("WebSocket refused: %s", exc)
            raise ConnectionRejectionError from None
        socket = socket_of(context.request.scope) if context.request is not None else None
        if socket is not None:
            socket.expire_at(principal.expires_at)
        return UnsetType()


def graphql_endpoint(
    settings: Settings, context_getter: Callable[[], Awaitable[Context]]
) -> GraphQLEndpoint:
    """The /graphql router for these settings."""
    dev = not settings.production
    return GraphQLEndpoint(
        build_schema(settings.production),
        context_getter=context_getter,
        graphql_ide="graphiql" if dev else None,
        allow_queries_via_get=False,
        multipart_uploads_enabled=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=CONNECTION_INIT_WITHIN,
        max_subscriptions_per_connection=settings.ws_max_subscriptions,
        # In production a browser page may open the WebSocket only from CORS_ORIGINS (a
        # client without an Origin is no browser and carries no ambient credentials).
        allowed_origins=settings.cors_origins if settings.production else ("*",),
    )
