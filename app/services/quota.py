"""The monthly credit limit across instances: every call reserves the most it may cost before a
provider is called, and settles to its true cost when it is metered.

An instance reserves from credits it leased from the organization's budget for the current UTC
month (app/domain/quota.py); the hot path touches the database only when its lease runs short.
A reservation's credits stay in the lease until the call's usage row is written, which takes them
off the lease in the same statement (then they are in the written total), so every call counts
once, in one place or the other, on every instance. Leases are granted only within the budget, so
an organization's spend passes its limit only by what calls cost beyond what they reserved.

Each instance renews its registration every few seconds; the leases of an instance silent longer
than `lease_timeout` (crashed, or cut off from the database) stop counting, and an instance that
finds it was cut off that long forgets its leases and registers anew. Leased credits that sat
unused for `idle_after` are handed back, so that other instances can use them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from app.db import Database, DatabaseUnavailable
from app.domain.gateway import GatewayError, GatewayErrorCode, UsageEvent
from app.domain.quota import Reservation, call_ceiling, lease_change, quota_exceeded
from app.domain.tenancy import Organization
from app.domain.tokens import estimate_tokens
from app.domain.usage import Metered, month_of
from app.repositories.quota import QuotaLeaseRepository
from app.services.gateway.requests import CallRequest
from app.services.gateway.route import Route, input_estimate
from app.services.lease_upkeep import LeaseUpkeep

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# After a refusal, calls that would not fit what was left then are refused from memory this long,
# so that a burst at the limit does not become a burst of database transactions.
REFUSAL_MEMORY = timedelta(seconds=1)
# Registrations silent this many lease timeouts are deleted, with their leases.
_FORGET_AFTER_TIMEOUTS = 10


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Budget:
    """This instance's share of one organization's budget for one month."""

    period_start: datetime
    limit: Decimal | None = None  # as of the latest lease
    held: Decimal = Decimal(0)  # what this instance's lease row says it holds
    reserved: Decimal = Decimal(0)  # by calls in flight
    unwritten: Decimal = Decimal(0)  # spent by finished calls whose usage rows are not written yet
    fewest_spare: Decimal = Decimal(0)  # since period_start: that much sat unused all along
    refused_until: datetime | None = None
    available_when_refused: Decimal = Decimal(0)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one lease or hand-back at a time

    @property
    def spare(self) -> Decimal:
        return self.held - self.reserved - self.unwritten


@dataclass(frozen=True, slots=True)
class _Outcome:
    limit: Decimal | None  # the organization's, read under its lock
    change: Decimal  # to this instance's lease
    available: Decimal | None  # when refused: the budget left once the spare is handed back


class QuotaReservations:
    def __init__(
        self,
        db: Database,
        repository: QuotaLeaseRepository,
        *,
        default_max_output_tokens: int,
        lease_timeout: float,
        idle_after: float,
        lease_wait: float,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.repository = repository
        self.default_max_output_tokens = default_max_output_tokens
        self.lease_timeout = timedelta(seconds=lease_timeout)
        self.idle_after = timedelta(seconds=idle_after)
        self.lease_wait = lease_wait
        self.clock = clock
        self.instance_id = uuid.uuid4()
        self._registered = False
        # Until when the others count this instance's leases, as far as it knows: it was alive then.
        self._valid_until = datetime.min.replace(tzinfo=UTC)
        self._renewal: asyncio.Task[None] | None = None
        self._budgets: dict[tuple[UUID, date], _Budget] = {}
        self._upkeep = LeaseUpkeep(
            "credit leases",
            idle_after=self.idle_after,
            lease_timeout=self.lease_timeout,
            maintain=self.maintain,
            release=lambda: self.repository.release_instance(self.instance_id),  # the current one
        )

    # ---- what the gateway calls -------------------------------------------------------------

    async def reserve_call(self, route: Route, request: CallRequest) -> Reservation | None:
        """Reserves what a generate or chat call may cost at most on any model that may serve
        it, or raises QUOTA_EXCEEDED (SERVICE_UNAVAILABLE when that cannot be known). None when
        nothing needs reserving: the organization has no limit, or every model is free."""
        if route.organization.monthly_credit_limit is None:
            return None
        ceilings = [Decimal(0)]
        for model in route.models:
            multiplier = model.model.credit_multiplier
            if multiplier:
                prompt = input_estimate(route.chat_request(model, request))
                output = request.max_tokens or model.model.max_output_tokens or self.default_max_output_tokens
                ceilings.append(call_ceiling(prompt, output, multiplier))
        return await self.reserve(route.organization, max(ceilings))

    async def reserve_embed(self, route: Route, texts: Sequence[str]) -> Reservation | None:
        if route.organization.monthly_credit_limit is None:
            return None
        tokens = sum(estimate_tokens(text) for text in texts)
        ceilings = [Decimal(0)]
        for model in route.models:
            ceilings.append(call_ceiling(tokens, 0, model.model.credit_multiplier))
        return await self.reserve(route.organization, max(ceilings))

    async def reserve(self, organization: Organization, credits: Decimal) -> Reservation | None:
        limit = organization.monthly_credit_limit
        if limit is None or credits <= 0:
            return None
        await self._check_registration()
        month = month_of(self.clock())
        key = (organization.id, month)
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = _Budget(self.clock())
        # A limit lowered since the lease: the spare is traded in under the new limit before use.
        lowered = budget.limit is not None and limit < budget.limit
        if lowered and not await self._lease(organization.id, month, budget, credits, limit, trade_in=True):
            return None
        while budget.spare < credits:
            if not await self._lease(organization.id, month, budget, credits, limit):
                return None  # the limit was removed meanwhile
        budget.reserved += credits
        budget.fewest_spare = min(budget.fewest_spare, budget.spare)
        return Reservation(organization.id, month, credits)

    def settle(self, reservation: Reservation | None, event: UsageEvent) -> bool:
        """Releases a call's reservation for what it really cost. True when that cost stays in this
        instance's lease until its usage row is written (`written`), False when only the written
        total will count it: a call that reserved nothing, or ended in the next month."""
        if reservation is None:
            return False
        budget = self._budgets[(reservation.organization_id, reservation.month)]
        budget.reserved -= reservation.credits
        if not event.credits or month_of(event.created_at) != reservation.month:
            return False
        budget.unwritten += event.credits
        budget.fewest_spare = min(budget.fewest_spare, budget.spare)
        return True

    # ---- what the usage recorder tells ----------------------------------------------------------

    def written(
        self, records: Sequence[Metered], lease_holder: UUID, leases: Collection[tuple[UUID, date]]
    ) -> None:
        """Usage rows written, their credits taken off `lease_holder`'s `leases` (those that
        exist: a cost that no lease of this registration holds is only owed)."""
        for record in records:
            budget = self._counted(record)
            if budget is not None:
                budget.unwritten -= record.event.credits
                key = (record.event.organization_id, month_of(record.event.created_at))
                if lease_holder == self.instance_id and key in leases:
                    budget.held -= record.event.credits

    def dropped(self, records: Sequence[Metered]) -> None:
        """Usage rows that will never be written: their credits no longer count (the rows are the
        truth), and go back to the spare."""
        for record in records:
            budget = self._counted(record)
            if budget is not None:
                budget.unwritten -= record.event.credits

    def _counted(self, record: Metered) -> _Budget | None:
        if not record.reserved:
            return None
        return self._budgets.get((record.event.organization_id, month_of(record.event.created_at)))

    # ---- leases -----------------------------------------------------------------------------

    async def _lease(
        self,
        organization_id: UUID,
        month: date,
        budget: _Budget,
        needed: Decimal,
        limit: Decimal,
        *,
        trade_in: bool = False,
    ) -> bool:
        """Grows this instance's lease so that its spare covers `needed`, or raises. False when
        the organization has no limit any more. Waits at most `lease_wait` seconds: an unreachable
        or stalled database refuses the call rather than letting it run unchecked."""
        try:
            async with asyncio.timeout(self.lease_wait):
                await budget.lock.acquire()  # one lease at a time; giving up here changes nothing
                lease = asyncio.ensure_future(
                    self._lease_locked(organization_id, month, budget, needed, limit, trade_in)
                )
                lease.add_done_callback(lambda task: _released(budget.lock, task))
                # Shielded: a caller that gives up must not leave the lease row and memory disagreeing.
                return await asyncio.shield(lease)
        except TimeoutError:
            raise _unavailable() from None

    async def _lease_locked(
        self,
        organization_id: UUID,
        month: date,
        budget: _Budget,
        needed: Decimal,
        limit: Decimal,
        trade_in: bool,
    ) -> bool:
        """Runs holding `budget.lock`, which it is handed."""
        if budget.spare >= needed and not trade_in:
            return True  # another caller's lease arrived meanwhile
        now = self.clock()
        if (
            budget.refused_until is not None
            and now < budget.refused_until
            and budget.limit == limit
            and budget.available_when_refused + budget.spare < needed
        ):
            raise quota_exceeded(limit, budget.available_when_refused + budget.spare, needed, month)
        instance = self.instance_id
        try:
            outcome = await self._lease_in_database(
                organization_id, month, budget.spare, needed, instance, now
            )
        except DatabaseUnavailable as exc:
            log.warning("could not lease credits of the monthly limit", extra={"error": str(exc)})
            raise _unavailable() from exc
        if outcome is None:
            self._lapse(instance)
        if outcome is None or instance != self.instance_id:
            return True  # given up meanwhile, that registration: the caller leases again
        if outcome.change and not self._registered:  # its first lease registered it, alive now
            self._registered, self._valid_until = True, now + self.lease_timeout
        budget.held += outcome.change
        budget.limit = outcome.limit
        if outcome.limit is None:
            return False
        if outcome.available is not None:  # refused
            budget.refused_until = now + REFUSAL_MEMORY
            budget.available_when_refused = outcome.available
            raise quota_exceeded(outcome.limit, outcome.available + budget.spare, needed, month)
        budget.refused_until = None
        return True

    async def _lease_in_database(
        self,
        organization_id: UUID,
        month: date,
        spare: Decimal,
        needed: Decimal,
        instance: UUID,
        now: datetime,
    ) -> _Outcome | None:
        """One transaction; None when this instance's registration had lapsed (nothing written)."""
        async with self.db.transaction():
            locked = await self.repository.lock_organization(organization_id)
            if locked is None:
                raise GatewayError(GatewayErrorCode.NOT_FOUND, "organization not found")
            limit = locked.monthly_credit_limit
            # Refused, or no limit any more: the spare goes back, for calls elsewhere that may fit.
            hand_back = -max(spare, Decimal(0))
            if limit is None:
                outcome = _Outcome(None, hand_back, None)
            else:
                read = await self.repository.read_budget(
                    organization_id, month, limit, instance, now - self.lease_timeout
                )
                if read.lapsed:
                    return None
                change = lease_change(read.budget, spare, needed)
                if change is None:
                    outcome = _Outcome(limit, hand_back, read.budget.available - hand_back)
                else:
                    outcome = _Outcome(limit, change, None)
            if outcome.change:
                await self.repository.change_lease(organization_id, month, instance, outcome.change, now)
            return outcome

    def _lapse(self, instance: UUID) -> None:
        """This instance was silent past the lease timeout: the others stopped counting its
        leases and may have leased that budget. It gives them up and registers anew; what its
        calls in flight and unwritten usage hold becomes a debt its next lease covers first."""
        if instance != self.instance_id:
            return
        log.warning(
            "this instance was cut off from the database past the quota lease timeout; "
            "its credit leases were dropped"
        )
        self.instance_id = uuid.uuid4()
        self._registered = False
        self._valid_until = datetime.min.replace(tzinfo=UTC)
        for budget in self._budgets.values():
            budget.held = Decimal(0)
            budget.fewest_spare = min(budget.fewest_spare, budget.spare)

    # ---- registration -----------------------------------------------------------------------

    async def _check_registration(self) -> None:
        """Past the time its leases may have stopped counting elsewhere (its renewals failed, or
        its upkeep stalled), an instance renews before it reserves anything: it keeps its leases
        if they still count, and gives them up if they lapsed. Fails closed when it cannot tell."""
        if not self._registered or self.clock() < self._valid_until:
            return
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.ensure_future(self._renew())
            self._renewal.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            async with asyncio.timeout(self.lease_wait):
                # Shielded: one read for every caller, however many of them give up.
                await asyncio.shield(self._renewal)
        except (TimeoutError, DatabaseUnavailable):
            raise _unavailable() from None

    async def _renew(self) -> None:
        instance, now = self.instance_id, self.clock()
        alive_since = now - self.lease_timeout
        forget_before = now - self.lease_timeout * _FORGET_AFTER_TIMEOUTS
        if not await self.repository.renew(instance, now, alive_since, forget_before):
            self._lapse(instance)
        elif instance == self.instance_id:
            self._valid_until = max(self._valid_until, now + self.lease_timeout)

    # ---- upkeep -----------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Renews this instance's registration, hands back credits that sat unused a whole idle
        period, and forgets past months once nothing in them is in flight or unwritten."""
        if self._registered:
            await self._renew()
        now = self.clock()
        this_month = month_of(now)
        for (organization_id, month), budget in list(self._budgets.items()):
            if month < this_month:
                if not budget.reserved and not budget.unwritten and not budget.lock.locked():
                    del self._budgets[(organization_id, month)]
                    await self.repository.forget_lease(organization_id, month, self.instance_id)
                continue
            if now - budget.period_start < self.idle_after or budget.lock.locked():
                continue  # (a lease in progress: not idle, and maybe waiting on a stalled database)
            async with budget.lock:
                idle = min(budget.fewest_spare, budget.spare)
                if idle > 0:
                    # Shrink in memory first: calls starting during the write must lease anew.
                    budget.held -= idle
                    await self.repository.hand_back(organization_id, month, self.instance_id, idle)
                budget.fewest_spare = budget.spare
                budget.period_start = now

    async def start(self) -> None:
        self._upkeep.start()

    async def stop(self) -> None:
        """Stops renewing and hands every lease back (the instance is going away; its usage was
        flushed before)."""
        await self._upkeep.stop()


def _released(lock: asyncio.Lock, lease: asyncio.Future[bool]) -> None:
    lock.release()
    if not lease.cancelled():
        lease.exception()  # retrieved, so that a lease whose caller gave up logs no warning


def _unavailable() -> GatewayError:
    return GatewayError(
        GatewayErrorCode.SERVICE_UNAVAILABLE,
        "the monthly credit limit cannot be checked right now; try again",
        retryable=True,
    )
