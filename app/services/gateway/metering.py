"""What one call used, filled in as it goes and written once when it ends: one usage row per call
that got as far as a model (successes, failures and cancelled streams alike), the quota settled to
its true cost, and the call metrics. Nothing here waits on the database (rows are buffered)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from app.domain.auth import Principal
from app.domain.calls import Usage
from app.domain.gateway import CallOperation, CallStatus, UsageEvent, credits_for
from app.domain.models import EffectiveModel
from app.domain.quota import Reservation
from app.domain.tokens import estimate_tokens
from app.metrics import CALL_LATENCY, CALLS, CREDITS, TIME_TO_FIRST_TOKEN, TOKENS, labelled
from app.services.gateway.route import Requested, Route
from app.services.quota import QuotaReservations
from app.services.usage import UsageRecorder


@dataclass
class CallMeter:
    principal: Principal
    operation: CallOperation
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    requested: Requested | None = None
    route: Route | None = None
    served: EffectiveModel | None = None
    usage: Usage | None = None  # as the provider reported it; None: estimated from the text
    first_token: float | None = None
    reservation: Reservation | None = None
    input_tokens: int = 0  # the estimate of what is sent, for when the provider reports no usage
    output: list[str] = field(default_factory=list)

    def text(self, piece: str) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()
        self.output.append(piece)

    def answered_by(self, served: EffectiveModel, *, anew: bool = False) -> None:
        """`served` answers from now on; `anew`: after a reset, what the last one wrote is void."""
        self.served = served
        if anew:
            self.output.clear()
            self.usage = None

    def used(self) -> Usage:
        """What the provider reported, else (it reported nothing, or the call was cut short) an
        estimate of what was sent and received."""
        if self.usage is not None:
            return self.usage
        return Usage(self.input_tokens, estimate_tokens("".join(self.output)))

    def credits(self) -> Decimal:
        if self.served is None:
            return Decimal(0)
        usage = self.used()
        return credits_for(usage.input_tokens, usage.output_tokens, self.served.credit_multiplier)


class Metering:
    def __init__(self, usage: UsageRecorder, quota: QuotaReservations, clock: Callable[[], datetime]) -> None:
        self.usage = usage
        self.quota = quota
        self.clock = clock

    def write(self, meter: CallMeter, status: CallStatus, error_code: str | None) -> None:
        requested = meter.requested
        if requested is None:
            return  # refused before a model was known: nothing to meter
        served = meter.served
        provider = (served or (meter.route.primary if meter.route else requested.model).model).provider.value
        elapsed = time.perf_counter() - meter.started
        usage = meter.used() if served is not None or status is not CallStatus.ERROR else Usage()
        event = UsageEvent(
            organization_id=requested.organization.id,
            project_id=requested.project_id,
            api_key_id=meter.principal.api_key_id,
            caller=meter.principal.label,
            operation=meter.operation,
            requested_model_id=requested.model.model.id,
            served_model_id=served.id if served else None,
            provider=provider,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            credits=meter.credits() if served else Decimal(0),
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
