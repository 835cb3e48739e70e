"""The pure rules of model health: when a failure trips a model, what state it shows, what the
trip notification says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.domain.alert_events import TripAudience, model_tripped
from app.domain.gateway import HealthState, ModelHealth, TripPolicy
from app.domain.notifications import NotificationKind
from app.repositories.health import NEVER_FAILED, HealthRow
from app.services.health import health_at, is_tripped_at, should_trip

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POLICY = TripPolicy(failed_requests=3, duration_minutes=5, notify_emails=())


def test_a_failure_trips_at_exactly_failed_requests() -> None:
    assert not should_trip(HealthRow(2), POLICY, NOW)
    assert should_trip(HealthRow(3), POLICY, NOW)


def test_a_failure_while_tripped_does_not_trip_again() -> None:
    assert not should_trip(HealthRow(4, NOW + timedelta(minutes=1)), POLICY, NOW)


def test_a_failure_after_a_trip_ended_trips_again_at_once() -> None:
    assert should_trip(HealthRow(4, NOW - timedelta(seconds=1)), POLICY, NOW)


def test_a_trip_ends_when_the_clock_reaches_tripped_until() -> None:
    until = NOW + timedelta(minutes=5)
    assert is_tripped_at(HealthRow(3, until), until - timedelta(microseconds=1))
    assert not is_tripped_at(HealthRow(3, until), until)


def test_states() -> None:
    until = NOW + timedelta(minutes=5)
    assert health_at(NEVER_FAILED, NOW) == ModelHealth(HealthState.HEALTHY, 0, None)
    assert health_at(HealthRow(2), NOW) == ModelHealth(HealthState.DEGRADED, 2, None)
    assert health_at(HealthRow(3, until), NOW) == ModelHealth(HealthState.TRIPPED, 3, until)
    # Once the trip is over, the count stays until a success and trippedUntil is not shown.
    assert health_at(HealthRow(3, until), until) == ModelHealth(HealthState.DEGRADED, 3, None)
    assert health_at(HealthRow(0, until), until) == ModelHealth(HealthState.HEALTHY, 0, None)


def test_the_trip_notification_says_what_happened_and_until_when() -> None:
    model_id = uuid.uuid4()
    until = NOW + timedelta(minutes=5)
    audience = TripAudience(None, "support-bot", ("ops@acme.test",), ("backup-bot",))
    notification = model_tripped(
        audience, model_id=model_id, consecutive_failures=3, error_code="SERVER_ERROR", tripped_until=until
    )
    assert notification.kind is NotificationKind.MODEL_TRIPPED
    assert notification.key == f"MODEL_TRIPPED:{model_id}:2025-03-01T12:05:00+00:00"
    assert notification.recipients == ("ops@acme.test",)
    message = notification.message
    assert message.subject == "Model support-bot is tripped until 2025-03-01T12:05:00+00:00"
    for fact in (
        "support-bot",
        "3 times",
        "SERVER_ERROR",
        "2025-03-01T12:05:00+00:00",
        "fallbacks: backup-bot",
    ):
        assert fact in message.text
    assert "<h3>What to do</h3>" in message.html
    assert notification.payload == {
        "modelId": str(model_id),
        "modelName": "support-bot",
        "consecutiveFailures": 3,
        "errorCode": "SERVER_ERROR",
        "trippedUntil": until.isoformat(),
        "fallbacks": ["backup-bot"],
    }
