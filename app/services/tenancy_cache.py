"""Organizations and projects for the gateway's hot path, kept in memory.

A call needs its organization (plan, quota, migration policy) and to know its project belongs to
it; both change rarely. Changes publish on the "tenancy" topic and every instance drops its copy.
While the database does not answer, entries are served up to `stale_for` seconds past their
freshness (see TtlCache).
"""

from __future__ import annotations

from uuid import UUID

from app.domain.tenancy import Organization, Project
from app.repositories.organizations import OrganizationRepository, ProjectRepository
from app.services.ttl_cache import TtlCache


class TenancyCache:
    def __init__(
        self, organizations: OrganizationRepository, projects: ProjectRepository, *, stale_for: float = 0.0
    ) -> None:
        self._organizations: TtlCache[UUID, Organization] = TtlCache(organizations.get, stale_for=stale_for)
        self._projects: TtlCache[UUID, Project] = TtlCache(projects.get, stale_for=stale_for)

    async def organization(self, organization_id: UUID) -> Organization | None:
        return await self._organizations.get(organization_id)

    async def project(self, project_id: UUID) -> Project | None:
        return await self._projects.get(project_id)

    def invalidate(self, _key: str | None = None) -> None:
        self._organizations.clear()
        self._projects.clear()
