"""The drain clock on its own: what a bounded wait does when the grace ends, and what it leaves alone."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.domain.gateway import GatewayError, GatewayErrorCode
from app.services.drain_clock import DrainClock


async def waits_forever(clock: DrainClock) -> None:
    with clock.bounded():
        await asyncio.sleep(3600)


async def test_the_end_of_the_grace_cuts_a_wait_with_service_unavailable() -> None:
    clock = DrainClock(0.1)
    waiting = asyncio.create_task(waits_forever(clock))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    clock.begin()
    with pytest.raises(GatewayError) as cut:
        await waiting
    assert cut.value.code is GatewayErrorCode.SERVICE_UNAVAILABLE
    assert 0.08 < time.monotonic() - started < 0.5
    with pytest.raises(GatewayError):  # a wait begun after the grace is cut at once
        await waits_forever(clock)


async def test_waits_that_end_in_time_and_other_cancellations_are_left_alone() -> None:
    clock = DrainClock(0.1)
    clock.begin()
    with clock.bounded():
        await asyncio.sleep(0.01)  # ends within the grace: nothing happens
    cancelled = asyncio.create_task(waits_forever(clock))
    await asyncio.sleep(0.01)
    cancelled.cancel()  # the caller went away before the grace ended: a cancellation, not an error
    with pytest.raises(asyncio.CancelledError):
        await cancelled


async def test_a_cancellation_at_the_end_of_the_grace_stays_a_cancellation() -> None:
    clock = DrainClock(0.05)
    waiting = asyncio.create_task(waits_forever(clock))
    await asyncio.sleep(0.01)
    clock.begin()
    assert clock._deadline is not None
    # The caller goes away in the same turn of the loop as the grace ends, after the clock's cut.
    asyncio.get_running_loop().call_at(clock._deadline, waiting.cancel)
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_the_drain_waits_for_calls_in_flight_and_no_longer() -> None:
    clock = DrainClock(10)
    started = time.monotonic()
    await clock.drain()  # nothing runs: over at once
    assert time.monotonic() - started < 0.1
    assert clock.draining

    clock = DrainClock(10)
    clock.enter()
    asyncio.get_running_loop().call_later(0.1, clock.leave)
    started = time.monotonic()
    await clock.drain()
    assert 0.08 < time.monotonic() - started < 0.5

    clock = DrainClock(0.1, settle=0.1)
    clock.enter()  # never leaves
    started = time.monotonic()
    await clock.drain()
    assert 0.18 < time.monotonic() - started < 0.5
