"""The demo organization `make run` creates on first start, so a newcomer can call the API at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.domain.auth import Role
from app.domain.enums import Plan
from app.services.container import Services

DEMO_ORGANIZATION = "Demo"
DEMO_PROJECT = "Demo project"


@dataclass(frozen=True, slots=True)
class DemoKeys:
    platform_admin: str
    demo_organization: str


async def seed_demo(services: Services) -> DemoKeys | None:
    """Creates the demo organization, its project and two keys; None if it exists already."""
    repos = services.repositories
    if await repos.organizations.get_by_name(DEMO_ORGANIZATION) is not None:
        return None
    async with services.db.transaction() as conn:
        organization = await repos.organizations.insert(
            conn,
            organization_id=uuid.uuid4(),
            name=DEMO_ORGANIZATION,
            plan=Plan.PRO,
            monthly_credit_limit=None,
            auto_migrate_end_of_life=True,
            external_id=None,
        )
        await repos.projects.insert(
            conn, project_id=uuid.uuid4(), organization_id=organization.id, name=DEMO_PROJECT
        )
    _, admin_key = await services.api_keys.create_unchecked(
        name="platform admin (demo)", organization_id=None, platform_admin=True
    )
    _, demo_key = await services.api_keys.create_unchecked(
        name="demo", organization_id=organization.id, role=Role.ADMIN
    )
    return DemoKeys(platform_admin=admin_key, demo_organization=demo_key)
