"""Serving the app over HTTP, with what aiohttp leaves to the application against slow and too many
clients.

aiohttp closes a connection that waits for a request longer than its keep-alive timeout (a partial
request head included), but once a head has arrived nothing bounds the wait for the body, and nothing
bounds how many connections are open. A few thousand clients that send half a body, or merely
connect, exhaust the process's file descriptors. Here:

- the request head must be complete `header_timeout` seconds after its first byte, and the body
  `body_timeout` seconds after the head; otherwise the connection is closed. Neither clock runs
  while a response is written, so a long SSE answer or stream is never cut, nor after a WebSocket
  upgrade, whose frames are the handler's business;
- a connection with no request in progress is closed after `idle_timeout` (aiohttp's keep-alive
  timeout, which also covers a connection that never sends anything);
- beyond `max_connections` open connections a new one is answered 503 and closed at once.

`serve` replaces `web.run_app` to put this protocol in place. On SIGINT/SIGTERM the app's
on_shutdown handlers run first, while the listener is still open: a client arriving during the
drain is answered by the app (which refuses new work with a 503) instead of finding the port closed.
Then aiohttp's cleanup runs as `web.run_app` would: the listener closes, handlers still running get
`shutdown_timeout` seconds, the app's cleanup contexts end, and remaining tasks are cancelled.

The server runs on uvloop's event loop: the loop's own work (scheduling, socket reads and writes)
is a large share of a small request's or a streamed chunk's cost, and uvloop does it in C (server
CPU per `generate` about 0.8x, per chunk over graphql-transport-ws about 0.75x of asyncio's).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import uvloop
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from app.metrics import CLIENT_CONNECTIONS_CLOSED, OPEN_CLIENT_CONNECTIONS, labelled

log = logging.getLogger("modelgate.serving")
_BACKLOG = 2048

# Seconds handlers still running once the drain is over get before aiohttp cancels them.
SHUTDOWN_TIMEOUT = 0.25
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 25\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n\r\n"
    b"too many open connections"
)


@dataclass(frozen=True, slots=True)
class ClientLimits:
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    max_connections: int


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with deadlines for the request head and body and the cap."""

    __slots__ = ("_admitted", "_body", "_deadline", "_server")

    def __init__(self, server: _GuardedServer, **kwargs: Any) -> None:
        super().__init__(server, keepalive_timeout=server.limits.idle_timeout, **kwargs)
        self._server = server
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the newest request's body while it arrives

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._server.open_connections >= self._server.limits.max_connections:
            # A stream transport (uvloop's are not asyncio.Transport subclasses: no isinstance).
            stream = cast(asyncio.Transport, transport)
            stream.write(_BUSY)
            stream.close()
            labelled(CLIENT_CONNECTIONS_CLOSED, "over_capacity").inc()
            return
        self._admitted = True
        self._server.open_connections += 1
        OPEN_CLIENT_CONNECTIONS.inc()
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:  # refused in connection_made: aiohttp never knew of it
            return
        self._admitted = False
        self._server.open_connections -= 1
        OPEN_CLIENT_CONNECTIONS.dec()
        self._set_deadline(None, "")
        self._body = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        limits = self._server.limits
        arriving = self._body  # a body still arriving before this data
        heads = self._request_count
        super().data_received(data)
        if self._payload_parser is not None:
            self._set_deadline(None, "")  # a WebSocket: the handler reads its frames
        elif self._request_count != heads:  # a head is complete; its body may follow
            _, payload = self._messages[-1]
            self._body = None if payload.is_eof() else payload
            self._set_deadline(None if self._body is None else limits.body_timeout, "body_timeout")
        elif arriving is not None:
            if arriving.is_eof():
                self._body = None
                self._set_deadline(None, "")
        elif data and self._deadline is None:  # the first bytes of a head
            self._set_deadline(limits.header_timeout, "header_timeout")

    def _set_deadline(self, seconds: float | None, reason: str) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if seconds is not None:
            self._deadline = self._loop.call_later(seconds, self._expire, reason)

    def _expire(self, reason: str) -> None:
        self._deadline = None
        if self._payload_parser is not None:
            return  # upgraded to a WebSocket meanwhile
        labelled(CLIENT_CONNECTIONS_CLOSED, reason).inc()
        self.force_close()


class _GuardedServer(web.Server):
    """aiohttp's server, making GuardedRequestHandler connections and counting them."""

    def __init__(self, plain: web.Server, limits: ClientLimits, handler_kwargs: dict[str, Any]) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **handler_kwargs,
        )
        self.limits = limits
        self.open_connections = 0
        self._handler_kwargs = handler_kwargs

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose connections are GuardedRequestHandlers, and whose app shuts down once
    (before the listener closes when `_serve` asks it to; aiohttp's cleanup asks again after)."""

    def __init__(self, app: web.Application, limits: ClientLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._shut_down = False

    async def shutdown(self) -> None:
        if not self._shut_down:
            self._shut_down = True
            await super().shutdown()

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app, as aiohttp's runner does
        # What aiohttp's runner passes on to each connection; the server itself takes the rest.
        handler_kwargs = {k: v for k, v in self._kwargs.items() if k != "handler_cancellation"}
        return _GuardedServer(plain, self._limits, handler_kwargs)


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    limits: ClientLimits,
    shutdown_timeout: float,
    reuse_port: bool,
    on_listening: Callable[[], object],
) -> None:
    _warn_about_descriptors(limits)
    # handler_cancellation: a client that goes away ends its handler at once, so an abandoned SSE
    # stream closes its upstream request (and is metered as cancelled) instead of running on.
    runner = GuardedAppRunner(app, limits, shutdown_timeout=shutdown_timeout, handler_cancellation=True)
    await runner.setup()
    try:
        # A burst of clients connecting at once queues here instead of having its SYNs dropped
        # (aiohttp's default is 128; gunicorn's and uvicorn's 2048; Linux caps it at somaxconn).
        await web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=_BACKLOG).start()
        on_listening()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.shutdown()  # the drain, still listening
    finally:
        await runner.cleanup()


def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    limits: ClientLimits,
    shutdown_timeout: float,
    reuse_port: bool = False,
    on_listening: Callable[[], object] = lambda: None,
) -> None:
    """Serves `app` until SIGINT or SIGTERM, then shuts it down (see the module docstring). Several
    workers share a port with `reuse_port` (app/workers.py); `on_listening` runs once it listens."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(app, host, port, limits, shutdown_timeout, reuse_port, on_listening))


def _warn_about_descriptors(limits: ClientLimits) -> None:
    """Client connections share the process's file descriptors with upstream and database ones."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and limits.max_connections > soft // 2:
        log.warning(
            "MODELGATE_MAX_CLIENT_CONNECTIONS (%d) is more than half the open-file limit (%d): "
            "raise the limit (ulimit -n) or lower the cap",
            limits.max_connections,
            soft,
        )
