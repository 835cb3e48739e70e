"""The body of POST /v1/responses (OpenAI's Responses API), with OpenAI's names, and the call it asks for.

`input` is a string or a list of items: messages (`{role, content}`, content a string or
`input_text`/`input_image`/`output_text` parts), `function_call` items (an earlier answer's calls,
sent back) and `function_call_output` items (their results). Tools are flat
(`{"type": "function", "name", "parameters", …}`), the tool choice names a function flatly, and the
answer's format is `text.format`. `instructions` become the system message. Modelgate keeps no
responses: `previous_response_id` is refused (send the conversation as `input`), `store` is ignored.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.domain.calls import (
    ChatMessage,
    ContentPart,
    ImagePart,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
)
from app.domain.enums import ChatRole
from app.domain.gateway import CallOperation, ModelRef
from app.rest.chat_messages import image_part
from app.rest.chat_tools import function_definitions, schema_format, tool_choice
from app.rest.errors import invalid, missing
from app.services.gateway.requests import CallRequest

_ROLES = {
    "system": ChatRole.SYSTEM,
    "developer": ChatRole.SYSTEM,
    "user": ChatRole.USER,
    "assistant": ChatRole.ASSISTANT,
}


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Part(_Shape):
    type: Literal["input_text", "output_text", "input_image"]
    text: str | None = None
    image_url: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    # An earlier answer's output_text, sent back: accepted and ignored.
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None
    parsed: Any = None


class Item(_Shape):
    type: Literal["message", "function_call", "function_call_output"] = "message"
    role: Literal["system", "developer", "user", "assistant"] | None = None
    content: str | list[Part] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    # An earlier answer's item, sent back: accepted and ignored.
    id: str | None = None
    status: str | None = None
    parsed_arguments: Any = None


class FlatTool(_Shape):
    type: Literal["function"]  # first: a built-in tool (web search, …) is refused for its type
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(_Shape):
    type: Literal["function"]
    name: str


class FlatFormat(_Shape):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None  # required with json_schema
    # `schema` would shadow a BaseModel attribute: read under another name.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None  # accepted; no provider takes it apart from the schema


class TextOptions(_Shape):
    format: FlatFormat | None = None
    verbosity: str | None = None  # ignored


class ResponsesRequest(_Shape):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    input: str | list[Item]
    instructions: str | None = None
    tools: list[FlatTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    parallel_tool_calls: StrictBool | None = None
    text: TextOptions | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    stream: bool | None = None
    previous_response_id: str | None = None
    # Accepted and ignored.
    store: bool | None = None
    metadata: dict[str, Any] | None = None
    user: str | None = None
    top_p: float | None = None
    truncation: str | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    include: list[str] | None = None

    @field_validator("previous_response_id")
    @classmethod
    def _no_previous(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("Modelgate keeps no responses: send the whole conversation as 'input'")
        return value


def call_request(body: ResponsesRequest, project_id: UUID | None) -> CallRequest:
    tools = function_definitions(list(body.tools or ()), "tools[{}]")
    choice = body.tool_choice
    fmt = body.text.format if body.text else None
    return CallRequest(
        operation=CallOperation.CHAT_STREAM if body.stream else CallOperation.CHAT,
        messages=_messages(body),
        model=ModelRef.parse(body.model),
        project_id=project_id,
        temperature=body.temperature,
        max_tokens=body.max_output_tokens,
        tools=tools,
        tool_choice=tool_choice(
            choice if isinstance(choice, str) else None,
            choice.name if isinstance(choice, NamedFunction) else None,
            tools,
        ),
        parallel_tool_calls=body.parallel_tool_calls if tools else None,
        response_format=_format(fmt),
        # A streamed answer cannot take back text already sent: fail over only before it.
        fail_over_after_text=False,
    )


def _messages(body: ResponsesRequest) -> tuple[ChatMessage, ...]:
    messages = [ChatMessage(ChatRole.SYSTEM, body.instructions)] if body.instructions else []
    if isinstance(body.input, str):
        return (*messages, ChatMessage(ChatRole.USER, body.input))
    for index, item in enumerate(body.input):
        where = f"input[{index}]"
        if item.type == "function_call":
            call = _call(item, where)
            last = messages[-1] if messages else None
            if last is not None and last.role is ChatRole.ASSISTANT and not last.parts:
                # The calls of one answer (and its text) are one assistant turn.
                messages[-1] = ChatMessage(
                    ChatRole.ASSISTANT, last.content, tool_calls=(*last.tool_calls, call)
                )
            else:
                messages.append(ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)))
        elif item.type == "function_call_output":
            if item.call_id is None:
                raise missing(f"{where}.call_id")
            if item.output is None:
                raise missing(f"{where}.output")
            messages.append(ChatMessage(ChatRole.TOOL, item.output, tool_call_id=item.call_id))
        else:
            messages.append(_message(item, where))
    return tuple(messages)


def _call(item: Item, where: str) -> ToolCall:
    if item.call_id is None:
        raise missing(f"{where}.call_id")
    if item.name is None:
        raise missing(f"{where}.name")
    if item.arguments is None:
        raise missing(f"{where}.arguments")
    return ToolCall(item.call_id, item.name, item.arguments)


def _message(item: Item, where: str) -> ChatMessage:
    if item.role is None:
        raise missing(f"{where}.role")
    if item.content is None:
        raise missing(f"{where}.content")
    role = _ROLES[item.role]
    if isinstance(item.content, str):
        return ChatMessage(role, item.content)
    parts = tuple(_part(p, f"{where}.content[{n}]", item.role) for n, p in enumerate(item.content))
    if any(isinstance(p, ImagePart) for p in parts):
        return ChatMessage(role, parts=parts)
    return ChatMessage(role, "\n".join(p.text for p in parts if isinstance(p, TextPart)))


def _part(part: Part, where: str, role: str) -> ContentPart:
    if part.type != "input_image":
        if part.text is None:
            raise missing(f"{where}.text")
        return TextPart(part.text)
    if role != "user":
        raise invalid(f"{where}.type", f"images are only allowed in user messages, not in {role} messages")
    if part.image_url is None:
        raise missing(f"{where}.image_url")
    return image_part(part.image_url, part.detail, f"{where}.image_url")


def _format(fmt: FlatFormat | None) -> ResponseFormat | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat(ResponseFormatType.JSON_OBJECT)
    if fmt.name is None:
        raise missing("text.format.name")
    return schema_format(fmt.name, fmt.schema_, fmt.strict, "text.format")
