"""SQL for usage: batched inserts (with the monthly totals, and the quota leases they leave), reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

import asyncpg

from app.db import Database
from app.domain.models import ModelKind
from app.domain.usage import DayUsage, Metered, ModelUsage, UsageQuery, UsageReport, UsageTotals

# One statement, so one round trip and one transaction for a whole batch: the rows, then their
# credits added to the monthly totals and, for calls that reserved credits, taken off the lease
# that holds them (app/services/quota.py): a call's cost is counted in one place or the other,
# never both, never neither. Only rows actually inserted count, so writing a batch again (after a
# commit whose acknowledgement was lost) changes nothing. Rows of organizations deleted meanwhile
# are skipped rather than failing the batch on every retry.
_INSERT_BATCH = """
WITH inserted AS (
    INSERT INTO usage_records (
        id, organization_id, project_id, api_key_id, caller, operation, requested_model_id,
        served_model_id, provider, input_tokens, output_tokens, credits, latency_ms,
        time_to_first_token_ms, status, error_code, request_id, created_at)
    SELECT u.* FROM unnest(
        $1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::uuid[],
        $8::uuid[], $9::text[], $10::integer[], $11::integer[], $12::numeric[], $13::integer[],
        $14::integer[], $15::text[], $16::text[], $17::text[], $18::timestamptz[])
        AS u (id, organization_id, project_id, api_key_id, caller, operation, requested_model_id,
              served_model_id, provider, input_tokens, output_tokens, credits, latency_ms,
              time_to_first_token_ms, status, error_code, request_id, created_at)
    WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = u.organization_id)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, organization_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, credits
), added AS (
    SELECT organization_id, month, sum(credits) AS credits FROM inserted GROUP BY 1, 2
), totals AS (
    INSERT INTO organization_monthly_credits AS m (organization_id, month, credits)
    SELECT organization_id, month, credits FROM added
    ON CONFLICT (organization_id, month) DO UPDATE SET credits = m.credits + excluded.credits
    RETURNING m.organization_id, m.month, m.credits
), leases AS (
    UPDATE quota_leases l SET credits = l.credits - r.credits
    FROM (SELECT i.organization_id, i.month, sum(i.credits) AS credits
          FROM inserted i JOIN unnest($1::uuid[], $19::boolean[]) AS h (id, reserved) ON h.id = i.id
          WHERE h.reserved GROUP BY 1, 2) r
    WHERE l.organization_id = r.organization_id AND l.month = r.month AND l.instance_id = $20
    RETURNING l.organization_id, l.month
)
SELECT true AS lease, organization_id, month, NULL::numeric AS credits, NULL::numeric AS added,
       NULL::numeric AS credit_limit
FROM leases
UNION ALL
-- The monthly totals this batch changed, under a limit: what the credit alerts look at.
SELECT false, t.organization_id, t.month, t.credits, a.credits, o.monthly_credit_limit
FROM totals t JOIN added a USING (organization_id, month) JOIN organizations o ON o.id = t.organization_id
WHERE o.monthly_credit_limit IS NOT NULL
"""

# About 0.1 s of writing each on a small server: far within any sensible query timeout.
_ROWS_PER_STATEMENT = 2_000

# One scan for both groupings: per model (`per_model`) and per UTC day. A call's model is the one
# that served it or, when none did (it failed), the one requested: so failures count against it.
_REPORT = """
WITH calls AS (
    SELECT coalesce(served_model_id, requested_model_id) AS model_id,
           (created_at AT TIME ZONE 'UTC')::date AS day, status,
           input_tokens, output_tokens, credits, latency_ms
    FROM usage_records
    WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3
      AND ($4::uuid IS NULL OR project_id = $4)
      AND ($5::uuid IS NULL OR coalesce(served_model_id, requested_model_id) = $5)
), grouped AS (
    SELECT GROUPING(day) = 1 AS per_model, model_id, day,
           count(*) AS requests, count(*) FILTER (WHERE status = 'ERROR') AS error_count,
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
           sum(credits) AS credits, sum(latency_ms) AS latency_ms_sum
    FROM calls
    GROUP BY GROUPING SETS ((model_id), (day))
)
SELECT g.*, models.kind AS model_kind
FROM grouped g LEFT JOIN models ON models.id = g.model_id
ORDER BY g.per_model, g.day, g.credits DESC, g.requests DESC, g.model_id NULLS LAST
"""


@dataclass(frozen=True, slots=True)
class MonthTotal:
    """An organization's written credits for a month, before and after one batch, and its limit."""

    organization_id: UUID
    month: date
    limit: Decimal
    before: Decimal
    after: Decimal


TotalsHook = Callable[[list[MonthTotal]], Awaitable[None]]


def _totals(row: asyncpg.Record) -> UsageTotals:
    return UsageTotals(
        requests=row["requests"],
        error_count=row["error_count"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        credits=row["credits"],
        latency_ms_sum=row["latency_ms_sum"],
    )


class UsageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert_batch(
        self, records: Sequence[Metered], lease_holder: UUID, after_each: TotalsHook | None = None
    ) -> set[tuple[UUID, date]]:
        """Writes usage rows and adds their credits to the monthly totals, and takes those of
        reserved calls off `lease_holder`'s leases. Returns the leases (organization, month) it took
        credits off: a lease that does not exist is left alone. A backlog (after an outage) goes in
        several statements, each atomic and within the query timeout; if one fails, writing the whole
        batch again adds only what is missing. `after_each` runs in each statement's transaction
        with the monthly totals (under a limit) it changed."""
        touched: set[tuple[UUID, date]] = set()
        for start in range(0, len(records), _ROWS_PER_STATEMENT):
            async with self.db.transaction():
                leases, totals = await self._insert(
                    records[start : start + _ROWS_PER_STATEMENT], lease_holder
                )
                if after_each is not None and totals:
                    await after_each(totals)
            touched |= leases
        return touched

    async def _insert(
        self, records: Sequence[Metered], lease_holder: UUID
    ) -> tuple[set[tuple[UUID, date]], list[MonthTotal]]:
        events = [record.event for record in records]
        rows = await self.db.fetch(
            _INSERT_BATCH,
            [record.id for record in records],
            [e.organization_id for e in events],
            [e.project_id for e in events],
            [e.api_key_id for e in events],
            [e.caller for e in events],
            [e.operation.value for e in events],
            [e.requested_model_id for e in events],
            [e.served_model_id for e in events],
            [e.provider for e in events],
            [e.input_tokens for e in events],
            [e.output_tokens for e in events],
            [e.credits for e in events],
            [e.latency_ms for e in events],
            [e.time_to_first_token_ms for e in events],
            [e.status.value for e in events],
            [e.error_code for e in events],
            [e.request_id for e in events],
            [e.created_at for e in events],
            [record.reserved for record in records],
            lease_holder,
        )
        leases = {(row["organization_id"], row["month"]) for row in rows if row["lease"]}
        totals = [
            MonthTotal(
                organization_id=row["organization_id"],
                month=row["month"],
                limit=row["credit_limit"],
                before=row["credits"] - row["added"],
                after=row["credits"],
            )
            for row in rows
            if not row["lease"]
        ]
        return leases, totals

    async def report(self, query: UsageQuery) -> UsageReport:
        rows = await self.db.fetch(
            _REPORT, query.organization_id, query.since, query.until, query.project_id, query.model_id
        )
        by_model = [
            ModelUsage(
                model_id=r["model_id"],
                model_kind=ModelKind(r["model_kind"]) if r["model_kind"] else None,
                totals=_totals(r),
            )
            for r in rows
            if r["per_model"]
        ]
        by_day = [DayUsage(day=r["day"], totals=_totals(r)) for r in rows if not r["per_model"]]
        return UsageReport.of(by_model, by_day)
