"""A fake Google Gemini API, Vertex AI and OAuth token endpoint on 127.0.0.1, faithful to the wire
format of their API references:

- Gemini API: `/v1beta/models/{model}:generateContent|streamGenerateContent|batchEmbedContents`,
  `x-goog-api-key` (a bad key is 400 INVALID_ARGUMENT "API key not valid", as for real).
- Vertex AI: `/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/{pub}/models/{model}:generateContent|
  streamGenerateContent|predict`, `Authorization: Bearer` with a token this fake issued.
- OAuth: `POST /token`, JWT bearer grant; the assertion's RS256 signature is checked with the test
  service account's public key.

Answers are GenerateContentResponse objects; `?alt=sse` streams are `data: …\\r\\n\\r\\n` frames with
`usageMetadata` on every chunk and no terminator (EOF ends them); errors are google.rpc.Status
envelopes `{"error":{code,message,status,details}}`, also as a mid-stream chunk. Tools, images and
structured output follow `tool_rules`, in the shapes `google_tools` reads and writes; a function call
is streamed whole in one chunk, and a last chunk with an empty text part carries `finishReason`.

    async with google_fake() as fake:
        fake.overloaded()
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web

from tests.fakes.common import FakeServer, RawReply, recorded, split_text
from tests.fakes.google_tools import function_call_parts, read_generate
from tests.fakes.tool_rules import Answer, Rejected, decide

API_KEY = "AIza-test-SECRET123456789"
_JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_response_ids = itertools.count(1)


@dataclass
class GoogleFake(FakeServer):
    """Also has the switches and observations of `FakeServer` (`delay`, `stall_after`, `requests`, …);
    a token request is recorded with its form fields as the body."""

    api_key: str = API_KEY
    # OAuth: set `service_account_public_key` before a Vertex call.
    service_account_public_key: Any = None
    token_lifetime: int = 3599
    token_delay: float = 0.0
    token_error: tuple[int, str, str] | None = None  # (status, error, error_description)
    token_requests: int = 0
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified claims + "kid"
    issued_tokens: list[str] = field(default_factory=list)
    # What the model answers.
    reply: str = "Hello from the fake Gemini."
    chunks: int = 3  # stream chunks the reply is split into
    finish_reason: str = "STOP"
    prompt_tokens: int = 13
    candidates_tokens: int = 8
    thoughts_tokens: int = 0
    block_reason: str | None = None  # promptFeedback.blockReason, no candidates
    tool_calls_per_answer: int = 1  # functionCall parts in one answer
    function_call_ids: bool = False  # functionCall parts carry an `id` (Vertex / newer Gemini models)
    thought_signature: bool = False  # the first functionCall part carries a thoughtSignature (Gemini 3)
    raw: RawReply | None = None  # answer a model call with these bytes instead (a recording)
    # Failure switches.
    error: tuple[int, str, str] | None = None  # (code, status, message) instead of an answer
    error_details: list[dict[str, Any]] = field(default_factory=list)
    error_headers: dict[str, str] = field(default_factory=dict)
    stream_error: tuple[int, str, str] | None = None  # (code, status, message) after the first chunk
    malformed_frame: bool = False  # a frame whose data is not JSON, after the first chunk
    omit_finish_reason: bool = False  # end at EOF without any chunk carrying finishReason

    # --- switches for the usual failures -------------------------------------------------------

    def rate_limited(self) -> None:
        self.error = (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
        self.error_details = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "Rpm"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"},
        ]

    def server_error(self) -> None:
        self.error = (500, "INTERNAL", "An internal error has occurred. Please retry or report in …")

    def overloaded(self) -> None:
        self.error = (503, "UNAVAILABLE", "The model is overloaded. Please try again later.")

    def context_too_long(self) -> None:
        self.error = (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1300000) exceeds the maximum number of tokens allowed (1048575).",
        )

    def safety(self) -> None:
        self.reply, self.finish_reason = "", "SAFETY"

    # --- endpoints -------------------------------------------------------------------------------

    async def gemini_api(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if request.headers.get("x-goog-api-key") != self.api_key:
            message = "API key not valid. Please pass a valid API key."
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
            return _error_response(400, "INVALID_ARGUMENT", message, details)
        return await self._answer(request, body)

    async def vertex(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued_tokens:
            return _error_response(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
            )
        return await self._answer(request, body)

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.requests.append(recorded(request, form))
        self.token_requests += 1
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if self.token_error is not None:
            status, error, description = self.token_error
            return web.json_response({"error": error, "error_description": description}, status=status)
        if form.get("grant_type") != _JWT_BEARER_GRANT:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        assertion = str(form.get("assertion", ""))
        try:
            # Signature, audience and issuer as Google checks them. Not iat/exp against the wall
            # clock: tests drive the adapter with a fake clock; only the lifetime is checked.
            claims = jwt.decode(
                assertion,
                self.service_account_public_key,
                algorithms=["RS256"],
                audience=f"{self.url}/token",
                options={"verify_exp": False, "verify_iat": False, "require": ["iss", "iat", "exp", "scope"]},
            )
        except (jwt.PyJWTError, TypeError, ValueError):
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if not 0 < claims["exp"] - claims["iat"] <= 3600:
            return _oauth_error("invalid_grant", "Invalid JWT: Token must be a short-lived token.")
        self.assertions.append({**claims, "kid": jwt.get_unverified_header(assertion).get("kid")})
        access_token = f"ya29.fake-access-token-{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(access_token)
        return web.json_response(
            {"access_token": access_token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    # --- answers ---------------------------------------------------------------------------------

    async def _answer(self, request: web.Request, body: Any) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return await self.send(request, [self.raw.body], self.raw.headers, self.raw.status)
        if self.error is not None:
            return _error_response(*self.error, self.error_details, headers=self.error_headers)
        method = request.match_info["method"]
        if method in ("generateContent", "streamGenerateContent"):
            try:
                said = decide(read_generate(body), self.reply, self.tool_calls_per_answer)
            except Rejected as rejected:
                return _error_response(400, "INVALID_ARGUMENT", rejected.message)
        if method == "streamGenerateContent":
            if request.query.get("alt") != "sse":
                return _error_response(400, "INVALID_ARGUMENT", "this fake streams only with alt=sse")
            headers = {"content-type": "text/event-stream", "x-content-type-options": "nosniff"}
            return await self.send(request, self._frames(said), headers)
        if method == "generateContent":
            parts = self._call_parts(said) if said.calls else None
            return web.json_response(self._response(said.text, last=True, parts=parts))
        if method == "batchEmbedContents":
            return web.json_response({"embeddings": [_embedding(r) for r in body["requests"]]})
        if method == "predict":
            return web.json_response({"predictions": [_prediction(i["content"]) for i in body["instances"]]})
        return _error_response(404, "NOT_FOUND", f"Method {method} not found.")

    def _usage(self, *, complete: bool) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if complete:
            usage["candidatesTokenCount"] = self.candidates_tokens
            if self.thoughts_tokens:
                usage["thoughtsTokenCount"] = self.thoughts_tokens
        total = self.prompt_tokens + (self.candidates_tokens + self.thoughts_tokens if complete else 0)
        usage["totalTokenCount"] = total
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        return usage

    def _call_parts(self, said: Answer) -> list[dict[str, Any]]:
        return function_call_parts(said, ids=self.function_call_ids, thought_signature=self.thought_signature)

    def _response(
        self, text: str, *, last: bool, parts: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        response: dict[str, Any] = {"usageMetadata": self._usage(complete=last)}
        if self.block_reason:
            response["promptFeedback"] = {"blockReason": self.block_reason}
        else:
            candidate: dict[str, Any] = {"index": 0}
            if parts is not None or text:
                candidate["content"] = {
                    "parts": parts if parts is not None else [{"text": text}],
                    "role": "model",
                }
            if last and not self.omit_finish_reason:
                candidate["finishReason"] = self.finish_reason
            if self.finish_reason == "SAFETY":
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                ]
            response["candidates"] = [candidate]
        response["modelVersion"] = "gemini-2.0-flash"
        response["responseId"] = f"fakeResponse{next(_response_ids):06d}"
        return response

    def _frames(self, said: Answer) -> list[bytes]:
        if said.calls:  # the calls whole, then the finish with an empty text part (as recorded)
            calls = self._response("", last=False, parts=self._call_parts(said))
            return [_sse(calls), _sse(self._response("", last=True, parts=[{"text": ""}]))]
        pieces = split_text(said.text, self.chunks) or [""]
        frames = []
        for index, piece in enumerate(pieces):
            frames.append(_sse(self._response(piece, last=index == len(pieces) - 1)))
            if index == 0 and self.malformed_frame:
                frames.append(b'data: {"candidates": [{"content": \r\n\r\n')
            if index == 0 and self.stream_error:
                code, status, message = self.stream_error
                frames.append(_sse({"error": {"code": code, "message": message, "status": status}}))
                break
        return frames


def fake_vector(text: str, size: int = 4) -> list[float]:
    """The fake's deterministic embedding of `text`."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 4) for b in digest[:size]]


def _embedding(request: dict[str, Any]) -> dict[str, Any]:
    return {"values": fake_vector("".join(part["text"] for part in request["content"]["parts"]))}


def _prediction(text: str) -> dict[str, Any]:
    statistics = {"token_count": len(text.split()), "truncated": False}
    return {"embeddings": {"values": fake_vector(text), "statistics": statistics}}


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\r\n\r\n"


def _error_response(
    code: int,
    status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=code, headers=headers)


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


@asynccontextmanager
async def google_fake() -> AsyncIterator[GoogleFake]:
    fake = GoogleFake()
    app = web.Application()
    app.router.add_post("/v1beta/models/{model}:{method}", fake.gemini_api)
    vertex_model = "/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}"
    for version in ("v1", "v1beta1"):
        app.router.add_post(f"/{version}{vertex_model}", fake.vertex)
    app.router.add_post("/token", fake.token)
    async with fake.serve(app):
        yield fake
