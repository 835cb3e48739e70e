"""The Converse request arguments and answer, for `bedrock`: text, image blocks, `toolUse` blocks and
the `toolResult` blocks that answer them, `toolConfig`, and structured output through a forced tool
(`tool_use`).

Converse takes images only as bytes (or S3 locations), so an image URL is downloaded by
`inline_image`, through the outbound guard and under its type and size limits.
"""

from __future__ import annotations

from typing import Any

from app.domain.calls import ChatMessage, ImagePart, ToolChoiceMode, Usage
from app.domain.enums import ChatRole, FinishReason
from app.providers.base import ChatRequest, Completion
from app.providers.http import UpstreamHttp
from app.providers.inline_images import inline_image
from app.providers.tool_use import AnswerBlocks, ToolPlan, arguments_input, input_schema


async def converse_arguments(
    model_id: str, request: ChatRequest, plan: ToolPlan, http: UpstreamHttp
) -> dict[str, Any]:
    """Converse keeps system text apart from the turns, and wants the turns to alternate, so
    consecutive messages of one role become one turn of several blocks (TOOL turns are user turns
    of `toolResult` blocks)."""
    system = [{"text": request.system_prompt}] if request.system_prompt else []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role is ChatRole.SYSTEM:
            system.append({"text": message.text})
            continue
        role = "assistant" if message.role is ChatRole.ASSISTANT else "user"
        blocks = await _blocks(message, http)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    arguments: dict[str, Any] = {"modelId": model_id, "messages": messages}
    if system:
        arguments["system"] = system
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if inference:
        arguments["inferenceConfig"] = inference
    if (config := _tool_config(plan, messages)) is not None:
        arguments["toolConfig"] = config
    return arguments


async def _blocks(message: ChatMessage, http: UpstreamHttp) -> list[dict[str, Any]]:
    if message.role is ChatRole.TOOL:
        result = {"toolUseId": message.tool_call_id, "content": [{"text": message.text}]}
        return [{"toolResult": result}]
    if not message.parts and not message.tool_calls:
        return [{"text": message.content}]
    blocks: list[dict[str, Any]] = []
    for part in message.content_parts():
        if isinstance(part, ImagePart):
            image = await inline_image(http, part)
            # image/png -> png; the four types inline_image allows are Converse's four formats.
            blocks.append(
                {"image": {"format": image.media_type.split("/")[1], "source": {"bytes": image.data}}}
            )
        elif part.text:  # Converse refuses a blank text block
            blocks.append({"text": part.text})
    blocks += [
        {"toolUse": {"toolUseId": call.id, "name": call.name, "input": arguments_input(call)}}
        for call in message.tool_calls
    ]
    return blocks


def _tool_config(plan: ToolPlan, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`toolConfig`, or None. Converse has no tool choice "none": without tools the model cannot
    call one, so NONE leaves the tools out — unless the conversation holds toolUse or toolResult
    blocks, which Converse refuses without a toolConfig; then the tools go with the default choice
    (auto) and the model may still call one. Converse has no switch for parallel calls either."""
    if not plan.tools:
        return None
    mode = plan.choice.mode if plan.choice else None
    if mode is ToolChoiceMode.NONE and not _has_tool_blocks(messages):
        return None
    tools = [
        {
            "toolSpec": {
                "name": tool.name,
                **({"description": tool.description} if tool.description else {}),
                "inputSchema": {"json": input_schema(tool)},
            }
        }
        for tool in plan.tools
    ]
    config: dict[str, Any] = {"tools": tools}
    if mode is ToolChoiceMode.AUTO:
        config["toolChoice"] = {"auto": {}}
    elif mode is ToolChoiceMode.REQUIRED:
        config["toolChoice"] = {"any": {}}
    elif mode is ToolChoiceMode.TOOL and plan.choice is not None:
        config["toolChoice"] = {"tool": {"name": plan.choice.name}}
    return config


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def completion_of(response: dict[str, Any], plan: ToolPlan, finish: FinishReason, usage: Usage) -> Completion:
    answer = AnswerBlocks(plan.answer_tool)
    for block in response["output"]["message"]["content"]:
        if "text" in block:
            answer.text(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            answer.tool_use(use["toolUseId"], use["name"], use.get("input"))
        # reasoningContent, citations and the like are not part of the answer text.
    return Completion("".join(answer.texts), answer.finish(finish), usage, tuple(answer.calls))
