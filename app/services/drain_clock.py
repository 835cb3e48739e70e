"""One clock for shutting down (SIGTERM), shared by the gateway and every front door.

- `begin()` starts it: from then on `draining` is true, and readiness, the HTTP middleware, the
  WebSocket handlers and the gateway refuse new work with SERVICE_UNAVAILABLE; the grace runs.
- Calls count themselves in flight (`enter`/`leave`), so that a drain with nothing running is over
  at once.
- Every wait of a running call on its provider is `bounded()`: when the grace ends the wait is cut
  and the call fails with SERVICE_UNAVAILABLE (a stream ends with its transport's terminal error),
  whatever the provider does. An upstream may keep its socket open for minutes, and ECHO has no
  socket at all: neither may hold the shutdown.
- `drain()` begins the clock if need be and returns once nothing runs, or once the grace has ended
  and the calls it cut have had `settle` seconds to write their last event and meter their usage.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

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
        self._bounds: set[asyncio.Timeout] = set()  # the waits under way
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        """Refuse new work from now on; the grace starts (once: later calls change nothing)."""
        if self.draining:
            return
        self.draining = True
        self._deadline = asyncio.get_running_loop().time() + self.grace
        for bound in self._bounds:
            bound.reschedule(self._deadline)

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

    def bounded(self) -> _Bound:
        """`async with clock.bounded(): await …` — cut when the grace ends (GatewayError
        SERVICE_UNAVAILABLE). Cheap while no drain runs: a deadline of None schedules nothing."""
        return _Bound(self)


class _Bound:
    __slots__ = ("_clock", "_timeout")

    def __init__(self, clock: DrainClock) -> None:
        self._clock = clock
        self._timeout = asyncio.timeout_at(clock._deadline)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()
        self._clock._bounds.add(self._timeout)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._clock._bounds.discard(self._timeout)
        try:
            await self._timeout.__aexit__(kind, error, trace)
        except TimeoutError:
            raise shut_down() from None
