"""The one-shot HTTP/1.1 client (app/providers/exchanges.py) against raw loopback servers that
answer with exactly the bytes each test gives: kept connections, what must never be reused, and
what a server that lies, hangs or closes early makes of a call."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from app.domain.calls import ProviderError, ProviderErrorCode
from app.providers.exchanges import Answer, Exchanges
from app.providers.outbound import GuardedResolver

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
Answerer = Callable[[int, bytes], bytes | None]  # (request number, request) -> bytes to write, None: hang


class RawServer:
    def __init__(self, answer: Answerer, *, close_after_answer: bool = False) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.answer = answer
        self.close_after_answer = close_after_answer
        self.requests: list[bytes] = []
        self.received = asyncio.Event()
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                self.received.set()
                answer = self.answer(len(self.requests), request)
                if answer is None:
                    await reader.read()  # hangs until either side closes
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer or not answer:  # b"": closed without a word
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(answer: Answerer, **kw: bool) -> AsyncIterator[RawServer]:
    server = RawServer(answer, **kw)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        for writer in server.writers:
            writer.close()
        await asyncio.sleep(0)  # the handlers see their connections end


@pytest.fixture
async def exchanges() -> AsyncIterator[Exchanges]:
    pool = Exchanges(None)
    yield pool
    await pool.close()


async def post(
    pool: Exchanges, server: RawServer, headers: dict[str, str] | None = None, within: float = 5
) -> Answer:
    return await pool.post(
        f"http://127.0.0.1:{server.port}/v1/x?y=1",
        b'{"a": 1}',
        headers or {"content-type": "application/json"},
        head_timeout=within,
        body_timeout=within,
    )


async def test_calls_share_one_kept_connection_and_send_what_they_were_given(exchanges: Exchanges) -> None:
    async with raw_server(lambda n, _: OK) as server:
        for _ in range(3):
            answer = await post(exchanges, server, {"content-type": "application/json", "x-api-key": "k"})
            assert (answer.status, answer.body, answer.headers["content-type"]) == (
                200,
                b"{}",
                "application/json",
            )
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /v1/x?y=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in request
    assert b"Content-Length: 8\r\n" in request
    assert b"x-api-key: k\r\n" in request
    assert request.endswith(b'\r\n\r\n{"a": 1}')


async def test_chunked_gzip_and_error_answers_are_read_whole(exchanges: Exchanges) -> None:
    packed = gzip.compress(b'{"long": "' + b"x" * 5000 + b'"}')
    chunked = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:20], packed[20:])) + b"0\r\n\r\n"
    )
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n" + chunked,
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nslow",
    ]
    async with raw_server(lambda n, _: answers[n - 1]) as server:
        first = await post(exchanges, server)
        assert first.body == b'{"long": "' + b"x" * 5000 + b'"}'
        second = await post(exchanges, server)
        assert (second.status, second.headers["retry-after"], second.body) == (429, "3", b"slow")
    assert server.connections == 1


async def test_a_connection_the_server_closes_is_not_reused(exchanges: Exchanges) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with raw_server(lambda n, _: closing, close_after_answer=True) as server:
        for _ in range(2):
            assert (await post(exchanges, server)).body == b"{}"
    assert server.connections == 2


async def test_a_body_that_ends_with_the_connection_is_whole(exchanges: Exchanges) -> None:
    unframed = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}"
    async with raw_server(lambda n, _: unframed, close_after_answer=True) as server:
        assert (await post(exchanges, server)).body == b"{}"


@pytest.mark.parametrize(
    "answer",
    [
        b"this is not HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # cut short, then closed
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
        b"",  # closed without a word
    ],
)
async def test_what_is_not_a_whole_answer_is_a_broken_connection(exchanges: Exchanges, answer: bytes) -> None:
    async with raw_server(lambda n, _: answer, close_after_answer=True) as server:
        with pytest.raises(ProviderError) as caught:
            await post(exchanges, server)
    assert caught.value.code is ProviderErrorCode.CONNECT_FAILED


async def test_a_server_that_does_not_answer_times_out_and_its_connection_is_dropped(
    exchanges: Exchanges,
) -> None:
    async with raw_server(lambda n, _: None if n == 1 else OK) as server:
        with pytest.raises(ProviderError) as caught:
            await post(exchanges, server, within=0.3)
        assert caught.value.code is ProviderErrorCode.TIMEOUT
        assert (await post(exchanges, server)).body == b"{}"
    assert server.connections == 2


async def test_a_kept_connection_closed_by_the_server_is_replaced_once(exchanges: Exchanges) -> None:
    # The second request reaches a kept connection whose server closes it without answering (its
    # keep-alive ran out as the request went): the call goes out once more on a new connection.
    answers = [OK, b"", OK]
    async with raw_server(lambda n, _: answers[n - 1]) as server:
        await post(exchanges, server)
        assert (await post(exchanges, server)).body == b"{}"
    assert (len(server.requests), server.connections) == (3, 2)


async def test_a_new_connection_closed_without_an_answer_is_not_sent_again(exchanges: Exchanges) -> None:
    async with raw_server(lambda n, _: b"") as server:
        with pytest.raises(ProviderError) as caught:
            await post(exchanges, server)
    assert caught.value.code is ProviderErrorCode.CONNECT_FAILED
    assert len(server.requests) == 1


async def test_nothing_is_sent_for_a_header_with_a_line_break(exchanges: Exchanges) -> None:
    async with raw_server(lambda n, _: OK) as server:
        with pytest.raises(ProviderError) as caught:
            await post(exchanges, server, {"x-api-key": "k\r\nHost: elsewhere"})
    assert caught.value.code is ProviderErrorCode.BAD_REQUEST
    assert server.requests == []


async def test_closing_the_pool_fails_a_call_in_flight() -> None:
    pool = Exchanges(None)
    async with raw_server(lambda n, _: None) as server:
        call = asyncio.create_task(post(pool, server))
        await server.received.wait()
        await pool.close()
        with pytest.raises(ProviderError) as caught:
            await call
    assert caught.value.code is ProviderErrorCode.CONNECT_FAILED


async def test_an_unreachable_origin_fails_to_connect(exchanges: Exchanges) -> None:
    async with raw_server(lambda n, _: OK) as server:
        port = server.port
    with pytest.raises(ProviderError) as caught:
        await exchanges.post(f"http://127.0.0.1:{port}/", b"", {}, head_timeout=5, body_timeout=5)
    assert caught.value.code is ProviderErrorCode.CONNECT_FAILED


class _Answers(AbstractResolver):
    """A DNS that answers every name with one address."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=self.address, port=port, family=family, proto=0, flags=0)]

    async def close(self) -> None:
        return None


async def test_a_name_is_connected_to_at_the_address_its_resolver_gives() -> None:
    pool = Exchanges(_Answers("127.0.0.1"))
    try:
        async with raw_server(lambda n, _: OK) as server:
            url = f"http://api.example:{server.port}/v1"
            assert (await pool.post(url, b"", {}, head_timeout=5, body_timeout=5)).body == b"{}"
        assert f"Host: api.example:{server.port}\r\n".encode() in server.requests[0]
    finally:
        await pool.close()


async def test_a_name_that_resolves_to_a_private_address_is_never_connected_to() -> None:
    pool = Exchanges(GuardedResolver(_Answers("127.0.0.1")))  # DNS rebinding to loopback
    try:
        async with raw_server(lambda n, _: OK) as server:
            with pytest.raises(ProviderError) as caught:
                await pool.post(
                    f"http://rebind.example:{server.port}/", b"", {}, head_timeout=5, body_timeout=5
                )
        assert caught.value.code is ProviderErrorCode.CONNECT_FAILED
        assert server.connections == 0
    finally:
        await pool.close()
