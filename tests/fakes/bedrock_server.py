"""A fake AWS bedrock-runtime on 127.0.0.1, faithful to the wire format of its
API reference: Converse JSON, ConverseStream as binary
`application/vnd.amazon.eventstream` frames with correct prelude and message CRC32s, errors as
`{"message": …}` with `x-amzn-ErrorType`, in-stream exception frames, and InvokeModel with Titan
embedding bodies. It does not check signatures; it records whether a SigV4 header came. Tools,
images and structured output follow `tool_rules`, in the shapes `bedrock_tools` reads and writes.

    async with bedrock_fake() as fake:
        use_fake_aws(monkeypatch, fake.url, tmp_path)
        fake.throttle()
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.bedrock_tools import read_converse, tool_use_blocks, tool_use_events
from tests.fakes.common import FakeServer, RawReply, RecordedRequest, json_body, recorded, split_words
from tests.fakes.tool_rules import Answer, Rejected, decide

_ERROR_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
# AWS pads events with a "p" field to hide their length; clients must ignore it.
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (
        struct.pack("!B", len(encoded_name))
        + encoded_name
        + b"\x07"  # header value type 7: string
        + struct.pack("!H", len(encoded_value))
        + encoded_value
    )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC), headers, payload, message CRC."""
    header_bytes = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack("!II", 16 + len(header_bytes) + len(payload), len(header_bytes))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + header_bytes + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(kind: str, body: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps({**body, "p": _PADDING[: len(kind) * 2]}).encode())


def exception_frame(kind: str, message: str) -> bytes:
    """An in-stream exception; `kind` is the lowerCamel member name, e.g. "throttlingException"."""
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


def corrupt(message: bytes) -> bytes:
    """The same message with a wrong message CRC."""
    return message[:-4] + bytes(b ^ 0xFF for b in message[-4:])


@dataclass
class BedrockRequest(RecordedRequest):
    operation: str = ""  # converse, converse-stream or invoke
    model_id: str = ""


@dataclass
class BedrockFake(FakeServer):
    """Also has the switches and observations of `FakeServer` (`delay`, `stall_after`, `requests`, …);
    the requests are `BedrockRequest`s."""

    # What the model answers.
    reply: str = "Hello from the fake Bedrock model."
    chunks: int = 3  # text deltas the reply is split into
    stop_reason: str = "end_turn"
    input_tokens: int = 11
    output_tokens: int = 7
    tool_calls_per_answer: int = 1  # toolUse blocks in one answer
    argument_chunks: int = 3  # contentBlockDelta fragments of each toolUse input
    tool_preamble: str | None = None  # a text block before the toolUse blocks (as Nova and Claude write)
    raw: RawReply | None = None  # answer Converse or ConverseStream with these bytes (a recording)
    # Failure switches.
    error: tuple[int, str, str] | None = None  # (status, error type, message) before any body
    send_error_type_header: bool = True
    corrupt_frame: int | None = None  # index of a frame sent with a bad CRC
    stream_exception: tuple[str, str] | None = None  # (member name, message) after the first delta
    omit_terminal: bool = False  # end without messageStop and metadata
    error_headers: dict[str, str] = field(default_factory=dict)  # extra headers on error responses

    def throttle(self) -> None:
        self.error = (429, "ThrottlingException", "Too many requests, please wait before trying again.")

    def overloaded(self) -> None:
        self.error = (503, "ServiceUnavailableException", "Bedrock is unable to process your request.")

    def server_error(self) -> None:
        self.error = (500, "InternalServerException", "An internal server error occurred. Retry.")

    def content_filter(self) -> None:
        self.stop_reason = "content_filtered"

    # --- handlers -----------------------------------------------------------------------------

    async def _record(self, request: web.Request, operation: str) -> BedrockRequest:
        body = await json_body(request) or {}
        model_id = request.match_info["model_id"]
        call = BedrockRequest(**vars(recorded(request, body)), operation=operation, model_id=model_id)
        self.requests.append(call)
        return call

    async def _error_response(self) -> web.Response | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is None:
            return None
        status, error_type, message = self.error
        headers = {"content-type": "application/json", **self.error_headers}
        if self.send_error_type_header:
            headers["x-amzn-ErrorType"] = error_type + _ERROR_NAMESPACE
        return web.Response(status=status, body=json.dumps({"message": message}), headers=headers)

    def _decide(self, body: Any) -> Answer | web.Response:
        """The answer to `body`, or the ValidationException the real service gives it."""
        try:
            return decide(read_converse(body), self.reply, self.tool_calls_per_answer)
        except Rejected as rejected:
            headers = {
                "content-type": "application/json",
                "x-amzn-ErrorType": "ValidationException" + _ERROR_NAMESPACE,
            }
            return web.Response(status=400, body=json.dumps({"message": rejected.message}), headers=headers)

    def _text(self, said: Answer) -> str | None:
        """The text block's text: the answer's, or the preamble before tool calls (None: no block)."""
        return self.tool_preamble if said.calls else said.text

    def _stop_reason(self, said: Answer) -> str:
        return "tool_use" if said.calls else self.stop_reason

    async def converse(self, request: web.Request) -> web.StreamResponse:
        call = await self._record(request, "converse")
        if (error := await self._error_response()) is not None:
            return error
        if self.raw is not None:
            return await self.send(request, [self.raw.body], self.raw.headers, self.raw.status)
        if isinstance(said := self._decide(call.body), web.Response):
            return said
        text = self._text(said)
        content = ([] if text is None else [{"text": text}]) + tool_use_blocks(said)
        return web.json_response(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": self._stop_reason(said),
                "usage": self._usage(),
                "metrics": {"latencyMs": 5},
            }
        )

    def _usage(self) -> dict[str, int]:
        total = self.input_tokens + self.output_tokens
        return {"inputTokens": self.input_tokens, "outputTokens": self.output_tokens, "totalTokens": total}

    def _frames(self, said: Answer) -> list[bytes]:
        frames = [event("messageStart", {"role": "assistant"})]
        text = self._text(said)
        for index, piece in enumerate(split_words(text, self.chunks) if text is not None else []):
            frames.append(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
            if index == 0 and self.stream_exception:
                frames.append(exception_frame(*self.stream_exception))
                return frames
        if self.omit_terminal:
            return frames
        if text is not None:
            frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        first = 0 if text is None else 1
        frames.extend(event(*e) for e in tool_use_events(said, first, self.argument_chunks))
        frames.append(event("messageStop", {"stopReason": self._stop_reason(said)}))
        frames.append(event("metadata", {"usage": self._usage(), "metrics": {"latencyMs": 5}}))
        return frames

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        call = await self._record(request, "converse-stream")
        if (error := await self._error_response()) is not None:
            return error
        if self.raw is not None:
            return await self.send(request, [self.raw.body], self.raw.headers, self.raw.status)
        if isinstance(said := self._decide(call.body), web.Response):
            return said
        frames = [corrupt(f) if i == self.corrupt_frame else f for i, f in enumerate(self._frames(said))]
        return await self.send(request, frames, {"content-type": "application/vnd.amazon.eventstream"})

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        call = await self._record(request, "invoke")
        if (error := await self._error_response()) is not None:
            return error
        text = call.body["inputText"]
        return web.json_response({"embedding": titan_vector(text), "inputTextTokenCount": len(text.split())})


def titan_vector(text: str, size: int = 4) -> list[float]:
    """The fake's deterministic embedding of `text` (real Titan v2 vectors have 1024 floats)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 4) for b in digest[:size]]


def use_fake_aws(monkeypatch: pytest.MonkeyPatch, endpoint_url: str, home: Path) -> None:
    """Points botocore at `endpoint_url` with static test credentials, and shuts every other way
    to AWS: no config or credential files, no instance metadata, no container credentials."""
    for name in (
        "AWS_BEARER_TOKEN_BEDROCK",  # would switch botocore from SigV4 to bearer auth
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))


@asynccontextmanager
async def bedrock_fake() -> AsyncIterator[BedrockFake]:
    fake = BedrockFake()
    app = web.Application()
    # Model ids arrive percent-encoded (":" as %3A, "/" in ARNs as %2F); aiohttp decodes them.
    app.router.add_post(r"/model/{model_id:.+}/converse", fake.converse)
    app.router.add_post(r"/model/{model_id:.+}/converse-stream", fake.converse_stream)
    app.router.add_post(r"/model/{model_id:.+}/invoke", fake.invoke)
    async with fake.serve(app):
        yield fake
