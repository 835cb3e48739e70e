"""Strawberry's WebSocket protocol handlers, changed where they left clients stranded:

- every operation on a socket runs with its own context (`Context.for_operation`): its own
  `requestId` in payloads, errors and logs, as over HTTP, instead of the socket's;
- the legacy `graphql-ws` protocol (subscriptions-transport-ws) runs queries and mutations too, as
  its protocol allows (one `data` message, then `complete`); Strawberry ran subscriptions only;
- a refused legacy socket closes with 4403 after its `connection_error`, as graphql-transport-ws
  does, instead of 1011 (which says the server failed);
- every error they send carries a code and the request id, and a malformed client message is
  refused as its protocol says (`app.api.transport_errors`) instead of ending the handler.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import ConnectionInitMessage, OperationMessage
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from app.api.context import Context
from app.api.transport_errors import malformed, with_codes

FORBIDDEN = 4403
EVERY_OPERATION = (OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION)


class OperationScopedSchema:
    """The schema as a socket handler sees it: each operation it starts gets its own context."""

    def __init__(self, schema: BaseSchema) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, query: str | None, *, context_value: Context, **options: Any) -> Any:
        return await self._schema.stream(query, context_value=context_value.for_operation(), **options)

    async def subscribe(self, query: str | None, *, context_value: Context, **options: Any) -> Any:
        """The legacy protocol's `start`: any operation (Strawberry's subscribe refuses all but
        subscriptions)."""
        return await self.stream(
            query, context_value=context_value, allowed_operation_types=EVERY_OPERATION, **options
        )


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, OperationScopedSchema(self.schema))

    async def handle_message(self, message: Message) -> None:
        if problem := malformed(message):
            await self.handle_invalid_message(f"Invalid message: {problem}")  # closes with 4400
            return
        await super().handle_message(message)

    async def send_message(self, message: Message) -> None:
        coded = with_codes(message, self.context.request_id, self.max_subscriptions_per_connection)
        await super().send_message(cast(Message, coded))


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, OperationScopedSchema(self.schema))

    async def handle_message(self, message: OperationMessage) -> None:
        if problem := malformed(message):
            operation_id = message.get("id") if isinstance(message, dict) else None
            error = {
                "type": "error",
                "id": operation_id,
                "payload": {"message": f"Invalid message: {problem}"},
            }
            await self.send_message(cast(OperationMessage, error))
            return
        await super().handle_message(message)

    async def send_message(self, message: OperationMessage) -> None:
        coded = with_codes(message, self.context.request_id, self.max_subscriptions_per_connection)
        await super().send_message(cast(OperationMessage, coded))

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Strawberry's, except for the close code of a refused connection."""
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self.send_message({"type": "connection_error"})
            await self.websocket.close(code=1000, reason="")
            return
        self.context.connection_params = payload
        try:
            ack_payload = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as rejection:
            await self.send_message({"type": "connection_error", "payload": rejection.payload})
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        if isinstance(ack_payload, UnsetType) or ack_payload is None:
            await self.send_message({"type": "connection_ack"})
        else:
            await self.send_message({"type": "connection_ack", "payload": ack_payload})
        self.connection_acknowledged = True
        if self.keep_alive:
            self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())
