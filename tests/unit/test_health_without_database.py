"""Model health never holds a call for the database: a row due for a re-read is answered from memory
while it is read in the background, a read that fails keeps what was known, and one read at a time
per model is ever waiting on the database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from app.db import DatabaseUnavailable
from app.repositories.health import HealthRow
from app.services.health import ModelHealthTracker

TRIPPED = HealthRow(3, datetime.now(UTC) + timedelta(hours=1))


class StalledRows:
    """model_health behind a database the test can stall (reads wait) and fail."""

    def __init__(self) -> None:
        self.rows: dict[UUID, HealthRow] = {}
        self.reads = 0
        self.answer = asyncio.Event()
        self.answer.set()
        self.failing = False

    async def get_many(self, model_ids: list[UUID]) -> dict[UUID, HealthRow]:
        self.reads += 1
        await self.answer.wait()
        if self.failing:
            raise DatabaseUnavailable("no answer")
        return {m: self.rows[m] for m in model_ids if m in self.rows}


def tracker(rows: StalledRows) -> ModelHealthTracker:
    nothing: Any = None
    return ModelHealthTracker(nothing, rows, nothing, nothing, refresh_interval=0.05)  # type: ignore[arg-type]


async def test_a_stalled_database_never_holds_a_call_that_knows_its_model() -> None:
    rows = StalledRows()
    health = tracker(rows)
    model_id = uuid.uuid4()
    rows.rows[model_id] = TRIPPED
    assert await health.is_tripped(model_id)  # a first read is waited for

    rows.answer.clear()  # the database stops answering
    await asyncio.sleep(health.refresh_interval)
    for _ in range(20):
        assert await asyncio.wait_for(health.is_tripped(model_id), 0.01)  # from memory, at once
    assert rows.reads == 2  # one re-read waits on the database, not one per call

    rows.failing = True
    rows.answer.set()  # it gives up: what was known is kept
    await asyncio.sleep(0)
    assert await health.is_tripped(model_id)
    assert rows.reads == 2  # and no new read before `refresh_interval`

    rows.failing = False
    rows.rows[model_id] = HealthRow()  # reset meanwhile, by another instance
    await asyncio.sleep(health.refresh_interval)
    assert await health.is_tripped(model_id)  # answered at once; the re-read starts
    await asyncio.sleep(0.01)
    assert not await health.is_tripped(model_id)
