"""The gateway: resolve → policies → limits → provider (retries, fallbacks) → meter.

One code path for every front door (GraphQL and the OpenAI-compatible REST API). Expected failures
are `GatewayError`s (in a stream: a StreamError event); every call that got as far as a model is
metered once (`metering.py`), successes, failures and cancelled streams alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from app.db import DatabaseUnavailable
from app.domain.auth import Principal
from app.domain.calls import Finished, TextDelta, ToolCall, ToolCallDelta, ToolCallDone, Usage, UsageUpdate
from app.domain.enums import FinishReason
from app.domain.errors import UserInputError
from app.domain.gateway import (
    CallOperation,
    CallStatus,
    CallWarning,
    GatewayError,
    GatewayErrorCode,
    GatewayStreamEvent,
    ModelRef,
    StreamEnd,
    StreamError,
    StreamReset,
)
from app.domain.models import EffectiveModel
from app.metrics import OPEN_STREAMS
from app.providers.base import ChatRequest
from app.services.drain_clock import DrainClock
from app.services.gateway.attempts import Attempts
from app.services.gateway.capabilities import Needs, needed
from app.services.gateway.metering import CallMeter, Metering
from app.services.gateway.requests import CallRequest, EmbedCall, check_call, check_embed
from app.services.gateway.resolution import Resolver
from app.services.gateway.route import Route, check_limits, input_estimate
from app.services.limits import RateLimiter, StreamSlots
from app.services.quota import QuotaReservations
from app.services.usage import UsageRecorder


@dataclass(frozen=True, slots=True)
class CallResult:
    text: str
    tool_calls: tuple[ToolCall, ...]
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
        self.quota = quota
        self.rate_limiter = rate_limiter
        self.stream_slots = stream_slots
        self.metering = Metering(usage, quota, clock)
        # Shutting down: new calls are refused; waits on providers are cut when the grace ends.
        self.drain = drain

    async def complete(self, principal: Principal, request: CallRequest, request_id: str) -> CallResult:
        """generate and chat."""
        check_call(request)
        self._admit_call()
        meter = CallMeter(principal, request.operation, request_id)
        with self._metered(meter):
            route = await self._admit(meter, request.model, request.project_id, needed(request))
            check_limits(route, request)
            meter.reservation = await self.quota.reserve_call(route, request)
            await self.rate_limiter.acquire(principal)
            with self.drain.bounded():
                served = await self.attempts.complete(route, request)
            meter.answered_by(served.model.model)
            meter.usage = served.result.usage
            return CallResult(
                text=served.result.text,
                tool_calls=served.result.tool_calls,
                finish_reason=served.result.finish_reason,
                usage=served.result.usage,
                credits=meter.credits(),
                requested=route.requested.model,
                served=served.model.model,
                warnings=route.warnings_for(served.model),
            )

    async def embed(self, principal: Principal, request: EmbedCall, request_id: str) -> EmbedResult:
        check_embed(request)
        self._admit_call()
        meter = CallMeter(principal, CallOperation.EMBED, request_id)
        with self._metered(meter):
            route = await self._admit(meter, request.model, request.project_id)
            meter.reservation = await self.quota.reserve_embed(route, request.texts)
            await self.rate_limiter.acquire(principal)
            with self.drain.bounded():
                served = await self.attempts.embed(route, request.texts)
            meter.answered_by(served.model.model)
            meter.usage = served.result.usage
            return EmbedResult(
                vectors=served.result.vectors,
                usage=served.result.usage,
                credits=meter.credits(),
                requested=route.requested.model,
                served=served.model.model,
                warnings=route.warnings_for(served.model),
            )

    async def chat_stream(
        self, principal: Principal, request: CallRequest, request_id: str
    ) -> AsyncGenerator[GatewayStreamEvent]:
        """Events, never exceptions, for expected failures; the stream then ends. Closing the
        generator (the client completed or went away) closes the upstream request at once."""
        meter = CallMeter(principal, CallOperation.CHAT_STREAM, request_id)
        meter.input_tokens = input_estimate(
            ChatRequest(request.messages, request.system_prompt, tools=request.tools)
        )
        status, error_code = CallStatus.CANCELLED, None
        OPEN_STREAMS.inc()
        self.drain.enter()
        try:
            check_call(request)
            self._admit_call()
            route = await self._admit(meter, request.model, request.project_id, needed(request))
            check_limits(route, request)
            meter.input_tokens = input_estimate(route.chat_request(route.primary, request))
            meter.reservation = await self.quota.reserve_call(route, request)
            await self.rate_limiter.acquire(principal)
            async with (
                self.stream_slots.acquire(route.organization.id),
                aclosing(self.attempts.stream(route, request)) as events,
            ):
                while True:
                    with self.drain.bounded():  # not past the end of a shutdown's grace
                        event = await anext(events, None)
                    if event is None:
                        break
                    if isinstance(event, TextDelta):
                        meter.text(event.text)
                        yield event
                    elif isinstance(event, ToolCallDelta | ToolCallDone):
                        if isinstance(event, ToolCallDelta):
                            meter.text(event.arguments)  # what the model wrote, for the estimate
                        yield event
                    elif isinstance(event, UsageUpdate):
                        meter.usage = event.usage
                    elif isinstance(event, Finished):
                        status = CallStatus.SUCCESS
                        yield StreamEnd(
                            event.reason, meter.used(), meter.credits(), _warnings_of(route, meter)
                        )
                    else:  # StreamStart, StreamReset: who answers (anew, after a reset)
                        meter.answered_by(event.served, anew=isinstance(event, StreamReset))
                        yield event
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
            yield StreamError(error)
        finally:
            OPEN_STREAMS.dec()
            self.drain.leave()
            self.metering.write(meter, status, error_code)

    def _admit_call(self) -> None:
        if self.drain.draining:
            raise GatewayError(
                GatewayErrorCode.SERVICE_UNAVAILABLE, "the server is shutting down; try again", retryable=True
            )

    async def _admit(
        self, meter: CallMeter, model: ModelRef, project_id: UUID | None, needs: Needs | None = None
    ) -> Route:
        requested = await self.resolver.requested(meter.principal, model, project_id)
        # From here on the call is metered, refused or not: the model it asked for is known.
        meter.requested = requested
        route = await self.resolver.route(requested, meter.operation, needs)
        meter.route = route
        return route

    @contextlib.contextmanager
    def _metered(self, meter: CallMeter) -> Iterator[None]:
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
            self.metering.write(meter, status, error_code)


def _warnings_of(route: Route, meter: CallMeter) -> tuple[CallWarning, ...]:
    """The warnings of whichever model of the route answered."""
    served = next((m for m in route.models if m.model is meter.served), route.primary)
    return route.warnings_for(served)


def as_gateway_error(exc: UserInputError) -> GatewayError:
    """One error for a stream event: the first problem, with every message."""
    if isinstance(exc, GatewayError):
        return exc
    first = exc.errors[0]
    return GatewayError(
        GatewayErrorCode(first.code.value), "; ".join(e.message for e in exc.errors), field=first.field
    )
