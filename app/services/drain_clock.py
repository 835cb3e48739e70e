"""One clock for shutting down (SIGTERM), shared by the gateway and every front door.

- `begin()` starts it: from then on `draining` is true, and readiness, the HTTP middleware, the
  WebSocket handlers and the gateway refuse new work with SERVICE_UNAVAILABLE; the grace runs.
- Calls count themselves in flight (`enter`/`leave`), so that a drain with nothing running is over
  at once.
- Every wait of a running call on its provider is `bounded()`: when the grace ends the wait is cut
  (its task cancelled, as asyncio.timeout does) and the call fails with SERVICE_UNAVAILABLE (a
  stream ends with its transport's terminal error), whatever the provider does. An upstream may
  keep its socket open for minutes, and ECHO has no socket at all: neither may hold the shutdown.
- `drain()` begins the clock if need be and returns once nothing runs, or once the grace has ended
  and the calls it cut have had `settle` seconds to write their last event and meter their usage.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from app.domain.gateway import GatewayError, GatewayErrorCode

# After the grace: how long cut calls get to send their terminal event and record their usage.
SETTLE = 0.5
# What new work is told while the clock runs.
SHUTTING_DOWN = "the server is shutting down; try again"


def shut_down() -> GatewayError:
    return GatewayError(
        GatewayErrorCode.SERVICE_UNAVAILABLE,
        "the server shut down during the call; try again",
        retryable=True,
    )


class DrainClock:
    def __init__(self, grace: float, *, settle: float = SETTLE) -> None:
        self.grace = grace
        self.settle = settle
        self.draining = False
        self._deadline: float | None = None  # loop time at which the grace ends, once begun
        self._expired = False
        self._waiting: set[asyncio.Task[Any]] = set()  # tasks inside a bounded wait
        self._cut: set[asyncio.Task[Any]] = set()  # those the end of the grace cancelled
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        """Refuse new work from now on; the grace starts (once: later calls change nothing)."""
        if self.draining:
            return
        self.draining = True
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.grace
        loop.call_at(self._deadline, self._expire)

    async def drain(self) -> None:
        self.begin()
        assert self._deadline is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(self._deadline + self.settle):
                await self._idle.wait()

    def enter(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    def bounded(self) -> DrainClock:
        """`with clock.bounded(): await …` — the wait is cut when the grace ends (GatewayError
        SERVICE_UNAVAILABLE). Not nested. It is on the path of every streamed chunk: while no drain
        runs it costs a set insertion (~1.5 µs in all; an asyncio.timeout per wait, ~2.7 µs)."""
        return self

    def __enter__(self) -> None:
        if self._expired:
            raise shut_down()
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._waiting.discard(task)
        if self._cut and task in self._cut:
            self._cut.discard(task)
            # Ours unless someone else cancelled the task too (the client went away, say).
            if task.uncancel() == 0 and kind is not None and issubclass(kind, asyncio.CancelledError):
                raise shut_down() from None

    def _expire(self) -> None:
        self._expired = True
        for task in self._waiting:
            task.cancel()
            self._cut.add(task)
