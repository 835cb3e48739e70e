"""The usage report query."""

from __future__ import annotations

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.ids import decode_argument
from app.api.usage.types import UsageFilter, UsageReport
from app.domain.ids import MODEL_TYPES


@strawberry.type
class UsageQueries:
    @strawberry.field(
        description="Usage of an organization's calls: totals, by model and by UTC day. Needs "
        "usage:read; another organization's usage reads as none."
    )
    async def usage(self, info: GraphQLInfo, filter: UsageFilter) -> UsageReport:
        principal = authenticated(info)
        organization_id = decode_argument(filter.organization_id, "Organization", "filter.organizationId")
        project_id = (
            decode_argument(filter.project_id, "Project", "filter.projectId") if filter.project_id else None
        )
        model_id = (
            decode_argument(filter.model_id, MODEL_TYPES, "filter.modelId") if filter.model_id else None
        )
        report = await services(info).usage_reports.report(
            principal,
            organization_id=organization_id,
            project_id=project_id,
            model_id=model_id,
            since=filter.from_,
            until=filter.to,
        )
        return UsageReport.of(report)
