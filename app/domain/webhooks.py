"""Webhooks: where an organization's events are POSTed, signed so that receivers can verify them.

Signing (Stripe/GitHub style): the receiver gets the headers
- `Modelgate-Event-Id`: the event's id (the same on every try; receivers may drop repeats),
- `Modelgate-Timestamp`: Unix seconds when this try was signed,
- `Modelgate-Signature`: `v1=` + hex HMAC-SHA256 of `{timestamp}.{body}` under the webhook's secret,
and checks the signature over the raw body, and that the timestamp is recent (against replays).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from app.domain.errors import ErrorCollector
from app.domain.notifications import NotificationKind

EVENT_ID_HEADER = "Modelgate-Event-Id"
TIMESTAMP_HEADER = "Modelgate-Timestamp"
SIGNATURE_HEADER = "Modelgate-Signature"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_MIN_LENGTH = 24
SECRET_MAX_LENGTH = 200
URL_MAX_LENGTH = 2000
MAX_WEBHOOKS_PER_ORGANIZATION = 20


class WebhookErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NOT_FOUND = "NOT_FOUND"
    UNSAFE_URL = "UNSAFE_URL"


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook as shown: its secret is never read back."""

    id: UUID
    organization_id: UUID
    url: str
    events: tuple[NotificationKind, ...]  # empty: every kind
    enabled: bool
    created_at: datetime
    updated_at: datetime


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_secret(errors: ErrorCollector, secret: str, *field: str) -> None:
    if len(secret) < SECRET_MIN_LENGTH:
        errors.add(WebhookErrorCode.INVALID, f"must be at least {SECRET_MIN_LENGTH} characters", *field)
    elif len(secret) > SECRET_MAX_LENGTH:
        errors.add(WebhookErrorCode.TOO_LONG, f"must be at most {SECRET_MAX_LENGTH} characters", *field)
    elif not secret.isprintable() or secret != secret.strip():
        errors.add(WebhookErrorCode.INVALID, "must be printable, without surrounding spaces", *field)


def check_events(errors: ErrorCollector, events: tuple[NotificationKind, ...], *field: str) -> None:
    if len(set(events)) != len(events):
        errors.add(WebhookErrorCode.INVALID, "lists an event kind twice", *field)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Modelgate-Signature` header value for a body signed at `timestamp`."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: str, timestamp: str, body: bytes, header: str, *, now: float, tolerance: float = 300
) -> bool:
    """A receiver's check: the signature matches and the timestamp is within `tolerance` seconds."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - signed_at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, signed_at, body), header)
