"""Prompt queries: prompts(projectId), and Prompt and PromptRun nodes."""

from __future__ import annotations

from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.node import register_node
from app.api.pagination import Connection, connection, created_page, cursor_by_created
from app.api.prompts.types import Prompt, PromptRun
from app.domain.ids import decode_as
from app.domain.pagination import Page


async def _prompt(info: GraphQLInfo, prompt_id: UUID) -> Prompt | None:
    found = await services(info).prompts.get(authenticated(info), prompt_id)
    return Prompt.of(found) if found else None


async def _prompt_run(info: GraphQLInfo, run_id: UUID) -> PromptRun | None:
    found = await services(info).prompt_runs.get(authenticated(info), run_id)
    return PromptRun.of(found) if found else None


register_node("Prompt", _prompt)
register_node("PromptRun", _prompt_run)


@strawberry.type
class PromptQueries:
    @strawberry.field(description="A project's prompts, oldest first. Needs models:read.")
    async def prompts(
        self, info: GraphQLInfo, project_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> Connection[Prompt]:
        principal = authenticated(info)
        page_request = created_page(first, after)
        project_uuid = decode_as(project_id, "Project")
        if project_uuid is None:  # reads like a project that is not yours
            return connection(Page([], False), Prompt.of, cursor_by_created, has_previous=False)
        page = await services(info).prompts.list(principal, project_uuid, page_request)
        return connection(page, Prompt.of, cursor_by_created, has_previous=after is not None)
