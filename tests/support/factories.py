"""Test data made through the services (the same code paths the API uses)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.domain.auth import OPERATOR, Role
from app.domain.enums import Plan
from app.domain.ids import encode_id
from app.domain.tenancy import Organization, Project
from app.services.container import Services


@dataclass
class Tenant:
    organization: Organization
    project: Project
    keys: dict[Role, str] = field(default_factory=dict)

    @property
    def organization_gid(self) -> str:
        return encode_id("Organization", self.organization.id)

    @property
    def project_gid(self) -> str:
        return encode_id("Project", self.project.id)

    @property
    def admin_key(self) -> str:
        return self.keys[Role.ADMIN]


async def make_tenant(services: Services, name: str | None = None, plan: Plan = Plan.PRO) -> Tenant:
    name = name or f"org-{uuid.uuid4().hex[:8]}"
    organization = await services.organizations.create(
        OPERATOR, name=name, plan=plan, external_id=f"ext-{name}"
    )
    project = await services.projects.create(OPERATOR, organization.id, f"{name} project")
    tenant = Tenant(organization, project)
    for role in Role:
        _, key = await services.api_keys.create_unchecked(
            name=f"{name} {role.value.lower()}", organization_id=organization.id, role=role
        )
        tenant.keys[role] = key
    return tenant


async def make_platform_admin_key(services: Services) -> str:
    _, key = await services.api_keys.create_unchecked(name="admin", organization_id=None, platform_admin=True)
    return key
