"""The call vocabulary in Google's Gemini wire format (`generateContent`, Gemini API and Vertex AI),
both ways: the request body, and the function calls of an answer.

Requests: turns alternate `user` and `model` (consecutive turns of one role become one content);
assistant tool calls are `functionCall` parts {name, args} of a model turn, tool results are
`functionResponse` parts {name, response} of the next user turn, in the order of the calls (Gemini
pairs them by name and order: the name is found from the call the result answers, and `response`
must be an object). Neither carries the call's `id`: answers may have one, but both the Gemini API
and Vertex AI refuse it in a request ("Unknown name "id" at '…function_call'"). Images are
`inlineData` {mimeType, data}: `fileData` takes only Files-API or gs:// URIs, not a web URL, so an
image URL is downloaded through the outbound guard (`inline_images`). Tools are
`functionDeclarations` with `parametersJsonSchema` (full JSON Schema; `parameters` is an OpenAPI
subset that refuses `additionalProperties`, `$ref`, …), the choice is
`toolConfig.functionCallingConfig`; structured output is `responseMimeType` application/json plus
`responseJsonSchema` (again full JSON Schema, where `responseSchema` is the subset).

Answers: `functionCall` parts arrive whole, also when streamed. Gemini 3 signs its calls
(`thoughtSignature`) and refuses a conversation whose model turn lost the signature; callers keep
only the tool call's id, so the signature travels inside it (`<id>__thought__<signature>`, as
LiteLLM does) and is put back on the part when the call comes back.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.calls import (
    ChatMessage,
    ImagePart,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import ChatRole
from app.providers.base import ChatRequest
from app.providers.http import UpstreamHttp
from app.providers.inline_images import inline_image

SIGNATURE_SEPARATOR = "__thought__"
_MODES = {ToolChoiceMode.AUTO: "AUTO", ToolChoiceMode.NONE: "NONE", ToolChoiceMode.REQUIRED: "ANY"}


def _refused(message: str) -> ProviderError:
    return ProviderError(ProviderErrorCode.BAD_REQUEST, message, retryable=False)


async def generate_content_body(request: ChatRequest, http: UpstreamHttp) -> dict[str, Any]:
    """System text (the composed prompt, then any SYSTEM messages) goes to `systemInstruction`."""
    system = [request.system_prompt] if request.system_prompt else []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call id -> function name, of the calls so far (the latest wins)
    for message in _results_in_call_order(request.messages):
        if message.role == ChatRole.SYSTEM:
            system.append(message.text)
            continue
        role = "model" if message.role == ChatRole.ASSISTANT else "user"
        parts = await _parts(message, names, http)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in request.tools]}]
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    config.update(_output_config(request.response_format))
    if config:
        body["generationConfig"] = config
    return body


def _results_in_call_order(messages: tuple[ChatMessage, ...]) -> list[ChatMessage]:
    """The messages with each run of tool results in the order of the calls they answer: Gemini
    pairs results with calls by name and position, not by id."""
    ordered: list[ChatMessage] = []
    results: list[ChatMessage] = []
    positions: dict[str, int] = {}
    for message in (*messages, None):
        if message is not None and message.role == ChatRole.TOOL:
            results.append(message)
            continue
        ordered += sorted(
            results, key=lambda result: positions.get(result.tool_call_id or "", len(positions))
        )
        results = []
        if message is not None:
            if message.tool_calls:
                positions = {call.id: index for index, call in enumerate(message.tool_calls)}
            ordered.append(message)
    return ordered


async def _parts(message: ChatMessage, names: dict[str, str], http: UpstreamHttp) -> list[dict[str, Any]]:
    if message.role == ChatRole.TOOL:  # an image of a result follows its functionResponse
        return [_function_response(message, names), *[await _image(i, http) for i in message.images]]
    parts = await _content_parts(message, http, empty_text=not message.tool_calls)
    for call in message.tool_calls:
        names[call.id] = call.name
        parts.append(_function_call(call))
    return parts


async def _content_parts(
    message: ChatMessage, http: UpstreamHttp, *, empty_text: bool
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.content_parts():
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        else:
            parts.append(await _image(part, http))
    if not parts and empty_text:  # a turn needs a part; a model turn of calls has its calls
        parts.append({"text": ""})
    return parts


async def _image(image: ImagePart, http: UpstreamHttp) -> dict[str, Any]:
    inline = await inline_image(http, image)
    return {"inlineData": {"mimeType": inline.media_type, "data": base64.b64encode(inline.data).decode()}}


def _function_call(call: ToolCall) -> dict[str, Any]:
    call_id, _, signature = call.id.partition(SIGNATURE_SEPARATOR)
    try:
        args = orjson.loads(call.arguments) if call.arguments.strip() else {}
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise _refused(f"the arguments of tool call {call_id!r} are not a JSON object")
    part: dict[str, Any] = {"functionCall": {"name": call.name, "args": args}}
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(message: ChatMessage, names: Mapping[str, str]) -> dict[str, Any]:
    call_id = message.tool_call_id or ""
    name = names.get(call_id)
    if name is None:
        raise _refused(f"the tool result for {call_id!r} answers no earlier tool call")
    text = message.text
    try:
        result = orjson.loads(text)
    except orjson.JSONDecodeError:
        result = None
    # `response` must be an object: a JSON object result as it is, any other text under "output"
    # (the key Google's documentation suggests).
    response = result if isinstance(result, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _declaration(tool: ToolDefinition) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    if tool.parameters:
        declaration["parametersJsonSchema"] = dict(tool.parameters)
    return declaration


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode == ToolChoiceMode.TOOL:
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": _MODES[choice.mode]}


def _output_config(response_format: ResponseFormat | None) -> dict[str, Any]:
    if response_format is None or response_format.type == ResponseFormatType.TEXT:
        return {}
    config: dict[str, Any] = {"responseMimeType": "application/json"}
    if response_format.type == ResponseFormatType.JSON_SCHEMA and response_format.schema is not None:
        config["responseJsonSchema"] = dict(response_format.schema)
    return config


# --- Answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A `functionCall` part of an answer, as Gemini sent it."""

    id: str | None
    name: str
    arguments: str  # the args, as JSON text
    signature: str | None


def function_calls(parts: list[dict[str, Any]]) -> list[FunctionCall]:
    calls = []
    for part in parts:
        call = part.get("functionCall")
        if call is None:
            continue
        arguments = orjson.dumps(call.get("args") or {}).decode()
        calls.append(FunctionCall(call.get("id"), call["name"], arguments, part.get("thoughtSignature")))
    return calls


class CallIds:
    """The ids of one answer's tool calls: Gemini's own where it gives one (Vertex, newer models),
    else `call_<answer>_<index>`, unique across the conversation (a fallback provider may need that)
    and the same for every chunk of a stream."""

    def __init__(self) -> None:
        self._answer = secrets.token_hex(8)

    def tool_call(self, index: int, call: FunctionCall) -> ToolCall:
        call_id = call.id or f"call_{self._answer}_{index}"
        if call.signature:
            call_id += SIGNATURE_SEPARATOR + call.signature
        return ToolCall(call_id, call.name, call.arguments)
