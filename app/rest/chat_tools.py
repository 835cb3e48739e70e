"""`tools`, `tool_choice` and `response_format` of a chat completion request, with OpenAI's shapes,
and what the call asks for in the gateway's vocabulary.

tools: `[{"type": "function", "function": {"name", "description", "parameters", "strict"}}]`;
tool_choice: "auto" | "none" | "required" | `{"type": "function", "function": {"name"}}`;
response_format: `{"type": "text"}` | `{"type": "json_object"}` |
`{"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}`.
The JSON Schemas themselves are the provider's to judge (each has its own subset).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from app.domain.calls import (
    TOOL_NAME,
    ResponseFormat,
    ResponseFormatType,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.rest.errors import RestError, invalid, missing

_MODES = {"auto": ToolChoiceMode.AUTO, "none": ToolChoiceMode.NONE, "required": ToolChoiceMode.REQUIRED}


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Function(_Shape):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionSpec(Protocol):
    """A function tool, in either endpoint's shape (nested in chat completions, flat in responses)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def parameters(self) -> dict[str, Any] | None: ...
    @property
    def strict(self) -> bool | None: ...


class Tool(_Shape):
    type: Literal["function"]
    function: Function


class NamedFunction(_Shape):
    name: str


class NamedTool(_Shape):
    type: Literal["function"]
    function: NamedFunction


class JsonSchema(_Shape):
    name: str
    # `schema` would shadow a BaseModel attribute: read under another name.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None  # accepted; no provider takes it apart from the schema


class Format(_Shape):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


def tool_definitions(tools: list[Tool] | None) -> tuple[ToolDefinition, ...]:
    return function_definitions([t.function for t in tools or ()], "tools[{}].function")


def function_definitions(functions: Sequence[FunctionSpec], where: str) -> tuple[ToolDefinition, ...]:
    """`where`: the param of the n-th function, a format string (its shape differs by endpoint)."""
    definitions: list[ToolDefinition] = []
    for index, function in enumerate(functions):
        at = where.format(index)
        _check_name(function.name, f"{at}.name")
        if function.parameters is not None and function.parameters.get("type", "object") != "object":
            raise RestError(
                400,
                f"Invalid schema for function '{function.name}': schema must be a JSON Schema of "
                f"'type: \"object\"', got 'type: \"{function.parameters.get('type')}\"'.",
                param=f"{at}.parameters",
                code="invalid_function_parameters",
            )
        if function.name in (d.name for d in definitions):
            raise invalid(f"{at}.name", f"the function '{function.name}' is defined twice")
        definitions.append(
            ToolDefinition(function.name, function.description, function.parameters, bool(function.strict))
        )
    return tuple(definitions)


def tool_choice(choice: str | None, name: str | None, tools: tuple[ToolDefinition, ...]) -> ToolChoice | None:
    """A mode ("auto", "none", "required") or the name of a function to call; None: the provider's
    default. "none" and "auto" without tools change nothing and pass; a choice that needs a tool
    needs `tools`."""
    if choice is None and name is None:
        return None
    if name is None:
        assert choice is not None
        if not tools and choice != "required":
            return None
        mode = _MODES[choice]
    else:
        mode = ToolChoiceMode.TOOL
    if not tools:
        raise invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified")
    if name is not None and name not in {t.name for t in tools}:
        raise invalid("tool_choice", f"function '{name}' not found in 'tools'")
    return ToolChoice(mode, name)


def response_format(fmt: Format | None) -> ResponseFormat | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return ResponseFormat(ResponseFormatType.JSON_OBJECT)
    if fmt.json_schema is None:
        raise missing("response_format.json_schema")
    spec = fmt.json_schema
    return schema_format(spec.name, spec.schema_, spec.strict, "response_format.json_schema")


def schema_format(
    name: str, schema: dict[str, Any] | None, strict: bool | None, where: str
) -> ResponseFormat:
    _check_name(name, f"{where}.name")
    return ResponseFormat(ResponseFormatType.JSON_SCHEMA, name, schema, bool(strict))


def _check_name(name: str, param: str) -> None:
    if not TOOL_NAME.match(name):
        raise invalid(param, "a name is 1 to 64 letters, digits, underscores and dashes ('^[a-zA-Z0-9_-]+$')")
