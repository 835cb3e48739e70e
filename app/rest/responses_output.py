"""The Responses API's answer: the response object with its output items, and the events that
stream it (`response.created`, `response.output_item.added`, `response.output_text.delta`,
`response.function_call_arguments.delta`, …, `response.completed`), as the SDK's `responses.stream`
accumulates them. The answer's text is one `message` item, each tool call a `function_call` item,
in the order they came; items of a streamed answer are numbered by `output_index`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from app.domain.calls import ToolCallDelta, ToolCallDone, Usage
from app.domain.enums import FinishReason

if TYPE_CHECKING:
    from app.rest.errors import RestError

_INCOMPLETE = {FinishReason.LENGTH: "max_output_tokens", FinishReason.CONTENT_FILTER: "content_filter"}


def finished(
    base: dict[str, Any], reason: FinishReason, output: list[dict[str, Any]], usage: Usage
) -> dict[str, Any]:
    """The response object once answered: `base` (what the request fixed) with its status and output."""
    incomplete = _INCOMPLETE.get(reason)
    return {
        **base,
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "output": output,
        "usage": {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens,
        },
    }


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    """The answer's text (None: a message just begun, no content yet)."""
    content = [] if text is None else [_text_part(text)]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def call_item(
    item_id: str, call_id: str | None, name: str | None, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponseEvents:
    """The events of one streamed response (stream_relay.Frames)."""

    terminator = b""  # the Responses API's streams end after their last event, without [DONE]

    def __init__(self, base: dict[str, Any], request_id: str) -> None:
        self.base = base
        self.request_id = request_id
        self._sequence = 0
        self._items: list[dict[str, Any]] = []  # by output_index, as they stand
        self._text: int | None = None  # the output_index of the message being written
        self._calls: dict[int, int] = {}  # a tool call's index -> its output_index
        self._done: set[int] = set()  # output_indexes of finished items

    def _event(self, kind: str, **data: Any) -> bytes:
        body = {"type": kind, "sequence_number": self._sequence, **data}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    def start(self) -> bytes:
        started = {
            **self.base,
            "status": "in_progress",
            "incomplete_details": None,
            "output": [],
            "usage": None,
        }
        return self._event("response.created", response=started) + self._event(
            "response.in_progress", response=started
        )

    def text(self, text: str) -> bytes:
        frames = b""
        if self._text is None:
            self._text = index = len(self._items)
            item = message_item(f"msg_{self.request_id}_{index}", None, "in_progress")
            self._items.append(item)
            frames += self._event("response.output_item.added", output_index=index, item=item)
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            frames += self._event("response.content_part.added", **where, part=_text_part(""))
            item["content"] = [_text_part("")]
        index = self._text
        item = self._items[index]
        item["content"][0]["text"] += text
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return frames + self._event("response.output_text.delta", **where, delta=text, logprobs=[])

    def _end_text(self, status: str = "completed") -> bytes:
        if self._text is None:
            return b""
        index, self._text = self._text, None
        item = self._items[index]
        item["status"] = status
        self._done.add(index)
        part = item["content"][0]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return (
            self._event("response.output_text.done", **where, text=part["text"], logprobs=[])
            + self._event("response.content_part.done", **where, part=part)
            + self._event("response.output_item.done", output_index=index, item=item)
        )

    def tool_call(self, event: ToolCallDelta | ToolCallDone) -> bytes:
        """Each call is its own item (so calls may interleave: the SDK keys pieces by output_index)."""
        if isinstance(event, ToolCallDone):
            frames = b""
            if event.index not in self._calls:  # a call that came whole
                call = event.call
                frames += self.tool_call(ToolCallDelta(event.index, call.arguments, call.id, call.name))
            return frames + self._end_call(self._calls[event.index])
        frames = b""
        if event.index not in self._calls:
            frames += self._end_text()
            self._calls[event.index] = index = len(self._items)
            item = call_item(f"fc_{self.request_id}_{index}", event.id, event.name, "", "in_progress")
            self._items.append(item)
            frames += self._event("response.output_item.added", output_index=index, item=item)
        index = self._calls[event.index]
        item = self._items[index]
        if event.arguments:
            item["arguments"] += event.arguments
            delta = {"item_id": item["id"], "output_index": index, "delta": event.arguments}
            frames += self._event("response.function_call_arguments.delta", **delta)
        return frames

    def _end_call(self, index: int) -> bytes:
        if index in self._done:
            return b""
        self._done.add(index)
        item = self._items[index]
        item["status"] = "completed"
        where = {"item_id": item["id"], "output_index": index}
        return self._event(
            "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
        ) + self._event("response.output_item.done", output_index=index, item=item)

    def end(self, reason: FinishReason, usage: Usage) -> bytes:
        incomplete = reason in _INCOMPLETE
        if not self._items:  # an empty answer is an empty message, as unstreamed
            self._text = None
            frames = self.text("")
        else:
            frames = b""
        frames += self._end_text("incomplete" if incomplete else "completed")
        frames += b"".join(self._end_call(index) for index in sorted(self._calls.values()))
        answer = finished(self.base, reason, self._items, usage)
        return frames + self._event(
            "response.incomplete" if incomplete else "response.completed", response=answer
        )

    def failure(self, error: RestError) -> bytes:
        # A body with an "error" object: the SDKs raise it as an APIError.
        return self._event("error", **error.body())
