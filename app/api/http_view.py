"""GraphQL over HTTP as the spec says, on top of Strawberry's aiohttp view.

Strawberry answers every single response as `application/json` with status 200, serves SSE to any
Accept header that mentions `text/event-stream`, and runs a subscription sent to a JSON request as
if it were a query (a 500). Here instead (see `app.api.media_types` for the negotiation):

- a query or mutation is answered as GraphQL over SSE only when the client prefers that, else as
  `application/graphql-response+json` or `application/json`, whichever it prefers;
- under `application/graphql-response+json` a request that was never executed (it did not parse,
  validate or coerce its variables) is a 400 without `data`; `application/json` keeps 200;
- a subscription is streamed over whichever stream type the client accepts (SSE, or Apollo's
  multipart subscriptions), or refused with 406 when it accepts none;
- Strawberry's plain-text refusals (bad JSON, no query, GET mutations, …) become GraphQL errors
  with `extensions.code` and `extensions.requestId`, under the same media type rules;
- HEAD is answered with the headers a GET would get, without executing anything;
- PUT, DELETE and requests carrying a stream token are graphql-sse's single connection mode
  (`app.api.event_streams`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from aiohttp import web
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, GraphQLRequestProtocol
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from app.api.context import Context
from app.api.errors import ErrorCode
from app.api.event_streams import EventStreams
from app.api.http_errors import error_response
from app.api.media_types import Media, prefers_event_stream, response_type, subscription_stream
from app.api.operation_plans import OperationPlans
from app.api.persisted_queries import PersistedQueries, PersistedQueryRefused
from app.api.stream_transports import EventStreamResponses, LineFeedSSETransport, MultipartSubscriptions

ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE"  # PUT and DELETE: graphql-sse's single connection mode
NO_STREAM_ACCEPTED = (
    "A subscription over HTTP needs `Accept: text/event-stream` (GraphQL over SSE) or "
    '`Accept: multipart/mixed;subscriptionSpec="1.0"` (multipart subscriptions); '
    "or subscribe over a WebSocket (graphql-transport-ws) at /graphql."
)
_STREAM_PROTOCOLS: dict[Media, GraphQLRequestProtocol] = {
    Media.EVENT_STREAM: "sse",
    Media.MULTIPART_SUBSCRIPTION: "multipart-subscription",
}
# Apollo Server's: the answer to an unknown hash must not be cached, the client sends the text next.
_NOT_CACHED = {"Cache-Control": "private, no-cache, must-revalidate"}
# Server faults among errors raised before execution keep their own status.
_SERVER_FAULTS = {ErrorCode.INTERNAL_SERVER_ERROR.value: 500, ErrorCode.SERVICE_UNAVAILABLE.value: 503}


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """How a single (non-streamed) result is answered."""

    media: Media
    status: int = 200

    def body(self, response: GraphQLHTTPResponse) -> object:
        if self.media is Media.GRAPHQL_RESPONSE_JSON and self.status >= 400:
            return {key: value for key, value in response.items() if key != "data"}  # never executed
        return response


JSON_ANSWER = web.ResponseKey("graphql_json_answer", JsonAnswer)


def not_executed_status(result: ExecutionResult) -> int | None:
    """The status of a request that was never executed (parse, validation or variable coercion
    failed); None when execution ran, whatever its errors. Field errors always carry a path."""
    if result.data is not None or not result.errors:
        return None
    if not isinstance(result, PreExecutionError) and any(e.path is not None for e in result.errors):
        return None
    codes = [(e.extensions or {}).get("code") for e in result.errors]
    return max((_SERVER_FAULTS.get(str(code), 400) for code in codes), default=400)


class GraphQLHTTPView(EventStreamResponses):  # GraphQLView, SSE responses written as results come
    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]] = {
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptions,
        GRAPHQL_SSE_PROTOCOL: LineFeedSSETransport,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.event_streams = EventStreams(self)  # graphql-sse's single connection mode
        self.persisted_queries = PersistedQueries()
        self.operation_plans: OperationPlans | None = None  # mutations by plan (operation_plans.py)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.method == "HEAD":
            return self.head(request)
        try:
            if self.event_streams.handles(request):
                return await self.event_streams.handle(request)
            if request.method == "POST" and (planned := await self.run_planned(request)) is not None:
                return planned
            return await self.run(request=request)
        except PersistedQueryRefused as refused:
            headers = _NOT_CACHED if refused.code is ErrorCode.PERSISTED_QUERY_NOT_FOUND else None
            return error_response(request, refused.status, refused.code, str(refused), headers)
        except HTTPException as exc:
            headers = {"Allow": ALLOWED_METHODS} if exc.status_code == 405 else None
            return error_response(request, exc.status_code, ErrorCode.BAD_USER_INPUT, exc.reason, headers)

    async def run_planned(self, request: web.Request) -> web.Response | None:
        """A JSON POST of a mutation that has a plan, answered as `run` would answer it; None
        (before anything ran) for every other request, which `run` then answers."""
        accept = request.headers.get("Accept")
        if self.operation_plans is None or request.content_type != "application/json":
            return None
        if prefers_event_stream(accept):
            return None
        try:
            data = self.decode_json(await request.read())
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        query, extensions = data.get("query"), data.get("extensions")
        if extensions is not None:
            if not isinstance(extensions, dict):
                return None
            query = self.persisted_queries.resolve(query, extensions)
        if not isinstance(query, str):
            return None
        planned = self.operation_plans.executor(
            query, data.get("variables"), data.get("operationName"), extensions
        )
        if planned is None:
            return None
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, sub_response)
        result = await self.operation_plans.execute(*planned, context)
        sub_response[JSON_ANSWER] = JsonAnswer(response_type(accept))  # executed: 200 whatever its errors
        return self.create_response(await self.process_result(request, result), sub_response)

    def is_websocket_request(self, request: web.Request) -> TypeGuard[web.Request]:
        # Strawberry builds a WebSocketResponse to ask, twice per request: without `Upgrade:
        # websocket` a request is not a handshake, whatever else it says.
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return False
        return super().is_websocket_request(request)

    def head(self, request: web.Request) -> web.Response:
        """The headers of the GET, executing nothing: GraphiQL's page to a browser (404 when it is
        off), else those of the JSON a query would get."""
        if self.should_render_graphql_ide(_AsGet(request)):
            if self.graphql_ide:
                return web.Response(content_type="text/html", charset="utf-8")
            return error_response(request, 404, ErrorCode.BAD_USER_INPUT, "Not Found")
        return web.Response(content_type=response_type(request.headers.get("Accept")).value, charset="utf-8")

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The request, with the text of a persisted query filled in (`app.api.persisted_queries`)."""
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and data.extensions:
            data.query = self.persisted_queries.resolve(data.query, data.extensions)
        return data

    def _get_stream_transport_from_headers(self, headers: Mapping[str, str]) -> HTTPStreamTransport | None:
        """SSE for every operation only when the client prefers it; a subscription finds its stream
        in `execute_operation` otherwise."""
        accept = next((value for key, value in headers.items() if key.lower() == "accept"), None)
        return self._get_stream_transport("sse") if prefers_event_stream(accept) else None

    async def execute_operation(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: web.Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if isinstance(request_data, list) or request_data.protocol != "http":
            # Batches are refused while parsing (batching is off); SSE streams every operation.
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        method = request_adapter.method
        allowed = OperationType.from_http(method)
        accept = request.headers.get("Accept")
        try:
            result = await self._execute(request_data, context, allowed - {OperationType.SUBSCRIPTION})
        except InvalidOperationTypeError as error:
            if error.operation_type is not OperationType.SUBSCRIPTION:
                status = 405 if method == "GET" else 400
                raise HTTPException(status, error.as_http_error_reason(method)) from error
            stream = subscription_stream(accept)
            if stream is None:
                raise HTTPException(406, NO_STREAM_ACCEPTED) from error
            request_data.protocol = _STREAM_PROTOCOLS[stream]  # run() streams it with that transport
            results = await self.schema.stream(
                request_data.query,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                operation_extensions=request_data.extensions,
                allowed_operation_types=(OperationType.SUBSCRIPTION,),
            )
            return cast(SubscriptionExecutionResult, results)
        media = response_type(accept)
        refused = not_executed_status(result) if media is Media.GRAPHQL_RESPONSE_JSON else None
        sub_response[JSON_ANSWER] = JsonAnswer(media, refused or 200)
        return result

    async def _execute(
        self, request_data: GraphQLRequestData, context: Context, allowed: set[OperationType]
    ) -> ExecutionResult:
        try:
            return await self.schema.execute(
                request_data.query,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: web.Response
    ) -> web.Response:
        answer = sub_response.get(JSON_ANSWER, JsonAnswer(Media.JSON))
        body = response_data if isinstance(response_data, list) else answer.body(response_data)
        sub_response.set_status(answer.status)
        encoded = self.encode_json(body)
        # The body and header set as they are: aiohttp's `text` and `content_type` setters parse
        # the Content-Type header back three times, on every response.
        sub_response.body = encoded.encode() if isinstance(encoded, str) else encoded
        sub_response.headers["Content-Type"] = f"{answer.media.value}; charset=utf-8"
        return sub_response


class _AsGet:
    """A HEAD request seen as the GET it stands for, to ask Strawberry whether GraphiQL would render."""

    method: HTTPMethod = "GET"

    def __init__(self, request: web.Request) -> None:
        self.headers: Mapping[str, str] = request.headers
        self.query_params: Mapping[str, Any] = request.query
