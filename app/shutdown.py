"""The web side of shutting down (SIGTERM), around the services' drain clock
(`app/services/drain_clock.py`). `app.serving` runs the app's on_shutdown while the listener is
still open, so that a client is answered rather than refused while the process is there:

1. `drain` begins the clock: `/readyz` answers 503, `refuse_while_draining` answers every new
   request 503 SERVICE_UNAVAILABLE in its API's shape (a GraphQL error, or OpenAI's envelope under
   /v1), and the WebSocket handlers answer new operations on open sockets with an error message.
2. Running calls go on until nothing runs or the grace ends; then the clock cuts what still runs,
   and each transport ends its stream with its own terminal error.
3. Every GraphQL WebSocket is closed (1001) once its operations have sent their last messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.api.errors import ErrorCode
from app.api.http_errors import error_response
from app.rest.errors import RestError
from app.server_keys import SERVICES, WEBSOCKETS
from app.services.drain_clock import SHUTTING_DOWN

# Answered as usual while draining: liveness, readiness (its own 503) and metrics.
_ALWAYS_ANSWERED = frozenset({"/healthz", "/readyz", "/metrics"})
# How long sockets get to send their last messages and close, after the drain.
_SOCKETS_CLOSE_WITHIN = 0.5
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[SERVICES].drain.draining or request.path in _ALWAYS_ANSWERED:
        return await handler(request)
    if request.path == "/v1" or request.path.startswith("/v1/"):
        return RestError(
            503, SHUTTING_DOWN, type="server_error", code="service_unavailable", retry_after=1
        ).response()
    return error_response(request, 503, ErrorCode.SERVICE_UNAVAILABLE, SHUTTING_DOWN, {"Retry-After": "1"})


async def drain(app: web.Application) -> None:
    """on_shutdown: the drain, then the sockets."""
    await app[SERVICES].drain.drain()
    sockets = app[WEBSOCKETS]
    closing = [asyncio.create_task(socket.close_for_shutdown()) for socket in list(sockets)]
    if not closing:
        return
    _, late = await asyncio.wait(closing, timeout=_SOCKETS_CLOSE_WITHIN)
    for task in late:  # a client that does not answer the close: aiohttp's shutdown ends it
        task.cancel()
