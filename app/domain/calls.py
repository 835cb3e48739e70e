"""The call vocabulary shared by the providers, the gateway and both doors: messages, usage, the
provider stream events and the failure codes of an attempt. Owned by the domain so that neither
door has to import the provider layer to speak of a call."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.enums import ChatRole, FinishReason


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: ChatRole
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Usage so far; a later update replaces an earlier one."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class Finished:
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class StreamFailed:
    error: ProviderError


StreamEvent = TextDelta | UsageUpdate | Finished | StreamFailed


class ProviderErrorCode(StrEnum):
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    TIMEOUT = "TIMEOUT"
    CONNECT_FAILED = "CONNECT_FAILED"
    CONTEXT_TOO_LONG = "CONTEXT_TOO_LONG"
    CONTENT_FILTERED = "CONTENT_FILTERED"
    AUTH_FAILED = "AUTH_FAILED"
    BAD_REQUEST = "BAD_REQUEST"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    MALFORMED_RESPONSE = "MALFORMED_RESPONSE"
    # The answer stopped before its end: no finish reason, no terminal event (EOF or a cut body).
    TRUNCATED = "TRUNCATED"


_RETRYABLE_BY_DEFAULT = frozenset(
    {
        ProviderErrorCode.RATE_LIMITED,
        ProviderErrorCode.OVERLOADED,
        ProviderErrorCode.TIMEOUT,
        ProviderErrorCode.CONNECT_FAILED,
        ProviderErrorCode.UPSTREAM_ERROR,
        ProviderErrorCode.MALFORMED_RESPONSE,
        ProviderErrorCode.TRUNCATED,
    }
)


class ProviderError(Exception):
    """The only exception adapters raise. `message` is safe to show a caller: it never holds
    upstream headers, the request, or a credential."""

    def __init__(
        self,
        code: ProviderErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.retryable = code in _RETRYABLE_BY_DEFAULT if retryable is None else retryable

    def __repr__(self) -> str:
        return f"ProviderError({self.code}, {self.message!r}, status={self.status})"
