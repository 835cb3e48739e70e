"""The GraphQL endpoint: Strawberry's aiohttp view with our context and WebSocket authentication
(GraphQL over HTTP's media types, status codes and streams: `app.api.http_view`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)

from app.api.context import Context
from app.api.http_view import GraphQLHTTPView
from app.api.loaders import Loaders
from app.api.websocket_handlers import LegacyWSHandler, TransportWSHandler
from app.config import Settings
from app.db import DatabaseUnavailable
from app.domain.errors import Unauthenticated
from app.server_keys import CALLER, REQUEST_ID, SERVICES


class ModelgateView(GraphQLHTTPView):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: Any, settings: Settings) -> None:
        super().__init__(
            schema=schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
            connection_init_wait_timeout=timedelta(seconds=30),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )

    def encode_json(self, data: object) -> str:
        # orjson: several times faster than json.dumps on a page of models. Text, not bytes: the
        # WebSocket transports send bytes as binary frames, which GraphQL clients refuse.
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:
        services = request.app[SERVICES]
        context = Context(
            request=request,
            response=response,
            services=services,
            request_id=request[REQUEST_ID],
            loaders=Loaders(services),
        )
        try:
            context.principal = await services.auth.from_http(request.headers, request.query)
        except (Unauthenticated, DatabaseUnavailable) as exc:
            context.auth_error = exc
        if context.principal is not None:
            request[CALLER] = context.principal.label
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """The key or token comes in the connection_init payload; refusal closes with 4403."""
        try:
            principal = await context.services.auth.from_connection_params(context.connection_params)
        except (Unauthenticated, DatabaseUnavailable) as exc:
            raise ConnectionRejectionError({"message": "authentication failed"}) from exc
        principal = principal or (None if context.auth_error else context.principal)
        if principal is None:
            raise ConnectionRejectionError({"message": "authentication required"})
        context.principal = principal
        context.auth_error = None
        context.request[CALLER] = principal.label
        return None
