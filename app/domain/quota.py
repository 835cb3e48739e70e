"""Monthly credit limits by reservation: the most a call may cost, and how much of an
organization's remaining budget an instance leases to cover it.

A call reserves its ceiling before any provider is called and settles to its true cost after.
Instances reserve from credits they leased from the organization's budget (the limit, minus the
usage written this month, minus what live instances hold), and a lease is granted only within
that budget: calls that cost no more than they reserved never take an organization past its
limit, however many instances serve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

from app.domain.gateway import GatewayError, GatewayErrorCode, credits_for
from app.domain.usage import next_month

# An instance leases a tenth of the limit at a time (more when one call needs more): a few
# database writes a month per busy organization, and at most a tenth stranded on an instance.
LEASE_FRACTION = 10
_CREDIT_PRECISION = Decimal("0.000001")  # credits are numeric(20, 6)


def call_ceiling(input_tokens: int, max_output_tokens: int, credit_multiplier: Decimal) -> Decimal:
    """The most a call may cost: its estimated input and all the output it may write."""
    return credits_for(input_tokens, max_output_tokens, credit_multiplier)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held for one call in flight, from its organization's budget for `month`."""

    organization_id: UUID
    month: date
    credits: Decimal


@dataclass(frozen=True, slots=True)
class Budget:
    """An organization's month as the database has it while an instance leases."""

    limit: Decimal
    written: Decimal  # usage rows written this month
    leased: Decimal  # held by live instances, the leasing one included

    @property
    def available(self) -> Decimal:
        return self.limit - self.written - self.leased


def lease_change(budget: Budget, spare: Decimal, needed: Decimal) -> Decimal | None:
    """How much an instance's lease grows (or shrinks, when negative) so that its spare covers a
    call reserving `needed`; None when the call does not fit in the budget.

    The instance's spare is part of what it may use; a negative spare (calls that cost more than
    they reserved) is owed first. Beyond the call it takes up to a tenth of the limit, but never
    more than half of what would be left, so that near the limit other instances still find some.
    """
    usable = budget.available + spare
    if usable < needed:
        return None
    extra = min(max(budget.limit / LEASE_FRACTION - needed, Decimal(0)), (usable - needed) / 2)
    return needed - spare + extra.quantize(_CREDIT_PRECISION, ROUND_DOWN)


def quota_exceeded(limit: Decimal, left: Decimal, needed: Decimal, month: date) -> GatewayError:
    renews = f"it renews on {next_month(month).isoformat()} (UTC)"
    if left <= 0:
        message = f"the organization has used its monthly limit of {_shown(limit)} credits; {renews}"
    else:
        message = (
            f"this call may cost up to {_shown(needed)} credits, more than the {_shown(left)} left of "
            f"the organization's monthly limit of {_shown(limit)} credits; a smaller maxTokens "
            f"reserves less, or {renews}"
        )
    return GatewayError(GatewayErrorCode.QUOTA_EXCEEDED, message)


def _shown(credits: Decimal) -> str:
    return f"{credits.normalize():f}"
