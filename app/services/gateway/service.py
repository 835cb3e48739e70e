"""The gateway: resolve → policies → limits → provider (retries, fallbacks) → meter.

One code path for every front door (GraphQL and the OpenAI-compatible REST API). Expected failures
are `GatewayError`s; every call that got as far as a model writes one usage row (buffered, never
on the hot path), successes, failures and cancelled streams alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.db import DatabaseUnavailable
from app.domain.auth import Principal
from app.domain.calls import Usage
from app.domain.enums import FinishReason
from app.domain.errors import UserInputError
from app.domain.gateway import (
    CallOperation,
    CallStatus,
    CallWarning,
    GatewayError,
    GatewayErrorCode,
    ModelRef,
    UsageEvent,
    WarningCode,
    credits_for,
)
from app.domain.models import EffectiveModel
from app.domain.quota import Reservation
from app.domain.tokens import estimate_prompt_tokens, estimate_tokens
from app.metrics import CALL_LATENCY, CALLS, CREDITS, OPEN_STREAMS, TIME_TO_FIRST_TOKEN, TOKENS, labelled
from app.services.drain_clock import DrainClock
from app.services.gateway.attempts import (
    Attempts,
    StreamDone,
    StreamReset,
    StreamStarted,
    StreamText,
    system_prompts,
)
from app.services.gateway.requests import CallRequest, EmbedCall, check_call, check_embed
from app.services.gateway.resolution import Requested, Resolver, Route, check_limits
from app.services.limits import RateLimiter, StreamSlots
from app.services.model_cache import ResolvedModel
from app.services.quota import QuotaReservations
from app.services.usage import UsageRecorder


@dataclass(frozen=True, slots=True)
class CallResult:
    text: str
    finish_reason: FinishReason
    usage: Usage
    credits: Decimal
    requested: EffectiveModel
    served: EffectiveModel
    warnings: tuple[CallWarning, ...]


@dataclass(frozen=True, slots=True)
class EmbedResult:
    vectors: list[list[float]]
    usage: Usage
    credits: Decimal
    requested: EffectiveModel
    served: EffectiveModel
    warnings: tuple[CallWarning, ...]


# chatStream events, as the GraphQL layer shows them.
@dataclass(frozen=True, slots=True)
class StreamStart:
    request_id: str
    requested: EffectiveModel
    served: EffectiveModel
    # Known before the first byte (deprecation, migration, fallback): the REST front door sends
    # them as response headers; StreamEnd repeats them.
    warnings: tuple[CallWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamDelta:
    text: str
    index: int


@dataclass(frozen=True, slots=True)
class StreamResetEvent:
    reason: str
    served: EffectiveModel


@dataclass(frozen=True, slots=True)
class StreamEnd:
    finish_reason: FinishReason
    usage: Usage
    credits: Decimal
    warnings: tuple[CallWarning, ...]


@dataclass(frozen=True, slots=True)
class StreamError:
    error: GatewayError


GatewayStreamEvent = StreamStart | StreamDelta | StreamResetEvent | StreamEnd | StreamError


@dataclass
class _Meter:
    """What one call used, filled in as it goes and written once at the end."""

    principal: Principal
    operation: CallOperation
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    requested: Requested | None = None
    route: Route | None = None
    served: ResolvedModel | None = None
    usage: Usage = field(default_factory=Usage)
    first_token: float | None = None
    reservation: Reservation | None = None


class Gateway:
    def __init__(
        self,
        resolver: Resolver,
        attempts: Attempts,
        usage: UsageRecorder,
        quota: QuotaReservations,
        rate_limiter: RateLimiter,
        stream_slots: StreamSlots,
        drain: DrainClock,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.resolver = resolver
        self.attempts = attempts
        self.usage = usage
        self.quota = quota
        self.rate_limiter = rate_limiter
        self.stream_slots = stream_slots
        self.clock = clock
        # Shutting down: new calls are refused; waits on providers are cut when the grace ends.
        self.drain = drain

    @contextlib.contextmanager
    def _metered(self, meter: _Meter) -> Iterator[None]:
        """Counts a one-shot call as in flight (drain waits for it) and meters it however it ends."""
        status, error_code = CallStatus.ERROR, None
        self.drain.enter()
        try:
            yield
            status = CallStatus.SUCCESS
        except GatewayError as exc:
            error_code = exc.code.value
            raise
        except DatabaseUnavailable:
            error_code = GatewayErrorCode.SERVICE_UNAVAILABLE.value
            raise
        finally:
            self.drain.leave()
            self._meter(meter, status, error_code)

    def _admit_call(self) -> None:
        if self.drain.draining:
            raise GatewayError(
                GatewayErrorCode.SERVICE_UNAVAILABLE, "the server is shutting down; try again", retryable=True
            )

    async def complete(self, principal: Principal, request: CallRequest, request_id: str) -> CallResult:
        """generate and chat."""
        check_call(request)
        self._admit_call()
        meter = _Meter(principal, request.operation, request_id)
        with self._metered(meter):
            route = await self._admit(meter, request.model, request.project_id)
            check_limits(route, request.operation, _prompt_texts(route, request), request.max_tokens)
            meter.reservation = await self.quota.reserve_call(route, request)
            await self.rate_limiter.acquire(principal)
            with self.drain.bounded():
                served = await self.attempts.complete(route, request)
            meter.served = served.model
            meter.usage = served.result.usage
            return CallResult(
                text=served.result.text,
                finish_reason=served.result.finish_reason,
                usage=served.result.usage,
                credits=self._credits(meter),
                requested=route.requested.model,
                served=served.model.model,
                warnings=_warnings(route, served.model),
            )

    async def embed(self, principal: Principal, request: EmbedCall, request_id: str) -> EmbedResult:
        check_embed(request)
        self._admit_call()
        meter = _Meter(principal, CallOperation.EMBED, request_id)
        with self._metered(meter):
            route = await self._admit(meter, request.model, request.project_id)
            meter.reservation = await self.quota.reserve_embed(route, request.texts)
            await self.rate_limiter.acquire(principal)
            with self.drain.bounded():
                served = await self.attempts.embed(route, request.texts)
            meter.served = served.model
            meter.usage = served.result.usage
            return EmbedResult(
                vectors=served.result.vectors,
                usage=served.result.usage,
                credits=self._credits(meter),
                requested=route.requested.model,
                served=served.model.model,
                warnings=_warnings(route, served.model),
            )

    async def chat_stream(
        self, principal: Principal, request: CallRequest, request_id: str
    ) -> AsyncGenerator[GatewayStreamEvent]:
        """Events, never exceptions, for expected failures; the stream then ends. Closing the
        generator (the client completed or went away) closes the upstream request at once."""
        meter = _Meter(principal, CallOperation.CHAT_STREAM, request_id)
        status, error_code = CallStatus.CANCELLED, None
        text: list[str] = []
        OPEN_STREAMS.inc()
        self.drain.enter()
        try:
            check_call(request)
            self._admit_call()
            route = await self._admit(meter, request.model, request.project_id)
            check_limits(route, request.operation, _prompt_texts(route, request), request.max_tokens)
            meter.reservation = await self.quota.reserve_call(route, request)
            await self.rate_limiter.acquire(principal)
            async with self.stream_slots.acquire(route.organization.id):
                index = 0
                async with aclosing(self.attempts.stream(route, request)) as steps:
                    while True:
                        with self.drain.bounded():  # not past the end of a shutdown's grace
                            step = await anext(steps, None)
                        if step is None:
                            break
                        if isinstance(step, StreamText):
                            if meter.first_token is None:
                                meter.first_token = time.perf_counter()
                            text.append(step.text)
                            yield StreamDelta(step.text, index)
                            index += 1
                        elif isinstance(step, StreamStarted):
                            meter.served = step.model
                            yield StreamStart(
                                request_id,
                                route.requested.model,
                                step.model.model,
                                _warnings(route, step.model),
                            )
                        elif isinstance(step, StreamReset):
                            meter.served = step.model
                            text.clear()
                            index = 0
                            yield StreamResetEvent(step.reason, step.model.model)
                        elif isinstance(step, StreamDone):
                            meter.served = step.model
                            meter.usage = step.usage or _estimated_usage(request, text)
                            status = CallStatus.SUCCESS
                            yield StreamEnd(
                                step.finish_reason,
                                meter.usage,
                                self._credits(meter),
                                _warnings(route, step.model),
                            )
        except DatabaseUnavailable:
            # A cold cache or a lease the database did not grant in time (see app/db.py).
            status, error_code = CallStatus.ERROR, GatewayErrorCode.SERVICE_UNAVAILABLE.value
            yield StreamError(
                GatewayError(
                    GatewayErrorCode.SERVICE_UNAVAILABLE,
                    "the service is temporarily unavailable",
                    retryable=True,
                )
            )
        except UserInputError as exc:
            error = as_gateway_error(exc)
            status, error_code = CallStatus.ERROR, error.code.value
            if text:  # it failed after writing: what was streamed was still produced
                meter.usage = _estimated_usage(request, text)
            yield StreamError(error)
        finally:
            OPEN_STREAMS.dec()
            self.drain.leave()
            if status is CallStatus.CANCELLED:
                meter.usage = _estimated_usage(request, text)
            self._meter(meter, status, error_code)

    async def _admit(self, meter: _Meter, model: ModelRef, project_id: UUID | None) -> Route:
        requested = await self.resolver.requested(meter.principal, model, project_id)
        # From here on the call is metered, refused or not: the model it asked for is known.
        meter.requested = requested
        route = await self.resolver.route(requested, meter.operation)
        meter.route = route
        return route

    def _credits(self, meter: _Meter) -> Decimal:
        if meter.served is None:
            return Decimal(0)
        return credits_for(
            meter.usage.input_tokens, meter.usage.output_tokens, meter.served.model.credit_multiplier
        )

    def _meter(self, meter: _Meter, status: CallStatus, error_code: str | None) -> None:
        requested = meter.requested
        if requested is None:
            return  # refused before a model was known: nothing to meter
        served = meter.served.model if meter.served else None
        provider = (served or (meter.route.primary if meter.route else requested.model).model).provider.value
        elapsed = time.perf_counter() - meter.started
        event = UsageEvent(
            organization_id=requested.organization.id,
            project_id=requested.project_id,
            api_key_id=meter.principal.api_key_id,
            caller=meter.principal.label,
            operation=meter.operation,
            requested_model_id=requested.model.model.id,
            served_model_id=served.id if served else None,
            provider=provider,
            input_tokens=meter.usage.input_tokens,
            output_tokens=meter.usage.output_tokens,
            credits=self._credits(meter),
            latency_ms=round(elapsed * 1000),
            time_to_first_token_ms=round((meter.first_token - meter.started) * 1000)
            if meter.first_token
            else None,
            status=status,
            error_code=error_code,
            request_id=meter.request_id,
            created_at=self.clock(),
        )
        # Settled to what it cost; a call refused before it reserved settles nothing.
        self.usage.record(event, reserved=self.quota.settle(meter.reservation, event))
        model_name = (served or requested.model.model).record.name
        labelled(CALLS, meter.operation.value, model_name, provider, status.value).inc()
        labelled(CALL_LATENCY, meter.operation.value, provider).observe(elapsed)
        if meter.first_token is not None:
            labelled(TIME_TO_FIRST_TOKEN, provider).observe(meter.first_token - meter.started)
        labelled(TOKENS, "input", provider).inc(event.input_tokens)
        labelled(TOKENS, "output", provider).inc(event.output_tokens)
        labelled(CREDITS, provider).inc(float(event.credits))


def as_gateway_error(exc: UserInputError) -> GatewayError:
    """One error for a stream event: the first problem, with every message."""
    if isinstance(exc, GatewayError):
        return exc
    first = exc.errors[0]
    return GatewayError(
        GatewayErrorCode(first.code.value), "; ".join(e.message for e in exc.errors), field=first.field
    )


def _prompt_texts(route: Route, request: CallRequest) -> list[str]:
    return [*system_prompts(route.primary, request), *(m.content for m in request.messages)]


def _estimated_usage(request: CallRequest, text: list[str]) -> Usage:
    """For a stream cut short (or a provider that reports no usage): what was sent and received."""
    return Usage(
        input_tokens=estimate_prompt_tokens([m.content for m in request.messages]),
        output_tokens=estimate_tokens("".join(text)),
    )


def _warnings(route: Route, served: ResolvedModel) -> tuple[CallWarning, ...]:
    if served is route.primary:
        return route.warnings
    fallback = CallWarning(
        WarningCode.FALLBACK_USED,
        f"{route.primary.model.record.name} failed; served by its fallback {served.model.record.name}",
    )
    return (*route.warnings, fallback)
