"""Fixtures the security modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.openai_server import OpenAIFake, openai_fake_server


@pytest.fixture
async def stalling() -> AsyncIterator[OpenAIFake]:
    """Sends two pieces of its answer, then nothing for 30 s."""
    async with openai_fake_server(
        reply="one two three four", chunks=4, stall_after=2, stall_seconds=30
    ) as fake:
        yield fake
