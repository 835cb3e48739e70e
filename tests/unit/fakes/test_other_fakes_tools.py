"""The Anthropic, Gemini, Bedrock and Aleph Alpha fakes answer tools, tool results, images and output
schemas in their providers' wire formats, streamed and not, and refuse malformed shapes with the
providers' 400s. Raw HTTP: what arrives is exactly what an adapter would read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from botocore.eventstream import EventStreamBuffer

from tests.fakes.aleph_alpha_server import TOKEN as ALEPH_TOKEN
from tests.fakes.aleph_alpha_server import AlephAlphaFake, aleph_alpha_fake
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, anthropic_fake
from tests.fakes.bedrock_server import BedrockFake, bedrock_fake
from tests.fakes.google_server import API_KEY as GOOGLE_KEY
from tests.fakes.google_server import GoogleFake, google_fake

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["c", "f"]}},
}
SAID = {"city": "city", "units": "c"}


async def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        return response.status, await response.read()


def sse(raw: bytes) -> list[dict[str, Any]]:
    frames = raw.decode().replace("\r\n", "\n").split("\n\n")
    datas = [line[6:] for frame in frames for line in frame.split("\n") if line.startswith("data: ")]
    return [json.loads(d) for d in datas if d != "[DONE]"]


# --- Anthropic --------------------------------------------------------------------------------------


@pytest.fixture
async def claude() -> AsyncIterator[AnthropicFake]:
    async with anthropic_fake() as fake:
        yield fake


async def messages(fake: AnthropicFake, **body: Any) -> tuple[int, bytes]:
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    request = {"model": "claude-sonnet-4-5", "max_tokens": 64, **body}
    return await post(f"{fake.url}/v1/messages", request, headers)


CLAUDE_TOOLS = [
    {"name": "get_weather", "input_schema": SCHEMA},
    {"name": "get_time", "input_schema": {"type": "object"}},
]
ASK_CLAUDE = [{"role": "user", "content": "Weather?"}]


async def test_anthropic_tool_use_whole_and_streamed(claude: AnthropicFake) -> None:
    claude.tool_calls_per_answer, claude.tool_preamble = 2, "Let me check."
    _, raw = await messages(claude, messages=ASK_CLAUDE, tools=CLAUDE_TOOLS)
    message = json.loads(raw)
    assert message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "tool_use"]
    assert (message["content"][1]["name"], message["content"][1]["input"]) == ("get_weather", SAID)

    _, raw = await messages(claude, messages=ASK_CLAUDE, tools=CLAUDE_TOOLS, stream=True)
    events = sse(raw)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [s["type"] for s in starts] == ["text", "tool_use", "tool_use"]
    assert starts[1]["input"] == {}
    fragments = [
        e["delta"]["partial_json"]
        for e in events
        if e.get("delta", {}).get("type") == "input_json_delta" and e["index"] == 1
    ]
    assert fragments[0] == ""
    assert json.loads("".join(fragments)) == SAID
    assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"


async def test_anthropic_tool_result_images_and_schema(claude: AnthropicFake) -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": SAID}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18°C"}]}
    history = [*ASK_CLAUDE, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    _, raw = await messages(claude, messages=history, tools=CLAUDE_TOOLS, stream=True)
    assert (
        "".join(e["delta"]["text"] for e in sse(raw) if e.get("delta", {}).get("type") == "text_delta")
        == "Tool result toolu_1: 18°C"
    )

    picture = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    linked = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    _, raw = await messages(claude, messages=[{"role": "user", "content": [picture, linked]}])
    assert (
        json.loads(raw)["content"][0]["text"]
        == "I see 2 images: image/png (70 bytes); https://example.com/cat.jpg"
    )

    _, raw = await messages(
        claude, messages=ASK_CLAUDE, output_config={"format": {"type": "json_schema", "schema": SCHEMA}}
    )
    assert json.loads(json.loads(raw)["content"][0]["text"]) == SAID


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tools": [{"name": "x"}]}, "tools.0.input_schema: Field required"),
        ({"tools": CLAUDE_TOOLS, "tool_choice": {"type": "tool"}}, "tool_choice.tool.name: Field required"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "1"}],
                    }
                ]
            },
            "unexpected `tool_use_id`",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/bmp", "data": PIXEL},
                            }
                        ],
                    }
                ]
            },
            "media_type: Input should be",
        ),
    ],
)
async def test_anthropic_refuses_malformed_shapes(
    claude: AnthropicFake, body: dict[str, Any], message: str
) -> None:
    status, raw = await messages(claude, **{"messages": ASK_CLAUDE, **body})
    assert status == 400
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"
    assert message in json.loads(raw)["error"]["message"]


# --- Gemini ------------------------------------------------------------------------------------------


@pytest.fixture
async def gemini() -> AsyncIterator[GoogleFake]:
    async with google_fake() as fake:
        yield fake


async def generate(fake: GoogleFake, body: dict[str, Any], *, stream: bool = False) -> tuple[int, bytes]:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return await post(
        f"{fake.url}/v1beta/models/gemini-2.5-flash:{method}", body, {"x-goog-api-key": GOOGLE_KEY}
    )


GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
            }
        ]
    }
]
ASK_GEMINI = [{"role": "user", "parts": [{"text": "Weather?"}]}]


async def test_gemini_function_calls_whole_and_streamed(gemini: GoogleFake) -> None:
    gemini.thought_signature = True
    config = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    _, raw = await generate(gemini, {"contents": ASK_GEMINI, "tools": GEMINI_TOOLS, "toolConfig": config})
    [part] = json.loads(raw)["candidates"][0]["content"]["parts"]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "city"}}
    assert "thoughtSignature" in part

    _, raw = await generate(gemini, {"contents": ASK_GEMINI, "tools": GEMINI_TOOLS}, stream=True)
    first, last = sse(raw)
    assert first["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] == {"city": "city"}
    assert "finishReason" not in first["candidates"][0]
    assert last["candidates"][0]["finishReason"] == "STOP"


async def test_gemini_function_response_inline_data_and_schema(gemini: GoogleFake) -> None:
    call = {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]}
    answer = {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 18}}}],
    }
    _, raw = await generate(
        gemini, {"contents": [*ASK_GEMINI, call, answer], "tools": GEMINI_TOOLS}, stream=True
    )
    assert (
        "".join(
            p.get("text", "")
            for c in sse(raw)
            for p in c["candidates"][0].get("content", {}).get("parts", [])
        )
        == 'Tool result get_weather: {"temp":18}'
    )

    parts = [
        {"inlineData": {"mimeType": "image/png", "data": PIXEL}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://b/cat.jpg"}},
    ]
    _, raw = await generate(gemini, {"contents": [{"role": "user", "parts": parts}]})
    assert (
        json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"]
        == "I see 2 images: image/png (70 bytes); gs://b/cat.jpg"
    )

    config = {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
    }
    _, raw = await generate(gemini, {"contents": ASK_GEMINI, "generationConfig": config})
    assert json.loads(json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"]) == {"city": "city"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "tools": [
                    {
                        "functionDeclarations": [
                            {"name": "f", "parameters": {"type": "object", "additionalProperties": False}}
                        ]
                    }
                ]
            },
            'Unknown name "additionalProperties"',
        ),
        (
            {"tools": GEMINI_TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "auto"}}},
            "FunctionCallingConfig.Mode",
        ),
        (
            {
                "contents": [
                    *ASK_GEMINI,
                    {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "18"}}]},
                ]
            },
            "google.protobuf.Struct",
        ),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}],
                    }
                ]
            },
            "Base64 decoding failed",
        ),
        ({"generationConfig": {"responseSchema": {"type": "OBJECT"}}}, "response_mime_type"),
    ],
)
async def test_gemini_refuses_malformed_shapes(
    gemini: GoogleFake, change: dict[str, Any], message: str
) -> None:
    status, raw = await generate(gemini, {"contents": ASK_GEMINI, **change})
    assert status == 400
    assert json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
    assert message in json.loads(raw)["error"]["message"]


# --- Bedrock -----------------------------------------------------------------------------------------


@pytest.fixture
async def bedrock() -> AsyncIterator[BedrockFake]:
    async with bedrock_fake() as fake:
        yield fake


async def converse(fake: BedrockFake, body: dict[str, Any], *, stream: bool = False) -> tuple[int, bytes]:
    return await post(
        f"{fake.url}/model/amazon.nova-micro-v1%3A0/{'converse-stream' if stream else 'converse'}", body
    )


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(m.headers[":event-type"], json.loads(m.payload)) for m in buffer]


BEDROCK_TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": SCHEMA}}}]}
ASK_BEDROCK = [{"role": "user", "content": [{"text": "Weather?"}]}]


async def test_bedrock_tool_use_whole_and_streamed(bedrock: BedrockFake) -> None:
    _, raw = await converse(
        bedrock, {"messages": ASK_BEDROCK, "toolConfig": {**BEDROCK_TOOLS, "toolChoice": {"any": {}}}}
    )
    answer = json.loads(raw)
    assert answer["stopReason"] == "tool_use"
    assert answer["output"]["message"]["content"][0]["toolUse"]["input"] == SAID

    bedrock.tool_preamble = "Checking."
    _, raw = await converse(bedrock, {"messages": ASK_BEDROCK, "toolConfig": BEDROCK_TOOLS}, stream=True)
    streamed = events(raw)
    [start] = [body for kind, body in streamed if kind == "contentBlockStart"]
    assert start["contentBlockIndex"] == 1
    assert start["start"]["toolUse"]["name"] == "get_weather"
    fragments = [
        b["delta"]["toolUse"]["input"]
        for k, b in streamed
        if k == "contentBlockDelta" and "toolUse" in b["delta"]
    ]
    assert len(fragments) == 3
    assert json.loads("".join(fragments)) == SAID
    assert ("messageStop", "tool_use") in [(k, b.get("stopReason")) for k, b in streamed]


async def test_bedrock_tool_result_images_and_output_schema(bedrock: BedrockFake) -> None:
    use = {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": SAID}}
    result = {
        "toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"temp": 18}}], "status": "success"}
    }
    history = [*ASK_BEDROCK, {"role": "assistant", "content": [use]}, {"role": "user", "content": [result]}]
    _, raw = await converse(bedrock, {"messages": history, "toolConfig": BEDROCK_TOOLS})
    assert json.loads(raw)["output"]["message"]["content"] == [{"text": 'Tool result tooluse_1: {"temp":18}'}]

    picture = {"image": {"format": "png", "source": {"bytes": PIXEL}}}
    _, raw = await converse(bedrock, {"messages": [{"role": "user", "content": [picture]}]}, stream=True)
    assert (
        "".join(b["delta"]["text"] for k, b in events(raw) if k == "contentBlockDelta")
        == "I see 1 image: image/png (70 bytes)"
    )

    output = {
        "textFormat": {
            "type": "json_schema",
            "structure": {"jsonSchema": {"schema": json.dumps(SCHEMA), "name": "W"}},
        }
    }
    _, raw = await converse(bedrock, {"messages": ASK_BEDROCK, "outputConfig": output})
    assert json.loads(json.loads(raw)["output"]["message"]["content"][0]["text"]) == SAID


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "messages": [
                    *ASK_BEDROCK,
                    {
                        "role": "assistant",
                        "content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}],
                    },
                ]
            },
            "toolConfig field must be defined",
        ),
        (
            {"toolConfig": {"tools": [{"toolSpec": {"name": "bad name", "inputSchema": {"json": SCHEMA}}}]}},
            "regular expression pattern",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"image": {"format": "bmp", "source": {"bytes": PIXEL}}}]}
                ]
            },
            "enum value set",
        ),
    ],
)
async def test_bedrock_refuses_malformed_shapes(
    bedrock: BedrockFake, body: dict[str, Any], message: str
) -> None:
    status, raw = await converse(bedrock, {"messages": ASK_BEDROCK, **body})
    assert status == 400
    assert message in json.loads(raw)["message"]


# --- Aleph Alpha -------------------------------------------------------------------------------------


@pytest.fixture
async def aleph() -> AsyncIterator[AlephAlphaFake]:
    async with aleph_alpha_fake() as fake:
        yield fake


async def test_aleph_chat_calls_tools_and_refuses_a_missing_capability(aleph: AlephAlphaFake) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
    body = {
        "model": "qwen3-32b-tool",
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [tool],
        "stream": True,
    }
    headers = {"authorization": f"Bearer {ALEPH_TOKEN}"}
    _, raw = await post(f"{aleph.url}/chat/completions", body, headers)
    chunks = sse(raw)
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"].startswith("chatcmpl-tool-")
    assert calls[0]["function"] == {"name": "get_weather"}
    assert json.loads("".join(c["function"].get("arguments", "") for c in calls)) == SAID
    assert [c["choices"][0].get("finish_reason") for c in chunks if c["choices"]][-1] == "tool_calls"

    aleph.missing_capabilities = {"tools"}
    status, raw = await post(f"{aleph.url}/chat/completions", {**body, "stream": False}, headers)
    assert (status, json.loads(raw)["code"]) == (400, "MISSING_CAPABILITY")
