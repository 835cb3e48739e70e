"""Structured output by forced tool, as Anthropic and Bedrock take it: which tools and which choice
a request's response format and tool choice make (no I/O)."""

from __future__ import annotations

import pytest

from app.domain.calls import (
    ChatMessage,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    ResponseFormatType,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.enums import ChatRole
from app.providers.base import ChatRequest
from app.providers.tool_use import ANSWER_TOOL, plan_tools

WEATHER = ToolDefinition("get_weather", None, {"type": "object", "properties": {}})
ASK = (ChatMessage(ChatRole.USER, "Hi"),)
JSON_OBJECT = ResponseFormat(ResponseFormatType.JSON_OBJECT)


def test_text_keeps_the_callers_tools_and_choice() -> None:
    choice = ToolChoice(ToolChoiceMode.NONE)
    request = ChatRequest(ASK, tools=(WEATHER,), tool_choice=choice, response_format=ResponseFormat())

    plan = plan_tools(request)

    assert (plan.tools, plan.choice, plan.answer_tool) == ((WEATHER,), choice, None)


@pytest.mark.parametrize(
    "choice", [ToolChoice(ToolChoiceMode.REQUIRED), ToolChoice(ToolChoiceMode.TOOL, "get_weather")]
)
def test_a_forced_call_of_the_callers_tools_is_the_answer(choice: ToolChoice) -> None:
    plan = plan_tools(ChatRequest(ASK, tools=(WEATHER,), tool_choice=choice, response_format=JSON_OBJECT))

    assert (plan.tools, plan.choice, plan.answer_tool) == ((WEATHER,), choice, None)


def test_tool_choice_none_forces_the_answer_tool_and_keeps_the_tools_for_the_history() -> None:
    none = ToolChoice(ToolChoiceMode.NONE)

    plan = plan_tools(ChatRequest(ASK, tools=(WEATHER,), tool_choice=none, response_format=JSON_OBJECT))

    assert [tool.name for tool in plan.tools] == ["get_weather", ANSWER_TOOL]
    assert plan.choice == ToolChoice(ToolChoiceMode.TOOL, ANSWER_TOOL)
    assert plan.forced_answer


def test_a_caller_tool_of_the_answer_tools_name_is_refused() -> None:
    taken = ToolDefinition(ANSWER_TOOL)

    with pytest.raises(ProviderError) as raised:
        plan_tools(ChatRequest(ASK, tools=(taken,), response_format=JSON_OBJECT))

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
