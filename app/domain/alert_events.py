"""The alert events: each built from the facts of the change that causes it, with the key that makes
it once-only, the message for people and the payload for programs (webhooks, GraphQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from app.domain.notifications import Message, NewNotification, NotificationKind

# A monthly credit limit is announced when its usage reaches these percentages.
CREDIT_THRESHOLDS = (80, 100)
# A model in use is announced this many days before its end of life (each once).
END_OF_LIFE_NOTICE_DAYS = (30, 7, 1)
# An API key is announced this many days before it expires.
KEY_EXPIRY_NOTICE_DAYS = 7


@dataclass(frozen=True, slots=True)
class TripAudience:
    """Who hears of a primary model's trips and recoveries, and what serves meanwhile."""

    organization_id: UUID | None
    model_name: str
    notify_emails: tuple[str, ...]
    fallbacks: tuple[str, ...]  # names, in the order they are tried


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _fallbacks(audience: TripAudience) -> str:
    return ", ".join(audience.fallbacks) if audience.fallbacks else "none (calls fail)"


def model_tripped(
    audience: TripAudience,
    *,
    model_id: UUID,
    consecutive_failures: int,
    error_code: str,
    tripped_until: datetime,
) -> NewNotification:
    name, until = audience.model_name, _at(tripped_until)
    return NewNotification(
        key=f"{NotificationKind.MODEL_TRIPPED}:{model_id}:{until}",
        organization_id=audience.organization_id,
        kind=NotificationKind.MODEL_TRIPPED,
        recipients=audience.notify_emails,
        message=Message(
            subject=f"Model {name} is tripped until {until}",
            happened=(
                f"The model {name} failed {consecutive_failures} times in a row (last error: {error_code})."
            ),
            done=(
                f"Until {until}, calls to it go straight to its fallbacks: {_fallbacks(audience)}. "
                "After that it is tried again; if it fails once more, it trips again."
            ),
            to_do=(
                f"Check the provider of {name} (status page, credentials, quota). Nothing is needed "
                "for calls to go on while the fallbacks serve."
            ),
        ),
        payload={
            "modelId": str(model_id),
            "modelName": name,
            "consecutiveFailures": consecutive_failures,
            "errorCode": error_code,
            "trippedUntil": tripped_until.isoformat(),
            "fallbacks": list(audience.fallbacks),
        },
    )


def model_recovered(audience: TripAudience, *, model_id: UUID, tripped_until: datetime) -> NewNotification:
    name = audience.model_name
    return NewNotification(
        # One recovery per trip: the trip's end names it.
        key=f"{NotificationKind.MODEL_RECOVERED}:{model_id}:{_at(tripped_until)}",
        organization_id=audience.organization_id,
        kind=NotificationKind.MODEL_RECOVERED,
        recipients=audience.notify_emails,
        message=Message(
            subject=f"Model {name} recovered",
            happened=f"The model {name}, tripped until {_at(tripped_until)}, answered a call again.",
            done="Calls go to it again; its fallbacks serve only when it fails.",
            to_do="Nothing.",
        ),
        payload={"modelId": str(model_id), "modelName": name, "trippedUntil": tripped_until.isoformat()},
    )


def credits_threshold(
    *, organization_id: UUID, month: date, threshold: int, limit: Decimal, used: Decimal
) -> NewNotification:
    exhausted = threshold >= 100
    kind = NotificationKind.CREDITS_EXHAUSTED if exhausted else NotificationKind.CREDITS_WARNING
    month_name = month.strftime("%Y-%m")
    return NewNotification(
        key=f"{kind}:{organization_id}:{month.isoformat()}",
        organization_id=organization_id,
        kind=kind,
        recipients=(),
        message=Message(
            subject=f"{threshold} % of the monthly credit limit used ({month_name})",
            happened=(
                f"The organization has used {_credits(used)} of its {_credits(limit)} credits "
                f"for {month_name} (UTC)."
            ),
            done=(
                "Calls that do not fit in what is left are refused with QUOTA_EXCEEDED until the month ends."
                if exhausted
                else "Nothing yet: calls go on until the limit is reached, then they are refused."
            ),
            to_do="Raise the organization's monthly credit limit, or reduce usage until next month.",
        ),
        payload={
            "month": month.isoformat(),
            "threshold": threshold,
            "limit": str(limit),
            "used": str(used),
        },
    )


def crossed_thresholds(limit: Decimal, before: Decimal, after: Decimal) -> list[int]:
    """The credit thresholds a write took usage past (from `before` to `after`)."""
    if limit <= 0:
        return [100] if after > before else []
    return [t for t in CREDIT_THRESHOLDS if before * 100 < limit * t <= after * 100]


def end_of_life_soon(
    *,
    organization_id: UUID | None,
    model_id: UUID,
    model_name: str,
    end_of_life_at: datetime,
    notice_days: int,
    replacement_name: str | None,
    deprecation_notice: str | None,
) -> NewNotification:
    replacement = (
        f"its replacement {replacement_name}" if replacement_name else "the model you choose instead"
    )
    return NewNotification(
        key=(
            f"{NotificationKind.MODEL_END_OF_LIFE_SOON}:{model_id}:{organization_id}:"
            f"{_at(end_of_life_at)}:{notice_days}"
        ),
        organization_id=organization_id,
        kind=NotificationKind.MODEL_END_OF_LIFE_SOON,
        recipients=(),
        message=Message(
            subject=f"Model {model_name} reaches its end of life in {notice_days} day(s)",
            happened=(
                f"The model {model_name}, which you use, reaches its end of life on {_at(end_of_life_at)}."
                + (f" {deprecation_notice}" if deprecation_notice else "")
            ),
            done=(
                "Nothing yet. From then on its calls fail, or go to its replacement in organizations "
                "that auto-migrate end-of-life models."
            ),
            to_do=f"Move your calls to {replacement} before then.",
        ),
        payload={
            "modelId": str(model_id),
            "modelName": model_name,
            "endOfLifeAt": end_of_life_at.isoformat(),
            "daysBefore": notice_days,
            "replacementModelName": replacement_name,
            "deprecationNotice": deprecation_notice,
        },
    )


def notice_due(days_left: float, notices: tuple[int, ...]) -> int | None:
    """The notice that is due `days_left` before a date: the smallest threshold not below it (an
    earlier notice never sent is skipped, not sent late). None: none yet, or the date has passed."""
    if days_left <= 0:
        return None
    due = [n for n in notices if days_left <= n]
    return min(due) if due else None


def api_key_expiring(
    *, organization_id: UUID, key_id: UUID, key_name: str, prefix: str, expires_at: datetime
) -> NewNotification:
    return NewNotification(
        key=f"{NotificationKind.API_KEY_EXPIRING}:{key_id}:{_at(expires_at)}",
        organization_id=organization_id,
        kind=NotificationKind.API_KEY_EXPIRING,
        recipients=(),
        message=Message(
            subject=f"API key {key_name} expires on {_at(expires_at)}",
            happened=f"The API key {key_name} ({prefix}…) expires on {_at(expires_at)}.",
            done="Nothing yet. From then on, calls with it are refused as unauthenticated.",
            to_do="Create a new key, move its users to it, then revoke the old one.",
        ),
        payload={
            "apiKeyId": str(key_id),
            "name": key_name,
            "prefix": prefix,
            "expiresAt": expires_at.isoformat(),
        },
    )


def api_key_revoked(
    *, organization_id: UUID, key_id: UUID, key_name: str, prefix: str, revoked_at: datetime
) -> NewNotification:
    return NewNotification(
        key=f"{NotificationKind.API_KEY_REVOKED}:{key_id}",
        organization_id=organization_id,
        kind=NotificationKind.API_KEY_REVOKED,
        recipients=(),
        message=Message(
            subject=f"API key {key_name} was revoked",
            happened=f"The API key {key_name} ({prefix}…) was revoked at {_at(revoked_at)}.",
            done="Every request with it is refused from now on, open connections included.",
            to_do="If that was not intended, create a new key; a revoked key cannot be restored.",
        ),
        payload={
            "apiKeyId": str(key_id),
            "name": key_name,
            "prefix": prefix,
            "revokedAt": revoked_at.isoformat(),
        },
    )


def _credits(value: Decimal) -> str:
    return f"{value.normalize():f}"
