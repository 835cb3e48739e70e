"""Tools, images and structured output in the OpenAI family's wire formats, for `openai_server`
(and the OpenAI-compatible chat of `aleph_alpha_server`): reading Chat Completions and Responses
requests into `Asked` — refusing malformed shapes with the messages the real API gives — and
writing tool calls back as the real API does.

Chat Completions: `tools` [{type:"function", function:{name, description, parameters, strict}}],
`tool_choice` "auto"|"none"|"required"|{type:"function", function:{name}} (Mistral also "any"),
`parallel_tool_calls`, assistant `tool_calls` followed by `role:"tool"` messages, user content parts
`text`/`image_url` (https or `data:image/…;base64,` URLs; Mistral also takes the URL as a string),
`response_format` text|json_object|json_schema. Responses: flat function tools, `function_call` and
`function_call_output` input items, `input_image` parts, `text.format`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.fakes.tool_rules import Answer, Asked, Image, Rejected, Tool, ToolResult, decoded_size, pieces_of

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.DOTALL)
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_MISTRAL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")
_PART_TYPES = "'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'"


def missing(param: str) -> Rejected:
    return Rejected(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def wrong_type(param: str, expected: str, value: Any) -> Rejected:
    got = {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}.get(type(value), "null")
    message = f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    return Rejected(message, param=param, code="invalid_type")


def invalid_value(param: str, value: Any, supported: str) -> Rejected:
    message = f"Invalid value: '{value}'. Supported values are: {supported}."
    return Rejected(message, param=param, code="invalid_value")


# --- Chat Completions requests ---------------------------------------------------------------------


def read_chat(body: Mapping[str, Any], flavor: str) -> Asked:
    """What a Chat Completions request asks for; raises `Rejected` where the real API answers 400."""
    asked = Asked()
    if (tools := body.get("tools")) is not None:
        asked.tools = [_chat_tool(tool, f"tools[{i}]") for i, tool in enumerate(listed(tools, "tools"))]
    asked.mode, asked.forced = choice_of(body.get("tool_choice"), asked.tools, flavor, nested=True)
    asked.parallel = parallel_of(body, asked.tools)
    messages = listed(body.get("messages", []), "messages")
    for index in range(len(messages)):
        _check_message(messages, index, flavor)
    asked.results, asked.images = _last_turn(messages, flavor)
    _response_format(body.get("response_format"), asked, messages, flavor)
    return asked


def listed(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise wrong_type(param, "an array", value)
    return value


def _chat_tool(tool: Any, where: str) -> Tool:
    if not isinstance(tool, Mapping):
        raise wrong_type(where, "an object", tool)
    if tool.get("type") != "function":
        raise invalid_value(f"{where}.type", tool.get("type"), "'function' and 'custom'")
    if not isinstance(function := tool.get("function"), Mapping):
        raise missing(f"{where}.function")
    return function_tool(function, f"{where}.function", f"{where}.function.parameters")


def function_tool(function: Mapping[str, Any], where: str, parameters_param: str) -> Tool:
    name = function.get("name")
    if name is None:
        raise missing(f"{where}.name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise Rejected(
            f"Invalid '{where}.name': string does not match pattern. Expected a string that matches "
            "the pattern '^[a-zA-Z0-9_-]+$'.",
            param=f"{where}.name",
            code="invalid_value",
        )
    schema = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        shown = schema.get("type") if isinstance(schema, Mapping) else schema
        raise Rejected(
            f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', "
            f"got 'type: \"{shown}\"'.",
            param=parameters_param,
            code="invalid_function_parameters",
        )
    if function.get("strict") and (problem := strict_problem(schema)):
        raise Rejected(
            f"Invalid schema for function '{name}': {problem}",
            param=parameters_param,
            code="invalid_function_parameters",
        )
    return Tool(name, schema)


def strict_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """Why `schema` cannot be used in strict mode (every object closed, every property required)."""
    if not isinstance(schema, Mapping):
        return None
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={context!r}, 'additionalProperties' is required to be supplied and to be false."
            )
        keys = list(schema.get("properties") or {})
        if absent := [key for key in keys if key not in (schema.get("required") or [])]:
            return (
                f"In context={context!r}, 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{absent[0]}'."
            )
    children = [(("properties", key), sub) for key, sub in (schema.get("properties") or {}).items()]
    children += [(("items",), schema["items"])] if "items" in schema else []
    children += [(("anyOf", str(i)), sub) for i, sub in enumerate(schema.get("anyOf") or [])]
    children += [(("$defs", key), sub) for key, sub in (schema.get("$defs") or {}).items()]
    return next((p for path, sub in children if (p := strict_problem(sub, context + path))), None)


def choice_of(choice: Any, tools: list[Tool], flavor: str, *, nested: bool) -> tuple[str, str | None]:
    if choice is None:
        return "auto", None
    if not tools:
        raise Rejected(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    modes = ("auto", "none", "required", "any") if flavor == "mistral" else ("auto", "none", "required")
    if isinstance(choice, str):
        if choice not in modes:
            raise invalid_value("tool_choice", choice, ", ".join(f"'{m}'" for m in modes))
        return ("required" if choice == "any" else choice), None
    if not isinstance(choice, Mapping) or choice.get("type") != "function":
        raise invalid_value("tool_choice.type", choice, "'function'")
    name = (choice.get("function") or {}).get("name") if nested else choice.get("name")
    if name is None:
        raise missing("tool_choice.function.name" if nested else "tool_choice.name")
    if name not in {tool.name for tool in tools}:
        raise Rejected(
            f"Invalid value for 'tool_choice': function '{name}' not found in 'tools'.", param="tool_choice"
        )
    return "auto", name


def parallel_of(body: Mapping[str, Any], tools: list[Tool]) -> bool:
    if "parallel_tool_calls" not in body:
        return True
    if not tools:
        raise Rejected(
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when "
            "'tools' are specified.",
            param="parallel_tool_calls",
        )
    if not isinstance(parallel := body["parallel_tool_calls"], bool):
        raise wrong_type("parallel_tool_calls", "a boolean", parallel)
    return parallel


def _check_message(messages: list[Any], index: int, flavor: str) -> None:
    message, where = messages[index], f"messages[{index}]"
    role = message.get("role") if isinstance(message, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, list):
        for number, part in enumerate(content):
            _check_part(part, f"{where}.content[{number}]", flavor)
    if role == "assistant" and message.get("tool_calls"):
        ids = [
            _check_call(call, f"{where}.tool_calls[{n}]", flavor)
            for n, call in enumerate(message["tool_calls"])
        ]
        answered = set()
        for later in messages[index + 1 :]:
            if not isinstance(later, Mapping) or later.get("role") != "tool":
                break
            answered.add(later.get("tool_call_id"))
        if unanswered := [i for i in ids if i not in answered]:
            raise Rejected(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(unanswered),
                param=f"messages.[{index}].role",
            )
    if role == "tool":
        call_id = message.get("tool_call_id")
        if call_id is None:
            raise missing(f"{where}.tool_call_id")
        if flavor == "mistral" and not _MISTRAL_ID.match(str(call_id)):
            raise Rejected(f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, with a length of 9.")
        before = next((m for m in reversed(messages[:index]) if m.get("role") != "tool"), None)
        if before is None or before.get("role") != "assistant" or not before.get("tool_calls"):
            raise Rejected(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                "with 'tool_calls'.",
                param=f"messages.[{index}].role",
            )


def _check_call(call: Any, where: str, flavor: str) -> str:
    if not isinstance(call, Mapping) or call.get("id") is None:
        raise missing(f"{where}.id")
    if flavor == "mistral" and not _MISTRAL_ID.match(str(call["id"])):
        raise Rejected(f"Tool call id was {call['id']} but must be a-z, A-Z, 0-9, with a length of 9.")
    if flavor != "mistral" and call.get("type") != "function":
        raise invalid_value(f"{where}.type", call.get("type"), "'function'")
    function = call.get("function")
    if not isinstance(function, Mapping) or "name" not in function:
        raise missing(f"{where}.function.name")
    if not isinstance(function.get("arguments"), str):
        raise wrong_type(f"{where}.function.arguments", "a string", function.get("arguments"))
    return str(call["id"])


def _check_part(part: Any, where: str, flavor: str) -> None:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise missing(f"{where}.text")
    elif kind == "image_url":
        image_url = part.get("image_url")
        if isinstance(image_url, str) and flavor == "mistral":
            image_url = {"url": image_url}
        if not isinstance(image_url, Mapping):
            raise wrong_type(f"{where}.image_url", "an object", image_url)
        image(image_url.get("url"), f"{where}.image_url.url")
        if image_url.get("detail", "auto") not in ("auto", "low", "high"):
            raise invalid_value(f"{where}.image_url.detail", image_url["detail"], "'auto', 'low', and 'high'")
    elif kind not in ("input_audio", "refusal", "audio", "file"):
        raise invalid_value(f"{where}.type", kind, _PART_TYPES)


def image(url: Any, where: str) -> Image:
    """The image an `image_url` URL names; refused when it is neither http(s) nor an image data URL."""
    if not isinstance(url, str):
        raise missing(where)
    if url.startswith(("https://", "http://")):
        return Image(url=url)
    expected = (
        f"Invalid image URL: '{where}'. Expected a base64-encoded data URL with an image MIME type "
        "(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got"
    )
    if not (match := _DATA_URL.match(url)):
        raise Rejected(f"{expected} a value without the 'data:' prefix.", param=where, code="invalid_value")
    media_type, data = match.groups()
    if media_type not in _IMAGE_TYPES:
        message = f"{expected} unsupported MIME type '{media_type}'."
        raise Rejected(message, param=where, code="invalid_image_format")
    if (size := decoded_size(data)) is None:
        raise Rejected(f"{expected} an invalid base64-encoded value.", param=where, code="invalid_value")
    return Image(media_type=media_type, size=size)


def _last_turn(messages: list[Any], flavor: str) -> tuple[list[ToolResult], list[Image]]:
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, ToolResult(str(message["tool_call_id"]), _text(message.get("content"))))
    if results or not messages or messages[-1].get("role") != "user":
        return results, []
    content = messages[-1].get("content")
    parts = [p for p in content if p.get("type") == "image_url"] if isinstance(content, list) else []
    urls = [p["image_url"] if isinstance(p["image_url"], str) else p["image_url"]["url"] for p in parts]
    return [], [image(url, "") for url in urls]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def _response_format(fmt: Any, asked: Asked, messages: list[Any], flavor: str) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "json_object":
        said = " ".join(_text(m.get("content")) for m in messages if isinstance(m, Mapping)).lower()
        if "json" not in said and flavor in ("openai", "azure"):
            raise Rejected(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
                param="messages",
            )
        asked.json_mode = True
    elif kind == "json_schema":
        if not isinstance(spec := fmt.get("json_schema"), Mapping):
            raise missing("response_format.json_schema")
        asked.schema = schema_format(spec, "response_format.json_schema", "response_format")
    elif kind != "text":
        raise invalid_value("response_format.type", kind, "'text', 'json_object', and 'json_schema'")


def schema_format(spec: Mapping[str, Any], where: str, param: str) -> Mapping[str, Any]:
    """The schema of a json_schema output format ({name, schema, strict}), checked like the real API."""
    if not isinstance(name := spec.get("name"), str):
        raise missing(f"{where}.name")
    schema = spec.get("schema", {"type": "object", "properties": {}})
    if spec.get("strict") and (problem := strict_problem(schema)):
        raise Rejected(f"Invalid schema for response_format '{name}': {problem}", param=param)
    return schema


# --- Chat Completions answers ------------------------------------------------------------------------


def call_id(flavor: str, index: int) -> str:
    """Mistral's ids are 9 letters and digits, vLLM's (Aleph Alpha) `chatcmpl-tool-` and 32 hex digits,
    OpenAI's `call_` and 24 more."""
    if flavor == "mistral":
        return f"fake{index:05d}"
    return f"chatcmpl-tool-{index:032x}" if flavor == "aleph" else f"call_fake{index:019d}"


def tool_calls_message(answer: Answer, flavor: str) -> dict[str, Any]:
    """The assistant message of a non-streamed tool-call answer."""
    if flavor == "mistral":  # Mistral: no `type`, an `index`, and "" content
        calls = [
            {"id": call_id(flavor, i), "function": _function_of(c), "index": i}
            for i, c in enumerate(answer.calls)
        ]
        return {"role": "assistant", "content": "", "tool_calls": calls}
    calls = [
        {"id": call_id(flavor, i), "type": "function", "function": _function_of(c)}
        for i, c in enumerate(answer.calls)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls, "refusal": None}


def _function_of(call: Any) -> dict[str, str]:
    return {"name": call.name, "arguments": call.arguments_json}


def tool_call_deltas(
    answer: Answer, flavor: str, argument_chunks: int, interleave: bool
) -> list[dict[str, Any]]:
    """The `delta`s of a streamed tool-call answer, before the finishing chunk. OpenAI sends each call's
    id and name with empty arguments, then the arguments in fragments, call after call (`interleave`
    alternates the calls' fragments instead); Mistral sends every call whole in one delta."""
    if flavor == "mistral":
        return [
            {"role": "assistant", "content": ""},
            {"tool_calls": tool_calls_message(answer, flavor)["tool_calls"]},
        ]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
    per_call = []
    for index, call in enumerate(answer.calls):
        start = {"index": index, "id": call_id(flavor, index), "type": "function"}
        head = {**start, "function": {"name": call.name, "arguments": ""}}
        tail = [
            {"index": index, "function": {"arguments": p}}
            for p in pieces_of(call.arguments_json, argument_chunks)
        ]
        per_call.append([head, *tail])
    if interleave:
        longest = max(len(steps) for steps in per_call)
        ordered = [steps[i] for i in range(longest) for steps in per_call if i < len(steps)]
    else:
        ordered = [step for steps in per_call for step in steps]
    deltas.extend({"tool_calls": [step]} for step in ordered)
    return deltas
