"""The provider interface: who to call (ProviderTarget), what to ask (ChatRequest, EmbedRequest),
normalised results, and the guarantees around the stream events and the one error type adapters
raise (both of the call vocabulary, `app.domain.calls`).

Adapters implement `_complete`, `_stream` and `_embed`; the public methods here add the guarantees
every caller relies on, so no adapter has to remember them:

- `complete`/`embed` raise only `ProviderError`;
- `stream` never raises (except cancellation): it yields zero or more `TextDelta`/`ToolCallDelta`/
  `UsageUpdate` events and then exactly one terminal event, `Finished` or `StreamFailed`; before a
  `Finished` it yields a `ToolCallDone` for each tool call, assembled from its deltas (adapters emit
  only the deltas; a provider that sends a call whole emits it as one delta).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field

import aiohttp
import orjson

from app.domain.calls import (
    ChatMessage,
    Finished,
    ProviderError,
    ProviderErrorCode,
    ResponseFormat,
    StreamEvent,
    StreamFailed,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    ToolChoice,
    ToolDefinition,
    Usage,
)
from app.domain.credentials import Credentials
from app.domain.enums import ApiType, FinishReason, ModelGroup, Provider


@dataclass(frozen=True, slots=True)
class ProviderTarget:
    """One model as the provider layer sees it: where it lives, how to authenticate, what it is."""

    provider: Provider
    provider_model_id: str
    model_group: ModelGroup = ModelGroup.CHAT
    api_type: ApiType = ApiType.CHAT_COMPLETION
    model_url: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    credentials: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A conversation. `system_prompt` is already composed (model's prompt, then the request's);
    each adapter places it where its provider expects it."""

    messages: tuple[ChatMessage, ...]
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: ToolChoice | None = None  # None: the provider's default (auto when there are tools)
    parallel_tool_calls: bool | None = None  # None: the provider's default
    response_format: ResponseFormat | None = None  # None: text

    def texts(self) -> list[str]:
        """Every text the request sends, for estimates: the composed system prompt, the messages'
        texts, tool calls and results, and the tool definitions."""
        texts = [self.system_prompt] if self.system_prompt else []
        for message in self.messages:
            texts.append(message.text)
            texts.extend(f"{call.name}({call.arguments})" for call in message.tool_calls)
        texts.extend(orjson.dumps(definition_of(tool)).decode() for tool in self.tools)
        return texts

    @property
    def image_count(self) -> int:
        return sum(len(m.images) for m in self.messages)

    def prompt_text(self) -> str:
        """The conversation flattened for completion endpoints, which take one prompt string."""
        return "\n\n".join(self.texts())


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()


def definition_of(tool: ToolDefinition) -> dict[str, object]:
    """A tool definition as plain data (for estimates and for wire formats that take it as is)."""
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters or {}}


class _ToolCalls:
    """Assembles streamed tool calls from their deltas, in order of their index."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str, str, list[str]]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        call_id, name, arguments = self._calls.get(delta.index, ("", "", []))
        arguments.append(delta.arguments)
        self._calls[delta.index] = (delta.id or call_id, delta.name or name, arguments)

    def done(self) -> list[ToolCallDone]:
        return [
            ToolCallDone(index, ToolCall(call_id, name, "".join(arguments)))
            for index, (call_id, name, arguments) in sorted(self._calls.items())
        ]


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: list[list[float]]
    usage: Usage


def error_from_exception(exc: BaseException) -> ProviderError:
    """Maps whatever escaped an adapter to a ProviderError without leaking its text."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):  # aiohttp's own timeouts are TimeoutErrors too
        return ProviderError(ProviderErrorCode.TIMEOUT, "the provider did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderError(ProviderErrorCode.CONNECT_FAILED, "could not connect to the provider")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        # A dropped connection, or a body cut short of its length or chunking.
        return ProviderError(ProviderErrorCode.CONNECT_FAILED, "the connection to the provider failed")
    if isinstance(exc, KeyError | IndexError | TypeError | AttributeError | ValueError):
        return ProviderError(ProviderErrorCode.MALFORMED_RESPONSE, "the provider sent a malformed response")
    return ProviderError(ProviderErrorCode.UPSTREAM_ERROR, "the provider call failed")


class ProviderAdapter(ABC):
    """One wire format. Instances are cheap and made per call for one target."""

    def __init__(self, target: ProviderTarget) -> None:
        self.target = target

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            return await self._complete(request)
        except Exception as exc:
            raise error_from_exception(exc) from exc

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]:
        finished = False
        tool_calls = _ToolCalls()
        try:
            # aclosing: when the consumer stops early, the adapter's cleanup (closing the upstream
            # response) runs now, not whenever the generator is collected.
            async with aclosing(self._stream(request)) as events:
                async for event in events:
                    if isinstance(event, ToolCallDelta):
                        tool_calls.add(event)
                    elif isinstance(event, Finished):
                        for done in tool_calls.done():  # every call whole, before the finish
                            yield done
                    if isinstance(event, Finished | StreamFailed):
                        finished = True
                        yield event
                        return
                    yield event
        except Exception as exc:
            finished = True
            yield StreamFailed(error_from_exception(exc))
            return
        if not finished:
            yield StreamFailed(ProviderError(ProviderErrorCode.TRUNCATED, "the provider stream ended early"))

    async def embed(self, request: EmbedRequest) -> Embeddings:
        try:
            return await self._embed(request)
        except Exception as exc:
            raise error_from_exception(exc) from exc

    @abstractmethod
    async def _complete(self, request: ChatRequest) -> Completion: ...

    @abstractmethod
    def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent]: ...

    async def _embed(self, request: EmbedRequest) -> Embeddings:
        raise ProviderError(
            ProviderErrorCode.BAD_REQUEST,
            f"{self.target.provider} models do not support embeddings here",
            retryable=False,
        )
