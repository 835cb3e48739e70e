"""How streamed results are framed: Strawberry's two HTTP stream transports, corrected.

- GraphQL over SSE: Strawberry ends lines with CRLF. The SSE grammar allows it, but some clients'
  parsers (urql's) read LF only, which every parser reads.
- Apollo's multipart subscriptions: every chunk Strawberry writes ends with a delimiter
  (`\\r\\n--graphql`), starting with a heartbeat part; it then closes with a whole delimiter more,
  which leaves an empty part before the end that some multipart readers trip over. The close
  delimiter only needs its `--` after the delimiter already written.
- An SSE response (`EventStreamResponses`) is written by the operation's task itself: Strawberry
  hands each event from a task reading the results to the response's task through a queue, beside
  a heartbeat task, and encodes each result anew; here a planned result (`app.api.planned_streams`)
  is written as its serialized payload, and the heartbeat is a timer that writes a comment.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import ClientConnectionResetError, web
from strawberry.aiohttp.views import GraphQLView
from strawberry.http import GraphQLRequestProtocol
from strawberry.http.streaming import MultipartSubscriptionTransport, SSETransport
from strawberry.types import SubscriptionExecutionResult
from strawberry.utils.aio import aclosing

from app.api.context import Context
from app.api.planned_streams import PlannedResult


class LineFeedSSETransport(SSETransport):
    def encode_event(self, event: str, data: str | None = None) -> str:
        return super().encode_event(event, data).replace("\r\n", "\n")  # data has no line breaks

    def encode_comment(self, comment: str) -> str:
        return super().encode_comment(comment).replace("\r\n", "\n")

    @staticmethod
    def encode_planned_next(data: bytes) -> bytes:
        """A `next` event of JSON already encoded (orjson writes no line breaks)."""
        return b"event: next\ndata: %b\n\n" % data


class MultipartSubscriptions(MultipartSubscriptionTransport):
    def encode_complete(self) -> str:
        return "--\r\n"


class EventStreamResponses(GraphQLView[Context, None]):
    """The view's GraphQL over SSE responses (distinct connections mode), written as results come."""

    async def _create_streaming_response(
        self,
        request: web.Request,
        result: SubscriptionExecutionResult,
        protocol: GraphQLRequestProtocol,
        sub_response: web.Response,
    ) -> web.StreamResponse:
        transport = self._get_stream_transport(protocol)
        if not isinstance(transport, LineFeedSSETransport):
            return await super()._create_streaming_response(request, result, protocol, sub_response)
        response = web.StreamResponse(
            status=sub_response.status, headers={**sub_response.headers, **transport.headers}
        )
        await response.prepare(request)
        heartbeat = asyncio.create_task(_heartbeat(response, transport))
        try:
            pending: list[Any] = []  # incremental delivery's, as Strawberry keeps them
            async with aclosing(result):
                async for value in result:
                    if isinstance(value, PlannedResult):
                        await response.write(transport.encode_planned_next(value.payload))
                        continue
                    processed, pending = await self._process_stream_result(request, value, pending)
                    await response.write(transport.encode_next(processed, self.encode_json_string).encode())
            await response.write(transport.encode_complete().encode())
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await response.write_eof()
        return response


async def _heartbeat(response: web.StreamResponse, transport: LineFeedSSETransport) -> None:
    """A comment every heartbeat interval, as Strawberry's SSE streams send (none at the start)."""
    ping = transport.heartbeat_message(str).encode()
    with contextlib.suppress(ConnectionResetError, ClientConnectionResetError):  # the stream's end says it
        while True:
            await asyncio.sleep(transport.heartbeat_interval)
            await response.write(ping)
