"""The per-request (per-socket for WebSockets) GraphQL context."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from strawberry.types import Info

from app.api.loaders import Loaders
from app.domain.auth import Principal
from app.domain.errors import Unauthenticated

if TYPE_CHECKING:
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

    def for_operation(self) -> Context:
        """One operation of a WebSocket: the socket's caller, with a request id and DataLoaders of
        its own (a socket lives long; its operations are separate requests)."""
        return dataclasses.replace(self, request_id=uuid.uuid4().hex, loaders=Loaders(self.services))


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
