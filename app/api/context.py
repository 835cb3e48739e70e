"""The per-request (per-socket for WebSockets) GraphQL context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from strawberry.types import Info

from app.domain.auth import Principal
from app.domain.errors import Unauthenticated

if TYPE_CHECKING:
    from app.api.loaders import Loaders
    from app.services.container import Services
    from app.services.revocation import CallerSession


@dataclass
class Context:
    request: web.Request
    response: web.StreamResponse | None
    services: Services
    request_id: str
    loaders: Loaders
    principal: Principal | None = None
    # Set when credentials were sent but did not authenticate; raised by `authenticated`.
    auth_error: Exception | None = None
    connection_params: dict[str, Any] | None = field(default=None)
    # The credential behind `principal`, to check it again (app/api/revocation.py).
    caller: CallerSession | None = None


GraphQLInfo = Info[Context, None]


def authenticated(info: GraphQLInfo) -> Principal:
    """The caller, or a top-level UNAUTHENTICATED (or SERVICE_UNAVAILABLE) error."""
    context = info.context
    if context.auth_error is not None:
        raise context.auth_error
    if context.principal is None:
        raise Unauthenticated()
    return context.principal


def services(info: GraphQLInfo) -> Services:
    return info.context.services
