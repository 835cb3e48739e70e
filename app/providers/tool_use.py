"""Tool use as content blocks, shared by Anthropic Messages and Bedrock Converse: both write a tool
call as a block of the answer (`tool_use` / `toolUse`) whose input streams as JSON fragments, and
both take structured output best as a forced tool.

Structured output by forced tool: a JSON_OBJECT or JSON_SCHEMA response format adds the tool
`ANSWER_TOOL` (the schema, or any object, as its input schema) and a tool choice that makes the
model call it; the adapter turns that tool's input back into the answer text, with finish STOP, so
a caller sees JSON text exactly as from a provider with a native JSON mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.domain.calls import (
    ProviderError,
    ProviderErrorCode,
    ResponseFormatType,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import FinishReason
from app.providers.base import ChatRequest

ANSWER_TOOL = "json_answer"
_ANSWER_DESCRIPTION = "Give your answer by calling this tool: its input is the answer, as JSON."


def refused(message: str) -> ProviderError:
    """The request cannot be written in this wire format: no other attempt would do better."""
    return ProviderError(ProviderErrorCode.BAD_REQUEST, message, retryable=False)


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """The tools and choice to send: the caller's, plus the answer tool when the answer is JSON."""

    tools: tuple[ToolDefinition, ...]
    choice: ToolChoice | None
    answer_tool: str | None = None  # the tool whose input is the answer text

    @property
    def forced_answer(self) -> bool:
        return self.answer_tool is not None and self.choice == ToolChoice(
            ToolChoiceMode.TOOL, self.answer_tool
        )


def plan_tools(request: ChatRequest) -> ToolPlan:
    """Where the caller forces a tool call (REQUIRED or a named tool), the answer is that call, not
    JSON text, so no answer tool is added. With tools the model may call (AUTO), it must call one:
    one of them or the answer tool. Without (none given, or NONE), it must call the answer tool."""
    fmt = request.response_format
    if fmt is None or fmt.type is ResponseFormatType.TEXT:
        return ToolPlan(request.tools, request.tool_choice)
    mode = request.tool_choice.mode if request.tool_choice else ToolChoiceMode.AUTO
    if request.tools and mode in (ToolChoiceMode.REQUIRED, ToolChoiceMode.TOOL):
        return ToolPlan(request.tools, request.tool_choice)
    if any(tool.name == ANSWER_TOOL for tool in request.tools):
        raise refused(f"the tool name {ANSWER_TOOL!r} is reserved for structured output here")
    schema: Mapping[str, Any] = {"type": "object"}
    if fmt.type is ResponseFormatType.JSON_SCHEMA:
        schema = fmt.schema or {}
        if schema.get("type") != "object":
            # The answer travels as a tool's input, which must be an object.
            raise refused("a JSON Schema response format must describe an object for this provider")
    answer = ToolDefinition(ANSWER_TOOL, _ANSWER_DESCRIPTION, schema)
    if request.tools and mode is ToolChoiceMode.AUTO:
        return ToolPlan((*request.tools, answer), ToolChoice(ToolChoiceMode.REQUIRED), ANSWER_TOOL)
    return ToolPlan((*request.tools, answer), ToolChoice(ToolChoiceMode.TOOL, ANSWER_TOOL), ANSWER_TOOL)


def input_schema(tool: ToolDefinition) -> dict[str, Any]:
    """A tool's parameters as the object schema both APIs require (none: an object without fields)."""
    return {"type": "object", **(tool.parameters or {"properties": {}})}


def arguments_input(call: ToolCall) -> dict[str, Any]:
    """An earlier tool call's arguments as the input object the API wants back."""
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise refused(f"the arguments of tool call {call.id!r} are not a JSON object")
    return value


def input_json(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()


@dataclass(slots=True)
class AnswerBlocks:
    """The blocks of one answer read in order: text, tool calls and the answer tool's JSON."""

    answer_tool: str | None
    texts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)

    def text(self, text: str) -> None:
        if self.answer_tool is None:  # a forced answer tool leaves no room for prose
            self.texts.append(text)

    def tool_use(self, call_id: str, name: str, value: Any) -> None:
        if name == self.answer_tool:
            self.texts.append(input_json(value))
        else:
            self.calls.append(ToolCall(call_id, name, input_json(value)))

    def finish(self, finish: FinishReason) -> FinishReason:
        return finish_reason(finish, self.answer_tool, bool(self.calls))


def finish_reason(finish: FinishReason, answer_tool: str | None, called: bool) -> FinishReason:
    """A stop for tool use ends an answer given through the answer tool: that answer is text."""
    answered = answer_tool is not None and not called
    return FinishReason.STOP if finish is FinishReason.TOOL_CALLS and answered else finish


class StreamedBlocks:
    """Maps the content blocks of a streamed answer to events: tool calls are numbered among the
    answer's tool calls (not by block index), the answer tool's input fragments become text."""

    def __init__(self, answer_tool: str | None) -> None:
        self._answer_tool = answer_tool
        self._calls: dict[int, int] = {}  # block index -> position among the tool calls
        self._answer_blocks: set[int] = set()
        self._with_arguments: set[int] = set()  # positions that had argument text

    def text(self, text: str) -> TextDelta | None:
        return TextDelta(text) if text and self._answer_tool is None else None

    def start(self, block: int, call_id: str, name: str) -> ToolCallDelta | None:
        if name == self._answer_tool:
            self._answer_blocks.add(block)
            return None
        position = self._calls[block] = len(self._calls)
        return ToolCallDelta(position, id=call_id, name=name)

    def input(self, block: int, fragment: str) -> TextDelta | ToolCallDelta | None:
        if not fragment:
            return None
        if block in self._answer_blocks:
            return TextDelta(fragment)
        position = self._calls[block]
        self._with_arguments.add(position)
        return ToolCallDelta(position, arguments=fragment)

    def finish(self, finish: FinishReason) -> tuple[list[ToolCallDelta], FinishReason]:
        """The closing events: a call streamed without input has the arguments `{}`."""
        empty = [
            ToolCallDelta(p, arguments="{}") for p in self._calls.values() if p not in self._with_arguments
        ]
        return empty, finish_reason(finish, self._answer_tool, bool(self._calls))
