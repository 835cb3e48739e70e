"""Strawberry's WebSocket protocol handlers, changed where they left clients stranded:

- every operation on a socket runs with its own context (`Context.for_operation`): its own
  `requestId` in payloads, errors and logs, as over HTTP, instead of the socket's;
- the legacy `graphql-ws` protocol (subscriptions-transport-ws) runs queries and mutations too, as
  its protocol allows (one `data` message, then `complete`); Strawberry ran subscriptions only;
- a refused legacy socket closes with 4403 after its `connection_error`, as graphql-transport-ws
  does, instead of 1011 (which says the server failed);
- every error they send carries a code and the request id, and a malformed client message is
  refused as its protocol says (`app.api.transport_errors`) instead of ending the handler;
- a persisted query (`extensions.persistedQuery`, `app.api.persisted_queries`) runs by its hash,
  which Strawberry's handlers would ignore: an unknown hash gets an `error` message
  `PersistedQueryNotFound`, and the client sends the text;
- while the server shuts down, a new operation is answered with an `error` message
  (SERVICE_UNAVAILABLE) instead of starting, and the socket is closed with 1001 once its running
  operations have sent their last messages (`close_for_shutdown`, from `app.shutdown`);
- a subscription event completed by its plan (`app.api.planned_streams`) is sent as the frame made
  from its serialized payload, written as it is: no message dict to build and encode again; the
  frames ready in one loop turn are written together (`app.api.socket_frames`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from typing import Any, cast

import orjson
from aiohttp import ClientConnectionResetError, WSMsgType, web
from graphql import GraphQLFormattedError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message, SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    OperationMessage,
    StartMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage as LegacyErrorMessage
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from app.api.context import Context
from app.api.errors import ErrorCode
from app.api.persisted_queries import PersistedQueries, PersistedQueryRefused
from app.api.planned_streams import PlannedResult
from app.api.socket_frames import coalesce_writes
from app.api.transport_errors import malformed, with_codes
from app.server_keys import WEBSOCKETS
from app.services.drain_clock import SHUTTING_DOWN

FORBIDDEN = 4403
GOING_AWAY = 1001
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


def shutting_down() -> GraphQLFormattedError:
    extensions = {"code": ErrorCode.SERVICE_UNAVAILABLE.value, "requestId": uuid.uuid4().hex}
    return {"message": SHUTTING_DOWN, "extensions": extensions}


def with_persisted_query(view: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """A subscribe (or start) payload with the text of its persisted query, if it asks for one."""
    extensions = payload.get("extensions")
    if not extensions:
        return payload
    persisted_queries: PersistedQueries = view.persisted_queries
    return {**payload, "query": persisted_queries.resolve(payload.get("query"), extensions)}


def _aiohttp_socket(adapter: Any) -> web.WebSocketResponse:
    """The aiohttp socket behind Strawberry's socket adapter."""
    ws: web.WebSocketResponse = adapter.ws
    return ws


async def send_text(websocket: Any, frame: bytes) -> None:
    """A text frame of JSON already encoded, on Strawberry's aiohttp socket adapter (which says a
    socket that went away as its `send_json` does)."""
    try:
        await _aiohttp_socket(websocket).send_frame(frame, WSMsgType.TEXT)
    except (RuntimeError, ClientConnectionResetError) as exc:
        raise WebSocketDisconnected from exc


def _next_frame(operation_id: str, payload: bytes) -> bytes:
    """graphql-transport-ws's `next` message (as Strawberry's dict would be encoded)."""
    return b'{"id":%b,"type":"next","payload":%b}' % (orjson.dumps(operation_id), payload)


def _data_frame(operation_id: str, payload: bytes) -> bytes:
    """Legacy graphql-ws's `data` message."""
    return b'{"type":"data","id":%b,"payload":%b}' % (orjson.dumps(operation_id), payload)


async def _close_when_done(
    handler: TransportWSHandler | LegacyWSHandler, running: Collection[asyncio.Task[Any]]
) -> None:
    if running:
        await asyncio.wait(running)
    await handler.websocket.close(code=GOING_AWAY, reason="server shutdown")


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, OperationScopedSchema(self.schema))
        self.context.request.app[WEBSOCKETS].add(self)
        coalesce_writes(_aiohttp_socket(self.websocket))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and self.context.services.drain.draining:
            await self.send_message({"id": message["id"], "type": "error", "payload": [shutting_down()]})
            return
        try:
            payload = with_persisted_query(self.view, dict(message["payload"]))
        except PersistedQueryRefused as refused:
            error = {"id": message["id"], "type": "error", "payload": [refused.formatted()]}
            await self.send_message(cast(Message, error))
            return
        await super().handle_subscribe(cast(SubscribeMessage, {**message, "payload": payload}))

    async def _send_result_stream(self, operation: Operation[Context, None], result_source: Any) -> None:
        """Strawberry's, but a planned result goes out as its frame."""
        first = True
        async for result in result_source:
            if isinstance(result, PlannedResult):
                if not operation.completed:
                    await send_text(self.websocket, _next_frame(operation.id, result.payload))
            elif first and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            elif isinstance(result, ExecutionResult):
                await operation.send_next(result)
            else:  # incremental delivery, which graphql-transport-ws cannot carry
                await self._reject_incremental_delivery(operation)
                return
            first = False

    async def close_for_shutdown(self) -> None:
        running = [op.task for op in self.operations.values() if op.task is not None and not op.task.done()]
        await _close_when_done(self, running)

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
        self.context.request.app[WEBSOCKETS].add(self)
        coalesce_writes(_aiohttp_socket(self.websocket))

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and self.context.services.drain.draining:
            await self.send_message(
                LegacyErrorMessage(type="error", id=message["id"], payload=shutting_down())
            )
            return
        try:
            payload = with_persisted_query(self.view, dict(message["payload"]))
        except PersistedQueryRefused as refused:
            error = {"type": "error", "id": message["id"], "payload": refused.formatted()}
            await self.send_message(cast(OperationMessage, error))
            return
        await super().handle_start(cast(StartMessage, {**message, "payload": payload}))

    async def close_for_shutdown(self) -> None:
        await _close_when_done(self, [task for task in self.tasks.values() if not task.done()])

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

    async def send_data_message(self, execution_result: ExecutionResult, operation_id: str) -> None:
        if isinstance(execution_result, PlannedResult):
            await send_text(self.websocket, _data_frame(operation_id, execution_result.payload))
        else:
            await super().send_data_message(execution_result, operation_id)

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
