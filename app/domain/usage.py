"""Usage reports, and the calendar months (UTC) that monthly credit limits count in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from app.domain.errors import CommonErrorCode, UserInputError
from app.domain.gateway import UsageEvent
from app.domain.models import ModelKind

MAX_REPORT_DAYS = 366


def month_of(moment: datetime) -> date:
    """The first day of the UTC calendar month `moment` falls in."""
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + 1, 1, 1) if month.month == 12 else date(month.year, month.month + 1, 1)


@dataclass(frozen=True, slots=True)
class Metered:
    """A usage event waiting to be written."""

    id: UUID  # assigned when recorded, so that writing a batch again cannot insert it twice
    event: UsageEvent
    reserved: bool  # its credits are held in this instance's quota lease until written


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int = 0
    error_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    credits: Decimal = Decimal(0)
    # The sum rather than the average, so that totals add up exactly.
    latency_ms_sum: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def average_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.requests if self.requests else None

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            requests=self.requests + other.requests,
            error_count=self.error_count + other.error_count,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            credits=self.credits + other.credits,
            latency_ms_sum=self.latency_ms_sum + other.latency_ms_sum,
        )


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Calls by the model that served them (after fallback or migration) or, for calls no model
    served (failures), by the model requested."""

    model_id: UUID | None
    # None when the model no longer exists (usage outlives models).
    model_kind: ModelKind | None
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class DayUsage:
    day: date  # UTC
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class UsageReport:
    totals: UsageTotals
    by_model: tuple[ModelUsage, ...]  # most credits first
    by_day: tuple[DayUsage, ...]  # oldest first; days without calls are left out

    @classmethod
    def of(cls, by_model: Iterable[ModelUsage], by_day: Iterable[DayUsage]) -> UsageReport:
        days = tuple(by_day)
        return cls(sum((d.totals for d in days), UsageTotals()), tuple(by_model), days)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Calls of one organization created in [since, until), optionally of one project or model
    (the model as `ModelUsage` counts it)."""

    organization_id: UUID
    since: datetime
    until: datetime
    project_id: UUID | None = None
    model_id: UUID | None = None


def check_report_range(since: datetime, until: datetime) -> None:
    if until < since:
        raise UserInputError.single(
            CommonErrorCode.OUT_OF_RANGE, "`to` must not be before `from`", ["filter", "to"]
        )
    if until - since > timedelta(days=MAX_REPORT_DAYS):
        raise UserInputError.single(
            CommonErrorCode.OUT_OF_RANGE, f"a report covers at most {MAX_REPORT_DAYS} days", ["filter", "to"]
        )
