"""The GraphQL endpoint: Strawberry's aiohttp view with our context and authentication
(GraphQL over HTTP's media types, status codes and streams: `app.api.http_view`; the WebSocket
protocols: `app.api.websocket_handlers`; checking the caller again: `app.api.revocation`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)

from app.api.context import Context
from app.api.http_view import GraphQLHTTPView
from app.api.loaders import Loaders
from app.api.operation_plans import OperationPlans
from app.api.revocation import authenticate_connection, authenticate_request
from app.api.transport_errors import json_object
from app.api.websocket_handlers import LegacyWSHandler, TransportWSHandler
from app.config import Settings
from app.server_keys import REQUEST_ID, SERVICES
from app.web.graphiql_page import graphiql_page


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
        self.operation_plans = OperationPlans(schema, settings)

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        # Our own GraphiQL page and bundles, not Strawberry's page that loads them from a CDN.
        return graphiql_page(request)

    def encode_json(self, data: object) -> str:
        # orjson: several times faster than json.dumps on a page of models. Text, not bytes: the
        # WebSocket transports send bytes as binary frames, which GraphQL clients refuse.
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        return json_object(super().parse_json(data))

    async def get_context(self, request: web.Request, response: web.StreamResponse) -> Context:
        services = request.app[SERVICES]
        context = Context(
            request=request,
            response=response,
            services=services,
            request_id=request[REQUEST_ID],
            loaders=Loaders(services),
        )
        await authenticate_request(context)
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """The key or token comes in the connection_init payload; refusal closes with 4403."""
        await authenticate_connection(context)
        return None
