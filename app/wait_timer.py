"""Time limits for the many waits of one stream, kept by one timer per stream.

A stream waits once per chunk: for the provider's next bytes (each within the idle limit) and for
the gateway's next event (all before the call's deadline). `asyncio.timeout` around each wait
schedules a timer and cancels it again per chunk — with thousands of streams, a large share of
the path's cost. A WaitTimer keeps one timer that moves only when it fires: the limit of the wait
running then is checked, and the task is cancelled only if it is still inside that wait.

    timer = WaitTimer.per_wait(30.0)   # or WaitTimer.until(loop_deadline)
    try:
        with timer:                    # raises TimeoutError if the limit passes during the wait
            chunk = await read()
    finally:
        timer.close()

Only for the task that created it, and not nested. Cancellation that is not the timer's (the
client went away) passes through unchanged, as with `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

_TOLERANCE = 0.001  # the loop may run a timer a little before its time


class WaitTimer:
    __slots__ = ("_cancelling", "_cut", "_due", "_handle", "_loop", "_task", "_waiting", "seconds")

    def __init__(self, seconds: float | None, when: float | None) -> None:
        task = asyncio.current_task()
        assert task is not None, "a WaitTimer belongs to a task"
        self._loop = asyncio.get_running_loop()
        self._task = task
        self.seconds = seconds  # each wait's own limit (may change between waits); None: `_due`
        self._due = when if when is not None else 0.0
        self._waiting = False
        self._cut = False  # the timer cancelled the task during the current wait
        self._cancelling = 0
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def per_wait(cls, seconds: float) -> WaitTimer:
        """Each wait may last `seconds` (the limit can be changed between waits)."""
        return cls(seconds, None)

    @classmethod
    def until(cls, when: float) -> WaitTimer:
        """Every wait ends by `when` (the event loop's clock)."""
        return cls(None, when)

    def __enter__(self) -> None:
        if self.seconds is not None:
            self._due = self._loop.time() + self.seconds
        self._waiting = True
        self._cancelling = self._task.cancelling()
        if self._handle is None:
            self._handle = self._loop.call_at(self._due, self._fire)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._waiting = False
        if self._cut:
            self._cut = False
            # Ours, unless someone else cancelled the task as well.
            cancelled = kind is not None and issubclass(kind, asyncio.CancelledError)
            if self._task.uncancel() <= self._cancelling and cancelled:
                raise TimeoutError from error

    def _fire(self) -> None:
        self._handle = None
        if not self._waiting:
            return  # the next wait sets the timer again
        if self._due - self._loop.time() > _TOLERANCE:
            self._handle = self._loop.call_at(self._due, self._fire)  # a later wait's limit
            return
        self._cut = True
        self._task.cancel()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
