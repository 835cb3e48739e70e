"""The aiohttp application: lifecycle of the pool and services, routes and middlewares."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.errors import ErrorCode
from app.api.http_errors import error_response
from app.api.schema import build_schema
from app.api.view import ModelgateView
from app.config import Settings
from app.db import Database, DatabaseUnavailable
from app.metrics import HTTP_LATENCY, HTTP_REQUESTS, exposition, labelled
from app.migrations import pending_migrations
from app.rest.routes import add_routes as add_rest_routes
from app.server_keys import CALLER, OPERATION_NAME, REQUEST_ID, SERVICES, SETTINGS, WEBSOCKETS
from app.services.container import Services
from app.shutdown import drain, refuse_while_draining
from app.web.routes import add_routes as add_web_routes

access_log = logging.getLogger("modelgate.access")
log = logging.getLogger("modelgate.server")

# How long /readyz waits for the database before answering 503.
READY_WITHIN = 1.5
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that went away before its answer was complete
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, body size limit, masking of unexpected failures, access log and metrics. A
    client that goes away is an ordinary outcome (499), not a server fault."""
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if _CLIENT_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    started = time.perf_counter()
    limit = request.app[SETTINGS].max_body_bytes
    response: web.StreamResponse
    try:
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        response = error_response(
            request, 413, ErrorCode.BAD_USER_INPUT, f"the request body is larger than {limit} bytes"
        )
    except web.HTTPException as exc:  # aiohttp's own answers (404, 405, …): passed on as raised
        _account(request, exc.status, started)
        raise
    except DatabaseUnavailable:
        response = error_response(
            request, 503, ErrorCode.SERVICE_UNAVAILABLE, "the service is temporarily unavailable"
        )
    except asyncio.CancelledError:
        if _client_left(request):  # aiohttp cancels the handler of a client that went away
            _account(request, CLIENT_CLOSED_REQUEST, started)
        raise
    except Exception as exc:
        if isinstance(exc, ConnectionError) and _client_left(request):  # it left as we wrote
            response = web.Response(status=CLIENT_CLOSED_REQUEST)
        else:
            log.exception("unhandled error", extra={"requestId": request[REQUEST_ID]})
            response = error_response(request, 500, ErrorCode.INTERNAL_SERVER_ERROR, "Unexpected error.")
    # An answer the client did not wait for is a 499 (a WebSocket's end is its own).
    left = not isinstance(response, web.WebSocketResponse) and _client_left(request)
    _account(request, CLIENT_CLOSED_REQUEST if left else response.status, started)
    return response


def _client_left(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _account(request: web.Request, status: int, started: float) -> None:
    """The access log line and the request metrics."""
    elapsed = time.perf_counter() - started
    resource = request.match_info.route.resource
    route = resource.canonical if resource else "unmatched"
    labelled(HTTP_REQUESTS, route, str(status)).inc()
    labelled(HTTP_LATENCY, route).observe(elapsed)
    access_log.info(
        "request",
        extra={
            "requestId": request[REQUEST_ID],
            "method": request.method,
            "path": request.path,
            "operation": request.get(OPERATION_NAME),
            "caller": request.get(CALLER),
            "status": status,
            "durationMs": round(elapsed * 1000, 2),
        },
    )


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Runs as headers are sent, so streamed and WebSocket responses carry the id too."""
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if services.drain.draining:
        return web.json_response({"status": "unavailable", "shuttingDown": True}, status=503)
    try:
        # Probes have short timeouts of their own: a database that does not answer at once is
        # reported as not ready, whatever the query timeout.
        async with asyncio.timeout(READY_WITHIN):
            pending = await pending_migrations(services.db)
    except (DatabaseUnavailable, TimeoutError):
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    if pending:
        return web.json_response({"status": "unavailable", "pendingMigrations": pending}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(_request: web.Request) -> web.Response:
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url")
    dsn = settings.database_url
    app = web.Application(
        middlewares=[observe, refuse_while_draining], client_max_size=settings.max_body_bytes
    )
    app[SETTINGS] = settings
    app[WEBSOCKETS] = weakref.WeakSet()

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        db = await Database.connect(
            dsn,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            acquire_timeout=settings.db_acquire_timeout,
            query_timeout=settings.db_query_timeout,
        )
        services = Services(settings, db, dsn)
        await services.start()
        app[SERVICES] = services
        # Everything made so far (schema, caches, pools) lives as long as the process: keep the
        # collector from rescanning it, which otherwise shows as pauses in tail latency.
        gc.collect()
        gc.freeze()
        yield
        await services.stop()
        await db.close()

    app.cleanup_ctx.append(services_ctx)
    view = ModelgateView(build_schema(settings), settings)
    app.on_shutdown.append(drain)  # SIGTERM: app/shutdown.py
    app.on_shutdown.append(view.event_streams.close)  # after the drain: their last events go out
    app.on_response_prepare.append(_add_request_id)
    app.router.add_route("*", "/graphql", view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    add_rest_routes(app)  # the OpenAI-compatible API under /v1
    add_web_routes(app, settings)  # the chat page at / and its static files
    return app
