"""Closed sets shared by the catalog, the gateway and the provider layer."""

from enum import StrEnum


class Plan(StrEnum):
    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


class Provider(StrEnum):
    OPENAI = "OPENAI"
    AZURE_OPENAI = "AZURE_OPENAI"
    ANTHROPIC = "ANTHROPIC"
    GOOGLE_GENAI = "GOOGLE_GENAI"  # Gemini API (generativelanguage.googleapis.com)
    GOOGLE_VERTEX_AI = "GOOGLE_VERTEX_AI"
    AWS_BEDROCK = "AWS_BEDROCK"
    MISTRAL = "MISTRAL"
    ALEPH_ALPHA = "ALEPH_ALPHA"
    OPENAI_COMPATIBLE = "OPENAI_COMPATIBLE"
    ECHO = "ECHO"  # deterministic offline provider for demos and tests


class ApiType(StrEnum):
    CHAT_COMPLETION = "CHAT_COMPLETION"
    RESPONSES = "RESPONSES"


class ModelGroup(StrEnum):
    CHAT = "CHAT"
    COMPLETION = "COMPLETION"
    EMBEDDING = "EMBEDDING"


class ChatRole(StrEnum):
    SYSTEM = "SYSTEM"
    USER = "USER"
    ASSISTANT = "ASSISTANT"
    TOOL = "TOOL"  # the result of a tool call the assistant asked for


class FinishReason(StrEnum):
    STOP = "STOP"
    LENGTH = "LENGTH"
    CONTENT_FILTER = "CONTENT_FILTER"
    TOOL_CALLS = "TOOL_CALLS"
    CANCELLED = "CANCELLED"
