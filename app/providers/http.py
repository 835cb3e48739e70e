"""The one HTTP client every HTTP adapter shares: pooled connections (one-shot JSON calls over
`exchanges`, streams and everything else over an aiohttp session), the outbound-safety checks, the
three timeouts (connect, first byte, idle between chunks), and mapping of non-2xx answers to
ProviderError through a per-wire-format error reader.

aiohttp directly, not a generic client on top of it: a call crosses this layer once per request and
once per streamed chunk, and a second client's request, URL and header models doubled its cost."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from app.domain.calls import ProviderError, ProviderErrorCode
from app.providers.exchanges import Exchanges
from app.providers.outbound import GuardedResolver, UnsafeUpstreamError, check_url, resolver_kwargs
from app.providers.redact import safe_detail
from app.providers.sse import SseEvent, SseParser
from app.wait_timer import WaitTimer

# Reads an error response (status, headers, body) into a ProviderError with a safe message.
ErrorReader = Callable[[int, Mapping[str, str], bytes], ProviderError]
Response = aiohttp.ClientResponse

_JSON_HEADERS = {
    "content-type": "application/json",
    "accept-encoding": "gzip, deflate",
    "user-agent": "modelgate",
}
_MAX_RETRY_AFTER_SECONDS = 3600.0
_SAFE_URLS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 25.0
    idle: float = 30.0


class UpstreamHttp:
    """Owns the pooled session. Create once per process (`create`), close on shutdown. The session
    itself is made by the first request: aiohttp binds it to the running event loop."""

    def __init__(self, timeouts: Timeouts, *, allow_private: bool, max_connections: int) -> None:
        self.timeouts = timeouts
        self.allow_private = allow_private
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # URLs that passed `check_url`: the check is a pure function of the URL, and a model's URL
        # is the same on every call (addresses a name resolves to are checked at connect time).
        self._safe_urls: set[str] = set()
        # Responses being read: closing the session alone would leave their readers waiting.
        self._open: set[Response] = set()
        self._exchanges = Exchanges(None if allow_private else GuardedResolver())

    @classmethod
    def create(cls, timeouts: Timeouts, *, allow_private: bool, max_connections: int = 1000) -> UpstreamHttp:
        return cls(timeouts, allow_private=allow_private, max_connections=max_connections)

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=0,
            keepalive_timeout=30,
            **resolver_kwargs(allow_private=self.allow_private),
        )
        return aiohttp.ClientSession(
            connector=connector,
            # No cookies: one organization's upstream answer must never set what another's sends.
            cookie_jar=aiohttp.DummyCookieJar(),
            # The first byte and the gaps between chunks are timed by `open` and `iter_bytes`.
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.timeouts.connect, sock_connect=self.timeouts.connect
            ),
        )

    async def close(self) -> None:
        """Ends every request still running (their readers see a closed connection), then the pool."""
        for response in list(self._open):
            response.close()
        await self._exchanges.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _check(self, url: str) -> None:
        if url in self._safe_urls:
            return
        try:
            check_url(url, allow_private=self.allow_private)
        except UnsafeUpstreamError as exc:
            raise ProviderError(
                ProviderErrorCode.BAD_REQUEST, f"the model URL {exc}", retryable=False
            ) from exc
        if len(self._safe_urls) >= _SAFE_URLS_KEPT:
            self._safe_urls.clear()
        self._safe_urls.add(url)

    async def post_json(
        self, url: str, body: Any, *, headers: Mapping[str, str], read_error: ErrorReader
    ) -> Any:
        """POST a JSON body, return the parsed JSON answer (over `exchanges`, not aiohttp's client)."""
        self._check(url)
        # Names lower-cased: an adapter's "Content-Type" replaces ours instead of going out twice.
        request_headers = _JSON_HEADERS | {name.lower(): value for name, value in headers.items()}
        answer = await self._exchanges.post(
            url,
            orjson.dumps(body),
            request_headers,
            head_timeout=self.timeouts.connect + self.timeouts.first_byte,
            body_timeout=self.timeouts.first_byte,
        )
        if answer.status >= 300:  # redirects are not followed: the answer is an error
            raise read_error(answer.status, answer.headers, answer.body)
        return orjson.loads(answer.body)

    async def read(self, response: Response) -> bytes:
        """The whole (decoded) body, within the first-byte timeout."""
        try:
            async with asyncio.timeout(self.timeouts.first_byte):
                return await response.read()
        except TimeoutError as exc:
            raise ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time") from exc

    @asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        read_error: ErrorReader,
        body: Any = None,
        raw_body: bytes | None = None,
    ) -> AsyncIterator[Response]:
        """Send a request and yield the response once its status is known to be 2xx. Leaving the
        block closes the response (and, if it was not fully read, its connection)."""
        self._check(url)
        content = raw_body if raw_body is not None else (orjson.dumps(body) if body is not None else None)
        request_headers = dict(headers)
        if body is not None:
            request_headers.setdefault("content-type", "application/json")
        # A compressing proxy or server buffers an event stream, delaying every token.
        request_headers.setdefault("accept-encoding", "identity")
        if self._session is None:
            self._session = self._new_session()
        session = self._session
        try:
            async with asyncio.timeout(self.timeouts.connect + self.timeouts.first_byte):
                # Redirects are not followed: each hop would need the outbound checks again, and
                # no provider API redirects its calls.
                response = await session.request(
                    method, url, headers=request_headers, data=content, allow_redirects=False
                )
        except TimeoutError as exc:
            raise ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time") from exc
        self._open.add(response)
        try:
            if response.status >= 300:  # redirects are not followed: the answer is an error
                try:
                    async with asyncio.timeout(self.timeouts.idle):
                        error_body = await response.read()
                except (TimeoutError, aiohttp.ClientError):
                    error_body = b""
                raise read_error(response.status, response.headers, error_body)
            yield response
        finally:
            self._open.discard(response)
            # Back to the pool when fully read; otherwise the connection is closed with it.
            response.release()

    async def iter_bytes(self, response: Response) -> AsyncGenerator[bytes]:
        """The (decoded) body, chunk by chunk; the first chunk must come within the first-byte
        timeout and each later one within the idle timeout."""
        timer = WaitTimer.per_wait(self.timeouts.first_byte)
        try:
            while chunk := await self._next_chunk(response, timer):
                yield chunk
        finally:
            timer.close()

    async def iter_sse(self, response: Response) -> AsyncGenerator[SseEvent]:
        """The body's events, timed as `iter_bytes` times its chunks (read here directly: this is
        the path of every streamed chunk, and each generator between costs a step per event)."""
        parser = SseParser()
        timer = WaitTimer.per_wait(self.timeouts.first_byte)
        try:
            while chunk := await self._next_chunk(response, timer):
                for event in parser.feed(chunk):
                    yield event
        finally:
            timer.close()
        for event in parser.close():
            yield event

    async def _next_chunk(self, response: Response, timer: WaitTimer) -> bytes:
        """The body's next bytes (b"" at its end), within the timer's limit; later ones within
        the idle timeout."""
        try:
            with timer:
                chunk = await response.content.readany()
        except TimeoutError as exc:
            raise stalled() from exc
        timer.seconds = self.timeouts.idle
        return chunk


def stalled() -> ProviderError:
    return ProviderError(ProviderErrorCode.TIMEOUT, "the provider stream stalled", retryable=True)


def bounded_delay(seconds: float) -> float:
    """A provider's retry hint, kept between now and an hour from now."""
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_SECONDS)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` (seconds or an HTTP date) or `retry-after-ms`, bounded; None when absent."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return bounded_delay(float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return bounded_delay(float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (ValueError, TypeError):  # neither seconds nor an HTTP date
        return None
    return bounded_delay(parsed.timestamp() - time.time())


def code_for_status(status: int) -> ProviderErrorCode:
    if status == 429:
        return ProviderErrorCode.RATE_LIMITED
    if status in (401, 403):
        return ProviderErrorCode.AUTH_FAILED
    if status == 408:
        return ProviderErrorCode.TIMEOUT
    if status in (503, 529):
        return ProviderErrorCode.OVERLOADED
    if status >= 500:
        return ProviderErrorCode.UPSTREAM_ERROR
    return ProviderErrorCode.BAD_REQUEST


def status_error(
    status: int,
    headers: Mapping[str, str],
    detail: str | None,
    *,
    code: ProviderErrorCode | None = None,
    secrets: tuple[str, ...] = (),
) -> ProviderError:
    """A ProviderError for an HTTP status, with the upstream's own message reduced to a safe one."""
    code = code or code_for_status(status)
    message = f"provider returned HTTP {status}"
    if detail:
        message += f": {safe_detail(detail, secrets)}"
    return ProviderError(code, message, status=status, retry_after=retry_after_seconds(headers))
