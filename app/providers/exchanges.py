"""One-shot HTTP/1.1 exchanges (one request, one whole response) over pooled keep-alive
connections: the non-streamed provider calls.

aiohttp's client builds a request, URL, header and response model per call. A one-shot call needs
none of that: its request is one write, its response one httptools parse into status, headers and
body, which took a tenth off the server's CPU per gateway call (0.92 to 0.82 ms for the REST
`chat/completions` at one client, `make bench`'s request). Streams, whose body is read as it
comes, keep aiohttp's client (`app.providers.http`).

Connections are kept per origin while they are idle (at most `KEEPALIVE_SECONDS`); a connection the
server closed, or whose exchange did not end cleanly (a timeout, a cancelled call, a body cut
short), is never reused. Host names are resolved at connect time through the same guarded resolver
as aiohttp's connector, so a DNS answer pointing at a private address is refused here too.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import zlib
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy

from app.domain.calls import ProviderError, ProviderErrorCode

KEEPALIVE_SECONDS = 30.0
_IDLE_KEPT_PER_ORIGIN = 100
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
Origin = tuple[str, str, int]  # scheme, host, port


class Answer:
    """A whole response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._head: asyncio.Future[int] | None = None
        self._whole: asyncio.Future[bytes] | None = None
        self.reusable = False
        self.answered = False  # a byte of the current exchange's answer came

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not asyncio's class

    def data_received(self, data: bytes) -> None:
        if self._whole is None or self._whole.done():  # bytes nobody asked for: not to be trusted
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail(_broken())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.reusable = False
        if self._whole is not None and not self._whole.done():
            if self._ends_with_connection():
                self._whole.set_result(b"".join(self._body))
            else:
                self._fail(_broken())

    def _ends_with_connection(self) -> bool:
        """An answer with neither a length nor chunks, whose body is all that came (httptools
        cannot be told the connection ended)."""
        if self._head is None or not self._head.done() or self._head.exception() is not None:
            return False
        framed = "Content-Length" in self._headers or "Transfer-Encoding" in self._headers
        return not framed

    # -- httptools callbacks ------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_result(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        if self._whole is not None and not self._whole.done():
            self._whole.set_result(b"".join(self._body))

    # -- one exchange -------------------------------------------------------------------------------
    def send(self, request: bytes) -> asyncio.Future[int]:
        """Writes the request; the future has the status once the response's headers are in."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.reusable = self.answered = False
        self.parser = httptools.HttpResponseParser(self)
        self._headers = CIMultiDict()
        self._body = []
        self._head = loop.create_future()
        self._whole = loop.create_future()
        self.transport.write(request)
        return self._head

    async def body(self) -> bytes:
        assert self._whole is not None
        body = await self._whole
        encoding = self._headers.get("Content-Encoding", "identity").lower()
        if encoding in _DECODERS:
            try:
                return zlib.decompress(body, _DECODERS[encoding])
            except zlib.error as exc:
                raise _broken() from exc
        return body

    def headers(self) -> CIMultiDictProxy[str]:
        return CIMultiDictProxy(self._headers)

    def finished(self) -> None:
        """The exchange is over: the response parsed whole, or abandoned (then never reused)."""
        self._head = self._whole = None
        if not self.reusable:
            self.close()

    def _fail(self, error: ProviderError) -> None:
        for waiter in (self._head, self._whole):
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # retrieved: a caller that left already does not log it
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class Exchanges:
    """The pool. One per process, closed on shutdown; every connection is made on first use."""

    def __init__(self, resolver: AbstractResolver | None) -> None:
        self._resolver = resolver  # None: the loop resolves (private upstreams are allowed)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, head_timeout: float, body_timeout: float
    ) -> Answer:
        """POST `body`; the response's headers within `head_timeout` (connecting included), its body
        within `body_timeout` after them."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        origin = (scheme, host, parts.port or (443 if scheme == "https" else 80))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = _request_bytes(target, _host_header(host, parts.port, scheme), headers, body)
        head_deadline = asyncio.get_running_loop().time() + head_timeout
        try:
            return await self._exchange(origin, request, head_deadline, body_timeout, fresh=False)
        except _Unanswered:
            # A kept connection the server had closed before reading the request (its keep-alive
            # ran out as the request went): nothing was answered, so it is sent once more, anew.
            return await self._exchange(origin, request, head_deadline, body_timeout, fresh=True)

    async def _exchange(
        self, origin: Origin, request: bytes, head_deadline: float, body_timeout: float, *, fresh: bool
    ) -> Answer:
        try:
            async with asyncio.timeout_at(head_deadline):
                connection, reused = await self._connection(origin, fresh)
        except TimeoutError as exc:
            raise _timed_out() from exc
        self._busy.add(connection)
        try:
            try:
                async with asyncio.timeout_at(head_deadline):
                    status = await connection.send(request)
                async with asyncio.timeout(body_timeout):
                    content = await connection.body()
            except TimeoutError as exc:
                raise _timed_out() from exc
            except ProviderError:
                if reused and not connection.answered:
                    raise _Unanswered from None
                raise
            return Answer(status, connection.headers(), content)
        finally:
            self._busy.discard(connection)
            connection.finished()
            if connection.reusable:
                self._keep(origin, connection)

    async def close(self) -> None:
        """Closes every connection; a call still waiting sees its connection fail."""
        for connection in [*self._busy, *(c for idle in self._idle.values() for c in idle)]:
            connection.close()
        self._idle.clear()

    async def _connection(self, origin: Origin, fresh: bool) -> tuple[_Connection, bool]:
        """A kept connection (and True) unless `fresh`, else a new one (and False)."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle and not fresh:
            connection = idle.pop()
            if connection.usable and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection, True
            connection.close()
        return await self._connect(origin), False

    def _keep(self, origin: Origin, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= _IDLE_KEPT_PER_ORIGIN:
            connection.close()
        else:
            idle.append(connection)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if scheme == "https" else None
        addresses: list[tuple[str, int]] = [(host, port)]
        if self._resolver is not None:
            try:
                resolved = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
            except OSError as exc:
                raise _unreachable() from exc
            addresses = [(r["host"], r["port"]) for r in resolved]
        last: OSError | None = None
        for address, address_port in addresses:
            try:
                _, connection = await loop.create_connection(
                    _Connection, address, address_port, ssl=tls, server_hostname=host if tls else None
                )
                return connection
            except OSError as exc:  # refused, unreachable, a TLS handshake that failed
                last = exc
        raise _unreachable() from last

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


class _Unanswered(Exception):
    """A kept connection failed before any byte of its answer came."""


def _timed_out() -> ProviderError:
    return ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time")


def _broken() -> ProviderError:
    """A dropped connection, or an answer that is not HTTP or not whole."""
    return ProviderError(ProviderErrorCode.CONNECT_FAILED, "the connection to the provider failed")


def _unreachable() -> ProviderError:
    return ProviderError(ProviderErrorCode.CONNECT_FAILED, "could not connect to the provider")


def _host_header(host: str, port: int | None, scheme: str) -> str:
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port is None or port == default else f"{name}:{port}"


def _request_bytes(target: str, host: str, headers: Mapping[str, Any], body: bytes) -> bytes:
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    for name, value in headers.items():
        if name.lower() in ("host", "content-length"):
            continue
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line:
            # A header with a line break would write headers (or a request) of its own.
            raise ProviderError(
                ProviderErrorCode.BAD_REQUEST, "a request header holds a line break", retryable=False
            )
        lines.append(line)
    lines += ("", "")
    return "\r\n".join(lines).encode("latin-1") + body
