"""Usage metering and the usage report over real HTTP (the monthly credit limit: test_quota.py).

The servers here flush only when a test says so (`flush_interval=3600`), so that what is written
when is deterministic. Calls are metered the way the gateway meters them (`meter`).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest

from app.db import DatabaseUnavailable
from app.domain.auth import OPERATOR, Role
from app.domain.gateway import (
    CallOperation,
    CallStatus,
    UsageEvent,
    credits_for,
)
from app.domain.ids import encode_id
from app.domain.tenancy import Project
from app.domain.usage import Metered, month_of
from app.repositories.usage import UsageRepository
from app.services.container import Services
from tests.conftest import LiveServer, make_settings, running_server
from tests.support.catalog import create_system_model, uuid_of
from tests.support.factories import Tenant, make_platform_admin_key, make_tenant
from tests.support.graphql import GraphQLClient, error_codes
from tests.support.tcp_proxy import CuttableProxy


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with running_server(make_settings(database_url, flush_interval=3600)) as server:
        yield server


def call(
    tenant: Tenant,
    *,
    model: UUID | None = None,
    served: UUID | None = None,
    project: Project | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    multiplier: str = "1",
    status: CallStatus = CallStatus.SUCCESS,
    latency_ms: int = 100,
    created_at: datetime | None = None,
) -> UsageEvent:
    """A metered call; `served` defaults to `model` unless the call failed."""
    model = model or uuid.uuid4()
    if served is None and status is not CallStatus.ERROR:
        served = model
    return UsageEvent(
        organization_id=tenant.organization.id,
        project_id=(project or tenant.project).id,
        api_key_id=None,
        caller="key:test",
        operation=CallOperation.CHAT,
        requested_model_id=model,
        served_model_id=served,
        provider="OPENAI",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        credits=credits_for(input_tokens, output_tokens, Decimal(multiplier)),
        latency_ms=latency_ms,
        time_to_first_token_ms=latency_ms // 2,
        status=status,
        error_code="PROVIDER_ERROR" if status is CallStatus.ERROR else None,
        request_id=uuid.uuid4().hex,
        created_at=created_at or datetime.now(UTC),
    )


def meter(services: Services, *events: UsageEvent) -> None:
    """What the gateway does after every call (of an organization without a credit limit)."""
    for event in events:
        services.usage.record(event)


async def stored_rows(dsn: str) -> dict[str, asyncpg.Record]:
    """usage_records by request id, read over a connection of its own (the server may be gone)."""
    conn = await asyncpg.connect(dsn)
    try:
        return {r["request_id"]: r for r in await conn.fetch("SELECT * FROM usage_records")}
    finally:
        await conn.close()


Months = dict[tuple[UUID, date], Decimal]  # credits by organization and month


async def monthly_totals(dsn: str) -> tuple[Months, Months]:
    """(organization_monthly_credits, the same sums computed from usage_records)."""
    conn = await asyncpg.connect(dsn)
    try:
        kept = await conn.fetch("SELECT organization_id, month, credits FROM organization_monthly_credits")
        summed = await conn.fetch(
            """SELECT organization_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month,
                      sum(credits) AS credits
               FROM usage_records GROUP BY 1, 2"""
        )
    finally:
        await conn.close()

    def by_key(rows: list[asyncpg.Record]) -> Months:
        return {(r["organization_id"], r["month"]): r["credits"] for r in rows}

    return by_key(kept), by_key(summed)


def expected_months(events: Sequence[UsageEvent]) -> Months:
    months: Months = {}
    for e in events:
        key = (e.organization_id, month_of(e.created_at))
        months[key] = months.get(key, Decimal(0)) + e.credits
    return months


EVENT_FIELDS = [name for name in UsageEvent.__dataclass_fields__]


def assert_stored_exactly(rows: dict[str, asyncpg.Record], events: Sequence[UsageEvent]) -> None:
    assert set(rows) == {e.request_id for e in events}
    for e in events:
        row = rows[e.request_id]
        assert {f: row[f] for f in EVENT_FIELDS} == {f: getattr(e, f) for f in EVENT_FIELDS}


# ---- metering -------------------------------------------------------------------------------------


async def test_calls_are_written_only_by_a_flush_then_exactly_as_recorded(
    live: LiveServer, database_url: str
) -> None:
    acme = await make_tenant(live.services, "Acme")
    start = datetime(2025, 3, 20, tzinfo=UTC)
    # Spanning two months, with every kind of outcome and credit multiplier.
    events = [
        call(
            acme,
            input_tokens=37 * i,
            output_tokens=11 * i,
            multiplier=("0", "0.5", "2.5")[i % 3],
            status=list(CallStatus)[i % 3],
            latency_ms=i,
            created_at=start + timedelta(hours=7 * i),
        )
        for i in range(300)
    ]
    meter(live.services, *events)
    assert await stored_rows(database_url) == {}
    assert await monthly_totals(database_url) == ({}, {})

    await live.services.flush()
    assert_stored_exactly(await stored_rows(database_url), events)
    kept, summed = await monthly_totals(database_url)
    assert kept == summed == expected_months(events)
    assert len(kept) >= 2

    # Later flushes add to the monthly totals.
    more = [call(acme, input_tokens=1000, multiplier="3", created_at=start) for _ in range(3)]
    meter(live.services, *more)
    await live.services.flush()
    kept, summed = await monthly_totals(database_url)
    assert kept == summed == expected_months(events + more)


async def test_usage_is_written_on_shutdown(database_url: str) -> None:
    async with running_server(make_settings(database_url, flush_interval=3600)) as server:
        acme = await make_tenant(server.services, "Acme")
        events = [call(acme, input_tokens=500, output_tokens=20) for _ in range(5)]
        meter(server.services, *events)
        assert await stored_rows(database_url) == {}
    assert_stored_exactly(await stored_rows(database_url), events)
    kept, _ = await monthly_totals(database_url)
    assert kept == expected_months(events)


async def test_a_failed_flush_keeps_its_events_for_the_next(database_url: str) -> None:
    proxy = CuttableProxy(database_url)
    await proxy.start()
    settings = make_settings(proxy.dsn, flush_interval=3600, db_acquire_timeout=1.0)
    try:
        async with running_server(settings) as server:
            acme = await make_tenant(server.services, "Acme")
            before = [call(acme, input_tokens=100 * i) for i in range(1, 6)]
            meter(server.services, *before)

            await proxy.cut()
            await server.services.flush()  # logged, not raised: the periodic flush goes on
            assert server.services.usage.buffered == 5
            during = [call(acme, output_tokens=10 * i) for i in range(1, 4)]
            meter(server.services, *during)

            await proxy.start()
            deadline = time.monotonic() + 10
            while server.services.usage.buffered:
                assert time.monotonic() < deadline, "usage was never written after the outage"
                with contextlib.suppress(DatabaseUnavailable):
                    await server.services.usage.flush()
            assert_stored_exactly(await stored_rows(database_url), before + during)
            kept, _ = await monthly_totals(database_url)
            assert kept == expected_months(before + during)
    finally:
        await proxy.cut()


async def test_writing_a_batch_again_inserts_nothing_twice(live: LiveServer, database_url: str) -> None:
    # As after a commit whose acknowledgement was lost: the recorder writes the same batch again.
    acme = await make_tenant(live.services, "Acme")
    events = [call(acme, input_tokens=250, multiplier="2") for _ in range(4)]  # 0.5 credits each
    # The first two reserved credits: their cost leaves the lease that held it, once.
    batch = [Metered(uuid.uuid4(), e, reserved=i < 2) for i, e in enumerate(events)]
    holder, month = uuid.uuid4(), month_of(events[0].created_at)
    await live.services.db.execute(
        "INSERT INTO quota_leases (organization_id, month, instance_id, credits) VALUES ($1, $2, $3, 5)",
        acme.organization.id,
        month,
        holder,
    )
    repository = UsageRepository(live.services.db)
    await repository.insert_batch(batch, holder)
    await repository.insert_batch(batch, holder)
    assert_stored_exactly(await stored_rows(database_url), events)
    kept, _ = await monthly_totals(database_url)
    assert kept == expected_months(events)
    assert await live.services.db.fetchval("SELECT credits FROM quota_leases") == 4


async def test_usage_of_an_organization_deleted_meanwhile_does_not_block_the_rest(
    live: LiveServer, database_url: str
) -> None:
    acme, globex = await make_tenant(live.services, "Acme"), await make_tenant(live.services, "Globex")
    kept_events = [call(globex, input_tokens=100)]
    meter(live.services, call(acme, input_tokens=100), *kept_events)
    await live.services.db.execute("DELETE FROM organizations WHERE id = $1", acme.organization.id)
    await live.services.usage.flush()
    assert live.services.usage.buffered == 0
    assert_stored_exactly(await stored_rows(database_url), kept_events)


# ---- the report -----------------------------------------------------------------------------------

FROM = datetime(2025, 3, 1, tzinfo=UTC)
TO = datetime(2025, 4, 1, tzinfo=UTC)
AMOUNTS = "requests errorCount inputTokens outputTokens totalTokens credits averageLatencyMs"
REPORT = f"""query($filter: UsageFilter!) {{ usage(filter: $filter) {{
  totals {{ {AMOUNTS} }}
  byModel {{ modelId model {{ id name }} {AMOUNTS} }}
  byDay {{ day {AMOUNTS} }} }} }}"""


@dataclass
class Scenario:
    live: LiveServer
    client: GraphQLClient  # anonymous
    admin: str  # a platform admin key
    acme: Tenant
    globex: Tenant
    second_project: Project
    models: dict[str, UUID]  # name -> id; "ghost" exists nowhere
    model_gids: dict[UUID, str]
    events: list[UsageEvent]


@pytest.fixture
async def scenario(live: LiveServer, http: aiohttp.ClientSession) -> Scenario:
    client = GraphQLClient(http, live.url)
    admin = await make_platform_admin_key(live.services)
    acme, globex = await make_tenant(live.services, "Acme"), await make_tenant(live.services, "Globex")
    second = await live.services.projects.create(OPERATOR, acme.organization.id, "Second")
    created = {name: await create_system_model(client.with_key(admin), name) for name in ("alpha", "beta")}
    models = {name: uuid_of(m["id"]) for name, m in created.items()} | {"ghost": uuid.uuid4()}
    gids = {uuid_of(m["id"]): m["id"] for m in created.values()}
    gids[models["ghost"]] = encode_id("UserModel", models["ghost"])
    alpha, beta, ghost = models["alpha"], models["beta"], models["ghost"]
    day = FROM
    events = [
        call(acme, model=alpha, input_tokens=1000, output_tokens=500, multiplier="2.5", latency_ms=120,
             created_at=day + timedelta(hours=10)),
        call(acme, model=alpha, status=CallStatus.ERROR, latency_ms=41,
             created_at=day + timedelta(days=1) - timedelta(microseconds=1)),
        call(acme, model=beta, project=second, input_tokens=200, output_tokens=300, latency_ms=300,
             created_at=day + timedelta(days=1)),
        call(acme, model=beta, project=second, input_tokens=50, output_tokens=10, latency_ms=80,
             status=CallStatus.CANCELLED, created_at=day + timedelta(days=1, hours=12)),
        # Failed over from alpha to beta: counts for beta.
        call(acme, model=alpha, served=beta, input_tokens=100, output_tokens=100, latency_ms=200,
             created_at=day + timedelta(days=2)),
        # A model deleted since; more tokens than a 32-bit integer holds, at no cost.
        call(acme, model=ghost, input_tokens=2_000_000_000, output_tokens=2_000_000_000, multiplier="0",
             latency_ms=7, created_at=day + timedelta(days=30, hours=23)),
        # Outside [FROM, TO).
        call(acme, model=alpha, input_tokens=999, created_at=FROM - timedelta(microseconds=1)),
        call(acme, model=alpha, input_tokens=999, created_at=TO),
        # Another organization's.
        call(globex, model=alpha, input_tokens=4000, output_tokens=1000, created_at=day + timedelta(hours=1)),
    ]  # fmt: skip
    meter(live.services, *events)
    await live.services.flush()
    return Scenario(live, client, admin, acme, globex, second, models, gids, events)


def model_of(event: UsageEvent) -> UUID | None:
    return event.served_model_id or event.requested_model_id


def amounts(events: Sequence[UsageEvent]) -> dict[str, Any]:
    return {
        "requests": len(events),
        "errorCount": sum(e.status is CallStatus.ERROR for e in events),
        "inputTokens": sum(e.input_tokens for e in events),
        "outputTokens": sum(e.output_tokens for e in events),
        "totalTokens": sum(e.input_tokens + e.output_tokens for e in events),
        "credits": sum((e.credits for e in events), Decimal(0)),
        "averageLatencyMs": sum(e.latency_ms for e in events) / len(events) if events else None,
    }


def expected_report(
    s: Scenario,
    tenant: Tenant,
    *,
    project: UUID | None = None,
    model: UUID | None = None,
    with_models: bool = True,
) -> dict[str, Any]:
    """The report, computed here from the recorded events."""
    chosen = [
        e
        for e in s.events
        if e.organization_id == tenant.organization.id
        and FROM <= e.created_at < TO
        and (project is None or e.project_id == project)
        and (model is None or model_of(e) == model)
    ]
    by_model = []
    for model_id in {model_of(e) for e in chosen}:
        assert model_id is not None
        of_model = [e for e in chosen if model_of(e) == model_id]
        name = next((n for n, i in s.models.items() if i == model_id and n != "ghost"), None)
        visible = {"id": s.model_gids[model_id], "name": name} if name and with_models else None
        by_model.append({"modelId": s.model_gids[model_id], "model": visible, **amounts(of_model)})
    by_model.sort(key=lambda m: (-m["credits"], -m["requests"], uuid_of(m["modelId"]).int))
    days = sorted({e.created_at.astimezone(UTC).date() for e in chosen})
    by_day = [
        {"day": d.isoformat(), **amounts([e for e in chosen if e.created_at.astimezone(UTC).date() == d])}
        for d in days
    ]
    return {"totals": amounts(chosen), "byModel": by_model, "byDay": by_day}


def usage_filter(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return {
        "organizationId": tenant.organization_gid,
        "from": FROM.isoformat(),
        "to": TO.isoformat(),
    } | fields


async def report(client: GraphQLClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    data = await client.data(REPORT, {"filter": usage_filter(tenant, **fields)})
    result: dict[str, Any] = data["usage"]
    for entry in [result["totals"], *result["byModel"], *result["byDay"]]:
        entry["credits"] = Decimal(entry["credits"])
    return result


async def test_the_report_adds_up_the_recorded_calls_by_model_and_by_day(scenario: Scenario) -> None:
    s = scenario
    viewer = s.client.with_key(s.acme.keys[Role.VIEWER])
    got = await report(viewer, s.acme)
    assert got == expected_report(s, s.acme)
    # Spot checks of what the comparison above relies on.
    assert [d["day"] for d in got["byDay"]] == ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-31"]
    assert got["totals"]["totalTokens"] > 2**31  # beyond GraphQL's Int
    beta = next(m for m in got["byModel"] if m["model"] and m["model"]["name"] == "beta")
    assert beta["requests"] == 3  # its own two calls and the one it served for alpha
    ghost = next(m for m in got["byModel"] if m["model"] is None)
    assert ghost["modelId"] == encode_id("UserModel", s.models["ghost"])


async def test_the_report_filters_by_project_and_by_model(scenario: Scenario) -> None:
    s = scenario
    viewer = s.client.with_key(s.acme.keys[Role.VIEWER])
    second = encode_id("Project", s.second_project.id)
    assert await report(viewer, s.acme, projectId=second) == expected_report(
        s, s.acme, project=s.second_project.id
    )
    alpha, beta = s.models["alpha"], s.models["beta"]
    got = await report(viewer, s.acme, modelId=s.model_gids[alpha])
    assert got == expected_report(s, s.acme, model=alpha)
    assert got["totals"]["errorCount"] == 1  # its failed call, which no model served
    assert await report(viewer, s.acme, modelId=s.model_gids[beta], projectId=s.acme.project_gid) == (
        expected_report(s, s.acme, model=beta, project=s.acme.project.id)
    )


async def test_a_project_key_reads_only_its_projects_usage(scenario: Scenario) -> None:
    s = scenario
    _, secret = await s.live.services.api_keys.create_unchecked(
        name="second only", organization_id=s.acme.organization.id, project_id=s.second_project.id
    )
    client = s.client.with_key(secret)
    expected = expected_report(s, s.acme, project=s.second_project.id)
    assert await report(client, s.acme) == expected
    assert await report(client, s.acme, projectId=s.acme.project_gid) == expected_report(
        s, s.acme, project=uuid.uuid4()
    )


async def test_reading_usage_needs_usage_read(scenario: Scenario) -> None:
    s = scenario
    create = """mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) {
      secret userErrors { code } } }"""
    admin = s.client.with_key(s.acme.admin_key)
    secrets = {}
    for permissions in (["models:read", "llm:invoke"], ["usage:read"]):
        payload = await admin.mutate(
            create, {"organizationId": s.acme.organization_gid, "name": "k", "permissions": permissions}
        )
        assert payload["userErrors"] == []
        secrets[permissions[0]] = payload["secret"]

    body = await s.client.with_key(secrets["models:read"]).post(REPORT, {"filter": usage_filter(s.acme)})
    assert error_codes(body) == ["FORBIDDEN"]
    # Without models:read the report is whole; only the models themselves are not shown.
    got = await report(s.client.with_key(secrets["usage:read"]), s.acme)
    assert got == expected_report(s, s.acme, with_models=False)


async def test_another_organizations_usage_reads_as_none(scenario: Scenario) -> None:
    s = scenario
    globex = s.client.with_key(s.globex.admin_key)
    nothing = {"totals": amounts([]), "byModel": [], "byDay": []}
    assert await report(globex, s.acme) == nothing
    assert await report(globex, s.globex) == expected_report(s, s.globex)
    unknown = encode_id("Organization", uuid.uuid4())
    assert await report(globex, s.acme, organizationId=unknown) == nothing
    # Platform admins read any organization's.
    assert await report(s.client.with_key(s.admin), s.acme) == expected_report(s, s.acme)


async def test_bad_ranges_and_ids_are_bad_user_input(scenario: Scenario) -> None:
    s = scenario
    viewer = s.client.with_key(s.acme.keys[Role.VIEWER])
    year_later = FROM + timedelta(days=366)
    # 366 days is allowed (the call made at TO is now inside).
    assert (await report(viewer, s.acme, to=year_later.isoformat()))["totals"]["requests"] == 7
    for fields in (
        {"to": (FROM - timedelta(seconds=1)).isoformat()},
        {"to": (year_later + timedelta(seconds=1)).isoformat()},
        {"organizationId": "not-an-id"},
        {"organizationId": s.acme.project_gid},
        {"projectId": s.acme.organization_gid},
        {"modelId": s.acme.project_gid},
    ):
        body = await viewer.post(REPORT, {"filter": usage_filter(s.acme, **fields)})
        assert error_codes(body) == ["BAD_USER_INPUT"], fields


async def test_times_without_an_offset_are_utc(scenario: Scenario) -> None:
    s = scenario
    viewer = s.client.with_key(s.acme.keys[Role.VIEWER])
    naive = {"from": FROM.replace(tzinfo=None).isoformat(), "to": TO.replace(tzinfo=None).isoformat()}
    assert await report(viewer, s.acme, **naive) == expected_report(s, s.acme)
