"""The gateway's vocabulary: why a call was refused or failed, what it warns about, what it used.

A `GatewayError` is an expected failure of a call (a policy, a quota, a provider failure after
retries and fallbacks); the GraphQL layer shows it as a user error or a `ChatStreamError` event,
the REST layer as an OpenAI error envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from app.domain.calls import TextDelta, ToolCallDelta, ToolCallDone, Usage
from app.domain.enums import FinishReason
from app.domain.errors import FieldError, UserInputError
from app.domain.ids import MODEL_TYPES, decode_any
from app.domain.models import EffectiveModel

# What a client names for the project's default model (the OpenAI-style `model` parameter).
DEFAULT_MODEL = "default"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which model a call asks for: by id, by name (which exactly one model the caller may use
    has), or neither: the project's default model."""

    id: UUID | None = None
    name: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> ModelRef:
        """A model id, a name, or (absent, empty or "default") the project default."""
        if not text or text == DEFAULT_MODEL:
            return cls()
        decoded = decode_any(text)
        if decoded is not None and decoded[0] in MODEL_TYPES:
            return cls(id=decoded[1])
        return cls(name=text)

    def matches(self, model: EffectiveModel) -> bool:
        return model.id == self.id if self.id is not None else model.record.name == self.name


class GatewayErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NOT_FOUND = "NOT_FOUND"
    NO_DEFAULT_MODEL = "NO_DEFAULT_MODEL"
    MODEL_DISABLED = "MODEL_DISABLED"
    MODEL_END_OF_LIFE = "MODEL_END_OF_LIFE"
    PLAN_UPGRADE_REQUIRED = "PLAN_UPGRADE_REQUIRED"
    MAX_TOKENS_TOO_LARGE = "MAX_TOKENS_TOO_LARGE"
    CONTEXT_TOO_LONG = "CONTEXT_TOO_LONG"
    MODEL_GROUP_MISMATCH = "MODEL_GROUP_MISMATCH"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    # The provider refused the input or the answer on content grounds.
    CONTENT_FILTERED = "CONTENT_FILTERED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # The caller's credential was revoked or expired while a stream ran.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    # Two tool definitions (or two tool calls) share a name (an id).
    DUPLICATE = "DUPLICATE"
    # The model lacks a capability the call needs (tools, vision, structured output).
    CAPABILITY_NOT_SUPPORTED = "CAPABILITY_NOT_SUPPORTED"


class GatewayError(UserInputError):
    """An expected failure of a call (one user error). `message` is safe to show the caller."""

    def __init__(
        self,
        code: GatewayErrorCode,
        message: str,
        *,
        field: tuple[str, ...] | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        provider_code: str | None = None,
    ) -> None:
        super().__init__([FieldError(code, message, field)])
        self.code = code
        self.message = message
        self.field = field
        self.retryable = retryable
        self.retry_after = retry_after
        # For PROVIDER_ERROR: the provider layer's code (RATE_LIMITED, TIMEOUT, …).
        self.provider_code = provider_code


class WarningCode(StrEnum):
    MODEL_DEPRECATED = "MODEL_DEPRECATED"
    MODEL_MIGRATED = "MODEL_MIGRATED"
    FALLBACK_USED = "FALLBACK_USED"


@dataclass(frozen=True, slots=True)
class CallWarning:
    code: WarningCode
    message: str
    end_of_life_at: datetime | None = None
    # The replacement of a deprecated or migrated model, when the caller may use it.
    replacement: EffectiveModel | None = None
    # For a deprecated or migrated model: since when it counts as deprecated for this answer (the
    # end of life once it has passed, else the time of the answer: no date of deprecation is kept).
    deprecated_since: datetime | None = None


# A stream as the gateway gives it to a door: a start (who answers), the provider's text and tool
# call deltas as they come (each tool call then whole), a reset when it fails over after text (the
# new answer starts again), then one end or one error. Expected failures are StreamError events,
# never exceptions.
@dataclass(frozen=True, slots=True)
class StreamStart:
    requested: EffectiveModel
    served: EffectiveModel
    # Known before the first byte (deprecation, migration, fallback): the REST door sends them as
    # response headers; StreamEnd repeats them.
    warnings: tuple[CallWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The stream failed over after text was sent: what was sent is void; `served` answers anew."""

    reason: str
    served: EffectiveModel
    warnings: tuple[CallWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamEnd:
    finish_reason: FinishReason
    usage: Usage
    credits: Decimal
    warnings: tuple[CallWarning, ...]


@dataclass(frozen=True, slots=True)
class StreamError:
    error: GatewayError


GatewayStreamEvent = (
    StreamStart | TextDelta | ToolCallDelta | ToolCallDone | StreamReset | StreamEnd | StreamError
)


class CallOperation(StrEnum):
    GENERATE = "GENERATE"
    CHAT = "CHAT"
    CHAT_STREAM = "CHAT_STREAM"
    EMBED = "EMBED"


class CallStatus(StrEnum):
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One call, as metered: one row per call, successes and failures alike."""

    organization_id: UUID
    project_id: UUID | None
    api_key_id: UUID | None
    caller: str  # the key prefix or the JWT subject, never a secret
    operation: CallOperation
    requested_model_id: UUID | None
    served_model_id: UUID | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    credits: Decimal
    latency_ms: int
    time_to_first_token_ms: int | None
    status: CallStatus
    error_code: str | None
    request_id: str
    created_at: datetime


def credits_for(input_tokens: int, output_tokens: int, credit_multiplier: Decimal) -> Decimal:
    """(input + output) / 1000 * the served model's credit multiplier."""
    return (Decimal(input_tokens + output_tokens) / 1000 * credit_multiplier).quantize(Decimal("0.000001"))


class HealthState(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"  # failing, not yet tripped
    TRIPPED = "TRIPPED"  # skipped in favour of its fallbacks until trippedUntil


@dataclass(frozen=True, slots=True)
class ModelHealth:
    state: HealthState
    consecutive_failures: int
    tripped_until: datetime | None


@dataclass(frozen=True, slots=True)
class TripPolicy:
    """When a primary trips, from its first enabled fallback entry."""

    failed_requests: int
    duration_minutes: int
    notify_emails: tuple[str, ...]
