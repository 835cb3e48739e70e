"""A Server-Sent Events parser (WHATWG rules) over a byte stream.

Accepts LF, CRLF and CR line ends, multi-line `data:`, comments and unknown fields, and chunk
boundaries anywhere (inside a line or a multi-byte character). Whether a stream that ends is
complete is for the wire format to say, not the parser.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


class SseParser:
    """Feed bytes, get complete events. Keeps the partial line and the pending event between feeds."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._decoder.decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = False
        buffer = self._buffer + text
        events: list[SseEvent] = []
        if "\r" not in buffer:  # LF line ends, as every provider sends: one split, no rescans
            *lines, self._buffer = buffer.split("\n")
            for line in lines:
                if (event := self._line(line)) is not None:
                    events.append(event)
            return events
        start = 0
        while (cut := _line_end(buffer, start)) is not None:
            end, sep_len = cut
            if sep_len == 1 and buffer[end] == "\r" and end + 1 == len(buffer):
                self._pending_cr = True  # may be the first half of a CRLF
            if (event := self._line(buffer[start:end])) is not None:
                events.append(event)
            start = end + sep_len
        self._buffer = buffer[start:]
        return events

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None  # `retry` and unknown fields are ignored

    def _dispatch(self) -> SseEvent | None:
        if not self._data and not self._event:
            return None
        event = SseEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
        self._event = ""
        self._data = []
        return event

    def close(self) -> list[SseEvent]:
        """At end of stream: an event without its blank line is dispatched anyway (some servers,
        e.g. Gemini and Aleph Alpha `/complete`, end with EOF rather than a final blank line)."""
        events = self.feed(b"\n") if self._buffer else []
        tail = self._dispatch()
        return [*events, tail] if tail else events


def _line_end(buffer: str, start: int) -> tuple[int, int] | None:
    """Index and length of the first line terminator (LF, CRLF or CR) from `start`, if any."""
    lf = buffer.find("\n", start)
    cr = buffer.find("\r", start)
    if cr == -1:
        return None if lf == -1 else (lf, 1)
    if lf != -1 and lf < cr:
        return lf, 1
    return (cr, 2) if buffer.startswith("\n", cr + 1) else (cr, 1)
