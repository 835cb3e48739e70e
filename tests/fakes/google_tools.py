"""Tools, images and structured output in the Gemini / Vertex wire format, for `google_server`:
`tools` [{functionDeclarations: [{name, description, parameters (OpenAPI subset) |
parametersJsonSchema}]}], `toolConfig.functionCallingConfig` {mode AUTO|ANY|NONE|VALIDATED,
allowedFunctionNames}, `functionCall` parts in model turns answered by `functionResponse` parts
(`response` an object) in the next user turn — neither with an `id` in a request, which both APIs
refuse —, `inlineData` {mimeType, data} and `fileData` {mimeType, fileUri} parts, and
`generationConfig.responseMimeType` + `responseSchema` (OpenAPI subset) or `responseJsonSchema`.
Field names are accepted in lowerCamel and snake_case, as Google's JSON parser does; unknown fields
of a Schema and malformed values are refused with its 400s.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from tests.fakes.tool_rules import Answer, Asked, Image, Rejected, Tool, ToolResult, compact

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.\-]{0,63}$")
_SCHEMA_FIELDS = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
_MODES = ("AUTO", "ANY", "NONE", "VALIDATED")
_PACKAGE = "google.ai.generativelanguage.v1beta"


def field(value: Any, camel: str) -> Any:
    """`value[camel]`, or its snake_case spelling; None when neither is there."""
    if not isinstance(value, Mapping):
        return None
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return value.get(camel, value.get(snake))


def unknown_field(name: str, where: str) -> Rejected:
    return Rejected(
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )


def read_generate(body: Mapping[str, Any]) -> Asked:
    """What a generateContent request asks for; raises `Rejected` where the real API answers 400."""
    asked = Asked()
    for number, tool in enumerate(body.get("tools") or []):
        for index, declaration in enumerate(field(tool, "functionDeclarations") or []):
            asked.tools.append(_declaration(declaration, f"tools[{number}].function_declarations[{index}]"))
    _config(field(field(body, "toolConfig"), "functionCallingConfig"), asked)
    contents = body.get("contents") or []
    for index in range(len(contents)):
        _check_content(contents, index)
    asked.results, asked.images = _last_turn(contents)
    _output(field(body, "generationConfig") or {}, asked)
    return asked


def _declaration(declaration: Mapping[str, Any], where: str) -> Tool:
    name = declaration.get("name", "")
    if not _NAME.match(str(name)):
        raise Rejected(
            f"* GenerateContentRequest.{where}.name: Invalid function name. Must start with a letter or an "
            "underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.) or dashes (-), with a "
            "maximum length of 64.\n"
        )
    json_schema, schema = field(declaration, "parametersJsonSchema"), declaration.get("parameters")
    if json_schema is not None and schema is not None:
        raise Rejected(
            f"* GenerateContentRequest.{where}: parameters and parameters_json_schema cannot both be set.\n"
        )
    if schema is not None:
        check_schema(schema, f"{where}.parameters")
    return Tool(str(name), json_schema or schema or {"type": "object", "properties": {}})


def check_schema(schema: Any, where: str) -> None:
    """Refuses what the OpenAPI-subset Schema message has no field for (additionalProperties, $ref…)."""
    if not isinstance(schema, Mapping):
        raise Rejected(
            f"Invalid value at '{where}' (type.googleapis.com/{_PACKAGE}.Schema), {compact(schema)}"
        )
    for key in schema:
        if _camel(key) not in _SCHEMA_FIELDS:
            raise unknown_field(key, where)
    for index, sub in enumerate((schema.get("properties") or {}).values()):
        check_schema(sub, f"{where}.properties[{index}].value")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")
    for index, sub in enumerate(field(schema, "anyOf") or []):
        check_schema(sub, f"{where}.any_of[{index}]")


def _camel(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def _config(config: Any, asked: Asked) -> None:
    if config is None:
        return
    mode = config.get("mode", "AUTO")
    if mode not in _MODES:
        kind = f"type.googleapis.com/{_PACKAGE}.FunctionCallingConfig.Mode"
        raise Rejected(f"Invalid value at 'tool_config.function_calling_config.mode' ({kind}), \"{mode}\"")
    allowed = field(config, "allowedFunctionNames")
    if allowed and mode not in ("ANY", "VALIDATED"):
        raise Rejected(
            "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: "
            "allowed_function_names is only allowed when mode is ANY or VALIDATED.\n"
        )
    declared = [tool.name for tool in asked.tools]
    for index, name in enumerate(allowed or []):
        if name not in declared:
            where = f"tool_config.function_calling_config.allowed_function_names[{index}]"
            raise Rejected(f"* GenerateContentRequest.{where}: function {name} is not declared.\n")
    if allowed:
        asked.tools = [tool for tool in asked.tools if tool.name in allowed]
    asked.mode = {"ANY": "required", "NONE": "none"}.get(mode, "auto")


def _parts(content: Any) -> list[Any]:
    return (content.get("parts") if isinstance(content, Mapping) else None) or []


def _calls(content: Any) -> int:
    return sum(1 for part in _parts(content) if field(part, "functionCall") is not None)


def _check_content(contents: list[Any], index: int) -> None:
    content = contents[index]
    for number, part in enumerate(_parts(content)):
        _check_part(part, f"contents[{index}].parts[{number}]")
    if not (calls := _calls(content)):
        return
    if index == 0 or contents[index - 1].get("role") != "user":
        raise Rejected(
            "Please ensure that function call turn comes immediately after a user turn or after a function "
            "response turn."
        )
    if index + 1 < len(contents):
        responses = sum(1 for p in _parts(contents[index + 1]) if field(p, "functionResponse") is not None)
        if responses != calls:
            raise Rejected(
                "Please ensure that the number of function response parts is equal to the number of function "
                "call parts of the function call turn."
            )


def _check_part(part: Any, where: str) -> None:
    if (inline := field(part, "inlineData")) is not None:
        image(inline, f"{where}.inline_data")
    if (file := field(part, "fileData")) is not None and not field(file, "fileUri"):
        raise Rejected(f"* GenerateContentRequest.{where}.file_data.file_uri: file_uri must not be empty.\n")
    for kind, snake in (("functionCall", "function_call"), ("functionResponse", "function_response")):
        # An answer's function call may carry an id; both APIs refuse one in a request.
        if isinstance(value := field(part, kind), Mapping) and "id" in value:
            raise unknown_field("id", f"{where}.{snake}")
    if (call := field(part, "functionCall")) is not None and not call.get("name"):
        raise Rejected(f"* GenerateContentRequest.{where}.function_call.name: Name cannot be empty.\n")
    if (response := field(part, "functionResponse")) is not None:
        if not response.get("name"):
            raise Rejected(
                f"* GenerateContentRequest.{where}.function_response.name: Name cannot be empty.\n"
            )
        if not isinstance(response.get("response"), Mapping):
            shown = compact(response.get("response"))
            kind = "type.googleapis.com/google.protobuf.Struct"
            raise Rejected(f"Invalid value at '{where}.function_response.response' ({kind}), {shown}")


def image(inline: Mapping[str, Any], where: str) -> Image:
    """The decoded size of inline data (standard or URL-safe base64), refused when it does not decode."""
    data = str(inline.get("data"))
    try:
        size = len(
            base64.b64decode(data, altchars=b"-_" if "-" in data or "_" in data else None, validate=True)
        )
    except (binascii.Error, ValueError):
        raise Rejected(
            f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for \"{data}\""
        ) from None
    if not field(inline, "mimeType"):
        raise Rejected(f"* GenerateContentRequest.{where}.mime_type: mime_type must be set.\n")
    return Image(media_type=field(inline, "mimeType"), size=size)


def _last_turn(contents: list[Any]) -> tuple[list[ToolResult], list[Image]]:
    if not contents or contents[-1].get("role", "user") != "user":
        return [], []
    parts = _parts(contents[-1])
    responses = [r for p in parts if (r := field(p, "functionResponse")) is not None]
    if responses:
        return [ToolResult(str(r["name"]), compact(r["response"])) for r in responses], []
    images = []
    for part in parts:
        if (inline := field(part, "inlineData")) is not None:
            images.append(image(inline, ""))
        elif (file := field(part, "fileData")) is not None:
            images.append(Image(url=field(file, "fileUri")))
    return [], images


def _output(config: Mapping[str, Any], asked: Asked) -> None:
    schema, json_schema = field(config, "responseSchema"), field(config, "responseJsonSchema")
    mime = field(config, "responseMimeType") or "text/plain"
    where = "* GenerateContentRequest.generation_config"
    if schema is not None and json_schema is not None:
        raise Rejected(
            f"{where}.response_schema: response_schema and response_json_schema cannot both be set.\n"
        )
    if (schema is not None or json_schema is not None) and mime not in ("application/json", "text/x.enum"):
        raise Rejected(
            f"{where}.response_mime_type: When response_schema is set, response_mime_type must be "
            "application/json or text/x.enum.\n"
        )
    if schema is not None:
        check_schema(schema, "generation_config.response_schema")
    asked.schema = schema if schema is not None else json_schema
    asked.json_mode = mime == "application/json"


def function_call_parts(answer: Answer, *, ids: bool, thought_signature: bool) -> list[dict[str, Any]]:
    """The model turn's parts for a tool-call answer (Gemini sends them whole, in one chunk)."""
    parts = []
    for index, call in enumerate(answer.calls):
        function_call: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if ids:
            function_call["id"] = f"fake-call-{index}"
        part: dict[str, Any] = {"functionCall": function_call}
        if thought_signature and index == 0:  # Gemini 3 signs the first call of a turn
            part["thoughtSignature"] = base64.b64encode(f"fake-signature-{call.name}".encode()).decode()
        parts.append(part)
    return parts
