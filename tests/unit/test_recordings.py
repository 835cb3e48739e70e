"""Every recording in tests/recordings is accounted for: listed in its folder's index.json with the
sha256 of the file as stored (`file_sha256` where `sha256` names the wire body inside a wrapper
file), named in the README, and parseable as what it claims to be — SSE frames of JSON, JSON, or an
AWS event stream whose every message passes its CRCs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
FILES = sorted(p for p in RECORDINGS.glob("*/*") if p.name != "index.json")


def entry(path: Path) -> dict[str, Any]:
    index = json.loads((path.parent / "index.json").read_text())
    [found] = [e for e in index if e["file"] == path.name]
    return found


def sse_payloads(raw: bytes) -> list[Any]:
    text = raw.decode().replace("\r\n", "\n")
    assert text.endswith("\n\n"), "every frame ends with a blank line"
    frames = [frame for frame in text.split("\n\n") if frame.strip()]
    datas = [
        "\n".join(line[5:].removeprefix(" ") for line in f.split("\n") if line.startswith("data:"))
        for f in frames
    ]
    assert all(datas), "every frame carries data"
    return [json.loads(d) for d in datas if d != "[DONE]"]


def test_there_are_recordings_for_every_provider_the_issue_names() -> None:
    assert {p.parent.name for p in FILES} >= {"openai-chat", "anthropic", "gemini", "bedrock", "mistral"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_recording_is_listed_with_its_hash(path: Path) -> None:
    listed = entry(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    assert listed.get("file_sha256", listed.get("sha256")) == digest
    assert listed["source_repo"]
    assert f"`{path.name}`" in (RECORDINGS / "README.md").read_text()


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_recording_parses_as_its_format(path: Path) -> None:
    raw = path.read_bytes()
    if path.suffix == ".sse":
        assert sse_payloads(raw)
    elif path.suffix == ".eventstream":
        buffer = EventStreamBuffer()
        buffer.add_data(raw)
        messages = list(buffer)  # raises on a bad prelude or message CRC
        assert len(messages) == entry(path)["frames"]
        assert all(json.loads(m.payload) is not None for m in messages)
    else:
        assert path.suffix == ".json"
        assert json.loads(raw) is not None
