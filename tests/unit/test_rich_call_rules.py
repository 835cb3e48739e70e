"""The gateway's rules on rich calls that the GraphQL tests cannot reach cheaply: an image over the
size limit (larger than a GraphQL body may be) and the number of tools; a valid rich call passes."""

from __future__ import annotations

import pytest

from app.domain.calls import MAX_IMAGE_BYTES, ChatMessage, ImagePart, TextPart, ToolCall, ToolDefinition
from app.domain.enums import ChatRole
from app.domain.errors import UserInputError
from app.domain.gateway import CallOperation
from app.services.gateway.content_rules import MAX_TOOLS
from app.services.gateway.requests import CallRequest, check_call


def chat(*messages: ChatMessage, tools: tuple[ToolDefinition, ...] = ()) -> CallRequest:
    return CallRequest(CallOperation.CHAT, messages, tools=tools)


def problems(request: CallRequest) -> list[tuple[str, tuple[str, ...] | None]]:
    with pytest.raises(UserInputError) as refused:
        check_call(request)
    return [(str(e.code), e.field) for e in refused.value.errors]


def test_a_valid_agent_turn_passes() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    image = ImagePart(data=b"\x89PNG", media_type="image/png", detail="low")
    check_call(
        chat(
            ChatMessage(ChatRole.USER, parts=(TextPart("Weather here?"), image)),
            ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)),
            ChatMessage(ChatRole.TOOL, '{"temp": 21}', tool_call_id="call_1"),
            tools=(ToolDefinition("get_weather", parameters={"type": "object"}),),
        )
    )


def test_an_image_over_the_limit_is_too_long() -> None:
    image = ImagePart(data=b"x" * (MAX_IMAGE_BYTES + 1), media_type="image/png")
    assert problems(chat(ChatMessage(ChatRole.USER, parts=(image,)))) == [
        ("TOO_LONG", ("input", "messages", "0", "parts", "0", "image", "data"))
    ]


def test_at_most_so_many_tools() -> None:
    tools = tuple(ToolDefinition(f"tool_{i}") for i in range(MAX_TOOLS + 1))
    assert problems(chat(ChatMessage(ChatRole.USER, "hi"), tools=tools)) == [("TOO_LONG", ("input", "tools"))]


def test_a_tool_name_ending_in_a_line_break_is_invalid() -> None:
    # `$` would match before a final newline; the name would reach the provider with it.
    ask = ChatMessage(ChatRole.USER, "Weather?")
    assert problems(chat(ask, tools=(ToolDefinition("get_weather\n"),))) == [
        ("INVALID", ("input", "tools", "0", "name"))
    ]
