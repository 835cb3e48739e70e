"""Every way an attempt on a model can fail, and what the gateway does about it — one table.

For each provider failure: the gateway code the caller sees (the same on every door), whether the
same model is tried once more (only before the first byte, and only when the provider did not say
that retrying is pointless), whether the call moves on to the next model (after text was sent, with
a reset), whether it counts against the model's health (consecutive failures trip it), and whether
the caller may usefully try again later.

Malformed, truncated and empty answers are failures like an aborted connection: the upstream
answered, but not with an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.calls import ProviderError, ProviderErrorCode
from app.domain.gateway import GatewayError, GatewayErrorCode


@dataclass(frozen=True, slots=True)
class FailureRule:
    code: GatewayErrorCode
    retry: bool  # once more on the same model, before the first byte
    fall_over: bool  # then the next model of the route
    counts: bool  # a failure for the model's health (trips)
    transient: bool  # the caller may try again later


_UPSTREAM_DOWN = FailureRule(GatewayErrorCode.PROVIDER_ERROR, True, True, True, True)

FAILURES: dict[ProviderErrorCode, FailureRule] = {
    ProviderErrorCode.CONNECT_FAILED: _UPSTREAM_DOWN,
    ProviderErrorCode.UPSTREAM_ERROR: _UPSTREAM_DOWN,
    ProviderErrorCode.RATE_LIMITED: _UPSTREAM_DOWN,
    ProviderErrorCode.OVERLOADED: _UPSTREAM_DOWN,
    ProviderErrorCode.MALFORMED_RESPONSE: _UPSTREAM_DOWN,
    ProviderErrorCode.TRUNCATED: _UPSTREAM_DOWN,
    # A hung upstream: the call's deadline is better spent on the next model than on waiting again.
    ProviderErrorCode.TIMEOUT: FailureRule(GatewayErrorCode.PROVIDER_ERROR, False, True, True, True),
    # A credential the provider refuses (or an exhausted account) makes the model unusable: try another.
    ProviderErrorCode.AUTH_FAILED: FailureRule(GatewayErrorCode.PROVIDER_ERROR, False, True, True, False),
    # The request itself is refused: another model would refuse it too; the model is not at fault.
    ProviderErrorCode.BAD_REQUEST: FailureRule(GatewayErrorCode.PROVIDER_ERROR, False, False, False, False),
    ProviderErrorCode.CONTEXT_TOO_LONG: FailureRule(
        GatewayErrorCode.CONTEXT_TOO_LONG, False, False, False, False
    ),
    ProviderErrorCode.CONTENT_FILTERED: FailureRule(
        GatewayErrorCode.CONTENT_FILTERED, False, False, False, False
    ),
}


def rule_for(error: ProviderError) -> FailureRule:
    return FAILURES[error.code]


def gateway_error(error: ProviderError | None) -> GatewayError:
    """What the caller is told once no model could serve the call."""
    if error is None:
        return GatewayError(GatewayErrorCode.PROVIDER_ERROR, "no model could serve the call", retryable=True)
    rule = rule_for(error)
    return GatewayError(
        rule.code,
        error.message,
        retryable=rule.transient and error.retryable,
        retry_after=error.retry_after,
        provider_code=error.code.value,
    )


def deadline_passed(seconds: float) -> ProviderError:
    """The call's deadline ran out during an attempt: a timeout that no other model gets to redeem."""
    return ProviderError(
        ProviderErrorCode.TIMEOUT, f"no answer within the call's deadline of {seconds:g} seconds"
    )
