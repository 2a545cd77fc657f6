"""/graphql: queries and mutations as POST, subscriptions over graphql-transport-ws."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from billing.kit.auth import AuthError
from billing.kit.settings import Settings
from resolvers.context import Context
from server.execution import build_schema
from server.graphiql import OfflineGraphiQLRouter
from server.websocket import socket_of

log = logging.getLogger(__name__)

CONNECTION_INIT_WITHIN = timedelta(seconds=10)
"""How long a new WebSocket may take to send `connection_init` before it is closed (4408)."""


class GraphQLEndpoint(OfflineGraphiQLRouter[Context, Any]):
    """The GraphQL router; a WebSocket signs in with the token in `connection_init`."""

    # Subscriptions travel over the WebSocket only, under its bounds: no SSE or multipart.
    stream_transport_classes_by_protocol: dict[str, type[HTTPStreamTransport]] = {}

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
