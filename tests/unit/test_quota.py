"""Reservation arithmetic: a call's ceiling, and how much an instance leases of an organization's
remaining monthly budget."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.domain.gateway import GatewayErrorCode, credits_for
from app.domain.quota import Budget, call_ceiling, lease_change, quota_exceeded

MARCH = date(2025, 3, 1)


def budget(limit: str, written: str = "0", leased: str = "0") -> Budget:
    return Budget(Decimal(limit), Decimal(written), Decimal(leased))


def test_a_calls_ceiling_is_its_input_estimate_and_all_its_output_at_the_multiplier() -> None:
    assert call_ceiling(14, 4, Decimal("62.5")) == Decimal("1.125")
    assert call_ceiling(1000, 4096, Decimal("2.5")) == Decimal("12.74")
    assert call_ceiling(14, 4, Decimal(0)) == 0


@pytest.mark.parametrize("tokens", [(0, 0), (13, 4), (14, 3), (14, 4), (7, 1)])
def test_a_call_that_uses_no_more_tokens_than_its_ceiling_costs_no_more(tokens: tuple[int, int]) -> None:
    # Rounding to the sixth decimal keeps the order, so the reservation always covers the cost.
    for multiplier in (Decimal("0.001"), Decimal("1.3333"), Decimal("62.5"), Decimal("7")):
        assert credits_for(*tokens, multiplier) <= call_ceiling(14, 4, multiplier)


def test_the_budget_is_the_limit_less_written_usage_and_live_leases() -> None:
    assert budget("50", written="12.5", leased="7").available == Decimal("30.5")
    assert budget("10", written="12").available == -2  # a limit lowered below the month's spend


def test_a_lease_covers_the_call_and_a_tenth_of_the_limit_at_most() -> None:
    change = lease_change(budget("100"), spare=Decimal(0), needed=Decimal("1.5"))
    assert change == Decimal(10)  # the call's 1.5 and 8.5 more: a tenth of the limit in all
    # A call bigger than a tenth gets exactly what it needs.
    assert lease_change(budget("100"), spare=Decimal(0), needed=Decimal(30)) == 30


def test_the_spare_counts_towards_the_call() -> None:
    # 4 spare, 6 needed: 2 more for the call, then up to a tenth of the limit in spare.
    assert lease_change(budget("100", leased="4"), spare=Decimal(4), needed=Decimal(6)) == Decimal(6)


def test_near_the_limit_a_lease_takes_at_most_half_of_what_would_be_left() -> None:
    change = lease_change(budget("100", written="90", leased="4"), spare=Decimal(0), needed=Decimal(1))
    # 6 available, 1 needed: half the remaining 5 beyond the call, so others still find some.
    assert change == Decimal("3.5")
    assert lease_change(budget("100", written="99"), spare=Decimal(0), needed=Decimal(1)) == 1


def test_extra_credits_are_rounded_down_to_what_a_credit_column_holds() -> None:
    change = lease_change(budget("1", written="0.99999"), spare=Decimal(0), needed=Decimal("0.000001"))
    assert change == Decimal("0.000005")  # the call's millionth and half the rest, 4.5, rounded down


def test_a_negative_spare_is_owed_before_the_call() -> None:
    # Calls here cost 3 more than they reserved: the lease covers that first.
    change = lease_change(budget("100", leased="2"), spare=Decimal(-3), needed=Decimal(1))
    assert change == Decimal(3 + 1 + 9)
    assert lease_change(budget("10", written="8", leased="2"), spare=Decimal(-1), needed=Decimal(1)) is None


def test_a_call_that_does_not_fit_is_refused() -> None:
    assert lease_change(budget("10", written="9.5"), spare=Decimal(0), needed=Decimal(1)) is None
    assert (
        lease_change(budget("10", written="9", leased="1"), spare=Decimal("0.5"), needed=Decimal(1)) is None
    )
    # Exactly what is left fits.
    assert lease_change(budget("10", written="9", leased="0.5"), spare=Decimal("0.5"), needed=Decimal(1)) == (
        Decimal("0.5")
    )
    assert lease_change(budget("0"), spare=Decimal(0), needed=Decimal("0.000001")) is None


def test_a_lowered_limit_shrinks_the_lease_to_what_the_call_needs() -> None:
    # The instance holds 20 spare of a limit now lowered to 10 (8 left): it keeps the call's 1,
    # and no more, since that is already a tenth of the new limit.
    change = lease_change(budget("10", written="2", leased="20"), spare=Decimal(20), needed=Decimal(1))
    assert change == -19


def test_the_refusal_says_what_the_call_may_cost_and_what_is_left() -> None:
    error = quota_exceeded(Decimal("50.000000"), Decimal("0.5"), Decimal("1.125"), MARCH)
    assert error.code is GatewayErrorCode.QUOTA_EXCEEDED
    assert error.message == (
        "this call may cost up to 1.125 credits, more than the 0.5 left of the organization's monthly "
        "limit of 50 credits; a smaller maxTokens reserves less, or it renews on 2025-04-01 (UTC)"
    )
    spent = quota_exceeded(Decimal("2.500000"), Decimal("-0.3"), Decimal("1"), date(2025, 12, 1))
    assert spent.message == (
        "the organization has used its monthly limit of 2.5 credits; it renews on 2026-01-01 (UTC)"
    )
