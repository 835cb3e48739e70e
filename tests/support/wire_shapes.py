"""What a provider's request body says about tools, tool results, structured output and images, read
in each wire format of `provider_upstreams` — for the matrices that check, on every provider, that a
call reached the provider in its own shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tests.support.provider_upstreams import ANTHROPIC, CHAT_COMPLETIONS, GEMINI, RESPONSES

ANSWER_TOOL = "json_answer"  # the forced tool Anthropic and Bedrock answer JSON with


def declared_tools(wire: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The function tools declared: each name and the JSON Schema of its arguments."""
    if wire == CHAT_COMPLETIONS:
        functions = [tool["function"] for tool in body["tools"] if tool["type"] == "function"]
        return {function["name"]: function["parameters"] for function in functions}
    if wire == RESPONSES:
        return {tool["name"]: tool["parameters"] for tool in body["tools"] if tool["type"] == "function"}
    if wire == ANTHROPIC:
        return {tool["name"]: tool["input_schema"] for tool in body["tools"]}
    if wire == GEMINI:
        declarations = [d for group in body["tools"] for d in group["functionDeclarations"]]
        return {d["name"]: d["parametersJsonSchema"] for d in declarations}
    specs = [tool["toolSpec"] for tool in body["toolConfig"]["tools"]]
    return {spec["name"]: spec["inputSchema"]["json"] for spec in specs}


def assert_tool_turn(
    wire: str, body: Mapping[str, Any], call_id: str, name: str, arguments: str, result: str
) -> None:
    """The model's call and the tool's result went back as the request's last two turns."""
    args = orjson.loads(arguments)
    if wire == CHAT_COMPLETIONS:
        *_, assistant, tool = body["messages"]
        (sent,) = assistant["tool_calls"]
        assert (sent["id"], sent["function"]["name"]) == (call_id, name)
        assert orjson.loads(sent["function"]["arguments"]) == args
        assert tool == {"role": "tool", "tool_call_id": call_id, "content": result}
    elif wire == RESPONSES:
        *_, sent, output = body["input"]
        assert (sent["type"], sent["call_id"], sent["name"]) == ("function_call", call_id, name)
        assert orjson.loads(sent["arguments"]) == args
        assert output == {"type": "function_call_output", "call_id": call_id, "output": result}
    elif wire == ANTHROPIC:
        *_, assistant, user = body["messages"]
        assert assistant["role"] == "assistant"
        assert assistant["content"][-1] == {"type": "tool_use", "id": call_id, "name": name, "input": args}
        assert user == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call_id, "content": result}],
        }
    elif wire == GEMINI:  # no call ids on the wire: a response names its function
        *_, model_turn, user = body["contents"]
        assert model_turn["role"] == "model"
        assert model_turn["parts"][-1]["functionCall"] == {"name": name, "args": args}
        response = orjson.loads(result)  # a JSON object result goes as it is
        assert user == {"role": "user", "parts": [{"functionResponse": {"name": name, "response": response}}]}
    else:
        *_, assistant, user = body["messages"]
        assert assistant["content"][-1] == {"toolUse": {"toolUseId": call_id, "name": name, "input": args}}
        assert user == {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": call_id, "content": [{"text": result}]}}],
        }


def output_schema(wire: str, body: Mapping[str, Any]) -> Any:
    """The JSON Schema the answer must follow, by the provider's own mechanism: a response format, a
    response schema, or a forced tool whose input is the answer (Anthropic, Bedrock)."""
    if wire == CHAT_COMPLETIONS:
        assert body["response_format"]["type"] == "json_schema"
        return body["response_format"]["json_schema"]["schema"]
    if wire == RESPONSES:
        assert body["text"]["format"]["type"] == "json_schema"
        return body["text"]["format"]["schema"]
    if wire == ANTHROPIC:
        choice = body["tool_choice"]
        assert (choice["type"], choice["name"]) == ("tool", ANSWER_TOOL)
        return declared_tools(wire, body)[ANSWER_TOOL]
    if wire == GEMINI:
        assert body["generationConfig"]["responseMimeType"] == "application/json"
        return body["generationConfig"]["responseJsonSchema"]
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": ANSWER_TOOL}}
    return declared_tools(wire, body)[ANSWER_TOOL]


def user_content(wire: str, body: Mapping[str, Any]) -> Any:
    """The parts of the request's only (user) message."""
    if wire == RESPONSES:
        (item,) = body["input"]
        return item["content"]
    if wire == GEMINI:
        (content,) = body["contents"]
        return content["parts"]
    (message,) = body["messages"]
    return message["content"]


def text_and_images(wire: str, text: str, url: str, png_base64: str) -> list[dict[str, Any]]:
    """A text part, an image by `url` and an inline PNG, as the provider takes them: Gemini and
    Bedrock take bytes only (the URL's image downloaded), the others fetch a URL themselves."""
    data_url = f"data:image/png;base64,{png_base64}"
    if wire == CHAT_COMPLETIONS:
        return [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]
    if wire == RESPONSES:
        return [
            {"type": "input_text", "text": text},
            {"type": "input_image", "image_url": url, "detail": "auto"},
            {"type": "input_image", "image_url": data_url, "detail": "auto"},
        ]
    if wire == ANTHROPIC:
        inline = {"type": "base64", "media_type": "image/png", "data": png_base64}
        return [
            {"type": "text", "text": text},
            {"type": "image", "source": {"type": "url", "url": url}},
            {"type": "image", "source": inline},
        ]
    if wire == GEMINI:
        inline_data = {"inlineData": {"mimeType": "image/png", "data": png_base64}}
        return [{"text": text}, inline_data, inline_data]
    image = {"image": {"format": "png", "source": {"bytes": png_base64}}}
    return [{"text": text}, image, image]
