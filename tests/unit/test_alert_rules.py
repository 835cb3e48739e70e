"""The pure rules of alerts: which credit thresholds a write crosses, which end-of-life notice is
due, the backoff between tries, an event's delivery state, and what an email's HTML escapes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.domain.alert_events import END_OF_LIFE_NOTICE_DAYS, crossed_thresholds, notice_due
from app.domain.notifications import (
    Delivery,
    DeliveryChannel,
    DeliveryState,
    Message,
    delivery_state,
    retry_delay,
)


@pytest.mark.parametrize(
    ("before", "after", "crossed"),
    [
        ("0", "79.99", []),
        ("0", "80", [80]),
        ("79.99", "80.01", [80]),
        ("80", "99", []),
        ("79", "100", [80, 100]),
        ("99", "150", [100]),
        ("100", "150", []),
    ],
)
def test_crossed_thresholds_of_a_limit_of_100(before: str, after: str, crossed: list[int]) -> None:
    assert crossed_thresholds(Decimal(100), Decimal(before), Decimal(after)) == crossed


def test_a_zero_limit_is_exhausted_by_any_spend() -> None:
    assert crossed_thresholds(Decimal(0), Decimal(0), Decimal("0.01")) == [100]
    assert crossed_thresholds(Decimal(0), Decimal(0), Decimal(0)) == []


@pytest.mark.parametrize(
    ("days_left", "due"),
    [(45, None), (30, 30), (29.5, 30), (7.5, 30), (7, 7), (1.5, 7), (1, 1), (0.01, 1), (0, None), (-3, None)],
)
def test_the_end_of_life_notice_due(days_left: float, due: int | None) -> None:
    assert notice_due(days_left, END_OF_LIFE_NOTICE_DAYS) == due


def test_retries_back_off_doubling_up_to_the_cap() -> None:
    assert [retry_delay(n, base=30, cap=3600) for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


def delivery(state: DeliveryState) -> Delivery:
    return Delivery(
        uuid.uuid4(), DeliveryChannel.EMAIL, "a@b.test", None, state, 1, None, datetime.now(UTC), None
    )


def test_an_events_state_is_pending_while_any_delivery_is() -> None:
    sent, failed, pending = (
        delivery(s) for s in (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.PENDING)
    )
    assert delivery_state([]) is None
    assert delivery_state([sent]) is DeliveryState.SENT
    assert delivery_state([sent, failed]) is DeliveryState.FAILED
    assert delivery_state([sent, failed, pending]) is DeliveryState.PENDING


def test_the_html_body_escapes_what_it_quotes() -> None:
    message = Message("Model <b>x</b>", "It said <script>alert(1)</script>", "done & dusted", "nothing")
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "<h2>Model &lt;b&gt;x&lt;/b&gt;</h2>" in message.html
    assert "done &amp; dusted" in message.html
