"""System prompt queries: systemPrompts, and SystemPrompt nodes."""

from __future__ import annotations

from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.node import register_node
from app.api.pagination import Connection, connection, created_page, cursor_by_created
from app.api.system_prompts.types import SystemPrompt
from app.domain.ids import decode_as
from app.domain.pagination import Page


async def _system_prompt(info: GraphQLInfo, system_prompt_id: UUID) -> SystemPrompt | None:
    found = await services(info).system_prompts.get(authenticated(info), system_prompt_id)
    return SystemPrompt.of(found) if found else None


register_node("SystemPrompt", _system_prompt)


@strawberry.type
class SystemPromptQueries:
    @strawberry.field(
        description="Without organizationId: the platform-wide compositions and your organization's; "
        "with it: that organization's."
    )
    async def system_prompts(
        self,
        info: GraphQLInfo,
        organization_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SystemPrompt]:
        principal = authenticated(info)
        page_request = created_page(first, after)
        org_uuid: UUID | None = None
        if organization_id is not None:
            org_uuid = decode_as(organization_id, "Organization")
            if org_uuid is None:
                return connection(Page([], False), SystemPrompt.of, cursor_by_created, has_previous=False)
        page = await services(info).system_prompts.list(principal, org_uuid, page_request)
        return connection(page, SystemPrompt.of, cursor_by_created, has_previous=after is not None)
