"""The failure table (app/services/gateway/failures.py) is complete and keeps its promises."""

from __future__ import annotations

from app.config import Settings
from app.domain.calls import ProviderError, ProviderErrorCode
from app.domain.gateway import GatewayErrorCode
from app.services.gateway.failures import FAILURES, gateway_error, rule_for


def test_every_provider_failure_has_a_rule() -> None:
    assert set(FAILURES) == set(ProviderErrorCode)


def test_answers_that_are_not_answers_fail_over_like_an_aborted_connection() -> None:
    abort = FAILURES[ProviderErrorCode.CONNECT_FAILED]
    for code in (ProviderErrorCode.MALFORMED_RESPONSE, ProviderErrorCode.TRUNCATED):
        assert FAILURES[code] == abort


def test_a_hung_upstream_is_failed_over_within_thirty_seconds_by_default() -> None:
    settings = Settings()
    assert settings.provider_connect_timeout + settings.provider_first_byte_timeout <= 30
    timeout = FAILURES[ProviderErrorCode.TIMEOUT]
    assert (timeout.retry, timeout.fall_over) == (False, True)


def test_both_doors_see_the_same_code_for_what_the_caller_must_change() -> None:
    overflow = gateway_error(ProviderError(ProviderErrorCode.CONTEXT_TOO_LONG, "too long"))
    assert (overflow.code, overflow.retryable) == (GatewayErrorCode.CONTEXT_TOO_LONG, False)
    filtered = gateway_error(ProviderError(ProviderErrorCode.CONTENT_FILTERED, "filtered"))
    assert filtered.code is GatewayErrorCode.CONTENT_FILTERED


def test_a_provider_that_says_retrying_is_pointless_is_believed() -> None:
    exhausted = ProviderError(ProviderErrorCode.RATE_LIMITED, "quota", retryable=False)
    assert rule_for(exhausted).fall_over
    assert gateway_error(exhausted).retryable is False
