"""Notifications: events for people (a model tripped, a budget nearly spent, a model about to reach
its end of life, a key about to expire or revoked), and their deliveries.

Each event is written to an outbox in the same transaction as the state change that caused it,
under a key that names the change (`event_key`), so that the same change seen by several instances
is written once. Writing it also writes one delivery per recipient (an email address of its own or
of the organization's alert emails, or a webhook of the organization that takes that kind), which a
relay sends later (app/services/alert_relay.py).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class NotificationKind(StrEnum):
    MODEL_TRIPPED = "MODEL_TRIPPED"
    MODEL_RECOVERED = "MODEL_RECOVERED"
    CREDITS_WARNING = "CREDITS_WARNING"  # 80 % of the monthly credit limit used
    CREDITS_EXHAUSTED = "CREDITS_EXHAUSTED"  # 100 %
    MODEL_END_OF_LIFE_SOON = "MODEL_END_OF_LIFE_SOON"  # in 30, 7 or 1 days
    API_KEY_EXPIRING = "API_KEY_EXPIRING"  # in 7 days
    API_KEY_REVOKED = "API_KEY_REVOKED"


class DeliveryChannel(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"


class DeliveryState(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Message:
    """What an event says to people: what happened, what Modelgate did about it, what to do."""

    subject: str
    happened: str
    done: str
    to_do: str

    @property
    def text(self) -> str:
        return (
            f"{self.happened}\n\n"
            f"What Modelgate did: {self.done}\n\n"
            f"What to do: {self.to_do}\n\n"
            "-- \nModelgate alerts"
        )

    @property
    def html(self) -> str:
        def section(title: str, text: str) -> str:
            return f"<h3>{title}</h3>\n<p>{html.escape(text)}</p>\n"

        return (
            f"<html><body>\n<h2>{html.escape(self.subject)}</h2>\n"
            f"<p>{html.escape(self.happened)}</p>\n"
            + section("What Modelgate did", self.done)
            + section("What to do", self.to_do)
            + "<p><small>Modelgate alerts</small></p>\n</body></html>\n"
        )


@dataclass(frozen=True, slots=True)
class NewNotification:
    """An event to write to the outbox. `organization_id` None: about a system model, for the
    platform (its email recipients only). `recipients`: its own email addresses (a trip's
    notifyEmails), maybe none; the organization's alert emails are added as it is written."""

    key: str
    organization_id: UUID | None
    kind: NotificationKind
    recipients: tuple[str, ...]
    message: Message
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's copy of an event: an email address, or a webhook (None once deleted)."""

    id: UUID
    channel: DeliveryChannel
    email: str | None
    webhook_id: UUID | None
    state: DeliveryState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Notification:
    """An event in the outbox. `sent_at`: when its last delivery was sent, all of them sent."""

    id: UUID
    organization_id: UUID | None
    kind: NotificationKind
    recipients: tuple[str, ...]
    subject: str
    body: str
    payload: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery this instance may send until `claimed_until`, with its event."""

    id: UUID
    channel: DeliveryChannel
    email: str | None
    webhook_id: UUID | None
    attempts: int  # this one included
    claimed_until: datetime
    notification_id: UUID
    organization_id: UUID | None
    kind: NotificationKind
    subject: str
    body: str
    html_body: str
    payload: dict[str, Any]
    created_at: datetime


def delivery_state(deliveries: list[Delivery]) -> DeliveryState | None:
    """An event's state: PENDING while any delivery may still go out, else FAILED if any failed,
    else SENT. None: nobody to deliver to."""
    states = {d.state for d in deliveries}
    for state in (DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.SENT):
        if state in states:
            return state
    return None


def last_error(deliveries: list[Delivery]) -> str | None:
    errors = [d for d in deliveries if d.last_error]
    return errors[-1].last_error if errors else None


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before the next try of a delivery that failed `attempts` times: doubling from `base`."""
    return float(min(cap, base * 2 ** max(attempts - 1, 0)))
