"""Calling providers along a route. What each failure leads to is the table in `failures.py`: at
most one retry on the same model before the first byte (honouring Retry-After up to a bound), then
the next fallback. A tripped primary is skipped. A stream that fails after text was sent fails over
with a reset, never a retry. One deadline per call (the model's, else the server's default for the
kind of call) caps every attempt, retry and fallback together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.domain.alert_events import TripAudience
from app.domain.calls import (
    Finished,
    ProviderError,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    UsageUpdate,
)
from app.domain.gateway import StreamReset, StreamStart
from app.metrics import FALLBACKS, PROVIDER_CALLS, labelled
from app.providers.base import Completion, Embeddings, EmbedRequest
from app.providers.registry import adapter_for
from app.providers.runtime import ProviderRuntime
from app.services.gateway.failures import deadline_passed, gateway_error, rule_for
from app.services.gateway.requests import CallRequest
from app.services.gateway.route import Route
from app.services.health import ModelHealthTracker
from app.services.model_cache import ResolvedModel
from app.wait_timer import WaitTimer

T = TypeVar("T")
_RETRY_BACKOFF = 0.1


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    result: T
    model: ResolvedModel


# What `stream` yields: the gateway's stream events (app.domain.gateway) with the provider's text
# deltas as they come, and at the end the serving attempt's usage (if it reported any) and finish,
# which the metering around it turns into the StreamEnd.
AttemptEvent = StreamStart | TextDelta | ToolCallDelta | ToolCallDone | UsageUpdate | StreamReset | Finished


class Attempts:
    def __init__(
        self,
        runtime: ProviderRuntime,
        health: ModelHealthTracker,
        *,
        retry_after_bound: float = 5.0,
        call_deadline: float = 120.0,
        stream_deadline: float = 600.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.runtime = runtime
        self.health = health
        self.retry_after_bound = retry_after_bound
        self.call_deadline = call_deadline
        self.stream_deadline = stream_deadline
        self.sleep = sleep

    async def candidates(self, route: Route) -> list[ResolvedModel]:
        """The primary unless it is tripped (and has somewhere to go), then the fallbacks; a
        tripped fallback is tried last rather than not at all."""
        ordered = [route.primary, *route.fallbacks]
        healthy = [m for m in ordered if not await self.health.is_tripped(m.model.id)]
        tripped = [m for m in ordered if m not in healthy]
        return healthy + tripped if healthy else ordered

    def deadline(self, route: Route, default: float) -> float:
        """Seconds the whole call may take, retries and fallbacks included: the requested model's own
        deadline, else the server's default for this kind of call."""
        own = route.primary.model.call_deadline_seconds
        return float(own) if own is not None else default

    async def complete(self, route: Route, request: CallRequest) -> Served[Completion]:
        async def call(model: ResolvedModel) -> Completion:
            adapter = adapter_for(model.target(), self.runtime)
            return await adapter.complete(route.chat_request(model, request))

        return await self._run(route, call)

    async def embed(self, route: Route, texts: tuple[str, ...]) -> Served[Embeddings]:
        async def call(model: ResolvedModel) -> Embeddings:
            return await adapter_for(model.target(), self.runtime).embed(EmbedRequest(texts))

        return await self._run(route, call)

    async def _run(self, route: Route, call: Callable[[ResolvedModel], Awaitable[T]]) -> Served[T]:
        error: ProviderError | None = None
        seconds = self.deadline(route, self.call_deadline)
        deadline = asyncio.get_running_loop().time() + seconds
        for model in await self.candidates(route):
            if error is not None:
                labelled(FALLBACKS, model.model.provider.value).inc()
            for attempt in range(2):
                try:
                    async with asyncio.timeout_at(deadline):
                        result = await call(model)
                except TimeoutError:
                    error = deadline_passed(seconds)
                    await self._failed(route, model, error)
                    raise gateway_error(error) from None
                except ProviderError as failed:
                    failure = failed
                    if attempt == 0 and await self._may_retry(failed, deadline):
                        labelled(PROVIDER_CALLS, model.model.provider.value, failed.code.value).inc()
                        continue
                    break
                labelled(PROVIDER_CALLS, model.model.provider.value, "OK").inc()
                await self.health.record_success(model.model.id, trip_audience(route, model))
                return Served(result, model)
            error = failure
            if not await self._failed(route, model, failure):
                break
        raise gateway_error(error)

    async def stream(self, route: Route, request: CallRequest) -> AsyncGenerator[AttemptEvent]:
        error: ProviderError | None = None
        started = False
        seconds = self.deadline(route, self.stream_deadline)
        deadline = asyncio.get_running_loop().time() + seconds
        models = await self.candidates(route)
        timer = WaitTimer.until(deadline)  # one timer for the stream's waits, not one per chunk
        try:
            for index, model in enumerate(models):
                if error is not None:
                    labelled(FALLBACKS, model.model.provider.value).inc()
                sent_text = False
                for attempt in range(2):
                    usage: UsageUpdate | None = None  # the attempt's latest, passed on with its finish
                    adapter = adapter_for(model.target(), self.runtime)
                    async with aclosing(adapter.stream(route.chat_request(model, request))) as events:
                        while True:
                            try:
                                # Around each wait, never around a yield: the deadline cancels the
                                # provider read, not whatever the consumer does with an event.
                                with timer:
                                    event = await anext(events)
                            except TimeoutError:
                                error = deadline_passed(seconds)
                                await self._failed(route, model, error)
                                raise gateway_error(error) from None
                            if isinstance(event, UsageUpdate):
                                usage = event
                                continue
                            if isinstance(event, StreamFailed):  # the adapter's one terminal failure
                                failure = event.error
                                break
                            if not started:
                                started = True
                                warnings = route.warnings_for(model)
                                yield StreamStart(route.requested.model, model.model, warnings)
                            if isinstance(event, Finished):
                                labelled(PROVIDER_CALLS, model.model.provider.value, "OK").inc()
                                await self.health.record_success(model.model.id, trip_audience(route, model))
                                if usage is not None:
                                    yield usage
                                yield event
                                return
                            sent_text = True
                            yield event
                    error = failure
                    # Never again on the same model once text was sent: the caller has seen it.
                    if sent_text or attempt == 1 or not await self._may_retry(failure, deadline):
                        break
                    labelled(PROVIDER_CALLS, model.model.provider.value, failure.code.value).inc()
                if not await self._failed(route, model, failure) or index + 1 == len(models):
                    break
                if sent_text:
                    if not request.fail_over_after_text:
                        break
                    following = models[index + 1]
                    reason = f"{model.model.record.name} failed: {failure.message}"
                    yield StreamReset(reason, following.model, route.warnings_for(following))
            raise gateway_error(error)
        finally:
            timer.close()

    async def _may_retry(self, error: ProviderError, deadline: float) -> bool:
        """Once more on the same model, when the failure allows it, the provider did not say it is
        pointless, and the wait (Retry-After, bounded) fits before the call's deadline."""
        if not (rule_for(error).retry and error.retryable):
            return False
        wait = error.retry_after if error.retry_after is not None else _RETRY_BACKOFF
        if wait > self.retry_after_bound or asyncio.get_running_loop().time() + wait >= deadline:
            return False
        await self.sleep(wait)
        return True

    async def _failed(self, route: Route, model: ResolvedModel, error: ProviderError) -> bool:
        """Counts the failed attempt (metrics, health) and says whether the call falls over to the
        next model. Consecutive failures count against the primary, which trips under its policy."""
        labelled(PROVIDER_CALLS, model.model.provider.value, error.code.value).inc()
        rule = rule_for(error)
        audience = trip_audience(route, model)
        if rule.counts and audience is not None and route.trip_policy is not None:
            await self.health.record_failure(model.model.id, route.trip_policy, error.code.value, audience)
        return rule.fall_over


def trip_audience(route: Route, model: ResolvedModel) -> TripAudience | None:
    """Who hears of `model`'s trips and recoveries: only a primary with a trip policy has them."""
    if model is not route.primary or route.trip_policy is None:
        return None
    return TripAudience(
        organization_id=route.organization.id,
        model_name=model.model.record.name,
        notify_emails=route.trip_policy.notify_emails,
        fallbacks=tuple(f.model.record.name for f in route.fallbacks),
    )
