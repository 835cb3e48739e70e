"""GraphQL types of the usage report."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, NewType
from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.models.types import Model, model_type
from app.domain import usage
from app.domain.auth import Permission
from app.domain.ids import encode_id
from app.domain.models import ModelKind

# GraphQL's Int is 32 bits: an organization's tokens over a year can exceed it. Registered in the
# schema's scalar_map (app/api/schema.py).
BigInt = NewType("BigInt", int)
BIG_INT_SCALAR = strawberry.scalar(
    name="BigInt",
    description="An integer that may exceed 32 bits; exact up to 2^53.",
    serialize=int,
    parse_value=int,
)


@strawberry.input(description="Which calls to count: one organization's, created in [from, to).")
class UsageFilter:
    organization_id: strawberry.ID
    from_: datetime = strawberry.field(name="from", description="Inclusive.")
    to: datetime = strawberry.field(
        description=f"Exclusive; at most {usage.MAX_REPORT_DAYS} days after `from`."
    )
    project_id: strawberry.ID | None = None
    model_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Calls this model served, or (for calls no model served) requested.",
    )


@strawberry.type(description="What a set of calls used.")
class UsageTotals:
    requests: BigInt
    error_count: BigInt = strawberry.field(
        description="Calls that failed; cancelled streams are not failures."
    )
    input_tokens: BigInt
    output_tokens: BigInt
    total_tokens: BigInt
    credits: Decimal
    average_latency_ms: float | None = strawberry.field(description="Null when there were no calls.")

    @classmethod
    def of(cls, totals: usage.UsageTotals) -> UsageTotals:
        return cls(**_amounts(totals))


def _amounts(totals: usage.UsageTotals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "error_count": totals.error_count,
        "input_tokens": totals.input_tokens,
        "output_tokens": totals.output_tokens,
        "total_tokens": totals.total_tokens,
        "credits": totals.credits,
        "average_latency_ms": totals.average_latency_ms,
    }


@strawberry.type(
    description="Calls by the model that served them (after fallback or migration) or, for calls no "
    "model served, the model requested."
)
class ModelUsage(UsageTotals):
    model_id: strawberry.ID | None = strawberry.field(description="Kept after the model is deleted.")
    uuid: strawberry.Private[UUID | None]

    @classmethod
    def of_model(cls, entry: usage.ModelUsage) -> ModelUsage:
        return cls(**_amounts(entry.totals), model_id=_model_gid(entry), uuid=entry.model_id)

    @strawberry.field(description="Null when the model no longer exists or you cannot see it.")
    async def model(self, info: GraphQLInfo) -> Model | None:
        principal = authenticated(info)
        if self.uuid is None or not principal.has(Permission.MODELS_READ):
            return None
        found = await services(info).models.get(principal, self.uuid)
        return model_type(found) if found else None


def _model_gid(entry: usage.ModelUsage) -> strawberry.ID | None:
    if entry.model_id is None:
        return None
    # A deleted model's kind is unknown; its id still decodes to the same model everywhere.
    type_name = "SystemModel" if entry.model_kind is ModelKind.SYSTEM else "UserModel"
    return strawberry.ID(encode_id(type_name, entry.model_id))


@strawberry.type(description="Calls of one UTC day.")
class DayUsage(UsageTotals):
    day: date

    @classmethod
    def of_day(cls, entry: usage.DayUsage) -> DayUsage:
        return cls(**_amounts(entry.totals), day=entry.day)


@strawberry.type
class UsageReport:
    totals: UsageTotals
    by_model: list[ModelUsage] = strawberry.field(description="Most credits first.")
    by_day: list[DayUsage] = strawberry.field(description="Oldest first; days without calls are left out.")

    @classmethod
    def of(cls, report: usage.UsageReport) -> UsageReport:
        return cls(
            totals=UsageTotals.of(report.totals),
            by_model=[ModelUsage.of_model(m) for m in report.by_model],
            by_day=[DayUsage.of_day(d) for d in report.by_day],
        )
