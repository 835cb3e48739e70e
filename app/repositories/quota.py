"""SQL for credit leases: what each instance holds of an organization's monthly budget.

Leasing locks the organization's row (`lock_organization`), reads the budget and records the lease, in
one transaction: instances leasing for the same organization take turns, and each reads what the
one before it recorded. Writing usage rows takes their credits off the lease in the same statement
(app/repositories/usage.py), so that a call's cost is always counted once, in one place or the
other. Handing credits back needs no lock: it never raises the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from app.db import Database
from app.domain.quota import Budget


@dataclass(frozen=True, slots=True)
class LockedOrganization:
    monthly_credit_limit: Decimal | None


@dataclass(frozen=True, slots=True)
class BudgetRead:
    budget: Budget
    lapsed: bool  # this instance was silent past the lease timeout: its leases stopped counting


class QuotaLeaseRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def lock_organization(self, organization_id: UUID) -> LockedOrganization | None:
        """Locks the organization against other leases until the transaction ends. None when it
        does not exist."""
        row = await self.db.fetchrow(
            "SELECT monthly_credit_limit FROM organizations WHERE id = $1 FOR NO KEY UPDATE",
            organization_id,
        )
        return LockedOrganization(row["monthly_credit_limit"]) if row else None

    async def read_budget(
        self,
        organization_id: UUID,
        month: date,
        limit: Decimal,
        instance_id: UUID,
        alive_since: datetime,
    ) -> BudgetRead:
        """One statement, so one snapshot: usage written meanwhile is either in `written` and
        off its lease, or in neither."""
        row = await self.db.fetchrow(
            """SELECT
                   coalesce((SELECT credits FROM organization_monthly_credits
                             WHERE organization_id = $1 AND month = $2), 0) AS written,
                   coalesce((SELECT sum(l.credits) FROM quota_leases l
                             JOIN quota_instances i ON i.instance_id = l.instance_id
                             WHERE l.organization_id = $1 AND l.month = $2 AND i.renewed_at >= $4), 0)
                       AS leased,
                   coalesce((SELECT renewed_at < $4 FROM quota_instances WHERE instance_id = $3), false)
                       AS lapsed""",
            organization_id,
            month,
            instance_id,
            alive_since,
        )
        assert row is not None
        return BudgetRead(Budget(limit, row["written"], row["leased"]), row["lapsed"])

    async def change_lease(
        self,
        organization_id: UUID,
        month: date,
        instance_id: UUID,
        change: Decimal,
        now: datetime,
    ) -> None:
        """Adds `change` (negative: hands back) to this instance's lease, registering the instance
        on its first lease."""
        await self.db.execute(
            """WITH registered AS (
                   INSERT INTO quota_instances (instance_id, renewed_at) VALUES ($3, $5)
                   ON CONFLICT (instance_id) DO NOTHING)
               INSERT INTO quota_leases AS l (organization_id, month, instance_id, credits)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (organization_id, month, instance_id)
               DO UPDATE SET credits = l.credits + EXCLUDED.credits""",
            organization_id,
            month,
            instance_id,
            change,
            now,
        )

    async def hand_back(
        self, organization_id: UUID, month: date, instance_id: UUID, credits: Decimal
    ) -> None:
        await self.db.execute(
            """UPDATE quota_leases SET credits = credits - $4
               WHERE organization_id = $1 AND month = $2 AND instance_id = $3""",
            organization_id,
            month,
            instance_id,
            credits,
        )

    async def forget_lease(self, organization_id: UUID, month: date, instance_id: UUID) -> None:
        """A past month's lease, once nothing is reserved or unwritten in it."""
        await self.db.execute(
            "DELETE FROM quota_leases WHERE organization_id = $1 AND month = $2 AND instance_id = $3",
            organization_id,
            month,
            instance_id,
        )

    async def renew(
        self, instance_id: UUID, now: datetime, alive_since: datetime, forget_before: datetime
    ) -> bool:
        """Marks this instance alive; False when it had already lapsed (its leases stopped
        counting, and must not count again). Forgets instances silent since `forget_before`."""
        renewed: bool | None = await self.db.fetchval(
            """WITH forgotten AS (
                   DELETE FROM quota_instances WHERE renewed_at < $4 AND instance_id <> $1
                   RETURNING instance_id),
               their_leases AS (
                   DELETE FROM quota_leases WHERE instance_id IN (SELECT instance_id FROM forgotten))
               UPDATE quota_instances SET renewed_at = $2 WHERE instance_id = $1 AND renewed_at >= $3
               RETURNING true""",
            instance_id,
            now,
            alive_since,
            forget_before,
        )
        return bool(renewed)

    async def release_instance(self, instance_id: UUID) -> None:
        """Hands back everything this instance holds (it is stopping)."""
        await self.db.execute(
            """WITH leases AS (DELETE FROM quota_leases WHERE instance_id = $1)
               DELETE FROM quota_instances WHERE instance_id = $1""",
            instance_id,
        )
