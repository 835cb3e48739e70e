"""SQL for rate-limit windows and stream-slot leases."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from app.db import Database


class RateLimitRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def lease_requests(self, caller_id: UUID, window_start: datetime, wanted: int, limit: int) -> int:
        """Leases up to `wanted` request tokens of the caller's window, never past `limit`.
        Returns how many were granted: fewer near the limit, 0 once it is reached.

        One statement: the row lock serialises instances leasing for the same caller, and the SET
        expressions all read the row as it was before this lease."""
        granted: int | None = await self.db.fetchval(
            """INSERT INTO rate_limit_windows AS w (caller_id, window_start, used, last_lease)
               VALUES ($1, $2, LEAST($3::integer, $4::integer), LEAST($3, $4))
               ON CONFLICT (caller_id, window_start) DO UPDATE
                   SET used = w.used + LEAST($3, $4 - w.used), last_lease = LEAST($3, $4 - w.used)
                   WHERE w.used < $4
               RETURNING last_lease""",
            caller_id,
            window_start,
            wanted,
            limit,
        )
        return granted or 0

    async def delete_windows_before(self, window_start: datetime) -> None:
        await self.db.execute("DELETE FROM rate_limit_windows WHERE window_start < $1", window_start)


class StreamSlotRepository:
    """Leasing more slots reads what the other instances hold and writes this instance's row; both
    run in one transaction after `lock_organization`, so two instances cannot both take the last
    slot. Returning slots and heartbeats need no lock: they never raise the total."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def lock_organization(self, organization_id: UUID, default_cap: int) -> int | None:
        """Locks the organization against concurrent leases until the transaction ends. Returns its
        cap on concurrent streams (`default_cap` when it has none), None when it does not exist."""
        cap: int | None = await self.db.fetchval(
            """SELECT coalesce(max_concurrent_streams, $2) FROM organizations WHERE id = $1
               FOR NO KEY UPDATE""",
            organization_id,
            default_cap,
        )
        return cap

    async def held_elsewhere(self, organization_id: UUID, instance_id: UUID, alive_since: datetime) -> int:
        """Slots the organization's other live instances hold."""
        held: int = await self.db.fetchval(
            """SELECT coalesce(sum(slots), 0) FROM stream_slot_leases
               WHERE organization_id = $1 AND instance_id <> $2 AND heartbeat_at >= $3""",
            organization_id,
            instance_id,
            alive_since,
        )
        return held

    async def record_lease(self, organization_id: UUID, instance_id: UUID, slots: int, now: datetime) -> None:
        """Records that this instance now holds `slots` (an absolute count, at least 1)."""
        await self.db.execute(
            """INSERT INTO stream_slot_leases (organization_id, instance_id, slots, heartbeat_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (organization_id, instance_id)
               DO UPDATE SET slots = EXCLUDED.slots, heartbeat_at = EXCLUDED.heartbeat_at""",
            organization_id,
            instance_id,
            slots,
            now,
        )

    async def shrink_lease(self, organization_id: UUID, instance_id: UUID, slots: int, now: datetime) -> None:
        """Records that this instance now holds only `slots` (0: none, the row goes)."""
        if slots == 0:
            await self.db.execute(
                "DELETE FROM stream_slot_leases WHERE organization_id = $1 AND instance_id = $2",
                organization_id,
                instance_id,
            )
            return
        await self.db.execute(
            """UPDATE stream_slot_leases SET slots = $3, heartbeat_at = $4
               WHERE organization_id = $1 AND instance_id = $2""",
            organization_id,
            instance_id,
            slots,
            now,
        )

    async def heartbeat(self, instance_id: UUID, now: datetime, forget_before: datetime) -> None:
        """Marks this instance's leases alive, and deletes leases of instances long dead."""
        await self.db.execute(
            """WITH beat AS (UPDATE stream_slot_leases SET heartbeat_at = $2 WHERE instance_id = $1)
               DELETE FROM stream_slot_leases WHERE heartbeat_at < $3 AND instance_id <> $1""",
            instance_id,
            now,
            forget_before,
        )

    async def release_instance(self, instance_id: UUID) -> None:
        await self.db.execute("DELETE FROM stream_slot_leases WHERE instance_id = $1", instance_id)
