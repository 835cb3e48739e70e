"""Calling providers along a route: one retry on the same model for retryable failures before the
first byte (honouring Retry-After up to a bound), then the next fallback. A tripped primary is
skipped. A stream that fails after text was sent fails over with a reset, never a retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.domain.enums import FinishReason
from app.domain.gateway import GatewayError, GatewayErrorCode
from app.metrics import FALLBACKS, PROVIDER_CALLS, labelled
from app.providers.base import (
    ChatRequest,
    Completion,
    Embeddings,
    EmbedRequest,
    Finished,
    ProviderError,
    StreamFailed,
    TextDelta,
    Usage,
    UsageUpdate,
)
from app.providers.registry import adapter_for
from app.providers.runtime import ProviderRuntime
from app.services.gateway.requests import CallRequest
from app.services.gateway.resolution import Route
from app.services.health import ModelHealthTracker
from app.services.model_cache import ResolvedModel

T = TypeVar("T")
_RETRY_BACKOFF = 0.1


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    result: T
    model: ResolvedModel


@dataclass(frozen=True, slots=True)
class StreamStarted:
    model: ResolvedModel


@dataclass(frozen=True, slots=True)
class StreamText:
    text: str


@dataclass(frozen=True, slots=True)
class StreamReset:
    reason: str
    model: ResolvedModel


@dataclass(frozen=True, slots=True)
class StreamDone:
    finish_reason: FinishReason
    usage: Usage | None
    model: ResolvedModel


StreamStep = StreamStarted | StreamText | StreamReset | StreamDone


def provider_failure(error: ProviderError | None) -> GatewayError:
    if error is None:
        return GatewayError(GatewayErrorCode.PROVIDER_ERROR, "no model could serve the call", retryable=True)
    return GatewayError(
        GatewayErrorCode.PROVIDER_ERROR,
        error.message,
        retryable=error.retryable,
        retry_after=error.retry_after,
        provider_code=error.code.value,
    )


def system_prompts(model: ResolvedModel, request: CallRequest) -> list[str]:
    """The model's effective system prompt comes first, then the caller's."""
    return [p for p in (model.system_prompt, request.system_prompt) if p]


def chat_request(model: ResolvedModel, request: CallRequest) -> ChatRequest:
    return ChatRequest(
        messages=request.messages,
        system_prompt="\n\n".join(system_prompts(model, request)) or None,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
    )


class Attempts:
    def __init__(
        self,
        runtime: ProviderRuntime,
        health: ModelHealthTracker,
        *,
        retry_after_bound: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.runtime = runtime
        self.health = health
        self.retry_after_bound = retry_after_bound
        self.sleep = sleep

    async def candidates(self, route: Route) -> list[ResolvedModel]:
        """The primary unless it is tripped (and has somewhere to go), then the fallbacks; a
        tripped fallback is tried last rather than not at all."""
        ordered = [route.primary, *route.fallbacks]
        healthy = [m for m in ordered if not await self.health.is_tripped(m.model.id)]
        tripped = [m for m in ordered if m not in healthy]
        return healthy + tripped if healthy else ordered

    async def complete(self, route: Route, request: CallRequest) -> Served[Completion]:
        async def call(model: ResolvedModel) -> Completion:
            adapter = adapter_for(model.target(), self.runtime)
            return await adapter.complete(chat_request(model, request))

        return await self._run(route, call)

    async def embed(self, route: Route, texts: tuple[str, ...]) -> Served[Embeddings]:
        async def call(model: ResolvedModel) -> Embeddings:
            return await adapter_for(model.target(), self.runtime).embed(EmbedRequest(texts))

        return await self._run(route, call)

    async def _run(self, route: Route, call: Callable[[ResolvedModel], Awaitable[T]]) -> Served[T]:
        error: ProviderError | None = None
        for model in await self.candidates(route):
            if error is not None:
                labelled(FALLBACKS, model.model.provider.value).inc()
            for attempt in range(2):
                try:
                    result = await call(model)
                except ProviderError as failed:
                    error = failed
                    labelled(PROVIDER_CALLS, model.model.provider.value, failed.code.value).inc()
                    if not failed.retryable:
                        raise provider_failure(failed) from failed
                    if attempt == 0 and await self._may_retry(failed):
                        continue
                    break
                labelled(PROVIDER_CALLS, model.model.provider.value, "OK").inc()
                await self.health.record_success(model.model.id)
                return Served(result, model)
            await self._record_failure(route, model, error)
        raise provider_failure(error)

    async def stream(self, route: Route, request: CallRequest) -> AsyncGenerator[StreamStep]:
        error: ProviderError | None = None
        started = False
        models = await self.candidates(route)
        for index, model in enumerate(models):
            if error is not None:
                labelled(FALLBACKS, model.model.provider.value).inc()
            sent_text = False
            for attempt in range(2):
                usage: Usage | None = None
                adapter = adapter_for(model.target(), self.runtime)
                async with aclosing(adapter.stream(chat_request(model, request))) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            if not started:
                                started = True
                                yield StreamStarted(model)
                            sent_text = True
                            yield StreamText(event.text)
                        elif isinstance(event, UsageUpdate):
                            usage = event.usage
                        elif isinstance(event, Finished):
                            if not started:
                                yield StreamStarted(model)
                            labelled(PROVIDER_CALLS, model.model.provider.value, "OK").inc()
                            await self.health.record_success(model.model.id)
                            yield StreamDone(event.reason, usage, model)
                            return
                        elif isinstance(event, StreamFailed):
                            error = event.error
                assert error is not None
                labelled(PROVIDER_CALLS, model.model.provider.value, error.code.value).inc()
                if not error.retryable:
                    raise provider_failure(error)
                # Never again on the same model once text was sent: the caller has seen it.
                if sent_text or attempt == 1 or not await self._may_retry(error):
                    break
            assert error is not None
            await self._record_failure(route, model, error)
            if sent_text and index + 1 < len(models):
                if not request.fail_over_after_text:
                    break
                yield StreamReset(f"{model.model.record.name} failed: {error.message}", models[index + 1])
        raise provider_failure(error)

    async def _may_retry(self, error: ProviderError) -> bool:
        wait = error.retry_after if error.retry_after is not None else _RETRY_BACKOFF
        if wait > self.retry_after_bound:
            return False
        await self.sleep(wait)
        return True

    async def _record_failure(self, route: Route, model: ResolvedModel, error: ProviderError | None) -> None:
        """Consecutive failures count against the primary, which trips under its policy."""
        if model is route.primary and route.trip_policy is not None and error is not None:
            await self.health.record_failure(
                model.model.id,
                route.trip_policy,
                error.code.value,
                route.organization.id,
                model.model.record.name,
            )
