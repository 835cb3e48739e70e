"""Tenancy queries: viewer, organizations, organization, project, apiKeys."""

from __future__ import annotations

from uuid import UUID

import strawberry

from app.api.context import GraphQLInfo, authenticated, services
from app.api.node import register_node
from app.api.orgs.types import ApiKey, Organization, Project, Viewer
from app.api.pagination import Connection, connection, created_page, cursor_by_created
from app.domain.ids import decode_as
from app.domain.pagination import Page


async def _organization(info: GraphQLInfo, organization_id: UUID) -> Organization | None:
    found = await services(info).organizations.get(authenticated(info), organization_id)
    return Organization.of(found) if found else None


async def _project(info: GraphQLInfo, project_id: UUID) -> Project | None:
    found = await services(info).projects.get(authenticated(info), project_id)
    return Project.of(found) if found else None


async def _api_key(info: GraphQLInfo, key_id: UUID) -> ApiKey | None:
    found = await services(info).api_keys.get(authenticated(info), key_id)
    return ApiKey.of(found) if found else None


register_node("Organization", _organization)
register_node("Project", _project)
register_node("ApiKey", _api_key)


@strawberry.type
class TenancyQueries:
    @strawberry.field(description="Who is calling: organization, project, permissions.")
    def viewer(self, info: GraphQLInfo) -> Viewer:
        principal = authenticated(info)
        return Viewer(
            kind=principal.kind.value,
            permissions=sorted(p.value for p in principal.permissions),
            is_platform_admin=principal.is_platform_admin,
            principal=principal,
        )

    @strawberry.field(description="Every organization. Platform admins only.")
    async def organizations(
        self, info: GraphQLInfo, first: int | None = None, after: str | None = None
    ) -> Connection[Organization]:
        page = await services(info).organizations.list(authenticated(info), created_page(first, after))
        return connection(
            page,
            Organization.of,
            cursor_by_created,
            has_previous=after is not None,
        )

    @strawberry.field
    async def organization(self, info: GraphQLInfo, id: strawberry.ID) -> Organization | None:
        authenticated(info)
        organization_id = decode_as(id, "Organization")
        return await _organization(info, organization_id) if organization_id else None

    @strawberry.field
    async def project(self, info: GraphQLInfo, id: strawberry.ID) -> Project | None:
        authenticated(info)
        project_id = decode_as(id, "Project")
        return await _project(info, project_id) if project_id else None

    @strawberry.field(description="An organization's API keys (never their secrets). Needs keys:manage.")
    async def api_keys(
        self,
        info: GraphQLInfo,
        organization_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[ApiKey]:
        principal = authenticated(info)
        page_request = created_page(first, after)
        org_uuid = decode_as(organization_id, "Organization")
        if org_uuid is None:
            return connection(Page([], False), ApiKey.of, cursor_by_created, has_previous=False)
        page = await services(info).api_keys.list_for_organization(principal, org_uuid, page_request)
        return connection(page, ApiKey.of, cursor_by_created, has_previous=after is not None)
