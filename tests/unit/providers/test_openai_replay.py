"""Real recorded Chat Completions traffic (tests/recordings, see its README and index.json files)
served byte for byte by the fake, whole and cut at odd chunk boundaries, through the adapter.

What the adapter defines for recordings beyond plain text: a refusal is the answer text; with n=3
choices the answer is choice 0 (usage counts all three, as recorded); tool calls come back whole, in
order, with their recorded ids and argument text (streamed: assembled from their fragments), and the
finish reason TOOL_CALLS. Mistral's recorded tool call (no `type`, an `index`, `content: ""`) goes
through the Mistral dialect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.domain.calls import ToolCall, ToolCallDone, Usage
from app.domain.enums import FinishReason, Provider
from app.providers.openai_family import openai_family_adapter
from app.providers.runtime import ProviderRuntime
from tests.fakes.openai_server import CHAT, OpenAIFake, make_target
from tests.support.streams import collect_result

RECORDINGS = Path(__file__).parents[2] / "recordings"
FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH, "tool_calls": FinishReason.TOOL_CALLS}


@dataclass(frozen=True)
class Recording:
    path: Path
    provider: Provider
    text: str
    finish: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def streamed(self) -> bool:
        return self.path.suffix == ".sse"


def openai_chat_recordings() -> list[Recording]:
    recordings = []
    for entry in json.loads((RECORDINGS / "openai-chat" / "index.json").read_text()):
        choice: dict[str, Any] = entry["expected"]["choices"][0]
        usage = entry["expected"]["usage"]
        recordings.append(
            Recording(
                path=RECORDINGS / "openai-chat" / entry["file"],
                provider=Provider.OPENAI,
                text=choice["content"] or choice["refusal"] or "",
                finish=FINISH[choice["finish_reason"]],
                usage=Usage(usage["prompt_tokens"], usage["completion_tokens"]),
                tool_calls=calls_of(choice["tool_calls"]),
            )
        )
    return recordings


def calls_of(expected: list[dict[str, str]]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(call["id"], call["name"], call["arguments"]) for call in expected)


def mistral_recording() -> Recording:
    [entry] = json.loads((RECORDINGS / "mistral" / "index.json").read_text())
    expected = entry["expected"]
    return Recording(
        path=RECORDINGS / "mistral" / entry["file"],
        provider=Provider.MISTRAL,
        text="",
        finish=FINISH[expected["finish_reason"]],
        usage=Usage(expected["usage"]["prompt_tokens"], expected["usage"]["completion_tokens"]),
        tool_calls=calls_of(expected["tool_calls"]),
    )


def aleph_chat_recording() -> Recording:
    index = json.loads((RECORDINGS / "aleph-alpha" / "index.json").read_text())
    expected = next(e for e in index if e["file"] == "chat-stream-usage.sse")["expected"]
    return Recording(
        path=RECORDINGS / "aleph-alpha" / "chat-stream-usage.sse",
        provider=Provider.OPENAI_COMPATIBLE,
        text=expected["text"],
        finish=FINISH[expected["finish_reason"]],
        usage=Usage(expected["usage"]["input_tokens"], expected["usage"]["output_tokens"]),
    )


RECORDED = [*openai_chat_recordings(), aleph_chat_recording(), mistral_recording()]
CASES = [
    pytest.param(
        recording, split, id=f"{recording.path.parent.name}/{recording.path.name}-{split or 'whole'}"
    )
    for recording in RECORDED
    # 1-byte pieces only for the small files: the parser itself is fed every recording byte by
    # byte in test_sse.py; here the pieces go over a real socket.
    for split in (None, 7, 37, *((1,) if recording.path.stat().st_size < 10_000 else ()))
    if recording.streamed or split is None
]


def test_every_recording_is_covered() -> None:
    served = {r.path.resolve() for r in RECORDED}
    on_disk = {p.resolve() for p in (RECORDINGS / "openai-chat").glob("*.sse")}
    on_disk |= {p.resolve() for p in (RECORDINGS / "openai-chat").glob("*.json") if p.name != "index.json"}
    assert on_disk <= served
    assert len(on_disk) == 26
    assert {p.resolve() for p in (RECORDINGS / "mistral").glob("*.json") if p.name != "index.json"} <= served
    assert sum(bool(r.tool_calls) for r in RECORDED) == 9  # 8 OpenAI (two with parallel calls), 1 Mistral


@pytest.mark.parametrize(("recording", "split"), CASES)
async def test_replay(
    openai_fake: OpenAIFake, runtime: ProviderRuntime, recording: Recording, split: int | None
) -> None:
    openai_fake.raw = recording.path.read_bytes()
    openai_fake.write_size = split
    adapter = openai_family_adapter(make_target(recording.provider, f"{openai_fake.url}/v1"), runtime)
    if recording.streamed:
        result = await collect_result(adapter.stream(CHAT))
        assert result.error is None
        assert (result.text, result.finish, result.usage) == (
            recording.text,
            recording.finish,
            recording.usage,
        )
        assert tuple(e.call for e in result.events if isinstance(e, ToolCallDone)) == recording.tool_calls
    else:
        openai_fake.raw_content_type = "application/json"
        completion = await adapter.complete(CHAT)
        assert (completion.text, completion.finish_reason, completion.usage, completion.tool_calls) == (
            recording.text,
            recording.finish,
            recording.usage,
            recording.tool_calls,
        )
