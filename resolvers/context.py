"""The per-request GraphQL context: the service, the request id and the caller."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from billing.auth import AuthError, Principal
from billing.services import Services


class Context(BaseContext):
    """What every resolver gets."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._principal: Principal | None = None

    async def principal(self) -> Principal:
        """The authenticated caller, or an UNAUTHENTICATED GraphQL error."""
        if self._principal is None:
            header = self.request.headers.get("authorization") if self.request else None
            try:
                self._principal = await self.services.auth.authenticate(header)
            except AuthError as exc:
                raise GraphQLError(
                    f"Not authenticated: {exc}", extensions={"code": "UNAUTHENTICATED"}
                ) from None
        return self._principal


GraphQLInfo = Info[Context, Any]
