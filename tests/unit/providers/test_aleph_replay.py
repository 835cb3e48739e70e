"""Real recorded Aleph Alpha traffic (tests/recordings/aleph-alpha, see its README and index.json)
served byte for byte by the fake, whole and split at odd chunk boundaries, through the adapter."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.domain.calls import (
    ChatMessage,
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamFailed,
    Usage,
    UsageUpdate,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, ModelGroup, Provider
from app.providers.aleph_alpha import aleph_alpha_adapter
from app.providers.base import ChatRequest, ProviderTarget
from app.providers.runtime import ProviderRuntime
from tests.fakes.aleph_alpha_server import TOKEN, AlephAlphaFake, aleph_alpha_fake
from tests.fakes.common import RawReply
from tests.support.streams import collect, text_of

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings" / "aleph-alpha"
REQUEST = ChatRequest(messages=(ChatMessage(ChatRole.USER, "Hello, how are you?"),), max_tokens=7)


@pytest.fixture
async def fake() -> AsyncIterator[AlephAlphaFake]:
    async with aleph_alpha_fake() as fake:
        yield fake


def recording_index() -> dict[str, dict[str, object]]:
    return {entry["file"]: entry for entry in json.loads((RECORDINGS / "index.json").read_text())}


def target(fake: AlephAlphaFake, group: ModelGroup, model: str) -> ProviderTarget:
    return ProviderTarget(
        provider=Provider.ALEPH_ALPHA,
        provider_model_id=model,
        model_group=group,
        model_url=f"{fake.url}/v1",
        credentials=Credentials(token=TOKEN),
    )


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_complete_stream_recording(
    fake: AlephAlphaFake, runtime: ProviderRuntime, write_size: int | None
) -> None:
    recorded = (RECORDINGS / "complete-stream.sse").read_bytes()
    assert hashlib.sha256(recorded).hexdigest() == recording_index()["complete-stream.sse"]["sha256"]
    fake.raw = RawReply(200, {"content-type": "text/event-stream"}, recorded)
    fake.write_size = write_size

    adapter = aleph_alpha_adapter(target(fake, ModelGroup.COMPLETION, "luminous-base"), runtime)
    events = await collect(adapter.stream(REQUEST))

    assert text_of(events) == " The New York Times, May 15"
    assert events[-2:] == [UsageUpdate(Usage(1, 7)), Finished(FinishReason.LENGTH)]
    assert fake.requests[0].path == "/v1/complete"


@pytest.mark.parametrize("write_size", [None, 1, 7, 37])
async def test_chat_missing_capability_recording(
    fake: AlephAlphaFake, runtime: ProviderRuntime, write_size: int | None
) -> None:
    recording = json.loads((RECORDINGS / "chat-400-missing-capability.json").read_text())
    body = recording["body_raw"].encode()
    content_type = recording["headers"]["content-type"]
    fake.raw = RawReply(recording["status"], {"content-type": content_type}, body)
    fake.write_size = write_size
    adapter = aleph_alpha_adapter(target(fake, ModelGroup.CHAT, "luminous-base"), runtime)

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(REQUEST)
    events = await collect(adapter.stream(REQUEST))
    assert isinstance(events[-1], StreamFailed)

    for error in (raised.value, events[-1].error):
        assert (error.code, error.status, error.retryable) == (ProviderErrorCode.BAD_REQUEST, 400, False)
        assert "does not support chat conversations" in error.message
        assert error.message.startswith("provider returned HTTP 400: Sadly the model you chose")
    assert [r.path for r in fake.requests] == ["/v1/chat/completions"] * 2
