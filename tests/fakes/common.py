"""What the fake upstreams share: serving an aiohttp app on 127.0.0.1 (random port), recording the
requests, writing an answer frame by frame under the timing switches, and counting the streams still
being written. The wire formats stay in each fake."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # the parsed JSON (None when empty or not JSON), or the form fields
    client_port: int  # tells connections apart: a reused connection keeps its port


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; None when it is empty or not JSON."""
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def recorded(request: web.Request, body: Any) -> RecordedRequest:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        client_port=peer[1] if peer else 0,
    )


@dataclass(frozen=True)
class RawReply:
    """Exact bytes to answer with (replaying a recording)."""

    status: int
    headers: dict[str, str]
    body: bytes


def split_text(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` pieces of equal length (the last may be shorter)."""
    size = max(1, math.ceil(len(text) / max(1, parts)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def split_words(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` groups of whole words, each but the last ending with its space."""
    words = text.split(" ")
    size = max(1, math.ceil(len(words) / max(1, parts)))
    groups = [words[i : i + size] for i in range(0, len(words), size)]
    return [" ".join(g) + (" " if i < len(groups) - 1 else "") for i, g in enumerate(groups)]


@dataclass
class FakeServer:
    """The base of the fakes: `serve` starts one, `record` keeps what came, `send` writes a streamed
    (or replayed) answer under the timing switches; `delay` each fake applies where it answers."""

    url: str = ""
    port: int = 0  # 0: any free port
    backlog: int = 128  # aiohttp's; a load run opening thousands of connections at once needs more
    requests: list[RecordedRequest] = field(default_factory=list)
    # Timing switches.
    delay: float = 0.0  # before the response headers
    first_byte_delay: float = 0.0  # after the headers, before the first frame
    stall_after: int | None = None  # frames sent before the stream stalls for `stall_seconds`
    stall_seconds: float = 30.0
    disconnect_after: int | None = None  # frames sent before the connection is dropped
    write_size: int | None = None  # write each frame in pieces of this many bytes
    frame_interval: float = 0.0  # pause between frames (a model writing at a steady pace)
    keep_requests: bool = True  # off for long load runs: `requests` would grow without bound
    # What happened.
    open_streams: int = 0  # answers `send` is still writing (a dropped client ends its handler)
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)  # set once none is open
    _runner: web.AppRunner | None = field(default=None, repr=False)  # while serving

    async def record(self, request: web.Request) -> Any:
        """Records `request`; returns its JSON body (None when it is empty or not JSON)."""
        body = await json_body(request)
        if self.keep_requests:
            self.requests.append(recorded(request, body))
        return body

    @asynccontextmanager
    async def serve(self, app: web.Application) -> AsyncIterator[Self]:
        """Serves `app` on 127.0.0.1 (at `port`, or a random one) until the block ends; `url` says where."""
        # handler_cancellation: a handler stops (and its connection closes) when the client goes away;
        # a short shutdown_timeout: a test that leaves a stalled handler behind still ends quickly.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, backlog=self.backlog).start()
        host, port = runner.addresses[0][:2]
        self.url, self._runner = f"http://{host}:{port}", runner
        try:
            yield self
        finally:
            await runner.cleanup()

    async def send(
        self, request: web.Request, frames: list[bytes], headers: Mapping[str, str], status: int = 200
    ) -> web.StreamResponse:
        """Answers with `frames`, honouring the switches from `first_byte_delay` on."""
        with self._counted():
            response = web.StreamResponse(status=status, headers=headers)
            await response.prepare(request)
            if self.first_byte_delay:
                await asyncio.sleep(self.first_byte_delay)
            loop = asyncio.get_running_loop()
            # Frames on a fixed schedule, `frame_interval` apart from the first: a late wake-up
            # delays one frame, not every frame after it (a model writing at a steady pace).
            due = loop.time()
            for index, frame in enumerate(frames):
                if index == self.disconnect_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if index == self.stall_after:
                    await asyncio.sleep(self.stall_seconds)
                    due = loop.time()
                elif index and self.frame_interval:
                    due += self.frame_interval
                    await asyncio.sleep(max(0.0, due - loop.time()))
                await self._write(response, frame)
            with suppress(ConnectionError):
                await response.write_eof()
            return response

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        step = self.write_size or max(1, len(data))
        for start in range(0, len(data), step):
            await response.write(data[start : start + step])
            if self.write_size:
                await asyncio.sleep(0)  # let the client read this piece before the next one is sent

    @contextmanager
    def _counted(self) -> Iterator[None]:
        self.open_streams += 1
        self.all_closed.clear()
        try:
            yield
        finally:
            self.open_streams -= 1
            if not self.open_streams:
                self.all_closed.set()
