"""Who calls, checked again for as long as a connection lives (app/services/revocation.py).

An HTTP request authenticates once, from its headers: it is one operation. A WebSocket
authenticates at `connection_init` and then carries any number of operations, for hours: each one
checks the credential again when it starts (`CallerCheck`), so a key revoked or expired meanwhile,
or a JWT past its `exp`, gets UNAUTHENTICATED. A chatStream that is running when its caller's
credential is revoked or expires ends with a ChatStreamError `UNAUTHENTICATED` (`until_refused`),
over every transport, on every instance.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import web
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension

from app.api.context import Context, GraphQLInfo
from app.api.errors import ErrorCode
from app.db import DatabaseUnavailable
from app.domain.errors import Unauthenticated
from app.domain.gateway import GatewayStreamEvent
from app.server_keys import CALLER
from app.services.auth import Credential, connection_credential, http_credential
from app.services.revocation import stream_refused


async def authenticate_request(context: Context) -> None:
    """The caller of an HTTP request (or of a WebSocket's upgrade request), from its headers. Bad
    credentials are kept in `auth_error`: raised only if an operation needs the caller."""
    request = context.request
    credential = http_credential(request.headers, request.query)
    if credential is not None:
        try:
            await _open(context, credential)
        except (Unauthenticated, DatabaseUnavailable) as exc:
            context.auth_error = exc


async def authenticate_connection(context: Context) -> None:
    """`connection_init`: the credential of its payload, else the upgrade request's; a socket
    without a caller is refused (closed with 4403)."""
    credential = connection_credential(context.connection_params)
    if credential is not None:
        try:
            await _open(context, credential)
        except (Unauthenticated, DatabaseUnavailable) as exc:
            raise ConnectionRejectionError(_rejection("authentication failed")) from exc
    elif context.caller is None:
        raise ConnectionRejectionError(_rejection("authentication required"))
    context.auth_error = None


def _rejection(message: str) -> dict[str, object]:
    """The payload of legacy graphql-ws's connection_error (graphql-transport-ws closes with 4403)."""
    return {"message": message, "extensions": {"code": ErrorCode.UNAUTHENTICATED.value}}


async def _open(context: Context, credential: Credential) -> None:
    context.caller = await context.services.revocations.open(credential)
    context.principal = context.caller.principal
    context.request[CALLER] = context.principal.label


class CallerCheck(SchemaExtension):
    """Every operation on a WebSocket checks its caller again before it runs."""

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and context.caller is not None and _is_socket(context):
            try:
                context.principal = await context.services.revocations.check(context.caller)
                context.auth_error = None
            except (Unauthenticated, DatabaseUnavailable) as exc:
                context.auth_error = exc  # what `authenticated(info)` raises
        yield


def _is_socket(context: Context) -> bool:
    return isinstance(context.response, web.WebSocketResponse)


def until_refused(
    info: GraphQLInfo, events: AsyncGenerator[GatewayStreamEvent]
) -> AsyncGenerator[GatewayStreamEvent]:
    """A gateway stream that ends with an UNAUTHENTICATED error event once its caller's credential
    is revoked or expires."""
    context = info.context
    if context.caller is None:
        return events
    return context.services.revocations.until_refused(context.caller, events, stream_refused)
