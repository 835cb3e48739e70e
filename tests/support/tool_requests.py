"""Requests with tools and images that the provider tests share, and what the fakes answer them
(`tests/fakes/tool_rules.value_for` makes the arguments from each tool's schema)."""

from __future__ import annotations

import base64

from app.domain.calls import ChatMessage, ToolDefinition
from app.domain.enums import ChatRole
from app.providers.base import ChatRequest

WEATHER = ToolDefinition(
    "get_weather",
    "The weather in a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "units"],
        "additionalProperties": False,
    },
    strict=True,
)
TIME = ToolDefinition("get_time", None, {"type": "object", "properties": {"zone": {"type": "string"}}})
WEATHER_ARGS, TIME_ARGS = '{"city":"city","units":"c"}', '{"zone":"zone"}'
ASK = ChatMessage(ChatRole.USER, "What is the weather in Paris, and the time?")
TOOLS = ChatRequest(messages=(ASK,), tools=(WEATHER, TIME))
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}
SCHEMA_ANSWER = '{"city":"city","temperature":1}'
JSON_ANSWER = '{"answer":"Hello from the fake OpenAI server."}'  # JSON mode: the fake's reply, wrapped
