"""WaitTimer: the limits of asyncio.timeout per wait, with one timer per stream."""

import asyncio

import pytest

from app.wait_timer import WaitTimer


async def test_a_wait_longer_than_its_limit_times_out() -> None:
    timer = WaitTimer.per_wait(0.05)
    try:
        with pytest.raises(TimeoutError), timer:
            await asyncio.sleep(1)
    finally:
        timer.close()


async def test_each_wait_has_its_own_limit_however_long_the_waits_take_together() -> None:
    timer = WaitTimer.per_wait(0.08)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for _ in range(6):
            with timer:
                await asyncio.sleep(0.04)
    finally:
        timer.close()
    assert loop.time() - started >= 0.24  # three times the limit, and no wait timed out


async def test_the_limit_can_change_between_waits() -> None:
    timer = WaitTimer.per_wait(1.0)
    try:
        with timer:
            await asyncio.sleep(0.01)
        timer.seconds = 0.03
        with pytest.raises(TimeoutError), timer:
            await asyncio.sleep(1)
    finally:
        timer.close()


async def test_until_ends_every_wait_at_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    timer = WaitTimer.until(started + 0.1)
    try:
        with timer:
            await asyncio.sleep(0.03)
        with pytest.raises(TimeoutError), timer:
            await asyncio.sleep(1)
        assert 0.09 <= loop.time() - started < 0.5
    finally:
        timer.close()


async def test_time_spent_between_waits_is_never_cut() -> None:
    """What the consumer does with an event (outside the waits) runs to its end; the next wait fails."""
    loop = asyncio.get_running_loop()
    timer = WaitTimer.until(loop.time() + 0.05)
    try:
        with timer:
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past the deadline, outside any wait: not cancelled
        with pytest.raises(TimeoutError), timer:
            await asyncio.sleep(1)
    finally:
        timer.close()


async def test_a_cancellation_that_is_not_the_timers_passes_through() -> None:
    started = asyncio.Event()

    async def wait() -> None:
        timer = WaitTimer.per_wait(10)
        try:
            with timer:
                started.set()
                await asyncio.sleep(10)
        finally:
            timer.close()

    task = asyncio.create_task(wait())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_closed_timer_cancels_nothing_later() -> None:
    timer = WaitTimer.per_wait(0.03)
    with timer:
        await asyncio.sleep(0)
    timer.close()
    await asyncio.sleep(0.06)  # past the limit: nothing fires into this task
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
