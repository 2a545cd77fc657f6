"""The GraphQL context: the service and the caller, per HTTP request or per WebSocket."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from billing.container import Services
from billing.kit.auth import AuthError, Principal
from billing.kit.logs import bind_org_id


class Context(BaseContext):
    """What every resolver gets."""

    def __init__(self, services: Services, principal: Principal | None = None) -> None:
        super().__init__()
        self.services = services
        self._principal = principal
        """The caller, once known (given when the request was authenticated beforehand)."""
        self.billing_error = False
        """True once a mutation answered a BillingError (the operation's metrics outcome)."""

    @property
    def over_websocket(self) -> bool:
        """True for a WebSocket connection (subscriptions), False for an HTTP request."""
        return self.request is not None and self.request.scope["type"] == "websocket"

    async def sign_in(self) -> Principal:
        """Authenticate a WebSocket from its `connection_init` payload's `authorization`."""
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        bearer = next((v for k, v in params.items() if str(k).lower() == "authorization"), None)
        self._principal = await self.services.auth.authenticate(
            bearer if isinstance(bearer, str) else None
        )
        bind_org_id(self._principal.org_id)
        return self._principal

    async def principal(self) -> Principal:
        """The authenticated caller, or an UNAUTHENTICATED GraphQL error.

        Its org goes on the log lines of the task asking (a resolver's; the request's own for
        a mutation), until that task ends."""
        if self._principal is None:
            try:
                if self.over_websocket:
                    raise AuthError("not signed in")  # a WebSocket signs in at connection_init
                header = self.request.headers.get("authorization") if self.request else None
                self._principal = await self.services.auth.authenticate(header)
            except AuthError as exc:
                raise GraphQLError(
                    f"Not authenticated: {exc}", extensions={"code": "UNAUTHENTICATED"}
                ) from None
        bind_org_id(self._principal.org_id)
        return self._principal


GraphQLInfo = Info[Context, Any]
