"""Tools, images and structured output through the Gemini adapter, on the Gemini API and on Vertex AI,
against the fake Google server: function declarations and the calling config on the wire, function
calls read back (whole, parallel ones in order, also streamed), function responses in the next turn,
thought signatures carried in the call id, images inlined (by data, and downloaded from a URL), and
JSON output."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from app.domain.calls import (
    ChatMessage,
    Finished,
    ImagePart,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    ResponseFormatType,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from app.domain.credentials import Credentials
from app.domain.enums import ChatRole, FinishReason, Provider
from app.providers.base import ChatRequest, ProviderAdapter, ProviderTarget
from app.providers.gemini import google_adapter
from app.providers.gemini_messages import SIGNATURE_SEPARATOR
from app.providers.runtime import ProviderRuntime
from tests.fakes.google_server import API_KEY, GoogleFake, google_fake
from tests.support.streams import collect, failure, text_of
from tests.unit.providers.test_vertex import vertex_target

WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"enum": ["c", "f"]}},
        "required": ["city", "units"],
        "additionalProperties": False,  # full JSON Schema: `parameters` would refuse this
    },
)
TIME = ToolDefinition(
    name="get_time", parameters={"type": "object", "properties": {"zone": {"type": "string"}}}
)
ASK = ChatMessage(ChatRole.USER, "Weather and time in Paris?")
TOOLS_REQUEST = ChatRequest(messages=(ASK,), tools=(WEATHER, TIME))
WEATHER_ARGS = '{"city":"city","units":"c"}'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
async def fake(signing_key: rsa.RSAPrivateKey) -> AsyncIterator[GoogleFake]:
    async with google_fake() as fake:
        fake.service_account_public_key = signing_key.public_key()
        yield fake


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def runtime_config(fake: GoogleFake) -> dict[str, Any]:
    return {"google_oauth_url": f"{fake.url}/token"}


@pytest.fixture(params=[Provider.GOOGLE_GENAI, Provider.GOOGLE_VERTEX_AI])
def adapter(
    request: pytest.FixtureRequest,
    fake: GoogleFake,
    signing_key: rsa.RSAPrivateKey,
    runtime: ProviderRuntime,
) -> ProviderAdapter:
    if request.param == Provider.GOOGLE_VERTEX_AI:
        return google_adapter(vertex_target(fake, signing_key), runtime)
    target = ProviderTarget(
        provider=Provider.GOOGLE_GENAI,
        provider_model_id="gemini-2.0-flash",
        model_url=fake.url,
        credentials=Credentials(token=API_KEY),
    )
    return google_adapter(target, runtime)


def sent_bodies(fake: GoogleFake) -> list[Any]:
    return [r.body for r in fake.requests if r.path != "/token"]


@pytest.fixture
async def image_server() -> AsyncIterator[str]:
    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/page", page)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


# --- tools on the wire ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "config", "calls"),
    [
        (None, None, ["get_weather"]),
        (ToolChoice(ToolChoiceMode.AUTO), {"mode": "AUTO"}, ["get_weather"]),
        (ToolChoice(ToolChoiceMode.REQUIRED), {"mode": "ANY"}, ["get_weather"]),
        (
            ToolChoice(ToolChoiceMode.TOOL, "get_time"),
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
            ["get_time"],
        ),
        (ToolChoice(ToolChoiceMode.NONE), {"mode": "NONE"}, []),
    ],
)
async def test_tools_and_choice_on_the_wire(
    fake: GoogleFake,
    adapter: ProviderAdapter,
    choice: ToolChoice | None,
    config: dict[str, Any] | None,
    calls: list[str],
) -> None:
    request = ChatRequest(messages=(ASK,), tools=(WEATHER, TIME), tool_choice=choice)

    completion = await adapter.complete(request)

    [body] = sent_bodies(fake)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "parametersJsonSchema": dict(WEATHER.parameters or {}),
                },
                {"name": "get_time", "parametersJsonSchema": dict(TIME.parameters or {})},
            ]
        }
    ]
    assert body.get("toolConfig") == (None if config is None else {"functionCallingConfig": config})
    assert [call.name for call in completion.tool_calls] == calls
    assert completion.finish_reason == (FinishReason.TOOL_CALLS if calls else FinishReason.STOP)


async def test_parallel_calls_in_order(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    fake.tool_calls_per_answer = 2

    completion = await adapter.complete(TOOLS_REQUEST)

    first, second = completion.tool_calls
    assert (first.name, first.arguments) == ("get_weather", WEATHER_ARGS)
    assert (second.name, second.arguments) == ("get_time", '{"zone":"zone"}')
    # Gemini gave no ids: one per call, unique, numbered in order.
    assert first.id.startswith("call_")
    assert first.id.endswith("_0")
    assert second.id == first.id.removesuffix("_0") + "_1"
    assert (completion.text, completion.finish_reason) == ("", FinishReason.TOOL_CALLS)


async def test_gemini_ids_are_kept(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    fake.tool_calls_per_answer, fake.function_call_ids = 2, True

    completion = await adapter.complete(TOOLS_REQUEST)

    assert [call.id for call in completion.tool_calls] == ["fake-call-0", "fake-call-1"]


async def test_streamed_calls_are_deltas_then_whole_calls(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    fake.tool_calls_per_answer = 2

    events = await collect(adapter.stream(TOOLS_REQUEST))

    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    done = [e for e in events if isinstance(e, ToolCallDone)]
    assert [(d.index, d.name, d.arguments) for d in deltas] == [
        (0, "get_weather", WEATHER_ARGS),
        (1, "get_time", '{"zone":"zone"}'),
    ]
    assert [d.call for d in done] == [ToolCall(d.id or "", d.name or "", d.arguments) for d in deltas]
    assert [d.index for d in done] == [0, 1]
    assert deltas[0].id != deltas[1].id
    assert text_of(events) == ""
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)
    assert [type(e) for e in events[-3:]] == [ToolCallDone, ToolCallDone, Finished]


@pytest.mark.parametrize("reason", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
async def test_a_failed_function_call_is_a_retryable_malformed_answer(
    fake: GoogleFake, adapter: ProviderAdapter, reason: str
) -> None:
    fake.reply, fake.finish_reason = "", reason  # a candidate with no content, as Gemini sends it
    request = ChatRequest(messages=(ASK,), tools=(WEATHER,), tool_choice=ToolChoice(ToolChoiceMode.NONE))

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(request)
    streamed = failure(await collect(adapter.stream(request)))

    for error in (raised.value, streamed):
        assert (error.code, error.retryable) == (ProviderErrorCode.MALFORMED_RESPONSE, True)
        assert error.message == f"the model's function call failed ({reason})"


# --- the next turn: calls and their results ---------------------------------------------------------

CALLS = (
    ToolCall("call_a", "get_weather", '{"city": "Paris", "units": "c"}'),
    ToolCall("call_b", "get_time", ""),
)
RESULTS_REQUEST = ChatRequest(
    messages=(
        ASK,
        ChatMessage(ChatRole.ASSISTANT, "Let me look.", tool_calls=CALLS),
        ChatMessage(ChatRole.TOOL, '{"temperature": 21}', tool_call_id="call_a"),
        ChatMessage(ChatRole.TOOL, "14:05", tool_call_id="call_b"),
    ),
    tools=(WEATHER, TIME),
)


async def test_results_follow_the_calls(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    completion = await adapter.complete(RESULTS_REQUEST)

    [body] = sent_bodies(fake)
    weather = {"city": "Paris", "units": "c"}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {
            "role": "model",  # no call ids: both APIs refuse an `id` in a request
            "parts": [
                {"text": "Let me look."},
                {"functionCall": {"name": "get_weather", "args": weather}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",  # both results in one turn, each named after the call it answers
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temperature": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
            ],
        },
    ]
    assert completion.text == (
        'Tool result get_weather: {"temperature":21} | Tool result get_time: {"output":"14:05"}'
    )
    assert (completion.tool_calls, completion.finish_reason) == ((), FinishReason.STOP)


async def test_results_are_put_in_the_order_of_their_calls(
    fake: GoogleFake, adapter: ProviderAdapter
) -> None:
    ask, calls, weather, time = RESULTS_REQUEST.messages
    request = ChatRequest(messages=(ask, calls, time, weather), tools=(WEATHER, TIME))

    await adapter.complete(request)

    [body] = sent_bodies(fake)
    assert [part["functionResponse"]["name"] for part in body["contents"][2]["parts"]] == [
        "get_weather",
        "get_time",
    ]


async def test_a_call_id_from_gemini_is_not_sent_back(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    fake.function_call_ids = True
    [call] = (await adapter.complete(TOOLS_REQUEST)).tool_calls
    answer = ChatMessage(ChatRole.TOOL, "sunny", tool_call_id=call.id)

    completion = await adapter.complete(
        ChatRequest(
            messages=(ASK, ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)), answer), tools=(WEATHER,)
        )
    )

    assert call.id == "fake-call-0"
    assert completion.text == 'Tool result get_weather: {"output":"sunny"}'


async def test_a_thought_signature_travels_in_the_call_id(fake: GoogleFake, adapter: ProviderAdapter) -> None:
    fake.thought_signature = True
    [call] = (await adapter.complete(TOOLS_REQUEST)).tool_calls
    signature = base64.b64encode(b"fake-signature-get_weather").decode()
    assert call.id.endswith(SIGNATURE_SEPARATOR + signature)

    await adapter.complete(
        ChatRequest(
            messages=(
                ASK,
                ChatMessage(ChatRole.ASSISTANT, tool_calls=(call,)),
                ChatMessage(ChatRole.TOOL, "sunny", tool_call_id=call.id),
            ),
            tools=(WEATHER,),
        )
    )

    model_turn, result_turn = sent_bodies(fake)[-1]["contents"][1:]
    assert model_turn["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": json.loads(WEATHER_ARGS)},
            "thoughtSignature": signature,
        }
    ]
    assert result_turn["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}
    ]


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        (
            (ASK, ChatMessage(ChatRole.TOOL, "sunny", tool_call_id="call_x")),
            "the tool result for 'call_x' answers no earlier tool call",
        ),
        (
            (ASK, ChatMessage(ChatRole.ASSISTANT, tool_calls=(ToolCall("call_a", "get_weather", "[1]"),))),
            "the arguments of tool call 'call_a' are not a JSON object",
        ),
    ],
)
async def test_unanswerable_turns_are_refused_before_any_call(
    fake: GoogleFake, adapter: ProviderAdapter, messages: tuple[ChatMessage, ...], message: str
) -> None:
    request = ChatRequest(messages=messages, tools=(WEATHER,))

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(request)
    streamed = failure(await collect(adapter.stream(request)))

    for error in (raised.value, streamed):
        assert (error.code, error.retryable, error.message) == (ProviderErrorCode.BAD_REQUEST, False, message)
    assert sent_bodies(fake) == []


# --- images -----------------------------------------------------------------------------------------


async def test_images_are_inlined_by_data_and_by_url(
    fake: GoogleFake, adapter: ProviderAdapter, image_server: str
) -> None:
    message = ChatMessage(
        ChatRole.USER,
        parts=(
            TextPart("What is on these?"),
            ImagePart(data=PNG, media_type="image/png"),
            ImagePart(url=f"{image_server}/cat.png", detail="high"),
        ),
    )

    completion = await adapter.complete(ChatRequest(messages=(message,)))
    events = await collect(adapter.stream(ChatRequest(messages=(message,))))

    inline = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}
    for body in sent_bodies(fake):
        assert body["contents"] == [
            {"role": "user", "parts": [{"text": "What is on these?"}, inline, inline]}
        ]
    assert completion.text == text_of(events) == "I see 2 images: image/png (40 bytes); image/png (40 bytes)"


async def test_an_image_url_that_is_no_image_is_refused_before_the_model_call(
    fake: GoogleFake, adapter: ProviderAdapter, image_server: str
) -> None:
    message = ChatMessage(ChatRole.USER, parts=(ImagePart(url=f"{image_server}/page"),))

    with pytest.raises(ProviderError) as raised:
        await adapter.complete(ChatRequest(messages=(message,)))

    assert (raised.value.code, raised.value.retryable) == (ProviderErrorCode.BAD_REQUEST, False)
    assert "text/html, not an image" in raised.value.message
    assert sent_bodies(fake) == []


# --- structured output ------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("response_format", "config", "text"),
    [
        (ResponseFormat(ResponseFormatType.TEXT), None, "Hello from the fake Gemini."),
        (
            ResponseFormat(ResponseFormatType.JSON_OBJECT),
            {"responseMimeType": "application/json"},
            '{"answer":"Hello from the fake Gemini."}',
        ),
        (
            ResponseFormat(ResponseFormatType.JSON_SCHEMA, name="weather", schema=SCHEMA, strict=True),
            {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA},
            '{"city":"city","temperature":1}',
        ),
    ],
)
async def test_json_output(
    fake: GoogleFake,
    adapter: ProviderAdapter,
    response_format: ResponseFormat,
    config: dict[str, Any] | None,
    text: str,
) -> None:
    request = ChatRequest(messages=(ASK,), response_format=response_format)

    completion = await adapter.complete(request)
    events = await collect(adapter.stream(request))

    for body in sent_bodies(fake):
        assert body.get("generationConfig") == config
    assert completion.text == text_of(events) == text
