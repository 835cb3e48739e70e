"""The shared SSE parser (app/providers/sse.py): line ends, field rules, and chunk boundaries anywhere,
including inside a CRLF and inside a multi-byte UTF-8 character; real recordings fed byte by byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.providers.sse import SseEvent, SseParser

RECORDINGS = Path(__file__).parents[2] / "recordings"
SSE_RECORDINGS = sorted(RECORDINGS.glob("*/*.sse"))


def parse(*chunks: bytes) -> list[SseEvent]:
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_ends(newline: bytes) -> None:
    stream = b"data: one" + newline + newline + b"event: named" + newline + b"data: two" + newline + newline
    assert parse(stream) == [SseEvent("message", "one"), SseEvent("named", "two")]


def test_mixed_line_ends_in_one_stream() -> None:
    assert parse(b"data: a\r\n\ndata: b\r\rdata: c\n\r\n") == [
        SseEvent("message", "a"),
        SseEvent("message", "b"),
        SseEvent("message", "c"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse(b'data: {"a":\ndata: 1}\ndata:\n\n') == [SseEvent("message", '{"a":\n1}\n')]


def test_one_leading_space_is_stripped_and_no_more() -> None:
    assert parse(b"data:x\n\ndata:  y \n\n") == [SseEvent("message", "x"), SseEvent("message", " y ")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": keep-alive\n\nretry: 100\nobfuscation: abc\nfoo\ndata: kept\n: between\n\n"
    assert parse(stream) == [SseEvent("message", "kept")]


def test_id_is_kept_for_later_events() -> None:
    assert parse(b"id: 7\ndata: a\n\ndata: b\n\n") == [
        SseEvent("message", "a", "7"),
        SseEvent("message", "b", "7"),
    ]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert parse(b"\n\n\r\n\r\r") == []


def test_event_without_final_blank_line_is_dispatched_at_close() -> None:
    assert parse(b"data: a\n\ndata: tail") == [SseEvent("message", "a"), SseEvent("message", "tail")]


def test_crlf_split_between_cr_and_lf() -> None:
    assert parse(b"data: a\r", b"\n\r", b"\ndata: b\r", b"\r\n") == [
        SseEvent("message", "a"),
        SseEvent("message", "b"),
    ]


def test_lone_cr_at_a_chunk_end_is_a_line_end() -> None:
    assert parse(b"data: a\r", b"\r", b"data: b\r", b"\r") == [
        SseEvent("message", "a"),
        SseEvent("message", "b"),
    ]


SAMPLE = (
    "event: response.output_text.delta\r\n"
    'data: {"delta":"18°C, naïve — 🌦️ 天気"}\r\n'
    "\r\n"
    ": ping\n"
    'data: {"a":1,\n'
    'data: "b":"ü"}\n'
    "\n"
    "data: [DONE]\r"
    "\r"
).encode()


def test_every_split_point_gives_the_same_events() -> None:
    whole = parse(SAMPLE)
    assert [e.data for e in whole] == ['{"delta":"18°C, naïve — 🌦️ 天気"}', '{"a":1,\n"b":"ü"}', "[DONE]"]
    assert whole[0].event == "response.output_text.delta"
    for cut in range(1, len(SAMPLE)):
        assert parse(SAMPLE[:cut], SAMPLE[cut:]) == whole, cut
    for cut in range(1, len(SAMPLE) - 1):
        assert parse(SAMPLE[:cut], SAMPLE[cut : cut + 1], SAMPLE[cut + 1 :]) == whole, cut


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 37])
def test_fixed_size_chunks_inside_lines_and_characters(size: int) -> None:
    assert parse(*pieces(SAMPLE, size)) == parse(SAMPLE)


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(b"data: \xff\xfe ok\n\n") == [SseEvent("message", "\ufffd\ufffd ok")]


@pytest.mark.parametrize("path", SSE_RECORDINGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recordings_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    whole = parse(data)
    assert whole, "a recording holds events"
    assert parse(*pieces(data, 1)) == whole
    assert parse(*pieces(data, 7)) == whole


def test_recordings_are_present() -> None:
    assert len(SSE_RECORDINGS) >= 14
