"""The Anthropic Messages request body and answer, for `anthropic`: text, image blocks, `tool_use`
blocks and the `tool_result` blocks that answer them, tools and tool choice, and structured output
through a forced tool (`tool_use`).

Images are sent as URL or base64 sources; Anthropic fetches a URL itself, so Modelgate never does.
"""

from __future__ import annotations

import base64
from typing import Any

from app.domain.calls import ChatMessage, ContentPart, ImagePart, ToolChoice, ToolChoiceMode, ToolDefinition
from app.domain.enums import ChatRole, FinishReason
from app.providers.base import ChatRequest, Completion, ProviderTarget
from app.providers.tool_use import AnswerBlocks, ToolPlan, arguments_input, input_schema, refused

# Anthropic requires max_tokens; this applies when neither the request nor the model sets one.
DEFAULT_MAX_TOKENS = 4096

_CHOICE_TYPES = {
    ToolChoiceMode.AUTO: "auto",
    ToolChoiceMode.NONE: "none",
    ToolChoiceMode.REQUIRED: "any",
    ToolChoiceMode.TOOL: "tool",
}


def messages_body(target: ProviderTarget, request: ChatRequest, plan: ToolPlan) -> dict[str, Any]:
    """The request body: system text (the composed prompt, then any SYSTEM messages) goes to `system`;
    consecutive turns of one role are merged, since the API wants user and assistant to alternate
    (TOOL turns are user turns of `tool_result` blocks). A turn of text only stays one string."""
    system = [request.system_prompt] if request.system_prompt else []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in request.messages:
        if message.role == ChatRole.SYSTEM:
            system.append(message.text)
            continue
        role = "assistant" if message.role == ChatRole.ASSISTANT else "user"
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(_blocks(message))
        else:
            turns.append((role, _blocks(message)))
    body: dict[str, Any] = {
        "model": target.settings.get("customModel") or target.provider_model_id,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": role, "content": _content(blocks)} for role, blocks in turns],
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if plan.tools:
        body["tools"] = [_tool(tool) for tool in plan.tools]
        if (choice := _tool_choice(plan, request.parallel_tool_calls)) is not None:
            body["tool_choice"] = choice
    return body


def _tool(tool: ToolDefinition) -> dict[str, Any]:
    described = {"description": tool.description} if tool.description else {}
    return {"name": tool.name, **described, "input_schema": input_schema(tool)}


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == ChatRole.TOOL:
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text}]
    if not message.parts and not message.tool_calls:
        return [{"type": "text", "text": message.content}]  # kept even when empty, as before tools
    blocks = [_part(part) for part in message.content_parts()]
    blocks += [
        {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments_input(call)}
        for call in message.tool_calls
    ]
    return blocks


def _part(part: ContentPart) -> dict[str, Any]:
    if not isinstance(part, ImagePart):
        return {"type": "text", "text": part.text}
    if part.url is not None:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    if part.data is None or part.media_type is None:
        raise refused("an image needs a URL, or data with its media type")
    data = base64.b64encode(part.data).decode()
    return {"type": "image", "source": {"type": "base64", "media_type": part.media_type, "data": data}}


def _content(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(block["type"] == "text" for block in blocks):
        return "\n\n".join(block["text"] for block in blocks)
    # An empty text block is refused by the API; a turn of images or tool blocks needs none.
    return [block for block in blocks if block["type"] != "text" or block["text"]]


def _tool_choice(plan: ToolPlan, parallel: bool | None) -> dict[str, Any] | None:
    if plan.choice is None and parallel is not False:
        return None  # the API's default: auto
    choice = plan.choice or ToolChoice()
    result: dict[str, Any] = {"type": _CHOICE_TYPES[choice.mode]}
    if choice.mode is ToolChoiceMode.TOOL:
        result["name"] = choice.name
    if choice.mode is not ToolChoiceMode.NONE and (parallel is False or plan.forced_answer):
        result["disable_parallel_tool_use"] = True  # one answer, or as the caller asked
    return result


def completion_of(data: dict[str, Any], plan: ToolPlan, finish: FinishReason, usage: Any) -> Completion:
    answer = AnswerBlocks(plan.answer_tool)
    for block in data["content"]:
        if block.get("type") == "text":
            answer.text(block["text"])
        elif block.get("type") == "tool_use":
            answer.tool_use(block["id"], block["name"], block.get("input"))
    return Completion("".join(answer.texts), answer.finish(finish), usage, tuple(answer.calls))
