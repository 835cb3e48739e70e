"""Organizations and projects, and the rules on their fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from app.domain.emails import is_email_address
from app.domain.enums import Plan
from app.domain.errors import ErrorCollector
from app.domain.storable import DecimalColumn

NAME_MAX_LENGTH = 200
MAX_CONCURRENT_STREAMS_LIMIT = 10_000
MAX_ALERT_EMAILS = 20  # also a CHECK of organizations.alert_emails
CREDIT_LIMIT_COLUMN = DecimalColumn(precision=20, scale=6)  # organizations.monthly_credit_limit


class TenancyErrorCode(StrEnum):
    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    PERMISSION_DENIED = "PERMISSION_DENIED"


@dataclass(frozen=True, slots=True)
class Organization:
    id: UUID
    name: str
    plan: Plan
    monthly_credit_limit: Decimal | None
    auto_migrate_end_of_life: bool
    external_id: str | None
    max_concurrent_streams: int | None  # None: the server's default
    alert_emails: tuple[str, ...]  # emailed every event of the organization
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Project:
    id: UUID
    organization_id: UUID
    name: str
    created_at: datetime
    updated_at: datetime


def check_name(errors: ErrorCollector, name: str | None, *path: str) -> None:
    """Names are 1-200 characters after trimming surrounding white space."""
    if name is None:
        return
    if not name.strip():
        errors.add(TenancyErrorCode.REQUIRED, "must not be empty", *path)
    elif len(name) > NAME_MAX_LENGTH:
        errors.add(TenancyErrorCode.TOO_LONG, f"must be at most {NAME_MAX_LENGTH} characters", *path)


def check_credit_limit(errors: ErrorCollector, limit: Decimal | None, *path: str) -> None:
    if limit is not None and (problem := CREDIT_LIMIT_COLUMN.problem(limit)):
        errors.add(TenancyErrorCode.OUT_OF_RANGE, problem, *path)


def check_max_concurrent_streams(errors: ErrorCollector, cap: int | None, *path: str) -> None:
    if cap is not None and not 1 <= cap <= MAX_CONCURRENT_STREAMS_LIMIT:
        errors.add(
            TenancyErrorCode.OUT_OF_RANGE, f"must be between 1 and {MAX_CONCURRENT_STREAMS_LIMIT:,}", *path
        )


def check_alert_emails(errors: ErrorCollector, emails: tuple[str, ...], *path: str) -> None:
    """At most 20 addresses, each once: two that differ only in case reach the same person."""
    if len(emails) > MAX_ALERT_EMAILS:
        errors.add(TenancyErrorCode.OUT_OF_RANGE, f"at most {MAX_ALERT_EMAILS} addresses", *path)
    seen: set[str] = set()
    for index, email in enumerate(emails):
        if not is_email_address(email):
            errors.add(TenancyErrorCode.INVALID, "not an email address", *path, str(index))
        elif email.casefold() in seen:
            errors.add(TenancyErrorCode.DUPLICATE, "listed already (ignoring case)", *path, str(index))
        seen.add(email.casefold())
