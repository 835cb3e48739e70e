"""GraphQL over Server-Sent Events (graphql-sse's PROTOCOL.md) beyond what Strawberry serves.

Distinct connections mode (a POST with `Accept: text/event-stream` per operation) is Strawberry's,
with `LineFeedSSETransport`'s framing (written by `EventStreamResponses`). Single connection mode
is served here (a planned result's payload, serialized once, goes into its event as it is):

- `PUT /graphql` with credentials reserves a stream: 201 and a token (text/plain);
- `GET /graphql` with the token (`X-GraphQL-Event-Stream-Token` header, or `?token=` for
  EventSource, which cannot send headers) opens the stream; the token is the entrance ticket, and
  one stream at a time may use it (409);
- `POST /graphql` with the token and `extensions.operationId` runs an operation under the POST's own
  credentials, which must be the reservation's caller, and answers 202; its results arrive on the
  stream as `next` events `{"id", "payload"}` and then `complete` `{"id"}`. A request without an
  operation id or with one in use is refused on the POST; an operation that does not parse or
  validate reports its errors on the stream, as in distinct connections mode;
- `DELETE /graphql?operationId=…` with the token stops an operation (200).

A reservation lives on the instance that made it (several instances need sticky sessions for this
mode); it ends with its stream, and expires when no stream opens within RESERVATION_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import ClientConnectionResetError, web
from cross_web import HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from app.api.context import Context
from app.api.errors import ErrorCode
from app.api.http_errors import error_response
from app.api.planned_streams import PlannedResult
from app.api.stream_transports import LineFeedSSETransport
from app.db import DatabaseUnavailable

log = logging.getLogger("modelgate.graphql")

TOKEN_HEADER = "X-GraphQL-Event-Stream-Token"  # noqa: S105 (a header name)
RESERVATION_TIMEOUT = 30.0
CLOSE_WITHIN = 0.5
DISCONNECT_CHECK = 1.0
MAX_RESERVATIONS_PER_CALLER = 16
# Events wait here for a stream that is slow or not open yet; a full queue holds its operations back.
QUEUE_SIZE = 256
NO_SUCH_STREAM = "No such event stream: reserve one with PUT /graphql."


class _Refused(Exception):
    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


Owner = tuple[str, str]


@dataclass(eq=False)
class Reservation:
    token: str
    owner: Owner
    events: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    operations: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    connected: bool = False
    expiry: asyncio.TimerHandle | None = None


class EventStreams:
    def __init__(self, view: GraphQLView[Context, None]) -> None:
        self.view = view
        self.transport = LineFeedSSETransport()
        self.reservations: dict[str, Reservation] = {}

    @staticmethod
    def token(request: web.Request) -> str | None:
        return request.headers.get(TOKEN_HEADER) or request.query.get("token")

    def handles(self, request: web.Request) -> bool:
        return request.method in ("PUT", "DELETE") or (
            request.method in ("GET", "POST") and self.token(request) is not None
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.method == "PUT":
                return await self.reserve(request)
            reservation = self.reservations.get(self.token(request) or "")
            if reservation is None:
                raise _Refused(404, ErrorCode.BAD_USER_INPUT, NO_SUCH_STREAM)
            if request.method == "GET":
                return await self.connect(request, reservation)
            context = await self._authenticated(request)
            if _owner(context) != reservation.owner:
                raise _Refused(404, ErrorCode.BAD_USER_INPUT, NO_SUCH_STREAM)
            if request.method == "POST":
                return await self.execute(request, reservation, context)
            return self.stop(request, reservation)
        except _Refused as refused:
            return error_response(request, refused.status, refused.code, str(refused))
        except HTTPException as exc:  # Strawberry's, while parsing the body
            return error_response(request, exc.status_code, ErrorCode.BAD_USER_INPUT, exc.reason)

    async def reserve(self, request: web.Request) -> web.Response:
        owner = _owner(await self._authenticated(request))
        if sum(r.owner == owner for r in self.reservations.values()) >= MAX_RESERVATIONS_PER_CALLER:
            raise _Refused(429, ErrorCode.RATE_LIMITED, "Too many event streams reserved; close one first.")
        reservation = Reservation(secrets.token_urlsafe(32), owner)
        reservation.expiry = asyncio.get_running_loop().call_later(
            RESERVATION_TIMEOUT, self._expire, reservation
        )
        self.reservations[reservation.token] = reservation
        return web.Response(status=201, text=reservation.token, content_type="text/plain")

    async def connect(self, request: web.Request, reservation: Reservation) -> web.StreamResponse:
        if reservation.connected:
            raise _Refused(409, ErrorCode.BAD_USER_INPUT, "This event stream is open already.")
        reservation.connected = True
        if reservation.expiry is not None:
            reservation.expiry.cancel()
        response = web.StreamResponse(headers=self.transport.headers)
        try:
            await response.prepare(request)
            async for event in self._events(request, reservation):
                await response.write(event)
            if request.transport is not None:
                await response.write_eof()
        except (ConnectionResetError, ClientConnectionResetError):
            pass  # the client went away: its operations stop below
        finally:
            self._drop(reservation)
        return response

    async def _events(self, request: web.Request, reservation: Reservation) -> AsyncIterator[bytes]:
        """The reservation's events as they come, a heartbeat comment when none came for a while,
        until the stream is closed or the client has gone (noticed within DISCONNECT_CHECK)."""
        heartbeat = self.transport.heartbeat_message(self.view.encode_json_string).encode()
        quiet = 0.0
        while True:
            try:
                event = await asyncio.wait_for(reservation.events.get(), DISCONNECT_CHECK)
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                quiet += DISCONNECT_CHECK
                if quiet < self.transport.heartbeat_interval:
                    continue
                event = heartbeat
            if event is None:
                return
            quiet = 0.0
            yield event

    async def execute(self, request: web.Request, reservation: Reservation, context: Context) -> web.Response:
        data = await self.view.parse_http_body(self.view.request_adapter_class(request))
        assert not isinstance(data, list)  # batches are refused while parsing: batching is off
        operation_id = (data.extensions or {}).get("operationId")
        if not isinstance(operation_id, str) or not operation_id:
            raise _Refused(400, ErrorCode.BAD_USER_INPUT, "The operation needs `extensions.operationId`.")
        if operation_id in reservation.operations:
            raise _Refused(409, ErrorCode.BAD_USER_INPUT, f"Operation {operation_id!r} is running already.")
        limit = self.view.max_subscriptions_per_connection
        if limit is not None and len(reservation.operations) >= limit:
            raise _Refused(429, ErrorCode.RATE_LIMITED, f"At most {limit} operations run on one stream.")
        results = await self.view.schema.stream(
            data.query,
            variable_values=data.variables,
            context_value=context,
            operation_name=data.operation_name,
            operation_extensions=data.extensions,
            allowed_operation_types=OperationType.from_http("POST"),
        )
        task = asyncio.create_task(self._forward(request, reservation, operation_id, results))
        reservation.operations[operation_id] = task
        task.add_done_callback(lambda done: _forget(reservation, operation_id, done))
        return web.Response(status=202)

    async def _forward(
        self, request: web.Request, reservation: Reservation, operation_id: str, results: Any
    ) -> None:
        try:
            async with aclosing(results):
                async for result in results:
                    if isinstance(result, PlannedResult):  # its payload serialized already
                        message = b'{"id":%b,"payload":%b}' % (orjson.dumps(operation_id), result.payload)
                        await reservation.events.put(self.transport.encode_planned_next(message))
                        continue
                    payload = await self.view.process_result(request, result)
                    next_event = self._event("next", {"id": operation_id, "payload": payload})
                    await reservation.events.put(next_event)
        except Exception:
            log.exception("event stream operation failed", extra={"operationId": operation_id})
        await reservation.events.put(self._event("complete", {"id": operation_id}))

    def stop(self, request: web.Request, reservation: Reservation) -> web.Response:
        operation_id = request.query.get("operationId")
        if not operation_id:
            raise _Refused(400, ErrorCode.BAD_USER_INPUT, "Which operation? Send `?operationId=`.")
        task = reservation.operations.pop(operation_id, None)
        if task is not None:
            task.cancel()
        return web.Response(status=200)

    async def close(self, _app: web.Application | None = None) -> None:
        """On shutdown, after the drain: open streams end once their events are written (all at
        once, within CLOSE_WITHIN: a client that does not read is not waited for)."""
        ends = []
        for reservation in list(self.reservations.values()):
            if reservation.connected:
                ends.append(asyncio.wait_for(reservation.events.put(None), CLOSE_WITHIN))
            else:
                self._drop(reservation)
        await asyncio.gather(*ends, return_exceptions=True)  # TimeoutError: that client is left behind

    def _event(self, name: str, data: dict[str, Any]) -> bytes:
        return self.transport.encode_event(name, self.view.encode_json_string(data)).encode()

    async def _authenticated(self, request: web.Request) -> Context:
        context = await self.view.get_context(request, web.Response())
        if isinstance(context.auth_error, DatabaseUnavailable):
            raise context.auth_error  # the middleware's 503
        if context.auth_error is not None or context.principal is None:
            raise _Refused(401, ErrorCode.UNAUTHENTICATED, "authentication required")
        return context

    def _expire(self, reservation: Reservation) -> None:
        if not reservation.connected:
            self._drop(reservation)

    def _drop(self, reservation: Reservation) -> None:
        self.reservations.pop(reservation.token, None)
        for task in list(reservation.operations.values()):
            task.cancel()


def _forget(reservation: Reservation, operation_id: str, task: asyncio.Task[None]) -> None:
    if reservation.operations.get(operation_id) is task:  # not a later operation reusing the id
        del reservation.operations[operation_id]


def _owner(context: Context) -> Owner:
    assert context.principal is not None
    return (context.principal.kind.value, context.principal.label)
