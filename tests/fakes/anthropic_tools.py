"""Tools, images and structured output in the Anthropic Messages wire format, for
`anthropic_server`: `tools` [{name, description, input_schema}], `tool_choice`
{type: auto|any|tool|none, name, disable_parallel_tool_use}, `tool_use` blocks in assistant
messages answered by `tool_result` blocks in the next user message, image blocks
{type:"image", source:{type:"base64", media_type, data} | {type:"url", url}}, and structured output
`output_config.format` {type:"json_schema", schema} (also the older beta `output_format`).
Malformed shapes are refused with the real API's `invalid_request_error` messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.fakes.tool_rules import (
    Answer,
    Asked,
    Image,
    Rejected,
    Tool,
    ToolResult,
    decoded_size,
    joined_text,
    pieces_of,
)

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_BLOCKS = ("text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking")


def read_messages(body: Mapping[str, Any]) -> Asked:
    """What a Messages request asks for; raises `Rejected` where the real API answers 400."""
    asked = Asked()
    for index, tool in enumerate(body.get("tools") or []):
        if tool.get("type") in (None, "custom"):  # server tools (web search…) take no arguments here
            asked.tools.append(_tool(tool, f"tools.{index}"))
    _choice(body.get("tool_choice"), asked, "tools" in body)
    messages = body.get("messages") or []
    for index in range(len(messages)):
        _check_message(messages, index)
    asked.results, asked.images = _last_turn(messages)
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if fmt is not None:
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), Mapping):
            raise Rejected("output_config.format.schema: Field required")
        asked.schema = fmt["schema"]
    return asked


def _tool(tool: Mapping[str, Any], where: str) -> Tool:
    if "name" not in tool:
        raise Rejected(f"{where}.name: Field required")
    if not _NAME.match(str(tool["name"])):
        raise Rejected(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
    if not isinstance(schema := tool.get("input_schema"), Mapping):
        raise Rejected(f"{where}.input_schema: Field required")
    if schema.get("type") != "object":
        raise Rejected(f"{where}.input_schema.type: Input should be 'object'")
    return Tool(tool["name"], schema)


def _choice(choice: Any, asked: Asked, tools_given: bool) -> None:
    if choice is None:
        return
    if not tools_given:
        raise Rejected("tool_choice may only be specified while providing tools.")
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise Rejected(
            f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'auto', 'any', 'tool', 'none'"
        )
    asked.parallel = not choice.get("disable_parallel_tool_use", False)
    asked.mode = {"any": "required", "none": "none"}.get(kind, "auto")
    if kind == "tool":
        if "name" not in choice:
            raise Rejected("tool_choice.tool.name: Field required")
        if choice["name"] not in {tool.name for tool in asked.tools}:
            raise Rejected(f"tool_choice.name: tool '{choice['name']}' was not provided in tools")
        asked.forced = choice["name"]


def _blocks(message: Mapping[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _check_message(messages: list[Any], index: int) -> None:
    message = messages[index]
    for number, block in enumerate(_blocks(message)):
        _check_block(block, f"messages.{index}.content.{number}", message.get("role"))
    used = [b["id"] for b in _blocks(message) if b.get("type") == "tool_use"]
    following = messages[index + 1] if index + 1 < len(messages) else None
    answered = {b.get("tool_use_id") for b in _blocks(following or {}) if b.get("type") == "tool_result"}
    if used and following is not None and (missed := [i for i in used if i not in answered]):
        raise Rejected(
            f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(missed)}. Each `tool_use` block must have a corresponding `tool_result` "
            "block in the next message."
        )
    before = messages[index - 1] if index else {}
    known = {b.get("id") for b in _blocks(before) if b.get("type") == "tool_use"}
    for number, block in enumerate(_blocks(message)):
        if block.get("type") == "tool_result" and block.get("tool_use_id") not in known:
            raise Rejected(
                f"messages.{index}.content.{number}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )


def _check_block(block: Any, where: str, role: str | None) -> None:
    kind = block.get("type") if isinstance(block, Mapping) else None
    if kind not in _BLOCKS:
        expected = ", ".join(f"'{b}'" for b in _BLOCKS)
        tags = f"Input tag '{kind}' found using 'type' does not match any of the expected tags"
        raise Rejected(f"{where}: {tags}: {expected}")
    if kind == "image":
        image(block.get("source"), f"{where}.image.source")
    elif kind == "tool_use":
        for key in ("id", "name", "input"):
            if key not in block:
                raise Rejected(f"{where}.tool_use.{key}: Field required")
        if role != "assistant":
            raise Rejected(f"{where}: tool_use blocks can only be in assistant messages")
    elif kind == "tool_result":
        if "tool_use_id" not in block:
            raise Rejected(f"{where}.tool_result.tool_use_id: Field required")
        for number, part in enumerate(block.get("content") if isinstance(block.get("content"), list) else []):
            if part.get("type") == "image":
                image(part.get("source"), f"{where}.tool_result.content.{number}.image.source")


def image(source: Any, where: str) -> Image:
    """The image a block's `source` holds; refused like the real API when it is malformed."""
    kind = source.get("type") if isinstance(source, Mapping) else None
    if kind == "url":
        if not str(source.get("url", "")).startswith(("https://", "http://")):
            raise Rejected(f"{where}.url.url: Input should be a valid URL")
        return Image(url=source["url"])
    if kind == "file":
        return Image(url=f"file:{source.get('file_id')}")
    if kind != "base64":
        raise Rejected(
            f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'base64', 'url', 'file'"
        )
    if source.get("media_type") not in _MEDIA_TYPES:
        allowed = "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
        raise Rejected(f"{where}.base64.media_type: Input should be {allowed}")
    if (size := decoded_size(source.get("data"))) is None:
        raise Rejected(f"{where}.base64.data: The image data is not valid base64")
    return Image(media_type=source["media_type"], size=size)


def _last_turn(messages: list[Any]) -> tuple[list[ToolResult], list[Image]]:
    if not messages or messages[-1].get("role") != "user":
        return [], []
    blocks = _blocks(messages[-1])
    results = [
        ToolResult(str(b["tool_use_id"]), _result_text(b.get("content")))
        for b in blocks
        if b.get("type") == "tool_result"
    ]
    if results:
        return results, []
    return [], [image(b["source"], "") for b in blocks if b.get("type") == "image"]


def _result_text(content: Any) -> str:
    return joined_text(content) if isinstance(content, list) else str(content or "")


def tool_use_blocks(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"type": "tool_use", "id": f"toolu_fake{index:014d}", "name": call.name, "input": call.arguments}
        for index, call in enumerate(answer.calls)
    ]


def tool_use_events(
    answer: Answer, first_index: int, argument_chunks: int
) -> list[tuple[str, dict[str, Any]]]:
    """Each tool_use block streamed as the real API does: its start with empty `input`, an empty
    `input_json_delta`, the input JSON in fragments, its stop."""
    events: list[tuple[str, dict[str, Any]]] = []
    for offset, (block, call) in enumerate(zip(tool_use_blocks(answer), answer.calls, strict=True)):
        index = first_index + offset
        start = {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
        events.append(("content_block_start", start))
        for piece in ["", *pieces_of(call.arguments_json, argument_chunks)]:
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events
