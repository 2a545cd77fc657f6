"""FastAPI dependencies: the app's services, typed."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from billing.container import Services


async def get_services(request: Request) -> Services:
    """The services `create_app` built for this app."""
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]
