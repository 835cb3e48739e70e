"""Usage metering end to end: after a known series of calls, the usage rows match them exactly
(one per call that got as far as a model, successes and failures, with the served model after a
fallback and credits = (input + output) / 1000 x the served model's multiplier), and the
`usage(filter:)` report adds them up by model and by day."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import aiohttp
import pytest

from app.domain.auth import Role
from app.domain.ids import encode_id
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeError, OpenAIFake
from tests.support.catalog import create_system_model, create_user_model, uuid_of
from tests.support.factories import Tenant
from tests.support.gateway import (
    CHAT,
    EMBED,
    GENERATE,
    USAGE_REPORT,
    api_key_id,
    credits,
    stream_events,
    stream_input,
    update_organization,
    usage_rows,
    user_says,
    ws_url,
)
from tests.support.graphql import GraphQLClient

HI = user_says("Hi")


@dataclass(frozen=True)
class Expected:
    """One usage row as the calls made it."""

    operation: str
    requested: str  # a model name
    served: str | None
    status: str
    error_code: str | None
    input_tokens: int
    output_tokens: int
    multiplier: str
    in_project: bool
    request_id: str

    @property
    def credits(self) -> Decimal:
        return credits(self.input_tokens, self.output_tokens, self.multiplier)


@dataclass
class Models:
    ids: dict[str, str]  # name -> global id

    def uuid(self, name: str | None) -> UUID | None:
        return uuid_of(self.ids[name]) if name else None


@pytest.fixture
async def models(
    admin: GraphQLClient, org_admin: GraphQLClient, tenant: Tenant, fake_a: OpenAIFake, fake_b: OpenAIFake
) -> Models:
    a, b = f"{fake_a.url}/v1", f"{fake_b.url}/v1"
    alpha = await create_system_model(admin, "alpha", modelUrl=a, creditMultiplier="2")
    beta = await create_system_model(admin, "beta", modelUrl=b, creditMultiplier="3")
    small = await create_system_model(admin, "small", modelUrl=a, creditMultiplier="1", maxOutputTokens=50)
    embedder = await create_system_model(
        admin, "embedder", modelUrl=a, modelGroup="EMBEDDING", contextWindow=8000, maxOutputTokens=None,
        creditMultiplier="0.5",
    )  # fmt: skip
    primary = await create_user_model(
        org_admin,
        organizationId=tenant.organization_gid,
        scope="PROJECT",
        projectId=tenant.project_gid,
        name="primary",
        parentModelId=alpha["id"],
        isDefault=True,
        fallbacks=[{"modelId": beta["id"]}],
    )
    return Models({m["name"]: m["id"] for m in (alpha, beta, small, embedder, primary)})


async def test_usage_rows_and_the_report_match_the_calls_made(
    server: LiveServer, http: aiohttp.ClientSession, dev: GraphQLClient, tenant: Tenant, models: Models,
    fake_a: OpenAIFake, fake_b: OpenAIFake,
) -> None:  # fmt: skip
    ids = models.ids
    expected: list[Expected] = []

    def made(
        request_id: str, operation: str, requested: str, served: str | None, tokens: tuple[int, int],
        multiplier: str, error: str | None = None, in_project: bool = False,
    ) -> None:  # fmt: skip
        status = "ERROR" if error else "SUCCESS"
        expected.append(
            Expected(operation, requested, served, status, error, *tokens, multiplier, in_project, request_id)
        )

    # The fakes: A answers in 4 pieces, B in 3; both report 12 prompt tokens; embeddings count words.
    payload = await dev.mutate(GENERATE, {"prompt": "Capital of France?", "model": ids["alpha"]})
    made(payload["requestId"], "GENERATE", "alpha", "alpha", (12, 4), "2")
    payload = await dev.mutate(CHAT, {"messages": HI, "model": ids["beta"]})
    made(payload["requestId"], "CHAT", "beta", "beta", (12, 3), "3")
    payload = await dev.mutate(EMBED, {"texts": ["one two", "three"], "model": ids["embedder"]})
    made(payload["requestId"], "EMBED", "embedder", "embedder", (3, 0), "0.5")
    key = tenant.keys[Role.DEVELOPER]
    events = await stream_events(ws_url(server.url), key, stream_input(model=ids["alpha"]))
    assert events[-1]["__typename"] == "ChatStreamEnd"
    made(events[0]["requestId"], "CHAT_STREAM", "alpha", "alpha", (12, 4), "2")
    payload = await dev.mutate(CHAT, {"messages": HI, "model": ids["small"], "maxTokens": 51})
    made(payload["requestId"], "CHAT", "small", None, (0, 0), "1", error="MAX_TOKENS_TOO_LARGE")
    fake_a.error = FakeError.server_error()
    payload = await dev.mutate(CHAT, {"messages": HI, "projectId": tenant.project_gid})
    assert payload["servedBy"]["name"] == "beta"
    made(payload["requestId"], "CHAT", "primary", "beta", (12, 3), "3", in_project=True)
    fake_a.error = FakeError.context_too_long()
    payload = await dev.mutate(CHAT, {"messages": HI, "model": ids["alpha"]})
    made(payload["requestId"], "CHAT", "alpha", None, (0, 0), "2", error="CONTEXT_TOO_LONG")
    fake_a.error = None
    # Refused before a model was known: nothing to meter.
    assert (await dev.mutate(CHAT, {"messages": [], "model": ids["alpha"]}))["userErrors"]
    assert (await dev.mutate(CHAT, {"messages": HI, "model": encode_id("SystemModel", uuid.uuid4())}))[
        "userErrors"
    ]

    rows = await usage_rows(server.services, len(expected))
    key_id = await api_key_id(server.services, tenant.keys[Role.DEVELOPER])
    shown = [
        {
            "operation": r["operation"],
            "requested": r["requested_model_id"],
            "served": r["served_model_id"],
            "status": r["status"],
            "error_code": r["error_code"],
            "input_tokens": r["input_tokens"],
            "output_tokens": r["output_tokens"],
            "credits": r["credits"],
            "project_id": r["project_id"],
            "request_id": r["request_id"],
        }
        for r in rows
    ]
    assert shown == [
        {
            "operation": e.operation,
            "requested": models.uuid(e.requested),
            "served": models.uuid(e.served),
            "status": e.status,
            "error_code": e.error_code,
            "input_tokens": e.input_tokens,
            "output_tokens": e.output_tokens,
            "credits": e.credits,
            "project_id": tenant.project.id if e.in_project else None,
            "request_id": e.request_id,
        }
        for e in expected
    ]
    for row in rows:
        assert row["organization_id"] == tenant.organization.id
        assert row["api_key_id"] == key_id
        assert row["caller"].startswith("key:")
        assert tenant.keys[Role.DEVELOPER].split("_")[2] not in row["caller"]  # never the secret
        assert row["provider"] == "OPENAI"
        assert row["latency_ms"] >= 0

    # The report adds up the same rows: by the model that served a call (else the one asked for).
    since = datetime.now(UTC) - timedelta(days=1)
    report_filter = {
        "organizationId": tenant.organization_gid,
        "from": since.isoformat(),
        "to": (since + timedelta(days=2)).isoformat(),
    }
    report = (await dev.data(USAGE_REPORT, {"filter": report_filter}))["usage"]
    assert shown_amounts(report["totals"]) == amounts(expected)
    by_model: dict[str, list[Expected]] = {}
    for e in expected:
        by_model.setdefault(ids[e.served or e.requested], []).append(e)
    assert {m["modelId"]: shown_amounts(m) for m in report["byModel"]} == {
        model_id: amounts(calls) for model_id, calls in by_model.items()
    }
    shown_credits = [Decimal(m["credits"]) for m in report["byModel"]]
    assert shown_credits == sorted(shown_credits, reverse=True)  # most credits first
    days = sorted({r["created_at"].astimezone(UTC).date() for r in rows})
    assert [d["day"] for d in report["byDay"]] == [d.isoformat() for d in days]
    by_day = {d["day"]: shown_amounts(d) for d in report["byDay"]}
    for day in days:
        on_day = {r["request_id"] for r in rows if r["created_at"].astimezone(UTC).date() == day}
        assert by_day[day.isoformat()] == amounts([e for e in expected if e.request_id in on_day])

    # Filtered by project: the one call made in the project.
    project_only = {**report_filter, "projectId": tenant.project_gid}
    in_project = (await dev.data(USAGE_REPORT, {"filter": project_only}))["usage"]
    assert shown_amounts(in_project["totals"]) == amounts([e for e in expected if e.in_project])


def amounts(calls: list[Expected]) -> dict[str, Any]:
    return {
        "requests": len(calls),
        "errorCount": sum(e.status == "ERROR" for e in calls),
        "inputTokens": sum(e.input_tokens for e in calls),
        "outputTokens": sum(e.output_tokens for e in calls),
        "totalTokens": sum(e.input_tokens + e.output_tokens for e in calls),
        "credits": sum((e.credits for e in calls), Decimal(0)),
    }


def shown_amounts(entry: dict[str, Any]) -> dict[str, Any]:
    """A report entry's amounts, credits as a Decimal."""
    return {k: Decimal(v) if k == "credits" else v for k, v in entry.items() if k not in ("modelId", "day")}


REFUSED_AFTER_RESOLUTION: dict[str, dict[str, Any]] = {
    "MODEL_DISABLED": {"enabled": False},
    "MODEL_END_OF_LIFE": {"endOfLifeAt": "2020-01-01T00:00:00+00:00"},
    "PLAN_UPGRADE_REQUIRED": {"accessTier": "PREMIUM"},
    "MODEL_GROUP_MISMATCH": {"modelGroup": "EMBEDDING", "maxOutputTokens": None},
}


@pytest.mark.parametrize("code", list(REFUSED_AFTER_RESOLUTION))
async def test_policy_refusals_on_a_known_model_are_metered_as_errors(
    code: str,
    server: LiveServer,
    admin: GraphQLClient,
    dev: GraphQLClient,
    tenant: Tenant,
    fake_a: OpenAIFake,
) -> None:
    if code == "PLAN_UPGRADE_REQUIRED":
        await update_organization(admin, tenant.organization_gid, plan="FREE")
    refused = await create_system_model(
        admin, "refused", modelUrl=f"{fake_a.url}/v1", **REFUSED_AFTER_RESOLUTION[code]
    )
    payload = await dev.mutate(CHAT, {"messages": HI, "model": refused["id"]})
    assert [e["code"] for e in payload["userErrors"]] == [code]
    assert fake_a.requests == []
    rows = await usage_rows(server.services, 1)
    assert [(r["status"], r["error_code"], r["requested_model_id"], r["served_model_id"]) for r in rows] == [
        ("ERROR", code, uuid_of(refused["id"]), None)
    ]
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"], rows[0]["credits"]) == (0, 0, Decimal(0))
