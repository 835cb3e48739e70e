"""Tools, images and structured output in the OpenAI Responses API, for `openai_server`: flat
function tools ({type:"function", name, description, parameters, strict}), `tool_choice`
"auto"|"none"|"required"|{type:"function", name}, `function_call` / `function_call_output` input
items, `input_image` parts (`image_url` as an https or data URL, or a `file_id`), `text.format`
text|json_object|json_schema ({type, name, schema, strict}); answers with `function_call` output
items, streamed as `response.output_item.added` + `response.function_call_arguments.delta`… +
`.done` + `response.output_item.done`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.openai_tools import (
    call_id,
    choice_of,
    function_tool,
    image,
    invalid_value,
    listed,
    missing,
    parallel_of,
    schema_format,
)
from tests.fakes.tool_rules import Answer, Asked, Image, Rejected, ToolResult, pieces_of

_CONTENT_TYPES = "'input_text', 'input_image', 'output_text', 'refusal', 'input_file', and 'input_audio'"


def read_responses(body: Mapping[str, Any]) -> Asked:
    """What a Responses request asks for; raises `Rejected` where the real API answers 400."""
    asked = Asked()
    if (tools := body.get("tools")) is not None:
        for index, tool in enumerate(listed(tools, "tools")):
            where = f"tools[{index}]"
            if not isinstance(tool, Mapping) or tool.get("type") != "function":
                continue  # built-in tools (web search, file search…) have no arguments to make
            asked.tools.append(function_tool(tool, where, f"{where}.parameters"))
    asked.mode, asked.forced = choice_of(body.get("tool_choice"), asked.tools, "openai", nested=False)
    asked.parallel = parallel_of(body, asked.tools)
    items = body.get("input", [])
    items = [{"role": "user", "content": items}] if isinstance(items, str) else listed(items, "input")
    calls: set[str] = set()
    for index, item in enumerate(items):
        _check_item(item, f"input[{index}]", calls, bool(body.get("previous_response_id")))
    asked.results, asked.images = _last_turn(items)
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, Mapping) else None
        if kind == "json_schema":
            asked.schema = schema_format(fmt, "text.format", "text.format.schema")
        elif kind == "json_object":
            asked.json_mode = True
        elif kind != "text":
            raise invalid_value("text.format.type", kind, "'text', 'json_schema', and 'json_object'")
    return asked


def _check_item(item: Any, where: str, calls: set[str], continued: bool) -> None:
    if not isinstance(item, Mapping):
        raise invalid_value(where, item, "an input item object")
    kind = item.get("type", "message")
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if key not in item:
                raise missing(f"{where}.{key}")
        calls.add(item["call_id"])
    elif kind == "function_call_output":
        if "call_id" not in item:
            raise missing(f"{where}.call_id")
        if item["call_id"] not in calls and not continued:
            raise Rejected(
                f"No tool call found for function call output with call_id {item['call_id']}.", param="input"
            )
    elif kind == "message" and isinstance(content := item.get("content"), list):
        for number, part in enumerate(content):
            _check_part(part, f"{where}.content[{number}]")


def _check_part(part: Any, where: str) -> None:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "input_image":
        if "image_url" in part:
            image(part["image_url"], f"{where}.image_url")
        elif "file_id" not in part:
            raise missing(f"{where}.image_url")
    elif kind not in ("input_text", "output_text", "refusal", "input_file", "input_audio"):
        raise invalid_value(f"{where}.type", kind, _CONTENT_TYPES)


def _last_turn(items: list[Any]) -> tuple[list[ToolResult], list[Image]]:
    results = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        results.insert(0, ToolResult(str(item["call_id"]), str(item.get("output", ""))))
    last = items[-1] if items else {}
    if results or last.get("type", "message") != "message" or last.get("role") != "user":
        return results, []
    content = last.get("content")
    parts = [p for p in content if p.get("type") == "input_image"] if isinstance(content, list) else []
    return [], [image(p["image_url"], "") if "image_url" in p else Image(url=p["file_id"]) for p in parts]


def function_call_items(answer: Answer, *, done: bool) -> list[dict[str, Any]]:
    """The `function_call` output items of a tool-call answer (in progress: empty arguments)."""
    return [
        {
            "id": f"fc_fake{index:04d}",
            "type": "function_call",
            "status": "completed" if done else "in_progress",
            "arguments": call.arguments_json if done else "",
            "call_id": call_id("openai", index),
            "name": call.name,
        }
        for index, call in enumerate(answer.calls)
    ]


def function_call_events(answer: Answer, argument_chunks: int) -> list[tuple[str, dict[str, Any]]]:
    """The events that stream the `function_call` items, between `response.in_progress` and the end."""
    events: list[tuple[str, dict[str, Any]]] = []
    started, finished = function_call_items(answer, done=False), function_call_items(answer, done=True)
    for index, (item, final) in enumerate(zip(started, finished, strict=True)):
        where = {"item_id": item["id"], "output_index": index}
        events.append(("response.output_item.added", {"item": item, "output_index": index}))
        for piece in pieces_of(final["arguments"], argument_chunks):
            events.append(
                ("response.function_call_arguments.delta", {**where, "delta": piece, "obfuscation": "x"})
            )
        events.append(("response.function_call_arguments.done", {**where, "arguments": final["arguments"]}))
        events.append(("response.output_item.done", {"item": final, "output_index": index}))
    return events
