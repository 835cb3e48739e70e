"""Tools, images and structured output in the Bedrock Converse wire format, for `bedrock_server`:
`toolConfig` {tools: [{toolSpec: {name, description, inputSchema: {json}}}], toolChoice:
{auto: {}} | {any: {}} | {tool: {name}}}, `toolUse` blocks in assistant messages answered by
`toolResult` blocks {toolUseId, content: [{text} | {json} | {image}], status} in the next user
message, image blocks {image: {format: png|jpeg|gif|webp, source: {bytes: <base64>}}}, and
`outputConfig.textFormat` {type: "json_schema", structure: {jsonSchema: {schema: <JSON text>, name}}}.
Malformed shapes get ValidationException messages as the real service words them.
"""

from __future__ import annotations

import json
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

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_FORMATS = ("gif", "jpeg", "png", "webp")
_BLOCKS = (
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
)


def constraint(value: Any, where: str, rule: str) -> Rejected:
    shown = "null" if value is None else f"'{value}'"
    return Rejected(
        f"1 validation error detected: Value {shown} at '{where}' failed to satisfy constraint: {rule}"
    )


def read_converse(body: Mapping[str, Any]) -> Asked:
    """What a Converse request asks for; raises `Rejected` where the real service answers 400."""
    asked, config = Asked(), body.get("toolConfig")
    if config is not None:
        tools = config.get("tools") or []
        if not tools:
            raise constraint("[]", "toolConfig.tools", "Member must have length greater than or equal to 1")
        for number, tool in enumerate(tools, start=1):
            if "toolSpec" in tool:
                asked.tools.append(_tool(tool["toolSpec"], f"toolConfig.tools.{number}.member.toolSpec"))
        _choice(config.get("toolChoice"), asked)
    messages = body.get("messages") or []
    for index in range(len(messages)):
        _check_message(messages, index, config is not None)
    asked.results, asked.images = _last_turn(messages)
    text_format = (body.get("outputConfig") or {}).get("textFormat")
    if text_format is not None:
        schema = ((text_format.get("structure") or {}).get("jsonSchema") or {}).get("schema")
        try:
            asked.schema = json.loads(schema) if isinstance(schema, str) else None
        except ValueError:
            asked.schema = None
        if text_format.get("type") != "json_schema" or not isinstance(asked.schema, Mapping):
            raise Rejected(
                "The provided JSON schema in outputConfig.textFormat.structure.jsonSchema is invalid."
            )
    return asked


def _tool(spec: Mapping[str, Any], where: str) -> Tool:
    if not _NAME.match(str(spec.get("name", ""))):
        raise constraint(
            spec.get("name"),
            f"{where}.name",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
        )
    schema = (spec.get("inputSchema") or {}).get("json")
    if not isinstance(schema, Mapping):
        raise constraint(None, f"{where}.inputSchema", "Member must not be null")
    return Tool(spec["name"], schema)


def _choice(choice: Any, asked: Asked) -> None:
    if choice is None:
        return
    if (
        not isinstance(choice, Mapping)
        or len(choice) != 1
        or next(iter(choice)) not in ("auto", "any", "tool")
    ):
        raise Rejected("The toolConfig.toolChoice field must have exactly one of: auto, any, tool.")
    if "any" in choice:
        asked.mode = "required"
    elif "tool" in choice:
        name = (choice["tool"] or {}).get("name")
        if name not in {tool.name for tool in asked.tools}:
            raise Rejected(
                f"The tool {name} in toolConfig.toolChoice.tool is not defined in toolConfig.tools."
            )
        asked.forced = name


def _blocks(message: Any) -> list[Any]:
    return (message.get("content") if isinstance(message, Mapping) else None) or []


def _ids(message: Any, kind: str, key: str) -> list[str]:
    return [block[kind][key] for block in _blocks(message) if kind in block]


def _check_message(messages: list[Any], index: int, configured: bool) -> None:
    message = messages[index]
    for number, block in enumerate(_blocks(message), start=1):
        where = f"messages.{index + 1}.member.content.{number}.member"
        if not isinstance(block, Mapping) or len(block) != 1 or next(iter(block)) not in _BLOCKS:
            at = f"messages.{index}.content.{number - 1}"
            raise Rejected(f"The content block at {at} must have exactly one known member.")
        if ("toolUse" in block or "toolResult" in block) and not configured:
            raise Rejected(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks."
            )
        if "image" in block:
            image(block["image"], f"{where}.image")
        for part in (block.get("toolResult") or {}).get("content") or []:
            if "image" in part:
                image(part["image"], f"{where}.toolResult.content.member.image")
    results = _ids(message, "toolResult", "toolUseId")
    uses = _ids(messages[index - 1], "toolUse", "toolUseId") if index else []
    if len(results) > len(uses):
        raise Rejected(
            f"The number of toolResult blocks at messages.{index}.content exceeds the number of toolUse "
            "blocks of previous turn."
        )
    if uses and (missed := [i for i in uses if i not in results]):
        at = f"messages.{index}.content"
        raise Rejected(f"Expected toolResult blocks at {at} for the following Ids: {', '.join(missed)}")


def image(block: Mapping[str, Any], where: str) -> Image:
    if block.get("format") not in _FORMATS:
        raise constraint(
            block.get("format"),
            f"{where}.format",
            f"Member must satisfy enum value set: [{', '.join(_FORMATS)}]",
        )
    source = block.get("source") or {}
    if "s3Location" in source:
        return Image(url=source["s3Location"].get("uri"))
    if (size := decoded_size(source.get("bytes"))) is None:
        raise Rejected(f"Invalid base64 image bytes at {where}.source.bytes.")
    return Image(media_type=f"image/{block['format']}", size=size)


def _last_turn(messages: list[Any]) -> tuple[list[ToolResult], list[Image]]:
    if not messages or messages[-1].get("role") != "user":
        return [], []
    blocks = _blocks(messages[-1])
    results = [
        ToolResult(b["toolResult"]["toolUseId"], joined_text(b["toolResult"].get("content") or []))
        for b in blocks
        if "toolResult" in b
    ]
    if results:
        return results, []
    return [], [image(b["image"], "") for b in blocks if "image" in b]


def tool_use_id(index: int) -> str:
    return f"tooluse_fake{index:014d}"


def tool_use_blocks(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"toolUse": {"toolUseId": tool_use_id(index), "name": call.name, "input": call.arguments}}
        for index, call in enumerate(answer.calls)
    ]


def tool_use_events(
    answer: Answer, first_index: int, argument_chunks: int
) -> list[tuple[str, dict[str, Any]]]:
    """Each toolUse block streamed: contentBlockStart with its id and name, the input JSON in
    contentBlockDelta fragments, contentBlockStop."""
    events: list[tuple[str, dict[str, Any]]] = []
    for offset, call in enumerate(answer.calls):
        index = first_index + offset
        start = {"toolUse": {"toolUseId": tool_use_id(offset), "name": call.name}}
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        for piece in pieces_of(call.arguments_json, argument_chunks):
            events.append(
                ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})
            )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    return events
