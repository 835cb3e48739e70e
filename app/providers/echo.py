"""ECHO: a deterministic, offline provider for demos and tests. It never calls anything.

What it answers:
- CHAT models reply `Echo: <the last user message>`, or call a tool, quote tool results, answer
  JSON, count images: see `echo_answers.py`. COMPLETION models reply `Echo: <prompt_text()>`.
- Streams go word by word: each word with the space that follows it is one `TextDelta`; a tool
  call's arguments arrive in pieces of a few characters (`ToolCallDelta`s).
- Tokens are words: `max_tokens` cuts the reply after that many words (finish reason LENGTH);
  usage counts the words of every text sent (tool definitions too) as input, the words sent (or
  of a tool call's arguments) as output.
- Embeddings are 8 floats derived from a SHA-256 of each text (unit length), usage in words.

Optional provider settings (strings, like every provider setting):
- `wordDelayMs`: pause between words, 0 to 5000 ms, so a demo or a test can get a slow stream;
  `complete` takes as long as the stream would.
- `failWith`: a `ProviderErrorCode` name (e.g. `RATE_LIMITED`, `OVERLOADED`); every call fails with
  that error (retryable as the code says), to demonstrate fallbacks.
- `failAfterWords`: with `failWith`, a stream sends this many words before it fails, to demonstrate
  failing over after text was sent.

Factory: `echo_adapter(target, runtime) -> ProviderAdapter`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
from collections.abc import AsyncGenerator

from app.domain.calls import (
    Finished,
    ProviderError,
    ProviderErrorCode,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageUpdate,
)
from app.domain.enums import FinishReason, ModelGroup
from app.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    EmbedRequest,
    ProviderAdapter,
    ProviderTarget,
)
from app.providers.echo_answers import answer
from app.providers.runtime import ProviderRuntime

_MAX_WORD_DELAY_MS = 5000
_VECTOR_SIZE = 8
_ARGUMENT_PIECE = 12  # characters of a tool call's arguments per streamed delta


class EchoAdapter(ProviderAdapter):
    async def _complete(self, request: ChatRequest) -> Completion:
        self._fail_if_configured()
        call = self._tool_call(request)
        if call is not None:
            usage = Usage(_input_words(request), len(call.arguments.split()))
            return Completion("", FinishReason.TOOL_CALLS, usage, (call,))
        words, finish = self._reply(request)
        if len(words) > 1:
            await asyncio.sleep(self._word_delay() * (len(words) - 1))
        return Completion(" ".join(words), finish, Usage(_input_words(request), len(words)))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        call = self._tool_call(request)
        if call is not None:
            async for event in self._stream_call(request, call):
                yield event
            return
        words, finish = self._reply(request)
        delay = self._word_delay()
        fail_after = self._words_before_failing()
        for index, word in enumerate(words):
            if index == fail_after:
                self._fail_if_configured()
            if index:
                await asyncio.sleep(delay)
            yield TextDelta(word if index == len(words) - 1 else word + " ")
        if fail_after is not None:
            self._fail_if_configured()  # failAfterWords at or beyond the reply's length
        yield UsageUpdate(Usage(_input_words(request), len(words)))
        yield Finished(finish)

    async def _embed(self, request: EmbedRequest) -> Embeddings:
        self._fail_if_configured()
        vectors = [_vector(text) for text in request.texts]
        return Embeddings(vectors, Usage(input_tokens=sum(len(t.split()) for t in request.texts)))

    async def _stream_call(self, request: ChatRequest, call: ToolCall) -> AsyncGenerator[StreamEvent]:
        self._fail_if_configured()
        arguments = call.arguments
        pieces = [arguments[i : i + _ARGUMENT_PIECE] for i in range(0, len(arguments), _ARGUMENT_PIECE)]
        yield ToolCallDelta(0, pieces[0], id=call.id, name=call.name)
        for piece in pieces[1:]:
            await asyncio.sleep(self._word_delay())
            yield ToolCallDelta(0, piece)
        yield UsageUpdate(Usage(_input_words(request), len(arguments.split())))
        yield Finished(FinishReason.TOOL_CALLS)

    def _tool_call(self, request: ChatRequest) -> ToolCall | None:
        if self.target.model_group is ModelGroup.COMPLETION:
            return None
        return answer(request).tool_call

    def _reply(self, request: ChatRequest) -> tuple[list[str], FinishReason]:
        if self.target.model_group is ModelGroup.COMPLETION:
            words = ["Echo:", *request.prompt_text().split()]
        else:
            # Split on single spaces, so that joining gives back the text exactly (JSON answers).
            words = answer(request).text.split(" ")
        if request.max_tokens is not None and len(words) > request.max_tokens:
            return words[: max(request.max_tokens, 0)], FinishReason.LENGTH
        return words, FinishReason.STOP

    def _word_delay(self) -> float:
        milliseconds = self._int_setting("wordDelayMs") or 0
        return min(max(milliseconds, 0), _MAX_WORD_DELAY_MS) / 1000

    def _words_before_failing(self) -> int | None:
        """How many words a stream sends before failing; None when it does not fail."""
        if not self.target.settings.get("failWith"):
            return None
        return max(self._int_setting("failAfterWords") or 0, 0)

    def _fail_if_configured(self) -> None:
        name = self.target.settings.get("failWith")
        if not name:
            return
        try:
            code = ProviderErrorCode[name.strip().upper()]
        except KeyError:
            raise ProviderError(
                ProviderErrorCode.BAD_REQUEST,
                "the ECHO setting failWith must name a provider error code",
                retryable=False,
            ) from None
        raise ProviderError(code, f"ECHO was configured to fail with {code}")

    def _int_setting(self, name: str) -> int | None:
        value = self.target.settings.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise ProviderError(
                ProviderErrorCode.BAD_REQUEST,
                f"the ECHO setting {name} must be a whole number",
                retryable=False,
            ) from None


def _input_words(request: ChatRequest) -> int:
    return sum(len(text.split()) for text in request.texts())


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [value / 2**31 - 1.0 for value in struct.unpack(f">{_VECTOR_SIZE}I", digest)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def echo_adapter(target: ProviderTarget, runtime: ProviderRuntime) -> ProviderAdapter:
    """ECHO needs nothing from the runtime; the signature matches every other adapter factory."""
    return EchoAdapter(target)
