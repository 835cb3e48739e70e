"""Notifications: messages for people (e.g. a fallback's notifyEmails when its primary trips).

They are written to an outbox in the same transaction as what they report, so that one event gives
exactly one message; a sender delivers them later and marks them sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class NotificationKind(StrEnum):
    MODEL_TRIPPED = "MODEL_TRIPPED"


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A message to write to the outbox. `organization_id` None: about a system model."""

    organization_id: UUID | None
    kind: NotificationKind
    recipients: tuple[str, ...]
    subject: str
    body: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Notification:
    """A message in the outbox. `sent_at` None: not delivered yet."""

    id: UUID
    organization_id: UUID | None
    kind: NotificationKind
    recipients: tuple[str, ...]
    subject: str
    body: str
    payload: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None


def trip_notification(
    *,
    organization_id: UUID | None,
    model_id: UUID,
    model_name: str,
    consecutive_failures: int,
    error_code: str,
    tripped_until: datetime,
    recipients: tuple[str, ...],
) -> NewNotification:
    until = tripped_until.isoformat(timespec="seconds")
    return NewNotification(
        organization_id=organization_id,
        kind=NotificationKind.MODEL_TRIPPED,
        recipients=recipients,
        subject=f"Model {model_name} is tripped until {until}",
        body=(
            f"The model {model_name} failed {consecutive_failures} times in a row "
            f"(last error: {error_code}).\n"
            f"Until {until}, calls to it go straight to its fallbacks. After that it is tried again; "
            f"if it fails once more, it trips again."
        ),
        payload={
            "modelId": str(model_id),
            "modelName": model_name,
            "consecutiveFailures": consecutive_failures,
            "errorCode": error_code,
            "trippedUntil": tripped_until.isoformat(),
        },
    )
