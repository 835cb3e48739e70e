"""The one HTTP client every HTTP adapter shares: pooled httpx over the httpx-aiohttp transport,
the outbound-safety checks, the three timeouts (connect, first byte, idle between chunks), and
mapping of non-2xx answers to ProviderError through a per-wire-format error reader."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from app.domain.calls import ProviderError, ProviderErrorCode
from app.providers.outbound import UnsafeUpstreamError, check_url, resolver_kwargs
from app.providers.redact import safe_detail
from app.providers.sse import SseEvent, parse_sse

# Reads an error response (status, headers, body) into a ProviderError with a safe message.
ErrorReader = Callable[[int, httpx.Headers, bytes], ProviderError]

_MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 25.0
    idle: float = 30.0


class _NoCookies(httpx.Cookies):
    """The shared client keeps no cookies: one organization's upstream answer must never set
    what another organization's request sends (and extracting them costs time on every call)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class UpstreamHttp:
    """Owns the pooled client. Create once per process (`create`), close on shutdown."""

    def __init__(self, client: httpx.AsyncClient, timeouts: Timeouts, *, allow_private: bool) -> None:
        self.client = client
        self.timeouts = timeouts
        self.allow_private = allow_private
        # Responses being read: closing the client alone would leave their readers waiting.
        self._open: set[httpx.Response] = set()

    @classmethod
    def create(cls, timeouts: Timeouts, *, allow_private: bool, max_connections: int = 1000) -> UpstreamHttp:
        def session() -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(
                limit=max_connections,
                limit_per_host=0,
                keepalive_timeout=30,
                **resolver_kwargs(allow_private=allow_private),
            )
            return aiohttp.ClientSession(connector=connector)

        transport = AiohttpTransport(client=session)
        client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=None, write=timeouts.idle, pool=timeouts.connect
            ),
        )
        client._cookies = _NoCookies()  # the public setter would copy it into a plain jar
        return cls(client, timeouts, allow_private=allow_private)

    async def close(self) -> None:
        """Ends every request still running (their readers see a closed connection), then the pool."""
        for response in list(self._open):
            await response.aclose()
        await self.client.aclose()

    def _check(self, url: str) -> None:
        try:
            check_url(url, allow_private=self.allow_private)
        except UnsafeUpstreamError as exc:
            raise ProviderError(
                ProviderErrorCode.BAD_REQUEST, f"the model URL {exc}", retryable=False
            ) from exc

    async def post_json(
        self, url: str, body: Any, *, headers: Mapping[str, str], read_error: ErrorReader
    ) -> Any:
        """POST a JSON body, return the parsed JSON answer."""
        async with self.open(
            "POST", url, body=body, headers=headers, read_error=read_error, streaming=False
        ) as response:
            try:
                async with asyncio.timeout(self.timeouts.first_byte):
                    content = await response.aread()
            except TimeoutError as exc:
                raise ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time") from exc
        return orjson.loads(content)

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
        streaming: bool = True,
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the response once its status is known to be 2xx. Leaving the
        block closes the response (and, if it was not fully read, its connection)."""
        self._check(url)
        content = raw_body if raw_body is not None else (orjson.dumps(body) if body is not None else None)
        request_headers = dict(headers)
        if body is not None:
            request_headers.setdefault("content-type", "application/json")
        if streaming:
            # A compressing proxy or server buffers an event stream, delaying every token.
            request_headers.setdefault("accept-encoding", "identity")
        request = self.client.build_request(method, url, headers=request_headers, content=content)
        try:
            async with asyncio.timeout(self.timeouts.connect + self.timeouts.first_byte):
                response = await self.client.send(request, stream=True)
        except TimeoutError as exc:
            raise ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time") from exc
        self._open.add(response)
        try:
            if response.status_code >= 400:
                try:
                    async with asyncio.timeout(self.timeouts.idle):
                        error_body = await response.aread()
                except (TimeoutError, httpx.HTTPError):
                    error_body = b""
                raise read_error(response.status_code, response.headers, error_body)
            yield response
        finally:
            self._open.discard(response)
            await response.aclose()

    async def iter_bytes(self, response: httpx.Response) -> AsyncGenerator[bytes]:
        """The (decoded) body, chunk by chunk; the first chunk must come within the first-byte
        timeout and each later one within the idle timeout."""
        chunks = response.aiter_bytes()
        limit = self.timeouts.first_byte
        while True:
            try:
                async with asyncio.timeout(limit):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise ProviderError(
                    ProviderErrorCode.TIMEOUT, "the provider stream stalled", retryable=True
                ) from exc
            limit = self.timeouts.idle
            if chunk:
                yield chunk

    async def iter_sse(self, response: httpx.Response) -> AsyncGenerator[SseEvent]:
        async with (
            aclosing(self.iter_bytes(response)) as chunks,
            aclosing(parse_sse(chunks)) as events,
        ):
            async for event in events:
                yield event


def bounded_delay(seconds: float) -> float:
    """A provider's retry hint, kept between now and an hour from now."""
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_SECONDS)


def retry_after_seconds(headers: httpx.Headers) -> float | None:
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
    headers: httpx.Headers,
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
