"""Helpers for the stream events of a provider adapter: collecting them, and what they add up to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from app.domain.calls import Finished, ProviderError, StreamEvent, StreamFailed, TextDelta, Usage, UsageUpdate
from app.domain.enums import FinishReason


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def usages(events: list[StreamEvent]) -> list[Usage]:
    return [e.usage for e in events if isinstance(e, UsageUpdate)]


def last_usage(events: list[StreamEvent]) -> Usage:
    return usages(events)[-1]


def failure(events: list[StreamEvent]) -> ProviderError:
    """The error the stream ended with; it must have ended with one."""
    assert isinstance(events[-1], StreamFailed), events[-1]
    return events[-1].error


@dataclass
class StreamResult:
    events: list[StreamEvent]

    @property
    def text(self) -> str:
        return text_of(self.events)

    @property
    def usage(self) -> Usage | None:
        updates = usages(self.events)
        return updates[-1] if updates else None

    @property
    def finish(self) -> FinishReason | None:
        return self.events[-1].reason if isinstance(self.events[-1], Finished) else None

    @property
    def error(self) -> ProviderError | None:
        return self.events[-1].error if isinstance(self.events[-1], StreamFailed) else None


async def collect_result(events: AsyncIterator[StreamEvent]) -> StreamResult:
    """The events and what they add up to; checks that exactly one terminal event came, last."""
    result = StreamResult(await collect(events))
    terminals = [e for e in result.events if isinstance(e, Finished | StreamFailed)]
    assert terminals == result.events[-1:], "exactly one terminal event, and it comes last"
    return result


@asynccontextmanager
async def consumer_cancelled_on_exit(
    events: AsyncIterator[StreamEvent], *, first_text_within: float
) -> AsyncIterator[None]:
    """Consumes `events` in a task: the block runs once the first TextDelta has come; leaving it
    cancels the task, which must then end cancelled."""
    first_text = asyncio.Event()

    async def consume() -> None:
        async for event in events:
            if isinstance(event, TextDelta):
                first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), first_text_within)
    yield
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
